//! Analyses of imported history: at the end of an import, one analysis per imported week.
//!
//! Rules:
//! - Weeks are whole local days: the last ends at the local midnight after the latest
//!   imported sample (in that sample's UTC offset), each earlier one 7 days before, back to
//!   the week holding the earliest imported sample. Never one per day: a history of years is
//!   analysed once per week, not once per completed day.
//! - Each week is read from the store (not the window, which holds only the latest week) and
//!   analysed like any analysis (trigger `import`, id a digest of the input: re-importing
//!   the same data stores nothing new). A week without activity has no analysis.
//! - Weeks are computed oldest first, [`CONCURRENCY`] at a time (each also waits for the
//!   pipeline's analysis permits), and new analyses are delivered on the analyses stream in
//!   week order.
//! - Only the latest week's analysis gets an insight (when it is new): one model call per
//!   import, about the user's most recent data; older weeks' analyses have none.

use std::sync::Arc;

use futures_util::StreamExt;
use uuid::Uuid;

use super::Pipeline;
use super::analysis::{self, AnalysisError, Trigger};
use crate::store::DocKind;
use crate::window::WINDOW_MINUTES;

/// Weeks analysed at once.
pub const CONCURRENCY: usize = 2;

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = WINDOW_MINUTES as i64 * 60_000;

/// What an import stored, for choosing its weeks: UTC ms of the earliest and latest sample
/// starts, and the latest sample's UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub earliest_ms: i64,
    pub latest_ms: i64,
    pub latest_offset_secs: i32,
}

/// The ends (exclusive, UTC ms) of the weeks covering `span`, oldest first (see the rules).
pub fn week_ends(span: Span) -> Vec<i64> {
    let off = i64::from(span.latest_offset_secs) * 1000;
    let last = ((span.latest_ms + off).div_euclid(DAY_MS) + 1) * DAY_MS - off;
    let mut ends = Vec::new();
    let mut until = last;
    while until > span.earliest_ms {
        ends.push(until);
        until -= WEEK_MS;
    }
    ends.reverse();
    ends
}

/// Analyses `user`'s weeks covering `span` in the background (see the rules).
pub fn spawn(pipeline: &Arc<Pipeline>, user: Uuid, span: Span) {
    let pipeline2 = pipeline.clone();
    pipeline.sessions.spawn(async move {
        match run(&pipeline2, user, span).await {
            Ok(stored) => tracing::debug!(stored, "imported weeks analysed"),
            Err(e) => tracing::warn!(error = %e, "imported weeks not all analysed"),
        }
    });
}

/// Analyses the weeks and delivers the new analyses; returns how many were new. Stops at the
/// first store failure (what was stored stays; re-running the import completes it).
pub async fn run(pipeline: &Arc<Pipeline>, user: Uuid, span: Span) -> Result<usize, AnalysisError> {
    let ends = week_ends(span);
    let latest = ends.last().copied();
    let mut results = futures_util::stream::iter(ends)
        .map(|until| async move {
            let out = analysis::of_week(pipeline, user, Trigger::Import, until / 60_000).await;
            (until, out)
        })
        .buffered(CONCURRENCY);
    let mut stored = 0;
    while let Some((until, out)) = results.next().await {
        match out {
            Ok((record, true)) => {
                stored += 1;
                pipeline
                    .fanout
                    .deliver(DocKind::Analysis, &record, true)
                    .await;
                if Some(until) == latest {
                    super::insight::spawn(pipeline, user, record);
                }
            }
            Ok((_, false)) | Err(AnalysisError::NoData) => {}
            Err(AnalysisError::Failed(e)) => tracing::error!(error = %e, "analysis failed"),
            Err(e) => return Err(e),
        }
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_end_at_the_local_midnight_after_the_latest_sample_and_cover_the_earliest() {
        // 2024-03-22T22:30:00+01:00 is the latest; 2024-03-08T00:10:00-05:00 the earliest.
        let latest_ms = 1_711_143_000_000;
        let earliest_ms = 1_709_874_600_000;
        let span = Span {
            earliest_ms,
            latest_ms,
            latest_offset_secs: 3600,
        };
        // 2024-03-23T00:00:00+01:00, then a week and two weeks before.
        let last = 1_711_148_400_000;
        assert_eq!(
            week_ends(span),
            vec![last - 2 * WEEK_MS, last - WEEK_MS, last]
        );
        // One sample: one week. A sample at local midnight belongs to the day it starts.
        let one = Span {
            earliest_ms: last,
            latest_ms: last,
            latest_offset_secs: 3600,
        };
        assert_eq!(week_ends(one), vec![last + DAY_MS]);
    }
}
