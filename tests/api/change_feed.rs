//! The change feed: `GET /api/v1/changes` (pages, tokens, positions that cannot be followed)
//! and the WebSocket stream `samples` (replay, live, refusals). The second-device acceptance
//! tests are in `change_feed_sync.rs`.
//!
//! Versioned re-sends and deletions are written through the store and announced to the feed
//! the way ingest announces its writes ([`store_write`]): this branch's WebSocket and REST
//! inputs do not carry `version` or deletions yet (branches sync-provenance and sync-write).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use clarity::samples::Sample;
use clarity::store::{ChangePage, SampleOp, Store, StoreResult, WriteResult};
use clarity::streams::feed::Position;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::wrap::{Intercept, wrap};
use crate::common::{PUSHED, Session, TestApp, Ws, spawn_app, spawn_with_store, yesterday};

/// A heart-rate sample at minute `minute` after 06:00 yesterday (inside the last week).
pub(crate) fn sample(id: &str, minute: i64, value: i64) -> Value {
    let t = yesterday() + chrono::Duration::hours(6) + chrono::Duration::minutes(minute);
    json!({"id": id, "kind": "heart_rate", "start": t.to_rfc3339(), "value": value})
}

/// `v` as the store keeps it, with `version`.
pub(crate) fn stored(v: &Value, version: i64) -> Sample {
    let raw = serde_json::value::to_raw_value(v).unwrap();
    let (mut ok, rejected) =
        clarity::samples::parse_batch(&[&raw], chrono::Utc::now().timestamp_millis());
    assert!(rejected.is_empty(), "{rejected:?}");
    let mut s = ok.remove(0).1;
    s.version = Some(version);
    s
}

/// Applies `ops` through the store and announces the write to the feed, as ingest does.
pub(crate) async fn store_write(app: &TestApp, user: Uuid, ops: Vec<SampleOp>) -> WriteResult {
    let done = app.app.store.write_samples(user, ops).await.unwrap();
    app.app
        .subscriptions
        .feed
        .changed(user, done.seqs.last().copied());
    done
}

pub(crate) async fn upload(app: &TestApp, token: &str, samples: Vec<Value>) -> Value {
    let (status, body) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": samples}),
            Some(token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The latest change seq of `user` (what the feed's head is).
pub(crate) async fn head(app: &TestApp, user: Uuid) -> u64 {
    app.app.store.changes(user, 0, 1).await.unwrap().head
}

/// Applies one change (REST entry or `change` frame) to a model of the samples by id.
pub(crate) fn apply(model: &mut BTreeMap<String, Value>, change: &Value) {
    match change["op"].as_str() {
        Some("upsert") => {
            let s = &change["sample"];
            model.insert(s["id"].as_str().unwrap().to_owned(), s.clone());
        }
        Some("delete") => {
            model.remove(change["id"].as_str().unwrap());
        }
        other => panic!("unknown op {other:?}: {change}"),
    }
}

/// What `GET /api/v1/health-data` lists, by id.
pub(crate) async fn history(app: &TestApp, token: &str) -> BTreeMap<String, Value> {
    app.all_samples(token, "")
        .await
        .into_iter()
        .map(|s| (s["id"].as_str().unwrap().to_owned(), s))
        .collect()
}

async fn changes(app: &TestApp, token: &str, query: &str) -> (StatusCode, Value) {
    app.get(&format!("/api/v1/changes{query}"), Some(token))
        .await
}

/// Follows the feed from `since` in pages of `limit` until `more` is false: the model after
/// applying them onto `model`, the seqs seen, the pages read and the last `next_token`.
async fn follow(
    app: &TestApp,
    token: &str,
    since: &str,
    limit: usize,
    model: &mut BTreeMap<String, Value>,
) -> (Vec<u64>, usize, String) {
    let (mut seqs, mut pages, mut since) = (Vec::new(), 0, since.to_owned());
    loop {
        let (status, body) = changes(app, token, &format!("?since={since}&limit={limit}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        let page = body["changes"].as_array().unwrap();
        assert!(page.len() <= limit);
        for c in page {
            let seq = c["seq"].as_u64().unwrap();
            assert!(
                seqs.last().is_none_or(|l| seq > *l),
                "seq {seq} after {seqs:?}"
            );
            seqs.push(seq);
            apply(model, c);
        }
        since = body["next_token"].as_str().unwrap().to_owned();
        if !body["more"].as_bool().unwrap() {
            return (seqs, pages, since);
        }
        assert!(pages < 1000, "bounded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_next_token_and_a_replay_from_zero_is_the_history() {
    let app = spawn_app().await;
    let u = app.user().await;
    let first: Vec<Value> = (0..25)
        .map(|i| sample(&format!("s{i}"), i, 60 + i))
        .collect();
    upload(&app, &u.access, first.clone()).await;
    let again = upload(&app, &u.access, first[..3].to_vec()).await;
    assert_eq!(again["duplicates"], 3, "a duplicate changes nothing");

    let mut model = BTreeMap::new();
    let (seqs, pages, token) = follow(&app, &u.access, "0", 7, &mut model).await;
    assert_eq!(seqs.len(), 25, "one change per insert, none for duplicates");
    assert!(pages >= 4, "25 changes in pages of 7: {pages}");
    assert_eq!(model, history(&app, &u.access).await);
    // Without `since`: the same beginning.
    let (status, body) = changes(&app, &u.access, "?limit=3").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let firsts: Vec<u64> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(firsts, seqs[..3]);
    assert_eq!(body["more"], true);

    // An update, a deletion and two inserts: exactly these follow the token, in order.
    store_write(
        &app,
        u.user_id,
        vec![
            SampleOp::Put(stored(&sample("s3", 3, 99), 1)),
            SampleOp::Delete("s4".into()),
        ],
    )
    .await;
    upload(
        &app,
        &u.access,
        vec![sample("s25", 25, 70), sample("s26", 26, 71)],
    )
    .await;
    let (status, body) = changes(&app, &u.access, &format!("?since={token}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = body["changes"].as_array().unwrap();
    let ops: Vec<(&str, &str)> = page
        .iter()
        .map(|c| {
            let op = c["op"].as_str().unwrap();
            let id = if op == "delete" {
                &c["id"]
            } else {
                &c["sample"]["id"]
            };
            (op, id.as_str().unwrap())
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("upsert", "s3"),
            ("delete", "s4"),
            ("upsert", "s25"),
            ("upsert", "s26")
        ]
    );
    assert_eq!(page[0]["sample"]["value"], 99, "the sample as stored now");
    assert!(page[0]["seq"].as_u64().unwrap() > *seqs.last().unwrap());
    page.iter().for_each(|c| apply(&mut model, c));
    assert_eq!(model, history(&app, &u.access).await);
    // A replay from zero rebuilds the same state.
    let mut replayed = BTreeMap::new();
    let (_, _, last) = follow(&app, &u.access, "0", 1000, &mut replayed).await;
    assert_eq!(replayed, model);
    // Up to date: the token lists nothing and stays where it is.
    let (status, body) = changes(&app, &u.access, &format!("?since={last}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changes"], json!([]));
    assert_eq!(body["more"], false);
    assert_eq!(body["next_token"], last.as_str());
}

fn assert_resync(status: StatusCode, body: &Value, why: &str) {
    assert_eq!(status, StatusCode::GONE, "{why}: {body}");
    assert_eq!(body["error"]["code"], "resync_required", "{why}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("since=0") && message.contains("every current sample"),
        "{why}: the message says how to resync: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_that_cannot_be_followed_are_gone_and_damaged_tokens_are_invalid() {
    let app = spawn_app().await;
    let (a, b) = (app.user().await, app.user().await);
    upload(
        &app,
        &a.access,
        (0..3).map(|i| sample(&format!("a{i}"), i, 60)).collect(),
    )
    .await;
    upload(
        &app,
        &b.access,
        (0..2).map(|i| sample(&format!("b{i}"), i, 60)).collect(),
    )
    .await;
    let (_, _, ta) = follow(&app, &a.access, "0", 10, &mut BTreeMap::new()).await;
    let (_, _, tb) = follow(&app, &b.access, "0", 10, &mut BTreeMap::new()).await;
    let epoch = app.app.store.epoch().await.unwrap();

    let (status, body) = changes(&app, &a.access, &format!("?since={tb}")).await;
    assert_resync(status, &body, "another user's token");
    assert!(
        !body.to_string().contains(&b.user_id.to_string()),
        "the other user is not named: {body}"
    );
    let other_epoch = Position {
        epoch: "another-store".into(),
        user: a.user_id,
        seq: 1,
    };
    let (status, body) = changes(&app, &a.access, &format!("?since={}", other_epoch.token())).await;
    assert_resync(status, &body, "another epoch");
    let ahead = Position {
        epoch: epoch.clone(),
        user: a.user_id,
        seq: 1000,
    };
    let (status, body) = changes(&app, &a.access, &format!("?since={}", ahead.token())).await;
    assert_resync(status, &body, "ahead of the head");

    let mut damaged = ta.clone();
    let last = damaged.pop().unwrap();
    damaged.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [damaged.as_str(), "garbage", "MTIz"] {
        let (status, body) = changes(&app, &a.access, &format!("?since={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_token", "{bad}");
    }
    for bad in [
        "?limit=0",
        "?limit=1001",
        "?limit=x",
        "?user_id=1",
        "?cursor=abc",
    ] {
        let (status, body) = changes(&app, &a.access, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{bad}");
    }
    let (status, _) = app.get("/api/v1/changes", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The caller's own token still works after all that.
    let (status, body) = changes(&app, &a.access, &format!("?since={ta}")).await;
    assert_eq!((status, &body["changes"]), (StatusCode::OK, &json!([])));
}

/// A store that compacted: positions below `floor` are no longer complete.
#[derive(Clone, Default)]
pub(crate) struct Floor(pub Arc<AtomicU64>);

#[async_trait]
impl Intercept for Floor {
    async fn changes(
        &self,
        inner: &dyn Store,
        user: Uuid,
        after: u64,
        limit: usize,
    ) -> StoreResult<ChangePage> {
        let mut page = inner.changes(user, after, limit).await?;
        page.floor = page.floor.max(self.0.load(Ordering::Acquire));
        Ok(page)
    }
}

/// The next change frame, skipping what the server pushes on its own.
pub(crate) async fn next_change(ws: &mut Ws) -> Value {
    loop {
        let v = ws.recv().await;
        match v["type"].as_str().unwrap() {
            "change" => return v,
            t if PUSHED.contains(&t) => {}
            _ => panic!("expected a change frame: {v}"),
        }
    }
}

/// Sends `subscribe` to stream `samples` and returns the answer (`subscribed` or `error`).
pub(crate) async fn subscribe(ws: &mut Ws, since: Option<u64>, epoch: Option<&str>) -> Value {
    let mut frame = json!({"type": "subscribe", "stream": "samples"});
    if let Some(s) = since {
        frame["since"] = json!(s);
    }
    if let Some(e) = epoch {
        frame["epoch"] = json!(e);
    }
    ws.send(&frame).await;
    loop {
        let v = ws.recv().await;
        if !PUSHED.contains(&v["type"].as_str().unwrap()) {
            return v;
        }
    }
}

fn assert_ws_resync(v: &Value, user: &Session, why: &str) {
    assert_eq!(v["type"], "error", "{why}: {v}");
    assert_eq!(v["code"], "resync_required", "{why}: {v}");
    assert_eq!(
        (&v["stream"], &v["user_id"]),
        (&json!("samples"), &json!(user.user_id))
    );
    assert!(v["message"].as_str().unwrap().contains("since=0"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_floor_a_reader_must_resync_over_rest_and_websocket() {
    let floor = Floor::default();
    let app = spawn_with_store({
        let floor = floor.clone();
        move |s| wrap(s, floor)
    })
    .await;
    let u = app.user().await;
    upload(
        &app,
        &u.access,
        (0..5).map(|i| sample(&format!("s{i}"), i, 60)).collect(),
    )
    .await;
    let (status, body) = changes(&app, &u.access, "?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let at_two = body["next_token"].as_str().unwrap().to_owned();
    let two = body["changes"][1]["seq"].as_u64().unwrap();

    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let sub = subscribe(&mut ws, Some(0), None).await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    let mut last = 0;
    while last < sub["offset"].as_u64().unwrap() {
        last = next_change(&mut ws).await["offset"].as_u64().unwrap();
    }

    // The store forgets what lies below the live subscription's position.
    floor.0.store(last + 1, Ordering::Release);
    let (status, body) = changes(&app, &u.access, &format!("?since={at_two}")).await;
    assert_resync(status, &body, "below the floor");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("90 days")
    );
    let (status, _) = changes(&app, &u.access, "?since=0").await;
    assert_eq!(status, StatusCode::OK, "0 is always a valid position");
    // The live subscription finds out at its next read, and ends.
    upload(&app, &u.access, vec![sample("s5", 5, 60)]).await;
    assert_ws_resync(&ws.recv().await, &u, "live, passed by the floor");
    // A resume below it is refused at once; from 0 it works.
    assert_ws_resync(
        &subscribe(&mut ws, Some(two), None).await,
        &u,
        "resume below",
    );
    let sub = subscribe(&mut ws, Some(0), None).await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_samples_stream_replays_after_since_then_goes_live_and_is_only_ones_own() {
    let app = spawn_app().await;
    let (u, other) = (app.user().await, app.user().await);
    upload(
        &app,
        &u.access,
        (0..4)
            .map(|i| sample(&format!("s{i}"), i, 60 + i))
            .collect(),
    )
    .await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;

    let sub = subscribe(&mut ws, Some(0), None).await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    assert_eq!(
        (&sub["stream"], &sub["recover"], &sub["replay"]),
        (&json!("samples"), &json!(true), &json!(0))
    );
    let (head, epoch) = (
        sub["offset"].as_u64().unwrap(),
        sub["epoch"].as_str().unwrap().to_owned(),
    );
    let mut model = BTreeMap::new();
    let mut last = 0;
    while last < head {
        let c = next_change(&mut ws).await;
        assert_eq!(c["user_id"], json!(u.user_id));
        let offset = c["offset"].as_u64().unwrap();
        assert!(offset > last, "{c}");
        last = offset;
        apply(&mut model, &c);
    }
    assert_eq!(
        model,
        history(&app, &u.access).await,
        "the replay from 0 is the state"
    );

    // Live: another device's upload, an update and a deletion arrive in order.
    upload(&app, &u.access, vec![sample("s4", 4, 70)]).await;
    store_write(
        &app,
        u.user_id,
        vec![
            SampleOp::Put(stored(&sample("s0", 0, 90), 2)),
            SampleOp::Delete("s1".into()),
        ],
    )
    .await;
    for want in [("upsert", "s4"), ("upsert", "s0"), ("delete", "s1")] {
        let c = next_change(&mut ws).await;
        let id = if want.0 == "delete" {
            &c["id"]
        } else {
            &c["sample"]["id"]
        };
        assert_eq!(
            (c["op"].as_str().unwrap(), id.as_str().unwrap()),
            want,
            "{c}"
        );
        assert!(c["offset"].as_u64().unwrap() > last);
        last = c["offset"].as_u64().unwrap();
        apply(&mut model, &c);
    }
    assert_eq!(model, history(&app, &u.access).await);

    // Resuming with the epoch replays exactly what follows `since`.
    let sub = subscribe(&mut ws, Some(head), Some(&epoch)).await;
    assert_eq!(sub["offset"].as_u64(), Some(last), "{sub}");
    let mut resumed = Vec::new();
    while resumed.last().is_none_or(|o| *o < last) {
        resumed.push(next_change(&mut ws).await["offset"].as_u64().unwrap());
    }
    assert_eq!(resumed.len(), 3, "{resumed:?}");
    // Without `since`: live changes only.
    let sub = subscribe(&mut ws, None, None).await;
    assert_eq!(sub["offset"].as_u64(), Some(last), "{sub}");
    upload(&app, &u.access, vec![sample("s5", 5, 71)]).await;
    let c = next_change(&mut ws).await;
    assert_eq!(c["sample"]["id"], "s5", "{c}");

    // Positions that cannot be followed, and other users' feeds.
    let why = [
        (Some(last + 5), Some(epoch.as_str()), "ahead"),
        (Some(1), Some("another"), "epoch"),
    ];
    for (since, epoch, what) in why {
        assert_ws_resync(&subscribe(&mut ws, since, epoch).await, &u, what);
    }
    ws.send(
        &json!({"type": "subscribe", "stream": "samples", "user_id": other.user_id, "since": 0}),
    )
    .await;
    let refused = ws.recv_type("error").await;
    assert_eq!(
        (&refused["code"], &refused["stream"], &refused["user_id"]),
        (
            &json!("forbidden"),
            &json!("samples"),
            &json!(other.user_id)
        )
    );
    // Unsubscribing ends it: nothing of the feed follows `unsubscribed`.
    assert_eq!(subscribe(&mut ws, None, None).await["type"], "subscribed");
    ws.send(&json!({"type": "unsubscribe", "stream": "samples"}))
        .await;
    let v = ws.recv_type("unsubscribed").await;
    assert_eq!(
        (&v["stream"], &v["reason"]),
        (&json!("samples"), &json!("requested"))
    );
    upload(&app, &u.access, vec![sample("s6", 6, 72)]).await;
    ws.send(&json!({"type": "ping"})).await;
    assert_eq!(
        ws.recv_type("pong").await["type"],
        "pong",
        "no change frame before it"
    );
}
