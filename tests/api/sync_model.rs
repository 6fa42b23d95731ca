//! Model-based sync test (issue 19): a simulated device drives the real binary through random
//! inserts, versioned upserts, stale re-sends, deletes (of stored and unknown ids),
//! backdated inserts, duplicate retries, pipelined frames touching the same ids, reconnects
//! and kill -9 of the server, on SQLite and on DynamoDB Local. After each run:
//! - the server's history (`GET /api/v1/health-data`) equals the device's model exactly;
//! - the change feed replayed from zero rebuilds the same state;
//! - no current analysis covers a sample that was deleted or replaced after it was made.
//!
//! The device keeps the one rule the protocol asks of it for deletes: it re-creates a deleted
//! id (with a higher version) only after the delete was acknowledged, because a delete that
//! is re-sent after a crash applies again (protocol/README.md, "Edits and deletes").
//!
//! `CLARITY_SYNC_SEED` replays a run; `CLARITY_SYNC_STEPS` (default 300) and
//! `CLARITY_SYNC_KILLS` (default 3) lengthen it. Seed, steps and kills are printed.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

use crate::common::process::{signup, start_binary};
use crate::common::{Backend, JWT_SECRET, into_json, yesterday};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the device holds as true for one id.
#[derive(Debug, Clone, PartialEq)]
struct Live {
    kind: &'static str,
    start_ms: i64,
    value: i64,
    version: Option<i64>,
}

/// The store's rules, applied to the device's own copy (store/changes.rs).
#[derive(Default)]
struct Model {
    live: BTreeMap<String, Live>,
    /// Deleted ids and the version their tombstone keeps (-1: none).
    tombs: HashMap<String, i64>,
}

impl Model {
    fn put(&mut self, id: &str, s: Live) {
        let v = s.version.unwrap_or(-1);
        if let Some(old) = self.live.get(id) {
            if s.version.is_some() && v > old.version.unwrap_or(-1) {
                self.live.insert(id.to_owned(), s);
            }
        } else if let Some(&t) = self.tombs.get(id) {
            if s.version.is_some() && v > t {
                self.tombs.remove(id);
                self.live.insert(id.to_owned(), s);
            }
        } else {
            self.live.insert(id.to_owned(), s);
        }
    }

    fn delete(&mut self, id: &str) {
        if let Some(old) = self.live.remove(id) {
            self.tombs.insert(id.to_owned(), old.version.unwrap_or(-1));
        }
    }
}

/// A frame the device sent, kept until acked so it can be re-sent after a crash.
#[derive(Clone)]
struct Sent {
    seq: u64,
    frame: Value,
    /// Ids this frame deletes (the re-create rule waits for their ack).
    deletes: Vec<String>,
    /// Start times of the stored samples this frame replaces or deletes (in the model).
    removes: Vec<i64>,
}

struct Device {
    rng: StdRng,
    model: Model,
    next_id: u64,
    next_seq: u64,
    unacked: VecDeque<Sent>,
    /// Deleted ids whose delete is acknowledged: these may be re-created.
    deleted_acked: HashSet<String>,
    /// Ids with a delete in flight: not re-created until it is acked.
    deleting: HashSet<String>,
    last_acked: Option<Sent>,
    /// (wall time of the ack, start of the old sample) for each delete/replace acked.
    removals: Vec<(chrono::DateTime<chrono::Utc>, i64)>,
    base_ms: i64,
}

impl Device {
    fn new(seed: u64) -> Device {
        Device {
            rng: StdRng::seed_from_u64(seed),
            model: Model::default(),
            next_id: 0,
            next_seq: 1,
            unacked: VecDeque::new(),
            deleted_acked: HashSet::new(),
            deleting: HashSet::new(),
            last_acked: None,
            removals: Vec::new(),
            base_ms: (yesterday() - chrono::Duration::days(4)).timestamp_millis(),
        }
    }

    fn sample_json(id: &str, s: &Live) -> Value {
        let start = chrono::DateTime::from_timestamp_millis(s.start_ms)
            .unwrap()
            .to_rfc3339();
        let mut v = json!({"id": id, "kind": s.kind, "start": start, "value": s.value});
        if let Some(ver) = s.version {
            v["version"] = json!(ver);
        }
        v
    }

    fn value_of(&mut self, kind: &str) -> i64 {
        if kind == "heart_rate" {
            self.rng.random_range(45..170)
        } else {
            self.rng.random_range(0..900)
        }
    }

    fn random_live(&mut self, version: Option<i64>) -> Live {
        // Five days of minutes, any order: backdated inserts come for free.
        let minute = self.rng.random_range(0..5 * 1440);
        let kind = if self.rng.random_bool(0.7) {
            "activity_count"
        } else {
            "heart_rate"
        };
        let value = self.value_of(kind);
        Live {
            kind,
            start_ms: self.base_ms + minute * 60_000,
            value,
            version,
        }
    }

    /// The next frame: its effect is applied to the model now (frames apply in send order).
    fn next_frame(&mut self) -> Sent {
        let seq = self.next_seq;
        self.next_seq += 1;
        if !self.model.live.is_empty() && self.rng.random_bool(0.12) {
            // Delete 1-3 stored ids, sometimes with an unknown one.
            let ids: Vec<String> = self.model.live.keys().cloned().collect();
            let mut del: Vec<String> = (0..self.rng.random_range(1..=3))
                .map(|_| ids[self.rng.random_range(0..ids.len())].clone())
                .collect();
            if self.rng.random_bool(0.3) {
                del.push(format!("never-{seq}"));
            }
            del.sort();
            del.dedup();
            let mut removes = Vec::new();
            for id in &del {
                if let Some(old) = self.model.live.get(id) {
                    removes.push(old.start_ms);
                }
                self.model.delete(id);
                self.deleting.insert(id.clone());
                self.deleted_acked.remove(id);
            }
            return Sent {
                seq,
                frame: json!({"type": "delete", "seq": seq, "ids": del}),
                deletes: del,
                removes,
            };
        }
        let n = self.rng.random_range(1..=6);
        let mut samples = Vec::with_capacity(n);
        let mut removes = Vec::new();
        for _ in 0..n {
            let roll: f64 = self.rng.random();
            let (id, s) = if roll < 0.2 && !self.model.live.is_empty() {
                // Upsert: a higher version of a stored id (sometimes a stale, lower one).
                let ids: Vec<String> = self.model.live.keys().cloned().collect();
                let id = ids[self.rng.random_range(0..ids.len())].clone();
                let old = self.model.live[&id].clone();
                let v = old.version.unwrap_or(0);
                let version = if self.rng.random_bool(0.8) {
                    v + self.rng.random_range(1..=3)
                } else {
                    (v - 1).max(0)
                };
                let mut s = self.random_live(Some(version));
                if self.rng.random_bool(0.5) {
                    // Same reading, corrected value.
                    s.kind = old.kind;
                    s.start_ms = old.start_ms;
                    s.value = self.value_of(old.kind);
                }
                (id, s)
            } else if roll < 0.25 && !self.deleted_acked.is_empty() {
                // Re-create a deleted id (its delete is acked) with a higher version, or try
                // a stale re-send of it that must stay deleted.
                let ids: Vec<String> = self.deleted_acked.iter().cloned().collect();
                let id = ids[self.rng.random_range(0..ids.len())].clone();
                let t = self.model.tombs.get(&id).copied().unwrap_or(-1);
                let version = if self.rng.random_bool(0.6) {
                    Some(t.max(0) + 1)
                } else if self.rng.random_bool(0.5) {
                    Some(t.max(0))
                } else {
                    None
                };
                let s = self.random_live(version);
                (id, s)
            } else {
                self.next_id += 1;
                let version = self.rng.random_bool(0.5).then_some(1);
                (format!("s{}", self.next_id), self.random_live(version))
            };
            if self.deleting.contains(&id) {
                continue;
            }
            let old = self.model.live.get(&id).cloned();
            self.model.put(&id, s.clone());
            if let Some(old) = old
                && self.model.live.get(&id) != Some(&old)
            {
                removes.push(old.start_ms);
            }
            if self.model.live.contains_key(&id) {
                self.deleted_acked.remove(&id);
            }
            samples.push(Self::sample_json(&id, &s));
        }
        if samples.is_empty() {
            self.next_id += 1;
            let id = format!("s{}", self.next_id);
            let s = self.random_live(None);
            self.model.put(&id, s.clone());
            samples.push(Self::sample_json(&id, &s));
        }
        Sent {
            seq,
            frame: json!({"type": "samples", "seq": seq, "samples": samples}),
            deletes: Vec::new(),
            removes,
        }
    }

    fn acked(&mut self, seq: u64) {
        while let Some(front) = self.unacked.front() {
            if front.seq > seq {
                break;
            }
            let sent = self.unacked.pop_front().unwrap();
            let now = chrono::Utc::now();
            self.removals.extend(sent.removes.iter().map(|&t| (now, t)));
            for id in &sent.deletes {
                self.deleting.remove(id);
                if self.model.tombs.contains_key(id) {
                    self.deleted_acked.insert(id.clone());
                }
            }
            self.last_acked = Some(sent);
        }
    }
}

pub(crate) async fn start(dir: &Path, backend: &Backend) -> (Child, SocketAddr) {
    let mut env = backend.env();
    env.push(("CLARITY_JWT_SECRET", JWT_SECRET.into()));
    // One token for the whole run, however long CLARITY_SYNC_STEPS makes it.
    env.push(("CLARITY_ACCESS_TOKEN_TTL_SECS", "86400".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    start_binary(&["serve"], dir, &env).await
}

/// A migrated store in `dir`, the server on it, and the access token of a new account.
pub(crate) async fn started(
    dir: &Path,
    backend: &Backend,
    email: &str,
) -> (Child, SocketAddr, String) {
    backend.migrate(&backend.config(dir)).await;
    let (child, addr) = start(dir, backend).await;
    let token = signup(&reqwest::Client::new(), addr, email).await;
    (child, addr, token)
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect(addr: SocketAddr, token: &str) -> Option<Socket> {
    let url = format!("ws://{addr}/api/v1/ws?access_token={token}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
    // welcome
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "welcome" {
                    return Some(ws);
                }
            }
            _ => return None,
        }
    }
}

/// Reads frames until `seq` is acked; false when the connection died first.
async fn until_acked(ws: &mut Socket, dev: &mut Device, seq: u64) -> bool {
    while dev.unacked.front().is_some_and(|f| f.seq <= seq) {
        let msg = match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(m))) => m,
            _ => return false,
        };
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str().unwrap_or("") {
            "ack" => {
                let acked = v["seq"].as_u64().unwrap();
                let rejected = v["rejected"].as_array().map_or(0, Vec::len);
                assert_eq!(rejected, 0, "a valid frame was rejected: {v}");
                dev.acked(acked);
            }
            "error" => {
                // Rate limits and a store that is briefly unavailable are answered by resending;
                // an analysis error (no data yet) answers an `analyze`, not a write.
                let code = v["code"].as_str().unwrap_or("");
                if matches!(code, "rate_limited" | "store_unavailable" | "overloaded") {
                    return false;
                }
                assert!(
                    v["seq"]
                        .as_u64()
                        .is_none_or(|s| !dev.unacked.iter().any(|f| f.seq == s)),
                    "a valid frame was refused: {v}"
                );
            }
            _ => {}
        }
    }
    true
}

async fn feed_replay(http: &reqwest::Client, addr: SocketAddr, token: &str) -> Model {
    let mut model = Model::default();
    let mut since = String::from("0");
    let mut last_seq = 0;
    loop {
        let resp = http
            .get(format!(
                "http://{addr}/api/v1/changes?since={since}&limit=1000"
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let (status, body) = into_json(resp).await;
        assert_eq!(status, 200, "{body}");
        for c in body["changes"].as_array().unwrap() {
            let seq = c["seq"].as_u64().unwrap();
            assert!(
                seq > last_seq,
                "change seqs must increase: {seq} after {last_seq}"
            );
            last_seq = seq;
            match c["op"].as_str().unwrap() {
                "upsert" => {
                    let (id, s) = live_of(&c["sample"]);
                    model.tombs.remove(&id);
                    model.live.insert(id, s);
                }
                "delete" => {
                    let id = c["id"].as_str().unwrap().to_owned();
                    model.live.remove(&id);
                }
                other => panic!("unknown op {other}"),
            }
        }
        since = body["next_token"].as_str().unwrap().to_owned();
        if !body["more"].as_bool().unwrap() {
            return model;
        }
    }
}

fn live_of(v: &Value) -> (String, Live) {
    let kind = match v["kind"].as_str().unwrap() {
        "activity_count" => "activity_count",
        "heart_rate" => "heart_rate",
        other => panic!("unexpected kind {other}"),
    };
    let start = chrono::DateTime::parse_from_rfc3339(v["start"].as_str().unwrap()).unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        Live {
            kind,
            start_ms: start.timestamp_millis(),
            value: v["value"].as_f64().unwrap() as i64,
            version: v["version"].as_i64(),
        },
    )
}

async fn history(http: &reqwest::Client, addr: SocketAddr, token: &str) -> BTreeMap<String, Live> {
    let mut out = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("http://{addr}/api/v1/health-data?limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let resp = http.get(url).bearer_auth(token).send().await.unwrap();
        let (status, body) = into_json(resp).await;
        assert_eq!(status, 200, "{body}");
        for s in body["samples"].as_array().unwrap() {
            let (id, live) = live_of(s);
            assert!(out.insert(id.clone(), live).is_none(), "{id} listed twice");
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// Every current (not superseded) analysis: made after the last removal inside its window.
async fn check_analyses(
    http: &reqwest::Client,
    addr: SocketAddr,
    token: &str,
    removals: &[(chrono::DateTime<chrono::Utc>, i64)],
) -> Result<usize, String> {
    let mut checked = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("http://{addr}/api/v1/analyses?limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let resp = http.get(url).bearer_auth(token).send().await.unwrap();
        let (status, body) = into_json(resp).await;
        assert_eq!(status, 200, "{body}");
        for a in body["analyses"].as_array().unwrap() {
            if a.get("superseded_by").is_some_and(|s| !s.is_null()) {
                continue;
            }
            checked += 1;
            let made = chrono::DateTime::parse_from_rfc3339(a["created_at"].as_str().unwrap())
                .unwrap()
                .with_timezone(&chrono::Utc);
            let from = chrono::DateTime::parse_from_rfc3339(a["window"]["from"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            let to = chrono::DateTime::parse_from_rfc3339(a["window"]["to"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            for (at, start_ms) in removals {
                // Only removals acked before the analysis was made; a margin of a second
                // for the ack leaving after the commit.
                if *start_ms >= from && *start_ms < to && made + chrono::Duration::seconds(1) < *at
                {
                    return Err(format!(
                        "analysis {} (made {made}) is current but a sample at {start_ms} in \
                         its window was removed at {at}",
                        a["analysis_id"]
                    ));
                }
            }
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(checked),
        }
    }
}

async fn run(backend: Backend) {
    let seed = env_or("CLARITY_SYNC_SEED", rand::random::<u32>() as u64);
    let steps = env_or("CLARITY_SYNC_STEPS", 300);
    let kills = env_or("CLARITY_SYNC_KILLS", 3);
    println!(
        "sync model: seed {seed}, {steps} steps, {kills} kills (CLARITY_SYNC_SEED={seed} replays it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut addr, token) = started(dir.path(), &backend, "model@example.com").await;
    let http = reqwest::Client::new();

    let mut dev = Device::new(seed);
    let kill_at: HashSet<u64> = (0..kills)
        .map(|_| dev.rng.random_range(1..steps.max(2)))
        .collect();
    let mut ws = connect(addr, &token).await.expect("first connection");
    let mut step = 0;
    let mut analyzes = 0;
    while step < steps {
        step += 1;
        if kill_at.contains(&step) {
            // kill -9 with frames in flight, restart, resend whatever was not acked.
            let burst = dev.rng.random_range(1..=4);
            for _ in 0..burst {
                let f = dev.next_frame();
                let _ = ws.send(Message::text(f.frame.to_string())).await;
                dev.unacked.push_back(f);
            }
            child.start_kill().unwrap();
            child.wait().await.unwrap();
            (child, addr) = start(dir.path(), &backend).await;
            ws = reconnect(addr, &token, &mut dev).await;
            continue;
        }
        let roll: f64 = dev.rng.random();
        if roll < 0.05 {
            // Reconnect: unacked frames are re-sent in order.
            let _ = ws.close(None).await;
            ws = reconnect(addr, &token, &mut dev).await;
            continue;
        }
        if roll < 0.08
            && let Some(last) = dev.last_acked.clone()
            && dev.unacked.is_empty()
        {
            // A retry of the last acked frame (its ack was "lost"): changes nothing.
            let mut f = last.frame.clone();
            let seq = dev.next_seq;
            dev.next_seq += 1;
            f["seq"] = json!(seq);
            let sent = Sent {
                seq,
                frame: f,
                deletes: Vec::new(),
                removes: Vec::new(),
            };
            let _ = ws.send(Message::text(sent.frame.to_string())).await;
            dev.unacked.push_back(sent);
            if !until_acked(&mut ws, &mut dev, seq).await {
                ws = reconnect(addr, &token, &mut dev).await;
            }
            continue;
        }
        if roll < 0.1 {
            let _ = ws
                .send(Message::text(json!({"type": "analyze"}).to_string()))
                .await;
            analyzes += 1;
            continue;
        }
        // 1-4 frames pipelined, then wait for the last ack.
        let burst = dev.rng.random_range(1..=4);
        let mut last = 0;
        for _ in 0..burst {
            let f = dev.next_frame();
            last = f.seq;
            let _ = ws.send(Message::text(f.frame.to_string())).await;
            dev.unacked.push_back(f);
        }
        if !until_acked(&mut ws, &mut dev, last).await {
            ws = reconnect(addr, &token, &mut dev).await;
        }
    }
    // Everything acked, then compare.
    if !dev.unacked.is_empty() {
        ws = reconnect(addr, &token, &mut dev).await;
    }
    let _ = ws.close(None).await;
    let stored = history(&http, addr, &token).await;
    let diff: Vec<_> = dev
        .model
        .live
        .iter()
        .filter(|(id, s)| stored.get(*id) != Some(*s))
        .map(|(id, s)| format!("{id}: device {s:?}, server {:?}", stored.get(id)))
        .chain(
            stored
                .keys()
                .filter(|id| !dev.model.live.contains_key(*id))
                .map(|id| format!("{id}: on the server only")),
        )
        .take(10)
        .collect();
    assert!(
        diff.is_empty(),
        "seed {seed}: history differs from the device:\n{}",
        diff.join("\n")
    );
    let replayed = feed_replay(&http, addr, &token).await;
    assert_eq!(
        replayed.live, stored,
        "seed {seed}: the change feed from 0 rebuilds the history"
    );
    // Recomputations run after the acks: give the last ones time to land.
    let mut tries = 0;
    let checked = loop {
        tries += 1;
        match check_analyses(&http, addr, &token, &dev.removals).await {
            Ok(n) => break n,
            Err(_) if tries < 40 => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(e) => panic!("seed {seed}: {e}"),
        }
    };
    println!(
        "sync model: seed {seed}: {} samples, {} deleted ids, {} analyze requests, {checked} current analyses checked",
        stored.len(),
        dev.model.tombs.len(),
        analyzes
    );
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

/// Connects (retrying while the server restarts) and re-sends every unacked frame in order,
/// waiting for their acks.
async fn reconnect(addr: SocketAddr, token: &str, dev: &mut Device) -> Socket {
    for _ in 0..50 {
        let Some(mut ws) = connect(addr, token).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let pending: Vec<Sent> = dev.unacked.iter().cloned().collect();
        let Some(last) = pending.last().map(|f| f.seq) else {
            return ws;
        };
        let mut ok = true;
        for f in &pending {
            if ws.send(Message::text(f.frame.to_string())).await.is_err() {
                ok = false;
                break;
            }
        }
        if ok && until_acked(&mut ws, dev, last).await {
            return ws;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not reconnect and resend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_and_the_server_agree_after_random_edits_deletes_and_crashes_on_sqlite() {
    run(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_and_the_server_agree_after_random_edits_deletes_and_crashes_on_dynamodb() {
    match Backend::dynamodb() {
        Some(b) => run(b).await,
        None => eprintln!(
            "skipped: CLARITY_TEST_DYNAMODB is not set (scripts/test starts DynamoDB Local)"
        ),
    }
}
