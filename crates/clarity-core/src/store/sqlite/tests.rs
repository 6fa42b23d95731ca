//! Migration and retention tests: they need the database file itself (an old schema written
//! by hand, tombstones aged by hand), which the conformance suite cannot reach.

use std::path::Path;

use chrono::Utc;
use rusqlite::Connection;
use uuid::Uuid;

use super::{SqliteOptions, SqliteStore, schema};
use crate::samples::{Extra, Kind, Sample, Timestamp};
use crate::store::{ChangeOp, OpOutcome, SampleOp, SampleQuery, Store, TOMBSTONE_DAYS};

fn all() -> SampleQuery {
    SampleQuery {
        kind: None,
        from_ms: None,
        to_ms: None,
        after: None,
        limit: 100,
    }
}

fn version(dir: &Path) -> i64 {
    Connection::open(dir.join("clarity.db"))
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// A database as the server before extra fields wrote it (version 3, no `extra` column)
/// opens with its samples intact, is migrated, and then stores extra fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_3_database_is_migrated_and_keeps_its_samples() {
    let dir = tempfile::tempdir().unwrap();
    let user = Uuid::new_v4();
    {
        let c = Connection::open(dir.path().join("clarity.db")).unwrap();
        c.execute_batch(schema::SCHEMA).unwrap();
        c.execute_batch("PRAGMA user_version = 3;").unwrap();
        c.execute(
            "INSERT INTO samples (user_id, id, kind, start_ms, start_off, end_ms, end_off,
               value, source) VALUES (?1, 'old', 2, 1793491200000, 3600, NULL, NULL, 61.0,
               'watch')",
            [&user.as_bytes()[..]],
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    assert_eq!(version(dir.path()), schema::SCHEMA_VERSION);
    let bp = Sample {
        extra: Some(Box::new(Extra {
            provenance: None,
            diastolic: Some(80.0),
            activity: None,
        })),
        ..Sample::new(
            "bp",
            Kind::BloodPressure,
            Timestamp {
                utc_ms: 1_793_491_260_000,
                offset_secs: 0,
            },
            None,
            120.0,
            None,
        )
    };
    store.insert_samples(user, vec![bp.clone()]).await.unwrap();
    let page = store.query_samples(user, all()).await.unwrap();
    let old = Sample::new(
        "old",
        Kind::HeartRate,
        Timestamp {
            utc_ms: 1_793_491_200_000,
            offset_secs: 3600,
        },
        None,
        61.0,
        Some("watch".into()),
    );
    assert_eq!(page.samples, vec![old, bp]);
    drop(store);

    // An older server that opened the file set the version back to 3: the column is
    // already there, and the next open must not fail on it.
    Connection::open(dir.path().join("clarity.db"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 3;")
        .unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    assert_eq!(
        store
            .query_samples(user, all())
            .await
            .unwrap()
            .samples
            .len(),
        2
    );
    drop(store);

    // A database of a newer server is refused, not misread.
    Connection::open(dir.path().join("clarity.db"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let err = SqliteStore::open(dir.path(), SqliteOptions::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("newer"), "{err}");
}

fn at(minute: i64) -> Timestamp {
    Timestamp {
        utc_ms: 1_793_491_200_000 + minute * 60_000,
        offset_secs: 3600,
    }
}

fn db(dir: &Path) -> Connection {
    Connection::open(dir.join("clarity.db")).unwrap()
}

/// The ids and seqs of the whole change feed of `user`, with its head and floor.
async fn feed(store: &SqliteStore, user: Uuid) -> (Vec<(u64, String, bool)>, u64, u64) {
    let page = store.changes(user, 0, 1000).await.unwrap();
    assert!(!page.more);
    let changes = page
        .changes
        .into_iter()
        .map(|c| match c.op {
            ChangeOp::Upsert(s) => (c.seq, s.id, true),
            ChangeOp::Delete { id } => (c.seq, id, false),
        })
        .collect();
    (changes, page.head, page.floor)
}

/// A database as the server before sync v2 wrote it (version 4: no versions, seqs,
/// tombstones or change heads) opens with its samples read back identical; they join each
/// user's change sequence in time order, and writes continue after them. Reopening after an
/// older server reset the version changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_4_database_is_migrated_to_5_and_its_samples_join_the_change_feed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let insert = |c: &Connection, user: Uuid, id: &str, minute: i64, extra: Option<&str>| {
        c.execute(
            "INSERT INTO samples (user_id, id, kind, start_ms, start_off, end_ms, end_off,
               value, source, extra) VALUES (?1, ?2, ?5, ?3, 3600, NULL, NULL, 120.0, 'cuff', ?4)",
            rusqlite::params![
                &user.as_bytes()[..],
                id,
                at(minute).utc_ms,
                extra,
                Kind::BloodPressure.code()
            ],
        )
        .unwrap();
    };
    {
        let c = db(dir.path());
        c.execute_batch(schema::SCHEMA).unwrap();
        c.execute_batch("ALTER TABLE samples ADD COLUMN extra TEXT; PRAGMA user_version = 4;")
            .unwrap();
        // Written out of time order: the seqs follow time, then id.
        insert(&c, a, "z-late", 30, None);
        insert(&c, a, "m-early", 10, Some(r#"{"diastolic":80.0}"#));
        insert(&c, a, "a-same-minute", 30, None);
        insert(&c, b, "only", 5, None);
    }
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    assert_eq!(version(dir.path()), schema::SCHEMA_VERSION);
    let bp = |id: &str, minute: i64, diastolic: Option<f64>| Sample {
        extra: diastolic.map(|d| {
            Box::new(Extra {
                provenance: None,
                diastolic: Some(d),
                activity: None,
            })
        }),
        ..Sample::new(
            id,
            Kind::BloodPressure,
            at(minute),
            None,
            120.0,
            Some("cuff".into()),
        )
    };
    let want_a = vec![
        bp("m-early", 10, Some(80.0)),
        bp("a-same-minute", 30, None),
        bp("z-late", 30, None),
    ];
    assert_eq!(store.query_samples(a, all()).await.unwrap().samples, want_a);
    let page = store.changes(a, 0, 10).await.unwrap();
    assert_eq!((page.head, page.floor, page.more), (3, 0, false));
    let listed: Vec<(u64, Sample)> = page
        .changes
        .into_iter()
        .map(|c| match c.op {
            ChangeOp::Upsert(s) => (c.seq, s),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        listed,
        want_a
            .into_iter()
            .enumerate()
            .map(|(i, s)| (i as u64 + 1, s))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        feed(&store, b).await,
        (vec![(1, "only".into(), true)], 1, 0)
    );
    let done = store
        .write_samples(a, vec![SampleOp::Put(bp("new", 40, None))])
        .await
        .unwrap();
    assert_eq!(done.seqs, [4]);
    store.close().await;

    // An older server that reset the version cannot store a sample without a seq in the
    // version 9 layout (the seq is the table's key): its write fails instead of hiding a row
    // from the feed. Reopening runs every migration again and changes nothing.
    {
        let c = db(dir.path());
        c.execute_batch("PRAGMA user_version = 3;").unwrap();
        let refused = c.execute(
            "INSERT INTO samples (user_id, id, kind, start_ms, start_off, value)
             VALUES (?1, 'from-old-server', 2, 0, 0, 1.0)",
            [&a.as_bytes()[..]],
        );
        assert!(refused.is_err(), "{refused:?}");
    }
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    assert_eq!(version(dir.path()), schema::SCHEMA_VERSION);
    let (changes, head, _) = feed(&store, a).await;
    let seqs: Vec<(u64, &str)> = changes.iter().map(|(s, id, _)| (*s, id.as_str())).collect();
    assert_eq!(
        seqs,
        [
            (1, "m-early"),
            (2, "a-same-minute"),
            (3, "z-late"),
            (4, "new")
        ]
    );
    assert_eq!(head, 4);
    let listed: Vec<String> = store
        .query_samples(a, all())
        .await
        .unwrap()
        .samples
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, ["m-early", "a-same-minute", "z-late", "new"]);
    let stray: bool = db(dir.path())
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'samples_by_kind_time')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!stray, "version 3's index does not come back");
    store.close().await;
}

/// Tombstones live TOMBSTONE_DAYS: one younger still refuses a stale re-send; one older is
/// forgotten when the store opens (and hourly after), a re-send of its id is then stored as
/// new, and the floor rises to its seq so that readers who might have missed the deletion
/// start again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tombstones_are_forgotten_and_raise_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let u = Uuid::new_v4();
    let hr = |id: &str, version: Option<i64>| Sample {
        version,
        ..Sample::new(id, Kind::HeartRate, at(1), None, 60.0, None)
    };
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let done = store
        .write_samples(
            u,
            vec![
                SampleOp::Put(hr("old", Some(3))),
                SampleOp::Put(hr("young", None)),
                SampleOp::Put(hr("kept", None)),
                SampleOp::Delete("old".into()),
                SampleOp::Delete("young".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(done.seqs, [1, 2, 3, 4, 5]);
    store.close().await;
    let day = 86_400_000i64;
    let aged = |id: &str, days: i64| {
        db(dir.path())
            .execute(
                "UPDATE tombstones SET deleted_at = ?2 WHERE id = ?1",
                rusqlite::params![id, Utc::now().timestamp_millis() - days * day],
            )
            .unwrap()
    };
    assert_eq!(aged("old", TOMBSTONE_DAYS + 1), 1);
    assert_eq!(aged("young", TOMBSTONE_DAYS - 1), 1);

    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    assert_eq!(
        feed(&store, u).await,
        (
            vec![(3, "kept".into(), true), (5, "young".into(), false)],
            5,
            4
        ),
        "the old tombstone (seq 4) is gone and the floor is its seq"
    );
    let done = store
        .write_samples(
            u,
            vec![
                SampleOp::Put(hr("old", Some(1))),
                SampleOp::Put(hr("young", None)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(done.outcomes, [OpOutcome::Inserted, OpOutcome::Duplicate]);
    assert_eq!(done.seqs, [6]);
    store.close().await;
}
