//! The store of the ceiling run: sample writes go onto an in-memory queue and are acked at
//! once; everything else (accounts, tokens, documents, streams) is the real SQLite store's, so
//! that the server around it does exactly what it does in production.
//!
//! The analyses that completed days trigger read their week's samples back: from the queue
//! run's store they read nothing (its samples were never stored). [`Writes::Store`] is the
//! real store's write path with the same blind reads, so that comparing it with the queue
//! prices the writes alone; the plain SQLite run prices writes and reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clarity::store::{
    AuditPage, AuditRecord, ChangePage, DocKind, DocPage, DocQuery, DocRecord, Erased, OpOutcome,
    RefreshTokenRecord, RotateOutcome, SampleOp, SamplePage, SampleQuery, ShareRecord, Store,
    StoreResult, StreamEvent, UserRecord, WriteResult,
};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Where sample writes go.
#[derive(Clone, Copy, PartialEq)]
pub enum Writes {
    /// The in-memory queue; sample reads go to the store (which has none).
    Queue,
    /// The real store; sample reads find nothing, as they do in the queue run.
    Store,
}

pub struct QueueStore {
    inner: Arc<dyn Store>,
    writes: Writes,
    queue: mpsc::UnboundedSender<(Uuid, Vec<SampleOp>)>,
    /// Change sequence numbers: strictly increasing per user (gaps allowed), as the contract
    /// asks; one counter for all users is the cheapest such sequence.
    seq: AtomicU64,
}

impl QueueStore {
    /// Wraps `inner`; the queue's consumer (drops what it takes) runs on the current runtime.
    pub fn new(inner: Arc<dyn Store>, writes: Writes) -> QueueStore {
        let (queue, mut rx) = mpsc::unbounded_channel::<(Uuid, Vec<SampleOp>)>();
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        QueueStore {
            inner,
            writes,
            queue,
            seq: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl Store for QueueStore {
    async fn write_samples(&self, user: Uuid, ops: Vec<SampleOp>) -> StoreResult<WriteResult> {
        if self.writes == Writes::Store {
            return self.inner.write_samples(user, ops).await;
        }
        let mut out = WriteResult {
            outcomes: Vec::with_capacity(ops.len()),
            ..WriteResult::default()
        };
        for op in &ops {
            match op {
                SampleOp::Put(_) => {
                    out.outcomes.push(OpOutcome::Inserted);
                    out.seqs.push(self.seq.fetch_add(1, Ordering::Relaxed) + 1);
                }
                SampleOp::Delete(_) => out.outcomes.push(OpOutcome::NotFound),
            }
        }
        let _ = self.queue.send((user, ops));
        Ok(out)
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn create_user(&self, user: UserRecord) -> StoreResult<()> {
        self.inner.create_user(user).await
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        self.inner.user_by_email(email).await
    }
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        self.inner.user_by_id(id).await
    }
    async fn insert_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<()> {
        self.inner.insert_refresh_token(token).await
    }
    async fn rotate_refresh_token(
        &self,
        old_hash: [u8; 32],
        new: RefreshTokenRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        self.inner.rotate_refresh_token(old_hash, new, now).await
    }
    async fn revoke_refresh_family(
        &self,
        token_hash: [u8; 32],
        user: Uuid,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>> {
        self.inner
            .revoke_refresh_family(token_hash, user, keep_until)
            .await
    }
    async fn changes(&self, user: Uuid, after: u64, limit: usize) -> StoreResult<ChangePage> {
        self.inner.changes(user, after, limit).await
    }
    async fn erase_user(&self, user: Uuid) -> StoreResult<Erased> {
        self.inner.erase_user(user).await
    }
    async fn pending_erasures(&self) -> StoreResult<Vec<Uuid>> {
        self.inner.pending_erasures().await
    }
    async fn pending_revisions(&self, user: Uuid) -> StoreResult<Vec<clarity::store::Revision>> {
        self.inner.pending_revisions(user).await
    }
    async fn clear_revisions(&self, user: Uuid, ranges: Vec<(u64, u64)>) -> StoreResult<()> {
        self.inner.clear_revisions(user, ranges).await
    }
    async fn set_superseded(
        &self,
        kind: DocKind,
        user: Uuid,
        id: Uuid,
        by: Option<Uuid>,
    ) -> StoreResult<bool> {
        self.inner.set_superseded(kind, user, id, by).await
    }
    async fn query_samples(&self, user: Uuid, query: SampleQuery) -> StoreResult<SamplePage> {
        if self.writes == Writes::Store {
            return Ok(SamplePage {
                samples: Vec::new(),
                next: None,
            });
        }
        self.inner.query_samples(user, query).await
    }
    async fn put_doc(&self, kind: DocKind, doc: DocRecord) -> StoreResult<bool> {
        self.inner.put_doc(kind, doc).await
    }
    async fn get_doc(&self, kind: DocKind, user: Uuid, id: Uuid) -> StoreResult<Option<DocRecord>> {
        self.inner.get_doc(kind, user, id).await
    }
    async fn list_docs(&self, kind: DocKind, user: Uuid, query: DocQuery) -> StoreResult<DocPage> {
        self.inner.list_docs(kind, user, query).await
    }
    async fn put_share(&self, share: ShareRecord) -> StoreResult<ShareRecord> {
        self.inner.put_share(share).await
    }
    async fn get_share(&self, id: Uuid) -> StoreResult<Option<ShareRecord>> {
        self.inner.get_share(id).await
    }
    async fn delete_share(&self, share: &ShareRecord) -> StoreResult<bool> {
        self.inner.delete_share(share).await
    }
    async fn shares_of(&self, user: Uuid) -> StoreResult<Vec<ShareRecord>> {
        self.inner.shares_of(user).await
    }
    async fn has_share(&self, owner: Uuid, grantee: Uuid, scope: DocKind) -> StoreResult<bool> {
        self.inner.has_share(owner, grantee, scope).await
    }
    async fn epoch(&self) -> StoreResult<String> {
        self.inner.epoch().await
    }
    async fn append_event(
        &self,
        user: Uuid,
        kind: DocKind,
        body: String,
        keep: u64,
    ) -> StoreResult<u64> {
        self.inner.append_event(user, kind, body, keep).await
    }
    async fn stream_head(&self, user: Uuid, kind: DocKind) -> StoreResult<u64> {
        self.inner.stream_head(user, kind).await
    }
    async fn read_events(
        &self,
        user: Uuid,
        kind: DocKind,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StreamEvent>> {
        self.inner.read_events(user, kind, after, limit).await
    }
    async fn append_audit(&self, entry: AuditRecord) -> StoreResult<()> {
        self.inner.append_audit(entry).await
    }
    async fn list_audit(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        self.inner.list_audit(owner, before, limit).await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}
