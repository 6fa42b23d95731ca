//! Acceptance (issue 19): a second device follows the change feed over the WebSocket through
//! disconnects and catches up to the same state, on one node and across two; a device that
//! stops reading neither slows the writer nor loses a change.
//!
//! Device A inserts over the WebSocket; its versioned re-sends (updates) and deletions go
//! through the store and are announced to the feed as ingest announces writes
//! (`change_feed::store_write`), until this branch's inputs carry them.

use std::collections::{BTreeMap, BTreeSet};

use clarity::store::SampleOp;
use serde_json::{Value, json};

use crate::change_feed::{
    apply, head, history, next_change, sample, store_write, stored, subscribe,
};
use crate::common::{Session, TestApp, Ws, spawn_app, spawn_nodes};

/// A small deterministic generator (the run is the same for a seed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Device B: its copy of the samples, where it stands and every offset it applied.
struct Follower {
    ws: Ws,
    model: BTreeMap<String, Value>,
    last: u64,
    epoch: String,
    seen: Vec<u64>,
    reconnects: usize,
}

impl Follower {
    async fn start(node: &TestApp, user: &Session) -> Follower {
        let mut ws = node.ws(&user.access).await;
        ws.welcome().await;
        let sub = subscribe(&mut ws, Some(0), None).await;
        assert_eq!(sub["type"], "subscribed", "{sub}");
        Follower {
            ws,
            model: BTreeMap::new(),
            last: 0,
            epoch: sub["epoch"].as_str().unwrap().to_owned(),
            seen: Vec::new(),
            reconnects: 0,
        }
    }

    /// Applies the next change; offsets must only ever grow (no duplicate, no going back).
    async fn step(&mut self) {
        let c = next_change(&mut self.ws).await;
        let offset = c["offset"].as_u64().unwrap();
        assert!(
            offset > self.last,
            "offset {offset} after {} (duplicate or out of order): {c}",
            self.last
        );
        self.last = offset;
        self.seen.push(offset);
        apply(&mut self.model, &c);
    }

    /// Drops the connection (whatever is in flight is lost) and resumes on `node` from the
    /// last offset applied.
    async fn reconnect(&mut self, node: &TestApp, user: &Session) {
        let mut ws = node.ws(&user.access).await;
        ws.welcome().await;
        let sub = subscribe(&mut ws, Some(self.last), Some(&self.epoch)).await;
        assert_eq!(sub["type"], "subscribed", "{sub}");
        assert_eq!(sub["epoch"].as_str(), Some(self.epoch.as_str()));
        self.ws = ws;
        self.reconnects += 1;
    }
}

async fn send_acked(ws: &mut Ws, seq: u64, samples: Vec<Value>) -> Value {
    ws.send(&json!({"type": "samples", "seq": seq, "samples": samples}))
        .await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(ack["seq"], seq, "{ack}");
    ack
}

/// Device A writes `rounds` rounds on `nodes[0]` (inserts with a duplicate re-send over the
/// WebSocket; updates, deletions and a re-insert of a deleted id with a higher version
/// through the store); device B reads part of the changes after each round and drops its
/// connection every third round, resuming on the next node. At the end B has applied every
/// change the store lists, each once and in order, and its copy is the server's history.
async fn second_device(nodes: &[TestApp], seed: u64, rounds: u64) {
    eprintln!(
        "second-device sync: seed {seed}, {rounds} rounds, {} node(s)",
        nodes.len()
    );
    let user = nodes[0].user().await;
    let mut rng = Rng(seed | 1);
    let mut a = nodes[0].ws(&user.access).await;
    a.welcome().await;
    let mut b = Follower::start(&nodes[nodes.len() - 1], &user).await;
    let (mut alive, mut deleted): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    let mut version = 0;
    let mut minute = 0;
    for round in 0..rounds {
        let mut batch = Vec::new();
        for _ in 0..4 {
            let id = format!("r{round}-{minute}");
            batch.push(sample(&id, minute, 50 + (minute % 60)));
            alive.push(id);
            minute += 1;
        }
        if let Some(old) = batch.first().cloned() {
            batch.push(old); // the same id twice in a frame: the second is a duplicate
        }
        let ack = send_acked(&mut a, round + 1, batch).await;
        assert_eq!(
            (&ack["accepted"], &ack["duplicates"]),
            (&json!(4), &json!(1)),
            "{ack}"
        );

        version += 1;
        let mut ops = Vec::new();
        for _ in 0..2 {
            let id = alive[rng.below(alive.len() as u64) as usize].clone();
            let m = rng.below(600) as i64;
            ops.push(SampleOp::Put(stored(
                &sample(&id, m, 100 + m % 50),
                version,
            )));
        }
        let gone = alive.swap_remove(rng.below(alive.len() as u64) as usize);
        ops.push(SampleOp::Delete(gone.clone()));
        deleted.push(gone);
        if round % 4 == 3 {
            // A deleted id comes back only with a version above its tombstone's.
            let back = deleted.remove(0);
            version += 1;
            ops.push(SampleOp::Put(stored(&sample(&back, 0, 42), version)));
            alive.push(back);
        }
        store_write(&nodes[0], user.user_id, ops).await;

        // B reads some of what is there (maybe none), maybe drops the connection mid-way.
        let target = head(&nodes[0], user.user_id).await;
        let pending = target - b.last;
        for _ in 0..rng.below(pending + 1).min(pending) {
            if b.last >= target {
                break;
            }
            b.step().await;
        }
        if round % 3 == 2 {
            let node = &nodes[(b.reconnects + 1) % nodes.len()];
            b.reconnect(node, &user).await;
        }
    }
    // The last write is a WebSocket insert: B gets it only from ingest's own notice.
    let ack = send_acked(&mut a, rounds + 1, vec![sample("last", minute, 77)]).await;
    assert_eq!(ack["accepted"], 1, "{ack}");
    let target = head(&nodes[0], user.user_id).await;
    while b.last < target {
        b.step().await;
    }
    assert!(b.reconnects >= 3, "B went through several disconnects");
    assert_eq!(
        b.model,
        history(&nodes[0], &user.access).await,
        "B's copy is the server's state"
    );
    // No change missing: every change the store still lists was applied by B.
    let seen: BTreeSet<u64> = b.seen.iter().copied().collect();
    let mut listed = Vec::new();
    let mut after = 0;
    loop {
        let page = nodes[0]
            .app
            .store
            .changes(user.user_id, after, 500)
            .await
            .unwrap();
        listed.extend(page.changes.iter().map(|c| c.seq));
        match page.changes.last() {
            Some(c) if page.more => after = c.seq,
            _ => break,
        }
    }
    let missing: Vec<u64> = listed
        .iter()
        .filter(|s| !seen.contains(s))
        .copied()
        .collect();
    assert!(missing.is_empty(), "changes B never got: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_device_follows_the_feed_through_disconnects_and_catches_up() {
    let app = spawn_app().await;
    second_device(std::slice::from_ref(&app), 0x5eed_0019, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_device_on_another_node_sees_every_write_of_the_first() {
    let (_store, nodes) = spawn_nodes(2, |_| {}).await;
    second_device(&nodes, 0x0b5e_55ed, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_stops_reading_slows_no_writer_and_loses_nothing() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut b = Follower::start(&app, &user).await;
    let mut a = app.ws(&user.access).await;
    a.welcome().await;
    // 1,500 changes while B reads nothing: every batch is acked (the writer never waits on a
    // follower), and the server holds no queue of them for B (notices merge).
    for round in 0..30u64 {
        let batch = (0..50)
            .map(|i| sample(&format!("x{round}-{i}"), (round * 50 + i) as i64, 60))
            .collect();
        let ack = send_acked(&mut a, round + 1, batch).await;
        assert_eq!(ack["accepted"], 50, "{ack}");
    }
    assert!(app.app.subscriptions.feed.follower_count() >= 1);
    // Then B reads: every change, in order, none twice.
    let target = head(&app, user.user_id).await;
    while b.last < target {
        b.step().await;
    }
    assert_eq!(b.seen.len(), 1500);
    assert_eq!(b.model, history(&app, &user.access).await);
}
