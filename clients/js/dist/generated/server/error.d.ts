/**
 * A problem with a client frame or with the session. Recoverable codes leave the session open: forbidden (subscribe to a stream no share grants you), not_subscribed (unsubscribe from a stream you are not subscribed to), too_many_subscriptions, resync_required (stream samples: the position given with since cannot be followed, i.e. another store epoch, ahead of the feed's head or older than its floor, or the floor passed the subscription later; the subscription ended: subscribe again with since 0 and no epoch and replace the local copy with what is replayed), no_data (an analyze request found no activity data), invalid_json, invalid_frame, unknown_type, unsupported_frame, too_many_samples, invalid_ids (a delete frame's ids: not 1 to 1000, or one that is no valid sample id; nothing deleted), rate_limited, store_unavailable, internal (the batch named by seq was not stored; resend it after retry_after_ms), auth_unavailable (a refresh token could not be checked now, e.g. the Cognito signing keys are unreachable; the session keeps its current token; resend the refresh after retry_after_ms). The others are sent just before the server closes the connection: frame_too_large (close 1009), token_expired (4001), heartbeat_timeout (4002), auth_invalid (4003), rate_limit_exceeded (4008), logged_out (4011: the session's login was ended by a logout or by a replay of one of its spent refresh tokens), account_erased (4011: the account was erased, DELETE /api/v1/user; its tokens no longer work; a batch that raced the erasure is answered account_erased with its seq, not stored, before that close), disconnected (4012: an administrator ended the user's sessions).
 */
export type ErrorFrame = {
    type: 'error';
    /**
     * Stable machine-readable code.
     */
    code: 'invalid_json' | 'invalid_frame' | 'unknown_type' | 'unsupported_frame' | 'too_many_samples' | 'invalid_ids' | 'rate_limited' | 'store_unavailable' | 'frame_too_large' | 'token_expired' | 'auth_invalid' | 'auth_unavailable' | 'rate_limit_exceeded' | 'heartbeat_timeout' | 'no_data' | 'internal' | 'forbidden' | 'not_subscribed' | 'too_many_subscriptions' | 'logged_out' | 'account_erased' | 'disconnected' | 'resync_required';
    /**
     * Human-readable detail; not stable.
     */
    message: string;
    /**
     * `seq` of the samples or delete frame concerned, when known.
     */
    seq?: number;
    /**
     * How long to wait before resending the frame.
     */
    retry_after_ms?: number;
    /**
     * For subscription errors: the stream concerned.
     */
    stream?: 'analyses' | 'insights' | 'samples';
    /**
     * For subscription errors: whose stream.
     */
    user_id?: string;
};
