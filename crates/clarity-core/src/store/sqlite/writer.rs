//! The single SQLite writer thread with group commit.
//!
//! Rules:
//! - Exactly one connection writes; every write of the process is an [`Op`] on its queue.
//! - The thread takes everything queued (up to a bound) into one transaction, so many sessions'
//!   batches share one fsync. Each op runs in its own savepoint: one failing op never undoes
//!   another.
//! - Replies are sent only after `COMMIT` returned, which is what makes acks durable.
//! - WAL checkpoints run on their own thread ([`super::checkpoint`]); the writer only wakes it
//!   after a commit's replies are out.
//! - Tombstones past their retention are forgotten here, in their own transaction, at most
//!   once per [`PURGE_EVERY`] (checked when work arrives: an idle store has nothing to purge
//!   for).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::store::{
    DocKind, DocRecord, RefreshTokenRecord, RotateOutcome, SampleOp, StoreError, StoreResult,
    UserRecord, WriteResult,
};

/// How often the writer forgets expired tombstones.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

pub(super) type Reply<T> = oneshot::Sender<StoreResult<T>>;

pub(super) enum Op {
    CreateUser(UserRecord, Reply<()>),
    InsertRefresh(RefreshTokenRecord, Reply<()>),
    Rotate {
        old_hash: [u8; 32],
        new: RefreshTokenRecord,
        now: DateTime<Utc>,
        reply: Reply<RotateOutcome>,
    },
    WriteSamples {
        user: Uuid,
        ops: Vec<SampleOp>,
        reply: Reply<WriteResult>,
        /// This batch's share of the pending-samples budget, returned when the op is done.
        budget: tokio::sync::OwnedSemaphorePermit,
    },
    InsertDoc(DocKind, DocRecord, Reply<bool>),
    /// Any other write: runs in its own savepoint and replies after the commit.
    Call(Box<dyn FnOnce(&mut rusqlite::Transaction<'_>) -> Done + Send>),
    /// Everything queued before it is committed; then the thread exits.
    Close(oneshot::Sender<()>),
}

/// Replies once the transaction's fate is known.
pub(super) type Finish = Box<dyn FnOnce(&Result<(), String>) + Send>;

/// An executed op waiting for the transaction's fate.
pub(super) enum Done {
    Unit(Reply<()>, StoreResult<()>),
    Rotate(Reply<RotateOutcome>, StoreResult<RotateOutcome>),
    Samples(Reply<WriteResult>, StoreResult<WriteResult>, usize),
    Flag(Reply<bool>, StoreResult<bool>),
    Boxed(Finish),
}

pub(super) fn send<T>(reply: Reply<T>, res: StoreResult<T>, commit: &Result<(), String>) {
    let res = match commit {
        Ok(()) => res,
        Err(e) => Err(StoreError::Other(anyhow::anyhow!("commit failed: {e}"))),
    };
    // The caller may have timed out and gone; nothing to do then.
    let _ = reply.send(res);
}

impl Done {
    fn finish(self, commit: &Result<(), String>) {
        match self {
            Done::Boxed(f) => f(commit),
            Done::Unit(r, res) => send(r, res, commit),
            Done::Rotate(r, res) => send(r, res, commit),
            Done::Flag(r, res) => send(r, res, commit),
            Done::Samples(r, res, n) => {
                if commit.is_ok() {
                    metrics::counter!(crate::metrics::STORE_SAMPLES_WRITTEN).increment(n as u64);
                }
                send(r, res, commit)
            }
        }
    }
}

/// Runs until the queue is closed or an [`Op::Close`] arrives.
pub(super) fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Op>,
    max_batch_ops: usize,
    checkpoints: super::checkpoint::Notify,
) {
    let mut ops = Vec::with_capacity(max_batch_ops);
    // `SqliteStore::open` purged just before starting this thread.
    let mut purged = Instant::now();
    while let Some(first) = rx.blocking_recv() {
        if purged.elapsed() >= PURGE_EVERY {
            purge(&mut conn);
            purged = Instant::now();
        }
        ops.push(first);
        while ops.len() < max_batch_ops {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let mut close = None;
        let started = Instant::now();
        let batch = ops.len();
        let (done, commit) = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(mut tx) => {
                let mut done = Vec::with_capacity(ops.len());
                for op in ops.drain(..) {
                    match op {
                        Op::Close(ack) => close = Some(ack),
                        op => done.push(exec(&mut tx, op)),
                    }
                }
                let commit = tx.commit().map_err(|e| e.to_string());
                (done, commit)
            }
            Err(e) => {
                let msg = e.to_string();
                let done = ops
                    .drain(..)
                    .filter_map(|op| match op {
                        Op::Close(ack) => {
                            close = Some(ack);
                            None
                        }
                        op => Some(fail(op, &msg)),
                    })
                    .collect();
                (done, Err(msg))
            }
        };
        if let Err(e) = &commit {
            tracing::error!(error = %e, ops = batch, "sqlite commit failed");
        }
        metrics::histogram!(crate::metrics::STORE_COMMIT_SECONDS)
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!(crate::metrics::STORE_COMMIT_OPS).record(batch as f64);
        for d in done {
            d.finish(&commit);
        }
        checkpoints.committed();
        if let Some(ack) = close {
            let _ = ack.send(());
            return;
        }
    }
}

/// Forgets expired tombstones; a failure is logged and retried at the next turn.
fn purge(conn: &mut Connection) {
    let res = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .and_then(|tx| {
            let n = super::sync::purge_tombstones(&tx, Utc::now().timestamp_millis())?;
            tx.commit()?;
            Ok(n)
        });
    match res {
        Ok(n) => tracing::debug!(tombstones = n, "expired tombstones purged"),
        Err(e) => tracing::warn!(error = %e, "tombstone purge failed"),
    }
}

fn fail(op: Op, msg: &str) -> Done {
    fn err<T>(msg: &str) -> StoreResult<T> {
        Err(StoreError::Other(anyhow::anyhow!(
            "transaction failed: {msg}"
        )))
    }
    match op {
        Op::CreateUser(_, r) | Op::InsertRefresh(_, r) => Done::Unit(r, err(msg)),
        Op::Rotate { reply, .. } => Done::Rotate(reply, err(msg)),
        Op::WriteSamples { reply, .. } => Done::Samples(reply, err(msg), 0),
        Op::InsertDoc(_, _, reply) => Done::Flag(reply, err(msg)),
        Op::Call(f) => {
            let msg = msg.to_owned();
            Done::Boxed(Box::new(move |_| {
                // Dropping the op drops its reply sender: the caller sees the writer's error.
                drop(f);
                tracing::debug!(error = %msg, "write not run: transaction failed");
            }))
        }
        Op::Close(_) => unreachable!("close is handled by the caller"),
    }
}

fn exec(tx: &mut rusqlite::Transaction<'_>, op: Op) -> Done {
    match op {
        Op::CreateUser(user, reply) => {
            Done::Unit(reply, in_savepoint(tx, |c| create_user(c, &user)))
        }
        Op::InsertRefresh(rec, reply) => {
            Done::Unit(reply, in_savepoint(tx, |c| insert_refresh(c, &rec)))
        }
        Op::Rotate {
            old_hash,
            new,
            now,
            reply,
        } => Done::Rotate(reply, in_savepoint(tx, |c| rotate(c, &old_hash, new, now))),
        Op::WriteSamples {
            user,
            ops,
            reply,
            budget: _budget,
        } => {
            let n = ops.len();
            let now_ms = Utc::now().timestamp_millis();
            Done::Samples(
                reply,
                in_savepoint(tx, |c| super::sync::write_ops(c, user, &ops, now_ms)),
                n,
            )
        }
        Op::InsertDoc(kind, d, reply) => {
            Done::Flag(reply, in_savepoint(tx, |c| insert_doc(c, kind, &d)))
        }
        Op::Call(f) => f(tx),
        Op::Close(_) => unreachable!("close is handled by the caller"),
    }
}

fn insert_doc(c: &Connection, kind: DocKind, a: &DocRecord) -> StoreResult<bool> {
    c.prepare_cached(
        "INSERT INTO documents (kind, user_id, id, created_at, window_from, window_to, body)
         VALUES (?7, ?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (kind, user_id, id) DO NOTHING",
    )
    .and_then(|mut st| {
        st.execute(params![
            &a.user_id.as_bytes()[..],
            &a.id.as_bytes()[..],
            a.created_at.timestamp_millis(),
            a.window_from_ms,
            a.window_to_ms,
            a.body,
            kind.code()
        ])
    })
    .map(|changed| changed == 1)
    .map_err(other)
}

pub(super) fn in_savepoint<T>(
    tx: &mut rusqlite::Transaction<'_>,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let sp = tx.savepoint().map_err(other)?;
    let res = f(&sp)?;
    sp.commit().map_err(other)?;
    Ok(res)
}

fn other(e: rusqlite::Error) -> StoreError {
    StoreError::Other(e.into())
}

fn create_user(c: &Connection, u: &UserRecord) -> StoreResult<()> {
    let res = c
        .prepare_cached(
            "INSERT INTO users (id, email, display_name, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut st| {
            st.execute(params![
                u.id.as_bytes(),
                u.email,
                u.display_name,
                u.password_hash,
                u.created_at.timestamp_millis()
            ])
        });
    match res {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StoreError::EmailTaken)
        }
        Err(e) => Err(other(e)),
    }
}

fn insert_refresh(c: &Connection, r: &RefreshTokenRecord) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut st| {
        st.execute(params![
            &r.token_hash[..],
            r.user_id.as_bytes(),
            r.family_id.as_bytes(),
            r.expires_at.timestamp_millis()
        ])
    })
    .map(|_| ())
    .map_err(other)
}

fn rotate(
    c: &Connection,
    old_hash: &[u8; 32],
    mut new: RefreshTokenRecord,
    now: DateTime<Utc>,
) -> StoreResult<RotateOutcome> {
    struct Row {
        user: Vec<u8>,
        family: Vec<u8>,
        expires_at: i64,
        used: bool,
        revoked: bool,
    }
    let row = c
        .prepare_cached(
            "SELECT user_id, family_id, expires_at, used_at IS NOT NULL, revoked
             FROM refresh_tokens WHERE token_hash = ?1",
        )
        .and_then(|mut st| {
            st.query_row([&old_hash[..]], |r| {
                Ok(Row {
                    user: r.get(0)?,
                    family: r.get(1)?,
                    expires_at: r.get(2)?,
                    used: r.get(3)?,
                    revoked: r.get(4)?,
                })
            })
            .optional()
        })
        .map_err(other)?;
    let Some(Row {
        user,
        family,
        expires_at,
        used,
        revoked,
    }) = row
    else {
        return Ok(RotateOutcome::Invalid);
    };
    let family_id = Uuid::from_slice(&family).map_err(|e| StoreError::Other(e.into()))?;
    let user_id = Uuid::from_slice(&user).map_err(|e| StoreError::Other(e.into()))?;
    if revoked {
        return Ok(RotateOutcome::Invalid);
    }
    if used {
        c.prepare_cached("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = ?1")
            .and_then(|mut st| st.execute([&family[..]]))
            .map_err(other)?;
        return Ok(RotateOutcome::Reused { user_id, family_id });
    }
    if expires_at <= now.timestamp_millis() {
        return Ok(RotateOutcome::Invalid);
    }
    c.prepare_cached("UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1")
        .and_then(|mut st| st.execute(params![&old_hash[..], now.timestamp_millis()]))
        .map_err(other)?;
    new.family_id = family_id;
    new.user_id = user_id;
    insert_refresh(c, &new)?;
    Ok(RotateOutcome::Rotated { user_id, family_id })
}

/// Revokes the family of `token_hash` when the token is `user`'s; returns the family.
pub(super) fn revoke_family(
    c: &Connection,
    token_hash: &[u8; 32],
    user: Uuid,
) -> StoreResult<Option<Uuid>> {
    let row: Option<(Vec<u8>, Vec<u8>)> = c
        .prepare_cached("SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = ?1")
        .and_then(|mut st| {
            st.query_row([&token_hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(other)?;
    let Some((_, family)) = row.filter(|(owner, _)| owner[..] == user.as_bytes()[..]) else {
        return Ok(None);
    };
    c.prepare_cached("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = ?1")
        .and_then(|mut st| st.execute([&family[..]]))
        .map_err(other)?;
    Uuid::from_slice(&family)
        .map(Some)
        .map_err(|e| StoreError::Other(e.into()))
}
