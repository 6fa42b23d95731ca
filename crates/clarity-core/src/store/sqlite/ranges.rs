//! `sample_ranges`: where each hour's samples are in the seq-keyed `samples` table (schema
//! version 9), written once per write instead of a time-index entry per sample.
//!
//! Rules:
//! - A write records, for each (hour of `start`, kind) among the samples it stored, the seqs
//!   it gave them as runs `[seq_lo, seq_hi]`; a run is split where two of its seqs are more
//!   than [`MAX_GAP`] apart, so reading a run never scans much more than its own samples.
//! - A range is a hint, never the truth: a sample replaced or deleted later leaves its old
//!   range pointing at a seq with no row, or at a row that now belongs to another hour or
//!   kind. Readers keep only rows whose own `start` and kind match the hour and kind asked
//!   for; every live sample is covered by the range its latest write recorded.
//! - Hours are UTC hours since the epoch, `floor(start_ms / 3,600,000)` (negative before 1970).

use rusqlite::{Connection, params};

use crate::samples::Sample;

pub(super) const HOUR_MS: i64 = 3_600_000;

/// The most seqs of other samples a run may skip over before it is split.
const MAX_GAP: i64 = 16;

/// The hour `ms` falls in.
pub(super) fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS)
}

/// One sample a write stored, by where listings look for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Placed {
    hour: i64,
    kind: i64,
    seq: i64,
}

impl Placed {
    pub(super) fn new(s: &Sample, seq: i64) -> Self {
        Self {
            hour: hour_of(s.start.utc_ms),
            kind: i64::from(s.kind.code()),
            seq,
        }
    }
}

/// Records the runs of `placed` (in the write's savepoint, like the samples).
pub(super) fn record(c: &Connection, uid: &[u8], mut placed: Vec<Placed>) -> rusqlite::Result<()> {
    if placed.is_empty() {
        return Ok(());
    }
    placed.sort_unstable();
    let mut st = c.prepare_cached(
        "INSERT INTO sample_ranges (user_id, hour, kind, seq_lo, seq_hi) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, hour, kind, seq_lo) DO UPDATE SET
           seq_hi = MAX(seq_hi, excluded.seq_hi)",
    )?;
    for run in runs(&placed) {
        st.execute(params![uid, run.0, run.1, run.2, run.3])?;
    }
    Ok(())
}

/// `(hour, kind, seq_lo, seq_hi)` runs of sorted `placed`.
fn runs(placed: &[Placed]) -> Vec<(i64, i64, i64, i64)> {
    let mut out: Vec<(i64, i64, i64, i64)> = Vec::new();
    for p in placed {
        match out.last_mut() {
            Some(r) if r.0 == p.hour && r.1 == p.kind && p.seq - r.3 <= MAX_GAP => r.3 = p.seq,
            _ => out.push((p.hour, p.kind, p.seq, p.seq)),
        }
    }
    out
}

/// Sorted, disjoint seq intervals covering `ranges` (merging overlapping or adjacent ones, so
/// no row is read twice).
pub(super) fn merge(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(hour: i64, kind: i64, seq: i64) -> Placed {
        Placed { hour, kind, seq }
    }

    #[test]
    fn runs_split_by_hour_kind_and_gap() {
        let mut v = vec![
            p(5, 1, 1),
            p(5, 2, 2),
            p(5, 1, 3),
            p(6, 1, 4),
            p(5, 1, 3 + MAX_GAP),
            p(5, 1, 4 + 3 * MAX_GAP),
        ];
        v.sort_unstable();
        assert_eq!(
            runs(&v),
            [
                (5, 1, 1, 3 + MAX_GAP),
                (5, 1, 4 + 3 * MAX_GAP, 4 + 3 * MAX_GAP),
                (5, 2, 2, 2),
                (6, 1, 4, 4)
            ]
        );
    }

    #[test]
    fn merge_joins_overlapping_and_adjacent() {
        assert_eq!(
            merge(vec![(10, 12), (1, 3), (4, 5), (11, 20), (30, 30)]),
            [(1, 5), (10, 20), (30, 30)]
        );
        assert_eq!(hour_of(-1), -1);
        assert_eq!(hour_of(HOUR_MS), 1);
    }
}
