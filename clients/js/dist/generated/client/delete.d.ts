/**
 * Delete samples of the session's user by id. Answered by one `ack` (deleted, not_found; after the deletion is durable, in frame order with `samples` frames) or by an `error` with the same `seq` (`invalid_ids`, `rate_limited`, `store_unavailable`: nothing deleted, resend later). Deleting an id that is not stored is not an error: it counts in `not_found`. A deleted id leaves a tombstone for 90 days: a re-send of its old version (same or lower `version`) is a duplicate, not a new sample. Each id counts as one sample against the samples-per-second limits.
 */
export interface DeleteFrame {
    type: 'delete';
    /**
     * Chosen by the client; echoed in the ack or error.
     */
    seq: number;
    /**
     * The ids to delete.
     *
     * @minItems 1
     * @maxItems 1000
     *
     * Items: A sample id (1-128 bytes, no control characters).
     */
    ids: [string, ...string[]];
    /**
     * Optional W3C trace context (`version-traceid-parentid-flags`) of the client's span for this frame: the server's trace of the frame (with `--otlp-endpoint`) continues it. Any frame type may carry it; a malformed value is ignored.
     */
    traceparent?: string;
}
