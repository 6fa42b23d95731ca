//! Repeated crashes under load: at least 10 SIGKILL/restart cycles of the real binary while at
//! least 100 sessions stream, each client resending after a restart whatever it had not seen
//! acknowledged (what the protocol asks of devices). In the end every acknowledged sample is
//! stored, none twice, and every resent batch was answered as new or as duplicates.
//!
//! `CLARITY_CRASH_CYCLES` and `CLARITY_CRASH_SESSIONS` lengthen it (defaults 10 and 100).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

use crate::common::process::{signup, start_binary};
use crate::common::{JWT_SECRET, hr, into_json};

/// Accounts the sessions are spread over (several sessions per user, as phone + watch).
const USERS: usize = 10;
const BATCH: usize = 20;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start(dir: &Path) -> (Child, SocketAddr) {
    start_binary(&["serve"], dir, &[("CLARITY_JWT_SECRET", JWT_SECRET)]).await
}

/// What one client knows across crashes.
#[derive(Default)]
struct Client {
    acked: Vec<String>,
    /// Batches sent and not acknowledged: resent after the next restart.
    unacked: BTreeMap<u64, Vec<Value>>,
    next_seq: u64,
    resent: usize,
}

/// Resends the unacknowledged batches, then streams new ones (at most 4 in flight) until the
/// connection dies.
async fn session(
    addr: SocketAddr,
    token: String,
    id: usize,
    mut c: Client,
    progress: Arc<AtomicUsize>,
) -> Client {
    let url = format!("ws://{addr}/api/v1/ws?access_token={token}");
    let Ok((ws, _)) = tokio_tungstenite::connect_async(url).await else {
        return c;
    };
    let (mut tx, mut rx) = ws.split();
    let mut in_flight: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    let mut resend: Vec<(u64, Vec<Value>)> = std::mem::take(&mut c.unacked).into_iter().collect();
    resend.reverse();
    let mut pace = tokio::time::interval(Duration::from_millis(60));
    loop {
        if in_flight.len() < 4 {
            pace.tick().await;
            let (seq, samples, is_resend) = match resend.pop() {
                Some((seq, samples)) => (seq, samples, true),
                None => {
                    let seq = c.next_seq;
                    c.next_seq += 1;
                    let samples = (0..BATCH)
                        .map(|i| {
                            hr(
                                &format!("s{id}-{seq}-{i}"),
                                (seq * BATCH as u64 + i as u64) as i64,
                                60 + (i as i64 % 40),
                            )
                        })
                        .collect();
                    (seq, samples, false)
                }
            };
            let frame = json!({"type": "samples", "seq": seq, "samples": samples}).to_string();
            c.resent += usize::from(is_resend);
            in_flight.insert(seq, samples);
            if tx.send(Message::text(frame)).await.is_err() {
                break;
            }
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(10), rx.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                let Some(seq) = v["seq"].as_u64() else {
                    continue;
                };
                let Some(samples) = in_flight.remove(&seq) else {
                    continue;
                };
                if v["type"] == "ack" {
                    let accepted = v["accepted"].as_u64().unwrap();
                    let duplicates = v["duplicates"].as_u64().unwrap();
                    // A resent batch may have been stored before the crash: then it is
                    // answered as duplicates, never stored again.
                    assert_eq!(accepted + duplicates, BATCH as u64, "{v}");
                    c.acked
                        .extend(samples.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
                    progress.fetch_add(samples.len(), Ordering::Relaxed);
                } else {
                    // store_unavailable under load: resend later, as a device would.
                    c.unacked.insert(seq, samples);
                }
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    c.unacked.extend(in_flight);
    c
}

async fn stored_ids(http: &reqwest::Client, addr: SocketAddr, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("http://{addr}/api/v1/health-data?limit=10000{cursor}");
        let (status, body) =
            into_json(http.get(url).bearer_auth(token).send().await.unwrap()).await;
        assert!(status.is_success(), "{body}");
        ids.extend(
            body["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sigkill_under_a_hundred_sessions_loses_and_doubles_nothing() {
    let cycles = env_or("CLARITY_CRASH_CYCLES", 10);
    let sessions = env_or("CLARITY_CRASH_SESSIONS", 100);
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (mut child, mut addr) = start(dir.path()).await;
    let mut tokens = Vec::new();
    for u in 0..USERS {
        let email = format!("crash{u}@example.com");
        tokens.push(signup(&http, addr, &email).await);
    }
    let mut clients: Vec<Client> = (0..sessions).map(|_| Client::default()).collect();
    let progress = Arc::new(AtomicUsize::new(0));
    for cycle in 0..cycles {
        if cycle > 0 {
            (child, addr) = start(dir.path()).await;
        }
        let tasks: Vec<_> = clients
            .drain(..)
            .enumerate()
            .map(|(i, c)| {
                let token = tokens[i % USERS].clone();
                tokio::spawn(session(addr, token, i, c, progress.clone()))
            })
            .collect();
        // Each life acks at least a batch per session before it is killed (so the kills land
        // while every session streams, however slow the machine), then a little more at a
        // different point of each cycle. A server that stops acking fails the progress check
        // below instead of hanging here.
        let goal = (cycle + 1) * sessions * BATCH;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while progress.load(Ordering::Relaxed) < goal && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(97 * (cycle as u64 % 7))).await;
        child.start_kill().expect("SIGKILL");
        child.wait().await.unwrap();
        for t in tasks {
            clients.push(t.await.unwrap());
        }
    }
    // A last life, to read what survived.
    (child, addr) = start(dir.path()).await;
    let acked_total: usize = clients.iter().map(|c| c.acked.len()).sum();
    let resent: usize = clients.iter().map(|c| c.resent).sum();
    let mut stored_total = 0;
    for (u, token) in tokens.iter().enumerate() {
        let stored = stored_ids(&http, addr, token).await;
        let unique: HashSet<&String> = stored.iter().collect();
        assert_eq!(
            unique.len(),
            stored.len(),
            "user {u}: a sample stored twice"
        );
        for (i, c) in clients.iter().enumerate().filter(|(i, _)| i % USERS == u) {
            let lost: Vec<&String> = c.acked.iter().filter(|id| !unique.contains(id)).collect();
            assert!(
                lost.is_empty(),
                "session {i}: {} acked samples lost, e.g. {:?}",
                lost.len(),
                &lost[..lost.len().min(3)]
            );
        }
        stored_total += stored.len();
    }
    assert!(
        acked_total >= cycles * sessions * BATCH,
        "sessions made progress: {acked_total} acked"
    );
    assert!(
        resent > 0,
        "some batches were in flight at a kill and resent"
    );
    eprintln!(
        "{cycles} SIGKILL cycles x {sessions} sessions: {acked_total} samples acked, {resent} batches resent after a restart, {stored_total} stored, 0 lost, 0 doubled"
    );
    drop(child);
}

/// SIGTERM with sessions that never read (their clients hung): the node still exits within
/// `--shutdown-grace-secs` (plus the store's close), and sessions that do read get
/// `going_away` and 1001 first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_within_the_configured_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (mut child, addr) = start_binary(
        &["serve", "--shutdown-grace-secs", "2"],
        dir.path(),
        &[("CLARITY_JWT_SECRET", JWT_SECRET)],
    )
    .await;
    let token = signup(&http, addr, "drain@example.com").await;
    let url = format!("ws://{addr}/api/v1/ws?access_token={token}");
    // Hung clients: connected, never read again.
    let mut hung = Vec::new();
    for _ in 0..10 {
        hung.push(
            tokio_tungstenite::connect_async(url.clone())
                .await
                .unwrap()
                .0,
        );
    }
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut reader = crate::common::Ws { stream: ws };
    reader.welcome().await;
    let started = std::time::Instant::now();
    crate::common::process::sigterm(&child);
    let (code, frames) = reader.until_close().await;
    assert_eq!(code, 1001);
    assert_eq!(frames.last().unwrap()["type"], "going_away");
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took < Duration::from_secs(8),
        "drained in {took:?}, grace 2 s"
    );
    drop(hung);
}
