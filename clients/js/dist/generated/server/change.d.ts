/**
 * One entry of the session user's change feed (stream samples), in offset order: upsert carries the sample as stored now (an insert, or an update that replaced it), delete the id of a sample that was removed. Applying the changes in order onto the state at `since` (an empty set for since 0) gives the current samples, as GET /api/v1/health-data lists them. Offsets are the change seqs of GET /api/v1/changes: strictly increasing, gaps allowed.
 */
export type ChangeFrame = {
    type: 'change';
    stream: 'samples';
    user_id: string;
    /**
     * The change's seq; send the last one applied as since when subscribing again.
     */
    offset: number;
    op: 'upsert' | 'delete';
    /**
     * With upsert: the sample in the shape of GET /api/v1/health-data (id, kind, start, end, value, unit, source, ...).
     */
    sample?: {
        id: string;
        kind: string;
        start: string;
    };
    /**
     * With delete: the id of the deleted sample.
     */
    id?: string;
};
