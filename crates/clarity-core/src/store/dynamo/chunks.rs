//! Samples in per-user, per-kind, per-hour chunk items.
//!
//! Rules:
//! - Chunks are written only by the sync-v2 write path ([`super::writes`]): SET of the
//!   samples a committed part stores, REMOVE of the ones it moves or deletes, in the same
//!   transaction as their id-index items. So a chunk holds exactly the live samples: reads
//!   never see a deleted one, and an updated one appears once, in its new chunk.
//! - The earlier insert-only path (`SET #i = if_not_exists(#i, :v)`, no index) is kept for
//!   tests only, to write the legacy data the start-up migration ([`super::legacy`]) indexes.
//! - Reads merge the per-kind chunk ranges into the `(start, id)` order SQLite gives.

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::{StreamExt, TryStreamExt, stream};
use uuid::Uuid;

use super::codec::{self, SAMPLE_ATTR_PREFIX, s};
use super::{DynamoStore, Item};
use crate::samples::{Kind, Sample};
use crate::store::{Cursor, SamplePage, SampleQuery, StoreResult};

impl DynamoStore {
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
