//! Audit log in SQLite: one row per entry, keyed by (owner, time-ordered id).
//!
//! Rules: appends go through the writer thread like every write (durable on return); each
//! append also deletes a few expired entries (any owner's, oldest expiry first), so retention
//! needs no background task; listings skip expired entries that are still there.

use rusqlite::params;
use uuid::Uuid;

use super::{SqliteStore, ms_to_utc};
use crate::store::{AuditPage, AuditRecord, StoreError, StoreResult};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    owner_id BLOB NOT NULL,
    id BLOB NOT NULL,
    at INTEGER NOT NULL,
    actor_id BLOB,
    action TEXT NOT NULL,
    target TEXT,
    ip TEXT,
    user_agent TEXT,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (owner_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_by_expiry ON audit (expires_at);
";

/// Expired entries deleted by each append: more than one, so deletion keeps up with a
/// falling append rate.
const PRUNE_PER_APPEND: i64 = 16;

fn other(e: rusqlite::Error) -> StoreError {
    StoreError::Other(e.into())
}

fn uuid_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let b: Vec<u8> = r.get(i)?;
    Uuid::from_slice(&b).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, e.into())
    })
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    let actor: Option<Vec<u8>> = r.get(3)?;
    Ok(AuditRecord {
        owner_id: uuid_at(r, 0)?,
        id: uuid_at(r, 1)?,
        at: ms_to_utc(r.get(2)?),
        actor_id: match actor {
            Some(_) => Some(uuid_at(r, 3)?),
            None => None,
        },
        action: r.get(4)?,
        target: r.get(5)?,
        ip: r.get(6)?,
        user_agent: r.get(7)?,
        expires_at: ms_to_utc(r.get(8)?),
    })
}

impl SqliteStore {
    pub(super) async fn append_audit_row(&self, e: AuditRecord) -> StoreResult<()> {
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO audit
                   (owner_id, id, at, actor_id, action, target, ip, user_agent, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    &e.owner_id.as_bytes()[..],
                    &e.id.as_bytes()[..],
                    e.at.timestamp_millis(),
                    e.actor_id.as_ref().map(|a| a.as_bytes().to_vec()),
                    e.action,
                    e.target,
                    e.ip,
                    e.user_agent,
                    e.expires_at.timestamp_millis(),
                ])
            })
            .map_err(other)?;
            c.prepare_cached(
                "DELETE FROM audit WHERE (owner_id, id) IN (
                   SELECT owner_id, id FROM audit INDEXED BY audit_by_expiry
                   WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    chrono::Utc::now().timestamp_millis(),
                    PRUNE_PER_APPEND
                ])
            })
            .map_err(other)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn audit_rows(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        let limit = limit.max(1);
        self.read(move |c| {
            let before = before.map_or([0xff; 16], |b| *b.as_bytes());
            let mut entries: Vec<AuditRecord> = c
                .prepare_cached(
                    "SELECT owner_id, id, at, actor_id, action, target, ip, user_agent, expires_at
                     FROM audit WHERE owner_id = ?1 AND id < ?2 AND expires_at > ?3
                     ORDER BY id DESC LIMIT ?4",
                )?
                .query_map(
                    params![
                        &owner.as_bytes()[..],
                        &before[..],
                        chrono::Utc::now().timestamp_millis(),
                        i64::try_from(limit + 1).unwrap_or(i64::MAX)
                    ],
                    entry_from_row,
                )?
                .collect::<rusqlite::Result<_>>()?;
            let next = if entries.len() > limit {
                entries.truncate(limit);
                entries.last().map(|e| e.id)
            } else {
                None
            };
            Ok(AuditPage { entries, next })
        })
        .await
    }
}
