//! Write-path faults on the real store: a full disk (`SQLITE_FULL`, injected by capping the
//! database's size, which makes SQLite roll the transaction back as a full disk does) and a
//! panicking op. The server-level behaviour is in tests/api/disk_full.rs.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use uuid::Uuid;

use super::health::DISK_FULL;
use super::{SqliteOptions, SqliteStore};
use crate::samples::{Kind, Sample, Timestamp};
use crate::store::{SampleOp, SampleQuery, Store, StoreError, all_samples};

fn puts(prefix: &str, n: usize) -> Vec<SampleOp> {
    (0..n)
        .map(|i| {
            SampleOp::Put(Sample::new(
                format!("{prefix}-{i:05}-{}", "x".repeat(40)),
                Kind::HeartRate,
                Timestamp {
                    utc_ms: 1_793_491_200_000 + i as i64 * 1000,
                    offset_secs: 3600,
                },
                None,
                60.0 + (i % 40) as f64,
                Some("watch".into()),
            ))
        })
        .collect()
}

async fn stored(store: &SqliteStore, user: Uuid) -> Vec<String> {
    let q = SampleQuery {
        kind: None,
        from_ms: None,
        to_ms: None,
        after: None,
        limit: 1000,
    };
    all_samples(store, user, q)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect()
}

fn is_disk_full(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(m) if m == DISK_FULL)
}

/// While the disk is full writes are refused as retryable, the store says it is read-only,
/// reads go on; once space is back the same write succeeds, with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_retryably_and_they_succeed_once_space_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let user = Uuid::new_v4();
    store.write_samples(user, puts("before", 50)).await.unwrap();
    assert_eq!(store.read_only(), None);

    store.simulate_disk_full(true).await.unwrap();
    let e = store
        .write_samples(user, puts("during", 2000))
        .await
        .expect_err("no room for 2000 samples");
    assert!(is_disk_full(&e), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(store.read_only(), Some(DISK_FULL));
    assert_eq!(stored(&store, user).await.len(), 50, "reads go on");
    store.ping().await.unwrap();

    store.simulate_disk_full(false).await.unwrap();
    let res = store
        .write_samples(user, puts("during", 2000))
        .await
        .unwrap();
    assert_eq!(res.outcomes.len(), 2000);
    assert_eq!(store.read_only(), None);
    assert_eq!(stored(&store, user).await.len(), 2050);
}

/// SQLite rolls the whole transaction back on `SQLITE_FULL`: no op of that group commit may
/// be acked, and none after the failing one may run (its savepoint would open, and its release
/// commit, a transaction of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_a_group_commit_that_sqlite_rolled_back_is_acked_or_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
    let (big, small) = (Uuid::new_v4(), Uuid::new_v4());
    store.write_samples(small, puts("seed", 20)).await.unwrap();
    store.simulate_disk_full(true).await.unwrap();

    // Hold the writer inside a batch so that the next two writes queue up behind it and go
    // into one transaction, in this order.
    let (entered_tx, entered) = std_mpsc::channel();
    let (release, release_rx) = std_mpsc::channel::<()>();
    let gate = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .call(move |_| {
                    entered_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(())
                })
                .await
        }
    });
    tokio::task::spawn_blocking(move || entered.recv().unwrap())
        .await
        .unwrap();
    let both = tokio::spawn({
        let store = store.clone();
        async move {
            // `join` polls the first before the second: they are queued in this order.
            futures_util::future::join(
                store.write_samples(big, puts("big", 2000)),
                store.write_samples(small, puts("small", 1)),
            )
            .await
        }
    });
    for _ in 0..10_000 {
        if store.writes.max_capacity() - store.writes.capacity() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(store.writes.max_capacity() - store.writes.capacity(), 2);
    release.send(()).unwrap();
    let (a, b) = both.await.unwrap();
    gate.await.unwrap().unwrap();

    let a = a.expect_err("the big write cannot fit");
    assert!(is_disk_full(&a), "{a:?}");
    let b = b.expect_err("its transaction was rolled back");
    assert!(is_disk_full(&b), "{b:?}");
    store.simulate_disk_full(false).await.unwrap();
    assert!(stored(&store, big).await.is_empty());
    assert_eq!(
        stored(&store, small).await.len(),
        20,
        "the refused write is not stored"
    );
}

/// A panic on the writer thread fails that batch only: the store does not turn "closed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_fails_alone_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let user = Uuid::new_v4();
    store.write_samples(user, puts("before", 5)).await.unwrap();
    let e = store
        .call(|_| -> crate::store::StoreResult<()> { panic!("injected panic in a write") })
        .await
        .expect_err("the panicking write fails");
    assert!(e.is_transient(), "{e:?}");
    store.write_samples(user, puts("after", 5)).await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(stored(&store, user).await.len(), 10);
    store.close().await;
}
