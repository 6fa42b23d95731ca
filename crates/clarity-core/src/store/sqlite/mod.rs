//! Embedded store: one SQLite database file in WAL mode.
//!
//! Rules:
//! - Writes go through the single writer thread ([`writer`]) and its bounded queue; a full
//!   queue is [`StoreError::Overloaded`], never an unbounded backlog.
//! - Reads run on a small pool of read-only connections on the blocking thread pool; WAL lets
//!   them proceed while the writer commits.
//! - `synchronous=FULL` by default: an acknowledged batch survives power loss, not only a
//!   process crash. Group commit is what keeps that affordable.
//! - With a data key every page of the file, its WAL and its indexes is encrypted (SQLCipher,
//!   [`key`]); without one the file is plain SQLite, as it always was.

mod accounts;
mod audit;
mod checkpoint;
mod health;
pub mod key;
mod ranges;
mod samples;
mod schema;
mod streams;
mod sync;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use super::{
    AuditPage, AuditRecord, ChangePage, DocCursor, DocKind, DocPage, DocQuery, DocRecord, Erased,
    RefreshTokenRecord, RotateOutcome, SampleOp, SamplePage, SampleQuery, ShareRecord, Store,
    StoreError, StoreResult, StreamEvent, UserRecord, WriteResult,
};
use crate::samples::{Extra, Kind, Sample, Timestamp};
pub use key::DataKey;
use writer::Op;

/// Tuning for [`SqliteStore::open`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `FULL` (fsync every commit) or `NORMAL` (survives process crashes, not power loss).
    pub synchronous: String,
    /// Writes waiting for the writer thread before callers get `Overloaded`.
    pub queue_depth: usize,
    /// Samples waiting for the writer thread before callers get `Overloaded`: bounds memory
    /// and ack latency under overload whatever the batch sizes.
    pub max_pending_samples: usize,
    /// Most ops folded into one transaction.
    pub max_batch_ops: usize,
    /// Concurrent readers.
    pub readers: usize,
    /// Longest wait for any store operation.
    pub timeout: Duration,
    /// Encrypts the database (SQLCipher); `None`: a plain SQLite file.
    pub key: Option<DataKey>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: "FULL".into(),
            queue_depth: 65_536,
            max_pending_samples: 200_000,
            max_batch_ops: 512,
            readers: 4,
            timeout: Duration::from_secs(5),
            key: None,
        }
    }
}

pub struct SqliteStore {
    writes: mpsc::Sender<Op>,
    pending_samples: Arc<Semaphore>,
    readers: Arc<ReadPool>,
    read_permits: Semaphore,
    timeout: Duration,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Whether writes fail for lack of space; see [`health`].
    health: Arc<health::WriteHealth>,
    /// Created with the database file; see [`Store::epoch`].
    epoch: String,
    /// Shared lock on [`LOCK_FILE`] until [`Store::close`] (see [`lock_shared`]).
    in_use: Mutex<Option<std::fs::File>>,
}

/// Beside the database: every process that opens the store holds a shared lock on it, and
/// `clarity rekey` takes it exclusively, so a store is never rekeyed under a running server
/// (SQLite's own locks only show a connection while it is inside a transaction).
pub const LOCK_FILE: &str = "clarity.db.lock";

/// Marks `dir`'s store in use by this process until the returned file is dropped; refused
/// while `clarity rekey` holds it.
pub fn lock_shared(dir: &Path) -> anyhow::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock_shared() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "the store in {} is being rekeyed (`clarity rekey` holds {LOCK_FILE}); start the \
             server when it has finished",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/clarity.db` and starts the writer thread.
    pub fn open(dir: &Path, opts: SqliteOptions) -> anyhow::Result<SqliteStore> {
        let sync = opts.synchronous.to_ascii_uppercase();
        anyhow::ensure!(
            matches!(sync.as_str(), "FULL" | "NORMAL" | "EXTRA"),
            "sqlite synchronous must be FULL, NORMAL or EXTRA, not {sync}"
        );
        std::fs::create_dir_all(dir)?;
        let in_use = lock_shared(dir)?;
        let path = dir.join("clarity.db");
        let mut conn = key::open(&path, OpenFlags::default(), opts.key.as_ref())?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", &sync)?;
        // Every active user keeps a hot leaf in each of the three sample B-trees; SQLite's
        // 2 MiB default cache thrashes at a few hundred users.
        conn.pragma_update(None, "cache_size", -64 * 1024)?;
        // Each op runs in a savepoint, and SQLite copies every page an op first touches to
        // the savepoint's journal; by default that journal is a temporary file (a pwrite per
        // page: 9% of the writer's time under saturated ingest). Kept in memory, it costs a
        // copy; it only has to outlive the op, never a crash.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        schema::migrate(&mut conn)?;
        conn.execute_batch(streams::SCHEMA)?;
        conn.execute_batch(audit::SCHEMA)?;
        let epoch = streams::init_epoch(&conn)?;
        sync::purge_tombstones(&conn, Utc::now().timestamp_millis())?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::WRITER_LIMIT_PAGES)?;
        let checkpoints = checkpoint::spawn(&path, &sync, opts.key.as_ref())?;

        let (tx, rx) = mpsc::channel(opts.queue_depth.max(1));
        let max_batch = opts.max_batch_ops.max(1);
        let health = Arc::new(health::WriteHealth::new());
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn({
                let health = health.clone();
                move || writer::run(conn, rx, max_batch, checkpoints, health)
            })?;
        Ok(SqliteStore {
            writes: tx,
            pending_samples: Arc::new(Semaphore::new(
                opts.max_pending_samples.clamp(1, Semaphore::MAX_PERMITS),
            )),
            readers: Arc::new(ReadPool {
                path,
                key: opts.key,
                idle: Mutex::new(Vec::new()),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
            read_permits: Semaphore::new(opts.readers.max(1)),
            timeout: opts.timeout,
            writer: Mutex::new(Some(writer)),
            health,
            epoch,
            in_use: Mutex::new(Some(in_use)),
        })
    }

    async fn write<T>(&self, make: impl FnOnce(writer::Reply<T>) -> Op) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        self.writes.try_send(make(tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => StoreError::Unavailable("store closed".into()),
        })?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(res)) => res,
            Ok(Err(_)) => Err(StoreError::Unavailable("writer stopped".into())),
            Err(_) => Err(StoreError::Timeout),
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let work = async {
            let _permit = self
                .read_permits
                .acquire()
                .await
                .map_err(|_| StoreError::Unavailable("store closed".into()))?;
            let pool = self.readers.clone();
            tokio::task::spawn_blocking(move || pool.with(f))
                .await
                .map_err(|e| StoreError::Other(e.into()))?
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| StoreError::Timeout)?
    }
}

struct ReadPool {
    path: PathBuf,
    key: Option<DataKey>,
    idle: Mutex<Vec<Connection>>,
    /// Set by [`Store::close`]: no connection is opened or kept any more.
    closed: std::sync::atomic::AtomicBool,
}

impl ReadPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StoreError::Unavailable("store closed".into()));
        }
        let conn = self.idle.lock().expect("read pool poisoned").pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                key::key_connection(&c, self.key.as_ref())
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                c.busy_timeout(Duration::from_secs(5))
                    .map_err(|e| StoreError::Other(e.into()))?;
                c
            }
        };
        let res = f(&conn).map_err(|e| StoreError::Other(e.into()));
        let mut idle = self.idle.lock().expect("read pool poisoned");
        if !self.closed.load(std::sync::atomic::Ordering::Acquire) {
            idle.push(conn);
        }
        res
    }

    /// Closes the idle connections; those in use close when their read ends.
    fn close(&self) {
        let mut idle = self.idle.lock().expect("read pool poisoned");
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        idle.clear();
    }
}

fn ms_to_utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    let id: Vec<u8> = r.get(0)?;
    Ok(UserRecord {
        id: Uuid::from_slice(&id).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, e.into())
        })?,
        email: r.get(1)?,
        display_name: r.get(2)?,
        password_hash: r.get(3)?,
        created_at: ms_to_utc(r.get(4)?),
    })
}

/// The columns [`sample_from_row`] reads, in its order.
const SAMPLE_COLUMNS: &str =
    "id, kind, start_ms, start_off, end_ms, end_off, value, source, extra, version";

fn sample_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Sample> {
    let kind: i64 = r.get(1)?;
    let end_ms: Option<i64> = r.get(4)?;
    let end_off: Option<i32> = r.get(5)?;
    Ok(Sample {
        version: r.get(9)?,
        id: r.get(0)?,
        kind: Kind::from_code(kind).ok_or(rusqlite::Error::IntegralValueOutOfRange(1, kind))?,
        start: Timestamp {
            utc_ms: r.get(2)?,
            offset_secs: r.get(3)?,
        },
        end: end_ms.map(|utc_ms| Timestamp {
            utc_ms,
            offset_secs: end_off.unwrap_or(0),
        }),
        value: r.get(6)?,
        source: r.get(7)?,
        extra: extra_from_column(r, 8)?,
    })
}

/// The `extra` column: NULL, or the JSON of [`Extra`].
fn extra_from_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<Box<Extra>>> {
    let text: Option<String> = r.get(i)?;
    text.map(|t| {
        Extra::from_bytes(t.as_bytes())
            .map(Box::new)
            .ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    i,
                    rusqlite::types::Type::Text,
                    "not the JSON of a sample's extra fields".into(),
                )
            })
    })
    .transpose()
}

const DOC_COLUMNS: &str =
    "SELECT id, user_id, created_at, window_from, window_to, body, superseded_by FROM documents";

fn doc_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocRecord> {
    let uuid = |i: usize| -> rusqlite::Result<Uuid> {
        let b: Vec<u8> = r.get(i)?;
        Uuid::from_slice(&b).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, e.into())
        })
    };
    let superseded_by: Option<Vec<u8>> = r.get(6)?;
    Ok(DocRecord {
        superseded_by: match superseded_by {
            Some(_) => Some(uuid(6)?),
            None => None,
        },
        id: uuid(0)?,
        user_id: uuid(1)?,
        created_at: ms_to_utc(r.get(2)?),
        window_from_ms: r.get(3)?,
        window_to_ms: r.get(4)?,
        body: r.get(5)?,
    })
}

const USER_COLUMNS: &str = "SELECT id, email, display_name, password_hash, created_at FROM users";

#[async_trait]
impl Store for SqliteStore {
    async fn write_samples(&self, user: Uuid, ops: Vec<SampleOp>) -> StoreResult<WriteResult> {
        if ops.is_empty() {
            return Ok(WriteResult::default());
        }
        let weight = u32::try_from(ops.len()).map_err(|_| StoreError::Overloaded)?;
        let budget = self
            .pending_samples
            .clone()
            .try_acquire_many_owned(weight)
            .map_err(|_| StoreError::Overloaded)?;
        self.write(|reply| Op::WriteSamples {
            user,
            ops,
            reply,
            budget,
        })
        .await
    }

    async fn changes(&self, user: Uuid, after: u64, limit: usize) -> StoreResult<ChangePage> {
        self.read(move |c| sync::changes(c, user, after, limit))
            .await
    }

    async fn erase_user(&self, user: Uuid) -> StoreResult<Erased> {
        self.call(move |c| sync::erase_user(c, user)).await
    }

    async fn pending_erasures(&self) -> StoreResult<Vec<Uuid>> {
        // `erase_user` is one transaction: it either happened or not.
        Ok(Vec::new())
    }

    async fn pending_revisions(&self, user: Uuid) -> StoreResult<Vec<crate::store::Revision>> {
        self.read(move |c| sync::pending_revisions(c, user)).await
    }

    async fn clear_revisions(&self, user: Uuid, ranges: Vec<(u64, u64)>) -> StoreResult<()> {
        self.call(move |c| sync::clear_revisions(c, user, &ranges))
            .await
    }

    async fn set_superseded(
        &self,
        kind: DocKind,
        user: Uuid,
        id: Uuid,
        by: Option<Uuid>,
    ) -> StoreResult<bool> {
        self.call(move |c| sync::set_superseded(c, kind, user, id, by))
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        if self.writes.is_closed() {
            return Err(StoreError::Unavailable("store closed".into()));
        }
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    fn read_only(&self) -> Option<&'static str> {
        self.health.read_only()
    }

    async fn create_user(&self, user: UserRecord) -> StoreResult<()> {
        self.write(|reply| Op::CreateUser(user, reply)).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let email = email.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!("{USER_COLUMNS} WHERE email = ?1"))?
                .query_row([email], user_from_row)
                .optional()
        })
        .await
    }

    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!("{USER_COLUMNS} WHERE id = ?1"))?
                .query_row([&id.as_bytes()[..]], user_from_row)
                .optional()
        })
        .await
    }

    async fn insert_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<()> {
        self.write(|reply| Op::InsertRefresh(token, reply)).await
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: [u8; 32],
        new: RefreshTokenRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        self.write(|reply| Op::Rotate {
            old_hash,
            new,
            now,
            reply,
        })
        .await
    }

    async fn revoke_refresh_family(
        &self,
        token_hash: [u8; 32],
        user: Uuid,
        _keep_until: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>> {
        // Rows are kept past expiry here, so the revoked flag needs no lifetime.
        self.call(move |c| accounts::revoke_family(c, &token_hash, user))
            .await
    }

    async fn query_samples(&self, user: Uuid, q: SampleQuery) -> StoreResult<SamplePage> {
        self.read(move |c| samples::query(c, user, &q)).await
    }

    async fn put_doc(&self, kind: DocKind, doc: DocRecord) -> StoreResult<bool> {
        self.write(|reply| Op::InsertDoc(kind, doc, reply)).await
    }

    async fn get_doc(&self, kind: DocKind, user: Uuid, id: Uuid) -> StoreResult<Option<DocRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "{DOC_COLUMNS} WHERE kind = ?3 AND user_id = ?1 AND id = ?2"
            ))?
            .query_row(
                params![&user.as_bytes()[..], &id.as_bytes()[..], kind.code()],
                doc_from_row,
            )
            .optional()
        })
        .await
    }

    async fn list_docs(&self, kind: DocKind, user: Uuid, q: DocQuery) -> StoreResult<DocPage> {
        let limit = q.limit.max(1);
        self.read(move |c| {
            let (after_to, after_id) = match &q.after {
                Some(cur) => (cur.window_to_ms, cur.id.as_bytes().to_vec()),
                None => (i64::MIN, Vec::new()),
            };
            let mut docs: Vec<DocRecord> = c
                .prepare_cached(&format!(
                    "{DOC_COLUMNS} INDEXED BY documents_by_window
                     WHERE kind = ?7 AND user_id = ?1 AND window_to >= ?2 AND window_to < ?3
                       AND (window_to > ?4 OR (window_to = ?4 AND id > ?5))
                     ORDER BY window_to, id LIMIT ?6"
                ))?
                .query_map(
                    params![
                        &user.as_bytes()[..],
                        q.from_ms.unwrap_or(i64::MIN).max(after_to),
                        q.to_ms.unwrap_or(i64::MAX),
                        after_to,
                        after_id,
                        (limit + 1) as i64,
                        kind.code()
                    ],
                    doc_from_row,
                )?
                .collect::<rusqlite::Result<_>>()?;
            let next = if docs.len() > limit {
                docs.truncate(limit);
                docs.last().map(|a| DocCursor {
                    window_to_ms: a.window_to_ms,
                    id: a.id,
                })
            } else {
                None
            };
            Ok(DocPage { docs, next })
        })
        .await
    }

    async fn put_share(&self, share: ShareRecord) -> StoreResult<ShareRecord> {
        self.put_share_row(share).await
    }

    async fn get_share(&self, id: Uuid) -> StoreResult<Option<ShareRecord>> {
        self.get_share_row(id).await
    }

    async fn delete_share(&self, share: &ShareRecord) -> StoreResult<bool> {
        self.delete_share_row(share.id).await
    }

    async fn shares_of(&self, user: Uuid) -> StoreResult<Vec<ShareRecord>> {
        self.share_rows_of(user).await
    }

    async fn has_share(&self, owner: Uuid, grantee: Uuid, scope: DocKind) -> StoreResult<bool> {
        self.share_exists(owner, grantee, scope).await
    }

    async fn epoch(&self) -> StoreResult<String> {
        Ok(self.epoch.clone())
    }

    async fn append_event(
        &self,
        user: Uuid,
        kind: DocKind,
        body: String,
        keep: u64,
    ) -> StoreResult<u64> {
        self.append_event_row(user, kind, body, keep).await
    }

    async fn stream_head(&self, user: Uuid, kind: DocKind) -> StoreResult<u64> {
        self.event_head(user, kind).await
    }

    async fn read_events(
        &self,
        user: Uuid,
        kind: DocKind,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StreamEvent>> {
        self.event_rows(user, kind, after, limit).await
    }

    async fn append_audit(&self, entry: AuditRecord) -> StoreResult<()> {
        self.append_audit_row(entry).await
    }

    async fn list_audit(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        self.audit_rows(owner, before, limit).await
    }

    async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writes.send(Op::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let handle = self.writer.lock().expect("writer handle poisoned").take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        // Readers last; a read still running closes its connection when it ends. Then the
        // store is no longer in use: `clarity rekey` may take it although this handle lives on.
        self.read_permits.close();
        self.readers.close();
        self.in_use.lock().expect("lock file poisoned").take();
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_layout;
