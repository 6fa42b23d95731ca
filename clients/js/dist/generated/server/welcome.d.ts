/**
 * RFC 3339 date-time with a UTC offset (`Z` or `+hh:mm`/`-hh:mm`).
 */
export type DateTime = string;
/**
 * First frame of every session, sent right after the WebSocket upgrade.
 */
export interface WelcomeFrame {
    type: 'welcome';
    protocol_version: 1;
    /**
     * Identifies this WebSocket session (for logs and support).
     */
    session_id: string;
    /**
     * The authenticated user.
     */
    user_id: string;
    server_time: DateTime;
    /**
     * Interval of the server's WebSocket Ping frames. Default 30000. A client silent for the heartbeat timeout (default 3 intervals) is closed with 4002.
     */
    heartbeat_interval_ms: number;
    /**
     * RFC 3339 date-time with a UTC offset (`Z` or `+hh:mm`/`-hh:mm`).
     */
    token_expires_at: string;
    limits: Limits;
}
/**
 * Limits in force for this session.
 */
export interface Limits {
    /**
     * Largest accepted text frame, in bytes; a larger frame gets `error` `frame_too_large` and close 1009. Default 1048576.
     */
    max_frame_bytes: number;
    /**
     * Most samples in one `samples` frame; more gets `error` `too_many_samples`. Default 5000.
     */
    max_samples_per_frame: number;
    /**
     * Sustained inbound frame rate. Default 50.
     */
    max_frames_per_sec: number;
    /**
     * Inbound burst allowance; also the number of consecutive rate-limited frames after which the session is closed with 4008. Default 100.
     */
    frame_burst: number;
    /**
     * Most `samples` frames a client should have unacknowledged at once. Default 8.
     */
    max_inflight_batches: number;
}
