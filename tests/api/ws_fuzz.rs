//! Hostile input through a real socket: generated frames, each answered by exactly one frame,
//! the session never dropped, the ack arithmetic always right.

use futures_util::SinkExt;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::fuzz::{cases, json_value};
use crate::common::{Frame, spawn_app_with};

/// A client frame: mostly well-formed envelopes with hostile contents, some raw garbage.
fn frame() -> impl Strategy<Value = String> {
    let field = |name: &'static str| {
        prop::option::of(prop_oneof![
            3 => prop_oneof![
                Just(Value::from("insights")),
                Just(Value::from("analyses")),
                any::<u32>().prop_map(Value::from),
                "[A-Za-z0-9._-]{0,40}".prop_map(Value::from),
            ],
            1 => json_value(),
        ])
        .prop_map(move |v| (name, v))
    };
    let envelope = (
        prop_oneof![
            4 => Just(Some("samples")),
            1 => Just(Some("ping")),
            1 => Just(Some("subscribe")),
            1 => Just(Some("unsubscribe")),
            1 => Just(Some("refresh")),
            1 => Just(Some("bogus")),
            1 => Just(None)
        ],
        prop::option::of(prop_oneof![4 => any::<u32>().prop_map(Value::from), 1 => json_value()]),
        prop::option::of(prop::collection::vec(json_value(), 0..8)),
        (
            field("stream"),
            field("user_id"),
            field("since"),
            field("epoch"),
            field("access_token"),
        ),
    )
        .prop_map(|(ty, seq, samples, extra)| {
            let mut m = serde_json::Map::new();
            if let Some(t) = ty {
                m.insert("type".into(), t.into());
            }
            if let Some(s) = seq {
                m.insert("seq".into(), s);
            }
            if let Some(s) = samples {
                m.insert("samples".into(), s.into());
            }
            // Frames of other types get their own fields; samples frames keep the shape
            // that reaches the ingest path (their contents are hostile enough).
            let (a, b, c, d, e) = extra;
            let extra = if ty == Some("samples") {
                vec![]
            } else {
                vec![a, b, c, d, e]
            };
            for (name, v) in extra {
                if let Some(v) = v {
                    m.insert(name.into(), v);
                }
            }
            Value::Object(m).to_string()
        });
    prop_oneof![8 => envelope, 1 => "\\PC{0,64}", 1 => json_value().prop_map(|v| v.to_string())]
}

#[tokio::test]
async fn every_generated_frame_gets_one_answer() {
    let app = spawn_app_with(|c| {
        c.limits.max_frames_per_sec = 100_000;
        c.limits.frame_burst = 100_000;
    })
    .await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let mut runner = TestRunner::deterministic();
    let strategy = frame();
    let mut acks = 0;
    let mut auth_closes = 0;
    let n = cases(400);
    for _ in 0..n {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        ws.stream.send(Message::text(text.clone())).await.unwrap();
        let sent: Option<Value> = serde_json::from_str(&text).ok();
        let ty = sent.as_ref().and_then(|v| v["type"].as_str()).unwrap_or("");
        let reply = ws.recv().await;
        if reply["code"] == "auth_invalid" {
            // An invalid token in `refresh` is an auth violation: the error, the documented
            // close, then the device logs in again. Nothing else may end the session.
            assert_eq!(ty, "refresh", "{text} -> {reply}");
            assert!(matches!(ws.next_frame().await, Frame::Close(4003, _)));
            auth_closes += 1;
            ws = app.ws(&u.access).await;
            ws.welcome().await;
            continue;
        }
        let answer = reply["type"].as_str().unwrap();
        match answer {
            "ack" => {
                acks += 1;
                let sent = sent.as_ref().unwrap();
                let n = sent["samples"].as_array().unwrap().len() as u64;
                let total = reply["accepted"].as_u64().unwrap()
                    + reply["duplicates"].as_u64().unwrap()
                    + reply["rejected"].as_array().unwrap().len() as u64
                    + reply["rejected_omitted"].as_u64().unwrap();
                assert_eq!(total, n, "{text} -> {reply}");
                assert_eq!(reply["seq"], sent["seq"]);
            }
            "error" => {}
            "pong" | "subscribed" | "unsubscribed" | "refreshed" => {
                let expected = match answer {
                    "pong" => "ping",
                    "subscribed" => "subscribe",
                    "unsubscribed" => "unsubscribe",
                    _ => "refresh",
                };
                assert_eq!(ty, expected, "{text} -> {reply}");
            }
            other => panic!("unexpected {other} for {text}: {reply}"),
        }
    }
    eprintln!(
        "ws fuzz: {n} generated frames, {acks} reached the store, {auth_closes} refresh frames with a bad token closed 4003 (reconnected)"
    );
    assert!(
        acks > 10,
        "the generator reaches the ingest path ({acks} acks)"
    );
    // Still the same healthy session.
    ws.send(&json!({"type": "ping"})).await;
    ws.recv_type("pong").await;
}
