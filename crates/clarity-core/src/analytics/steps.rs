//! Steps per local day (`activity.days[]`): what a phone or watch step counter adds up to each
//! day, after choosing one source a minute. Pure: no store, no clock.
//!
//! Rules (docs/analytics.md repeats them for users):
//! - **Minutes.** Each `step_count` sample is spread over the UTC minutes it overlaps exactly
//!   as the window spreads it ([`spread`]: in proportion to the overlap, cumulative rounding,
//!   a point sample all in its minute). A minute belongs to one source, never two summed: the
//!   higher [`minute_priority`] (rank watch > unnamed > phone, then the smaller name), the
//!   window's own order, so a day's minutes are the window's minutes and `activity.sources`
//!   adds up over the days. The winner's parts in that minute add up.
//! - **Dates** are local: a minute is dated by the UTC offset of the sample it came from (the
//!   winner's earliest-starting sample in that minute), so dates follow a DST change or a
//!   trip, and a walk across midnight puts each minute on its own day.
//! - **Range.** Only minutes in `[from, to)` count (the analysed window), so a day's total
//!   never includes steps the window has dropped or not reached.
//! - **Days** run from the first to the last date with a step minute, one entry a date; a date
//!   in between without any step minute has `steps` and `step_minutes` `null` (no data is not 0
//!   steps). `step_minutes` counts minutes with steps above 0; `sources` the minutes each
//!   source won that day (a minute won with 0 steps included), most first.
//! - **complete**: the analysed range covers the whole local day (its midnights taken with the
//!   offsets of that day's first and last step minute, or of the last minute before it). The
//!   first and last day of a window are usually partial; `complete` says nothing about whether
//!   the phone was carried all day.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::heart::{SourceMinutes, dates, local_date};
use crate::samples::sources::{UNNAMED_SOURCE, minute_priority, rank, spread_iter};

const MINUTE_MS: i64 = 60_000;

/// One `step_count` sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepSample<'a> {
    pub start_ms: i64,
    /// Exclusive end of an interval; `None` for a point sample.
    pub end_ms: Option<i64>,
    /// The UTC offset the sample was sent with: its local date.
    pub offset_secs: i32,
    pub value: f64,
    pub source: Option<&'a str>,
    /// Typed in by the user: wins its minutes over recorded sources.
    pub manual: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDay {
    pub date: NaiveDate,
    /// Steps of the date after choosing one source a minute; `None` without a step minute.
    pub steps: Option<u64>,
    /// Minutes with steps above 0; `None` without a step minute.
    pub step_minutes: Option<usize>,
    /// The analysed range covers the whole local day.
    pub complete: bool,
    /// Minutes each source won on this date, most first.
    pub sources: Vec<SourceMinutes>,
}

/// The winning source of one UTC minute, its steps, and the offset it is dated by.
struct Cell<'a> {
    source: &'a str,
    manual: bool,
    /// The source's index among the samples' distinct sources: compared per minute instead
    /// of the name.
    source_id: usize,
    steps: u64,
    offset_secs: i32,
}

/// One winner a UTC minute inside `[from_ms, to_ms)`, by minute. The cells are a vector over
/// the range (a week is 10,080 minutes) and each sample's priority is computed once: this runs
/// for every analysis of every user.
fn minutes<'a>(samples: &[StepSample<'a>], (from_ms, to_ms): (i64, i64)) -> Vec<(i64, Cell<'a>)> {
    // The vector spans the samples' minutes inside the range, never more: the analysis reads
    // about eight days, and a range given as "everything" costs only what the samples cover.
    let finite = || samples.iter().filter(|s| s.value.is_finite());
    let first = finite().map(|s| s.start_ms).min().unwrap_or(0);
    let last = finite()
        .map(|s| s.end_ms.unwrap_or(s.start_ms).max(s.start_ms))
        .max()
        .unwrap_or(0);
    let from = from_ms
        .div_euclid(MINUTE_MS)
        .max(first.div_euclid(MINUTE_MS));
    let to = to_ms
        .div_euclid(MINUTE_MS)
        .min(last.div_euclid(MINUTE_MS) + 1);
    let len = usize::try_from(to - from).unwrap_or(0);
    // A compact cell per minute (24 bytes; the source by index): a week's vector is written
    // and read once, so its size is most of the cost.
    #[derive(Clone, Copy)]
    struct Slot {
        /// Index into `names`; `EMPTY` while no sample covers the minute.
        source_id: u32,
        offset_secs: i32,
        steps: u64,
        start_ms: i64,
    }
    const EMPTY: u32 = u32::MAX;
    let mut cells = vec![
        Slot {
            source_id: EMPTY,
            offset_secs: 0,
            steps: 0,
            start_ms: 0,
        };
        len
    ];
    // The distinct sources and each one's priority, ranked once (not once a sample).
    let mut names: Vec<(&'a str, bool)> = Vec::new();
    let mut priorities: Vec<(bool, u8, std::cmp::Reverse<&'a str>)> = Vec::new();
    for s in samples.iter().filter(|s| s.value.is_finite()) {
        let source = s.source.unwrap_or(UNNAMED_SOURCE);
        let source_id = match names.iter().position(|n| *n == (source, s.manual)) {
            Some(i) => i,
            None => {
                names.push((source, s.manual));
                priorities.push(minute_priority(source, s.manual));
                names.len() - 1
            }
        };
        let priority = priorities[source_id];
        let id = u32::try_from(source_id).unwrap_or(EMPTY - 1);
        for (minute, part) in spread_iter(s.start_ms, s.end_ms, s.value) {
            if minute < from || minute >= to {
                continue;
            }
            let slot = &mut cells[(minute - from) as usize];
            let fresh = Slot {
                source_id: id,
                offset_secs: s.offset_secs,
                steps: u64::from(part),
                start_ms: s.start_ms,
            };
            if slot.source_id == EMPTY {
                *slot = fresh;
            } else if slot.source_id == id {
                slot.steps += u64::from(part);
                // The earliest sample dates the minute, whatever the order of arrival.
                if (s.start_ms, s.offset_secs) < (slot.start_ms, slot.offset_secs) {
                    (slot.start_ms, slot.offset_secs) = (s.start_ms, s.offset_secs);
                }
            } else if priority > priorities[slot.source_id as usize] {
                *slot = fresh;
            }
        }
    }
    cells
        .into_iter()
        .enumerate()
        .filter(|(_, c)| c.source_id != EMPTY)
        .map(|(i, c)| {
            let (source, manual) = names[c.source_id as usize];
            let cell = Cell {
                source,
                manual,
                source_id: c.source_id as usize,
                steps: c.steps,
                offset_secs: c.offset_secs,
            };
            (from + i as i64, cell)
        })
        .collect()
}

/// Steps per local day of `samples`, counting the minutes in `range` (UTC ms, `[from, to)`);
/// see the module's rules.
pub fn step_days(samples: &[StepSample<'_>], range: (i64, i64)) -> Vec<StepDay> {
    struct Acc<'a> {
        steps: u64,
        step_minutes: usize,
        first_offset: i32,
        last_offset: i32,
        /// Minutes won per source id, with its name (a few sources: a vector beats hashing
        /// every minute).
        won: Vec<(usize, (&'a str, bool), usize)>,
    }
    let mut by_date: BTreeMap<NaiveDate, Acc<'_>> = BTreeMap::new();
    for (minute, c) in minutes(samples, range) {
        let Some(date) = local_date(minute * MINUTE_MS, c.offset_secs) else {
            continue;
        };
        let acc = by_date.entry(date).or_insert_with(|| Acc {
            steps: 0,
            step_minutes: 0,
            first_offset: c.offset_secs,
            last_offset: c.offset_secs,
            won: Vec::new(),
        });
        acc.steps += c.steps;
        acc.step_minutes += usize::from(c.steps > 0);
        acc.last_offset = c.offset_secs;
        match acc.won.iter_mut().find(|(id, _, _)| *id == c.source_id) {
            Some((_, _, n)) => *n += 1,
            None => acc.won.push((c.source_id, (c.source, c.manual), 1)),
        }
    }
    let with_data: BTreeSet<NaiveDate> = by_date.keys().copied().collect();
    let mut carried_offset = by_date.values().next().map_or(0, |a| a.first_offset);
    dates(with_data)
        .into_iter()
        .map(|date| {
            let Some(acc) = by_date.remove(&date) else {
                return StepDay {
                    date,
                    steps: None,
                    step_minutes: None,
                    complete: covers(range, date, carried_offset, carried_offset),
                    sources: Vec::new(),
                };
            };
            carried_offset = acc.last_offset;
            let mut sources: Vec<SourceMinutes> = acc
                .won
                .into_iter()
                .map(|(_, (s, manual), minutes)| SourceMinutes {
                    source: s.to_owned(),
                    minutes,
                    rank: rank(s),
                    manual,
                })
                .collect();
            sources.sort_by(|a, b| b.minutes.cmp(&a.minutes).then(a.source.cmp(&b.source)));
            StepDay {
                date,
                steps: Some(acc.steps),
                step_minutes: Some(acc.step_minutes),
                complete: covers(range, date, acc.first_offset, acc.last_offset),
                sources,
            }
        })
        .collect()
}

/// Whether `[from, to)` covers local `date`, its midnights at the two offsets.
fn covers((from, to): (i64, i64), date: NaiveDate, start_offset: i32, end_offset: i32) -> bool {
    let midnight = |d: Option<NaiveDate>, offset: i32| {
        d.and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis() - i64::from(offset) * 1000)
    };
    match (
        midnight(Some(date), start_offset),
        midnight(date.succ_opt(), end_offset),
    ) {
        (Some(start), Some(end)) => from <= start && end <= to,
        _ => false,
    }
}

#[cfg(test)]
#[path = "steps_tests.rs"]
mod tests;
