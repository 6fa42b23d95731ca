/**
 * In-band access token refresh. On success the server answers `refreshed` and the session continues under the new token. A token that is invalid or belongs to another user is answered with `error` code `auth_invalid` and the session is closed with 4003. A token that cannot be checked right now (Cognito mode, signing keys unreachable) is answered with `error` code `auth_unavailable` and `retry_after_ms`; the session stays open under its current token.
 */
export interface RefreshFrame {
    type: 'refresh';
    /**
     * A new access token (JWT) for the same user.
     */
    access_token: string;
    /**
     * Optional W3C trace context (`version-traceid-parentid-flags`) of the client's span for this frame: the server's trace of the frame (with `--otlp-endpoint`) continues it. Any frame type may carry it; a malformed value is ignored.
     */
    traceparent?: string;
}
