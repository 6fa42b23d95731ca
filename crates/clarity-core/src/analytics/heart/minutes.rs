//! Heart-rate minutes (one source a minute), 30-minute means and source choice for sparse
//! readings. The rules are in the parent module's doc.

use std::cmp::Reverse;
use std::collections::HashMap;

use super::{MIN_READINGS, Reading, SourceMinutes, WINDOW_MINUTES, asleep, rank};

/// One UTC minute's heart rate, from one source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Minute {
    pub minute: i64,
    pub value: f64,
    /// The offset of the minute's first reading (for its local date).
    pub offset_secs: i32,
}

/// A source: its name and whether these are its manual entries (a source of their own).
type Key<'a> = (&'a str, bool);

/// Priority of a source: higher wins (manual entries, then rank, then more readings, then the
/// smaller name).
type Priority<'a> = (bool, u8, usize, Reverse<&'a str>);

fn priority((name, manual): Key<'_>, readings: usize) -> Priority<'_> {
    (manual, rank(name), readings, Reverse(name))
}

/// One value a UTC minute, sorted by minute, and the minutes each source won.
pub(super) fn dedupe(readings: &[&Reading<'_>]) -> (Vec<Minute>, Vec<SourceMinutes>) {
    // Each reading's source as an index, found once: a week has thousands of readings and a
    // few sources, so a vector beats hashing every reading, and a run of readings from one
    // source (the usual order) is recognised without comparing names.
    let mut counts: Vec<(Key<'_>, usize)> = Vec::new();
    let mut ids: Vec<u32> = Vec::with_capacity(readings.len());
    let mut prev: Option<(Key<'_>, u32)> = None;
    for r in readings {
        let key = (r.source(), r.manual);
        let id = match prev {
            Some((p, id)) if same_key(p, key) => id,
            _ => match counts.iter().position(|(s, _)| *s == key) {
                Some(i) => i as u32,
                None => {
                    counts.push((key, 0));
                    (counts.len() - 1) as u32
                }
            },
        };
        counts[id as usize].1 += 1;
        ids.push(id);
        prev = Some((key, id));
    }
    // Each source's place in the order of priority (0 wins): the sort key is then three
    // integers, with no string compared per reading.
    let mut order: Vec<(Key<'_>, Priority<'_>)> =
        counts.iter().map(|(s, n)| (*s, priority(*s, *n))).collect();
    order.sort_by(|a, b| b.1.cmp(&a.1));
    let places: Vec<usize> = counts
        .iter()
        .map(|(s, _)| order.iter().position(|(o, _)| o == s).unwrap_or(0))
        .collect();
    // Readings in time order (ties in input order), each with its source's place: a minute's
    // readings are contiguous, the lowest place wins it.
    let timed = time_ordered(readings, &ids, &places);
    let mut minutes = Vec::new();
    let mut won = vec![0usize; order.len()];
    let mut i = 0;
    while i < timed.len() {
        let minute = timed[i].0.div_euclid(60_000);
        let mut j = i;
        let mut best = usize::MAX;
        while j < timed.len() && timed[j].0.div_euclid(60_000) == minute {
            best = best.min(timed[j].1);
            j += 1;
        }
        let (mut n, mut sum, mut offset) = (0usize, 0.0, None);
        for &(_, _, r) in timed[i..j].iter().filter(|(_, p, _)| *p == best) {
            n += 1;
            sum += r.value;
            offset.get_or_insert(r.offset_secs);
        }
        minutes.push(Minute {
            minute,
            value: sum / n as f64,
            offset_secs: offset.unwrap_or(0),
        });
        won[best] += 1;
        i = j;
    }
    let won: Vec<(Key<'_>, usize)> = order
        .iter()
        .zip(won)
        .filter(|(_, n)| *n > 0)
        .map(|((s, _), n)| (*s, n))
        .collect();
    let mut sources: Vec<SourceMinutes> = won
        .into_iter()
        .map(|((s, manual), minutes)| SourceMinutes {
            source: s.to_owned(),
            minutes,
            rank: rank(s),
            manual,
        })
        .collect();
    sources.sort_by(|a, b| b.minutes.cmp(&a.minutes).then(a.source.cmp(&b.source)));
    (minutes, sources)
}

/// Two source keys are equal; the same name (the usual case: one source's readings share
/// it) is recognised without comparing bytes.
fn same_key(a: Key<'_>, b: Key<'_>) -> bool {
    a.1 == b.1 && (std::ptr::eq(a.0, b.0) || a.0 == b.0)
}

/// `(utc_ms, place, reading)` in time order, ties in input order: what a stable sort by
/// `utc_ms` gives. Readings usually arrive in order (nothing is sorted then); otherwise a
/// week's minutes are few enough to bucket by minute (a counting sort, stable) and order the
/// handful in each minute, instead of sorting thousands of readings.
fn time_ordered<'r, 'a>(
    readings: &[&'r Reading<'a>],
    ids: &[u32],
    places: &[usize],
) -> Vec<(i64, usize, &'r Reading<'a>)> {
    let at = |i: usize| (readings[i].utc_ms, places[ids[i] as usize], readings[i]);
    if readings.is_sorted_by_key(|r| r.utc_ms) {
        return (0..readings.len()).map(at).collect();
    }
    let minute = |r: &Reading<'_>| r.utc_ms.div_euclid(60_000);
    let (lo, hi) = readings.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
        (lo.min(minute(r)), hi.max(minute(r)))
    });
    let span = usize::try_from(hi.saturating_sub(lo)).map_or(usize::MAX, |s| s.saturating_add(1));
    if span > readings.len().saturating_mul(4).max(1 << 16) {
        let mut timed: Vec<_> = (0..readings.len()).map(at).collect();
        timed.sort_by_key(|t| t.0);
        return timed;
    }
    // Start of each minute's bucket, then the readings placed in input order.
    let mut start = vec![0u32; span + 1];
    for r in readings {
        start[(minute(r) - lo) as usize + 1] += 1;
    }
    for k in 1..start.len() {
        start[k] += start[k - 1];
    }
    let mut slot: Vec<u32> = vec![0; readings.len()];
    let mut next = start.clone();
    for (i, r) in readings.iter().enumerate() {
        let b = &mut next[(minute(r) - lo) as usize];
        slot[*b as usize] = i as u32;
        *b += 1;
    }
    let mut timed: Vec<_> = slot.iter().map(|&i| at(i as usize)).collect();
    for w in start.windows(2) {
        let bucket = &mut timed[w[0] as usize..w[1] as usize];
        if bucket.len() > 1 {
            // Stable: equal instants keep their input order.
            bucket.sort_by_key(|t| t.0);
        }
    }
    timed
}

/// Sorted, non-overlapping intervals (empty and reversed ones dropped).
pub(super) fn merged(mut intervals: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    intervals.retain(|iv| iv.0 < iv.1);
    intervals.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
    for iv in intervals {
        match out.last_mut() {
            Some(last) if iv.0 <= last.1 => last.1 = last.1.max(iv.1),
            _ => out.push(iv),
        }
    }
    out
}

/// `(minute, value)` of the minutes whose start lies in `intervals` (merged).
pub(super) fn asleep_minutes(minutes: &[Minute], intervals: &[(i64, i64)]) -> Vec<(i64, f64)> {
    let (Some(first), Some(last)) = (intervals.first(), intervals.last()) else {
        return Vec::new();
    };
    let from = minutes.partition_point(|m| m.minute.saturating_mul(60_000) < first.0);
    minutes[from..]
        .iter()
        .take_while(|m| m.minute.saturating_mul(60_000) < last.1)
        .filter(|m| asleep(intervals, m.minute * 60_000))
        .map(|m| (m.minute, m.value))
        .collect()
}

/// The lowest mean over windows `[m, m + 30)` anchored at each minute of `minutes` (sorted by
/// minute), counting only windows with at least [`MIN_READINGS`] minutes.
pub(super) fn lowest_window_mean(minutes: &[(i64, f64)]) -> Option<f64> {
    let mut best: Option<f64> = None;
    let mut end = 0;
    for (i, &(m, _)) in minutes.iter().enumerate() {
        end = end.max(i);
        while end < minutes.len() && minutes[end].0 < m.saturating_add(WINDOW_MINUTES) {
            end += 1;
        }
        let window = &minutes[i..end];
        if window.len() >= MIN_READINGS {
            // Summed afresh (at most 30 terms): no drift from a running sum.
            let mean = window.iter().map(|x| x.1).sum::<f64>() / window.len() as f64;
            best = Some(best.map_or(mean, |b: f64| b.min(mean)));
        }
    }
    best
}

/// The mean of the winning source's readings (manual entries, rank, then more readings here,
/// then name).
pub(super) fn source_mean(readings: &[&Reading<'_>]) -> Option<f64> {
    let mut by: HashMap<Key<'_>, (usize, f64)> = HashMap::new();
    for r in readings {
        let e = by.entry((r.source(), r.manual)).or_default();
        e.0 += 1;
        e.1 += r.value;
    }
    by.into_iter()
        .max_by_key(|(s, (n, _))| priority(*s, *n))
        .map(|(_, (n, sum))| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SOURCES: [Option<&str>; 3] = [None, Some("Apple Watch"), Some("iPhone")];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The bucketed order is exactly a stable sort by instant (ties in input order), for
        /// readings in any order, close together (buckets) or far apart (the sort fallback).
        #[test]
        fn time_order_is_the_stable_sort_by_instant(
            raw in prop::collection::vec((0i64..5_000, 0usize..3, any::<bool>()), 0..300),
            far in any::<bool>(),
        ) {
            let step = if far { 86_400_000 } else { 1_000 };
            let readings: Vec<Reading<'static>> = raw
                .iter()
                .enumerate()
                .map(|(i, &(t, s, manual))| Reading {
                    utc_ms: 1_772_323_200_000 + t * step - 30_000,
                    offset_secs: 0,
                    value: i as f64,
                    source: SOURCES[s],
                    manual,
                })
                .collect();
            let refs: Vec<&Reading<'_>> = readings.iter().collect();
            let ids: Vec<u32> = raw.iter().map(|&(_, s, m)| (s * 2 + usize::from(m)) as u32).collect();
            let places: Vec<usize> = (0..6).collect();
            let got = time_ordered(&refs, &ids, &places);
            let mut want: Vec<(i64, usize, &Reading<'_>)> = refs
                .iter()
                .zip(&ids)
                .map(|(r, &id)| (r.utc_ms, places[id as usize], *r))
                .collect();
            want.sort_by_key(|t| t.0);
            let key = |v: &[(i64, usize, &Reading<'_>)]| -> Vec<(i64, usize, u64)> {
                v.iter().map(|t| (t.0, t.1, t.2.value.to_bits())).collect()
            };
            prop_assert_eq!(key(&got), key(&want));
        }
    }
}
