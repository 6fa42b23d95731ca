/**
 * Asks for the analytics of the user's last week now. Answered by an `analysis` frame (to every session of the user), or by an `error` frame `no_data` (no activity data in the last 7 days), `store_unavailable` or `internal`.
 */
export interface AnalyzeFrame {
    type: 'analyze';
}
