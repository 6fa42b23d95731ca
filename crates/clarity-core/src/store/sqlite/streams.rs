//! Shares and document streams in SQLite.
//!
//! Rules: offsets are allocated inside the writer's transaction as `MAX + 1`, so with the
//! single writer they are dense and never reused; events `keep` offsets behind the head are
//! deleted by the same append, which bounds a stream's history.

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{SqliteStore, ms_to_utc, writer};
use crate::store::{DocKind, ShareRecord, StoreError, StoreResult, StreamEvent};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS shares (
    id BLOB PRIMARY KEY,
    owner_id BLOB NOT NULL,
    grantee_id BLOB NOT NULL,
    scope INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (owner_id, grantee_id, scope)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shares_by_grantee ON shares (grantee_id);
CREATE TABLE IF NOT EXISTS events (
    user_id BLOB NOT NULL,
    stream INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (user_id, stream, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

const SHARE_COLUMNS: &str = "SELECT id, owner_id, grantee_id, scope, created_at FROM shares";

fn uuid_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let b: Vec<u8> = r.get(i)?;
    Uuid::from_slice(&b).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, e.into())
    })
}

fn share_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ShareRecord> {
    let code: i64 = r.get(3)?;
    Ok(ShareRecord {
        id: uuid_at(r, 0)?,
        owner_id: uuid_at(r, 1)?,
        grantee_id: uuid_at(r, 2)?,
        scope: DocKind::from_code(code)
            .ok_or_else(|| rusqlite::Error::IntegralValueOutOfRange(3, code))?,
        created_at: ms_to_utc(r.get(4)?),
    })
}

fn other(e: rusqlite::Error) -> StoreError {
    StoreError::Other(e.into())
}

/// Creates the store's epoch once; later opens keep it.
pub(super) fn init_epoch(conn: &Connection) -> rusqlite::Result<String> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('epoch', ?1) ON CONFLICT (key) DO NOTHING",
        [Uuid::new_v4().simple().to_string()],
    )?;
    conn.query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
        r.get(0)
    })
}

impl SqliteStore {
    /// Runs `f` on the writer thread in its own savepoint; replies after the commit.
    pub(super) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.write(|reply| {
            writer::Op::Call(Box::new(move |tx| {
                let res = writer::in_savepoint(tx, f);
                writer::Done::Boxed(Box::new(move |commit| writer::send(reply, res, commit)))
            }))
        })
        .await
    }

    pub(super) async fn put_share_row(&self, share: ShareRecord) -> StoreResult<ShareRecord> {
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO shares (id, owner_id, grantee_id, scope, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (owner_id, grantee_id, scope) DO NOTHING",
            )
            .and_then(|mut st| {
                st.execute(params![
                    &share.id.as_bytes()[..],
                    &share.owner_id.as_bytes()[..],
                    &share.grantee_id.as_bytes()[..],
                    share.scope.code(),
                    share.created_at.timestamp_millis(),
                ])
            })
            .map_err(other)?;
            c.prepare_cached(&format!(
                "{SHARE_COLUMNS} WHERE owner_id = ?1 AND grantee_id = ?2 AND scope = ?3"
            ))
            .and_then(|mut st| {
                st.query_row(
                    params![
                        &share.owner_id.as_bytes()[..],
                        &share.grantee_id.as_bytes()[..],
                        share.scope.code()
                    ],
                    share_from_row,
                )
            })
            .map_err(other)
        })
        .await
    }

    pub(super) async fn get_share_row(&self, id: Uuid) -> StoreResult<Option<ShareRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!("{SHARE_COLUMNS} WHERE id = ?1"))?
                .query_row([&id.as_bytes()[..]], share_from_row)
                .optional()
        })
        .await
    }

    pub(super) async fn delete_share_row(&self, id: Uuid) -> StoreResult<bool> {
        self.call(move |c| {
            c.prepare_cached("DELETE FROM shares WHERE id = ?1")
                .and_then(|mut st| st.execute([&id.as_bytes()[..]]))
                .map(|n| n == 1)
                .map_err(other)
        })
        .await
    }

    pub(super) async fn share_rows_of(&self, user: Uuid) -> StoreResult<Vec<ShareRecord>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "{SHARE_COLUMNS} WHERE owner_id = ?1
                 UNION ALL {SHARE_COLUMNS} WHERE grantee_id = ?1
                 ORDER BY created_at, id"
            ))?;
            st.query_map([&user.as_bytes()[..]], share_from_row)?
                .collect()
        })
        .await
    }

    pub(super) async fn share_exists(
        &self,
        owner: Uuid,
        grantee: Uuid,
        scope: DocKind,
    ) -> StoreResult<bool> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT 1 FROM shares WHERE owner_id = ?1 AND grantee_id = ?2 AND scope = ?3",
            )?
            .query_row(
                params![&owner.as_bytes()[..], &grantee.as_bytes()[..], scope.code()],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
        })
        .await
    }

    pub(super) async fn append_event_row(
        &self,
        user: Uuid,
        kind: DocKind,
        body: String,
        keep: u64,
    ) -> StoreResult<u64> {
        self.call(move |c| {
            let key = &user.as_bytes()[..];
            super::sync::refuse_erased(c, key)?;
            let head: i64 = c
                .prepare_cached(
                    "SELECT COALESCE(MAX(seq), 0) FROM events WHERE user_id = ?1 AND stream = ?2",
                )
                .and_then(|mut st| st.query_row(params![key, kind.code()], |r| r.get(0)))
                .map_err(other)?;
            let offset = head + 1;
            c.prepare_cached(
                "INSERT INTO events (user_id, stream, seq, created_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    key,
                    kind.code(),
                    offset,
                    chrono::Utc::now().timestamp_millis(),
                    body
                ])
            })
            .map_err(other)?;
            let keep = i64::try_from(keep.max(1)).unwrap_or(i64::MAX);
            c.prepare_cached("DELETE FROM events WHERE user_id = ?1 AND stream = ?2 AND seq <= ?3")
                .and_then(|mut st| st.execute(params![key, kind.code(), offset - keep]))
                .map_err(other)?;
            Ok(offset as u64)
        })
        .await
    }

    pub(super) async fn event_head(&self, user: Uuid, kind: DocKind) -> StoreResult<u64> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE user_id = ?1 AND stream = ?2",
            )?
            .query_row(params![&user.as_bytes()[..], kind.code()], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
        })
        .await
    }

    pub(super) async fn event_rows(
        &self,
        user: Uuid,
        kind: DocKind,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StreamEvent>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT seq, body FROM events WHERE user_id = ?1 AND stream = ?2 AND seq > ?3
                 ORDER BY seq LIMIT ?4",
            )?;
            st.query_map(
                params![&user.as_bytes()[..], kind.code(), after, limit],
                |r| {
                    Ok(StreamEvent {
                        offset: r.get::<_, i64>(0)?.max(0) as u64,
                        body: r.get(1)?,
                    })
                },
            )?
            .collect()
        })
        .await
    }
}
