//! Scale-out store: one DynamoDB table shared by every node (layout in [`schema`]).
//!
//! Rules:
//! - A write resolves `Ok` only after DynamoDB answered 200 for every item it touches:
//!   DynamoDB's own acknowledgement is the durability we ack on.
//! - No read-modify-write on shared data: idempotency and uniqueness come from conditional
//!   writes and transactions, so two nodes racing on the same batch or the same email agree.
//! - Throttling, 5xx and timeouts are retried by the SDK's standard retry (bounded attempts),
//!   and the whole call is bounded by the store timeout. What is left is reported as
//!   `Overloaded` / `Timeout` / `Unavailable`, which callers turn into 503 or a
//!   `store_unavailable` frame, never an ack.
//! - Recent throttling makes [`Store::ping`] fail, so `/api/ready` takes the node out of the
//!   load balancer while the table is saturated.

mod accounts;
mod analyses;
mod audit;
pub mod backup;
mod chunks;
mod codec;
mod erase;
mod feed;
mod legacy;
mod plan;
mod revisions;
pub mod schema;
mod streams;
#[cfg(test)]
mod tests;
mod writes;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::{
    AuditPage, AuditRecord, ChangePage, DocKind, DocPage, DocQuery, DocRecord, Erased,
    RefreshTokenRecord, RotateOutcome, SampleOp, SamplePage, SampleQuery, ShareRecord, Store,
    StoreError, StoreResult, StreamEvent, UserRecord, WriteResult,
};
use codec::{n, s};

/// Settings for [`DynamoStore::connect`].
#[derive(Debug, Clone)]
pub struct DynamoOptions {
    /// Prepended to the table name `clarity`.
    pub table_prefix: String,
    /// Endpoint override (DynamoDB Local, moto); `None` uses AWS's regional endpoint.
    pub endpoint: Option<String>,
    /// Attempts per request, first included (SDK standard retry with jittered backoff).
    pub max_attempts: u32,
    /// Bound on one store call, retries included.
    pub timeout: Duration,
    /// Samples being written at once before callers get `Overloaded`.
    pub max_pending_samples: usize,
    /// DynamoDB requests of this node in flight at once; more wait (within the timeout).
    pub max_inflight: usize,
}

impl DynamoOptions {
    pub fn table(&self) -> String {
        format!("{}clarity", self.table_prefix)
    }
}

/// How long a throttled request keeps `/api/ready` failing.
const THROTTLE_MEMORY_MS: i64 = 5_000;

pub struct DynamoStore {
    client: Client,
    table: String,
    timeout: Duration,
    pending_samples: Arc<Semaphore>,
    /// Bounds concurrent sample writes: past the table's (or emulator's) capacity, more
    /// concurrency only turns into timeouts and retried work.
    inflight: Semaphore,
    /// Wall-clock ms of the last throttling answer that survived the SDK's retries.
    throttled_at: AtomicI64,
    /// The table's epoch, read (or created) on first use.
    epoch: tokio::sync::OnceCell<String>,
    /// Serialises this node's sample writes per user (see `writes`).
    user_locks: writes::UserLocks,
}

/// Builds an SDK client: region and credentials from the standard AWS chain
/// ([`crate::aws::sdk_config`]), with our retry and timeout bounds.
pub async fn client(opts: &DynamoOptions) -> anyhow::Result<Client> {
    let conf = crate::aws::sdk_config(&crate::aws::ClientOptions {
        service: "DynamoDB",
        emulator_hint: "for DynamoDB Local any values work, e.g. AWS_ACCESS_KEY_ID=local \
             AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1",
        endpoint: opts.endpoint.as_deref(),
        max_attempts: opts.max_attempts,
        // The whole call must fit in the store timeout.
        attempt_timeout: Some(opts.timeout.min(Duration::from_secs(3))),
        operation_timeout: Some(opts.timeout),
    })
    .await?;
    Ok(Client::new(&conf))
}

impl DynamoStore {
    /// Connects and checks that the table exists (run `clarity migrate` first).
    pub async fn connect(opts: &DynamoOptions) -> anyhow::Result<DynamoStore> {
        let client = client(opts).await?;
        let table = opts.table();
        anyhow::ensure!(
            schema::exists(&client, &table).await?,
            "DynamoDB table {table} does not exist: run `clarity migrate --store dynamodb` \
             with the same flags, or deploy the stack in deploy/"
        );
        let store = DynamoStore::with_client(client, opts);
        // Samples stored before the id index existed must be indexed before any delete or
        // update could miss them (see `legacy`). Not bounded by the store timeout: it runs
        // once, over the whole table.
        store.migrate_legacy().await?;
        Ok(store)
    }

    pub fn with_client(client: Client, opts: &DynamoOptions) -> DynamoStore {
        DynamoStore {
            client,
            table: opts.table(),
            timeout: opts.timeout,
            pending_samples: Arc::new(Semaphore::new(
                opts.max_pending_samples.clamp(1, Semaphore::MAX_PERMITS),
            )),
            inflight: Semaphore::new(opts.max_inflight.max(1)),
            throttled_at: AtomicI64::new(i64::MIN / 2),
            epoch: tokio::sync::OnceCell::new(),
            user_locks: writes::UserLocks::default(),
        }
    }

    /// Bounds a call by the store timeout and records throttling for readiness.
    async fn bounded<T>(&self, f: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let res = tokio::time::timeout(self.timeout, f)
            .await
            .unwrap_or(Err(StoreError::Timeout));
        if matches!(res, Err(StoreError::Overloaded)) {
            self.throttled_at
                .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        }
        res
    }

    /// A strongly consistent query on the table, to be given its key condition.
    fn query(&self) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
    }

    /// Runs `query` page by page, handing each item to `each` until it returns `false` or the
    /// pages end.
    async fn query_items(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        mut each: impl FnMut(&Item) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        let mut start_key: Option<Item> = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(map_err)?;
            for item in page.items() {
                if !each(item)? {
                    return Ok(());
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => return Ok(()),
            }
        }
    }

    async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_err)?;
        Ok(out.item)
    }
}

type Item = HashMap<String, AttributeValue>;

/// A conditional write's answer: `Some(output)` when it ran, `None` when its condition did
/// not hold; any other failure as [`map_err`] maps it.
fn if_held<T, E, R>(res: Result<T, SdkError<E, R>>) -> StoreResult<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match res {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if e.as_service_error().and_then(ProvideErrorMetadata::code)
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(None)
        }
        Err(e) => Err(map_err(e)),
    }
}

/// Sorts an SDK failure into the store's error kinds.
fn map_err<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &e {
        SdkError::TimeoutError(_) => return StoreError::Timeout,
        SdkError::DispatchFailure(f) if f.is_timeout() => return StoreError::Timeout,
        SdkError::DispatchFailure(_) => {
            return StoreError::Unavailable(format!("{}", schema::sdk_err(&e)));
        }
        SdkError::ResponseError(_) => {
            return StoreError::Unavailable(format!("{}", schema::sdk_err(&e)));
        }
        _ => {}
    }
    match e.code() {
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "LimitExceededException",
        ) => StoreError::Overloaded,
        Some("InternalServerError" | "ServiceUnavailable" | "InternalFailure") => {
            StoreError::Unavailable(format!("{}", schema::sdk_err(&e)))
        }
        Some("ResourceNotFoundException") => StoreError::Unavailable(format!(
            "table missing (run `clarity migrate`): {}",
            schema::sdk_err(&e)
        )),
        _ => StoreError::Other(schema::sdk_err(e)),
    }
}

fn ms_to_utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn attr_s<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Other(anyhow::anyhow!(
            "stored item lacks string attribute {name}"
        ))),
    }
}

fn attr_i64(item: &Item, name: &str) -> StoreResult<Option<i64>> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| {
            StoreError::Other(anyhow::anyhow!("stored attribute {name} is not an integer"))
        }),
        Some(_) => Err(StoreError::Other(anyhow::anyhow!(
            "stored attribute {name} is not a number"
        ))),
    }
}

fn attr_uuid(item: &Item, name: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(attr_s(item, name)?).map_err(|e| StoreError::Other(e.into()))
}

fn user_item(u: &UserRecord, pk: String, sk: &str) -> Item {
    let mut item = Item::from([
        ("pk".to_owned(), s(pk)),
        ("sk".to_owned(), s(sk)),
        ("uid".to_owned(), s(u.id.to_string())),
        ("email".to_owned(), s(&u.email)),
        ("pw".to_owned(), s(&u.password_hash)),
        ("created".to_owned(), n(u.created_at.timestamp_millis())),
    ]);
    if let Some(name) = &u.display_name {
        item.insert("name".into(), s(name));
    }
    item
}

fn user_from_item(item: &Item) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: attr_uuid(item, "uid")?,
        email: attr_s(item, "email")?.to_owned(),
        display_name: match item.get("name") {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        },
        password_hash: attr_s(item, "pw")?.to_owned(),
        created_at: ms_to_utc(attr_i64(item, "created")?.unwrap_or(0)),
    })
}

#[async_trait]
impl Store for DynamoStore {
    async fn write_samples(&self, user: Uuid, ops: Vec<SampleOp>) -> StoreResult<WriteResult> {
        if ops.is_empty() {
            return Ok(WriteResult::default());
        }
        let weight = u32::try_from(ops.len()).map_err(|_| StoreError::Overloaded)?;
        let _budget = self
            .pending_samples
            .clone()
            .try_acquire_many_owned(weight)
            .map_err(|_| StoreError::Overloaded)?;
        self.bounded(self.user_locks.with(user, async {
            let _slot = self
                .inflight
                .acquire()
                .await
                .map_err(|_| StoreError::Unavailable("store closed".into()))?;
            self.write_ops(user, ops).await
        }))
        .await
    }

    async fn changes(&self, user: Uuid, after: u64, limit: usize) -> StoreResult<ChangePage> {
        self.bounded(self.change_items(user, after, limit)).await
    }

    async fn erase_user(&self, user: Uuid) -> StoreResult<Erased> {
        // Not bounded by the store timeout: a large account takes many batches, and every
        // step is idempotent, so a slow erasure is better finished than cut off.
        self.erase(user, None).await
    }

    async fn pending_revisions(&self, user: Uuid) -> StoreResult<Vec<super::Revision>> {
        self.pending_revision_items(user).await
    }

    async fn clear_revisions(&self, user: Uuid, ranges: Vec<(u64, u64)>) -> StoreResult<()> {
        self.clear_revision_items(user, &ranges).await
    }

    async fn pending_erasures(&self) -> StoreResult<Vec<Uuid>> {
        self.bounded(self.pending_erasure_items()).await
    }

    async fn set_superseded(
        &self,
        kind: DocKind,
        user: Uuid,
        id: Uuid,
        by: Option<Uuid>,
    ) -> StoreResult<bool> {
        self.bounded(self.set_superseded_item(kind, user, id, by))
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        let since = Utc::now().timestamp_millis() - self.throttled_at.load(Ordering::Relaxed);
        if since < THROTTLE_MEMORY_MS {
            return Err(StoreError::Overloaded);
        }
        self.bounded(async {
            self.get("PING".into(), "PING").await?;
            Ok(())
        })
        .await
    }

    async fn create_user(&self, user: UserRecord) -> StoreResult<()> {
        self.bounded(self.create_user_tx(&user)).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        self.bounded(async {
            match self.get(codec::email_pk(email), "EMAIL").await? {
                Some(item) => user_from_item(&item).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        self.bounded(async {
            match self.get(codec::user_pk(id), "PROFILE").await? {
                Some(item) => user_from_item(&item).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn insert_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<()> {
        self.bounded(async {
            // The listing first: a listing without its token is harmless, a token without
            // one would survive the erasure of its user.
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(refresh_listing_item(&token)))
                .send()
                .await
                .map_err(map_err)?;
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(refresh_item(&token)))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: [u8; 32],
        new: RefreshTokenRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        self.bounded(self.rotate(old_hash, new, now)).await
    }

    async fn revoke_refresh_family(
        &self,
        token_hash: [u8; 32],
        user: Uuid,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>> {
        self.bounded(self.revoke_family_of(token_hash, user, keep_until))
            .await
    }

    async fn query_samples(&self, user: Uuid, query: SampleQuery) -> StoreResult<SamplePage> {
        self.bounded(self.read_samples(user, query)).await
    }

    async fn put_doc(&self, kind: DocKind, doc: DocRecord) -> StoreResult<bool> {
        self.bounded(self.put_doc_tx(kind, &doc)).await
    }

    async fn get_doc(&self, kind: DocKind, user: Uuid, id: Uuid) -> StoreResult<Option<DocRecord>> {
        self.bounded(self.get_doc_item(kind, user, id)).await
    }

    async fn list_docs(&self, kind: DocKind, user: Uuid, query: DocQuery) -> StoreResult<DocPage> {
        self.bounded(self.list_doc_items(kind, user, query)).await
    }

    async fn put_share(&self, share: ShareRecord) -> StoreResult<ShareRecord> {
        self.bounded(self.put_share_tx(&share)).await
    }

    async fn get_share(&self, id: Uuid) -> StoreResult<Option<ShareRecord>> {
        self.bounded(self.get_share_item(id)).await
    }

    async fn delete_share(&self, share: &ShareRecord) -> StoreResult<bool> {
        self.bounded(self.delete_share_tx(share)).await
    }

    async fn shares_of(&self, user: Uuid) -> StoreResult<Vec<ShareRecord>> {
        self.bounded(self.share_items_of(user)).await
    }

    async fn has_share(&self, owner: Uuid, grantee: Uuid, scope: DocKind) -> StoreResult<bool> {
        self.bounded(self.share_claim_exists(owner, grantee, scope))
            .await
    }

    async fn epoch(&self) -> StoreResult<String> {
        self.epoch
            .get_or_try_init(|| self.bounded(self.epoch_item()))
            .await
            .cloned()
    }

    async fn append_event(
        &self,
        user: Uuid,
        kind: DocKind,
        body: String,
        keep: u64,
    ) -> StoreResult<u64> {
        self.bounded(self.append_event_item(user, kind, body, keep))
            .await
    }

    async fn stream_head(&self, user: Uuid, kind: DocKind) -> StoreResult<u64> {
        self.bounded(self.event_head_item(user, kind)).await
    }

    async fn read_events(
        &self,
        user: Uuid,
        kind: DocKind,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StreamEvent>> {
        self.bounded(self.event_items(user, kind, after, limit))
            .await
    }

    async fn append_audit(&self, entry: AuditRecord) -> StoreResult<()> {
        self.bounded(self.put_audit_item(&entry)).await
    }

    async fn list_audit(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        self.bounded(self.audit_items(owner, before, limit)).await
    }

    async fn close(&self) {
        // Every write is awaited by its caller; there is no queue to flush.
    }
}

/// Seconds past a refresh token's expiry after which DynamoDB may delete it (and its family
/// marker): long enough that a replay of a spent token is still recognised as one.
const REFRESH_TTL_GRACE_SECS: i64 = 7 * 24 * 3600;

/// `USER#<uid>` / `RT#<hash>`: lists a user's refresh tokens, so that erasing the user finds
/// them (token items are keyed by hash alone).
fn refresh_listing_item(t: &RefreshTokenRecord) -> Item {
    Item::from([
        ("pk".to_owned(), s(codec::user_pk(t.user_id))),
        ("sk".to_owned(), s(codec::refresh_pk(&t.token_hash))),
        (
            schema::TTL_ATTR.to_owned(),
            n(t.expires_at.timestamp() + REFRESH_TTL_GRACE_SECS),
        ),
    ])
}

fn refresh_item(t: &RefreshTokenRecord) -> Item {
    Item::from([
        ("pk".to_owned(), s(codec::refresh_pk(&t.token_hash))),
        ("sk".to_owned(), s("RT")),
        ("uid".to_owned(), s(t.user_id.to_string())),
        ("fam".to_owned(), s(t.family_id.to_string())),
        ("exp".to_owned(), n(t.expires_at.timestamp_millis())),
        (
            schema::TTL_ATTR.to_owned(),
            n(t.expires_at.timestamp() + REFRESH_TTL_GRACE_SECS),
        ),
    ])
}
