/**
 * Plain-language text about the user's week, generated after a new asked-for analysis (analyze frame, POST /api/v1/analyses), after a new day-complete analysis whose window ends less than 48 hours before the server's clock (a backfill of older days gets no insight per day), and on POST /api/v1/insights. features.change holds differences against the previous report (*_delta), not values. generator is gemini (model names the model) or local (the built-in rule-based generator; fallback_reason says why Gemini was not used when it is configured). Built only from the derived features included here. The same document is stored and listed by GET /api/v1/insights. When an edit or deletion changed samples this document used, it is replaced: the replacement's body names the replaced one in `supersedes`, and REST history listings (and GET of one document) show `superseded_by` on the replaced one (the nil UUID when it was withdrawn: no activity left in its range).
 */
export interface InsightFrame {
    type: 'insight';
    insight_id: string;
    user_id: string;
    analysis_id: string;
    created_at: string;
    window: {
        from: string;
        to: string;
    };
    generator: 'gemini' | 'local';
    model?: string | null;
    prompt_version: string;
    summary: string;
    key_points: string[];
    recommendations: string[];
    fallback_reason?: string | null;
    features: {};
    /**
     * Present when delivered as a stream event (always, for new documents).
     */
    stream?: 'analyses' | 'insights';
    /**
     * Position in the owner's stream: one more than the previous event's. Resume with subscribe since=<last offset seen>.
     */
    offset?: number;
    /**
     * The insight this one replaces (samples it used were edited or deleted).
     */
    supersedes?: string;
    /**
     * REST listings only: the insight that replaces this one (nil UUID: withdrawn, nothing replaces it). Absent on a current one and on stream events.
     */
    superseded_by?: string;
}
