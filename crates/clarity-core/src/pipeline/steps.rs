//! The per-day steps of an analysis (`activity.days[]`): the analysed range's `step_count`
//! samples read from the store, digested into the analysis id, and run through
//! [`analytics::steps`].
//!
//! Rules:
//! - The window holds minutes, not the samples' own offsets, so the days are built from the
//!   stored samples: those starting in `[from - 1 day, to)` (an interval that began before the
//!   range still spreads into it), counted only in the analysed minutes `[from, to)`.
//! - Read whatever the window's activity is: a user whose minutes are activity counts still
//!   sees the step totals their phone sent (the window drops steps once counts arrive).
//! - The samples are part of the analysis id (a digest of the input); with none, nothing is
//!   added, so ids of data without steps are unchanged.

use sha2::Sha256;
use uuid::Uuid;

use super::heart::{digest_samples, read_kind};
use crate::analytics::steps::{StepDay, StepSample, step_days};
use crate::samples::{Kind, Sample};
use crate::store::{Store, StoreResult};

const DAY_MS: i64 = 86_400_000;

/// The step samples of one analysis and the range whose minutes count.
#[derive(Debug, Default)]
pub struct StepSamples {
    range: (i64, i64),
    samples: Vec<Sample>,
}

/// Reads `user`'s step samples for the analysed range `[from, to)` (UTC ms).
pub async fn read(
    store: &dyn Store,
    user: Uuid,
    (from, to): (i64, i64),
) -> StoreResult<StepSamples> {
    Ok(StepSamples {
        range: (from, to),
        samples: read_kind(store, user, Kind::StepCount, (from - DAY_MS, to)).await?,
    })
}

impl StepSamples {
    /// Feeds every sample into the analysis id.
    pub fn digest(&self, h: &mut Sha256) {
        digest_samples(h, &self.samples);
    }

    /// Each sample's start minute (UTC) and UTC offset in minutes: where the user's clock
    /// changed (`analytics::clock`).
    pub fn clock_changes(&self) -> Vec<(i64, i32)> {
        self.samples
            .iter()
            .map(|s| (s.start.utc_ms.div_euclid(60_000), s.start.offset_secs / 60))
            .collect()
    }

    /// Steps per local day (pure CPU work: call it off the async runtime).
    pub fn analyze(&self) -> Vec<StepDay> {
        let samples: Vec<StepSample<'_>> = self
            .samples
            .iter()
            .map(|s| StepSample {
                start_ms: s.start.utc_ms,
                end_ms: s.end.map(|e| e.utc_ms),
                offset_secs: s.start.offset_secs,
                value: s.value,
                source: s.source.as_deref(),
                manual: s.is_manual(),
            })
            .collect();
        step_days(&samples, self.range)
    }
}
