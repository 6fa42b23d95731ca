//! Samples in per-user, per-kind, per-hour chunk items.
//!
//! Rules:
//! - A sample is written as `SET #i = if_not_exists(#i, :v)` on its chunk with
//!   `ReturnValues=UPDATED_OLD`: DynamoDB returns an old value exactly for the ids that were
//!   already there, which is the new/duplicate answer, atomically and without a read. Retries
//!   of a half-written batch and two nodes writing the same batch therefore store each
//!   sample once.
//! - Duplicate ids inside one batch are settled here (first wins), as SQLite does.
//! - Ids are unique per (user, kind, hour) on this backend: SQLite also refuses an id reused
//!   for another kind or hour, DynamoDB would need one item per sample to do so.
//! - Reads merge the per-kind chunk ranges into the `(start, id)` order SQLite gives.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use futures_util::{StreamExt, TryStreamExt, stream};
use uuid::Uuid;

use super::codec::{self, SAMPLE_ATTR_PREFIX, s};
use super::{DynamoStore, Item, map_err};
use crate::samples::{Kind, Sample};
use crate::store::{Cursor, SamplePage, SampleQuery, StoreResult};

/// Samples per UpdateItem: keeps the update expression under DynamoDB's 4 KB limit
/// (`#iNN = if_not_exists(#iNN, :vNN), ` is ~35 bytes).
const UPDATE_SAMPLES: usize = 100;

/// UpdateItem calls of one batch in flight at once.
const UPDATE_CONCURRENCY: usize = 16;

impl DynamoStore {
    pub(super) async fn put_samples(
        &self,
        user: Uuid,
        samples: Vec<Sample>,
    ) -> StoreResult<Vec<bool>> {
        let mut new = vec![false; samples.len()];
        // (kind, hour) → indices into `samples`, first occurrence of each id only.
        let mut chunks: HashMap<(Kind, i64), Vec<usize>> = HashMap::new();
        let mut seen = HashSet::with_capacity(samples.len());
        for (i, sample) in samples.iter().enumerate() {
            if seen.insert(sample.id.as_str()) {
                let key = (sample.kind, codec::bucket_of(sample.start.utc_ms));
                chunks.entry(key).or_default().push(i);
            }
        }
        let pk = codec::samples_pk(user);
        let updates = chunks.into_iter().flat_map(|((kind, bucket), idx)| {
            let sk = codec::chunk_sk(kind, bucket);
            idx.chunks(UPDATE_SAMPLES)
                .map(|part| (sk.clone(), part.to_vec()))
                .collect::<Vec<_>>()
        });
        let results: Vec<(Vec<usize>, Item)> = stream::iter(updates)
            .map(|(sk, part)| {
                let req = self.chunk_update(&pk, sk, &part, &samples);
                async move {
                    let _slot = self.inflight.acquire().await.map_err(|_| {
                        crate::store::StoreError::Unavailable("store closed".into())
                    })?;
                    let out = req.send().await.map_err(map_err)?;
                    Ok::<_, crate::store::StoreError>((part, out.attributes.unwrap_or_default()))
                }
            })
            .buffer_unordered(UPDATE_CONCURRENCY)
            .try_collect()
            .await?;
        for (part, old) in results {
            for i in part {
                new[i] = !old.contains_key(&format!("{SAMPLE_ATTR_PREFIX}{}", samples[i].id));
            }
        }
        Ok(new)
    }

    fn chunk_update(
        &self,
        pk: &str,
        sk: String,
        part: &[usize],
        samples: &[Sample],
    ) -> UpdateItemFluentBuilder {
        let mut expr = String::with_capacity(part.len() * 36 + 4);
        expr.push_str("SET ");
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .return_values(ReturnValue::UpdatedOld);
        for (j, &i) in part.iter().enumerate() {
            if j > 0 {
                expr.push_str(", ");
            }
            expr.push_str(&format!("#i{j} = if_not_exists(#i{j}, :v{j})"));
            req = req
                .expression_attribute_names(
                    format!("#i{j}"),
                    format!("{SAMPLE_ATTR_PREFIX}{}", samples[i].id),
                )
                .expression_attribute_values(format!(":v{j}"), codec::encode_sample(&samples[i]));
        }
        req.update_expression(expr)
    }

    pub(super) async fn read_samples(&self, user: Uuid, q: SampleQuery) -> StoreResult<SamplePage> {
        let limit = q.limit.max(1);
        let (after_ms, after_id) = match &q.after {
            Some(c) => (c.start_ms, c.id.as_str()),
            None => (i64::MIN, ""),
        };
        let lower = q.from_ms.unwrap_or(i64::MIN).max(after_ms);
        let upper = q.to_ms.unwrap_or(i64::MAX);
        if lower >= upper {
            return Ok(SamplePage {
                samples: Vec::new(),
                next: None,
            });
        }
        let keep = |x: &Sample| {
            let t = x.start.utc_ms;
            t >= lower && t < upper && (t > after_ms || (t == after_ms && x.id.as_str() > after_id))
        };
        let kinds: Vec<Kind> = match q.kind {
            Some(k) => vec![k],
            None => Kind::ALL.to_vec(),
        };
        let pk = codec::samples_pk(user);
        let per_kind = stream::iter(kinds)
            .map(|kind| self.read_kind(&pk, kind, lower, upper, limit + 1, &keep))
            .buffer_unordered(8)
            .try_collect::<Vec<Vec<Sample>>>()
            .await?;
        let mut samples: Vec<Sample> = per_kind.into_iter().flatten().collect();
        samples.sort_by(|a, b| (a.start.utc_ms, &a.id).cmp(&(b.start.utc_ms, &b.id)));
        let next = if samples.len() > limit {
            samples.truncate(limit);
            samples.last().map(|x| Cursor {
                start_ms: x.start.utc_ms,
                id: x.id.clone(),
            })
        } else {
            None
        };
        Ok(SamplePage { samples, next })
    }

    /// The first `want` samples of one kind in `[lower, upper)` passing `keep`, in order.
    async fn read_kind(
        &self,
        pk: &str,
        kind: Kind,
        lower: i64,
        upper: i64,
        want: usize,
        keep: &(dyn Fn(&Sample) -> bool + Sync),
    ) -> StoreResult<Vec<Sample>> {
        let lo = codec::chunk_sk(kind, codec::bucket_of(lower.max(0)));
        let hi = codec::chunk_sk(kind, codec::bucket_of(upper.saturating_sub(1)));
        let mut out = Vec::new();
        let query = self
            .query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":lo", s(&lo))
            .expression_attribute_values(":hi", s(&hi));
        self.query_items(query, |item| {
            let mut chunk = decode_chunk(kind, item);
            chunk.retain(|x| keep(x));
            chunk.sort_by(|a, b| (a.start.utc_ms, &a.id).cmp(&(b.start.utc_ms, &b.id)));
            out.extend(chunk);
            // Chunks come in time order, so once enough are in hand later ones sort after.
            Ok(out.len() < want)
        })
        .await?;
        out.truncate(want);
        Ok(out)
    }
}

fn decode_chunk(kind: Kind, item: &Item) -> Vec<Sample> {
    item.iter()
        .filter_map(|(name, value): (&String, &AttributeValue)| {
            let id = name.strip_prefix(SAMPLE_ATTR_PREFIX)?;
            let sample = codec::decode_sample(id, kind, value);
            if sample.is_none() {
                tracing::warn!(
                    kind = kind.as_str(),
                    "skipping an undecodable stored sample"
                );
            }
            sample
        })
        .collect()
}
