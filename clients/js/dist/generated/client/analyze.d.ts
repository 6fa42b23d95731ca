/**
 * Asks for the analytics of the user's last week now. Answered by an `analysis` frame (to every session of the user), or by an `error` frame `no_data` (no activity data in the last 7 days), `store_unavailable` or `internal`.
 */
export interface AnalyzeFrame {
    type: 'analyze';
    /**
     * Optional W3C trace context (`version-traceid-parentid-flags`) of the client's span for this frame: the server's trace of the frame (with `--otlp-endpoint`) continues it. Any frame type may carry it; a malformed value is ignored.
     */
    traceparent?: string;
}
