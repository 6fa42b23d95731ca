//! Short forms of the scenarios (a couple of seconds each), as CI runs them: the real
//! `loadtest` binary against a real server started in-process on an ephemeral port with
//! its own data folder. Each asserts zero errors and, where samples are uploaded, that
//! every acknowledged sample is readable afterwards through `GET /api/v1/health-data`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const PASSWORD: &str = "correct-horse-battery-staple";

struct Server {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = clarity::config::Config::for_tests(dir.path());
        // The load generator puts many sessions and uploads on few accounts, as fast as the
        // server answers: per-user limits lifted, as BENCHMARKS.md's server command does.
        config.limits.max_sessions_per_user = 0;
        config.limits.max_user_samples_per_sec = 100_000_000;
        config.limits.max_samples_per_sec = 100_000_000;
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let app = Arc::new(clarity::app::App::new(config).await.expect("app starts"));
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(clarity::server::run(app, listener, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            dir,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(20), h)
                .await
                .expect("server stops")
                .expect("server task")
                .expect("server result");
        }
    }

    /// Runs `loadtest <args> --url … --run-id <run_id> --json …` and returns the JSON report.
    async fn loadtest(&self, run_id: &str, args: &[&str]) -> Value {
        let json_path = self.dir.path().join(format!("{run_id}.json"));
        let output = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
                .args(args)
                .args(["--url", &self.url(), "--run-id", run_id])
                .args(["--password", PASSWORD, "--progress-every", "0"])
                .arg("--json")
                .arg(&json_path)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("loadtest ends by itself")
        .expect("loadtest runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "loadtest {args:?} failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        let text = std::fs::read_to_string(&json_path).expect("JSON report written");
        let report: Value = serde_json::from_str(&text).expect("JSON report parses");
        assert_eq!(
            report["errors"],
            json!({}),
            "errors in {args:?}:\n{stdout}\n{stderr}"
        );
        report
    }

    /// Logs in as each load-test account of `run_id` and pages through its whole history;
    /// returns every sample id (asserting that none is returned twice).
    async fn stored_ids(&self, run_id: &str, users: usize) -> HashSet<String> {
        let http = reqwest::Client::new();
        let mut ids = HashSet::new();
        for i in 0..users {
            let login: Value = http
                .post(format!("{}/api/v1/auth/login", self.url()))
                .json(
                    &json!({"email": format!("lt-{run_id}-{i}@example.com"), "password": PASSWORD}),
                )
                .send()
                .await
                .expect("login")
                .json()
                .await
                .expect("login body");
            let token = login["access_token"].as_str().expect("access token");
            let mut cursor: Option<String> = None;
            loop {
                // Cursors are URL-safe base64: no escaping needed.
                let mut url = format!("{}/api/v1/health-data?limit=10000", self.url());
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
                let resp = http
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("history");
                assert_eq!(resp.status(), 200);
                let page: Value = resp.json().await.expect("history body");
                for s in page["samples"].as_array().expect("samples") {
                    let id = s["id"].as_str().expect("id").to_string();
                    assert!(id.starts_with(&format!("lt-{run_id}-")), "{id}");
                    assert!(ids.insert(format!("{i}/{id}")), "{id} returned twice");
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
        }
        ids
    }
}

fn count(report: &Value, section: &str, key: &str) -> u64 {
    report[section][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{section}.{key} missing in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_upload_short_run_stores_every_accepted_sample() {
    let server = Server::start().await;
    let report = server
        .loadtest(
            "rest",
            &[
                "rest-upload",
                "--connections",
                "4",
                "--users",
                "2",
                "--batch",
                "250",
                "--duration",
                "2",
            ],
        )
        .await;
    let ok = count(&report, "counts", "requests_ok");
    let accepted = count(&report, "counts", "samples_accepted");
    assert!(ok > 0, "{report}");
    assert_eq!(accepted, ok * 250, "{report}");
    assert_eq!(count(&report, "counts", "samples_duplicates"), 0);
    assert_eq!(count(&report, "counts", "samples_rejected"), 0);
    assert_eq!(count(&report, "counts", "requests_failed"), 0);
    assert!(report["rates"]["requests_per_sec"].as_f64().unwrap() > 0.0);
    assert!(report["latency_ms"]["p99"].as_f64().is_some(), "{report}");
    let stored = server.stored_ids("rest", 2).await;
    assert_eq!(stored.len() as u64, accepted);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_short_run_connects_closes_and_stores_every_acked_sample() {
    let server = Server::start().await;
    let report = server
        .loadtest(
            "churn",
            &[
                "churn",
                "--connections",
                "4",
                "--users",
                "2",
                "--batch",
                "6",
                "--duration",
                "2",
            ],
        )
        .await;
    let connects = count(&report, "counts", "connects");
    assert!(connects > 0, "{report}");
    assert_eq!(count(&report, "counts", "connect_failures"), 0);
    assert_eq!(count(&report, "counts", "cycles_completed"), connects);
    assert_eq!(count(&report, "counts", "closes_clean"), connects);
    assert_eq!(count(&report, "counts", "batches_acked"), connects);
    let accepted = count(&report, "counts", "samples_accepted");
    assert_eq!(accepted, connects * 6, "{report}");
    assert!(report["latency_ms"]["p99"].as_f64().is_some(), "{report}");
    assert!(report["extra_latency_ms"]["ack"]["p99"].as_f64().is_some());
    let stored = server.stored_ids("churn", 2).await;
    assert_eq!(stored.len() as u64, accepted);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_short_run_stores_every_acked_sample() {
    let server = Server::start().await;
    let report = server
        .loadtest(
            "ingest",
            &[
                "ingest",
                "--connections",
                "4",
                "--users",
                "2",
                "--rate",
                "0",
                "--inflight",
                "2",
                "--batch",
                "60",
                "--duration",
                "2",
            ],
        )
        .await;
    let accepted = count(&report, "counts", "samples_accepted");
    assert!(accepted > 0, "{report}");
    assert_eq!(count(&report, "counts", "samples_duplicates"), 0);
    assert_eq!(count(&report, "counts", "batches_unacked"), 0);
    let stored = server.stored_ids("ingest", 2).await;
    assert_eq!(stored.len() as u64, accepted);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_short_run_holds_every_connection() {
    let server = Server::start().await;
    let report = server
        .loadtest(
            "idle",
            &[
                "idle",
                "--connections",
                "50",
                "--users",
                "2",
                "--duration",
                "1",
            ],
        )
        .await;
    assert_eq!(count(&report, "counts", "connections_established"), 50);
    assert_eq!(count(&report, "counts", "connections_open_at_end"), 50);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_short_run_delivers_every_insight_once_in_order() {
    let server = Server::start().await;
    let report = server
        .loadtest(
            "fanout",
            &[
                "fanout",
                "--devices",
                "1",
                "--connections",
                "20",
                "--viewers",
                "3",
                "--stalled",
                "2",
                "--interval-ms",
                "400",
                "--duration",
                "2",
                "--drain-timeout",
                "1",
            ],
        )
        .await;
    // The server lives in this process, on these two test threads: latencies are not
    // asserted, only that every event reached every dashboard exactly once, in order.
    assert_eq!(count(&report, "counts", "dashboards_subscribed"), 20);
    assert_eq!(count(&report, "counts", "shares_created"), 3);
    let events = count(&report, "counts", "events");
    assert!(events >= 3, "{report}");
    assert_eq!(
        count(&report, "counts", "events_matched"),
        events,
        "{report}"
    );
    assert_eq!(count(&report, "counts", "expected_deliveries"), events * 20);
    assert_eq!(
        count(&report, "counts", "delivered"),
        events * 20,
        "{report}"
    );
    for key in [
        "missing",
        "duplicates",
        "out_of_order",
        "unexpected_offsets",
        "lagged_notices",
        "dashboards_lost",
        "deliveries_without_latency",
    ] {
        assert_eq!(count(&report, "counts", key), 0, "{key}: {report}");
    }
    assert_eq!(count(&report, "counts", "stalled_subscribed"), 2);
    assert_eq!(
        report["latency_ms"]["count"].as_u64(),
        Some(events * 20),
        "{report}"
    );
    server.stop().await;
}
