/**
 * Start receiving a user's stream of analyses or insights: the session's own user, or a user who shared that scope with it (POST /api/v1/shares). Answered by subscribed (then events), or error forbidden. Subscribing again to the same stream replaces the subscription. Stream samples is the change feed of the session's own samples (every insert, update and deletion as a change frame; another user_id gets forbidden): since is the last change seq applied (0: replay every current sample), and a position that cannot be followed gets error resync_required.
 */
export interface SubscribeFrame {
    type: 'subscribe';
    stream: 'analyses' | 'insights' | 'samples';
    /**
     * Whose stream; default: the session's user.
     */
    user_id?: string;
    /**
     * Last offset the client has seen: the events after it are replayed first (if still kept; see subscribed.recover). 0 replays the whole kept history. For samples: the offset of the last change frame applied; absent: live changes only, from now.
     */
    since?: number;
    /**
     * The epoch of the subscribed frame that gave `since`; if the server's differs, offsets restarted and recover is false. For samples a different epoch gets error resync_required.
     */
    epoch?: string;
    /**
     * Optional W3C trace context (`version-traceid-parentid-flags`) of the client's span for this frame: the server's trace of the frame (with `--otlp-endpoint`) continues it. Any frame type may carry it; a malformed value is ignored.
     */
    traceparent?: string;
}
