/**
 * The server is shutting down. Sent after the acks of all in-flight batches; the server then closes the connection with 1001. Reconnect after `reconnect_after_ms` and resend any batch that was not acked.
 */
export interface GoingAwayFrame {
    type: 'going_away';
    /**
     * Human-readable reason, e.g. `server shutdown`.
     */
    reason: string;
    /**
     * Suggested wait before reconnecting.
     */
    reconnect_after_ms: number;
}
