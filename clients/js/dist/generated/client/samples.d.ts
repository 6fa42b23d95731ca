/**
 * One health measurement; the same shape as the REST API. A sample that does not match is not stored and is reported in the ack's `rejected` list; the other samples of the batch are unaffected. Not expressible here: `end` >= `start` (else `invalid_time`); `start` not before 2000-01-01T00:00:00Z, `start` and `end` at most 24 h ahead of the server clock, and `end` - `start` at most the kind's span (see `end`; else `time_out_of_range`); blood_pressure's diastolic below its systolic value, a mindful_session's minutes within its span (else `invalid_value`); length limits are in UTF-8 bytes on the server, characters here; range bounds of converted units are rounded to 6 decimals.
 */
export type Sample = Sample1;
export type Kind = 'activity_count' | 'step_count' | 'heart_rate' | 'heart_rate_variability' | 'respiratory_rate' | 'oxygen_saturation' | 'body_temperature' | 'sleep_stage' | 'heart_rate_variability_rmssd' | 'resting_heart_rate' | 'blood_pressure' | 'blood_glucose' | 'active_energy' | 'distance' | 'body_mass' | 'workout' | 'mindful_session' | 'mood' | 'phq9' | 'gad7';
/**
 * RFC 3339 date-time with a UTC offset (`Z` or `+hh:mm`/`-hh:mm`).
 */
export type DateTime = string;
/**
 * A batch of samples to store. Answered by exactly one `ack` with the same `seq` once the accepted samples are durably committed, or by an `error` frame (`too_many_samples`, `rate_limited`, `store_unavailable`) carrying the same `seq`, in which case nothing of the batch is stored. Acks are sent in the order of the samples frames. At most `limits.max_samples_per_frame` samples (default 5000) and `limits.max_frame_bytes` bytes (default 1048576) per frame.
 */
export interface SamplesFrame {
    type: 'samples';
    /**
     * Sequence number chosen by the client for a `samples` frame; echoed back.
     */
    seq: number;
    /**
     * The samples; their 0-based position is the `index` used in rejections.
     */
    samples: Sample[];
    /**
     * Optional W3C trace context (`version-traceid-parentid-flags`) of the client's span for this frame: the server's trace of the frame (with `--otlp-endpoint`) continues it. Any frame type may carry it; a malformed value is ignored.
     */
    traceparent?: string;
}
export interface Sample1 {
    /**
     * Client-chosen idempotency key, unique per user; 1-128 bytes, no control characters. A sample whose id is already stored for the user is counted as a duplicate and not stored again.
     */
    id: string;
    kind: Kind;
    start: DateTime;
    /**
     * RFC 3339 date-time with a UTC offset (`Z` or `+hh:mm`/`-hh:mm`).
     */
    end?: string;
    /**
     * A number; for sleep_stage a stage name (awake, light, deep, rem, in_bed, asleep (stage not known), out_of_bed, or a HealthKit / Health Connect stage name). Converted to the kind's canonical unit on input; the range is checked there (per unit below). blood_pressure: the systolic pressure. workout: its active energy. mindful_session: its minutes (at most `end` - `start`, +1 min rounding). mood: valence -1..1. phq9 / gad7: the questionnaire total.
     */
    value: number | string;
    /**
     * Optional. If present it must be one of the kind's units (else `unit_mismatch`, naming them); a unit other than the canonical one is converted (docs/phone-data.md). Without `unit` the value is in the canonical unit, except oxygen_saturation, where a value of at most 1 is a fraction (also with `%`, as HealthKit's percent unit holds 0-1).
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
     * blood_pressure only, and required there: the diastolic pressure, in the same unit as `value`; 20-200 mmHg and below the systolic `value` (else `invalid_value`). Any other kind with `diastolic` is `invalid_sample`.
     */
    diastolic?: number;
    /**
     * workout only, and required there: the activity type, e.g. `running`, HealthKit's `HKWorkoutActivityType` case name or Health Connect's `EXERCISE_TYPE_` name; stored as snake_case without the prefix (`HKWorkoutActivityTypeRunning` -> `running`), at most 64 bytes so. Any other kind with `activity` is `invalid_sample`.
     */
    activity?: string;
    /**
     * Optional: the client's version of this sample (Health Connect's `metadata.clientRecordVersion`, a HealthKit modification counter). A sample re-sent with the same `id` and a higher version replaces the stored one (counted as `updated`); the same or a lower version is a duplicate; without a version a re-sent id is always a duplicate. Responses carry it when it was sent.
     */
    version?: number;
    provenance?: Provenance;
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
/**
 * Where a sample came from, as structured as the client knows it (HealthKit's HKDevice / HKSource / HKMetadataKeyWasUserEntered, Health Connect's Metadata.device / dataOrigin / recordingMethod: docs/phone-data.md). Every field optional; an unknown field is `invalid_sample`, naming it. Strings are 1-256 bytes without control characters.
 */
export interface Provenance {
    device?: Device;
    /**
     * The app that wrote the sample: an iOS bundle id (HKSource.bundleIdentifier) or an Android package name (dataOrigin.packageName).
     */
    app?: string;
    /**
     * How the sample was recorded: `automatic` (measured passively), `active` (during a session the user started), `manual` (typed in by the user). Manual entries win source priority over the minutes they cover.
     */
    method?: 'automatic' | 'active' | 'manual';
}
