/**
 * A subscription is live. With recover true, the `replay` events after `since` follow at once, in order, then live events; with recover false the events after `since` are gone (older than the kept history, other epoch, or since > offset): reload over REST and continue from `offset`.
 */
export interface SubscribedFrame {
    type: 'subscribed';
    stream: 'analyses' | 'insights';
    user_id: string;
    /**
     * Identifies the offset sequence; send it back with since.
     */
    epoch: string;
    /**
     * Offset of the stream's latest event (0: none yet).
     */
    offset: number;
    recover: boolean;
    /**
     * How many replayed events follow.
     */
    replay: number;
}
