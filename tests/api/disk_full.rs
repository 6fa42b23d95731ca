//! A full disk under the SQLite store (injected with `SqliteStore::simulate_disk_full`, which
//! caps the database so that SQLite fails the write with `SQLITE_FULL` and rolls its
//! transaction back, as a full disk does): writes are refused as retryable, readiness says the
//! store cannot write, reads and acked data stay, and once space is back the same session's
//! writes are acked again, without a restart.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{hr, spawn_with_sqlite};

/// 500 heart-rate samples: enough to need new database pages.
fn batch(prefix: &str) -> Vec<Value> {
    (0..500)
        .map(|i| hr(&format!("{prefix}-{i:03}"), i, 60 + i % 40))
        .collect()
}

#[tokio::test]
async fn a_full_disk_refuses_writes_retryably_and_writes_resume_without_a_restart() {
    let (app, store) = spawn_with_sqlite().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    for (seq, prefix) in [(1, "a"), (2, "b")] {
        ws.send(&json!({"type": "samples", "seq": seq, "samples": batch(prefix)}))
            .await;
        let ack = ws.recv_type("ack").await;
        assert_eq!(
            (ack["seq"].as_u64(), ack["accepted"].as_u64()),
            (Some(seq), Some(500))
        );
    }
    let (s, body) = app.get("/api/ready", None).await;
    assert_eq!((s, body["store"].as_str()), (StatusCode::OK, Some("ok")));

    store.simulate_disk_full(true).await.unwrap();
    ws.send(&json!({"type": "samples", "seq": 3, "samples": batch("c")}))
        .await;
    let e = ws.recv_type("error").await;
    assert_eq!(
        (
            e["code"].as_str(),
            e["seq"].as_u64(),
            e["retry_after_ms"].as_u64()
        ),
        (Some("store_unavailable"), Some(3), Some(1000)),
        "{e}"
    );
    let resp = app
        .http
        .post(app.url("/api/v1/health-data"))
        .bearer_auth(&u.access)
        .json(&json!({"samples": batch("d")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");

    // Readiness takes the node out (writes fail); liveness does not (a restart frees no space).
    let (s, body) = app.get("/api/ready", None).await;
    assert_eq!(
        (
            s,
            body["status"].as_str(),
            body["store"].as_str(),
            body["error"]["code"].as_str()
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("degraded"),
            Some("read_only"),
            Some("store_read_only")
        ),
        "{body}"
    );
    let (s, _) = app.get("/api/health", None).await;
    assert_eq!(s, StatusCode::OK);
    // Reads go on, and every acked sample is there.
    let ids = |samples: Vec<Value>| -> BTreeSet<String> {
        samples
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let acked: BTreeSet<String> = batch("a")
        .into_iter()
        .chain(batch("b"))
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids(app.all_samples(&u.access, "").await), acked);

    // Space is back: the refused batch is retried on the same session and acked.
    store.simulate_disk_full(false).await.unwrap();
    ws.send(&json!({"type": "samples", "seq": 4, "samples": batch("c")}))
        .await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(
        (ack["seq"].as_u64(), ack["accepted"].as_u64()),
        (Some(4), Some(500))
    );
    let (s, body) = app.get("/api/ready", None).await;
    assert_eq!(
        (s, body["store"].as_str()),
        (StatusCode::OK, Some("ok")),
        "{body}"
    );
    let mut all = acked;
    all.extend(
        batch("c")
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned()),
    );
    assert_eq!(ids(app.all_samples(&u.access, "").await), all);
}
