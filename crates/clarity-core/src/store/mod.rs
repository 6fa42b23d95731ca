//! Durable storage behind one trait, so that SQLite (embedded) and DynamoDB (scale-out) are
//! interchangeable.
//!
//! Rules every backend keeps:
//! - A write future resolves `Ok` only once the data survives a crash of this process
//!   (callers ack on that basis).
//! - Samples are idempotent per `(user, id)`: re-inserting reports a duplicate, never a second row.
//! - Operations that must be atomic (refresh-token rotation) are one call here, so that a
//!   key-value backend can implement them with one conditional/transactional write.
//! - Overload and timeouts are reported as such ([`StoreError::Overloaded`],
//!   [`StoreError::Timeout`]) so callers can answer 503 / `store_unavailable` instead of failing.

pub mod changes;
pub mod dynamo;
pub mod revisions;
pub mod sqlite;

pub use changes::{
    Change, ChangeOp, ChangePage, Erased, OpOutcome, SampleOp, TOMBSTONE_DAYS, WriteResult,
};
pub use revisions::Revision;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::samples::{Kind, Sample};

/// A stored account.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: Uuid,
    /// Normalised (lower-case) address; unique.
    pub email: String,
    pub display_name: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A refresh token as stored: only its SHA-256, never the token itself.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshTokenRecord {
    pub token_hash: [u8; 32],
    pub user_id: Uuid,
    /// All tokens descending from one login; reuse of any spent one revokes the whole family.
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Result of [`Store::rotate_refresh_token`].
#[derive(Debug, Clone, PartialEq)]
pub enum RotateOutcome {
    /// The old token was live and is now spent; the new one is stored in the same family.
    Rotated { user_id: Uuid, family_id: Uuid },
    /// The old token had already been spent (a replay, maybe a stolen token): its family is
    /// now revoked. `user_id` is whose login it was (for their audit log), `family_id` the
    /// login, whose access tokens and sessions must end too.
    Reused { user_id: Uuid, family_id: Uuid },
    /// Unknown, expired or revoked.
    Invalid,
}

/// Position in the time-ordered sample listing: the last returned `(start, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub start_ms: i64,
    pub id: String,
}

/// A page request over one user's samples.
#[derive(Debug, Clone)]
pub struct SampleQuery {
    pub kind: Option<Kind>,
    /// Inclusive lower bound on `start` (UTC ms).
    pub from_ms: Option<i64>,
    /// Exclusive upper bound on `start` (UTC ms).
    pub to_ms: Option<i64>,
    /// Continue strictly after this position.
    pub after: Option<Cursor>,
    pub limit: usize,
}

/// Every sample of `user` that `query` selects, page after page (`query.limit` a page): what
/// the window rebuild and the analysis steps read.
pub async fn all_samples(
    store: &dyn Store,
    user: Uuid,
    mut query: SampleQuery,
) -> StoreResult<Vec<Sample>> {
    let mut out = Vec::new();
    loop {
        let page = store.query_samples(user, query.clone()).await?;
        out.extend(page.samples);
        match page.next {
            Some(c) => query.after = Some(c),
            None => return Ok(out),
        }
    }
}

/// One page of samples ordered by `(start, id)`.
#[derive(Debug, Clone)]
pub struct SamplePage {
    pub samples: Vec<Sample>,
    /// Present when more samples may follow.
    pub next: Option<Cursor>,
}

/// The collections of derived documents a user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    Analysis,
    Insight,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Analysis => "analysis",
            DocKind::Insight => "insight",
        }
    }

    /// The name of the stream of these documents and of the share scope that grants them.
    pub fn stream(self) -> &'static str {
        match self {
            DocKind::Analysis => "analyses",
            DocKind::Insight => "insights",
        }
    }

    pub fn from_stream(name: &str) -> Option<DocKind> {
        match name {
            "analyses" => Some(DocKind::Analysis),
            "insights" => Some(DocKind::Insight),
            _ => None,
        }
    }

    pub fn from_code(code: i64) -> Option<DocKind> {
        match code {
            1 => Some(DocKind::Analysis),
            2 => Some(DocKind::Insight),
            _ => None,
        }
    }

    /// Stable number stored with each document.
    pub fn code(self) -> i64 {
        match self {
            DocKind::Analysis => 1,
            DocKind::Insight => 2,
        }
    }
}

/// A stored document derived from one user's window (an analysis, an insight). `body` is the
/// JSON document pushed to clients; stores keep it opaque.
#[derive(Debug, Clone, PartialEq)]
pub struct DocRecord {
    /// Digest of the input: the same input gives the same id.
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The analysed range, UTC ms, `[from, to)`.
    pub window_from_ms: i64,
    pub window_to_ms: i64,
    pub body: String,
    /// Set when a newer document (an analysis recomputed after an edit or deletion touched
    /// its days; an insight of such an analysis) replaces this one. Stores keep it with the
    /// document; `None` for a current one.
    pub superseded_by: Option<Uuid>,
}

/// Position in a document listing: the last returned `(window end, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocCursor {
    pub window_to_ms: i64,
    pub id: Uuid,
}

/// A page request over one user's documents of one kind, ordered by window end, then id.
#[derive(Debug, Clone)]
pub struct DocQuery {
    /// Inclusive lower bound on the window end (UTC ms).
    pub from_ms: Option<i64>,
    /// Exclusive upper bound on the window end (UTC ms).
    pub to_ms: Option<i64>,
    pub after: Option<DocCursor>,
    pub limit: usize,
}

#[derive(Debug, Clone)]
pub struct DocPage {
    pub docs: Vec<DocRecord>,
    pub next: Option<DocCursor>,
}

pub type AnalysisRecord = DocRecord;

/// Read access to one kind of another user's documents (their stream and history).
#[derive(Debug, Clone, PartialEq)]
pub struct ShareRecord {
    pub id: Uuid,
    /// Whose data is shared.
    pub owner_id: Uuid,
    /// Who may read it.
    pub grantee_id: Uuid,
    pub scope: DocKind,
    pub created_at: DateTime<Utc>,
}

/// One event of a user's document stream, as stored for replay.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// Position in the stream: 1 for the first event, then one more per event.
    pub offset: u64,
    /// The document (JSON object) the event carries.
    pub body: String,
}

/// One entry of a user's audit log: who did what to or with their data, when and from where.
/// Never carries health values, tokens, passwords or email addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Time-ordered (UUIDv7): listings order by it.
    pub id: Uuid,
    /// The data owner the entry concerns; only they can list it.
    pub owner_id: Uuid,
    /// Who acted; `None` when nobody was authenticated (a failed login).
    pub actor_id: Option<Uuid>,
    /// Stable snake_case code (see `crate::audit::Action`).
    pub action: String,
    /// What was acted on, e.g. `insights`, `insights/<id>`, `share/<id>`.
    pub target: Option<String>,
    /// When (stores keep milliseconds).
    pub at: DateTime<Utc>,
    /// The client's IP address.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// After this the entry is no longer listed and may be deleted (retention).
    pub expires_at: DateTime<Utc>,
}

/// One page of a user's audit log, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    /// The id of the last entry returned when older ones may follow: pass it as `before`.
    pub next: Option<Uuid>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The email address is already registered.
    #[error("email already registered")]
    EmailTaken,
    /// Too much queued work; retry later.
    #[error("store overloaded")]
    Overloaded,
    /// The store did not answer in time; the write may or may not have happened.
    #[error("store timed out")]
    Timeout,
    /// The store is shutting down or unreachable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The user's account was erased (`erase_user`): nothing more is stored for it, even by a
    /// write that was on its way when the erasure ran.
    #[error("the account was erased")]
    AccountErased,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl StoreError {
    /// Whether the caller should tell the client to retry (503) rather than report a failure.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Overloaded | StoreError::Timeout | StoreError::Unavailable(_)
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap reachability check for `/api/ready`.
    async fn ping(&self) -> StoreResult<()>;

    /// Why the store answers but cannot take writes now, as far as it knows (SQLite: a write
    /// failed for lack of disk space), for `/api/ready`; `None` while writes work. The reason
    /// names no user and no value.
    fn read_only(&self) -> Option<&'static str> {
        None
    }

    /// Fails with [`StoreError::EmailTaken`] if the email exists.
    async fn create_user(&self, user: UserRecord) -> StoreResult<()>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>>;

    async fn insert_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<()>;
    /// Atomically spends `old_hash` and stores `new` (same family as the old one; the
    /// backend overwrites `new.family_id` and `new.user_id` from the old record).
    async fn rotate_refresh_token(
        &self,
        old_hash: [u8; 32],
        new: RefreshTokenRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome>;
    /// Logout: revokes the whole family of the refresh token `token_hash` if that token
    /// belongs to `user` (spent, expired or already revoked alike), so that no token of the
    /// login can be rotated again. Returns the family; `None` when the token is unknown or
    /// another user's. Every token of the family expires by `keep_until`: a backend whose
    /// revocation marker expires keeps it at least that long.
    async fn revoke_refresh_family(
        &self,
        token_hash: [u8; 32],
        user: Uuid,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>>;

    /// Applies `ops` for `user` in order (see [`changes`] for the rules). Durable when it
    /// returns.
    async fn write_samples(&self, user: Uuid, ops: Vec<SampleOp>) -> StoreResult<WriteResult>;
    /// Changes of `user` with `seq > after`, in order, at most `limit`.
    async fn changes(&self, user: Uuid, after: u64, limit: usize) -> StoreResult<ChangePage>;
    /// Erases everything of `user`: account, refresh tokens, samples, tombstones, changes,
    /// documents, stream events, shares owned and received, and audit entries (the caller
    /// appends one tombstone entry afterwards). Idempotent; a backend that cannot do it
    /// atomically records the erasure first, so that [`Store::pending_erasures`] finds it
    /// after a crash and a restarted node finishes it.
    async fn erase_user(&self, user: Uuid) -> StoreResult<Erased>;
    /// Erasures begun and not finished (always empty on a backend that erases atomically).
    async fn pending_erasures(&self) -> StoreResult<Vec<changes::PendingErasure>>;
    /// `user`'s revisions whose recomputation is not confirmed, by seq (see [`revisions`]).
    async fn pending_revisions(&self, user: Uuid) -> StoreResult<Vec<Revision>>;
    /// Confirms the recomputation of `user`'s revisions with a seq in one of `ranges`
    /// (`[from, to]` each), in one call.
    async fn clear_revisions(&self, user: Uuid, ranges: Vec<(u64, u64)>) -> StoreResult<()>;
    /// Marks `user`'s document `id` of `kind` as replaced by `by` (or current again with
    /// `None`); `false` when there is no such document.
    async fn set_superseded(
        &self,
        kind: DocKind,
        user: Uuid,
        id: Uuid,
        by: Option<Uuid>,
    ) -> StoreResult<bool>;

    /// Stores samples for `user`; returns, per input sample, whether it was new (`true`) or
    /// not (`false`: a duplicate, an update, a stale re-send of a deleted id). Durable when it
    /// returns.
    async fn insert_samples(&self, user: Uuid, samples: Vec<Sample>) -> StoreResult<Vec<bool>> {
        let ops = samples.into_iter().map(SampleOp::Put).collect();
        let done = self.write_samples(user, ops).await?;
        Ok(done
            .outcomes
            .into_iter()
            .map(|o| o == OpOutcome::Inserted)
            .collect())
    }
    async fn query_samples(&self, user: Uuid, query: SampleQuery) -> StoreResult<SamplePage>;

    /// Stores a document unless one of this kind with its id exists; `true` when it was new.
    async fn put_doc(&self, kind: DocKind, doc: DocRecord) -> StoreResult<bool>;
    async fn get_doc(&self, kind: DocKind, user: Uuid, id: Uuid) -> StoreResult<Option<DocRecord>>;
    async fn list_docs(&self, kind: DocKind, user: Uuid, query: DocQuery) -> StoreResult<DocPage>;

    /// Stores `share` unless the same (owner, grantee, scope) exists; returns the stored one.
    async fn put_share(&self, share: ShareRecord) -> StoreResult<ShareRecord>;
    async fn get_share(&self, id: Uuid) -> StoreResult<Option<ShareRecord>>;
    /// `true` when it existed.
    async fn delete_share(&self, share: &ShareRecord) -> StoreResult<bool>;
    /// Shares the user owns or received.
    async fn shares_of(&self, user: Uuid) -> StoreResult<Vec<ShareRecord>>;
    /// Whether `grantee` may read `owner`'s documents of kind `scope`. Strongly consistent: a
    /// delete that returned is seen (subscriptions rely on it to never outlive a revoke).
    async fn has_share(&self, owner: Uuid, grantee: Uuid, scope: DocKind) -> StoreResult<bool>;

    /// Identifies this store's offset sequences: offsets are only comparable within one epoch
    /// (a new store starts a new one).
    async fn epoch(&self) -> StoreResult<String>;
    /// Appends an event to `user`'s stream of `kind`, allocating the next offset; events
    /// `keep` or more offsets behind the new one may be dropped.
    async fn append_event(
        &self,
        user: Uuid,
        kind: DocKind,
        body: String,
        keep: u64,
    ) -> StoreResult<u64>;
    /// The offset of the latest event (0 when there is none).
    async fn stream_head(&self, user: Uuid, kind: DocKind) -> StoreResult<u64>;
    /// Events with offsets above `after`, in order, at most `limit`.
    async fn read_events(
        &self,
        user: Uuid,
        kind: DocKind,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StreamEvent>>;

    /// Appends an entry to its owner's audit log (durable when it returns). Entries are never
    /// changed; ids are unique.
    async fn append_audit(&self, entry: AuditRecord) -> StoreResult<()>;
    /// `owner`'s unexpired audit entries, newest first (descending id), strictly older than
    /// `before` when given, at most `limit`.
    async fn list_audit(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<AuditPage>;

    async fn put_analysis(&self, analysis: DocRecord) -> StoreResult<bool> {
        self.put_doc(DocKind::Analysis, analysis).await
    }
    async fn get_analysis(&self, user: Uuid, id: Uuid) -> StoreResult<Option<DocRecord>> {
        self.get_doc(DocKind::Analysis, user, id).await
    }

    /// Finishes queued writes and releases resources; later calls fail with `Unavailable`.
    async fn close(&self);
}
