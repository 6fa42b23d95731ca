//! Hostile input through a real socket: generated frames, each answered by exactly one frame,
//! the session never dropped, the ack arithmetic always right.

use futures_util::SinkExt;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::spawn_app_with;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        // Values that look right for samples.
        prop_oneof![
            Just("heart_rate"),
            Just("sleep_stage"),
            Just("step_count"),
            Just("rem"),
            Just("2026-11-01T00:00:00+01:00"),
            Just("2026-11-01T00:30:00Z"),
            Just("count/min"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("kind".to_owned()),
                    Just("start".to_owned()),
                    Just("end".to_owned()),
                    Just("value".to_owned()),
                    Just("unit".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..7,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A client frame: mostly well-formed envelopes with hostile contents, some raw garbage.
fn frame() -> impl Strategy<Value = String> {
    let envelope = (
        prop_oneof![
            Just(Some("samples")),
            Just(Some("ping")),
            Just(Some("bogus")),
            Just(None)
        ],
        prop::option::of(prop_oneof![4 => any::<u32>().prop_map(Value::from), 1 => json_value()]),
        prop::option::of(prop::collection::vec(json_value(), 0..8)),
    )
        .prop_map(|(ty, seq, samples)| {
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
            Value::Object(m).to_string()
        });
    prop_oneof![8 => envelope, 1 => "\\PC{0,64}", 1 => json_value().prop_map(|v| v.to_string())]
}

#[tokio::test]
async fn every_generated_frame_gets_one_answer() {
    let app = spawn_app_with(|c| {
        c.max_frames_per_sec = 100_000;
        c.frame_burst = 100_000;
    })
    .await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let mut runner = TestRunner::deterministic();
    let strategy = frame();
    let mut acks = 0;
    for _ in 0..400 {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        ws.stream.send(Message::text(text.clone())).await.unwrap();
        let reply = ws.recv().await;
        match reply["type"].as_str().unwrap() {
            "ack" => {
                acks += 1;
                let sent: Value = serde_json::from_str(&text).unwrap();
                let n = sent["samples"].as_array().unwrap().len() as u64;
                let total = reply["accepted"].as_u64().unwrap()
                    + reply["duplicates"].as_u64().unwrap()
                    + reply["rejected"].as_array().unwrap().len() as u64;
                assert_eq!(total, n, "{text} -> {reply}");
                assert_eq!(reply["seq"], sent["seq"]);
            }
            "error" | "pong" => {}
            other => panic!("unexpected {other} for {text}: {reply}"),
        }
    }
    assert!(
        acks > 10,
        "the generator reaches the ingest path ({acks} acks)"
    );
    // Still the same healthy session.
    ws.send(&json!({"type": "ping"})).await;
    ws.recv_type("pong").await;
}
