//! The heart part of an analysis: the week's heart samples read from the store, digested into
//! the analysis id, and run through [`analytics::heart`].
//!
//! Rules:
//! - The range is the analysed week before it is trimmed to the activity data: `[to - 7 days,
//!   to)`, so a night or readings after the last step still count. Samples are selected by
//!   their start.
//! - Kinds are looked up by name: a kind this build does not know is simply not read.
//! - Nights are the sleep section's: the stage nights of the same week (see
//!   [`super::sleep`] and [`crate::analytics::stages`]), each with the asleep minutes of the
//!   one source that won it. Heart rate, resting rate, respiratory rate and SpO2 "while
//!   asleep" are measured over exactly those minutes, so the heart and sleep sections never
//!   disagree about when the user slept. The stage samples are read once, by the sleep part.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::analytics::StageNight;
use crate::analytics::heart::{AsleepNight, Heart, HeartInput, Reading, heart};
use crate::samples::{Kind, Sample};
use crate::store::{SampleQuery, Store, StoreResult, all_samples};

const MINUTE_MS: i64 = 60_000;
const PAGE: usize = 10_000;

/// The heart samples of one analysis, by kind.
#[derive(Debug, Default)]
pub struct HeartSamples {
    heart_rate: Vec<Sample>,
    hrv_sdnn: Vec<Sample>,
    hrv_rmssd: Vec<Sample>,
    respiratory_rate: Vec<Sample>,
    spo2: Vec<Sample>,
    resting: Vec<Sample>,
    workouts: Vec<Sample>,
}

/// Every sample of `kind` starting in `[from, to)` (UTC ms), page by page.
pub(super) async fn read_kind(
    store: &dyn Store,
    user: Uuid,
    kind: Kind,
    (from, to): (i64, i64),
) -> StoreResult<Vec<Sample>> {
    let query = SampleQuery {
        kind: Some(kind),
        from_ms: Some(from),
        to_ms: Some(to),
        after: None,
        limit: PAGE,
    };
    all_samples(store, user, query).await
}

/// Reads `user`'s heart samples starting in `[from, to)` (UTC ms).
pub async fn read(
    store: &dyn Store,
    user: Uuid,
    (from, to): (i64, i64),
) -> StoreResult<HeartSamples> {
    let range = (from, to);
    Ok(HeartSamples {
        heart_rate: read_kind(store, user, Kind::HeartRate, range).await?,
        hrv_sdnn: read_kind(store, user, Kind::HeartRateVariability, range).await?,
        hrv_rmssd: read_kind(store, user, Kind::HeartRateVariabilityRmssd, range).await?,
        respiratory_rate: read_kind(store, user, Kind::RespiratoryRate, range).await?,
        spo2: read_kind(store, user, Kind::OxygenSaturation, range).await?,
        resting: read_kind(store, user, Kind::RestingHeartRate, range).await?,
        workouts: read_kind(store, user, Kind::Workout, range).await?,
    })
}

fn readings(samples: &[Sample]) -> Vec<Reading<'_>> {
    samples
        .iter()
        .map(|s| Reading {
            utc_ms: s.start.utc_ms,
            offset_secs: s.start.offset_secs,
            value: s.value,
            source: s.source.as_deref(),
            manual: s.is_manual(),
        })
        .collect()
}

/// The asleep intervals (UTC ms) of the sleep section's nights, one entry a night.
pub fn asleep_nights(nights: &[StageNight]) -> Vec<AsleepNight> {
    nights
        .iter()
        .map(|n| AsleepNight {
            date: n.date,
            intervals: n
                .asleep_intervals
                .iter()
                .map(|&(a, b)| (a * MINUTE_MS, b * MINUTE_MS))
                .collect(),
        })
        .collect()
}

/// Feeds samples into an analysis id: kind, instants with their offsets, value, source.
pub(super) fn digest_samples(h: &mut Sha256, samples: &[Sample]) {
    for s in samples {
        h.update([s.kind.code()]);
        h.update(s.start.utc_ms.to_le_bytes());
        h.update(s.start.offset_secs.to_le_bytes());
        if let Some(e) = s.end {
            h.update(e.utc_ms.to_le_bytes());
            h.update(e.offset_secs.to_le_bytes());
        }
        h.update(s.value.to_le_bytes());
        h.update(s.source.as_deref().unwrap_or("").as_bytes());
        // Manual entries win their minutes; marked only on them, so ids of other data stay.
        if s.is_manual() {
            h.update([0xFE]);
        }
        h.update([0xFF]);
    }
}

impl HeartSamples {
    /// Feeds every sample into the analysis id, so new heart data gives a new analysis; adds
    /// nothing when there is none (ids of activity-only data are unchanged).
    pub fn digest(&self, h: &mut Sha256) {
        for kind in [
            &self.heart_rate,
            &self.hrv_sdnn,
            &self.hrv_rmssd,
            &self.respiratory_rate,
            &self.spo2,
            &self.resting,
            &self.workouts,
        ] {
            digest_samples(h, kind);
        }
    }

    /// Runs the heart analytics over `nights` (the sleep section's, see [`asleep_nights`]);
    /// pure CPU work: call it off the async runtime.
    pub fn analyze(&self, nights: &[AsleepNight]) -> Heart {
        let workouts: Vec<(i64, i64)> = self
            .workouts
            .iter()
            .filter_map(|w| w.end.map(|e| (w.start.utc_ms, e.utc_ms)))
            .collect();
        let (hr, sdnn, rmssd) = (
            readings(&self.heart_rate),
            readings(&self.hrv_sdnn),
            readings(&self.hrv_rmssd),
        );
        let (rr, spo2, resting) = (
            readings(&self.respiratory_rate),
            readings(&self.spo2),
            readings(&self.resting),
        );
        heart(&HeartInput {
            heart_rate: &hr,
            nights,
            workouts: &workouts,
            hrv_sdnn: &sdnn,
            hrv_rmssd: &rmssd,
            respiratory_rate: &rr,
            spo2: &spo2,
            resting_device: &resting,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::{StageSpan, stage_nights};
    use crate::samples::{SleepStage, Timestamp};

    fn t(s: &str) -> i64 {
        Timestamp::parse(s).unwrap().utc_ms
    }

    fn span(start: &str, end: &str, stage: SleepStage, source: &str) -> StageSpan {
        StageSpan {
            start_ms: t(start),
            end_ms: t(end),
            offset_secs: 3600,
            end_offset_secs: 3600,
            stage,
            source: source.into(),
        }
    }

    fn hr(at: &str, bpm: f64) -> Sample {
        Sample {
            version: None,
            id: at.into(),
            kind: Kind::HeartRate,
            start: Timestamp::parse(at).unwrap(),
            end: None,
            value: bpm,
            source: Some("Apple Watch".into()),
            extra: None,
        }
    }

    #[test]
    fn heart_while_asleep_uses_the_winning_sources_asleep_minutes_only() {
        // The watch stages the night with a 30-minute awakening; a phone app says "asleep"
        // all night, over the watch's awakening. The watch wins (more detail): its awake
        // half hour is not sleep, so its high heart rate is not "asleep".
        let spans = [
            span(
                "2026-03-01T23:00:00+01:00",
                "2026-03-02T02:00:00+01:00",
                SleepStage::Light,
                "Apple Watch",
            ),
            span(
                "2026-03-02T02:00:00+01:00",
                "2026-03-02T02:30:00+01:00",
                SleepStage::Awake,
                "Apple Watch",
            ),
            span(
                "2026-03-02T02:30:00+01:00",
                "2026-03-02T07:00:00+01:00",
                SleepStage::Deep,
                "Apple Watch",
            ),
            span(
                "2026-03-01T22:30:00+01:00",
                "2026-03-02T07:30:00+01:00",
                SleepStage::Asleep,
                "Sleep app",
            ),
        ];
        let nights = stage_nights(&spans, crate::window::series::rank);
        assert_eq!(nights[0].source, "Apple Watch");
        let asleep = asleep_nights(&nights);
        assert_eq!(asleep.len(), 1);
        assert_eq!(asleep[0].date.to_string(), "2026-03-02");
        assert_eq!(
            asleep[0].intervals,
            vec![
                (
                    t("2026-03-01T23:00:00+01:00"),
                    t("2026-03-02T02:00:00+01:00")
                ),
                (
                    t("2026-03-02T02:30:00+01:00"),
                    t("2026-03-02T07:00:00+01:00")
                ),
            ]
        );
        // 50 bpm asleep every 5 minutes from 23:00 to 06:55; 90 bpm while awake at 02:00-02:30
        // (and in the phone app's extra minutes around the watch's night).
        let mut samples = Vec::new();
        for m in (0..(8 * 60)).step_by(5) {
            let at = t("2026-03-01T23:00:30+01:00") + m * MINUTE_MS;
            let awake = (180..210).contains(&m);
            let ts = Timestamp {
                utc_ms: at,
                offset_secs: 3600,
            };
            samples.push(hr(&ts.to_rfc3339(), if awake { 90.0 } else { 50.0 }));
        }
        samples.push(hr("2026-03-01T22:40:30+01:00", 90.0));
        samples.push(hr("2026-03-02T07:10:30+01:00", 90.0));
        let h = HeartSamples {
            heart_rate: samples,
            ..HeartSamples::default()
        };
        let day = h
            .analyze(&asleep)
            .days
            .into_iter()
            .find(|d| d.date.to_string() == "2026-03-02")
            .unwrap();
        assert_eq!(day.asleep_mean_bpm, Some(50.0));
        assert_eq!(day.resting_bpm, Some(50.0));
    }
}
