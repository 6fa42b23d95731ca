//! Erasing a user on DynamoDB: resumable, not atomic (an account can own more items than a
//! transaction holds).
//!
//! Rules:
//! - A pending-erasure marker (`ERASURES` / `<user>`, with the account's email) is written
//!   first and deleted last, so a crash in between leaves it for
//!   [`crate::store::Store::pending_erasures`], and a second `erase_user` finishes the work
//!   (every step is idempotent: deleting a missing item succeeds).
//! - Everything the user owns goes: the account and its email claim (only while the claim
//!   still names this user), refresh tokens (found through their listing items under the
//!   account), sample chunks, the id index, the change log and head, documents and their id
//!   claims, stream events and heads, shares both ways with their claims and the other
//!   side's listing copies, and the audit log.
//! - The marker goes only after every item is gone; the account's profile is deleted after
//!   the rest, so that a half-erased account is still found by the resumed run's counts.
//! - Before anything is listed, the user's change head and both stream heads are marked
//!   erased (their seq removed) and kept: every sample write, document and stream event is
//!   conditioned on a mark's absence, so a write racing the erasure either committed before
//!   the mark (and is listed and deleted here) or fails with `AccountErased`. The kept items
//!   hold the user's id and a time, nothing else.

use std::time::Duration;

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use chrono::Utc;
use uuid::Uuid;

use super::codec::{self, n, s};
use super::{DynamoStore, Item, analyses, attr_s, audit, map_err, streams, writes};
use crate::store::{DocKind, Erased, StoreError, StoreResult};

const MARKER_PK: &str = "ERASURES";
/// Keys per BatchWriteItem (DynamoDB's limit).
const BATCH_WRITE: usize = 25;

/// The head items an erasure marks and keeps: the change head and both stream heads.
pub(super) fn erased_heads(user: Uuid) -> [(String, &'static str); 3] {
    [
        (writes::head_pk(user), writes::HEAD_SK),
        (
            streams::stream_pk(user, DocKind::Analysis),
            streams::HEAD_SK,
        ),
        (streams::stream_pk(user, DocKind::Insight), streams::HEAD_SK),
    ]
}

impl DynamoStore {
    /// Erases `user`; with `stop_after`, deletes at most that many items and returns an
    /// error, leaving the marker (tests simulate a crash halfway with it).
    pub(super) async fn erase(&self, user: Uuid, stop_after: Option<usize>) -> StoreResult<Erased> {
        let profile = self.get(codec::user_pk(user), "PROFILE").await?;
        let email = match &profile {
            Some(p) => Some(attr_s(p, "email")?.to_owned()),
            None => None,
        };
        let mut mark = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(MARKER_PK))
            .key("sk", s(user.to_string()))
            .update_expression("SET since = if_not_exists(since, :now)")
            .expression_attribute_values(":now", n(Utc::now().timestamp_millis()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        if let Some(e) = &email {
            mark = mark
                .update_expression(
                    "SET since = if_not_exists(since, :now), email = if_not_exists(email, :e)",
                )
                .expression_attribute_values(":e", s(e));
        }
        let marker = mark
            .send()
            .await
            .map_err(map_err)?
            .attributes
            .unwrap_or_default();
        let email = match marker.get("email") {
            Some(_) => Some(attr_s(&marker, "email")?.to_owned()),
            None => email,
        };

        let heads = erased_heads(user);
        for (pk, sk) in &heads {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(*sk))
                .update_expression("SET #e = if_not_exists(#e, :now) REMOVE seq")
                .expression_attribute_names("#e", writes::ERASED_ATTR)
                .expression_attribute_values(":now", n(Utc::now().timestamp_millis()))
                .send()
                .await
                .map_err(map_err)?;
        }

        let mut erased = Erased {
            account: profile.is_some(),
            ..Erased::default()
        };
        let mut keys: Vec<(String, String)> = Vec::new();
        // Shares, both ways: the share, its claim, and both listing copies.
        for sh in self.share_items_of(user).await? {
            erased.shares += 1;
            keys.push((streams::share_pk(sh.id), "SHARE".into()));
            keys.push((
                streams::claim_pk(sh.owner_id, sh.grantee_id, sh.scope),
                "SHAREKEY".into(),
            ));
            keys.push((streams::list_pk(sh.owner_id), format!("OUT#{}", sh.id)));
            keys.push((streams::list_pk(sh.grantee_id), format!("IN#{}", sh.id)));
        }
        let whole = [
            codec::samples_pk(user),
            writes::index_pk(user),
            writes::head_pk(user),
            analyses::pk(DocKind::Analysis, user),
            analyses::pk(DocKind::Insight, user),
            streams::stream_pk(user, DocKind::Analysis),
            streams::stream_pk(user, DocKind::Insight),
            audit::audit_pk(user),
            streams::list_pk(user),
        ];
        for pk in whole {
            let index = pk == writes::index_pk(user);
            let docs = pk.starts_with("ANALYSES#") || pk.starts_with("INSIGHTS#");
            let events = pk.starts_with("STREAM#");
            for sk in self.sort_keys(&pk).await? {
                if heads.iter().any(|(p, k)| *p == pk && *k == sk) {
                    // The erased marks stay (see the rules).
                    continue;
                }
                if index {
                    erased.samples += 1;
                } else if (docs && !sk.starts_with("ID#")) || (events && sk.starts_with("E#")) {
                    erased.documents += 1;
                }
                keys.push((pk.clone(), sk));
            }
        }
        // Refresh tokens, through their listing items under the account; the profile last.
        let account = codec::user_pk(user);
        for sk in self.sort_keys(&account).await? {
            if sk.starts_with("RT#") {
                keys.push((sk.clone(), "RT".into()));
                keys.push((account.clone(), sk));
            }
        }
        // A share's listing copy under this user is also in its partition: delete it once
        // (BatchWriteItem refuses a key twice).
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(k.clone()));
        self.delete_keys(&keys, stop_after).await?;
        if stop_after.is_some_and(|n| n <= keys.len()) {
            return Err(StoreError::Unavailable("erasure interrupted (test)".into()));
        }
        if let Some(email) = email {
            // Only this user's claim: the address may have been registered again since.
            let res = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(codec::email_pk(&email)))
                .key("sk", s("EMAIL"))
                .condition_expression("attribute_not_exists(pk) OR uid = :u")
                .expression_attribute_values(":u", s(user.to_string()))
                .send()
                .await;
            super::if_held(res)?;
        }
        self.delete_keys(&[(account, "PROFILE".into())], None)
            .await?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(MARKER_PK))
            .key("sk", s(user.to_string()))
            .send()
            .await
            .map_err(map_err)?;
        Ok(erased)
    }

    pub(super) async fn pending_erasure_items(&self) -> StoreResult<Vec<Uuid>> {
        let mut out = Vec::new();
        for sk in self.sort_keys(MARKER_PK).await? {
            out.push(Uuid::parse_str(&sk).map_err(|e| StoreError::Other(e.into()))?);
        }
        Ok(out)
    }

    /// Every sort key of partition `pk`.
    async fn sort_keys(&self, pk: &str) -> StoreResult<Vec<String>> {
        let mut out = Vec::new();
        let query = self
            .query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .projection_expression("sk");
        self.query_items(query, |item: &Item| {
            out.push(attr_s(item, "sk")?.to_owned());
            Ok(true)
        })
        .await?;
        Ok(out)
    }

    /// Deletes `keys` in BatchWriteItem calls (unprocessed ones retried); with `stop_after`,
    /// only the first that many.
    pub(super) async fn delete_keys(
        &self,
        keys: &[(String, String)],
        stop_after: Option<usize>,
    ) -> StoreResult<()> {
        let keys = &keys[..stop_after.unwrap_or(keys.len()).min(keys.len())];
        for batch in keys.chunks(BATCH_WRITE) {
            let mut requests = batch
                .iter()
                .map(|(pk, sk)| {
                    DeleteRequest::builder()
                        .key("pk", s(pk))
                        .key("sk", s(sk))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(|e| StoreError::Other(e.into()))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            for attempt in 0u64.. {
                if requests.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(20 * attempt.min(10))).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(map_err)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }
}
