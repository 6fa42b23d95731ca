/**
 * Outcome of one `samples` or `delete` frame, sent only after its changes are durably committed (fsync'd). Acks are sent in the order of the frames. For a samples frame: accepted + duplicates + updated + len(rejected) + rejected_omitted equals the number of samples in the frame (deleted and not_found are 0). For a delete frame: deleted + not_found equals the number of ids (the others are 0).
 */
export interface AckFrame {
    type: 'ack';
    /**
     * Sequence number chosen by the client for a `samples` or `delete` frame; echoed back.
     */
    seq: number;
    /**
     * Samples newly stored (new ids).
     */
    accepted: number;
    /**
     * Samples whose id was already stored for this user with the same or a higher `version` (or without one): not stored again.
     */
    duplicates: number;
    /**
     * Samples that replaced the stored sample of their id because their `version` is higher.
     */
    updated: number;
    /**
     * Samples a `delete` frame removed.
     */
    deleted: number;
    /**
     * Ids a `delete` frame named that were not stored (unknown, or deleted already): not an error.
     */
    not_found: number;
    /**
     * Samples not stored because they are invalid: the first 100 of them at most (messages cut to 400 characters); empty when none.
     *
     * @maxItems 100
     */
    rejected: Rejection[];
    /**
     * Further invalid samples, not listed in `rejected` (only the first 100 are listed); 0 when all are listed.
     */
    rejected_omitted: number;
}
export interface Rejection {
    /**
     * 0-based position of the sample in the frame's `samples` array.
     */
    index: number;
    /**
     * Stable machine-readable reason.
     */
    code: 'invalid_sample' | 'invalid_id' | 'unknown_kind' | 'invalid_time' | 'time_out_of_range' | 'invalid_value' | 'out_of_range' | 'unit_mismatch';
    /**
     * Human-readable detail; not stable. At most 400 characters (a longer one is cut and ends in …).
     */
    message: string;
}
