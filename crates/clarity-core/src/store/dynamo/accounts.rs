//! Accounts and refresh tokens as transactions.
//!
//! Rules: an account and its email claim are created together or not at all; a refresh token
//! is spent by one conditional transaction, so two nodes presenting the same token cannot
//! both rotate it (the loser sees a reuse and revokes the family, as the SQLite store does).

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::codec::{self, n, s};
use super::{
    DynamoStore, Item, REFRESH_TTL_GRACE_SECS, attr_i64, attr_uuid, map_err, refresh_item,
    refresh_listing_item, user_item,
};
use crate::store::{RefreshTokenRecord, RotateOutcome, StoreError, StoreResult, UserRecord};

/// Transactions that lost a race on an item (`TransactionConflict`) are retried this often.
const CONFLICT_RETRIES: usize = 4;

/// Per item of a cancelled transaction: the reason code DynamoDB gave.
pub(super) enum TxOutcome {
    Done,
    Cancelled(Vec<String>),
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Other(e.into())
}

impl DynamoStore {
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<TxOutcome> {
        for attempt in 0.. {
            // A fresh token per attempt: the SDK's own retry of this request (an answer lost
            // to a timeout) is then not applied twice.
            let res = self
                .client
                .transact_write_items()
                .client_request_token(uuid::Uuid::new_v4().to_string())
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match res {
                Ok(_) => return Ok(TxOutcome::Done),
                Err(e) => e,
            };
            let reasons = match &err {
                SdkError::ServiceError(se) => match se.err() {
                    TransactWriteItemsError::TransactionCanceledException(c) => Some(
                        c.cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("None").to_owned())
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                },
                _ => None,
            };
            let Some(reasons) = reasons else {
                return Err(map_err(err));
            };
            let conflict = reasons.iter().any(|r| r == "TransactionConflict");
            let decided = reasons.iter().any(|r| r == "ConditionalCheckFailed");
            if decided || !conflict || attempt >= CONFLICT_RETRIES {
                if conflict && !decided {
                    return Err(StoreError::Overloaded);
                }
                return Ok(TxOutcome::Cancelled(reasons));
            }
            let jitter = rand::random_range(0..20u64);
            tokio::time::sleep(Duration::from_millis(10 * (1 << attempt) + jitter)).await;
        }
        unreachable!("the retry loop returns")
    }

    pub(super) async fn create_user_tx(&self, user: &UserRecord) -> StoreResult<()> {
        let put = |item: Item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(build_err)
        };
        // First, so that a failure leaves nothing to undo.
        self.clear_erased_marks(user.id).await?;
        let items = vec![
            put(user_item(user, codec::email_pk(&user.email), "EMAIL"))?,
            put(user_item(user, codec::user_pk(user.id), "PROFILE"))?,
        ];
        match self.transact(items).await? {
            TxOutcome::Done => Ok(()),
            TxOutcome::Cancelled(r) if r.first().is_some_and(|c| c == "ConditionalCheckFailed") => {
                Err(StoreError::EmailTaken)
            }
            TxOutcome::Cancelled(r) => Err(StoreError::Other(anyhow::anyhow!(
                "account creation cancelled: {r:?}"
            ))),
        }
    }

    /// An erased id comes back only as a Cognito user's `sub` provisioned again: a new
    /// account, which takes writes, so the erasure's marks (`erase`) go. Each is deleted only
    /// while it is a bare mark (no `seq`); none there is the usual case.
    async fn clear_erased_marks(&self, user: uuid::Uuid) -> StoreResult<()> {
        for (pk, sk) in super::erase::erased_heads(user) {
            let res = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .condition_expression("attribute_exists(#e) AND attribute_not_exists(seq)")
                .expression_attribute_names("#e", super::writes::ERASED_ATTR)
                .send()
                .await;
            // Not a bare mark (or none at all, the usual case): nothing to do.
            super::if_held(res)?;
        }
        Ok(())
    }

    async fn family_revoked(&self, family: uuid::Uuid) -> StoreResult<bool> {
        Ok(self.get(codec::family_pk(family), "RTF").await?.is_some())
    }

    async fn revoke_family(&self, family: uuid::Uuid, expires_ms: i64) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(codec::family_pk(family)))
            .item("sk", s("RTF"))
            .item("revoked", n(Utc::now().timestamp_millis()))
            .item(
                super::schema::TTL_ATTR,
                n(expires_ms / 1000 + REFRESH_TTL_GRACE_SECS),
            )
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// Logout: the family of `token_hash`, if the token is `user`'s, gets a revocation
    /// marker that outlives every token of the family (`keep_until`); rotation checks it in
    /// its transaction, so no token of the family rotates afterwards.
    pub(super) async fn revoke_family_of(
        &self,
        token_hash: [u8; 32],
        user: uuid::Uuid,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<Option<uuid::Uuid>> {
        let Some(item) = self.get(codec::refresh_pk(&token_hash), "RT").await? else {
            return Ok(None);
        };
        if attr_uuid(&item, "uid")? != user {
            return Ok(None);
        }
        let family = attr_uuid(&item, "fam")?;
        self.revoke_family(family, keep_until.timestamp_millis())
            .await?;
        Ok(Some(family))
    }

    pub(super) async fn rotate(
        &self,
        old_hash: [u8; 32],
        mut new: RefreshTokenRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        let old_pk = codec::refresh_pk(&old_hash);
        let Some(old) = self.get(old_pk.clone(), "RT").await? else {
            return Ok(RotateOutcome::Invalid);
        };
        let user_id = attr_uuid(&old, "uid")?;
        let family_id = attr_uuid(&old, "fam")?;
        let expires_ms = attr_i64(&old, "exp")?.unwrap_or(0);
        if self.family_revoked(family_id).await? {
            return Ok(RotateOutcome::Invalid);
        }
        if old.contains_key("used") {
            // The new token's expiry bounds the family's lifetime, so the marker can go then.
            self.revoke_family(family_id, new.expires_at.timestamp_millis())
                .await?;
            return Ok(RotateOutcome::Reused { user_id, family_id });
        }
        if expires_ms <= now.timestamp_millis() {
            return Ok(RotateOutcome::Invalid);
        }

        new.user_id = user_id;
        new.family_id = family_id;
        let spend = Update::builder()
            .table_name(&self.table)
            .key("pk", s(old_pk))
            .key("sk", s("RT"))
            .update_expression("SET used = :now")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(used)")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .build()
            .map_err(build_err)?;
        let not_revoked = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(codec::family_pk(family_id)))
            .key("sk", s("RTF"))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;
        let put_new = Put::builder()
            .table_name(&self.table)
            .set_item(Some(refresh_item(&new)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;
        // The account must still exist: an erased user's tokens (those issued before token
        // listings existed are not deleted with it) never rotate again.
        let account_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(codec::user_pk(user_id)))
            .key("sk", s("PROFILE"))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_err)?;
        let list_new = Put::builder()
            .table_name(&self.table)
            .set_item(Some(refresh_listing_item(&new)))
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder().update(spend).build(),
            TransactWriteItem::builder()
                .condition_check(not_revoked)
                .build(),
            TransactWriteItem::builder().put(put_new).build(),
            TransactWriteItem::builder()
                .condition_check(account_exists)
                .build(),
            TransactWriteItem::builder().put(list_new).build(),
        ];
        match self.transact(items).await? {
            TxOutcome::Done => Ok(RotateOutcome::Rotated { user_id, family_id }),
            TxOutcome::Cancelled(r) if r.first().is_some_and(|c| c == "ConditionalCheckFailed") => {
                // Spent by a concurrent request between our read and our write: a replay.
                self.revoke_family(family_id, new.expires_at.timestamp_millis())
                    .await?;
                Ok(RotateOutcome::Reused { user_id, family_id })
            }
            TxOutcome::Cancelled(_) => Ok(RotateOutcome::Invalid),
        }
    }
}
