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
//! - A transaction that fails (SQLite may roll it back by itself, e.g. on `SQLITE_FULL`)
//!   fails every op of its batch: none is acked, none of the rest runs outside it. A full
//!   disk is a retryable refusal ([`super::health`]).
//! - A panic in a batch fails that batch's ops (their replies are dropped: `Unavailable`) and
//!   the thread goes on with the next; it never ends but on [`Op::Close`].
//! - Tombstones past their retention are forgotten here, in their own transaction, at most
//!   once per [`PURGE_EVERY`] (checked when work arrives: an idle store has nothing to purge
//!   for).

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::accounts::{create_user, insert_refresh, rotate};
use super::health::{self, WriteHealth};
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
pub(super) type Finish = Box<dyn FnOnce(&Outcome) + Send>;

/// The fate of a batch's transaction.
pub(super) type Outcome = Result<(), TxFailure>;

/// Why a batch's transaction did not commit.
#[derive(Debug, Clone)]
pub(super) enum TxFailure {
    /// `SQLITE_FULL`: retryable once space is freed (see [`super::health`]).
    DiskFull,
    Other(String),
}

impl TxFailure {
    fn of(e: &rusqlite::Error) -> TxFailure {
        if health::is_disk_full(e) {
            TxFailure::DiskFull
        } else {
            TxFailure::Other(e.to_string())
        }
    }

    /// What each op of the failed transaction answers.
    fn error(&self) -> StoreError {
        match self {
            TxFailure::DiskFull => health::disk_full(),
            TxFailure::Other(msg) => StoreError::Other(anyhow::anyhow!("commit failed: {msg}")),
        }
    }
}

/// An executed op waiting for the transaction's fate.
pub(super) enum Done {
    Unit(Reply<()>, StoreResult<()>),
    Rotate(Reply<RotateOutcome>, StoreResult<RotateOutcome>),
    Samples(Reply<WriteResult>, StoreResult<WriteResult>, usize),
    Flag(Reply<bool>, StoreResult<bool>),
    Boxed(Finish),
}

pub(super) fn send<T>(reply: Reply<T>, res: StoreResult<T>, commit: &Outcome) {
    let res = match commit {
        Ok(()) => res,
        Err(f) => Err(f.error()),
    };
    // The caller may have timed out and gone; nothing to do then.
    let _ = reply.send(res);
}

impl Done {
    fn finish(self, commit: &Outcome) {
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

thread_local! {
    /// Set by [`in_savepoint`] when an op met `SQLITE_FULL`; read and reset per batch. Ops
    /// hand their results to closures the writer cannot look into, so it learns it here.
    static SAW_DISK_FULL: Cell<bool> = const { Cell::new(false) };
}

/// Runs until the queue is closed or an [`Op::Close`] arrives.
pub(super) fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Op>,
    max_batch_ops: usize,
    checkpoints: super::checkpoint::Notify,
    health: Arc<WriteHealth>,
) {
    let mut ops = Vec::with_capacity(max_batch_ops);
    // `SqliteStore::open` purged just before starting this thread.
    let mut purged = Instant::now();
    while let Some(first) = rx.blocking_recv() {
        if purged.elapsed() >= PURGE_EVERY {
            purge(&mut conn);
            purged = Instant::now();
        }
        let mut close = None;
        let mut next = Some(first);
        while let Some(op) = next.take() {
            match op {
                Op::Close(ack) => close = Some(ack),
                op => ops.push(op),
            }
            if ops.len() < max_batch_ops {
                next = rx.try_recv().ok();
            }
        }
        if !ops.is_empty() {
            // A panic (a bug in an op, a metrics recorder...) must not end the thread: the
            // store would answer "closed" to every write until a restart. The batch's
            // transaction is rolled back, its callers see their reply dropped (`Unavailable`,
            // retryable: nothing of it was acked) and the next batch runs as usual.
            let batch = std::panic::catch_unwind(AssertUnwindSafe(|| {
                commit_batch(&mut conn, &mut ops, &health)
            }));
            if batch.is_err() {
                metrics::counter!(crate::metrics::STORE_WRITER_PANICS).increment(1);
                ops.clear();
                let rolled_back = conn.is_autocommit() || conn.execute_batch("ROLLBACK").is_ok();
                tracing::error!(
                    rolled_back,
                    "sqlite writer: a write batch panicked; its writes were refused and the \
                     writer goes on"
                );
            }
        }
        checkpoints.committed();
        if let Some(ack) = close {
            // Every connection of the writer's side is closed before the close is answered.
            checkpoints.stop();
            drop(conn);
            let _ = ack.send(());
            return;
        }
    }
}

/// Runs `ops` in one transaction and answers each of them.
fn commit_batch(conn: &mut Connection, ops: &mut Vec<Op>, health: &WriteHealth) {
    let started = Instant::now();
    let batch = ops.len();
    SAW_DISK_FULL.set(false);
    let (done, commit) = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(mut tx) => {
            let mut done = Vec::with_capacity(batch);
            let mut pending = ops.drain(..);
            let mut vanished = false;
            for op in pending.by_ref() {
                done.push(exec(&mut tx, op));
                // On some errors (SQLITE_FULL, IOERR, NOMEM) SQLite rolls the whole
                // transaction back: the ops before are undone, and the next op's savepoint
                // would open (and its release commit) a transaction of its own. So stop here;
                // nothing of this batch is acked.
                if tx.is_autocommit() {
                    vanished = true;
                    break;
                }
            }
            if vanished {
                let failure = if SAW_DISK_FULL.get() {
                    TxFailure::DiskFull
                } else {
                    TxFailure::Other("SQLite rolled the transaction back".into())
                };
                done.extend(pending.map(|op| fail(op, &failure)));
                (done, Err(failure))
            } else {
                drop(pending);
                let commit = tx.commit().map_err(|e| TxFailure::of(&e));
                (done, commit)
            }
        }
        Err(e) => {
            let failure = TxFailure::of(&e);
            let done = ops.drain(..).map(|op| fail(op, &failure)).collect();
            (done, Err(failure))
        }
    };
    match &commit {
        Ok(()) if !SAW_DISK_FULL.get() => health.committed(),
        Ok(()) => health.full(),
        Err(TxFailure::DiskFull) => {
            health.full();
            tracing::debug!(ops = batch, "sqlite commit refused: disk full");
        }
        Err(TxFailure::Other(e)) => {
            tracing::error!(error = %e, ops = batch, "sqlite commit failed")
        }
    }
    metrics::histogram!(crate::metrics::STORE_COMMIT_SECONDS)
        .record(started.elapsed().as_secs_f64());
    metrics::histogram!(crate::metrics::STORE_COMMIT_OPS).record(batch as f64);
    for d in done {
        d.finish(&commit);
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

/// Answers an op that never ran because its transaction failed.
fn fail(op: Op, failure: &TxFailure) -> Done {
    fn err<T>(failure: &TxFailure) -> StoreResult<T> {
        Err(failure.error())
    }
    match op {
        Op::CreateUser(_, r) | Op::InsertRefresh(_, r) => Done::Unit(r, err(failure)),
        Op::Rotate { reply, .. } => Done::Rotate(reply, err(failure)),
        Op::WriteSamples { reply, .. } => Done::Samples(reply, err(failure), 0),
        Op::InsertDoc(_, _, reply) => Done::Flag(reply, err(failure)),
        Op::Call(f) => {
            let failure = failure.clone();
            Done::Boxed(Box::new(move |_| {
                // Dropping the op drops its reply sender: the caller sees the writer's error.
                drop(f);
                tracing::debug!(failure = ?failure, "write not run: transaction failed");
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
    super::sync::refuse_erased(c, &a.user_id.as_bytes()[..])?;
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
    let res = tx.savepoint().map_err(other).and_then(|sp| {
        let res = f(&sp)?;
        sp.commit().map_err(other)?;
        Ok(res)
    });
    match res {
        Err(e) if health::is_disk_full_error(&e) => {
            SAW_DISK_FULL.set(true);
            Err(health::disk_full())
        }
        res => res,
    }
}

pub(super) fn other(e: rusqlite::Error) -> StoreError {
    StoreError::Other(e.into())
}
