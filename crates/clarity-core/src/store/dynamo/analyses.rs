//! Documents (analyses, insights): a listing item per document, ordered by window end, and an
//! id claim that makes storing idempotent.
//!
//! Rules: both items are written in one transaction conditioned on the claim not existing,
//! so the same document computed on two nodes (or twice on one) is stored once, and on the
//! user's change head bearing no erased mark (`erase`), so none is stored for an erased
//! account. Marking a
//! document superseded sets `sup` (the newer document's id) on its listing item, on condition
//! that the item exists, so a listing shows it without a second read.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

use super::codec::{n, s};
use super::{DynamoStore, Item, accounts, attr_i64, attr_s, attr_uuid, if_held};
use crate::store::{DocCursor, DocKind, DocPage, DocQuery, DocRecord, StoreError, StoreResult};

pub(super) fn pk(kind: DocKind, user: Uuid) -> String {
    match kind {
        DocKind::Analysis => format!("ANALYSES#{user}"),
        DocKind::Insight => format!("INSIGHTS#{user}"),
    }
}

/// Window ends are positive ms below 10^13 (year 2286): fixed width keeps the order.
fn list_sk(window_to_ms: i64, id: Uuid) -> String {
    format!("{:013}#{id}", window_to_ms.max(0))
}

fn claim_sk(id: Uuid) -> String {
    format!("ID#{id}")
}

fn from_item(item: &Item) -> StoreResult<DocRecord> {
    Ok(DocRecord {
        superseded_by: match item.get("sup") {
            Some(_) => Some(attr_uuid(item, "sup")?),
            None => None,
        },
        id: attr_uuid(item, "id")?,
        user_id: attr_uuid(item, "uid")?,
        created_at: Utc
            .timestamp_millis_opt(attr_i64(item, "created")?.unwrap_or(0))
            .single()
            .unwrap_or_default(),
        window_from_ms: attr_i64(item, "from")?.unwrap_or(0),
        window_to_ms: attr_i64(item, "to")?.unwrap_or(0),
        body: attr_s(item, "body")?.to_owned(),
    })
}

impl DynamoStore {
    pub(super) async fn put_doc_tx(&self, kind: DocKind, a: &DocRecord) -> StoreResult<bool> {
        let list = Item::from([
            ("pk".to_owned(), s(pk(kind, a.user_id))),
            ("sk".to_owned(), s(list_sk(a.window_to_ms, a.id))),
            ("id".to_owned(), s(a.id.to_string())),
            ("uid".to_owned(), s(a.user_id.to_string())),
            ("created".to_owned(), n(a.created_at.timestamp_millis())),
            ("from".to_owned(), n(a.window_from_ms)),
            ("to".to_owned(), n(a.window_to_ms)),
            ("body".to_owned(), s(&a.body)),
        ]);
        let claim = Item::from([
            ("pk".to_owned(), s(pk(kind, a.user_id))),
            ("sk".to_owned(), s(claim_sk(a.id))),
            ("lsk".to_owned(), s(list_sk(a.window_to_ms, a.id))),
        ]);
        let put = |item: Item, cond: bool| {
            let mut b = Put::builder().table_name(&self.table).set_item(Some(item));
            if cond {
                b = b.condition_expression("attribute_not_exists(pk)");
            }
            b.build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| StoreError::Other(e.into()))
        };
        let alive = super::writes::not_erased(
            &self.table,
            super::writes::head_pk(a.user_id),
            super::writes::HEAD_SK,
        )?;
        match self
            .transact(vec![put(claim, true)?, put(list, false)?, alive])
            .await?
        {
            accounts::TxOutcome::Done => Ok(true),
            accounts::TxOutcome::Cancelled(r)
                if r.get(2).is_some_and(|c| c == "ConditionalCheckFailed") =>
            {
                Err(StoreError::AccountErased)
            }
            accounts::TxOutcome::Cancelled(r)
                if r.first().is_some_and(|c| c == "ConditionalCheckFailed") =>
            {
                Ok(false)
            }
            accounts::TxOutcome::Cancelled(r) => Err(StoreError::Other(anyhow::anyhow!(
                "storing the {} was cancelled: {r:?}",
                kind.as_str()
            ))),
        }
    }

    pub(super) async fn set_superseded_item(
        &self,
        kind: DocKind,
        user: Uuid,
        id: Uuid,
        by: Option<Uuid>,
    ) -> StoreResult<bool> {
        let Some(claim) = self.get(pk(kind, user), &claim_sk(id)).await? else {
            return Ok(false);
        };
        let lsk = attr_s(&claim, "lsk")?.to_owned();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(kind, user)))
            .key("sk", s(lsk))
            .condition_expression("attribute_exists(pk)");
        req = match by {
            Some(by) => req
                .update_expression("SET sup = :by")
                .expression_attribute_values(":by", s(by.to_string())),
            None => req.update_expression("REMOVE sup"),
        };
        match if_held(req.send().await)? {
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    pub(super) async fn get_doc_item(
        &self,
        kind: DocKind,
        user: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<DocRecord>> {
        let Some(claim) = self.get(pk(kind, user), &claim_sk(id)).await? else {
            return Ok(None);
        };
        let lsk = attr_s(&claim, "lsk")?.to_owned();
        match self.get(pk(kind, user), &lsk).await? {
            Some(item) => from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    pub(super) async fn list_doc_items(
        &self,
        kind: DocKind,
        user: Uuid,
        q: DocQuery,
    ) -> StoreResult<DocPage> {
        let limit = q.limit.max(1);
        let after = q.after.clone();
        let lower = q
            .from_ms
            .unwrap_or(0)
            .max(after.as_ref().map_or(0, |a| a.window_to_ms))
            .max(0);
        let upper = q.to_ms.unwrap_or(9_999_999_999_999).min(9_999_999_999_999);
        let mut analyses = Vec::new();
        if lower < upper {
            let lo = format!("{lower:013}#");
            // '~' sorts after every id character: the range ends after the last id at upper-1.
            let hi = format!("{:013}#~", upper - 1);
            let query = self
                .query()
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(pk(kind, user)))
                .expression_attribute_values(":lo", s(&lo))
                .expression_attribute_values(":hi", s(&hi))
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
            self.query_items(query, |item| {
                let a = from_item(item)?;
                let past_cursor = after
                    .as_ref()
                    .is_none_or(|c| (a.window_to_ms, a.id) > (c.window_to_ms, c.id));
                if past_cursor {
                    analyses.push(a);
                }
                Ok(analyses.len() <= limit)
            })
            .await?;
        }
        let next = if analyses.len() > limit {
            analyses.truncate(limit);
            analyses.last().map(|a| DocCursor {
                window_to_ms: a.window_to_ms,
                id: a.id,
            })
        } else {
            None
        };
        Ok(DocPage {
            docs: analyses,
            next,
        })
    }
}
