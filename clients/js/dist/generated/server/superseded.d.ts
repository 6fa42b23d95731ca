/**
 * A stream event (analyses or insights stream): the document `id` was replaced by the document `by`, because samples it used were edited or deleted. The replacement is sent on the same stream (its body names `supersedes`) just before this event; dashboards show it in place of the old one. `by` is the nil UUID 00000000-0000-0000-0000-000000000000 when nothing replaces it (no activity is left in its range: the document is withdrawn). Like every stream event it has an offset, so replay and resume include it; history listings show the mark as `superseded_by`.
 */
export interface SupersededFrame {
    type: 'superseded';
    /**
     * The stream of the replaced document.
     */
    stream: 'analyses' | 'insights';
    /**
     * Position of this event in the stream.
     */
    offset: number;
    /**
     * Whose stream.
     */
    user_id: string;
    /**
     * The replaced document (analysis_id or insight_id).
     */
    id: string;
    /**
     * The document that replaces it; the nil UUID when it is withdrawn.
     */
    by: string;
}
