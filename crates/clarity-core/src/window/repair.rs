//! Repairing a window after an edit or deletion: only the hours the changed samples covered.
//!
//! A rebuild reads the user's whole week from the store; a phone that re-sends a few samples
//! with a higher version, or deletes one, changes an hour or two. Reading the week for each
//! such frame cost ingest with 10% upserts and 1% deletes ~6x the CPU per sample
//! (BENCHMARKS.md, "Ingest with edits").
//!
//! Rules:
//! - The changed spans (the old versions' times and the new ones') are widened to whole UTC
//!   hours, because the step coverage marks are per hour, and merged. Each range's minutes
//!   and hour marks are cleared and refilled from every stored sample overlapping it,
//!   clipped to it, so the range holds what a rebuild would put there: the winning source
//!   per minute, a source's own samples summed, the hours each source recorded.
//! - A stored sample may span up to a day ([`Kind::max_duration_ms`]), so the ranges are
//!   read in one query, from a day before the first one to the end of the last.
//! - The rest of the window is left as it is, including what describes the sources rather
//!   than the minutes: the source list, which sources are step counters (a phone stays one
//!   when a phantom step sample is deleted) and the activity kind. A rebuild (the next
//!   session on another node, a restart) recomputes those.
//! - The repair takes the window's place of a rebuild while the store is read: samples
//!   stored meanwhile are held and applied after it, skipping ids it read; a rebuild or edit
//!   that starts meanwhile waits for it or marks it stale, exactly as with a rebuild.
//! - Falls back to the rebuild when the window has not been read in yet, when a rebuild or
//!   repair is already running, or when the ranges spread over more than [`MAX_HOURS`].
//!
//! [`Kind::max_duration_ms`]: crate::samples::Kind::max_duration_ms

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;

use super::{Applied, REBUILD_PAGE, UserWindow, WINDOW_MINUTES, Windows, add_batch, add_in};
use crate::samples::{Sample, merge_spans};
use crate::store::{SampleQuery, Store, StoreResult, all_samples};

/// From the first changed hour to the last: above this a repair would read (with the day
/// before) more than half of what a rebuild does.
const MAX_HOURS: i64 = 72;
/// How far before a range a sample overlapping it may start: the longest span a kind allows.
const LOOKBACK_MS: i64 = 24 * 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// UTC minutes `[from, to)`, whole hours.
type Range = (i64, i64);

impl Windows {
    /// Brings `user`'s window in line with the store after the samples over `spans` (UTC ms,
    /// `[start, end]`) were replaced or removed, then applies `batch` (the samples the same
    /// write inserted) once. Returns what the batch (and samples held meanwhile) completed.
    pub async fn repair(
        &self,
        store: &dyn Store,
        user: Uuid,
        batch: &[Sample],
        spans: &[(i64, i64)],
    ) -> StoreResult<Applied> {
        let Some((window, ranges)) = self.begin_repair(user, spans) else {
            self.mark_stale(user);
            return self.ensure_with(store, user, batch).await;
        };
        // One read for all the ranges: a frame's edits are often scattered over the last
        // hours, and a read per range would read the day before each of them again.
        let loaded = match (ranges.first(), ranges.last()) {
            (Some(&(first, _)), Some(&(_, last))) => {
                let query = SampleQuery {
                    kind: None,
                    from_ms: Some(first * MINUTE_MS - LOOKBACK_MS),
                    to_ms: Some(last * MINUTE_MS),
                    after: None,
                    limit: REBUILD_PAGE,
                };
                all_samples(store, user, query).await
            }
            _ => Ok(Vec::new()),
        };
        let mut st = window.state.lock().expect("window lock poisoned");
        let held = st.held.take().unwrap_or_default();
        let mut applied = Applied::default();
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                // The old values are still in the window: the next ensure rebuilds it. What
                // arrived meanwhile is applied now, as a failed rebuild does.
                st.stale_again = false;
                add_batch(&mut st, held.iter().chain(batch), &mut applied);
                drop(st);
                window.rebuilt.send_replace(true);
                return Err(e);
            }
        };
        let skip: HashSet<&str> = batch
            .iter()
            .chain(held.iter())
            .map(|s| s.id.as_str())
            .collect();
        // Old samples being put back: the days they complete are not news.
        let mut ignored = Applied::default();
        for &(from, to) in &ranges {
            st.series.clear(from, to);
            let overlapping = loaded.iter().filter(|s| {
                let (start, end) = s.span();
                start < to * MINUTE_MS
                    && (end > from * MINUTE_MS || start >= from * MINUTE_MS)
                    && !skip.contains(s.id.as_str())
            });
            for s in overlapping {
                add_in(&mut st, s, Some((from, to)), &mut ignored);
            }
        }
        st.version += 1;
        add_batch(&mut st, held.iter(), &mut applied);
        add_batch(&mut st, batch.iter(), &mut applied);
        st.rebuilt = !std::mem::take(&mut st.stale_again);
        drop(st);
        window.rebuilt.send_replace(true);
        self.repaired
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(applied)
    }

    /// Takes the window for a repair of `spans`, or `None` where a rebuild must do.
    fn begin_repair(
        &self,
        user: Uuid,
        spans: &[(i64, i64)],
    ) -> Option<(Arc<UserWindow>, Vec<Range>)> {
        let window = self.get(user)?;
        let mut st = window.state.lock().expect("window lock poisoned");
        let end = st.series.end_minute()?;
        if !st.rebuilt || st.held.is_some() {
            return None;
        }
        // Ranges wholly before the window's first minute hold nothing of it.
        let ranges: Vec<Range> = hour_ranges(spans)
            .into_iter()
            .filter(|&(_, to)| to > end - WINDOW_MINUTES as i64)
            .collect();
        let hours = match (ranges.first(), ranges.last()) {
            (Some((first, _)), Some((_, last))) => (last - first) / 60,
            _ => 0,
        };
        if hours > MAX_HOURS {
            return None;
        }
        // From here on the window is being read, as in a rebuild: ingest holds its samples
        // back, an ensure waits, an edit marks it stale.
        st.held = Some(Vec::new());
        st.rebuilt = false;
        st.touched = Instant::now();
        drop(st);
        window.rebuilt.send_replace(false);
        Some((window, ranges))
    }
}

/// `spans` (UTC ms, `[start, end]`, an interval's end exclusive) as sorted, disjoint ranges
/// of whole UTC hours, in minutes `[from, to)`.
fn hour_ranges(spans: &[(i64, i64)]) -> Vec<Range> {
    const HOUR_MS: i64 = 3_600_000;
    let hours: Vec<(i64, i64)> = spans
        .iter()
        .map(|&(start, end)| {
            let last = if end > start { end - 1 } else { start };
            (start.div_euclid(HOUR_MS), last.div_euclid(HOUR_MS) + 1)
        })
        .collect();
    // Touching hours join too: `merge_spans` joins spans that share an end point.
    merge_spans(hours)
        .into_iter()
        .map(|(from, to)| (from * 60, to * 60))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::hour_ranges;

    const H: i64 = 3_600_000;

    #[test]
    fn spans_become_merged_whole_hours() {
        assert_eq!(hour_ranges(&[]), vec![]);
        // An instant: its hour. An interval ending on the hour: not the next one.
        assert_eq!(hour_ranges(&[(5 * H + 7, 5 * H + 7)]), vec![(300, 360)]);
        assert_eq!(hour_ranges(&[(5 * H, 7 * H)]), vec![(300, 420)]);
        // Overlapping and touching spans merge; a gap of an hour keeps two ranges.
        assert_eq!(
            hour_ranges(&[
                (9 * H, 9 * H + 1),
                (5 * H, 6 * H),
                (6 * H, 6 * H + 30),
                (8 * H, 8 * H)
            ]),
            vec![(300, 420), (480, 600)]
        );
    }
}
