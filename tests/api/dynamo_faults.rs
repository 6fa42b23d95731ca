//! DynamoDB faults against a real DynamoDB server: the emulator killed mid-stream and
//! restarted, and throttling injected by a proxy that speaks DynamoDB's wire format.
//! Clients must get errors, never acks, for what was not stored; and every acked sample must
//! be there exactly once afterwards.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode as HttpStatus;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

use crate::common::backend::dynamodb_endpoint;
use crate::common::{Backend, TestApp, hr, spawn_on};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A DynamoDB Local of our own, on disk so that a restart keeps the data.
struct Emulator {
    jar: String,
    db: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Emulator {
    fn configured() -> Option<Emulator> {
        dynamodb_endpoint()?;
        let Ok(jar) = std::env::var("CLARITY_TEST_DYNAMODB_JAR") else {
            eprintln!("skipping: CLARITY_TEST_DYNAMODB_JAR is not set (scripts/test sets it)");
            return None;
        };
        Some(Emulator {
            jar,
            db: tempfile::tempdir().unwrap(),
            port: free_port(),
            child: None,
        })
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let dir = Path::new(&self.jar).parent().unwrap();
        let child = Command::new("java")
            .current_dir(dir)
            .arg("-Djava.library.path=./DynamoDBLocal_lib")
            .args([
                "-jar",
                &self.jar,
                "-sharedDb",
                "-disableTelemetry",
                "-dbPath",
            ])
            .arg(self.db.path())
            .args(["-port", &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("java starts");
        self.child = Some(child);
        // Listening is not serving: a JVM started next to a busy test run can take seconds to
        // answer its first request, longer than the store timeout the tests use.
        let mut config = clarity::config::Config::for_tests(self.db.path());
        config.dynamodb.endpoint = Some(self.endpoint());
        config.store.timeout_ms = 10_000;
        let client = clarity::store::dynamo::client(&clarity::app::dynamo_options(&config))
            .await
            .expect("credentials");
        for _ in 0..120 {
            let answer =
                tokio::time::timeout(Duration::from_secs(5), client.list_tables().send()).await;
            if matches!(answer, Ok(Ok(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("DynamoDB Local did not serve on port {}", self.port);
    }

    async fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
}

async fn ready_status(app: &TestApp) -> HttpStatus {
    app.get("/api/ready", None).await.0
}

/// Streams `batches` batches of 60 with up to 4 in flight, resending a batch after each
/// `error` frame; returns (acked ids, error frames seen).
async fn stream_with_retries(
    url: String,
    batches: u64,
    acks: Arc<AtomicUsize>,
) -> (Vec<String>, usize) {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let (mut tx, mut rx) = ws.split();
    let batch = |b: u64| -> Value {
        let samples: Vec<Value> = (0..60)
            .map(|i| hr(&format!("f{b}-{i}"), (b * 60 + i) as i64, 70))
            .collect();
        json!({"type": "samples", "seq": b, "samples": samples})
    };
    let mut todo: Vec<u64> = (0..batches).rev().collect();
    let mut in_flight: BTreeMap<u64, ()> = BTreeMap::new();
    let (mut acked, mut errors) = (Vec::new(), 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !(todo.is_empty() && in_flight.is_empty()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream did not finish"
        );
        while in_flight.len() < 4 {
            let Some(b) = todo.pop() else { break };
            tx.send(Message::text(batch(b).to_string())).await.unwrap();
            in_flight.insert(b, ());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let msg = tokio::time::timeout(Duration::from_secs(30), rx.next())
            .await
            .expect("an answer for every batch within 30 s")
            .expect("session open")
            .unwrap();
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        crate::common::validate_server_frame(&v);
        let Some(seq) = v["seq"].as_u64() else {
            continue;
        };
        in_flight
            .remove(&seq)
            .expect("answer for a batch in flight");
        match v["type"].as_str() {
            Some("ack") => {
                assert_eq!(
                    v["accepted"].as_u64().unwrap() + v["duplicates"].as_u64().unwrap(),
                    60
                );
                acked.extend((0..60).map(|i| format!("f{seq}-{i}")));
                acks.fetch_add(1, Ordering::Relaxed);
            }
            Some("error") => {
                assert_eq!(v["code"], "store_unavailable", "{v}");
                assert!(v["retry_after_ms"].as_u64().is_some());
                errors += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
                todo.push(seq);
            }
            other => panic!("unexpected frame {other:?}: {v}"),
        }
    }
    (acked, errors)
}

async fn stored_ids(app: &TestApp, token: &str) -> Vec<String> {
    app.all_samples(token, "")
        .await
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_stopped_mid_stream_gives_errors_then_ingest_resumes_exactly_once() {
    let Some(mut emu) = Emulator::configured() else {
        return;
    };
    emu.start().await;
    let backend = Backend::Dynamo {
        endpoint: emu.endpoint(),
        prefix: "fault-".into(),
    };
    let app = spawn_on(&backend, |c| {
        c.store.timeout_ms = 2_000;
        c.dynamodb.max_attempts = 2;
    })
    .await;
    let user = app.user().await;
    let url = format!("{}?access_token={}", app.ws_url(), user.access);
    let acks = Arc::new(AtomicUsize::new(0));
    let client = tokio::spawn(stream_with_retries(url, 40, acks.clone()));

    while acks.load(Ordering::Relaxed) < 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    emu.kill().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ready_status(&app).await, HttpStatus::SERVICE_UNAVAILABLE);
    let (s, body) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": [hr("rest-1", 1, 60)]}),
            Some(&user.access),
        )
        .await;
    assert_eq!(s, HttpStatus::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"]["retry_after_ms"].is_u64(), "{body}");
    emu.start().await;

    let (acked, errors) = client.await.unwrap();
    assert!(errors > 0, "the outage produced error frames");
    assert_eq!(ready_status(&app).await, HttpStatus::OK);
    let stored = stored_ids(&app, &user.access).await;
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no sample stored twice");
    assert!(
        acked.iter().all(|id| unique.contains(id)),
        "every acked sample is stored"
    );
    assert_eq!(stored.len(), 40 * 60);
    eprintln!(
        "emulator outage: {errors} error frames, {} samples acked",
        acked.len()
    );
}

/// Forwards DynamoDB requests to `upstream`, answering `ThrottlingException` to UpdateItem
/// while `throttle` is set.
async fn throttling_proxy(
    upstream: String,
    throttle: Arc<AtomicBool>,
    throttled: Arc<AtomicUsize>,
) -> String {
    let http = reqwest::Client::new();
    let handler = move |headers: HeaderMap, body: Bytes| {
        let (http, upstream) = (http.clone(), upstream.clone());
        let (throttle, throttled) = (throttle.clone(), throttled.clone());
        async move {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            if throttle.load(Ordering::Relaxed)
                && (target.ends_with(".UpdateItem") || target.ends_with(".TransactWriteItems"))
            {
                throttled.fetch_add(1, Ordering::Relaxed);
                let body = json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                    "message": "Rate of requests exceeds the allowed throughput."
                });
                return (
                    StatusCode::BAD_REQUEST,
                    [("content-type", "application/x-amz-json-1.0")],
                    body.to_string(),
                );
            }
            let mut req = http.post(&upstream).body(body);
            for (k, v) in &headers {
                if k != "host" && k != "content-length" {
                    req = req.header(k.as_str(), v.as_bytes());
                }
            }
            let resp = req.send().await.expect("upstream answers");
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
            (
                status,
                [("content-type", "application/x-amz-json-1.0")],
                resp.text().await.unwrap(),
            )
        }
    };
    let router = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_then_refused_with_retry_after_and_ready_reflects_it() {
    let Some(Backend::Dynamo { endpoint, prefix }) = Backend::dynamodb() else {
        return;
    };
    let throttle = Arc::new(AtomicBool::new(false));
    let throttled = Arc::new(AtomicUsize::new(0));
    let proxy = throttling_proxy(endpoint, throttle.clone(), throttled.clone()).await;
    let backend = Backend::Dynamo {
        endpoint: proxy,
        prefix,
    };
    let app = spawn_on(&backend, |c| c.dynamodb.max_attempts = 3).await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let batch =
        json!({"type": "samples", "seq": 1, "samples": [hr("t-1", 1, 60), hr("t-2", 2, 61)]});

    throttle.store(true, Ordering::Relaxed);
    ws.send(&batch).await;
    let err = ws.recv_type("error").await;
    assert_eq!(
        (err["code"].as_str(), err["seq"].as_u64()),
        (Some("store_unavailable"), Some(1))
    );
    assert!(err["retry_after_ms"].as_u64().unwrap() > 0);
    assert_eq!(
        throttled.load(Ordering::Relaxed),
        3,
        "the SDK retried up to its bound"
    );
    let (s, body) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": [hr("t-3", 3, 60)]}),
            Some(&user.access),
        )
        .await;
    assert_eq!(s, HttpStatus::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(ready_status(&app).await, HttpStatus::SERVICE_UNAVAILABLE);

    throttle.store(false, Ordering::Relaxed);
    ws.send(&batch).await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(ack["accepted"], 2);
    let mut recovered = false;
    for _ in 0..100 {
        if ready_status(&app).await == HttpStatus::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "/api/ready recovers once throttling stops");
    assert_eq!(stored_ids(&app, &user.access).await, ["t-1", "t-2"]);
}
