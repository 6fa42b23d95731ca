/**
 * An import of history (POST /api/v1/imports) is running: its counts so far, as GET /api/v1/imports/{id} shows them. Sent to every session of the user at most twice a second.
 */
export interface ImportProgressFrame {
    type: 'import_progress';
    import_id: string;
    format: 'apple_health';
    state: 'running';
    /**
     * Data elements read: Records (those inside a Correlation too), Correlations, Workouts, ActivitySummaries and any other element below HealthData.
     */
    records_read: number;
    /**
     * records_read by HealthKit type (a Record's or Correlation's type), else by element name (Workout, ActivitySummary).
     */
    records_by_type: {
        [k: string]: number | undefined;
    };
    samples_stored: number;
    /**
     * Samples already stored (same derived id).
     */
    duplicates: number;
    /**
     * Samples that replaced a stored one (a later creationDate).
     */
    updated: number;
    /**
     * Elements not stored, by rejection code (protocol/README.md codes, plus invalid_date, unknown_sleep_value, incomplete_correlation).
     */
    rejected: {
        [k: string]: number | undefined;
    };
    /**
     * Elements of types without a Clarity kind, by type.
     */
    unmapped: {
        [k: string]: number | undefined;
    };
    bytes_done: number;
    bytes_total: number;
}
