/**
 * Start receiving a user's stream of analyses or insights: the session's own user, or a user who shared that scope with it (POST /api/v1/shares). Answered by subscribed (then events), or error forbidden. Subscribing again to the same stream replaces the subscription.
 */
export interface SubscribeFrame {
    type: 'subscribe';
    stream: 'analyses' | 'insights';
    /**
     * Whose stream; default: the session's user.
     */
    user_id?: string;
    /**
     * Last offset the client has seen: the events after it are replayed first (if still kept; see subscribed.recover). 0 replays the whole kept history.
     */
    since?: number;
    /**
     * The epoch of the subscribed frame that gave `since`; if the server's differs, offsets restarted and recover is false.
     */
    epoch?: string;
}
