//! The SQLite schema and its migrations.
//!
//! Rules:
//! - [`SCHEMA`] is the shape of version 3 (every database this server ever created was 3
//!   before migrations existed); later versions come only from [`MIGRATIONS`], so that a new
//!   database and a migrated one are the same. It runs only below [`SCHEMA_VERSION`].
//! - Each version's steps run in one transaction with its `user_version` bump: a crash leaves
//!   the database at the old version or the new one, never between.
//! - Every step can run twice: an older server that reopened the file reset `user_version` to
//!   3, not the tables (and may have written samples in the old shape since).
//! - A database of a newer server is refused, not misread.

use rusqlite::Connection;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id BLOB PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    display_name TEXT,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    user_id BLOB NOT NULL,
    family_id BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);
CREATE TABLE IF NOT EXISTS samples (
    user_id BLOB NOT NULL,
    id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    start_off INTEGER NOT NULL,
    end_ms INTEGER,
    end_off INTEGER,
    value REAL NOT NULL,
    source TEXT,
    PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_by_kind_time ON samples (user_id, kind, start_ms, id);
CREATE TABLE IF NOT EXISTS documents (
    kind INTEGER NOT NULL,
    user_id BLOB NOT NULL,
    id BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    window_from INTEGER NOT NULL,
    window_to INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, user_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS documents_by_window ON documents (kind, user_id, window_to, id);
";

/// The schema version [`SCHEMA`] and [`MIGRATIONS`] give (`PRAGMA user_version`).
pub(super) const SCHEMA_VERSION: i64 = 9;

/// One step of a migration.
enum Step {
    /// `(table, column, declaration)`: added unless already there.
    Column(&'static str, &'static str, &'static str),
    /// Statements that can run again on a database that already has them.
    Sql(&'static str),
}

/// Version 5 (sync v2): tombstones, the per-user change sequence and its heads. Samples
/// without a `seq` (all of them on the first run; those an older server wrote since, on a
/// later one) join the sequence after the user's head, in time order; a tombstone of an id an
/// older server stored again is dropped (the sample is the later state).
const V5: &str = "
CREATE TABLE IF NOT EXISTS tombstones (
    user_id BLOB NOT NULL,
    id TEXT NOT NULL,
    version INTEGER,
    seq INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tombstones_by_seq ON tombstones (user_id, seq);
CREATE INDEX IF NOT EXISTS tombstones_by_age ON tombstones (deleted_at);
CREATE TABLE IF NOT EXISTS change_heads (
    user_id BLOB PRIMARY KEY,
    head INTEGER NOT NULL,
    floor INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
DELETE FROM tombstones WHERE EXISTS (
    SELECT 1 FROM samples s WHERE s.user_id = tombstones.user_id AND s.id = tombstones.id);
CREATE TEMP TABLE seq_fill (
    user_id BLOB NOT NULL,
    id TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
INSERT INTO seq_fill (user_id, id, n)
    SELECT user_id, id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY start_ms, id)
    FROM samples WHERE seq IS NULL;
INSERT OR IGNORE INTO change_heads (user_id, head) SELECT DISTINCT user_id, 0 FROM seq_fill;
UPDATE samples SET seq =
    (SELECT h.head FROM change_heads h WHERE h.user_id = samples.user_id)
    + (SELECT f.n FROM seq_fill f WHERE f.user_id = samples.user_id AND f.id = samples.id)
    WHERE seq IS NULL;
UPDATE change_heads SET head = head
    + (SELECT MAX(f.n) FROM seq_fill f WHERE f.user_id = change_heads.user_id)
    WHERE user_id IN (SELECT user_id FROM seq_fill);
DROP TABLE seq_fill;
CREATE INDEX IF NOT EXISTS samples_by_seq ON samples (user_id, seq);
";

/// Version 6 (the write rate): no `samples_by_time`. Every sample cost one B-tree insert per
/// index, and that one only served listings across kinds, which now merge the per-kind ranges
/// of `samples_by_kind_time` (`query_samples`). Versions 3 to 5 created it; a database an
/// older server reopened may have it again.
const V6: &str = "DROP INDEX IF EXISTS samples_by_time;";

/// Version 7 (derived results after a crash): the changed times of each write that replaced or
/// removed samples, until the analyses over them are recomputed (`store::revisions`).
const V7: &str = "
CREATE TABLE IF NOT EXISTS revisions (
    user_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    spans TEXT NOT NULL,
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
";

/// Version 8 (erasure against racing writes): the ids of erased accounts, which no later
/// write may store anything for (`sync::refuse_erased`). An id and a time, nothing personal.
const V8: &str = "
CREATE TABLE IF NOT EXISTS erased_users (
    user_id BLOB PRIMARY KEY,
    erased_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Version 9 (the write rate, issue 20): samples clustered by change. The table's key is
/// `(user_id, seq)`, so a write appends its rows at the end of the user's range and the
/// change feed is a range of the table itself; `samples_by_id (user_id, id)` keeps
/// idempotency and versions; `sample_ranges` replaces the per-sample time index with one row
/// per write, kind and hour saying which seqs hold that hour's samples (`samples::query`).
/// Each sample cost three B-tree inserts (the table, `samples_by_kind_time`,
/// `samples_by_seq`); now two, one of them an append. The copy keeps every column; ranges
/// for existing rows cover at most 64 consecutive seqs each.
const V9: &str = "
DROP TABLE IF EXISTS samples_v9;
CREATE TABLE samples_v9 (
    user_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    start_off INTEGER NOT NULL,
    end_ms INTEGER,
    end_off INTEGER,
    value REAL NOT NULL,
    source TEXT,
    extra TEXT,
    version INTEGER,
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
INSERT INTO samples_v9 (user_id, seq, id, kind, start_ms, start_off, end_ms, end_off, value,
        source, extra, version)
    SELECT user_id, seq, id, kind, start_ms, start_off, end_ms, end_off, value, source, extra,
        version
    FROM samples;
DROP TABLE samples;
ALTER TABLE samples_v9 RENAME TO samples;
CREATE UNIQUE INDEX samples_by_id ON samples (user_id, id);
DROP TABLE IF EXISTS sample_ranges;
CREATE TABLE sample_ranges (
    user_id BLOB NOT NULL,
    hour INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    seq_lo INTEGER NOT NULL,
    seq_hi INTEGER NOT NULL,
    PRIMARY KEY (user_id, hour, kind, seq_lo)
) WITHOUT ROWID;
INSERT INTO sample_ranges (user_id, hour, kind, seq_lo, seq_hi)
    SELECT user_id, (start_ms - ((start_ms % 3600000) + 3600000) % 3600000) / 3600000 AS h,
        kind, MIN(seq), MAX(seq)
    FROM samples GROUP BY user_id, h, kind, seq / 64;
";

/// `(version, steps)`, in order.
const MIGRATIONS: [(i64, &[Step]); 6] = [
    // Fields beyond `value` (blood_pressure's diastolic, workout's activity, provenance), as
    // the JSON of `samples::Extra`; NULL for every sample that has none.
    (4, &[Step::Column("samples", "extra", "TEXT")]),
    (
        5,
        &[
            Step::Column("samples", "version", "INTEGER"),
            Step::Column("samples", "seq", "INTEGER"),
            Step::Column("documents", "superseded_by", "BLOB"),
            Step::Sql(V5),
        ],
    ),
    (6, &[Step::Sql(V6)]),
    (7, &[Step::Sql(V7)]),
    (8, &[Step::Sql(V8)]),
    (9, &[Step::Sql(V9)]),
];

/// Brings the database to [`SCHEMA_VERSION`] (creating it first when new); refuses one
/// written by a newer server.
pub(super) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let mut version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    anyhow::ensure!(
        version <= SCHEMA_VERSION,
        "the database schema is version {version}, newer than this server's \
         ({SCHEMA_VERSION}): run a newer clarity"
    );
    if version < SCHEMA_VERSION {
        // Never on a current database: version 3's index on `samples` would come back.
        conn.execute_batch(SCHEMA)?;
    }
    let from = version;
    version = version.max(3);
    for (to, steps) in MIGRATIONS {
        if to <= version {
            continue;
        }
        if from > 0 {
            // Not for a new database (0): an operator upgrading wants to know why start-up
            // takes long (version 9 copies every sample: about a minute per ten million).
            tracing::info!(from = version, to, "migrating the SQLite database");
        }
        let started = std::time::Instant::now();
        let tx = conn.transaction()?;
        for step in steps {
            match step {
                Step::Column(table, column, decl) => {
                    let exists = tx
                        .prepare(&format!(
                            "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
                        ))?
                        .exists([column])?;
                    if !exists {
                        tx.execute_batch(&format!(
                            "ALTER TABLE {table} ADD COLUMN {column} {decl};"
                        ))?;
                    }
                }
                Step::Sql(sql) => tx.execute_batch(sql)?,
            }
        }
        tx.pragma_update(None, "user_version", to)?;
        tx.commit()?;
        if from > 0 {
            tracing::info!(
                version = to,
                secs = started.elapsed().as_secs_f64(),
                "SQLite database migrated"
            );
        }
        version = to;
    }
    conn.pragma_update(None, "user_version", version)?;
    Ok(())
}
