/**
 * Stop a subscription. Answered by unsubscribed (reason requested) or error not_subscribed.
 */
export interface UnsubscribeFrame {
    type: 'unsubscribe';
    stream: 'analyses' | 'insights' | 'samples';
    /**
     * Default: the session's user.
     */
    user_id?: string;
    /**
     * Optional W3C trace context (`version-traceid-parentid-flags`) of the client's span for this frame: the server's trace of the frame (with `--otlp-endpoint`) continues it. Any frame type may carry it; a malformed value is ignored.
     */
    traceparent?: string;
}
