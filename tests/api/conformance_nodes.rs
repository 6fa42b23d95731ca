//! Part of the conformance suite that needs real processes: two `clarity` nodes sharing one
//! store, written to at once by the same device (a phone that reconnected to another node
//! behind the load balancer and resent its unacknowledged batches).

use futures_util::future::join;
use serde_json::{Value, json};

use crate::common::process::{login, start_binary};
use crate::common::{Backend, JWT_SECRET, PASSWORD, Ws, hr};

pub async fn two_nodes_store_each_sample_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    backend.migrate(&backend.config(dir.path())).await;
    let mut env = backend.env();
    env.push(("CLARITY_JWT_SECRET", JWT_SECRET.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // SQLite nodes share the data folder (the database file); DynamoDB nodes share the table.
    let (_a, addr_a) = start_binary(&["serve"], dir.path(), &env).await;
    let (_b, addr_b) = start_binary(&["serve"], dir.path(), &env).await;

    let http = reqwest::Client::new();
    let resp = http
        .post(format!("http://{addr_a}/api/v1/auth/signup"))
        .json(&json!({"email": "nodes@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // Signed up on A, logged in on B: the account is in the shared store.
    let token = login(&http, addr_b, "nodes@example.com").await;

    let connect = |addr| {
        let url = format!("ws://{addr}/api/v1/ws?access_token={token}");
        async move {
            let (stream, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("connect");
            let mut ws = Ws { stream };
            ws.welcome().await;
            ws
        }
    };
    let mut ws_a = connect(addr_a).await;
    let mut ws_b = connect(addr_b).await;
    let rounds = 8;
    for seq in 0..rounds {
        let samples: Vec<Value> = (0..60)
            .map(|i| hr(&format!("n{seq}-{i}"), seq * 60 + i, 60 + i % 9))
            .collect();
        let frame = json!({"type": "samples", "seq": seq, "samples": samples});
        join(ws_a.send(&frame), ws_b.send(&frame)).await;
        let (ack_a, ack_b) = join(ws_a.recv_type("ack"), ws_b.recv_type("ack")).await;
        for ack in [&ack_a, &ack_b] {
            assert_eq!(ack["seq"], seq);
            let total = ack["accepted"].as_u64().unwrap() + ack["duplicates"].as_u64().unwrap();
            assert_eq!(total, 60, "{ack}");
        }
        assert_eq!(
            ack_a["accepted"].as_u64().unwrap() + ack_b["accepted"].as_u64().unwrap(),
            60,
            "each sample is new on exactly one node: {ack_a} {ack_b}"
        );
    }

    for addr in [addr_a, addr_b] {
        let mut ids = Vec::new();
        let mut cursor = String::new();
        loop {
            let url = format!("http://{addr}/api/v1/health-data?limit=100{cursor}");
            let body: Value = http
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for s in body["samples"].as_array().unwrap() {
                ids.push(s["id"].as_str().unwrap().to_owned());
            }
            match body["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), 60 * rounds as usize, "node {addr}");
        assert_eq!(unique.len(), ids.len(), "node {addr}: no duplicates");
    }
}
