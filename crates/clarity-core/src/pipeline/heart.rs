//! The heart part of an analysis: the week's heart samples read from the store, digested into
//! the analysis id, and run through [`analytics::heart`].
//!
//! Rules:
//! - The range is the analysed week before it is trimmed to the activity data: `[to - 7 days,
//!   to)`, so a night or readings after the last step still count. Samples are selected by
//!   their start; sleep stages from a day earlier, so that the first night is whole.
//! - Kinds are looked up by name: a kind this build does not know (`workout`,
//!   `heart_rate_variability_rmssd`, `resting_heart_rate` before they land) is simply not read.
//! - Nights (a stand-in until the stage nights of `analytics::stages` are merged): the
//!   `sleep_stage` samples sorted by start, a new night after a gap of [`NIGHT_GAP_MS`] or more
//!   between one sample's end and the next's start; dated by the local date of its last end
//!   (that sample's offset); its asleep intervals are the samples whose stage is asleep
//!   (light, deep, REM, unspecified). Overlapping sources are merged, not ranked. Nights that
//!   end before the range are dropped.

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::analytics::heart::{AsleepNight, Heart, HeartInput, Reading, heart, local_date};
use crate::samples::{Kind, Sample, SleepStage};
use crate::store::{SampleQuery, Store, StoreResult};

/// A gap between stage samples this long starts a new night.
pub const NIGHT_GAP_MS: i64 = 3 * 3_600_000;
const DAY_MS: i64 = 86_400_000;
const PAGE: usize = 10_000;

/// The heart samples of one analysis, by kind.
#[derive(Debug, Default)]
pub struct HeartSamples {
    from_ms: i64,
    heart_rate: Vec<Sample>,
    hrv_sdnn: Vec<Sample>,
    hrv_rmssd: Vec<Sample>,
    respiratory_rate: Vec<Sample>,
    spo2: Vec<Sample>,
    resting: Vec<Sample>,
    workouts: Vec<Sample>,
    stages: Vec<Sample>,
}

/// Every sample of `kind` starting in `[from, to)` (UTC ms), page by page.
pub(super) async fn read_kind(
    store: &dyn Store,
    user: Uuid,
    kind: Option<Kind>,
    (from, to): (i64, i64),
) -> StoreResult<Vec<Sample>> {
    let Some(kind) = kind else {
        return Ok(Vec::new());
    };
    let mut q = SampleQuery {
        kind: Some(kind),
        from_ms: Some(from),
        to_ms: Some(to),
        after: None,
        limit: PAGE,
    };
    let mut out = Vec::new();
    loop {
        let page = store.query_samples(user, q.clone()).await?;
        out.extend(page.samples);
        match page.next {
            Some(c) => q.after = Some(c),
            None => return Ok(out),
        }
    }
}

/// Reads `user`'s heart samples starting in `[from, to)` (UTC ms).
pub async fn read(
    store: &dyn Store,
    user: Uuid,
    (from, to): (i64, i64),
) -> StoreResult<HeartSamples> {
    let range = (from, to);
    let k = |name: &str| Kind::parse(name);
    Ok(HeartSamples {
        from_ms: from,
        heart_rate: read_kind(store, user, Some(Kind::HeartRate), range).await?,
        hrv_sdnn: read_kind(store, user, Some(Kind::HeartRateVariability), range).await?,
        hrv_rmssd: read_kind(store, user, k("heart_rate_variability_rmssd"), range).await?,
        respiratory_rate: read_kind(store, user, Some(Kind::RespiratoryRate), range).await?,
        spo2: read_kind(store, user, Some(Kind::OxygenSaturation), range).await?,
        resting: read_kind(store, user, k("resting_heart_rate"), range).await?,
        workouts: read_kind(store, user, k("workout"), range).await?,
        stages: read_kind(store, user, Some(Kind::SleepStage), (from - DAY_MS, to)).await?,
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
        })
        .collect()
}

/// Nights from `sleep_stage` samples (see the module's rules).
pub fn asleep_nights(stages: &[Sample], from_ms: i64) -> Vec<AsleepNight> {
    let mut sorted: Vec<&Sample> = stages.iter().collect();
    sorted.sort_by_key(|s| (s.start.utc_ms, s.end.map(|e| e.utc_ms)));
    let mut nights = Vec::new();
    let mut current: Vec<(i64, i64)> = Vec::new();
    let mut last_end: Option<crate::samples::Timestamp> = None;
    let mut close = |intervals: &mut Vec<(i64, i64)>, end: Option<crate::samples::Timestamp>| {
        let date: Option<NaiveDate> = end
            .filter(|e| e.utc_ms > from_ms)
            .and_then(|e| local_date(e.utc_ms, e.offset_secs));
        if let Some(date) = date.filter(|_| !intervals.is_empty()) {
            nights.push(AsleepNight {
                date,
                intervals: std::mem::take(intervals),
            });
        }
        intervals.clear();
    };
    for s in sorted {
        let Some(end) = s.end else {
            continue;
        };
        if let Some(prev) = last_end
            && s.start.utc_ms - prev.utc_ms >= NIGHT_GAP_MS
        {
            close(&mut current, last_end);
            last_end = None;
        }
        if SleepStage::from_code(s.value).is_some_and(SleepStage::is_asleep) {
            current.push((s.start.utc_ms, end.utc_ms));
        }
        if last_end.is_none_or(|p| end.utc_ms >= p.utc_ms) {
            last_end = Some(end);
        }
    }
    close(&mut current, last_end);
    nights
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
            &self.stages,
        ] {
            digest_samples(h, kind);
        }
    }

    /// Runs the heart analytics (pure CPU work: call it off the async runtime).
    pub fn analyze(&self) -> Heart {
        let nights = asleep_nights(&self.stages, self.from_ms);
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
            nights: &nights,
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
    use crate::samples::Timestamp;

    fn stage(start: &str, end: &str, stage: SleepStage) -> Sample {
        Sample {
            id: start.into(),
            kind: Kind::SleepStage,
            start: Timestamp::parse(start).unwrap(),
            end: Timestamp::parse(end),
            value: f64::from(stage as u8),
            source: None,
            extra: None,
        }
    }

    #[test]
    fn stage_samples_make_nights_dated_by_the_final_wake() {
        let stages = [
            stage(
                "2026-03-01T23:00:00+01:00",
                "2026-03-02T01:00:00+01:00",
                SleepStage::Light,
            ),
            stage(
                "2026-03-02T01:00:00+01:00",
                "2026-03-02T01:20:00+01:00",
                SleepStage::Awake,
            ),
            stage(
                "2026-03-02T01:20:00+01:00",
                "2026-03-02T06:40:00+01:00",
                SleepStage::Deep,
            ),
            // Next night, after a day's gap.
            stage(
                "2026-03-02T23:30:00+01:00",
                "2026-03-03T07:00:00+01:00",
                SleepStage::Asleep,
            ),
        ];
        let t = |s: &str| Timestamp::parse(s).unwrap().utc_ms;
        let nights = asleep_nights(&stages, 0);
        assert_eq!(nights.len(), 2, "{nights:?}");
        assert_eq!(nights[0].date.to_string(), "2026-03-02");
        assert_eq!(
            nights[0].intervals,
            vec![
                (
                    t("2026-03-01T23:00:00+01:00"),
                    t("2026-03-02T01:00:00+01:00")
                ),
                (
                    t("2026-03-02T01:20:00+01:00"),
                    t("2026-03-02T06:40:00+01:00")
                ),
            ]
        );
        assert_eq!(nights[1].date.to_string(), "2026-03-03");
        // A range starting after the first night's end drops it.
        let later = asleep_nights(&stages, t("2026-03-02T12:00:00+01:00"));
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].date.to_string(), "2026-03-03");
    }
}
