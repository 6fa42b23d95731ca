//! Sample listings: one user's samples in `(start, id)` order, of one kind or of all.
//!
//! Rules:
//! - Both read `samples_by_kind_time (user_id, kind, start_ms, id)`, the only time index
//!   (schema version 6): a listing of all kinds is SQLite's merge (`MERGE (UNION ALL)` in the
//!   query plan) of one range per kind, each already in order, so a page reads `limit + 1` rows
//!   plus one seek per kind, never a sort, however long the history.
//! - The range seek starts at the later of `from` and the cursor; rows sharing the cursor's
//!   millisecond are then skipped by id (ids are unique per user, so `(start, id)` is a total
//!   order across kinds too).

use std::sync::LazyLock;

use rusqlite::{Connection, params};
use uuid::Uuid;

use super::{SAMPLE_COLUMNS, sample_from_row};
use crate::samples::{Kind, Sample};
use crate::store::{Cursor, SamplePage, SampleQuery};

/// One kind's range; `{kind}` is `?7` or a kind's code.
fn arm(kind: &str) -> String {
    format!(
        "SELECT {SAMPLE_COLUMNS} FROM samples INDEXED BY samples_by_kind_time
         WHERE user_id = ?1 AND kind = {kind} AND start_ms >= ?2 AND start_ms < ?3
           AND (start_ms > ?4 OR (start_ms = ?4 AND id > ?5))"
    )
}

static ONE_KIND: LazyLock<String> =
    LazyLock::new(|| format!("{} ORDER BY start_ms, id LIMIT ?6", arm("?7")));

static ALL_KINDS: LazyLock<String> = LazyLock::new(|| {
    let arms: Vec<String> = Kind::ALL
        .iter()
        .map(|k| arm(&k.code().to_string()))
        .collect();
    format!(
        "{} ORDER BY start_ms, id LIMIT ?6",
        arms.join(" UNION ALL ")
    )
});

/// The page of `user`'s samples `q` asks for.
pub(super) fn query(c: &Connection, user: Uuid, q: &SampleQuery) -> rusqlite::Result<SamplePage> {
    let limit = q.limit.max(1);
    let (after_ms, after_id) = match &q.after {
        Some(cur) => (cur.start_ms, cur.id.as_str()),
        None => (i64::MIN, ""),
    };
    let lower = q.from_ms.unwrap_or(i64::MIN).max(after_ms);
    let upper = q.to_ms.unwrap_or(i64::MAX);
    let fetch = (limit + 1) as i64;
    let uid = &user.as_bytes()[..];
    let mut samples: Vec<Sample> = match q.kind {
        Some(kind) => c
            .prepare_cached(&ONE_KIND)?
            .query_map(
                params![uid, lower, upper, after_ms, after_id, fetch, kind.code()],
                sample_from_row,
            )?
            .collect::<rusqlite::Result<_>>()?,
        None => c
            .prepare_cached(&ALL_KINDS)?
            .query_map(
                params![uid, lower, upper, after_ms, after_id, fetch],
                sample_from_row,
            )?
            .collect::<rusqlite::Result<_>>()?,
    };
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
