/**
 * Actigraphy analytics over the user's last week (at most 7 days, trimmed to the first and last minute with activity data). Pushed to every session of the user when a local day completes (trigger day_complete, only when the result is new) and when a client asks (analyze frame or POST /api/v1/analyses; trigger request), and at the end of an import of history (trigger import: one per imported week, oldest first, each week ending at a local midnight; docs/import.md). The same document is stored and listed by GET /api/v1/analyses. Undefined values (too little data, zero variance) are null. Definitions: ../shared/golden/CONVENTIONS.md in the project's README. When an edit or deletion changed samples this document used, it is replaced: the replacement's body names the replaced one in `supersedes`, and REST history listings (and GET of one document) show `superseded_by` on the replaced one (the nil UUID when it was withdrawn: no activity left in its range).
 */
export interface AnalysisFrame {
    type: 'analysis';
    /**
     * Digest of the input: the same data gives the same id.
     */
    analysis_id: string;
    user_id: string;
    created_at: string;
    /**
     * Why it ran: a local day completed, a client asked, an import of history ended (import), or samples of an earlier analysis' week were edited or deleted (data_changed; it then names `supersedes`).
     */
    trigger: 'day_complete' | 'request' | 'import' | 'data_changed';
    window: {
        from: string;
        /**
         * Exclusive.
         */
        to: string;
        /**
         * The user's clock (from the latest sample's offset), used for clock times and nights.
         */
        utc_offset_minutes: number;
    };
    minutes_present: number;
    activity: {
        /**
         * activity_count, or step_count when the user has no activity counts.
         */
        kind: 'activity_count' | 'step_count' | null;
        /**
         * How minutes were counted as present. samples (activity counts): a minute is present when it has a sample; missing minutes stay missing. step_source_hours (steps): a step counter records only while its wearer moves, so a clock hour (UTC hour: the local hour for whole-hour offsets) counts as recording when a source that sent steps sent any sample of any kind overlapping it; there a minute without steps is 0 steps; minutes of other hours are missing.
         */
        coverage: {
            rule: 'samples' | 'step_source_hours';
            /**
             * The rule in words.
             */
            description: string;
            /**
             * Clock hours of the window counted as recording (step_source_hours); null for samples.
             */
            recording_hours: number | null;
            /**
             * Minutes without a step sample counted as 0 steps because their hour was recording.
             */
            filled_minutes: number;
        };
        /**
         * Which source filled how many minutes. Sources are never summed: per minute a manual entry wins, then the higher rank (3 wearable, 2 unnamed, 1 phone).
         */
        sources: {
            source: string;
            minutes: number;
            rank: number;
            /**
             * Present (true) on the user's manual entries (provenance.method = manual): they win the minutes they cover over every recorded source, whatever the rank, and are listed apart from the same source's recorded samples (docs/phone-data.md).
             */
            manual?: true;
        }[];
        /**
         * Mean activity per clock hour, for charts.
         */
        hourly?: {
            /**
             * Start of the first hour, in the analysis clock.
             */
            start: string;
            /**
             * One per hour from start; null where the hour has no data.
             */
            means: (number | null)[];
        };
        /**
         * Steps per local day, from the step_count samples of the analysed window (empty without any). Each step interval is spread over its minutes as the window spreads it; per minute one source counts, in the window's order (higher rank: 3 wearable, 2 unnamed, 1 phone; then the smaller name), never two summed; each minute is dated by the UTC offset of its own sample, so dates follow a DST change or a trip. One entry per date from the first to the last date with a step minute; a date in between without one has steps and step_minutes null (no data is not 0 steps). Definitions: docs/analytics.md (Steps per day).
         */
        days: {
            /**
             * Local date (YYYY-MM-DD).
             */
            date: string;
            /**
             * Steps of the date after choosing one source a minute; null without any step minute.
             */
            steps: number | null;
            /**
             * Minutes of the date with steps above 0; null without any step minute.
             */
            step_minutes: number | null;
            /**
             * The analysed window covers the whole local day (midnight to midnight); the first and last day of a window are usually partial. Says nothing about whether the phone was carried all day.
             */
            complete: boolean;
            /**
             * Minutes each source won on this date (a minute won with 0 steps included), most first. Manual entries (`manual`) win their minutes first.
             */
            sources: {
                source: string;
                minutes: number;
                rank: number;
                /**
                 * Present (true) on the user's manual entries (provenance.method = manual): they win the minutes they cover over every recorded source, whatever the rank, and are listed apart from the same source's recorded samples (docs/phone-data.md).
                 */
                manual?: true;
            }[];
        }[];
    };
    heart_rate: {
        minutes: number;
        mean_bpm: number | null;
    };
    /**
     * Heart rate, HRV, respiratory rate and SpO2 over the analysed week (before trimming to the activity data). Per minute one source's heart rate counts: higher rank (3 wearable, 2 unnamed, 1 phone), then more readings, then the smaller name. Definitions: docs/analytics.md (Heart).
     */
    heart: {
        /**
         * One entry per local date from the first to the last with any heart data; a date without data has nulls.
         */
        days: {
            /**
             * Local date (each reading's own UTC offset); a night's values belong to the date of its final wake.
             */
            date: string;
            /**
             * Resting heart rate, see resting_method; null when not measurable that day (never 0).
             */
            resting_bpm: number | null;
            /**
             * asleep_lowest_30min: the lowest 30-minute mean (at least 3 minutes with readings) while asleep in the night dated this day; day_lowest_30min: the same over the day's minutes outside workouts, when the night gave none; device: the mean of the day's resting_heart_rate samples from the winning source, when neither gave one; null with resting_bpm.
             */
            resting_method: 'asleep_lowest_30min' | 'day_lowest_30min' | 'device' | null;
            /**
             * Mean heart rate while asleep in the night dated this day (at least 3 minutes with readings).
             */
            asleep_mean_bpm: number | null;
            /**
             * Mean of the day's heart_rate_variability (SDNN) readings. Never mixed with RMSSD.
             */
            hrv_sdnn_ms: number | null;
            /**
             * Mean of the day's heart_rate_variability_rmssd readings. Never mixed with SDNN.
             */
            hrv_rmssd_ms: number | null;
            /**
             * Breaths a minute: mean of the readings taken while asleep in the night dated this day.
             */
            respiratory_rate: number | null;
            /**
             * Oxygen saturation, %: mean of the readings taken while asleep in the night dated this day.
             */
            spo2_pct: number | null;
            /**
             * Minutes of this local date with a heart-rate value (one source a minute).
             */
            hr_minutes: number;
        }[];
        /**
         * Trend of resting_bpm: the last 3 calendar days with a value against the days before.
         */
        resting: null | {
            unit: 'bpm' | 'ms';
            /**
             * First of the 3 calendar days counted as recent.
             */
            recent_from: string;
            /**
             * The last day with a value of the measure.
             */
            recent_to: string;
            /**
             * Days with a value among the recent days.
             */
            recent_days: number;
            /**
             * Mean of their daily values (days weigh equally).
             */
            recent_mean: number;
            /**
             * Days with a value before recent_from.
             */
            previous_days: number;
            /**
             * Mean of those days; null under 2 days.
             */
            previous_mean: number | null;
            /**
             * recent_mean minus previous_mean (a difference, not a value of the measure); null unless both sides have at least 2 days.
             */
            change: number | null;
        };
        /**
         * HRV trends, SDNN and RMSSD each on its own.
         */
        hrv: {
            sdnn: null | {
                unit: 'bpm' | 'ms';
                /**
                 * First of the 3 calendar days counted as recent.
                 */
                recent_from: string;
                /**
                 * The last day with a value of the measure.
                 */
                recent_to: string;
                /**
                 * Days with a value among the recent days.
                 */
                recent_days: number;
                /**
                 * Mean of their daily values (days weigh equally).
                 */
                recent_mean: number;
                /**
                 * Days with a value before recent_from.
                 */
                previous_days: number;
                /**
                 * Mean of those days; null under 2 days.
                 */
                previous_mean: number | null;
                /**
                 * recent_mean minus previous_mean (a difference, not a value of the measure); null unless both sides have at least 2 days.
                 */
                change: number | null;
            };
            rmssd: null | {
                unit: 'bpm' | 'ms';
                /**
                 * First of the 3 calendar days counted as recent.
                 */
                recent_from: string;
                /**
                 * The last day with a value of the measure.
                 */
                recent_to: string;
                /**
                 * Days with a value among the recent days.
                 */
                recent_days: number;
                /**
                 * Mean of their daily values (days weigh equally).
                 */
                recent_mean: number;
                /**
                 * Days with a value before recent_from.
                 */
                previous_days: number;
                /**
                 * Mean of those days; null under 2 days.
                 */
                previous_mean: number | null;
                /**
                 * recent_mean minus previous_mean (a difference, not a value of the measure); null unless both sides have at least 2 days.
                 */
                change: number | null;
            };
        };
        /**
         * Heart-rate minutes each source won. Manual entries (`manual`) win their minutes first.
         */
        sources: {
            source: string;
            minutes: number;
            rank: number;
            /**
             * Present (true) on the user's manual entries (provenance.method = manual): they win the minutes they cover over every recorded source, whatever the rank, and are listed apart from the same source's recorded samples (docs/phone-data.md).
             */
            manual?: true;
        }[];
    };
    /**
     * PAT (Pretrained Actigraphy Transformer) embedding of the week. Present only when the data spans a full week (10080 minutes, activity in the first and last minute) and the server has a model bundle; otherwise available is false with a code and a human-readable reason. Missing minutes inside the week are filled with the scaler's mean (missing_fraction says how many). Step data (activity.kind step_count) is never scored: PAT was trained on minute activity counts; code unsupported_signal says so.
     */
    pat: {
        available: true;
        model: 'PAT-S' | 'PAT-M' | 'PAT-L';
        /**
         * Mean over the encoder's tokens.
         *
         * @minItems 96
         * @maxItems 96
         */
        embedding: [
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number,
            number
        ];
        /**
         * One entry per output of the bundle's head; empty without a head (no fine-tuned heads are published).
         */
        scores: {
            [k: string]: number | undefined;
        };
        missing_fraction: number;
    } | {
        available: false;
        code: 'not_configured' | 'insufficient_data' | 'busy' | 'failed' | 'unsupported_signal';
        reason: string;
    };
    /**
     * Rest-activity rhythm measures, on activity counts or (without counts) steps. M10 never starts on a minute without activity (leading zero minutes of a tied window are skipped).
     */
    nonparametric: {
        /**
         * The signal the measures ran on (activity.kind).
         */
        signal: 'activity_count' | 'step_count';
        /**
         * Interdaily stability, within [0, 1] or null: the one-way ANOVA form of Witting's IS, sum over hours of day of n_h (mean_h - mean)^2 over sum over hourly bins of (x - mean)^2, using the hours of day present on at least two days. Equal to is_ggir when every hour of day is present on the same number of days (complete days); null with fewer than two such hours of day or no variance.
         */
        is: number | null;
        /**
         * IS as GGIR g.IVIS computes it (the reference formula). Above 1 is possible when hours are missing; shown for comparison only.
         */
        is_ggir: number | null;
        iv: number | null;
        ra: number | null;
        l5: null | {
            mean: number;
            start: string;
        };
        m10: null | {
            mean: number;
            start: string;
        };
    };
    cosinor: {
        /**
         * The signal the measures ran on (activity.kind).
         */
        signal: 'activity_count' | 'step_count';
        mesor: number | null;
        amplitude: number | null;
        /**
         * Local clock time of the fitted peak, in hours; null when the fit peaks in a clock hour without activity on any day (a cosine fitted to part of the day can peak where nothing was measured).
         */
        acrophase_hours: number | null;
    };
    sleep: {
        /**
         * null for step data (not scored).
         */
        cole_kripke: {
            sleep_minutes: number;
        } | null;
        /**
         * null for step data (not scored).
         */
        sadeh: {
            sleep_minutes: number;
        } | null;
        periods: {
            in_bed: string;
            out_bed: string;
            total_sleep_minutes: number;
            waso_minutes: number;
            efficiency_pct: number;
            awakenings: number;
        }[];
        /**
         * One entry per night, in date order. Every night is dated by its morning: the local date (the samples' own UTC offset) of its final wake. Where the user's sleep_stage samples stage a night it is built from them (method stages) and replaces the actigraphy night of that date. Rules: docs/analytics.md, 'Sleep from stages'.
         */
        nights: ({
            date: string;
            method: 'actigraphy';
            /**
             * Minutes scored sleep by Sadeh.
             */
            sadeh_sleep_minutes: number;
            /**
             * Minutes scored sleep by Cole-Kripke.
             */
            cole_kripke_sleep_minutes: number;
            /**
             * Minutes of the 1440-minute window with data.
             */
            minutes_present: number;
        } | {
            /**
             * Local date of the final wake.
             */
            date: string;
            method: 'stages';
            /**
             * The source the night is built from: the one with the most detail (light/deep/REM over unspecified asleep), then the higher device rank (watch over unnamed over phone), then the most staged minutes, then the smaller name.
             */
            source: string;
            /**
             * Every source with a sleep_stage sample in the night, sorted.
             */
            sources: string[];
            /**
             * First minute in bed (asleep, awake or in_bed), with the offset of the sample holding it.
             */
            bed_start: string;
            /**
             * End of the last minute in bed, with the offset of the sample holding that minute (its end offset when it ends there).
             */
            bed_end: string;
            /**
             * First asleep minute, with the offset of the sample holding it.
             */
            sleep_onset: string;
            /**
             * End of the last asleep minute, with the offset of the sample holding that minute (its end offset when it ends there).
             */
            final_wake: string;
            /**
             * Halfway between sleep_onset and final_wake, with the offset of the sample holding that minute (final_wake's when no sample does).
             */
            midpoint: string;
            /**
             * Recorded minutes in bed: asleep + awake (out_of_bed and unrecorded minutes excluded).
             */
            in_bed_minutes: number;
            /**
             * Light + deep + REM + unspecified.
             */
            asleep_minutes: number;
            /**
             * Awake, or in bed without a stage.
             */
            awake_minutes: number;
            /**
             * Light (HealthKit asleepCore).
             */
            light_minutes: number;
            /**
             * Deep.
             */
            deep_minutes: number;
            /**
             * REM.
             */
            rem_minutes: number;
            /**
             * Asleep, stage not known (asleepUnspecified, SLEEPING).
             */
            unspecified_minutes: number;
            /**
             * Awake minutes before sleep_onset.
             */
            onset_latency_minutes: number;
            /**
             * Wake after sleep onset: recorded minutes between sleep_onset and final_wake that are not asleep, awake in bed and out of bed (a bathroom trip is wakefulness); with contiguous stages final_wake - sleep_onset - asleep_minutes. Unrecorded minutes count nowhere.
             */
            waso_minutes: number;
            /**
             * asleep / in_bed, percent, one decimal.
             */
            efficiency_pct: number;
            /**
             * Changes from asleep to awake or out of bed between sleep_onset and final_wake.
             */
            awakenings: number;
        })[];
        /**
         * Why actigraphy sleep (Cole-Kripke, Sadeh, Tudor-Locke periods, actigraphy nights) was not scored: step data (a minute without steps is not a minute of sleep). null when it was scored (activity counts).
         */
        actigraphy_reason: string | null;
    };
    /**
     * Present when delivered as a stream event (always, for new documents).
     */
    stream?: 'analyses' | 'insights';
    /**
     * Position in the owner's stream: one more than the previous event's. Resume with subscribe since=<last offset seen>.
     */
    offset?: number;
    /**
     * The analysis this one replaces (samples it used were edited or deleted).
     */
    supersedes?: string;
    /**
     * REST listings only: the analysis that replaces this one (nil UUID: withdrawn, nothing replaces it). Absent on a current one and on stream events.
     */
    superseded_by?: string;
}
