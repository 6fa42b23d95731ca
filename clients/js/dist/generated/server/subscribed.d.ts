/**
 * A subscription is live. With recover true, the `replay` events after `since` follow at once, in order, then live events; with recover false the events after `since` are gone (older than the kept history, other epoch, or since > offset): reload over REST and continue from `offset`. For stream samples (the change feed) offsets are change seqs: recover is always true (a position that cannot be followed gets error resync_required instead), replay is 0 because the replay is paged from the store and not counted in advance, and the client has caught up once it has applied the change at `offset`.
 */
export interface SubscribedFrame {
    type: 'subscribed';
    stream: 'analyses' | 'insights' | 'samples';
    user_id: string;
    /**
     * Identifies the offset sequence; send it back with since.
     */
    epoch: string;
    /**
     * Offset of the stream's latest event (0: none yet); for samples, the latest change seq.
     */
    offset: number;
    recover: boolean;
    /**
     * How many replayed events follow (always 0 for samples: see the description).
     */
    replay: number;
}
