//! Pending recomputations on DynamoDB (the rules are `store::revisions`'s).
//!
//! Rules:
//! - A revision is an item in the user's change partition: `CHG#<user>` / `R#<seq:020>`,
//!   `spans` the JSON of its changed times. It is put by the part's TransactWriteItems (see
//!   `writes`), so it exists exactly when the part's changes do; `R#` sorts apart from the
//!   change log (`C#`) and the head (`HEAD`), whose queries never see it.
//! - Listing and clearing query `R#` keys of one partition: a user's pending revisions are
//!   few (those of writes whose recomputation is running or was lost), never the whole log.
//! - Erasure deletes the whole partition, revisions with it.

use uuid::Uuid;

use super::codec::s;
use super::writes::head_pk;
use super::{DynamoStore, Item, attr_s};
use crate::store::revisions::{decode_spans, encode_spans};
use crate::store::{Revision, StoreError, StoreResult};

fn sk(seq: u64) -> String {
    format!("R#{seq:020}")
}

/// The revision item a part's transaction puts.
pub fn item(user: Uuid, seq: u64, spans: &[(i64, i64)]) -> Item {
    Item::from([
        ("pk".to_owned(), s(head_pk(user))),
        ("sk".to_owned(), s(sk(seq))),
        ("spans".to_owned(), s(encode_spans(spans))),
    ])
}

impl DynamoStore {
    /// `user`'s revision items with `from <= seq <= to`, by seq.
    async fn revisions_between(
        &self,
        user: Uuid,
        from: u64,
        to: u64,
    ) -> StoreResult<Vec<Revision>> {
        let query = self
            .query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(head_pk(user)))
            .expression_attribute_values(":lo", s(sk(from)))
            .expression_attribute_values(":hi", s(sk(to)));
        let mut out = Vec::new();
        self.query_items(query, |it| {
            let bad = || StoreError::Other(anyhow::anyhow!("a stored revision does not decode"));
            let seq = attr_s(it, "sk")?
                .strip_prefix("R#")
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)?;
            let spans = decode_spans(attr_s(it, "spans")?).ok_or_else(bad)?;
            out.push(Revision { seq, spans });
            Ok(true)
        })
        .await?;
        Ok(out)
    }

    pub(super) async fn pending_revision_items(&self, user: Uuid) -> StoreResult<Vec<Revision>> {
        self.revisions_between(user, 0, u64::MAX).await
    }

    /// Deletes the revisions with a seq in one of `ranges`: one query over their hull.
    pub(super) async fn clear_revision_items(
        &self,
        user: Uuid,
        ranges: &[(u64, u64)],
    ) -> StoreResult<()> {
        let (Some(lo), Some(hi)) = (
            ranges.iter().map(|r| r.0).min(),
            ranges.iter().map(|r| r.1).max(),
        ) else {
            return Ok(());
        };
        let keys: Vec<(String, String)> = self
            .revisions_between(user, lo, hi)
            .await?
            .into_iter()
            .filter(|r| {
                ranges
                    .iter()
                    .any(|&(from, to)| (from..=to).contains(&r.seq))
            })
            .map(|r| (head_pk(user), sk(r.seq)))
            .collect();
        self.delete_keys(&keys, None).await
    }
}
