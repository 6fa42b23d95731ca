/**
 * No insight could be produced for an analysis: the model failed with the local fallback disabled, or the store was unavailable. reason is human-readable.
 */
export interface InsightFailedFrame {
    type: 'insight_failed';
    analysis_id: string;
    reason: string;
}
