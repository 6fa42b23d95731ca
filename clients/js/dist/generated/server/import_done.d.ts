/**
 * An import of history ended: state done, or failed with error. The final report, as GET /api/v1/imports/{id} shows it. Sent once to every session of the user.
 */
export interface ImportDoneFrame {
    type: 'import_done';
    import_id: string;
    format: 'apple_health';
    state: 'done' | 'failed';
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
    /**
     * Present when state is failed: why the import stopped (malformed_xml names the line and byte offset; cancelled: the account was erased).
     */
    error?: {
        code: 'malformed_xml' | 'not_an_export' | 'zip_bomb' | 'io_error' | 'store_error' | 'cancelled';
        message: string;
    };
}
