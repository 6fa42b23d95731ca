//! A sample's `version` and structured provenance through the real interfaces: sent over REST
//! or WebSocket (as `source` objects or a `provenance` object), returned by
//! `GET /api/v1/health-data` as sent (so what is read back is valid input: sent again, it is a
//! duplicate), refused with a message naming the rule over both interfaces, and used by source
//! priority: a manual entry wins its minutes and the analysis says so.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::analysis::analyze;
use crate::common::{TestApp, Ws, spawn_app};

fn at(minute: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00+01:00").unwrap()
        + chrono::Duration::minutes(minute))
    .to_rfc3339()
}

/// Samples as a phone sends them: a HealthKit-like source object, a Health Connect-like
/// flat source plus provenance, a manual entry known only by its app, and a v1 sample.
fn sent() -> Vec<Value> {
    vec![
        json!({"id": "p-hk", "kind": "heart_rate", "start": at(0), "value": 61,
            "source": {"name": "Apple Watch", "device": {"name": "Apple Watch", "manufacturer": "Apple Inc.",
                "model": "Watch7,1", "hardware_version": "Watch7,1", "software_version": "11.0"},
                "app": "com.apple.health", "method": "automatic"}}),
        json!({"id": "p-hc", "kind": "heart_rate", "start": at(1), "value": 62, "source": "Pixel Watch",
            "provenance": {"device": {"manufacturer": "Google", "model": "GWT9R"},
                "app": "com.google.android.apps.fitness", "method": "active"}}),
        json!({"id": "p-typed", "kind": "body_mass", "start": at(2), "value": 71.5,
            "source": {"app": "com.example.scale", "method": "manual"}}),
        json!({"id": "p-v1", "kind": "heart_rate", "start": at(3), "value": 63, "source": "v1 name"}),
    ]
}

/// What `GET /api/v1/health-data` returns for [`sent`]: flat `source`, `provenance` apart.
fn expected() -> Vec<(&'static str, Value, Value)> {
    vec![
        (
            "p-hc",
            json!("Pixel Watch"),
            json!({"device": {"manufacturer": "Google", "model": "GWT9R"},
                "app": "com.google.android.apps.fitness", "method": "active"}),
        ),
        (
            "p-hk",
            json!("Apple Watch"),
            json!({"device": {"name": "Apple Watch", "manufacturer": "Apple Inc.", "model": "Watch7,1",
                "hardware_version": "Watch7,1", "software_version": "11.0"},
                "app": "com.apple.health", "method": "automatic"}),
        ),
        (
            "p-typed",
            json!("com.example.scale"),
            json!({"app": "com.example.scale", "method": "manual"}),
        ),
        ("p-v1", json!("v1 name"), Value::Null),
    ]
}

async fn read_back(app: &TestApp, token: &str) -> Vec<Value> {
    let mut got = app.all_samples(token, "").await;
    got.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    got
}

fn check_provenance(got: &[Value]) {
    let seen: Vec<(&str, Value, Value)> = got
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap(),
                s["source"].clone(),
                s["provenance"].clone(),
            )
        })
        .collect();
    assert_eq!(seen, expected());
}

async fn post(app: &TestApp, token: &str, samples: &[Value]) -> Value {
    let (s, b) = app
        .post(
            "/api/v1/health-data",
            &json!({ "samples": samples }),
            Some(token),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

async fn ws_send(ws: &mut Ws, seq: u64, samples: &[Value]) -> Value {
    ws.send(&json!({"type": "samples", "seq": seq, "samples": samples}))
        .await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(ack["seq"], seq, "{ack}");
    ack
}

#[tokio::test]
async fn provenance_round_trips_over_rest_and_what_is_read_back_is_valid_input() {
    let app = spawn_app().await;
    let u = app.user().await;
    let b = post(&app, &u.access, &sent()).await;
    assert_eq!(
        (b["accepted"].as_u64(), &b["rejected"]),
        (Some(4), &json!([])),
        "{b}"
    );
    let got = read_back(&app, &u.access).await;
    check_provenance(&got);
    // Sent back as read, every sample is valid and the same one: a duplicate.
    let again = post(&app, &u.access, &got).await;
    assert_eq!(
        (
            again["accepted"].as_u64(),
            again["duplicates"].as_u64(),
            &again["rejected"]
        ),
        (Some(0), Some(4), &json!([])),
        "{again}"
    );
    assert_eq!(read_back(&app, &u.access).await, got);
}

#[tokio::test]
async fn provenance_round_trips_over_websocket() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let ack = ws_send(&mut ws, 1, &sent()).await;
    assert_eq!(
        (ack["accepted"].as_u64(), &ack["rejected"]),
        (Some(4), &json!([])),
        "{ack}"
    );
    let got = read_back(&app, &u.access).await;
    check_provenance(&got);
    // What the REST API returns, streamed back over the WebSocket: valid, and duplicates.
    let ack = ws_send(&mut ws, 2, &got).await;
    assert_eq!(
        (
            ack["accepted"].as_u64(),
            ack["duplicates"].as_u64(),
            &ack["rejected"]
        ),
        (Some(0), Some(4), &json!([])),
        "{ack}"
    );
}

/// `version` is stored and returned (needs a store that keeps it: the sync v2 stores).
#[tokio::test]
async fn version_round_trips_over_rest_and_websocket() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut rest = sent();
    rest[0]["version"] = json!(3);
    rest[1]["version"] = json!(9_007_199_254_740_991i64);
    post(&app, &u.access, &rest).await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let over_ws =
        json!({"id": "p-ws", "kind": "heart_rate", "start": at(9), "value": 70, "version": 0});
    ws_send(&mut ws, 1, &[over_ws]).await;
    let got = read_back(&app, &u.access).await;
    let versions: Vec<(&str, &Value)> = got
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), &s["version"]))
        .collect();
    assert_eq!(
        versions,
        [
            ("p-hc", &json!(9_007_199_254_740_991i64)),
            ("p-hk", &json!(3)),
            ("p-typed", &Value::Null),
            ("p-v1", &Value::Null),
            ("p-ws", &json!(0)),
        ]
    );
}

/// One valid sample, then one of each broken rule; the messages name the field and the rule.
fn broken() -> (Vec<Value>, Vec<(u64, &'static str)>) {
    let hr = |id: &str, extra: Value| {
        let mut s = json!({"id": id, "kind": "heart_rate", "start": at(0), "value": 60});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    };
    let samples = vec![
        hr("ok", json!({"provenance": {"method": "manual"}})),
        hr("b1", json!({"version": -1})),
        hr("b2", json!({"version": "2"})),
        hr("b3", json!({"provenance": {"device": {"serial": "x"}}})),
        hr("b4", json!({"source": {"name": "a", "bundle": "x"}})),
        hr("b5", json!({"provenance": {"method": "typed"}})),
        hr("b6", json!({"provenance": {"app": "a\u{7}"}})),
        hr(
            "b7",
            json!({"source": {"app": "a"}, "provenance": {"method": "manual"}}),
        ),
        hr("b8", json!({"source": ["a"]})),
    ];
    let messages = vec![
        (
            1,
            "version must be an integer within 0..=9007199254740991; got -1",
        ),
        (
            2,
            "version must be an integer within 0..=9007199254740991; got a string",
        ),
        (
            3,
            "unknown field `serial` in provenance.device; accepted fields: name, manufacturer, model, hardware_version, software_version",
        ),
        (
            4,
            "unknown field `bundle` in source; accepted fields: name, device, app, method",
        ),
        (
            5,
            "provenance.method must be one of automatic, active, manual; got `typed`",
        ),
        (
            6,
            "provenance.app must be a string of 1-256 bytes without control characters",
        ),
        (
            7,
            "provenance given twice, in `source` and in `provenance`: send it in one of them",
        ),
        (
            8,
            "source must be a string (at most 256 bytes) or an object with the fields name, device, app, method",
        ),
    ];
    (samples, messages)
}

fn check_rejected(report: &Value, want: &[(u64, &str)]) {
    assert_eq!(report["accepted"], 1, "{report}");
    let got: Vec<(u64, &str, &str)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["code"].as_str().unwrap(),
                r["message"].as_str().unwrap(),
            )
        })
        .collect();
    let want: Vec<(u64, &str, &str)> = want
        .iter()
        .map(|(i, m)| (*i, "invalid_sample", *m))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn broken_provenance_and_version_are_refused_naming_the_rule_over_both_interfaces() {
    let app = spawn_app().await;
    let (samples, want) = broken();
    let u = app.user().await;
    check_rejected(&post(&app, &u.access, &samples).await, &want);
    let w = app.user().await;
    let mut ws = app.ws(&w.access).await;
    ws.welcome().await;
    check_rejected(&ws_send(&mut ws, 1, &samples).await, &want);
    // Only the valid one is stored, with its provenance.
    for token in [&u.access, &w.access] {
        let got = read_back(&app, token).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["provenance"], json!({"method": "manual"}));
    }
}

/// The watch records minutes 0..120; the user typed in activity for 60..90 under another,
/// lower-ranked source. The typed minutes are the entry's, and the analysis lists it as
/// manual; without the rule the watch (a wearable, rank 3) would own every minute.
#[tokio::test]
async fn a_manual_entry_wins_its_minutes_and_the_analysis_says_so() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let watch: Vec<Value> = (0..120)
        .map(|m| {
            json!({"id": format!("w{m}"), "kind": "activity_count", "start": at(m), "value": 10,
            "source": {"name": "Apple Watch", "method": "automatic"}})
        })
        .collect();
    let typed: Vec<Value> = (60..90)
        .map(|m| {
            json!({"id": format!("t{m}"), "kind": "activity_count", "start": at(m), "value": 500,
            "source": "Health", "provenance": {"method": "manual"}})
        })
        .collect();
    for (seq, batch) in [(1, &typed), (2, &watch)] {
        let ack = ws_send(&mut ws, seq, batch).await;
        assert_eq!(ack["accepted"].as_u64(), Some(batch.len() as u64), "{ack}");
    }
    let a = analyze(&mut ws).await;
    let mut sources: Vec<(String, u64, bool)> = a["activity"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_owned(),
                s["minutes"].as_u64().unwrap(),
                s["manual"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    sources.sort();
    assert_eq!(
        sources,
        [
            ("Apple Watch".to_owned(), 90, false),
            ("Health".to_owned(), 30, true)
        ],
        "{}",
        a["activity"]
    );
}
