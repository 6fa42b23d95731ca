/**
 * A regular series: values of one kind, unit and source at a fixed interval, stored as the samples they stand for. Value i is the sample {id, kind, unit, source, start: `start` + i x `interval_ms` (with `start`'s UTC offset), end: that + `interval_ms` (only with `intervals`), value: values[i], version: versions[i]}: it is validated, stored or rejected exactly as that sample in a `samples` frame (same rejection codes, `index` = the value's index). `null` values are gaps: no sample, not counted in the ack (accepted + duplicates + updated + len(rejected) + rejected_omitted == the values that are not null). Without an id (`ids` absent, or its entry null) a sample's id is derived: `s:` + kind + `:` + its start in UTC milliseconds since the epoch + `:` + the first 16 hex digits of SHA-256(source name, UTF-8; the empty string without a source), so a re-sent series is all duplicates and two sources never share ids. Answered like `samples`: one `ack` with the same `seq` after durable commit, or an `error` with that `seq`: `invalid_frame` (the shape: lengths of `ids`/`versions` not that of `values`, `interval_ms` out of 1..=86400000, no values, a field of the wrong type; the message names the rule; nothing stored), `too_many_samples` (more than `limits.max_samples_per_frame` values), `rate_limited`, `store_unavailable`. Not expressible here: the lengths of `ids` and `versions` equal that of `values`.
 */
export interface SeriesFrame {
    type: 'series';
    /**
     * Chosen by the client; echoed in the ack or error.
     */
    seq: number;
    /**
     * The kind of every value. blood_pressure and workout need fields a series does not carry (`diastolic`, `activity`): their values are rejected; send them in `samples` frames.
     */
    kind: 'activity_count' | 'step_count' | 'heart_rate' | 'heart_rate_variability' | 'respiratory_rate' | 'oxygen_saturation' | 'body_temperature' | 'sleep_stage' | 'heart_rate_variability_rmssd' | 'resting_heart_rate' | 'blood_pressure' | 'blood_glucose' | 'active_energy' | 'distance' | 'body_mass' | 'workout' | 'mindful_session' | 'mood' | 'phq9' | 'gad7';
    /**
     * Optional: the unit of every value, as a sample's `unit` (one of the kind's units, converted to the canonical one).
     */
    unit?: string;
    /**
     * Optional: where the sample came from. Either a string (at most 256 bytes; protocol v1) naming the device or app, or an object with `name` and the provenance fields (`device`, `app`, `method`), normalised on input: the source name is `name`, else `device.name`, else `app`, and the rest is stored as `provenance`. Responses always carry the string, plus `provenance`. Provenance given in both `source` and `provenance` is `invalid_sample`. Source priority ranks samples by this name (docs/phone-data.md).
     */
    source?: string | {
        /**
         * The source's name.
         */
        name?: string;
        device?: Device;
        /**
         * The app that wrote the sample: an iOS bundle id (HKSource.bundleIdentifier) or an Android package name (dataOrigin.packageName).
         */
        app?: string;
        /**
         * How the sample was recorded: `automatic` (measured passively), `active` (during a session the user started), `manual` (typed in by the user). Manual entries win source priority over the minutes they cover.
         */
        method?: 'automatic' | 'active' | 'manual';
    };
    /**
     * Start of the first value; value i starts `interval_ms` x i later, with the same UTC offset.
     */
    start: string;
    /**
     * Milliseconds between the starts of consecutive values.
     */
    interval_ms: number;
    /**
     * Each value covers its interval: its sample's `end` is its start + `interval_ms` (required for sleep_stage and mindful_session; e.g. steps per minute). Without it samples have no `end`.
     */
    intervals?: boolean;
    /**
     * The values, in the kind's rules (numbers; stage names for sleep_stage); `null` is a gap (no sample). At most `limits.max_samples_per_frame` values.
     *
     * @minItems 1
     */
    values: [number | string | null, ...(number | string | null)[]];
    /**
     * Optional: one id per value (same length as `values`); a null entry gets the derived id. Ids are idempotency keys, as in `samples`.
     */
    ids?: (string | null)[];
    /**
     * Optional: one version per value (same length as `values`), as a sample's `version`; null: none.
     */
    versions?: (number | null)[];
}
/**
 * The device that measured the sample. Every field optional; an unknown field is `invalid_sample`, naming it.
 */
export interface Device {
    /**
     * e.g. `Apple Watch`.
     */
    name?: string;
    /**
     * e.g. `Apple Inc.`, `Google`.
     */
    manufacturer?: string;
    /**
     * e.g. `Watch7,1`, `Pixel Watch 2`.
     */
    model?: string;
    /**
     * The hardware revision.
     */
    hardware_version?: string;
    /**
     * The firmware or OS version.
     */
    software_version?: string;
}
