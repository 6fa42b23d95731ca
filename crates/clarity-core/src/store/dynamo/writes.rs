//! `write_samples` on DynamoDB: the id index, the change head and the change log, committed
//! with the chunk edits part by part.
//!
//! Rules:
//! - One user's writes are serialised by optimistic concurrency on the head item
//!   (`CHG#<user>` / `HEAD`, `seq` = the last change seq): a call reads the head and the index
//!   items of its ids, plans (see [`super::plan`]), and commits each part as one
//!   TransactWriteItems whose first action sets the head on condition that it still holds
//!   the value read. A lost race (the condition failed) re-reads and re-plans what is left,
//!   a bounded number of times, then answers `Overloaded`.
//! - A part's transaction holds the head, one change-log item (`CHG#<user>` / `C#<first
//!   seq:020>`, the part's changes), the index items of its ids (`SID#<user>` / `<id>`) and
//!   one update per chunk touched (SET the samples written, REMOVE the ones moved or
//!   deleted), so the chunks, the index and the feed never disagree.
//! - Parts commit in order; a call that fails after some committed leaves them in place. A
//!   retry of the batch is idempotent by the version rules (what committed is a duplicate).
//! - Within one node, writes of one user queue on a per-user lock ([`UserLocks`]) instead of
//!   racing on the head: optimistic concurrency then only settles races between nodes, which
//!   are rare (a user's sessions mostly land on one node), and a session with several batches
//!   in flight does not burn its retries against itself.
//! - Every transaction carries a fresh client request token, so that the SDK's retry of a
//!   request whose answer was lost does not apply it twice.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, TransactWriteItem, Update};
use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt, stream};
use uuid::Uuid;

use super::codec::{self, SAMPLE_ATTR_PREFIX, n, s};
use super::plan::{self, ChunkKey, Part, Removed, State};
use super::{DynamoStore, Item, accounts, attr_i64, feed, map_err, schema};
use crate::samples::{Kind, Sample};
use crate::store::{
    OpOutcome, SampleOp, StoreError, StoreResult, TOMBSTONE_DAYS, WriteResult, revisions,
};

/// Re-plans after lost races on the head before answering `Overloaded`.
const HEAD_RETRIES: usize = 8;
/// Keys per BatchGetItem (DynamoDB's limit).
const BATCH_GET: usize = 100;

/// One async lock per user with writes in progress on this node; entries go when unused.
#[derive(Default)]
pub struct UserLocks(dashmap::DashMap<Uuid, Arc<tokio::sync::Mutex<()>>>);

impl UserLocks {
    /// Runs `f` while holding `user`'s lock.
    pub async fn with<T>(&self, user: Uuid, f: impl Future<Output = T>) -> T {
        let lock = self.0.entry(user).or_default().clone();
        let out = {
            let _held = lock.lock().await;
            f.await
        };
        // Ours and the map's: nobody else waits, so the entry can go (checked under the
        // map's shard lock, so a waiter arriving now re-creates or finds it consistently).
        self.0.remove_if(&user, |_, l| Arc::strong_count(l) == 2);
        drop(lock);
        out
    }
}

pub fn index_pk(user: Uuid) -> String {
    format!("SID#{user}")
}

pub fn head_pk(user: Uuid) -> String {
    format!("CHG#{user}")
}

pub const HEAD_SK: &str = "HEAD";
/// Set on the head item by the account's erasure, which keeps that item: every write is
/// conditioned on its absence, so one racing the erasure stores nothing (`AccountErased`).
pub const ERASED_ATTR: &str = "erased";

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Other(e.into())
}

/// The index item of `id` in state `st` (`Live` with its sample, or `Tomb`), changed last by
/// change `seq`.
fn index_item(user: Uuid, id: &str, st: &State, seq: u64) -> Item {
    let mut item = Item::from([
        ("pk".to_owned(), s(index_pk(user))),
        ("sk".to_owned(), s(id)),
        ("q".to_owned(), n(seq)),
    ]);
    match st {
        State::Live {
            chunk: (kind, bucket),
            version,
            ..
        } => {
            item.insert("k".into(), n(kind.code()));
            item.insert("b".into(), n(*bucket));
            if let Some(v) = version {
                item.insert("v".into(), n(*v));
            }
        }
        State::Tomb {
            version,
            deleted_ms,
        } => {
            item.insert("del".into(), n(*deleted_ms));
            if let Some(v) = version {
                item.insert("v".into(), n(*v));
            }
            item.insert(
                schema::TTL_ATTR.into(),
                n(deleted_ms / 1000 + TOMBSTONE_DAYS * 24 * 3600),
            );
        }
        State::Absent => {}
    }
    item
}

pub fn state_of_index(item: &Item) -> StoreResult<State> {
    let version = attr_i64(item, "v")?;
    if let Some(deleted_ms) = attr_i64(item, "del")? {
        return Ok(State::Tomb {
            version,
            deleted_ms,
        });
    }
    let code = attr_i64(item, "k")?.unwrap_or(-1);
    let kind = Kind::from_code(code)
        .ok_or_else(|| StoreError::Other(anyhow::anyhow!("index item of unknown kind {code}")))?;
    Ok(State::Live {
        chunk: (kind, attr_i64(item, "b")?.unwrap_or(0)),
        version,
        sample: None,
    })
}

impl DynamoStore {
    pub(super) async fn write_ops(
        &self,
        user: Uuid,
        ops: Vec<SampleOp>,
    ) -> StoreResult<WriteResult> {
        let mut result = WriteResult::default();
        let mut pos = 0;
        let mut lost = 0;
        while pos < ops.len() {
            let rest = &ops[pos..];
            let (head, states) = self.read_states(user, rest).await?;
            let planned = plan::plan(rest, states, head, Utc::now().timestamp_millis());
            let removed = self.read_removed(user, &planned.removed).await?;
            let (mut done, mut seq_i, mut removed_i, mut at_head) = (0, 0, 0, head);
            let mut raced = false;
            for part in &planned.parts {
                // The part's changed times go in its transaction (`store::revisions`).
                let outcomes = &planned.outcomes[done..part.end];
                let replaced = outcomes
                    .iter()
                    .filter(|o| matches!(o, OpOutcome::Updated | OpOutcome::Deleted))
                    .count();
                let old: Vec<Sample> = removed[removed_i..removed_i + replaced]
                    .iter()
                    .flatten()
                    .cloned()
                    .collect();
                let spans = revisions::changed_spans(&rest[done..part.end], outcomes, &old);
                if !self.commit(user, at_head, part, &spans).await? {
                    raced = true;
                    break;
                }
                for &o in &planned.outcomes[done..part.end] {
                    result.outcomes.push(o);
                    if o.changed() {
                        result.seqs.push(planned.seqs[seq_i]);
                        seq_i += 1;
                    }
                    if matches!(o, OpOutcome::Updated | OpOutcome::Deleted) {
                        result.removed.extend(removed[removed_i].clone());
                        removed_i += 1;
                    }
                }
                done = part.end;
                at_head = part.changes.last().map_or(at_head, |c| c.seq);
            }
            if !raced {
                // What follows the last part changes nothing.
                result.outcomes.extend(&planned.outcomes[done..]);
                if !planned.parts.is_empty() {
                    self.confirm_head(user, at_head).await?;
                }
                break;
            }
            pos += done;
            lost += 1;
            if lost > HEAD_RETRIES {
                return Err(StoreError::Overloaded);
            }
            let jitter = rand::random_range(0..10u64);
            tokio::time::sleep(Duration::from_millis(5 * (1 << lost.min(6)) + jitter)).await;
        }
        Ok(result)
    }

    /// The head and the index state of every id in `ops`.
    async fn read_states(
        &self,
        user: Uuid,
        ops: &[SampleOp],
    ) -> StoreResult<(u64, HashMap<String, State>)> {
        let head = self.write_head(user).await?;
        let ids: BTreeSet<&str> = ops.iter().map(SampleOp::id).collect();
        let ids: Vec<&str> = ids.into_iter().collect();
        let pk = index_pk(user);
        // Owned before the stream: borrowed iterators make the future's lifetimes too
        // general for `async_trait`'s `Send` bound.
        let keys: Vec<Vec<Item>> = ids
            .chunks(BATCH_GET)
            .map(|part| {
                part.iter()
                    .map(|id| Item::from([("pk".to_owned(), s(&pk)), ("sk".to_owned(), s(*id))]))
                    .collect()
            })
            .collect();
        let found: Vec<Vec<Item>> = stream::iter(keys)
            .map(|keys| self.batch_get(keys, None))
            .buffer_unordered(4)
            .try_collect()
            .await?;
        let mut states: HashMap<String, State> = HashMap::with_capacity(ids.len());
        for item in found.iter().flatten() {
            let id = super::attr_s(item, "sk")?.to_owned();
            states.insert(id, state_of_index(item)?);
        }
        Ok((head, states))
    }

    /// Reads the head back after the last part: it must be at least what was committed.
    /// On DynamoDB this is one read unit of assurance; DynamoDB Local answers a
    /// TransactWriteItems before the write is on disk (killed right after, it loses 7 in 8)
    /// and a read that follows makes it durable there, which the fault tests rely on.
    async fn confirm_head(&self, user: Uuid, committed: u64) -> StoreResult<()> {
        let head = self.change_head(user).await?;
        if head < committed {
            return Err(StoreError::Unavailable(format!(
                "a committed sample write is not visible (head {head} < {committed})"
            )));
        }
        Ok(())
    }

    /// The head a write starts from; `AccountErased` once the account's erasure marked it.
    async fn write_head(&self, user: Uuid) -> StoreResult<u64> {
        let item = self.get(head_pk(user), HEAD_SK).await?;
        if item.as_ref().is_some_and(|i| i.contains_key(ERASED_ATTR)) {
            return Err(StoreError::AccountErased);
        }
        head_of(item)
    }

    pub(super) async fn change_head(&self, user: Uuid) -> StoreResult<u64> {
        head_of(self.get(head_pk(user), HEAD_SK).await?)
    }

    /// Strongly consistent BatchGetItem of `keys` (at most 100), unprocessed keys retried.
    pub(super) async fn batch_get(
        &self,
        keys: Vec<Item>,
        projection: Option<(String, HashMap<String, String>)>,
    ) -> StoreResult<Vec<Item>> {
        let mut out = Vec::new();
        let mut b = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true);
        if let Some((expr, names)) = projection {
            b = b
                .projection_expression(expr)
                .set_expression_attribute_names(Some(names));
        }
        let mut request = Some(HashMap::from([(
            self.table.clone(),
            b.build().map_err(build_err)?,
        )]));
        for attempt in 0.. {
            let Some(req) = request.take().filter(|r| !r.is_empty()) else {
                break;
            };
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 * attempt.min(10))).await;
            }
            let got = self
                .client
                .batch_get_item()
                .set_request_items(Some(req))
                .send()
                .await
                .map_err(map_err)?;
            if let Some(mut r) = got.responses {
                out.extend(r.remove(&self.table).unwrap_or_default());
            }
            request = got.unprocessed_keys;
        }
        Ok(out)
    }

    /// The stored samples that updates and deletes replace, read from their chunks before
    /// anything is committed; `None` where the chunk lacks one (reported, not fatal).
    async fn read_removed(
        &self,
        user: Uuid,
        removed: &[Removed],
    ) -> StoreResult<Vec<Option<Sample>>> {
        let mut wanted: HashMap<ChunkKey, Vec<String>> = HashMap::new();
        for r in removed {
            if let Removed::Stored { id, chunk } = r {
                wanted.entry(*chunk).or_default().push(id.clone());
            }
        }
        let pk = codec::samples_pk(user);
        let reads: Vec<(ChunkKey, Vec<String>)> = wanted
            .into_iter()
            .flat_map(|(chunk, ids)| {
                ids.chunks(BATCH_GET)
                    .map(|ids| (chunk, ids.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let found: Vec<(ChunkKey, Item)> = stream::iter(reads)
            .map(|((kind, bucket), ids)| {
                let key = Item::from([
                    ("pk".to_owned(), s(&pk)),
                    ("sk".to_owned(), s(codec::chunk_sk(kind, bucket))),
                ]);
                let names: HashMap<String, String> = ids
                    .iter()
                    .enumerate()
                    .map(|(j, id)| (format!("#p{j}"), format!("{SAMPLE_ATTR_PREFIX}{id}")))
                    .collect();
                let expr = (0..ids.len())
                    .map(|j| format!("#p{j}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                async move {
                    let items = self.batch_get(vec![key], Some((expr, names))).await?;
                    Ok::<_, StoreError>((
                        (kind, bucket),
                        items.into_iter().next().unwrap_or_default(),
                    ))
                }
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        let chunks: HashMap<ChunkKey, Item> = found.into_iter().collect();
        Ok(removed
            .iter()
            .map(|r| match r {
                Removed::Known(sample) => Some(sample.clone()),
                Removed::Stored { id, chunk } => {
                    let value = chunks
                        .get(chunk)
                        .and_then(|c| c.get(&format!("{SAMPLE_ATTR_PREFIX}{id}")));
                    let sample = value.and_then(|v| codec::decode_sample(id, chunk.0, v));
                    if sample.is_none() {
                        tracing::warn!("an indexed sample is missing from its chunk");
                    }
                    sample
                }
            })
            .collect())
    }

    /// Commits one part; `false` when the head moved since `head` was read (a lost race).
    /// `spans`: the part's changed times, stored as its revision when not empty.
    async fn commit(
        &self,
        user: Uuid,
        head: u64,
        part: &Part,
        spans: &[(i64, i64)],
    ) -> StoreResult<bool> {
        let last = part.changes.last().map_or(head, |c| c.seq);
        let mut set_head = Update::builder()
            .table_name(&self.table)
            .key("pk", s(head_pk(user)))
            .key("sk", s(HEAD_SK))
            .update_expression("SET seq = :new")
            .expression_attribute_values(":new", n(last));
        set_head = if head == 0 {
            set_head.condition_expression(format!(
                "attribute_not_exists(seq) AND attribute_not_exists({ERASED_ATTR})"
            ))
        } else {
            set_head
                .condition_expression(format!(
                    "seq = :old AND attribute_not_exists({ERASED_ATTR})"
                ))
                .expression_attribute_values(":old", n(head))
        };
        // Chunks first, then the log, the index, the revision, and the head last: DynamoDB applies a
        // transaction atomically, but an emulator killed halfway through one (DynamoDB Local
        // in the fault tests) keeps a prefix of it, and a prefix in this order is one a retry
        // repairs: a sample in its chunk without an index item is simply written again.
        let mut items = Vec::with_capacity(part.chunks.len() + part.index.len() + 3);
        let put = |item: Item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(build_err)
        };
        let pk = codec::samples_pk(user);
        for (&(kind, bucket), edit) in &part.chunks {
            let mut update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(codec::chunk_sk(kind, bucket)));
            let mut sets = Vec::new();
            for (j, (id, sample)) in edit.set.iter().enumerate() {
                sets.push(format!("#s{j} = :s{j}"));
                update = update
                    .expression_attribute_names(
                        format!("#s{j}"),
                        format!("{SAMPLE_ATTR_PREFIX}{id}"),
                    )
                    .expression_attribute_values(format!(":s{j}"), codec::encode_sample(sample));
            }
            let mut removes = Vec::new();
            for (j, id) in edit.remove.iter().enumerate() {
                removes.push(format!("#r{j}"));
                update = update.expression_attribute_names(
                    format!("#r{j}"),
                    format!("{SAMPLE_ATTR_PREFIX}{id}"),
                );
            }
            let mut expr = String::new();
            if !sets.is_empty() {
                expr.push_str("SET ");
                expr.push_str(&sets.join(", "));
            }
            if !removes.is_empty() {
                expr.push_str(" REMOVE ");
                expr.push_str(&removes.join(", "));
            }
            items.push(
                TransactWriteItem::builder()
                    .update(update.update_expression(expr).build().map_err(build_err)?)
                    .build(),
            );
        }
        items.push(put(feed::log_item(user, &part.changes))?);
        for (id, (st, seq)) in &part.index {
            items.push(put(index_item(user, id, st, *seq))?);
        }
        if !spans.is_empty() {
            items.push(put(super::revisions::item(user, last, spans))?);
        }
        items.push(
            TransactWriteItem::builder()
                .update(set_head.build().map_err(build_err)?)
                .build(),
        );
        match self.transact(items).await? {
            accounts::TxOutcome::Done => Ok(true),
            accounts::TxOutcome::Cancelled(r)
                if r.last().is_some_and(|c| c == "ConditionalCheckFailed") =>
            {
                Ok(false)
            }
            accounts::TxOutcome::Cancelled(r) => Err(StoreError::Other(anyhow::anyhow!(
                "writing samples was cancelled: {r:?}"
            ))),
        }
    }
}

/// A transaction item that holds only while the head item `pk`/`sk` has no erased mark (see
/// `erase`): the document or event it goes with is not stored for an erased account.
pub(super) fn not_erased(table: &str, pk: String, sk: &str) -> StoreResult<TransactWriteItem> {
    let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
        .table_name(table)
        .key("pk", s(pk))
        .key("sk", s(sk))
        .condition_expression("attribute_not_exists(#e)")
        .expression_attribute_names("#e", ERASED_ATTR)
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// The change seq a head item holds (0 without one).
fn head_of(item: Option<Item>) -> StoreResult<u64> {
    Ok(item
        .map(|item| attr_i64(&item, "seq"))
        .transpose()?
        .flatten()
        .map_or(0, |v| v.max(0) as u64))
}
