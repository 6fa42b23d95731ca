/**
 * RFC 3339 date-time with a UTC offset (`Z` or `+hh:mm`/`-hh:mm`).
 */
export type DateTime = string;
/**
 * The token sent in `refresh` was accepted; the session now expires at `expires_at`.
 */
export interface RefreshedFrame {
    type: 'refreshed';
    expires_at: DateTime;
}
