//! Durability: the real binary is killed with SIGKILL while clients stream; after a restart
//! every acknowledged sample is present exactly once.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

use crate::common::process::{login, signup, start_binary};
use crate::common::{JWT_SECRET, PASSWORD, hr, into_json};

async fn start_server(dir: &Path) -> (Child, SocketAddr) {
    start_binary(&["serve"], dir, &[("CLARITY_JWT_SECRET", JWT_SECRET)]).await
}

/// Streams batches with a few in flight; returns the ids of every acknowledged sample.
async fn stream_until_killed(
    addr: SocketAddr,
    token: String,
    client: usize,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let url = format!("ws://{addr}/api/v1/ws?access_token={token}");
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let (mut tx, mut rx) = ws.split();
    let mut pending: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut acked = Vec::new();
    let mut seq = 0u64;
    // Stay under the default 50 frames/s per session.
    let mut pace = tokio::time::interval(Duration::from_millis(25));
    loop {
        if pending.len() < 4 && !stop.load(Ordering::Relaxed) {
            pace.tick().await;
            let ids: Vec<String> = (0..60).map(|i| format!("c{client}-{seq}-{i}")).collect();
            let samples: Vec<Value> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| hr(id, (seq * 60) as i64 + i as i64, 65))
                .collect();
            if tx
                .send(Message::text(
                    json!({"type": "samples", "seq": seq, "samples": samples}).to_string(),
                ))
                .await
                .is_err()
            {
                return acked;
            }
            pending.insert(seq, ids);
            seq += 1;
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(10), rx.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                let Some(s) = v["seq"].as_u64() else { continue };
                let ids = pending.remove(&s).expect("answer for a sent batch");
                if v["type"] == "ack" {
                    assert!(pending.keys().all(|p| *p > s), "acks in order");
                    assert_eq!(v["accepted"].as_u64(), Some(60));
                    acked.extend(ids);
                }
            }
            Ok(Some(Ok(_))) => {}
            _ => return acked,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_samples_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (mut child, addr) = start_server(dir.path()).await;
    let email = "crash@example.com";
    let token = signup(&http, addr, email).await;

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| tokio::spawn(stream_until_killed(addr, token.clone(), c, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.unwrap();
    let mut acked = Vec::new();
    for c in clients {
        acked.extend(c.await.unwrap());
    }
    assert!(
        acked.len() >= 60 * 4,
        "clients got acks before the kill: {}",
        acked.len()
    );

    let (_child, addr) = start_server(dir.path()).await;
    let token = login(&http, addr, email).await;
    let mut stored = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("http://{addr}/api/v1/health-data?limit=10000");
        if let Some(c) = &cursor {
            url += &format!("&cursor={c}");
        }
        let (status, body) =
            into_json(http.get(url).bearer_auth(&token).send().await.unwrap()).await;
        assert!(status.is_success(), "{body}");
        stored.extend(
            body["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no sample stored twice");
    let missing: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acked samples lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!(
        "SIGKILL test: {} samples acked before the kill, {} stored",
        acked.len(),
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_binary_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // No subcommand: `clarity` alone serves.
    let (mut child, addr) = start_binary(&[], dir.path(), &[]).await;
    let (url, token) = {
        let http = reqwest::Client::new();
        let resp = http
            .get(format!("http://{addr}/api/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let resp = http
            .post(format!("http://{addr}/api/v1/auth/signup"))
            .json(&json!({"email": "term@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        (
            format!("ws://{addr}/api/v1/ws"),
            login(&http, addr, "term@example.com").await,
        )
    };
    let (ws, _) = tokio_tungstenite::connect_async(format!("{url}?access_token={token}"))
        .await
        .unwrap();
    let mut ws = crate::common::Ws { stream: ws };
    ws.welcome().await;
    ws.send(&json!({"type": "samples", "seq": 1, "samples": [hr("t1", 1, 60)]}))
        .await;
    assert_eq!(ws.recv_type("ack").await["seq"], 1);

    crate::common::process::sigterm(&child);
    let (code, frames) = ws.until_close().await;
    assert_eq!(code, 1001);
    assert_eq!(frames.last().unwrap()["type"], "going_away");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    // The signing key generated on first start is kept: tokens survive a restart.
    let (_child, addr) = start_binary(&[], dir.path(), &[]).await;
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/user/profile"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
