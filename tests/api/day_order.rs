//! Day-complete analyses see whole days, whatever order the store finishes batches in flight.
//!
//! A client keeps 8 batches in flight. DynamoDB stores them concurrently, so the batch that
//! completes a day can be stored before an earlier one; the day's analysis must still see
//! every batch sent before. [`Reordering`] makes that interleaving certain: it holds the
//! last batch of each day back until the next day's first batch is stored. The same streams
//! run on SQLite, on DynamoDB Local (held and natural order), and across two nodes.
//! Late data for an analysed day analyses that day again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};
use clarity::app::App;
use clarity::config::Config;
use clarity::store::{SampleOp, Store, StoreResult, WriteResult};
use serde_json::{Value, json};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::common::wrap::{Intercept, wrap};
use crate::common::{Backend, JWT_SECRET, TestApp, Ws, serve};

const DAYS: i64 = 5;
const BATCH: usize = 240;
const IN_FLIGHT: usize = 8;
/// Longest a held batch waits (only reached if the batch meant to release it never comes).
const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// Delays the write of each batch holding a `holds` id until the batch holding the paired
/// release id has been stored: the completion order of concurrent DynamoDB writes, made
/// certain.
struct Reordering {
    holds: HashMap<String, Arc<Notify>>,
    releases: HashMap<String, Arc<Notify>>,
}

impl Reordering {
    fn new(pairs: &[(String, String)]) -> Reordering {
        let mut holds = HashMap::new();
        let mut releases = HashMap::new();
        for (hold, release) in pairs {
            let gate = Arc::new(Notify::new());
            holds.insert(hold.clone(), gate.clone());
            releases.insert(release.clone(), gate);
        }
        Reordering { holds, releases }
    }
}

#[async_trait]
impl Intercept for Reordering {
    async fn write_samples(
        &self,
        inner: &dyn Store,
        user: Uuid,
        ops: Vec<SampleOp>,
    ) -> StoreResult<WriteResult> {
        let hold = ops.iter().find_map(|s| self.holds.get(s.id())).cloned();
        let release = ops.iter().find_map(|s| self.releases.get(s.id())).cloned();
        if let Some(gate) = hold {
            // A Notify keeps the permit if the release came first.
            let _ = tokio::time::timeout(HOLD_LIMIT, gate.notified()).await;
        }
        let stored = inner.write_samples(user, ops).await;
        if let Some(gate) = release {
            gate.notify_one();
        }
        stored
    }
}

/// Minute-by-minute activity from local midnight `DAYS + 1` days ago, in UTC+02:00:
/// `DAYS` whole days and the first minute of the next, which completes the last of them.
struct Stream {
    midnight: DateTime<FixedOffset>,
    prefix: String,
}

impl Stream {
    fn new() -> Stream {
        let tz = FixedOffset::east_opt(2 * 3600).unwrap();
        let today = Utc::now().with_timezone(&tz).date_naive();
        let start = today - chrono::Days::new(DAYS as u64 + 1);
        Stream {
            midnight: start
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_local_timezone(tz)
                .unwrap(),
            prefix: format!("m{}-", &Uuid::new_v4().simple().to_string()[..8]),
        }
    }

    fn id(&self, minute: i64) -> String {
        format!("{}{minute}", self.prefix)
    }

    fn at(&self, minute: i64) -> DateTime<FixedOffset> {
        self.midnight + chrono::Duration::minutes(minute)
    }

    fn batches(&self) -> Vec<Vec<Value>> {
        let minutes: Vec<i64> = (0..=DAYS * 1440).collect();
        minutes
            .chunks(BATCH)
            .map(|c| {
                c.iter()
                    .map(|m| {
                        json!({"id": self.id(*m), "kind": "activity_count",
                               "start": self.at(*m).to_rfc3339(), "value": 10 + m % 50})
                    })
                    .collect()
            })
            .collect()
    }

    /// For each day, the batch with its last minutes is held until the next day's first
    /// batch (the one that completes the day) has been stored.
    fn reorderings(&self) -> Vec<(String, String)> {
        (1..=DAYS)
            .map(|d| (self.id(d * 1440 - 1), self.id(d * 1440)))
            .collect()
    }
}

fn lift_limits(config: &mut Config) {
    config.limits.max_samples_per_sec = 1_000_000;
    config.limits.max_user_samples_per_sec = 1_000_000;
    config.limits.max_inflight_batches = IN_FLIGHT;
    // What is tested is the order of analyses, not store failures: a batch refused as
    // `store_unavailable` (DynamoDB Local timing out on a loaded machine) would arrive late
    // and rightly analyse its day again.
    config.store.timeout_ms = 30_000;
}

/// A server on `backend` whose store is wrapped by `wrap`.
async fn spawn_wrapped(
    backend: &Backend,
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = backend.config(dir.path());
    backend.migrate(&config).await;
    lift_limits(&mut config);
    let store = clarity::app::open_store(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .unwrap();
    let app = App::with_store(config, wrap(store)).await.unwrap();
    serve(Arc::new(app), listener, dir).await
}

/// Sends every batch with up to `IN_FLIGHT` unacknowledged; returns the analyses pushed
/// meanwhile.
async fn send_in_flight(ws: &mut Ws, batches: &[Vec<Value>]) -> Vec<Value> {
    let mut pushed = Vec::new();
    let mut next = 0;
    let mut acked = 0;
    while acked < batches.len() {
        while next < batches.len() && next - acked < IN_FLIGHT {
            ws.send(&json!({"type": "samples", "seq": next, "samples": batches[next]}))
                .await;
            next += 1;
        }
        let v = ws.recv_within(Duration::from_secs(60)).await;
        match v["type"].as_str() {
            Some("ack") => {
                assert_eq!(v["seq"], acked, "acks in frame order: {v}");
                assert_eq!(v["accepted"], batches[acked].len(), "{v}");
                acked += 1;
            }
            Some("analysis") => pushed.push(v),
            Some("insight" | "insight_delta" | "insight_failed") => {}
            _ => panic!("unexpected frame {v}"),
        }
    }
    pushed
}

/// The stored day-complete analyses of the caller, once there are at least `n` (bounded).
async fn day_analyses(app: &TestApp, token: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = app.get("/api/v1/analyses?limit=100", Some(token)).await;
        assert_eq!(status, 200, "{body}");
        let days: Vec<Value> = body["analyses"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["trigger"] == "day_complete")
            .cloned()
            .collect();
        if days.len() >= n || tokio::time::Instant::now() > deadline {
            return days;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every day-complete analysis ends at a local midnight and holds every minute before it.
fn assert_whole_days(stream: &Stream, analyses: &[Value], what: &str) {
    for a in analyses {
        let to = DateTime::parse_from_rfc3339(a["window"]["to"].as_str().unwrap()).unwrap();
        let minutes = (to - stream.midnight).num_minutes();
        assert!(
            minutes > 0 && minutes % 1440 == 0,
            "{what}: a day analysis ending at {to}, not at a midnight of the stream \
             (minutes_present {}): it ran on an incomplete day",
            a["minutes_present"]
        );
        assert_eq!(
            a["minutes_present"], minutes,
            "{what}: the analysis of the day ending {to} missed minutes acked before the batch \
             that completed it"
        );
    }
}

async fn streams_whole_days(backend: Backend, reorder: bool) {
    let stream = Stream::new();
    let pairs = if reorder {
        stream.reorderings()
    } else {
        Vec::new()
    };
    let app = spawn_wrapped(&backend, |inner| wrap(inner, Reordering::new(&pairs))).await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let pushed = send_in_flight(&mut ws, &stream.batches()).await;
    let stored = day_analyses(&app, &user.access, DAYS as usize).await;
    assert_eq!(
        stored.len(),
        DAYS as usize,
        "one analysis per completed day: {stored:?}"
    );
    assert_whole_days(&stream, &stored, "stored");
    assert_whole_days(&stream, &pushed, "pushed");

    // Late data for an analysed day (a wearable's minute replaces the unnamed source's)
    // analyses that day again.
    let minute = 1440 + 600;
    let late = json!({"id": format!("{}late", stream.prefix), "kind": "activity_count",
                      "start": stream.at(minute).to_rfc3339(), "value": 4321, "source": "watch"});
    ws.send(&json!({"type": "samples", "seq": 1000, "samples": [late]}))
        .await;
    let second_day_end = stream.at(2 * 1440);
    let before = stored
        .iter()
        .find(|a| {
            DateTime::parse_from_rfc3339(a["window"]["to"].as_str().unwrap()).unwrap()
                == second_day_end
        })
        .expect("the second day was analysed")
        .clone();
    let again = day_analyses(&app, &user.access, DAYS as usize + 1).await;
    let redone: Vec<&Value> = again
        .iter()
        .filter(|a| {
            a["analysis_id"] != before["analysis_id"]
                && DateTime::parse_from_rfc3339(a["window"]["to"].as_str().unwrap()).unwrap()
                    == second_day_end
        })
        .collect();
    assert_eq!(
        redone.len(),
        1,
        "late data for the second day analyses it again: {again:?}"
    );
    assert_whole_days(&stream, &again, "after late data");
    let sources = &redone[0]["activity"]["sources"];
    assert!(
        sources
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["source"] == "watch"),
        "the new analysis includes the late minute: {sources}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_day_analyses_see_every_earlier_batch_when_the_store_reorders() {
    streams_whole_days(Backend::Sqlite, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_day_analyses_see_every_earlier_batch_when_the_store_reorders() {
    if let Some(b) = Backend::dynamodb() {
        streams_whole_days(b, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_day_analyses_see_every_earlier_batch_with_8_in_flight() {
    if let Some(b) = Backend::dynamodb() {
        streams_whole_days(b, false).await;
    }
}

/// Two nodes sharing the store and a bus: the client streams to the node that does not own
/// the window, which forwards to the owner; the owner's analyses still see whole days.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_day_analyses_see_every_earlier_batch_when_the_store_reorders() {
    let stream = Stream::new();
    let shared = tempfile::tempdir().unwrap();
    let backend = Backend::Sqlite;
    let inner = backend.open(shared.path()).await;
    let store = wrap(inner, Reordering::new(&stream.reorderings()));
    let net = clarity::bus::memory::Net::new();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        config.auth.jwt_secret = Some(JWT_SECRET.to_string().into());
        lift_limits(&mut config);
        let bus = Arc::new(clarity::bus::memory::MemoryBus::new(
            Uuid::new_v4(),
            net.clone(),
        ));
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .unwrap();
        let app = App::with_parts(config, store.clone(), bus).await.unwrap();
        nodes.push(serve(Arc::new(app), listener, dir).await);
    }
    let user = nodes[0].user().await;
    // The first node owns the window: a session there claims it.
    let mut owner_ws = nodes[0].ws(&user.access).await;
    owner_ws.welcome().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !nodes[0].app.ownership.owns(user.user_id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 0 claims the window"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ws = nodes[1].ws(&user.access).await;
    ws.welcome().await;
    send_in_flight(&mut ws, &stream.batches()).await;
    let stored = day_analyses(&nodes[1], &user.access, DAYS as usize).await;
    assert_eq!(
        stored.len(),
        DAYS as usize,
        "one analysis per completed day: {stored:?}"
    );
    assert_whole_days(&stream, &stored, "stored (two nodes)");
    assert!(!nodes[1].app.ownership.owns(user.user_id));
    drop(owner_ws);
}
