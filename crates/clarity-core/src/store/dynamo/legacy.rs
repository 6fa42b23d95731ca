//! The one-time migration of samples written before the id index existed.
//!
//! Rules:
//! - Chunks written by the earlier insert-only path have no index items, so deletes and
//!   updates would not find their samples. At start, unless the meta item `META` /
//!   `SYNC2INDEX` says it is done, every chunk is scanned and its samples go through the
//!   ordinary write path as puts: an unindexed one is indexed and takes a change seq (an
//!   `Inserted` change, so the feed replayed from 0 lists it), an indexed one is a duplicate.
//!   That makes the migration idempotent and safe against concurrent writers and a second
//!   node migrating at the same time (the head's optimistic concurrency serialises them).
//! - The scan goes page by page (bounded memory); within a page a user's samples take seqs
//!   in `(start, id)` order.
//! - Nodes running the earlier version must be stopped before the first node of this version
//!   starts: what they write afterwards is not indexed.

use std::collections::BTreeMap;

use chrono::Utc;
use uuid::Uuid;

use super::codec::{self, SAMPLE_ATTR_PREFIX, n, s};
use super::{DynamoStore, Item, attr_s, map_err};
use crate::samples::{Kind, Sample};
use crate::store::{SampleOp, StoreError, StoreResult};

const META_SK: &str = "SYNC2INDEX";
/// Ops per write during the migration.
const OPS_PER_WRITE: usize = 1000;

impl DynamoStore {
    /// Indexes legacy samples unless already done; returns how many were indexed.
    pub(super) async fn migrate_legacy(&self) -> StoreResult<u64> {
        if self.get("META".into(), META_SK).await?.is_some() {
            return Ok(0);
        }
        let mut indexed = 0u64;
        let mut start_key: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("begins_with(pk, :p)")
                .expression_attribute_values(":p", s("SAMPLES#"))
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(map_err)?;
            let mut per_user: BTreeMap<Uuid, Vec<Sample>> = BTreeMap::new();
            for item in page.items() {
                let Some((user, kind)) = chunk_owner(item)? else {
                    continue;
                };
                let samples = per_user.entry(user).or_default();
                for (name, value) in item {
                    if let Some(id) = name.strip_prefix(SAMPLE_ATTR_PREFIX)
                        && let Some(sample) = codec::decode_sample(id, kind, value)
                    {
                        samples.push(sample);
                    }
                }
            }
            for (user, mut samples) in per_user {
                samples.sort_by(|a, b| (a.start.utc_ms, &a.id).cmp(&(b.start.utc_ms, &b.id)));
                let mut ops: Vec<SampleOp> = samples.into_iter().map(SampleOp::Put).collect();
                while !ops.is_empty() {
                    let rest = ops.split_off(ops.len().min(OPS_PER_WRITE));
                    match self.write_ops(user, ops).await {
                        Ok(done) => indexed += done.seqs.len() as u64,
                        // Chunks of an account whose erasure is pending: that erasure deletes
                        // them (pending erasures are finished at start).
                        Err(StoreError::AccountErased) => break,
                        Err(e) => return Err(e),
                    }
                    ops = rest;
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => break,
            }
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s("META"))
            .item("sk", s(META_SK))
            .item("at", n(Utc::now().timestamp_millis()))
            .item("indexed", n(indexed))
            .send()
            .await
            .map_err(map_err)?;
        if indexed > 0 {
            tracing::info!(indexed, "indexed samples written before sync v2");
        }
        Ok(indexed)
    }
}

/// The user and kind of a chunk item (`SAMPLES#<user>` / `<kind:02>#<hour>`).
fn chunk_owner(item: &Item) -> StoreResult<Option<(Uuid, Kind)>> {
    let pk = attr_s(item, "pk")?;
    let sk = attr_s(item, "sk")?;
    let Some(user) = pk
        .strip_prefix("SAMPLES#")
        .and_then(|u| Uuid::parse_str(u).ok())
    else {
        return Ok(None);
    };
    let kind = sk
        .split('#')
        .next()
        .and_then(|c| c.parse::<i64>().ok())
        .and_then(Kind::from_code)
        .ok_or_else(|| StoreError::Other(anyhow::anyhow!("chunk key of unknown kind")))?;
    Ok(Some((user, kind)))
}
