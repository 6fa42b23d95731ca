//! A store wrapper for race and account tests: it can hold one grant check (`has_share`) at a
//! chosen point until the test lets it go, and hide accounts as if they had been removed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clarity::samples::Sample;
use clarity::store::{
    AuditPage, AuditRecord, DocKind, DocPage, DocQuery, DocRecord, RefreshTokenRecord,
    RotateOutcome, SamplePage, SampleQuery, ShareRecord, Store, StoreResult, StreamEvent,
    UserRecord,
};
use tokio::sync::Notify;
use uuid::Uuid;

/// Where an armed grant check stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    /// Before the store is read: what it answers is decided after the test's moves.
    BeforeRead,
    /// After the store answered: the test's moves come between the answer and its use.
    AfterRead,
}

/// One armed stop: `reached` is notified when the check stops, `release` lets it go on.
#[derive(Clone)]
pub struct Gate {
    pub reached: Arc<Notify>,
    pub release: Arc<Notify>,
}

struct Armed {
    owner: Uuid,
    grantee: Uuid,
    pause: Pause,
    gate: Gate,
}

#[derive(Clone, Default)]
pub struct Hooks {
    armed: Arc<Mutex<Option<Armed>>>,
    hidden: Arc<Mutex<HashSet<Uuid>>>,
}

impl Hooks {
    /// Wraps `inner` (for `spawn_with_store` / `spawn_nodes_with_store`).
    pub fn wrap(&self, inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(Hooked {
            inner,
            hooks: self.clone(),
        })
    }

    /// Stops the next grant check of `grantee` on `owner`'s documents at `pause` (once).
    pub fn arm(&self, owner: Uuid, grantee: Uuid, pause: Pause) -> Gate {
        let gate = Gate {
            reached: Arc::new(Notify::new()),
            release: Arc::new(Notify::new()),
        };
        *self.armed.lock().unwrap() = Some(Armed {
            owner,
            grantee,
            pause,
            gate: gate.clone(),
        });
        gate
    }

    /// From now on the store answers as if `user`'s account had been removed.
    pub fn remove_account(&self, user: Uuid) {
        self.hidden.lock().unwrap().insert(user);
    }

    fn take(&self, owner: Uuid, grantee: Uuid) -> Option<(Pause, Gate)> {
        let mut armed = self.armed.lock().unwrap();
        if armed
            .as_ref()
            .is_some_and(|a| a.owner == owner && a.grantee == grantee)
        {
            armed.take().map(|a| (a.pause, a.gate))
        } else {
            None
        }
    }

    fn is_hidden(&self, user: Uuid) -> bool {
        self.hidden.lock().unwrap().contains(&user)
    }
}

struct Hooked {
    inner: Arc<dyn Store>,
    hooks: Hooks,
}

async fn stop(gate: &Gate) {
    gate.reached.notify_one();
    gate.release.notified().await;
}

#[async_trait]
impl Store for Hooked {
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn create_user(&self, user: UserRecord) -> StoreResult<()> {
        self.inner.create_user(user).await
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let user = self.inner.user_by_email(email).await?;
        Ok(user.filter(|u| !self.hooks.is_hidden(u.id)))
    }
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        if self.hooks.is_hidden(id) {
            return Ok(None);
        }
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
    async fn insert_samples(&self, user: Uuid, samples: Vec<Sample>) -> StoreResult<Vec<bool>> {
        self.inner.insert_samples(user, samples).await
    }
    async fn query_samples(&self, user: Uuid, query: SampleQuery) -> StoreResult<SamplePage> {
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
        let armed = self.hooks.take(owner, grantee);
        if let Some((Pause::BeforeRead, gate)) = &armed {
            stop(gate).await;
        }
        let answer = self.inner.has_share(owner, grantee, scope).await;
        if let Some((Pause::AfterRead, gate)) = &armed {
            stop(gate).await;
        }
        answer
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
