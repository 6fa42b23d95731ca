/**
 * Application-level liveness check; the server answers with `pong`. Optional: the server's WebSocket Ping control frames already keep the session alive.
 */
export interface PingFrame {
    type: 'ping';
    /**
     * Optional W3C trace context (`version-traceid-parentid-flags`) of the client's span for this frame: the server's trace of the frame (with `--otlp-endpoint`) continues it. Any frame type may carry it; a malformed value is ignored.
     */
    traceparent?: string;
}
