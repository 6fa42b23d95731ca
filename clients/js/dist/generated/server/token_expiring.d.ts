/**
 * RFC 3339 date-time with a UTC offset (`Z` or `+hh:mm`/`-hh:mm`).
 */
export type DateTime = string;
/**
 * The access token expires soon (sent `token-expiry-warning`, default 60 s, before expiry). Send a `refresh` frame before `expires_at`, or the session is closed with `error` `token_expired` and close code 4001.
 */
export interface TokenExpiringFrame {
    type: 'token_expiring';
    expires_at: DateTime;
    /**
     * Milliseconds until expires_at, as of sending.
     */
    expires_in_ms: number;
}
