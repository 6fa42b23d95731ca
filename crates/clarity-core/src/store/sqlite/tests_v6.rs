//! Migration to schema version 6 (the write-rate layout): a version 5 data folder reads back
//! identical (samples in every listing and page, the change feed, tombstones) after the
//! automatic migration on open.

use std::path::Path;

use rusqlite::Connection;
use uuid::Uuid;

use super::{SAMPLE_COLUMNS, SqliteOptions, SqliteStore, sample_from_row, schema};
use crate::samples::{Extra, Kind, Sample, Timestamp};
use crate::store::{ChangePage, OpOutcome, SampleOp, SampleQuery, Store};

fn db(dir: &Path) -> Connection {
    Connection::open(dir.join("clarity.db")).unwrap()
}

fn at(second: i64) -> Timestamp {
    Timestamp {
        utc_ms: 1_793_491_200_000 + second * 1000,
        offset_secs: -18_000,
    }
}

/// Samples of several kinds, some at the same instant (the listing orders those by id), one
/// with extra fields, one with an end and a version.
fn history() -> Vec<Sample> {
    let mut out = Vec::new();
    for i in 0..40i64 {
        let kind = [Kind::HeartRate, Kind::StepCount, Kind::ActivityCount][i as usize % 3];
        out.push(Sample::new(
            format!("s-{:02}", 39 - i),
            kind,
            at(i / 2),
            None,
            i as f64,
            Some("watch".into()),
        ));
    }
    out.push(Sample {
        extra: Some(Box::new(Extra {
            provenance: None,
            diastolic: Some(79.0),
            activity: None,
        })),
        ..Sample::new("bp", Kind::BloodPressure, at(7), None, 121.0, None)
    });
    out.push(Sample {
        version: Some(2),
        ..Sample::new("walk", Kind::Workout, at(3), Some(at(900)), 55.0, None)
    });
    out
}

/// What the version 5 server listed: its query on `samples_by_time` / `samples_by_kind_time`.
fn v5_listing(c: &Connection, user: Uuid, kind: Option<Kind>) -> Vec<Sample> {
    let uid = &user.as_bytes()[..];
    match kind {
        None => c
            .prepare(&format!(
                "SELECT {SAMPLE_COLUMNS} FROM samples INDEXED BY samples_by_time
                 WHERE user_id = ?1 ORDER BY start_ms, id"
            ))
            .unwrap()
            .query_map([uid], sample_from_row)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap(),
        Some(k) => c
            .prepare(&format!(
                "SELECT {SAMPLE_COLUMNS} FROM samples INDEXED BY samples_by_kind_time
                 WHERE user_id = ?1 AND kind = ?2 ORDER BY start_ms, id"
            ))
            .unwrap()
            .query_map(rusqlite::params![uid, k.code()], sample_from_row)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap(),
    }
}

/// Every page of a listing, `limit` at a time, following the cursors.
async fn paged(store: &SqliteStore, user: Uuid, kind: Option<Kind>, limit: usize) -> Vec<Sample> {
    let query = SampleQuery {
        kind,
        from_ms: None,
        to_ms: None,
        after: None,
        limit,
    };
    crate::store::all_samples(store, user, query).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_5_folder_is_migrated_to_6_and_reads_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let mut ops: Vec<SampleOp> = history().into_iter().map(SampleOp::Put).collect();
    ops.push(SampleOp::Delete("s-05".into()));
    ops.push(SampleOp::Put(Sample {
        version: Some(3),
        value: 60.0,
        ..history().pop().unwrap()
    }));
    store.write_samples(a, ops).await.unwrap();
    store.insert_samples(b, history()).await.unwrap();
    store.close().await;

    // The version 5 layout: the same tables plus `samples_by_time`, as that server left it.
    {
        let c = db(dir.path());
        c.execute_batch(
            "CREATE INDEX IF NOT EXISTS samples_by_time ON samples (user_id, start_ms, id);
             PRAGMA user_version = 5;",
        )
        .unwrap();
    }
    let c = db(dir.path());
    let kinds = [
        None,
        Some(Kind::HeartRate),
        Some(Kind::StepCount),
        Some(Kind::Workout),
        Some(Kind::BodyMass),
    ];
    let mut before = Vec::new();
    for user in [a, b] {
        for kind in kinds {
            before.push(v5_listing(&c, user, kind));
        }
    }
    // The change feed's query is the same in both versions (`samples_by_seq` and
    // `tombstones_by_seq` stay): this is what the version 5 server answered.
    let feed_a: ChangePage = super::sync::changes(&c, a, 0, 1000).unwrap();
    drop(c);
    assert_eq!(before[0].len(), 41, "42 written, one deleted");

    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let c = db(dir.path());
    let version: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION);
    let index: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'samples_by_time')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!index, "the migration drops samples_by_time");
    let rows: i64 = c
        .query_row("SELECT COUNT(*) FROM samples", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 41 + 42);
    drop(c);
    let mut after = Vec::new();
    for user in [a, b] {
        for kind in kinds {
            let whole = paged(&store, user, kind, 1000).await;
            // Small pages cross same-instant samples of different kinds: the cursor must
            // carry the listing on exactly where it stopped.
            assert_eq!(paged(&store, user, kind, 3).await, whole);
            after.push(whole);
        }
    }
    assert_eq!(after, before);
    assert_eq!(store.changes(a, 0, 1000).await.unwrap(), feed_a);
    assert_eq!(feed_a.head, 44);
    assert_eq!(feed_a.changes.len(), 42, "41 samples and one tombstone");
    // The tombstone still refuses a stale re-send, and writes continue after the head.
    let stale = history().into_iter().find(|s| s.id == "s-05").unwrap();
    let done = store
        .write_samples(
            a,
            vec![
                SampleOp::Put(stale),
                SampleOp::Put(Sample::new("new", Kind::HeartRate, at(99), None, 1.0, None)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(done.outcomes, [OpOutcome::Duplicate, OpOutcome::Inserted]);
    assert_eq!(done.seqs, [45]);
    store.close().await;
}
