//! The write-rate layouts: a version 5 or version 8 data folder reads back identical (samples
//! in every listing and page, the change feed, tombstones) after the automatic migration to
//! version 9 on open; and version 9's listings (time order from `sample_ranges` hints) agree
//! with a model under random puts, edits that move samples across hours and kinds, and
//! deletions.

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

/// What a version 5 to 8 server listed: its queries on `samples_by_kind_time`.
fn old_listing(c: &Connection, user: Uuid, kind: Option<Kind>) -> Vec<Sample> {
    let uid = &user.as_bytes()[..];
    match kind {
        None => c
            .prepare(&format!(
                "SELECT {SAMPLE_COLUMNS} FROM samples WHERE user_id = ?1 ORDER BY start_ms, id"
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

/// Turns a version 9 database into the version 8 layout (the table keyed by id, the time
/// and seq indexes, no ranges), rows unchanged: what a version 8 server left.
fn downgrade_to_v8(c: &Connection) {
    c.execute_batch(
        "BEGIN;
         CREATE TABLE samples_v8 (
             user_id BLOB NOT NULL, id TEXT NOT NULL, kind INTEGER NOT NULL,
             start_ms INTEGER NOT NULL, start_off INTEGER NOT NULL, end_ms INTEGER,
             end_off INTEGER, value REAL NOT NULL, source TEXT, extra TEXT, version INTEGER,
             seq INTEGER, PRIMARY KEY (user_id, id)) WITHOUT ROWID;
         INSERT INTO samples_v8 SELECT user_id, id, kind, start_ms, start_off, end_ms, end_off,
             value, source, extra, version, seq FROM samples;
         DROP TABLE samples;
         DROP TABLE sample_ranges;
         ALTER TABLE samples_v8 RENAME TO samples;
         CREATE INDEX samples_by_kind_time ON samples (user_id, kind, start_ms, id);
         CREATE INDEX samples_by_seq ON samples (user_id, seq);
         PRAGMA user_version = 8;
         COMMIT;",
    )
    .unwrap();
}

/// The change feed as a version 5 to 8 server answered it (`samples_by_seq` and
/// `tombstones_by_seq`).
fn old_feed(c: &Connection, user: Uuid) -> Vec<(i64, String, bool)> {
    c.prepare(
        "SELECT seq, id, 0 FROM samples INDEXED BY samples_by_seq WHERE user_id = ?1
         UNION ALL
         SELECT seq, id, 1 FROM tombstones INDEXED BY tombstones_by_seq WHERE user_id = ?1
         ORDER BY 1",
    )
    .unwrap()
    .query_map([&user.as_bytes()[..]], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn exists(c: &Connection, name: &str) -> bool {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

/// Writes two users' histories with the current server, rewrites the folder into version
/// `from`'s layout, and checks that the migration on open reads everything back identical.
async fn migrates_and_reads_back_identical(from: i64) {
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

    {
        let c = db(dir.path());
        downgrade_to_v8(&c);
        if from == 5 {
            // Version 5 also had `samples_by_time`, which version 6 dropped.
            c.execute_batch(
                "CREATE INDEX samples_by_time ON samples (user_id, start_ms, id);
                 PRAGMA user_version = 5;",
            )
            .unwrap();
        }
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
            before.push(old_listing(&c, user, kind));
        }
    }
    let old_feed_a = old_feed(&c, a);
    drop(c);
    assert_eq!(before[0].len(), 41, "42 written, one deleted");

    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let c = db(dir.path());
    let version: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION);
    for gone in ["samples_by_time", "samples_by_kind_time", "samples_by_seq"] {
        assert!(!exists(&c, gone), "the migration leaves no {gone}");
    }
    assert!(exists(&c, "samples_by_id") && exists(&c, "sample_ranges"));
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
    let feed_a: ChangePage = store.changes(a, 0, 1000).await.unwrap();
    let feed: Vec<(i64, String, bool)> = feed_a
        .changes
        .iter()
        .map(|ch| match &ch.op {
            crate::store::ChangeOp::Upsert(s) => (ch.seq as i64, s.id.clone(), false),
            crate::store::ChangeOp::Delete { id } => (ch.seq as i64, id.clone(), true),
        })
        .collect();
    assert_eq!(feed, old_feed_a);
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
    let heart = paged(&store, a, Some(Kind::HeartRate), 1000).await;
    assert_eq!(heart.last().map(|s| s.id.as_str()), Some("new"));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_8_folder_is_migrated_to_9_and_reads_back_identical() {
    migrates_and_reads_back_identical(8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_5_folder_is_migrated_to_9_and_reads_back_identical() {
    migrates_and_reads_back_identical(5).await;
}

mod model {
    //! Listings read through `sample_ranges` agree with the live samples the change feed
    //! (a scan of the seq-keyed table, no ranges) reports, for any mix of new samples, edits
    //! that move a sample to another hour or kind, duplicates and deletions, in writes of
    //! several ops, on every query shape, paged through cursors.

    use proptest::prelude::*;

    use super::*;
    use crate::store::ChangeOp;

    const KINDS: [Kind; 3] = [Kind::HeartRate, Kind::StepCount, Kind::ActivityCount];

    #[derive(Debug, Clone)]
    enum Op {
        /// `versioned`: with a fresh, higher version (an edit when the id is stored).
        Put {
            id: u8,
            minute: i64,
            kind: usize,
            versioned: bool,
        },
        Delete(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..24, 0i64..360, 0usize..3, any::<bool>()).prop_map(
                |(id, minute, kind, versioned)| Op::Put { id, minute, kind, versioned }
            ),
            1 => (0u8..24).prop_map(Op::Delete),
        ]
    }

    fn query() -> impl Strategy<Value = (Option<usize>, Option<i64>, Option<i64>, usize)> {
        (
            proptest::option::of(0usize..3),
            proptest::option::of(-30i64..400),
            proptest::option::of(-30i64..400),
            1usize..9,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
        #[test]
        fn listings_match_the_live_samples(
            base in prop_oneof![Just(-3 * 3_600_000i64 - 17_000), Just(1_793_491_200_000i64)],
            writes in proptest::collection::vec(proptest::collection::vec(op(), 1..8), 1..12),
            queries in proptest::collection::vec(query(), 1..6),
        ) {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
                let user = Uuid::new_v4();
                let mut version = 0;
                for write in writes {
                    let ops = write
                        .into_iter()
                        .map(|op| match op {
                            Op::Put { id, minute, kind, versioned } => {
                                version += 1;
                                let t = Timestamp {
                                    utc_ms: base + minute * 60_000,
                                    offset_secs: 0,
                                };
                                SampleOp::Put(Sample {
                                    version: versioned.then_some(version),
                                    ..Sample::new(
                                        format!("id-{id}"),
                                        KINDS[kind],
                                        t,
                                        None,
                                        minute as f64,
                                        None,
                                    )
                                })
                            }
                            Op::Delete(id) => SampleOp::Delete(format!("id-{id}")),
                        })
                        .collect();
                    store.write_samples(user, ops).await.unwrap();
                }
                let feed = store.changes(user, 0, 10_000).await.unwrap();
                let mut live: Vec<Sample> = feed
                    .changes
                    .into_iter()
                    .filter_map(|c| match c.op {
                        ChangeOp::Upsert(s) => Some(s),
                        ChangeOp::Delete { .. } => None,
                    })
                    .collect();
                live.sort_by(|a, b| (a.start.utc_ms, &a.id).cmp(&(b.start.utc_ms, &b.id)));
                for (kind, from, to, limit) in queries {
                    let kind = kind.map(|k| KINDS[k]);
                    let from_ms = from.map(|m| base + m * 60_000);
                    let to_ms = to.map(|m| base + m * 60_000);
                    let want: Vec<Sample> = live
                        .iter()
                        .filter(|s| kind.is_none_or(|k| k == s.kind))
                        .filter(|s| from_ms.is_none_or(|f| s.start.utc_ms >= f))
                        .filter(|s| to_ms.is_none_or(|t| s.start.utc_ms < t))
                        .cloned()
                        .collect();
                    let q = SampleQuery { kind, from_ms, to_ms, after: None, limit };
                    let got = crate::store::all_samples(&store, user, q).await.unwrap();
                    assert_eq!(got, want, "kind {kind:?} from {from:?} to {to:?} limit {limit}");
                }
                store.close().await;
            });
        }
    }
}
