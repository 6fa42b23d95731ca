//! Shares and document streams in DynamoDB.
//!
//! Layout (single table):
//! - share `SHARE#<id>` / `SHARE`, plus a claim `SHAREKEY#<owner>#<grantee>#<scope>` / `SHAREKEY`
//!   (uniqueness and the grant check in one GetItem) and listing copies `SHARES#<user>` /
//!   `OUT#<id>` and `IN#<id>`: all four written or deleted in one transaction.
//! - stream head `STREAM#<user>#<stream>` / `HEAD` (`ADD seq 1` hands out offsets, one place
//!   for every node), events `STREAM#<user>#<stream>` / `E#<offset:020>`.
//! - the store's epoch `META` / `EPOCH`, created once (conditional put).
//!
//! Rules: an offset is allocated before its event is written, so a crash between the two
//! leaves a hole that readers skip; events far behind the head are deleted (best effort) and
//! expire by TTL anyway.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use uuid::Uuid;

use super::codec::{n, s};
use super::{DynamoStore, Item, accounts, attr_i64, attr_s, attr_uuid, if_held, ms_to_utc};
use crate::store::{DocKind, ShareRecord, StoreError, StoreResult, StreamEvent};

/// Events expire from DynamoDB after this long, whatever the history limit.
const EVENT_TTL_SECS: i64 = 30 * 24 * 3600;

pub(super) fn share_pk(id: Uuid) -> String {
    format!("SHARE#{id}")
}

pub(super) fn claim_pk(owner: Uuid, grantee: Uuid, scope: DocKind) -> String {
    format!("SHAREKEY#{owner}#{grantee}#{}", scope.stream())
}

pub(super) fn list_pk(user: Uuid) -> String {
    format!("SHARES#{user}")
}

/// The sort key of a stream's head item (its last offset; an erased mark, see `erase`).
pub(super) const HEAD_SK: &str = "HEAD";

pub(super) fn stream_pk(user: Uuid, kind: DocKind) -> String {
    format!("STREAM#{user}#{}", kind.stream())
}

fn event_sk(offset: u64) -> String {
    format!("E#{offset:020}")
}

fn share_item(sh: &ShareRecord, pk: String, sk: &str) -> Item {
    Item::from([
        ("pk".to_owned(), s(pk)),
        ("sk".to_owned(), s(sk)),
        ("id".to_owned(), s(sh.id.to_string())),
        ("owner".to_owned(), s(sh.owner_id.to_string())),
        ("grantee".to_owned(), s(sh.grantee_id.to_string())),
        ("scope".to_owned(), s(sh.scope.stream())),
        ("created".to_owned(), n(sh.created_at.timestamp_millis())),
    ])
}

pub(super) fn share_from_item(item: &Item) -> StoreResult<ShareRecord> {
    let scope = attr_s(item, "scope")?;
    Ok(ShareRecord {
        id: attr_uuid(item, "id")?,
        owner_id: attr_uuid(item, "owner")?,
        grantee_id: attr_uuid(item, "grantee")?,
        scope: DocKind::from_stream(scope)
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("unknown share scope {scope}")))?,
        created_at: ms_to_utc(attr_i64(item, "created")?.unwrap_or(0)),
    })
}

impl DynamoStore {
    fn tx_put(&self, item: Item, cond: bool) -> StoreResult<TransactWriteItem> {
        let mut b = Put::builder().table_name(&self.table).set_item(Some(item));
        if cond {
            b = b.condition_expression("attribute_not_exists(pk)");
        }
        b.build()
            .map(|p| TransactWriteItem::builder().put(p).build())
            .map_err(|e| StoreError::Other(e.into()))
    }

    fn tx_delete(&self, pk: String, sk: &str) -> StoreResult<TransactWriteItem> {
        Delete::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .build()
            .map(|d| TransactWriteItem::builder().delete(d).build())
            .map_err(|e| StoreError::Other(e.into()))
    }

    pub(super) async fn put_share_tx(&self, sh: &ShareRecord) -> StoreResult<ShareRecord> {
        let claim_key = claim_pk(sh.owner_id, sh.grantee_id, sh.scope);
        let items = vec![
            self.tx_put(share_item(sh, claim_key.clone(), "SHAREKEY"), true)?,
            self.tx_put(share_item(sh, share_pk(sh.id), "SHARE"), false)?,
            self.tx_put(
                share_item(sh, list_pk(sh.owner_id), &format!("OUT#{}", sh.id)),
                false,
            )?,
            self.tx_put(
                share_item(sh, list_pk(sh.grantee_id), &format!("IN#{}", sh.id)),
                false,
            )?,
        ];
        match self.transact(items).await? {
            accounts::TxOutcome::Done => Ok(sh.clone()),
            accounts::TxOutcome::Cancelled(r)
                if r.first().is_some_and(|c| c == "ConditionalCheckFailed") =>
            {
                match self.get(claim_key, "SHAREKEY").await? {
                    Some(item) => share_from_item(&item),
                    // Deleted between our attempt and this read: the caller may retry.
                    None => Err(StoreError::Unavailable("share changed concurrently".into())),
                }
            }
            accounts::TxOutcome::Cancelled(r) => Err(StoreError::Other(anyhow::anyhow!(
                "storing the share was cancelled: {r:?}"
            ))),
        }
    }

    pub(super) async fn get_share_item(&self, id: Uuid) -> StoreResult<Option<ShareRecord>> {
        match self.get(share_pk(id), "SHARE").await? {
            Some(item) => share_from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    pub(super) async fn delete_share_tx(&self, sh: &ShareRecord) -> StoreResult<bool> {
        if self.get(share_pk(sh.id), "SHARE").await?.is_none() {
            return Ok(false);
        }
        let items = vec![
            self.tx_delete(claim_pk(sh.owner_id, sh.grantee_id, sh.scope), "SHAREKEY")?,
            self.tx_delete(share_pk(sh.id), "SHARE")?,
            self.tx_delete(list_pk(sh.owner_id), &format!("OUT#{}", sh.id))?,
            self.tx_delete(list_pk(sh.grantee_id), &format!("IN#{}", sh.id))?,
        ];
        match self.transact(items).await? {
            accounts::TxOutcome::Done => Ok(true),
            accounts::TxOutcome::Cancelled(r) => Err(StoreError::Other(anyhow::anyhow!(
                "deleting the share was cancelled: {r:?}"
            ))),
        }
    }

    pub(super) async fn share_items_of(&self, user: Uuid) -> StoreResult<Vec<ShareRecord>> {
        let mut out = Vec::new();
        let query = self
            .query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(list_pk(user)));
        self.query_items(query, |item| {
            out.push(share_from_item(item)?);
            Ok(true)
        })
        .await?;
        out.sort_by_key(|sh| (sh.created_at, sh.id));
        Ok(out)
    }

    pub(super) async fn share_claim_exists(
        &self,
        owner: Uuid,
        grantee: Uuid,
        scope: DocKind,
    ) -> StoreResult<bool> {
        Ok(self
            .get(claim_pk(owner, grantee, scope), "SHAREKEY")
            .await?
            .is_some())
    }

    pub(super) async fn epoch_item(&self) -> StoreResult<String> {
        let candidate = Uuid::new_v4().simple().to_string();
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Item::from([
                ("pk".to_owned(), s("META")),
                ("sk".to_owned(), s("EPOCH")),
                ("epoch".to_owned(), s(&candidate)),
            ])))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        if if_held(res)?.is_some() {
            return Ok(candidate);
        }
        let item = self
            .get("META".into(), "EPOCH")
            .await?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("epoch item vanished")))?;
        Ok(attr_s(&item, "epoch")?.to_owned())
    }

    pub(super) async fn append_event_item(
        &self,
        user: Uuid,
        kind: DocKind,
        body: String,
        keep: u64,
    ) -> StoreResult<u64> {
        let pk = stream_pk(user, kind);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(HEAD_SK))
            .update_expression("ADD seq :one")
            .condition_expression("attribute_not_exists(#e)")
            .expression_attribute_names("#e", super::writes::ERASED_ATTR)
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        let out = if_held(out)?.ok_or(StoreError::AccountErased)?;
        let offset = out
            .attributes
            .as_ref()
            .map(|a| attr_i64(a, "seq"))
            .transpose()?
            .flatten()
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("no offset returned")))?;
        let now = chrono::Utc::now();
        // With the head's condition in one transaction: an erasure that marked the head after
        // the offset was taken lists this partition after the mark, so the event is either
        // written before the mark (and erased) or not at all.
        let event = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Item::from([
                ("pk".to_owned(), s(&pk)),
                ("sk".to_owned(), s(event_sk(offset))),
                ("created".to_owned(), n(now.timestamp_millis())),
                ("ttl".to_owned(), n(now.timestamp() + EVENT_TTL_SECS)),
                ("body".to_owned(), s(body)),
            ])))
            .build()
            .map_err(|e| StoreError::Other(e.into()))?;
        let alive = super::writes::not_erased(&self.table, pk.clone(), HEAD_SK)?;
        match self
            .transact(vec![TransactWriteItem::builder().put(event).build(), alive])
            .await?
        {
            accounts::TxOutcome::Done => {}
            accounts::TxOutcome::Cancelled(r)
                if r.get(1).is_some_and(|c| c == "ConditionalCheckFailed") =>
            {
                return Err(StoreError::AccountErased);
            }
            accounts::TxOutcome::Cancelled(r) => {
                return Err(StoreError::Other(anyhow::anyhow!(
                    "appending a stream event was cancelled: {r:?}"
                )));
            }
        }
        if offset > keep {
            // History beyond the limit is never replayed; deleting it is housekeeping only.
            let _ = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(event_sk(offset - keep)))
                .send()
                .await;
        }
        Ok(offset)
    }

    pub(super) async fn event_head_item(&self, user: Uuid, kind: DocKind) -> StoreResult<u64> {
        Ok(self
            .get(stream_pk(user, kind), HEAD_SK)
            .await?
            .map(|item| attr_i64(&item, "seq"))
            .transpose()?
            .flatten()
            .map_or(0, |v| v.max(0) as u64))
    }

    pub(super) async fn event_items(
        &self,
        user: Uuid,
        kind: DocKind,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StreamEvent>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let query = self
            .query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(stream_pk(user, kind)))
            .expression_attribute_values(":lo", s(event_sk(after.saturating_add(1))))
            .expression_attribute_values(":hi", s(event_sk(u64::MAX / 2)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        self.query_items(query, |item| {
            let sk = attr_s(item, "sk")?;
            let offset = sk
                .strip_prefix("E#")
                .and_then(|d| d.parse::<u64>().ok())
                .ok_or_else(|| StoreError::Other(anyhow::anyhow!("bad event key {sk}")))?;
            out.push(StreamEvent {
                offset,
                body: attr_s(item, "body")?.to_owned(),
            });
            Ok(out.len() < limit)
        })
        .await?;
        Ok(out)
    }
}
