//! Per-user live windows: the last week of minute bins of every active user.
//!
//! Rules:
//! - Filled from stored samples only (after the store said they were new), by WebSocket and
//!   REST ingest alike, so a duplicate never counts twice.
//! - Samples of every kind reach an existing window (and a rebuild reads every kind): activity
//!   and heart rate fill minutes, and any sample marks its source's hours as recording, which
//!   is what the step coverage rule needs (see [`series`]). Only activity or heart rate create
//!   a window.
//! - A window is rebuilt from the store when a user's first session opens (after a restart,
//!   or on another node): at most the 7 days before now are read. Samples stored while the
//!   rebuild runs are held back and applied after it, skipping ids the rebuild already saw.
//! - Locks are held for in-memory work only, never across an `.await`.
//! - An edit or deletion repairs only the hours it touched ([`repair`]), unless that is more
//!   than a rebuild would read.
//! - A window marked stale while a rebuild runs (an edit or deletion was stored meanwhile:
//!   that read may have seen the old values) is read again by the next [`Windows::ensure`],
//!   and a caller waiting for that rebuild reads it again itself.
//! - A day completes when a sample's local date (from its UTC offset) passes the previous
//!   one; that is what triggers the daily analysis. Activity that arrives later for a day
//!   already complete (late data) makes that day's analysis due again.
//! - Batches are applied in the order their client sent them (the session chains them, see
//!   `ingest::Turn`), so a day is complete only once every batch sent before is in.
//! - Windows of users without sessions or new data for `idle` are dropped by [`Windows::sweep`].
//! - A sample reaching more than 24 h past now, or spanning more than its kind allows, never
//!   moves a window (it may have been stored before validation refused such samples): one
//!   bad sample must not push a user's week out of reach of every analysis.

pub mod coverage;
pub mod ownership;
mod repair;
pub mod series;
pub mod service;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use dashmap::DashMap;
use uuid::Uuid;

use crate::samples::{Kind, Sample};
use crate::store::{SampleQuery, Store, StoreResult, all_samples};
pub use series::{ActivityKind, Coverage, Series, WINDOW_MINUTES};

/// Kinds whose values fill a window's minutes. Every other kind still reaches the window: it
/// marks its source's hours as recording (the step coverage rule in [`series`]).
pub const WINDOW_KINDS: [Kind; 3] = [Kind::ActivityCount, Kind::StepCount, Kind::HeartRate];

/// Page size of a rebuild read.
const REBUILD_PAGE: usize = 10_000;
/// How far ahead of the clock a sample may reach and still count (clock skew; validation
/// allows the same).
const MAX_AHEAD_MS: i64 = 24 * 3_600_000;

pub struct UserWindow {
    state: Mutex<State>,
    /// Becomes `true` when the first rebuild has finished (or failed), for callers that must
    /// not analyse a half-read window.
    rebuilt: tokio::sync::watch::Sender<bool>,
}

struct State {
    series: Series,
    /// `Some` while a rebuild runs: samples stored meanwhile, applied once it is done.
    held: Option<Vec<Sample>>,
    /// Local date of the latest minute seen.
    day: Option<NaiveDate>,
    /// Bumped by every change; an analysis records the version it saw.
    version: u64,
    /// Whether the store's last week has been read in.
    rebuilt: bool,
    /// Marked stale while a rebuild ran: that rebuild does not count.
    stale_again: bool,
    touched: Instant,
}

impl UserWindow {
    /// Runs `f` on the series; the lock covers in-memory work only.
    pub fn with<T>(&self, f: impl FnOnce(&Series, u64) -> T) -> T {
        let st = self.state.lock().expect("window lock poisoned");
        f(&st.series, st.version)
    }
}

/// Every live window of this node.
#[derive(Default)]
pub struct Windows {
    map: DashMap<Uuid, Arc<UserWindow>>,
    /// Edits repaired in place (see [`repair`]); the others were rebuilt.
    repaired: std::sync::atomic::AtomicU64,
}

/// What an ingest did to a window.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Local midnights passed by the new data (the days before them are complete).
    pub completed_days: Vec<NaiveDate>,
    /// Local dates of days that were already complete before this data and got activity
    /// now (late data): each is analysed again. Distinct, at most one per day of the window.
    pub late_days: Vec<NaiveDate>,
}

impl Applied {
    /// The ends (local midnights) of the day analyses this data makes due: the last day it
    /// completed, and every complete day it added activity to.
    pub fn due_days(&self) -> Vec<NaiveDate> {
        let mut due: Vec<NaiveDate> = self.late_days.iter().filter_map(|d| d.succ_opt()).collect();
        due.extend(self.completed_days.last().copied());
        due.sort_unstable();
        due.dedup();
        due
    }
}

impl Windows {
    /// How many edits were repaired in place so far (the others rebuilt the window).
    pub fn repaired(&self) -> u64 {
        self.repaired.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn get(&self, user: Uuid) -> Option<Arc<UserWindow>> {
        self.map.get(&user).map(|w| w.clone())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes held by all windows.
    pub fn memory_bytes(&self) -> usize {
        self.map
            .iter()
            .map(|w| w.with(|s, _| s.memory_bytes()))
            .sum()
    }

    /// Applies newly stored samples; creates the window if the user has none and the batch
    /// holds activity or heart rate (other kinds only mark hours of a window that exists: a
    /// user who sends only, say, body temperature costs no window).
    pub fn apply(&self, user: Uuid, samples: &[Sample]) -> Applied {
        let window = match self.get(user) {
            Some(w) if !samples.is_empty() => w,
            None if samples.iter().any(|s| WINDOW_KINDS.contains(&s.kind)) => self.entry(user),
            _ => return Applied::default(),
        };
        let mut st = window.state.lock().expect("window lock poisoned");
        st.touched = Instant::now();
        if let Some(held) = &mut st.held {
            held.extend(samples.iter().cloned());
            return Applied::default();
        }
        let mut applied = Applied::default();
        add_batch(&mut st, samples.iter(), &mut applied);
        applied
    }

    fn entry(&self, user: Uuid) -> Arc<UserWindow> {
        self.map
            .entry(user)
            .or_insert_with(|| {
                Arc::new(UserWindow {
                    rebuilt: tokio::sync::watch::Sender::new(false),
                    state: Mutex::new(State {
                        series: Series::new(),
                        held: None,
                        day: None,
                        version: 0,
                        rebuilt: false,
                        stale_again: false,
                        touched: Instant::now(),
                    }),
                })
            })
            .clone()
    }

    /// Forgets `user`'s window (another node owns it now).
    pub fn remove(&self, user: Uuid) {
        self.map.remove(&user);
    }

    /// Makes the next [`Windows::ensure`] read the store again: this node just became the
    /// owner, or may have missed forwarded samples.
    pub fn mark_stale(&self, user: Uuid) {
        if let Some(w) = self.get(user) {
            let mut st = w.state.lock().expect("window lock poisoned");
            if st.held.is_some() {
                st.stale_again = true;
            } else if st.rebuilt {
                st.rebuilt = false;
                w.rebuilt.send_replace(false);
            }
        }
    }

    /// Makes sure `user`'s window holds what the store has of the last 7 days, rebuilding it
    /// once per window (a window created by ingest alone has only what arrived since).
    /// Returns what the samples that arrived during the rebuild did (their analyses are due).
    pub async fn ensure(&self, store: &dyn Store, user: Uuid) -> StoreResult<Applied> {
        self.ensure_with(store, user, &[]).await
    }

    /// [`Windows::ensure`], then applies `batch` (stored samples the store read may or may not
    /// see) exactly once. Returns the days the batch completed, so that a node that just took
    /// a window over still starts the analysis its first batch is due.
    pub async fn ensure_with(
        &self,
        store: &dyn Store,
        user: Uuid,
        batch: &[Sample],
    ) -> StoreResult<Applied> {
        let mut applied = self.ensure_once(store, user, batch).await?;
        // A rebuild that was marked stale while it ran (ours or the one we waited for) does
        // not count: read again. The batch is in the window already.
        for _ in 0..8 {
            let again = self
                .get(user)
                .is_some_and(|w| !w.state.lock().expect("window lock poisoned").rebuilt);
            if !again {
                break;
            }
            let more = self.ensure_once(store, user, &[]).await?;
            applied.completed_days.extend(more.completed_days);
            applied.late_days.extend(more.late_days);
        }
        Ok(applied)
    }

    async fn ensure_once(
        &self,
        store: &dyn Store,
        user: Uuid,
        batch: &[Sample],
    ) -> StoreResult<Applied> {
        let batch: Vec<&Sample> = batch.iter().collect();
        let window = self.entry(user);
        enum Next {
            Done(Applied),
            Wait,
            Read((i64, i64)),
        }
        let next = {
            let mut st = window.state.lock().expect("window lock poisoned");
            st.touched = Instant::now();
            if st.rebuilt {
                let mut applied = Applied::default();
                add_batch(&mut st, batch.iter().copied(), &mut applied);
                Next::Done(applied)
            } else if let Some(held) = &mut st.held {
                // Another task is reading the store: the batch joins what arrives meanwhile,
                // which that rebuild applies after what it read, skipping ids it saw.
                held.extend(batch.iter().map(|s| (*s).clone()));
                Next::Wait
            } else {
                st.held = Some(Vec::new());
                // What ingest already put here lies in the window's own week (event time,
                // maybe long ago); an empty window reads the week before now.
                let week = WINDOW_MINUTES as i64 * 60_000;
                Next::Read(match st.series.end_minute() {
                    Some(end) => (end * 60_000 - week, end * 60_000),
                    None => {
                        let now = Utc::now().timestamp_millis();
                        (now - week, now + 24 * 3_600_000)
                    }
                })
            }
        };
        let range = match next {
            Next::Done(applied) => return Ok(applied),
            Next::Wait => {
                let mut rx = window.rebuilt.subscribe();
                let _ = rx.wait_for(|done| *done).await;
                return Ok(Applied::default());
            }
            Next::Read(range) => range,
        };
        let loaded = read_week(store, user, range).await;
        let mut st = window.state.lock().expect("window lock poisoned");
        let held = st.held.take().unwrap_or_default();
        let mut ignored = Applied::default();
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                // Keep what arrived live; the next session open retries the rebuild.
                for s in held.iter().chain(batch.iter().copied()) {
                    add(&mut st, s, &mut ignored);
                }
                drop(st);
                window.rebuilt.send_replace(true);
                return Err(e);
            }
        };
        // Everything applied before is in the store and in the range read: start afresh.
        st.series = Series::new();
        st.day = None;
        st.rebuilt = !std::mem::take(&mut st.stale_again);
        // What arrived while the store was read (held) and the batch go last, as if they had
        // arrived after the rebuild, in arrival order: the days they complete (and the late
        // data they bring) count. The read may have seen them too; they are applied once.
        let skip: HashSet<&str> = batch
            .iter()
            .map(|s| s.id.as_str())
            .chain(held.iter().map(|s| s.id.as_str()))
            .collect();
        for s in loaded.iter().filter(|s| !skip.contains(s.id.as_str())) {
            add(&mut st, s, &mut ignored);
        }
        let mut applied = Applied::default();
        add_batch(&mut st, held.iter(), &mut applied);
        add_batch(&mut st, batch.iter().copied(), &mut applied);
        drop(st);
        window.rebuilt.send_replace(true);
        Ok(applied)
    }

    /// Drops windows untouched for `idle` whose user has no live session.
    pub fn sweep(&self, idle: Duration, has_session: impl Fn(Uuid) -> bool) -> usize {
        let before = self.map.len();
        self.map.retain(|user, w| {
            let st = w.state.lock().expect("window lock poisoned");
            st.held.is_some() || st.touched.elapsed() < idle || has_session(*user)
        });
        before - self.map.len()
    }
}

/// Adds newly arrived samples in order. Activity for a day that was complete before them
/// (its local date before the latest date seen) is late data: that day is due again.
fn add_batch<'a>(st: &mut State, samples: impl Iterator<Item = &'a Sample>, applied: &mut Applied) {
    let Some(before) = st.day else {
        for s in samples {
            add(st, s, applied);
        }
        return;
    };
    for s in samples {
        add(st, s, applied);
        let activity = match s.kind {
            Kind::ActivityCount => true,
            // Steps stand in only while there are no activity counts.
            Kind::StepCount => st.series.activity_kind() == Some(ActivityKind::StepCount),
            _ => false,
        };
        if !activity {
            continue;
        }
        let (Some(end), first) = (st.series.end_minute(), s.start.utc_ms.div_euclid(60_000)) else {
            continue;
        };
        if first < end - WINDOW_MINUTES as i64 {
            // Older than the window: stored only, no analysis can see it.
            continue;
        }
        let offset = i64::from(st.series.offset_secs());
        let Some(date) =
            DateTime::<Utc>::from_timestamp(first * 60 + offset, 0).map(|t| t.date_naive())
        else {
            continue;
        };
        if date < before && !applied.late_days.contains(&date) {
            applied.late_days.push(date);
        }
    }
}

/// Whether a stored sample may move a window: its times lie at most [`MAX_AHEAD_MS`] ahead of
/// now and its span within its kind's maximum. Validation refuses anything else today; this
/// keeps samples stored before it did (or by a node with a wrong clock) from pushing a
/// user's window years ahead, where no analysis would find data.
fn plausible(sample: &Sample, now_ms: i64) -> bool {
    let end = sample.end.map_or(sample.start.utc_ms, |e| e.utc_ms);
    end <= now_ms + MAX_AHEAD_MS
        && sample.start.utc_ms <= now_ms + MAX_AHEAD_MS
        && end - sample.start.utc_ms <= sample.kind.max_duration_ms()
}

fn add(st: &mut State, sample: &Sample, applied: &mut Applied) {
    add_in(st, sample, None, applied);
}

/// [`add`], of only the minutes `clip` (see [`Series::add_clipped`]) when given.
fn add_in(st: &mut State, sample: &Sample, clip: Option<(i64, i64)>, applied: &mut Applied) {
    if !plausible(sample, Utc::now().timestamp_millis()) {
        return;
    }
    match clip {
        None => st.series.add(sample),
        Some((from, to)) => st.series.add_clipped(sample, from, to),
    }
    st.version += 1;
    let Some(end) = st.series.end_minute() else {
        return;
    };
    let offset = i64::from(st.series.offset_secs());
    let day = DateTime::<Utc>::from_timestamp((end - 1) * 60 + offset, 0).map(|t| t.date_naive());
    if let (Some(prev), Some(now)) = (st.day, day)
        && now > prev
    {
        applied.completed_days.push(now);
    }
    if day > st.day {
        st.day = day;
    }
}

/// A series of every stored sample of `user` starting in `[from, to)` (UTC ms), as a rebuild
/// would make it: what a recomputation after an edit or deletion analyses, whatever this
/// node's window holds.
pub async fn read_series(store: &dyn Store, user: Uuid, range: (i64, i64)) -> StoreResult<Series> {
    let samples = read_week(store, user, range).await?;
    let now = Utc::now().timestamp_millis();
    let mut series = Series::new();
    for s in samples.iter().filter(|s| plausible(s, now)) {
        series.add(s);
    }
    Ok(series)
}

/// Every sample starting in `[from, to)` (UTC ms): at most a week and a day. All kinds, since
/// any sample marks its source's hours as recording.
async fn read_week(
    store: &dyn Store,
    user: Uuid,
    (from, to): (i64, i64),
) -> StoreResult<Vec<Sample>> {
    let query = SampleQuery {
        kind: None,
        from_ms: Some(from),
        to_ms: Some(to),
        after: None,
        limit: REBUILD_PAGE,
    };
    all_samples(store, user, query).await
}

#[cfg(test)]
mod repair_tests;
#[cfg(test)]
mod steps_tests;
#[cfg(test)]
mod tests;
