/**
 * Application-level liveness check; the server answers with `pong`. Optional: the server's WebSocket Ping control frames already keep the session alive.
 */
export interface PingFrame {
    type: 'ping';
}
