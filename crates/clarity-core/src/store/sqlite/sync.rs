//! Sync v2 on SQLite: versioned upserts, deletions with tombstones, the per-user change
//! sequence and the change feed read from it; tombstone retention; account erasure.
//!
//! Rules (the semantics are `store::changes`'s; this is how SQLite keeps them):
//! - Writes run on the single writer thread, one savepoint per `write_samples` call inside the
//!   group-commit transaction, so the ops of a call apply in order and together, and the
//!   user's head (`change_heads.head`) is read and advanced without a race, even by a second
//!   process on the same file (its writer waits for the `IMMEDIATE` lock).
//! - A live sample carries the seq of its latest change (`samples.seq`, the table's key after
//!   the user: schema version 9); a deleted one leaves a row in `tombstones` with the seq of
//!   its deletion. The feed is the union of both above a position, in seq order: compacted,
//!   each id listed once at its latest change. Every write also records where its samples
//!   went in `sample_ranges` (`ranges::record`), which listings by time read.
//! - A tombstone older than [`TOMBSTONE_DAYS`] is forgotten; the user's `floor` is raised to
//!   the highest seq forgotten, since a reader below it would never learn of that deletion.
//! - `erase_user` is one transaction: there is never a half-erased account to resume. It
//!   records the id in `erased_users`, and every later write for that user (samples,
//!   documents, stream events) is refused with `AccountErased` in its own transaction: a
//!   batch queued behind the erasure leaves nothing behind.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{SAMPLE_COLUMNS, ranges, sample_from_row};
use crate::samples::Sample;
use crate::store::{
    Change, ChangeOp, ChangePage, DocKind, Erased, OpOutcome, Revision, SampleOp, StoreError,
    StoreResult, TOMBSTONE_DAYS, WriteResult, revisions,
};

fn other(e: rusqlite::Error) -> StoreError {
    StoreError::Other(e.into())
}

/// Whether a put with `new` replaces something stored with `stored` (a sample or a
/// tombstone): only a version, and only a greater one (an unversioned stored item counts as
/// -1).
fn newer(new: Option<i64>, stored: Option<i64>) -> bool {
    new.is_some_and(|v| v > stored.unwrap_or(-1))
}

/// `AccountErased` when `uid`'s account was erased (one primary-key probe of a table that
/// only holds erased ids).
pub(super) fn refuse_erased(c: &Connection, uid: &[u8]) -> StoreResult<()> {
    let erased: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM erased_users WHERE user_id = ?1)")
        .and_then(|mut st| st.query_row([uid], |r| r.get(0)))
        .map_err(other)?;
    if erased {
        return Err(StoreError::AccountErased);
    }
    Ok(())
}

/// Applies `ops` for `user` in order; `now_ms` dates the tombstones.
pub(super) fn write_ops(
    c: &Connection,
    user: Uuid,
    ops: &[SampleOp],
    now_ms: i64,
) -> StoreResult<WriteResult> {
    let uid = &user.as_bytes()[..];
    refuse_erased(c, uid)?;
    let start: i64 = c
        .prepare_cached("SELECT head FROM change_heads WHERE user_id = ?1")
        .and_then(|mut st| st.query_row([uid], |r| r.get(0)).optional())
        .map_err(other)?
        .unwrap_or(0);
    // Most users never delete: then no put needs to look for a tombstone.
    let mut tombstones: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tombstones WHERE user_id = ?1)")
        .and_then(|mut st| st.query_row([uid], |r| r.get(0)))
        .map_err(other)?;
    let mut head = start;
    let mut out = WriteResult {
        outcomes: Vec::with_capacity(ops.len()),
        ..WriteResult::default()
    };
    let mut placed = Vec::with_capacity(ops.len());
    for op in ops {
        let seq = head + 1;
        let outcome = match op {
            SampleOp::Put(s) => put(c, uid, s, seq, tombstones, &mut out.removed),
            SampleOp::Delete(id) => delete(c, uid, id, seq, now_ms, &mut out.removed),
        }
        .map_err(other)?;
        tombstones |= outcome == OpOutcome::Deleted;
        if outcome.changed() {
            head = seq;
            out.seqs.push(seq as u64);
            if let SampleOp::Put(s) = op {
                placed.push(ranges::Placed::new(s, seq));
            }
        }
        out.outcomes.push(outcome);
    }
    ranges::record(c, uid, placed).map_err(other)?;
    if head != start {
        c.prepare_cached(
            "INSERT INTO change_heads (user_id, head) VALUES (?1, ?2)
             ON CONFLICT (user_id) DO UPDATE SET head = excluded.head",
        )
        .and_then(|mut st| st.execute(params![uid, head]))
        .map_err(other)?;
    }
    let spans = revisions::changed_spans(ops, &out.outcomes, &out.removed);
    if !spans.is_empty() {
        // In the batch's savepoint: the recomputation it calls for is as durable as the ack.
        c.prepare_cached("INSERT INTO revisions (user_id, seq, spans) VALUES (?1, ?2, ?3)")
            .and_then(|mut st| st.execute(params![uid, head, revisions::encode_spans(&spans)]))
            .map_err(other)?;
    }
    Ok(out)
}

static STORED: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {SAMPLE_COLUMNS} FROM samples WHERE user_id = ?1 AND id = ?2")
});

fn stored(c: &Connection, uid: &[u8], id: &str) -> rusqlite::Result<Option<Sample>> {
    c.prepare_cached(&STORED)?
        .query_row(params![uid, id], sample_from_row)
        .optional()
}

/// The row insert of [`write_row`]; built once, not per sample (the statement cache is keyed
/// by the text, and this runs for every sample written).
const INSERT_ROW: &str = "INSERT INTO samples (user_id, id, kind, start_ms, start_off, end_ms,
       end_off, value, source, extra, version, seq)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
     ON CONFLICT (user_id, id) ";
static INSERT_NEW: LazyLock<String> = LazyLock::new(|| format!("{INSERT_ROW} DO NOTHING"));
static REPLACE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{INSERT_ROW} DO UPDATE SET kind = excluded.kind, start_ms = excluded.start_ms,
           start_off = excluded.start_off, end_ms = excluded.end_ms, end_off = excluded.end_off,
           value = excluded.value, source = excluded.source, extra = excluded.extra,
           version = excluded.version, seq = excluded.seq"
    )
});

/// Writes `s` with `seq`: a new row (`replace` false: nothing when the id is stored; the
/// answer says whether it was written) or over the stored one (`replace` true).
fn write_row(
    c: &Connection,
    uid: &[u8],
    s: &Sample,
    seq: i64,
    replace: bool,
) -> rusqlite::Result<bool> {
    let sql: &str = if replace { &REPLACE } else { &INSERT_NEW };
    let changed = c.prepare_cached(sql)?.execute(params![
        uid,
        s.id,
        s.kind.code(),
        s.start.utc_ms,
        s.start.offset_secs,
        s.end.map(|e| e.utc_ms),
        s.end.map(|e| e.offset_secs),
        s.value,
        s.source,
        s.extra
            .as_ref()
            .map(|e| String::from_utf8(e.to_bytes()).expect("JSON is UTF-8")),
        s.version,
        seq,
    ])?;
    Ok(changed == 1)
}

/// `tombstones`: whether the user may have any.
fn put(
    c: &Connection,
    uid: &[u8],
    s: &Sample,
    seq: i64,
    tombstones: bool,
    removed: &mut Vec<Sample>,
) -> rusqlite::Result<OpOutcome> {
    let tombstone: Option<Option<i64>> = if tombstones {
        c.prepare_cached("SELECT version FROM tombstones WHERE user_id = ?1 AND id = ?2")?
            .query_row(params![uid, s.id], |r| r.get(0))
            .optional()?
    } else {
        None
    };
    if let Some(deleted) = tombstone {
        if !newer(s.version, deleted) {
            return Ok(OpOutcome::Duplicate);
        }
        c.prepare_cached("DELETE FROM tombstones WHERE user_id = ?1 AND id = ?2")?
            .execute(params![uid, s.id])?;
    }
    if write_row(c, uid, s, seq, false)? {
        return Ok(OpOutcome::Inserted);
    }
    // Stored already: only a versioned re-send can replace it, so only then read it.
    if s.version.is_none() {
        return Ok(OpOutcome::Duplicate);
    }
    let Some(old) = stored(c, uid, &s.id)? else {
        return Err(rusqlite::Error::QueryReturnedNoRows);
    };
    if !newer(s.version, old.version) {
        return Ok(OpOutcome::Duplicate);
    }
    write_row(c, uid, s, seq, true)?;
    removed.push(old);
    Ok(OpOutcome::Updated)
}

fn delete(
    c: &Connection,
    uid: &[u8],
    id: &str,
    seq: i64,
    now_ms: i64,
    removed: &mut Vec<Sample>,
) -> rusqlite::Result<OpOutcome> {
    let Some(old) = stored(c, uid, id)? else {
        return Ok(OpOutcome::NotFound);
    };
    c.prepare_cached("DELETE FROM samples WHERE user_id = ?1 AND id = ?2")?
        .execute(params![uid, id])?;
    c.prepare_cached(
        "INSERT INTO tombstones (user_id, id, version, seq, deleted_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, id) DO UPDATE SET version = excluded.version,
           seq = excluded.seq, deleted_at = excluded.deleted_at",
    )?
    .execute(params![uid, id, old.version, seq, now_ms])?;
    removed.push(old);
    Ok(OpOutcome::Deleted)
}

/// The change feed of `user` after `after` (see [`crate::store::Store::changes`]).
pub(super) fn changes(
    c: &Connection,
    user: Uuid,
    after: u64,
    limit: usize,
) -> rusqlite::Result<ChangePage> {
    let uid = &user.as_bytes()[..];
    let limit = limit.max(1);
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    // One snapshot for the head and the page: the page never runs past the head it reports.
    let tx = c.unchecked_transaction()?;
    let (head, floor): (i64, i64) = tx
        .prepare_cached("SELECT head, floor FROM change_heads WHERE user_id = ?1")?
        .query_row([uid], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, 0));
    let mut changes: Vec<Change> = tx
        .prepare_cached(&format!(
            "SELECT {SAMPLE_COLUMNS}, seq, 0 FROM samples WHERE user_id = ?1 AND seq > ?2
             UNION ALL
             SELECT id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, seq, 1
               FROM tombstones INDEXED BY tombstones_by_seq WHERE user_id = ?1 AND seq > ?2
             ORDER BY 11 LIMIT ?3"
        ))?
        .query_map(
            params![uid, after, i64::try_from(limit + 1).unwrap_or(i64::MAX)],
            |r| {
                let seq: i64 = r.get(10)?;
                let deleted: bool = r.get(11)?;
                Ok(Change {
                    seq: seq.max(0) as u64,
                    op: if deleted {
                        ChangeOp::Delete { id: r.get(0)? }
                    } else {
                        ChangeOp::Upsert(sample_from_row(r)?)
                    },
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    tx.finish()?;
    let more = changes.len() > limit;
    changes.truncate(limit);
    Ok(ChangePage {
        changes,
        more,
        head: head.max(0) as u64,
        floor: floor.max(0) as u64,
    })
}

/// Forgets tombstones deleted more than [`TOMBSTONE_DAYS`] before `now_ms`, raising each
/// affected user's floor to the highest seq forgotten; returns how many.
pub(super) fn purge_tombstones(c: &Connection, now_ms: i64) -> rusqlite::Result<usize> {
    let cutoff = now_ms.saturating_sub(TOMBSTONE_DAYS * 86_400_000);
    c.prepare_cached(
        "INSERT INTO change_heads (user_id, head, floor)
           SELECT user_id, MAX(seq), MAX(seq) FROM tombstones INDEXED BY tombstones_by_age
           WHERE deleted_at < ?1 GROUP BY user_id
         ON CONFLICT (user_id) DO UPDATE SET floor = MAX(floor, excluded.floor)",
    )?
    .execute([cutoff])?;
    c.prepare_cached("DELETE FROM tombstones WHERE deleted_at < ?1")?
        .execute([cutoff])
}

/// Deletes every row of `user` (see [`crate::store::Store::erase_user`]).
pub(super) fn erase_user(c: &Connection, user: Uuid) -> StoreResult<Erased> {
    let uid = &user.as_bytes()[..];
    let run = |sql: &str| -> StoreResult<u64> {
        c.prepare_cached(sql)
            .and_then(|mut st| st.execute([uid]))
            .map(|n| n as u64)
            .map_err(other)
    };
    c.prepare_cached("INSERT OR IGNORE INTO erased_users (user_id, erased_at) VALUES (?1, ?2)")
        .and_then(|mut st| st.execute(params![uid, chrono::Utc::now().timestamp_millis()]))
        .map_err(other)?;
    let account = run("DELETE FROM users WHERE id = ?1")? > 0;
    run("DELETE FROM refresh_tokens WHERE user_id = ?1")?;
    let samples = run("DELETE FROM samples WHERE user_id = ?1")?
        + run("DELETE FROM tombstones WHERE user_id = ?1")?;
    run("DELETE FROM sample_ranges WHERE user_id = ?1")?;
    run("DELETE FROM change_heads WHERE user_id = ?1")?;
    run("DELETE FROM revisions WHERE user_id = ?1")?;
    let mut documents = run("DELETE FROM events WHERE user_id = ?1")?;
    for kind in [DocKind::Analysis, DocKind::Insight] {
        documents += c
            .prepare_cached("DELETE FROM documents WHERE kind = ?2 AND user_id = ?1")
            .and_then(|mut st| st.execute(params![uid, kind.code()]))
            .map_err(other)? as u64;
    }
    let shares = run("DELETE FROM shares WHERE owner_id = ?1 OR grantee_id = ?1")?;
    run("DELETE FROM audit WHERE owner_id = ?1")?;
    Ok(Erased {
        account,
        samples,
        documents,
        shares,
    })
}

/// Marks a document replaced by `by` (or current again); `false` when there is none.
pub(super) fn set_superseded(
    c: &Connection,
    kind: DocKind,
    user: Uuid,
    id: Uuid,
    by: Option<Uuid>,
) -> StoreResult<bool> {
    c.prepare_cached(
        "UPDATE documents SET superseded_by = ?4 WHERE kind = ?1 AND user_id = ?2 AND id = ?3",
    )
    .and_then(|mut st| {
        st.execute(params![
            kind.code(),
            &user.as_bytes()[..],
            &id.as_bytes()[..],
            by.map(|b| b.as_bytes().to_vec())
        ])
    })
    .map(|n| n == 1)
    .map_err(other)
}

/// `user`'s revisions not confirmed, by seq (see `store::revisions`).
pub(super) fn pending_revisions(c: &Connection, user: Uuid) -> rusqlite::Result<Vec<Revision>> {
    c.prepare_cached("SELECT seq, spans FROM revisions WHERE user_id = ?1 ORDER BY seq")?
        .query_map([&user.as_bytes()[..]], |r| {
            let text: String = r.get(1)?;
            let spans = revisions::decode_spans(&text).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Text,
                    "a stored revision's spans do not decode".into(),
                )
            })?;
            Ok(Revision {
                seq: r.get::<_, i64>(0)? as u64,
                spans,
            })
        })?
        .collect()
}

/// Confirms `user`'s revisions with a seq in one of `ranges`.
pub(super) fn clear_revisions(
    c: &Connection,
    user: Uuid,
    ranges: &[(u64, u64)],
) -> StoreResult<()> {
    let mut st = c
        .prepare_cached("DELETE FROM revisions WHERE user_id = ?1 AND seq BETWEEN ?2 AND ?3")
        .map_err(other)?;
    for &(from, to) in ranges {
        st.execute(params![&user.as_bytes()[..], from as i64, to as i64])
            .map_err(other)?;
    }
    Ok(())
}
