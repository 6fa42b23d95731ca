/**
 * RFC 3339 date-time with a UTC offset (`Z` or `+hh:mm`/`-hh:mm`).
 */
export type DateTime = string;
/**
 * Answer to a client `ping`.
 */
export interface PongFrame {
    type: 'pong';
    server_time: DateTime;
}
