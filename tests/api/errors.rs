//! Error messages that name the rule a client broke, through the real REST and WebSocket
//! interfaces: what a new user sees when they get the shape of a sample, a body or a query
//! parameter wrong.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{spawn_app, spawn_app_with};

/// The example every time rule quotes.
const EXAMPLE: &str = "e.g. 2026-11-29T08:00:00+01:00";

#[tokio::test]
async fn sample_rejections_name_the_kinds_and_the_time_format() {
    let app = spawn_app().await;
    let u = app.user().await;
    let samples = json!([
        {"id": "k", "kind": "heartrate", "start": "2026-11-01T00:00:00Z", "value": 60},
        {"id": "n", "kind": "heart_rate", "start": 1_764_400_000, "value": 60},
        {"id": "o", "kind": "heart_rate", "start": "2026-11-01T08:00:00", "value": 60},
        {"id": "e", "kind": "step_count", "start": "2026-11-01T08:00:00Z", "end": 1_764_400_060, "value": 6},
    ]);
    let (s, b) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": samples}),
            Some(&u.access),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rejected = b["rejected"].as_array().unwrap();
    let at = |i: usize| -> (&str, &str) {
        let r = rejected.iter().find(|r| r["index"] == i).unwrap();
        (r["code"].as_str().unwrap(), r["message"].as_str().unwrap())
    };
    let (code, msg) = at(0);
    assert_eq!(code, "unknown_kind");
    for kind in [
        "activity_count",
        "step_count",
        "heart_rate",
        "heart_rate_variability",
        "respiratory_rate",
        "oxygen_saturation",
        "body_temperature",
        "sleep_stage",
    ] {
        assert!(msg.contains(kind), "lists {kind}: {msg}");
    }
    for i in 1..=3 {
        let (code, msg) = at(i);
        assert_eq!(code, "invalid_time", "{i}: {msg}");
        assert!(
            msg.contains("RFC 3339") && msg.contains(EXAMPLE),
            "{i}: {msg}"
        );
    }
    assert!(at(2).1.contains("offset"), "{}", at(2).1);

    // The same messages on the WebSocket.
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    ws.send(&json!({"type": "samples", "seq": 1, "samples": samples}))
        .await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(ack["rejected"], b["rejected"]);
}

#[tokio::test]
async fn a_bare_array_body_is_told_the_shape_it_needs() {
    let app = spawn_app().await;
    let u = app.user().await;
    let bare =
        json!([{"id": "a", "kind": "heart_rate", "start": "2026-11-01T00:00:00Z", "value": 60}]);
    let (s, b) = app
        .post("/api/v1/health-data", &bare, Some(&u.access))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "invalid_body");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains(r#"{"samples":[...]}"#), "{msg}");
}

#[tokio::test]
async fn an_unencoded_plus_in_a_time_parameter_gets_a_hint() {
    let app = spawn_app().await;
    let u = app.user().await;
    for path in [
        "/api/v1/health-data?from=2026-11-29T08:00:00+01:00",
        "/api/v1/health-data?to=2026-11-29T08:00:00+01:00",
        "/api/v1/analyses?from=2026-11-29T08:00:00+01:00",
    ] {
        let (s, b) = app.get(path, Some(&u.access)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {b}");
        assert_eq!(b["error"]["code"], "invalid_query");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("%2B") && msg.contains(EXAMPLE),
            "{path}: {msg}"
        );
    }
    // Encoded, the same time is fine; an offset-less one gets the rule without the hint.
    let (s, b) = app
        .get(
            "/api/v1/health-data?from=2026-11-29T08:00:00%2B01:00",
            Some(&u.access),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app
        .get("/api/v1/health-data?from=2026-11-29", Some(&u.access))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains(EXAMPLE) && !msg.contains("%2B"), "{msg}");
}

#[tokio::test]
async fn rate_limited_names_the_frame_it_refused() {
    let app = spawn_app_with(|c| {
        c.limits.max_frames_per_sec = 1;
        c.limits.frame_burst = 2;
    })
    .await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    ws.send(&json!({"type": "ping"})).await;
    ws.send(&json!({"type": "ping"})).await;
    ws.send(&json!({"type": "ping"})).await;
    ws.send(&json!({"type": "analyze"})).await;
    let mut limited: Vec<Value> = Vec::new();
    while limited.len() < 2 {
        let f = ws.recv().await;
        if f["code"] == "rate_limited" {
            limited.push(f);
        }
    }
    let msg = |i: usize| limited[i]["message"].as_str().unwrap().to_owned();
    assert!(msg(0).contains("`ping`"), "{}", msg(0));
    assert!(msg(1).contains("`analyze`"), "{}", msg(1));
    assert!(
        limited
            .iter()
            .all(|f| f["retry_after_ms"].as_u64() > Some(0))
    );
}
