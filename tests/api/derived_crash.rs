//! Derived results follow the data across a crash: the server is killed right after acking
//! a deletion, before it recomputed the analysis over the deleted samples; after a restart
//! the analysis is replaced once the user is back (`store::revisions`), on both backends.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Backend, into_json, yesterday};
use crate::sync_model::{Socket, connect, start, started};

/// The first text frame `what` accepts, within a minute.
async fn until(ws: &mut Socket, what: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the frame awaited within a minute");
        if let Some(Ok(Message::Text(t))) = frame {
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_ne!(v["type"], "error", "{v}");
            if what(&v) {
                return v;
            }
        }
    }
}

async fn analyses(http: &reqwest::Client, addr: std::net::SocketAddr, token: &str) -> Vec<Value> {
    let resp = http
        .get(format!("http://{addr}/api/v1/analyses?limit=100"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(resp).await;
    assert_eq!(status, 200, "{body}");
    body["analyses"].as_array().unwrap().clone()
}

async fn killed_after_the_ack(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, token) = started(dir.path(), &backend, "crash@example.com").await;
    let http = reqwest::Client::new();

    // Two hours of yesterday, analysed.
    let mut ws = connect(addr, &token).await.expect("connect");
    let samples: Vec<Value> = [("early", 2), ("late", 6)]
        .iter()
        .flat_map(|&(prefix, hour)| {
            (0..60).map(move |i| {
                let t = yesterday() + chrono::Duration::hours(hour) + chrono::Duration::minutes(i);
                json!({"id": format!("{prefix}{i}"), "kind": "activity_count",
                       "start": t.to_rfc3339(), "value": 100 + i})
            })
        })
        .collect();
    let frame = json!({"type": "samples", "seq": 1, "samples": samples});
    ws.send(Message::text(frame.to_string())).await.unwrap();
    ws.send(Message::text(json!({"type": "analyze"}).to_string()))
        .await
        .unwrap();
    let first = until(&mut ws, |v| v["type"] == "analysis").await;
    assert_eq!(first["minutes_present"], 120, "{first}");

    // Delete the early hour; kill -9 the moment it is acked (the recomputation waits a
    // settle period first, so it has not run).
    let ids: Vec<String> = (0..60).map(|i| format!("early{i}")).collect();
    let frame = json!({"type": "delete", "seq": 2, "ids": ids});
    ws.send(Message::text(frame.to_string())).await.unwrap();
    until(&mut ws, |v| v["type"] == "ack" && v["seq"] == 2).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    // Restarted; the user comes back.
    let (mut child, addr) = start(dir.path(), &backend).await;
    let mut ws = connect(addr, &token).await.expect("reconnect");
    let replaced = until(&mut ws, |v| v["type"] == "analysis").await;
    assert_eq!(replaced["supersedes"], first["analysis_id"], "{replaced}");
    assert_eq!(replaced["minutes_present"], 60, "{replaced}");
    let listed = analyses(&http, addr, &token).await;
    let current: Vec<&Value> = listed
        .iter()
        .filter(|a| a.get("superseded_by").is_none())
        .collect();
    assert_eq!(current.len(), 1, "{listed:?}");
    assert_eq!(current[0]["analysis_id"], replaced["analysis_id"]);
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysis_over_samples_deleted_just_before_a_crash_is_replaced_after_it_on_sqlite() {
    killed_after_the_ack(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysis_over_samples_deleted_just_before_a_crash_is_replaced_after_it_on_dynamodb() {
    // Without CLARITY_TEST_DYNAMODB this passes empty, as the conformance tests do; CI sets
    // CLARITY_TEST_REQUIRE_DYNAMODB, which makes a missing endpoint fail instead.
    if let Some(b) = Backend::dynamodb() {
        killed_after_the_ack(b).await;
    }
}
