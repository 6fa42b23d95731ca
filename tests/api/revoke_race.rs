//! A share revoked while a subscription to it is being set up: whatever the interleaving, the
//! grantee never gets an event of the owner's created after the revoke's 204, and gets the
//! documented end (`error` `forbidden`, or `unsubscribed` with reason `revoked`).
//!
//! The interleaving is forced, not hoped for: a store hook holds the subscription's grant
//! check before or after its read while the share is deleted and new events are published,
//! then lets it go on. Run many times, on one node and across two (subscription on node B,
//! revoke and the owner's device on node A; B learns of the revoke over the bus).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::hooked::{Hooks, Pause};
use crate::common::{TestApp, Ws, spawn_nodes_with_store, spawn_with_store};
use crate::streams::{delete, produce, share};

const ITERATIONS: usize = 20;

/// Reads the owner's own session until it has the analysis event at `offset`: by then the
/// node it runs on has handled every bus message published before that event.
async fn seen(watch: &mut Ws, offset: u64) {
    loop {
        let v = watch.recv().await;
        if v["type"] == "analysis" && v["offset"].as_u64() == Some(offset) {
            return;
        }
    }
}

/// The dashboard's frames up to the end of its subscription; no event may come first.
async fn ending(dash: &mut Ws, what: &str) -> Value {
    loop {
        let v = dash.recv().await;
        match v["type"].as_str().unwrap_or("") {
            "subscribed" => {}
            "unsubscribed" | "error" => return v,
            _ => panic!("{what}: the grantee got a frame after the revoke: {v}"),
        }
    }
}

/// `a` serves the owner (device, share, revoke), `b` the grantee's dashboard and a second
/// session of the owner's; they may be the same node.
async fn race(a: &TestApp, b: &TestApp, hooks: &Hooks) {
    let owner = a.user().await;
    let viewer = a.user().await;
    let mut device = a.ws(&owner.access).await;
    device.welcome().await;
    let mut watch = b.ws(&owner.access).await;
    watch.welcome().await;
    let mut dash = b.ws(&viewer.access).await;
    dash.welcome().await;
    let mut minute = 0;
    for i in 0..ITERATIONS {
        let pause = if i % 2 == 0 {
            Pause::AfterRead
        } else {
            Pause::BeforeRead
        };
        let what = format!("iteration {i}, grant check held {pause:?}");
        let (s, sh) = share(a, &owner, &viewer.email, "analyses").await;
        assert_eq!(s, StatusCode::CREATED, "{what}: {sh}");
        let gate = hooks.arm(owner.user_id, viewer.user_id, pause);
        dash.send(&json!({"type": "subscribe", "stream": "analyses", "user_id": owner.user_id}))
            .await;
        tokio::time::timeout(Duration::from_secs(10), gate.reached.notified())
            .await
            .unwrap_or_else(|_| panic!("{what}: the grant check never ran"));

        let path = format!("/api/v1/shares/{}", sh["share_id"].as_str().unwrap());
        assert_eq!(
            delete(a, &path, &owner.access).await,
            StatusCode::NO_CONTENT,
            "{what}"
        );
        // Events after the 204: one while the check is held, one after it went on.
        let (held, _) = produce(&mut device, minute).await;
        seen(&mut watch, held).await;
        gate.release.notify_one();
        let (after, _) = produce(&mut device, minute + 1).await;
        seen(&mut watch, after).await;
        minute += 2;

        let end = ending(&mut dash, &what).await;
        match pause {
            // The check read the store after the delete.
            Pause::BeforeRead => assert_eq!(
                (&end["type"], &end["code"]),
                (&json!("error"), &json!("forbidden")),
                "{what}"
            ),
            // The check passed before the delete: the revoke must have ended it.
            Pause::AfterRead => assert_eq!(
                (&end["type"], &end["reason"]),
                (&json!("unsubscribed"), &json!("revoked")),
                "{what}"
            ),
        }
        assert_eq!(end["user_id"], json!(owner.user_id), "{what}");
        // Nothing follows the end.
        dash.send(&json!({"type": "ping"})).await;
        let next = dash.recv().await;
        assert_eq!(next["type"], "pong", "{what}: {next}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_racing_a_subscribe_never_leaks_events() {
    let hooks = Hooks::default();
    let app = spawn_with_store(|s| hooks.wrap(s)).await;
    race(&app, &app, &hooks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_on_another_node_racing_a_subscribe_never_leaks_events() {
    let hooks = Hooks::default();
    let (_store, nodes) = spawn_nodes_with_store(2, |s| hooks.wrap(s), |_| {}).await;
    race(&nodes[0], &nodes[1], &hooks).await;
}
