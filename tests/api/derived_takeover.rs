//! Derived results follow the data even when the node that takes a user's window meets a
//! failing store: a change whose recomputation was never confirmed (its node was killed after
//! the ack) is recomputed at a later use of the window, although ownership is fresh only once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use clarity::samples::{Kind, Sample, Timestamp};
use clarity::store::{SampleOp, StoreError, StoreResult};

use crate::common::wrap::{Intercept, Op, wrap};
use crate::common::{spawn_with_store, yesterday};

/// While `failing`, the window rebuild's reads and the read of pending revisions time out.
#[derive(Default)]
struct Outage {
    failing: AtomicBool,
    rebuilds_failed: AtomicUsize,
    recoveries_failed: AtomicUsize,
}

impl Intercept for Arc<Outage> {
    fn check(&self, op: Op) -> StoreResult<()> {
        if !self.failing.load(Ordering::SeqCst) {
            return Ok(());
        }
        match op {
            Op::QuerySamples => self.rebuilds_failed.fetch_add(1, Ordering::SeqCst),
            Op::PendingRevisions => self.recoveries_failed.fetch_add(1, Ordering::SeqCst),
            _ => return Ok(()),
        };
        Err(StoreError::Timeout)
    }
}

async fn until(what: &str, f: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !f() {
        if tokio::time::Instant::now() > deadline {
            eprintln!("not within 5 s: {what}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_left_unrecomputed_is_recovered_after_a_takeover_that_met_a_failing_store() {
    let outage = Arc::new(Outage::default());
    let app = spawn_with_store({
        let outage = outage.clone();
        |store| wrap(store, outage)
    })
    .await;
    let u = app.user().await;
    // Stored behind the server's back, as a node killed right after its ack leaves it: a
    // sample and its deletion, whose recomputation is pending in the store.
    let store = app.app.store.clone();
    let start = Timestamp::parse(&yesterday().to_rfc3339()).unwrap();
    let put = Sample::new("x", Kind::ActivityCount, start, None, 10.0, None);
    store
        .write_samples(u.user_id, vec![SampleOp::Put(put)])
        .await
        .unwrap();
    store
        .write_samples(u.user_id, vec![SampleOp::Delete("x".into())])
        .await
        .unwrap();
    assert_eq!(store.pending_revisions(u.user_id).await.unwrap().len(), 1);

    // The first session takes the window while the store fails: the rebuild fails, and so
    // does the read of what is pending (tried although the rebuild failed).
    outage.failing.store(true, Ordering::SeqCst);
    let mut first = app.ws(&u.access).await;
    first.welcome().await;
    assert!(
        until("the rebuild failed", || outage
            .rebuilds_failed
            .load(Ordering::SeqCst)
            > 0)
        .await
    );
    let read_and_failed = until("the pending revisions were read (and failed)", || {
        outage.recoveries_failed.load(Ordering::SeqCst) > 0
    })
    .await;
    outage.failing.store(false, Ordering::SeqCst);
    assert!(
        read_and_failed,
        "the takeover did not try to read what is pending when its rebuild failed"
    );

    // The store is back. The next session finds the window owned already, and recovers.
    let mut second = app.ws(&u.access).await;
    second.welcome().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pending = store.pending_revisions(u.user_id).await.unwrap();
        if pending.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still pending 20 s after the store came back: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(first);
}
