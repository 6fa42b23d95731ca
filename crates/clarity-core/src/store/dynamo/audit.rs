//! Audit log in DynamoDB: items `AUDIT#<owner>` / `E#<UUIDv7>` in the single table.
//!
//! Rules: an entry is put once (`attribute_not_exists`: append-only, never overwritten); the
//! hyphenated UUIDv7 sorts as its time does, so a descending query lists newest first; the
//! `ttl` attribute (expiry, epoch seconds) lets DynamoDB delete entries past retention, and
//! listings skip expired entries it has not deleted yet (that can take days).

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use uuid::Uuid;

use super::codec::{n, s};
use super::{DynamoStore, Item, attr_i64, attr_s, attr_uuid, map_err, ms_to_utc, schema};
use crate::store::{AuditPage, AuditRecord, StoreResult};

pub(super) fn audit_pk(owner: Uuid) -> String {
    format!("AUDIT#{owner}")
}

fn entry_sk(id: Uuid) -> String {
    format!("E#{}", id.hyphenated())
}

fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn from_item(item: &Item) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: attr_uuid(item, "id")?,
        owner_id: attr_uuid(item, "owner")?,
        actor_id: match item.get("actor") {
            Some(_) => Some(attr_uuid(item, "actor")?),
            None => None,
        },
        action: attr_s(item, "action")?.to_owned(),
        target: opt_s(item, "target"),
        at: ms_to_utc(attr_i64(item, "at")?.unwrap_or(0)),
        ip: opt_s(item, "ip"),
        user_agent: opt_s(item, "ua"),
        expires_at: ms_to_utc(attr_i64(item, "exp")?.unwrap_or(0)),
    })
}

impl DynamoStore {
    pub(super) async fn put_audit_item(&self, e: &AuditRecord) -> StoreResult<()> {
        let mut item = Item::from([
            ("pk".to_owned(), s(audit_pk(e.owner_id))),
            ("sk".to_owned(), s(entry_sk(e.id))),
            ("id".to_owned(), s(e.id.to_string())),
            ("owner".to_owned(), s(e.owner_id.to_string())),
            ("action".to_owned(), s(&e.action)),
            ("at".to_owned(), n(e.at.timestamp_millis())),
            ("exp".to_owned(), n(e.expires_at.timestamp_millis())),
            (schema::TTL_ATTR.to_owned(), n(e.expires_at.timestamp())),
        ]);
        let optional = [
            ("actor", e.actor_id.map(|a| a.to_string())),
            ("target", e.target.clone()),
            ("ip", e.ip.clone()),
            ("ua", e.user_agent.clone()),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                item.insert(name.to_owned(), s(v));
            }
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    pub(super) async fn audit_items(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        let limit = limit.max(1);
        // '~' sorts after every character of a UUID: below it is every entry.
        let hi = before.map_or_else(|| "E#~".to_owned(), entry_sk);
        let query = self
            .query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(audit_pk(owner)))
            .expression_attribute_values(":lo", s("E#"))
            .expression_attribute_values(":hi", s(&hi))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
        let now = Utc::now().timestamp_millis();
        let mut entries = Vec::new();
        self.query_items(query, |item| {
            let e = from_item(item)?;
            let older = before.is_none_or(|b| e.id < b);
            if older && e.expires_at.timestamp_millis() > now {
                entries.push(e);
            }
            Ok(entries.len() <= limit)
        })
        .await?;
        let next = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok(AuditPage { entries, next })
    }
}

#[cfg(test)]
mod tests {
    use super::entry_sk;
    use uuid::Uuid;

    #[test]
    fn sort_keys_order_like_uuid_v7_time() {
        let a = Uuid::now_v7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = Uuid::now_v7();
        assert!(entry_sk(a) < entry_sk(b));
        assert!(entry_sk(b).as_str() < "E#~");
    }
}
