//! `DELETE /api/v1/user` while a batch of the user is on its way to the store: the erasure
//! wins. The batch is answered `account_erased` (or the session closes first), never acked,
//! and nothing of it is stored after the account is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use clarity::store::{SampleOp, Store, StoreResult, WriteResult};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::common::wrap::{Intercept, wrap};
use crate::common::{Frame, PASSWORD, hr, into_json, spawn_with_store};

/// Holds each sample write for a second, saying when one is held.
#[derive(Default)]
struct SlowWrites {
    holding: AtomicBool,
}

#[async_trait]
impl Intercept for Arc<SlowWrites> {
    async fn write_samples(
        &self,
        inner: &dyn Store,
        user: Uuid,
        ops: Vec<SampleOp>,
    ) -> StoreResult<WriteResult> {
        self.holding.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
        inner.write_samples(user, ops).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_on_its_way_when_the_account_is_erased_is_refused_and_leaves_nothing() {
    let slow = Arc::new(SlowWrites::default());
    let app = spawn_with_store({
        let slow = slow.clone();
        |store| wrap(store, slow)
    })
    .await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let samples: Vec<_> = (0..10).map(|i| hr(&format!("late-{i}"), i, 70)).collect();
    ws.send(&json!({"type": "samples", "seq": 1, "samples": samples}))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !slow.holding.load(Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the batch never reached the store"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The erasure runs while the batch is held on its way to the store.
    let resp = app
        .http
        .delete(app.url("/api/v1/user"))
        .bearer_auth(&u.access)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(resp).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The session ends (4011, account_erased); the batch is never acked, and if it is
    // answered at all, it is with account_erased and its seq.
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next_frame().await {
                Frame::Json(v) if v["type"] == "ack" => panic!("the batch was acked: {v}"),
                Frame::Json(v) if v["type"] == "error" => {
                    // The batch's answer (with its seq) or the notice before the close.
                    assert_eq!(v["code"], "account_erased", "{v}");
                    if v.get("seq").is_some() {
                        assert_eq!(v["seq"], 1, "{v}");
                        assert!(v.get("retry_after_ms").is_none(), "{v}");
                    }
                }
                Frame::Json(_) | Frame::Ping => {}
                Frame::Close(code, reason) => return Some((code, reason)),
                Frame::Ended => return None,
            }
        }
    })
    .await
    .expect("the session ends");
    if let Some((code, reason)) = end {
        assert_eq!(code, 4011, "{reason}");
    }

    // Once the held write has had its turn, nothing of the user is stored.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let page = app
        .app
        .store
        .query_samples(u.user_id, crate::conformance::query(None, 100))
        .await
        .unwrap();
    assert!(page.samples.is_empty(), "{:?}", page.samples);
    let feed = app.app.store.changes(u.user_id, 0, 100).await.unwrap();
    assert!(feed.changes.is_empty(), "{:?}", feed.changes);
}
