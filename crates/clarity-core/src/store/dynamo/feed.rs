//! The change feed on DynamoDB: change-log items, one per committed part of a write.
//!
//! Rules:
//! - A change-log item is `CHG#<user>` / `C#<first seq:020>`, holding the part's changes in
//!   seq order (`c`: a list of `{q: seq, i: id, k: kind, v: sample}`, no `k`/`v` for a
//!   delete) and `last` (its last seq). It is written in the same transaction as the head,
//!   so the log has every committed change and nothing else.
//! - Reading after `after` starts at the item holding `after + 1` (the last one whose first
//!   seq is at most that), then goes forward; changes at or below `after` are skipped.
//! - Nothing is compacted and change-log items never expire, so `floor` is 0 and a reader may
//!   resume from any position. The log grows by one entry per change (about the size of the
//!   sample); an operator who needs it smaller can delete a user's oldest `C#` items and
//!   must then make `floor` report the first seq kept (not done today).

use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::codec::{self, n, s};
use super::plan::PlannedChange;
use super::writes::head_pk;
use super::{DynamoStore, Item, attr_i64, attr_s};
use crate::samples::Kind;
use crate::store::{Change, ChangeOp, ChangePage, StoreError, StoreResult};

fn log_sk(first: u64) -> String {
    format!("C#{first:020}")
}

pub fn log_item(user: Uuid, changes: &[PlannedChange]) -> Item {
    let first = changes.first().map_or(0, |c| c.seq);
    let last = changes.last().map_or(0, |c| c.seq);
    let list = changes
        .iter()
        .map(|c| {
            let mut m = std::collections::HashMap::from([
                ("q".to_owned(), n(c.seq)),
                ("i".to_owned(), s(&c.id)),
            ]);
            if let Some(sample) = &c.sample {
                m.insert("k".into(), n(sample.kind.code()));
                m.insert("v".into(), codec::encode_sample(sample));
            }
            AttributeValue::M(m)
        })
        .collect();
    Item::from([
        ("pk".to_owned(), s(head_pk(user))),
        ("sk".to_owned(), s(log_sk(first))),
        ("last".to_owned(), n(last)),
        ("c".to_owned(), AttributeValue::L(list)),
    ])
}

fn bad(what: &str) -> StoreError {
    StoreError::Other(anyhow::anyhow!("stored change log: {what}"))
}

fn decode_changes(item: &Item) -> StoreResult<Vec<Change>> {
    let Some(AttributeValue::L(list)) = item.get("c") else {
        return Err(bad("item lacks its changes"));
    };
    list.iter()
        .map(|c| {
            let AttributeValue::M(m) = c else {
                return Err(bad("a change is not a map"));
            };
            let seq = attr_i64(m, "q")?.ok_or_else(|| bad("a change lacks its seq"))? as u64;
            let id = attr_s(m, "i")?.to_owned();
            let op = match (attr_i64(m, "k")?, m.get("v")) {
                (Some(code), Some(v)) => {
                    let kind = Kind::from_code(code).ok_or_else(|| bad("unknown kind"))?;
                    ChangeOp::Upsert(
                        codec::decode_sample(&id, kind, v)
                            .ok_or_else(|| bad("an undecodable sample"))?,
                    )
                }
                _ => ChangeOp::Delete { id },
            };
            Ok(Change { seq, op })
        })
        .collect()
}

impl DynamoStore {
    pub(super) async fn change_items(
        &self,
        user: Uuid,
        after: u64,
        limit: usize,
    ) -> StoreResult<ChangePage> {
        let limit = limit.max(1);
        let pk = head_pk(user);
        // The item that may hold after + 1: the last one starting at or before it.
        let mut start = log_sk(0);
        let before = self
            .query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":lo", s(log_sk(0)))
            .expression_attribute_values(":hi", s(log_sk(after.saturating_add(1))))
            .scan_index_forward(false)
            .limit(1);
        self.query_items(before, |item| {
            start = attr_s(item, "sk")?.to_owned();
            Ok(false)
        })
        .await?;
        let mut changes = Vec::new();
        let mut more = false;
        let forward = self
            .query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":lo", s(&start))
            .expression_attribute_values(":hi", s("C#~"));
        self.query_items(forward, |item| {
            for c in decode_changes(item)? {
                if c.seq <= after {
                    continue;
                }
                if changes.len() == limit {
                    more = true;
                    return Ok(false);
                }
                changes.push(c);
            }
            Ok(true)
        })
        .await?;
        // Read after the log: every change listed is at or below it.
        let head = self.change_head(user).await?;
        let last = changes.last().map_or(after, |c| c.seq);
        Ok(ChangePage {
            more: more || last < head,
            changes,
            head,
            floor: 0,
        })
    }
}
