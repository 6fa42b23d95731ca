//! One delegating store for the tests that step between the server and its store (faults,
//! races, reordered writes): [`wrap`] forwards every `Store` call to the real store after
//! asking an [`Intercept`], which overrides only what its test needs. A new `Store` method is
//! forwarded here once, not in every wrapper.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clarity::store::{
    AuditPage, AuditRecord, ChangePage, DocKind, DocPage, DocQuery, DocRecord, Erased,
    RefreshTokenRecord, RotateOutcome, SampleOp, SamplePage, SampleQuery, ShareRecord, Store,
    StoreResult, StreamEvent, UserRecord, WriteResult,
};
use uuid::Uuid;

/// The store operation being called, for [`Intercept::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ping,
    CreateUser,
    UserByEmail,
    UserById,
    InsertRefreshToken,
    RotateRefreshToken,
    RevokeRefreshFamily,
    WriteSamples,
    Changes,
    EraseUser,
    PendingErasures,
    PendingRevisions,
    ClearRevisions,
    SetSuperseded,
    QuerySamples,
    PutDoc,
    GetDoc,
    ListDocs,
    PutShare,
    GetShare,
    DeleteShare,
    SharesOf,
    HasShare,
    Epoch,
    AppendEvent,
    StreamHead,
    ReadEvents,
    AppendAudit,
    ListAudit,
}

impl Op {
    /// Accounts and refresh tokens: what signing up and logging in use.
    pub fn is_account(self) -> bool {
        matches!(
            self,
            Op::CreateUser
                | Op::UserByEmail
                | Op::UserById
                | Op::InsertRefreshToken
                | Op::RotateRefreshToken
                | Op::RevokeRefreshFamily
        )
    }
}

/// What a test does to the calls: `check` may fail any of them; the other methods replace
/// one operation (the default forwards it to `inner`).
#[async_trait]
pub trait Intercept: Send + Sync + 'static {
    /// Asked before each call (not `close`); an error is the call's answer.
    fn check(&self, _op: Op) -> StoreResult<()> {
        Ok(())
    }
    async fn user_by_email(
        &self,
        inner: &dyn Store,
        email: &str,
    ) -> StoreResult<Option<UserRecord>> {
        inner.user_by_email(email).await
    }
    async fn user_by_id(&self, inner: &dyn Store, id: Uuid) -> StoreResult<Option<UserRecord>> {
        inner.user_by_id(id).await
    }
    async fn write_samples(
        &self,
        inner: &dyn Store,
        user: Uuid,
        ops: Vec<SampleOp>,
    ) -> StoreResult<WriteResult> {
        inner.write_samples(user, ops).await
    }
    async fn set_superseded(
        &self,
        inner: &dyn Store,
        kind: DocKind,
        user: Uuid,
        id: Uuid,
        by: Option<Uuid>,
    ) -> StoreResult<bool> {
        inner.set_superseded(kind, user, id, by).await
    }
    async fn changes(
        &self,
        inner: &dyn Store,
        user: Uuid,
        after: u64,
        limit: usize,
    ) -> StoreResult<ChangePage> {
        inner.changes(user, after, limit).await
    }
    async fn has_share(
        &self,
        inner: &dyn Store,
        owner: Uuid,
        grantee: Uuid,
        scope: DocKind,
    ) -> StoreResult<bool> {
        inner.has_share(owner, grantee, scope).await
    }
    async fn append_audit(&self, inner: &dyn Store, entry: AuditRecord) -> StoreResult<()> {
        inner.append_audit(entry).await
    }
    async fn pending_erasures(&self, inner: &dyn Store) -> StoreResult<Vec<Uuid>> {
        inner.pending_erasures().await
    }
}

/// `inner`, with `intercept` between it and the server.
pub fn wrap(inner: Arc<dyn Store>, intercept: impl Intercept) -> Arc<dyn Store> {
    Arc::new(Wrapped { inner, intercept })
}

struct Wrapped<I> {
    inner: Arc<dyn Store>,
    intercept: I,
}

#[async_trait]
impl<I: Intercept> Store for Wrapped<I> {
    async fn ping(&self) -> StoreResult<()> {
        self.intercept.check(Op::Ping)?;
        self.inner.ping().await
    }
    fn read_only(&self) -> Option<&'static str> {
        self.inner.read_only()
    }
    async fn create_user(&self, user: UserRecord) -> StoreResult<()> {
        self.intercept.check(Op::CreateUser)?;
        self.inner.create_user(user).await
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        self.intercept.check(Op::UserByEmail)?;
        self.intercept.user_by_email(&*self.inner, email).await
    }
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        self.intercept.check(Op::UserById)?;
        self.intercept.user_by_id(&*self.inner, id).await
    }
    async fn insert_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<()> {
        self.intercept.check(Op::InsertRefreshToken)?;
        self.inner.insert_refresh_token(token).await
    }
    async fn rotate_refresh_token(
        &self,
        old_hash: [u8; 32],
        new: RefreshTokenRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        self.intercept.check(Op::RotateRefreshToken)?;
        self.inner.rotate_refresh_token(old_hash, new, now).await
    }
    async fn revoke_refresh_family(
        &self,
        token_hash: [u8; 32],
        user: Uuid,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>> {
        self.intercept.check(Op::RevokeRefreshFamily)?;
        self.inner
            .revoke_refresh_family(token_hash, user, keep_until)
            .await
    }
    async fn write_samples(&self, user: Uuid, ops: Vec<SampleOp>) -> StoreResult<WriteResult> {
        self.intercept.check(Op::WriteSamples)?;
        self.intercept.write_samples(&*self.inner, user, ops).await
    }
    async fn changes(&self, user: Uuid, after: u64, limit: usize) -> StoreResult<ChangePage> {
        self.intercept.check(Op::Changes)?;
        self.intercept
            .changes(&*self.inner, user, after, limit)
            .await
    }
    async fn erase_user(&self, user: Uuid) -> StoreResult<Erased> {
        self.intercept.check(Op::EraseUser)?;
        self.inner.erase_user(user).await
    }
    async fn pending_erasures(&self) -> StoreResult<Vec<Uuid>> {
        self.intercept.check(Op::PendingErasures)?;
        self.intercept.pending_erasures(&*self.inner).await
    }
    async fn pending_revisions(&self, user: Uuid) -> StoreResult<Vec<clarity::store::Revision>> {
        self.intercept.check(Op::PendingRevisions)?;
        self.inner.pending_revisions(user).await
    }
    async fn clear_revisions(&self, user: Uuid, ranges: Vec<(u64, u64)>) -> StoreResult<()> {
        self.intercept.check(Op::ClearRevisions)?;
        self.inner.clear_revisions(user, ranges).await
    }
    async fn set_superseded(
        &self,
        kind: DocKind,
        user: Uuid,
        id: Uuid,
        by: Option<Uuid>,
    ) -> StoreResult<bool> {
        self.intercept.check(Op::SetSuperseded)?;
        self.intercept
            .set_superseded(&*self.inner, kind, user, id, by)
            .await
    }
    async fn query_samples(&self, user: Uuid, query: SampleQuery) -> StoreResult<SamplePage> {
        self.intercept.check(Op::QuerySamples)?;
        self.inner.query_samples(user, query).await
    }
    async fn put_doc(&self, kind: DocKind, doc: DocRecord) -> StoreResult<bool> {
        self.intercept.check(Op::PutDoc)?;
        self.inner.put_doc(kind, doc).await
    }
    async fn get_doc(&self, kind: DocKind, user: Uuid, id: Uuid) -> StoreResult<Option<DocRecord>> {
        self.intercept.check(Op::GetDoc)?;
        self.inner.get_doc(kind, user, id).await
    }
    async fn list_docs(&self, kind: DocKind, user: Uuid, query: DocQuery) -> StoreResult<DocPage> {
        self.intercept.check(Op::ListDocs)?;
        self.inner.list_docs(kind, user, query).await
    }
    async fn put_share(&self, share: ShareRecord) -> StoreResult<ShareRecord> {
        self.intercept.check(Op::PutShare)?;
        self.inner.put_share(share).await
    }
    async fn get_share(&self, id: Uuid) -> StoreResult<Option<ShareRecord>> {
        self.intercept.check(Op::GetShare)?;
        self.inner.get_share(id).await
    }
    async fn delete_share(&self, share: &ShareRecord) -> StoreResult<bool> {
        self.intercept.check(Op::DeleteShare)?;
        self.inner.delete_share(share).await
    }
    async fn shares_of(&self, user: Uuid) -> StoreResult<Vec<ShareRecord>> {
        self.intercept.check(Op::SharesOf)?;
        self.inner.shares_of(user).await
    }
    async fn has_share(&self, owner: Uuid, grantee: Uuid, scope: DocKind) -> StoreResult<bool> {
        self.intercept.check(Op::HasShare)?;
        self.intercept
            .has_share(&*self.inner, owner, grantee, scope)
            .await
    }
    async fn epoch(&self) -> StoreResult<String> {
        self.intercept.check(Op::Epoch)?;
        self.inner.epoch().await
    }
    async fn append_event(
        &self,
        user: Uuid,
        kind: DocKind,
        body: String,
        keep: u64,
    ) -> StoreResult<u64> {
        self.intercept.check(Op::AppendEvent)?;
        self.inner.append_event(user, kind, body, keep).await
    }
    async fn stream_head(&self, user: Uuid, kind: DocKind) -> StoreResult<u64> {
        self.intercept.check(Op::StreamHead)?;
        self.inner.stream_head(user, kind).await
    }
    async fn read_events(
        &self,
        user: Uuid,
        kind: DocKind,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StreamEvent>> {
        self.intercept.check(Op::ReadEvents)?;
        self.inner.read_events(user, kind, after, limit).await
    }
    async fn append_audit(&self, entry: AuditRecord) -> StoreResult<()> {
        self.intercept.check(Op::AppendAudit)?;
        self.intercept.append_audit(&*self.inner, entry).await
    }
    async fn list_audit(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        self.intercept.check(Op::ListAudit)?;
        self.inner.list_audit(owner, before, limit).await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}
