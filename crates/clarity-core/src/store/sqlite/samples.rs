//! Sample listings: one user's samples in `(start, id)` order, of one kind or of all.
//!
//! Rules:
//! - The table is keyed by change (`(user_id, seq)`, schema version 9); time order comes from
//!   `sample_ranges` (see `ranges`): the listing walks the hours from the later of `from` and
//!   the cursor, and for each hour reads the seq runs its ranges name (merged, so no row twice),
//!   keeping the rows whose own kind and hour match, then sorts that hour by `(start, id)`.
//! - A page ends at an hour's end: hours are read whole until more than `limit` samples are in
//!   hand, so the cost of a page is its hours' samples, however long the history.
//! - Rows sharing the cursor's millisecond are skipped by id (ids are unique per user, so
//!   `(start, id)` is a total order across kinds too).

use std::sync::LazyLock;

use rusqlite::{Connection, params};
use uuid::Uuid;

use super::ranges::{self, hour_of};
use super::{SAMPLE_COLUMNS, sample_from_row};
use crate::samples::Sample;
use crate::store::{Cursor, SamplePage, SampleQuery};

/// The page of `user`'s samples `q` asks for.
pub(super) fn query(c: &Connection, user: Uuid, q: &SampleQuery) -> rusqlite::Result<SamplePage> {
    let limit = q.limit.max(1);
    let (after_ms, after_id) = match &q.after {
        Some(cur) => (cur.start_ms, cur.id.as_str()),
        None => (i64::MIN, ""),
    };
    let lower = q.from_ms.unwrap_or(i64::MIN).max(after_ms);
    let upper = q.to_ms.unwrap_or(i64::MAX);
    let uid = &user.as_bytes()[..];
    let kind = q.kind.map(|k| i64::from(k.code()));
    let mut samples: Vec<Sample> = Vec::new();
    if lower < upper {
        let filter = Filter {
            span: (lower, upper),
            kind,
            after: (after_ms, after_id),
        };
        // The kind is filtered here too: an analysis asks for each heart kind in turn, most of
        // which a user never stored, over a week of every other kind's ranges.
        let mut st = c.prepare_cached(
            "SELECT hour, seq_lo, seq_hi FROM sample_ranges
             WHERE user_id = ?1 AND hour >= ?2 AND hour <= ?3 AND (?4 IS NULL OR kind = ?4)
             ORDER BY hour",
        )?;
        let mut rows = st.query(params![uid, hour_of(lower), hour_of(upper - 1), kind])?;
        let mut hour: Option<i64> = None;
        let mut runs: Vec<(i64, i64)> = Vec::new();
        loop {
            let row = rows.next()?;
            let next: Option<(i64, i64, i64)> = match row {
                Some(r) => Some((r.get(0)?, r.get(1)?, r.get(2)?)),
                None => None,
            };
            if let Some(h) = hour
                && next.is_none_or(|n| n.0 != h)
            {
                read_hour(c, uid, h, std::mem::take(&mut runs), &filter, &mut samples)?;
                if samples.len() > limit {
                    break;
                }
            }
            let Some((h, lo, hi)) = next else {
                break;
            };
            hour = Some(h);
            runs.push((lo, hi));
        }
    }
    let next = if samples.len() > limit {
        samples.truncate(limit);
        samples.last().map(|s| Cursor {
            start_ms: s.start.utc_ms,
            id: s.id.clone(),
        })
    } else {
        None
    };
    Ok(SamplePage { samples, next })
}

/// The rows of one seq run of the user's that start in `[?4, ?5)` and, when `?6` is not NULL,
/// are of kind `?6`; built once (the statement cache is keyed by the text, and this runs for
/// every hour a listing reads). The filter runs in SQLite: a run also holds other kinds' rows
/// and rows moved elsewhere since, and skipping them there costs a column compare instead of
/// a decoded sample (ids, sources and extras allocated only to be dropped).
static RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {SAMPLE_COLUMNS} FROM samples WHERE user_id = ?1 AND seq >= ?2 AND seq <= ?3
           AND start_ms >= ?4 AND start_ms < ?5 AND (?6 IS NULL OR kind = ?6)"
    )
});

/// What a listing keeps of the rows it reads.
struct Filter<'a> {
    /// `start` in `[.0, .1)` (UTC ms).
    span: (i64, i64),
    kind: Option<i64>,
    /// The cursor: only samples after `(start, id)`, checked on decoded samples.
    after: (i64, &'a str),
}

impl Filter<'_> {
    fn after_cursor(&self, s: &Sample) -> bool {
        let (ms, id) = self.after;
        let t = s.start.utc_ms;
        t > ms || (t == ms && s.id.as_str() > id)
    }
}

/// Appends hour `hour`'s samples among the seq `runs` that `filter` keeps, in `(start, id)`
/// order.
fn read_hour(
    c: &Connection,
    uid: &[u8],
    hour: i64,
    runs: Vec<(i64, i64)>,
    filter: &Filter<'_>,
    out: &mut Vec<Sample>,
) -> rusqlite::Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let from = out.len();
    // The hour's own span, cut to the listing's: a row of another hour is not this one's.
    let hour_lo = hour.saturating_mul(ranges::HOUR_MS);
    let span_lo = hour_lo.max(filter.span.0);
    let span_hi = hour_lo.saturating_add(ranges::HOUR_MS).min(filter.span.1);
    let mut st = c.prepare_cached(&RUN)?;
    for (lo, hi) in ranges::merge(runs) {
        let mut rows = st.query(params![uid, lo, hi, span_lo, span_hi, filter.kind])?;
        while let Some(r) = rows.next()? {
            let s = sample_from_row(r)?;
            if filter.after_cursor(&s) {
                out.push(s);
            }
        }
    }
    out[from..].sort_unstable_by(|a, b| (a.start.utc_ms, &a.id).cmp(&(b.start.utc_ms, &b.id)));
    Ok(())
}
