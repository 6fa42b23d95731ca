//! A sample's `end` is bounded (at most 24 h ahead of the server clock, and at most its
//! kind's maximum span after `start`), and no sample moves a user's window out of reach of
//! the analyses: one `activity_count` ending 9999-12-31 once made every analysis answer
//! `no_data`, also after a restart.

use chrono::{Duration, Utc};
use clarity::samples::{Kind, Sample, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{spawn_app, spawn_in};

/// Ninety minutes of activity counts ending a few minutes ago.
fn recent(prefix: &str) -> Vec<Value> {
    let now = Utc::now();
    (1..=90)
        .map(|m| {
            json!({"id": format!("{prefix}{m}"), "kind": "activity_count",
                   "start": (now - Duration::minutes(m + 5)).to_rfc3339(), "value": m})
        })
        .collect()
}

/// The poisoned sample of the field report, and one spanning two days.
fn bad() -> Vec<Value> {
    let start = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let long_end = (Utc::now() + Duration::hours(20)).to_rfc3339();
    let long_start = (Utc::now() - Duration::hours(30)).to_rfc3339();
    vec![
        json!({"id": "far", "kind": "activity_count", "start": start,
               "end": "9999-12-31T00:00:00Z", "value": 5}),
        json!({"id": "long", "kind": "activity_count", "start": long_start,
               "end": long_end, "value": 5}),
    ]
}

fn assert_rejections(report: &Value) {
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{report}");
    assert_eq!(rejected[0]["index"], 0);
    assert_eq!(rejected[0]["code"], "time_out_of_range");
    assert_eq!(
        rejected[0]["message"], "end must be at most 24 h in the future",
        "names the rule"
    );
    assert_eq!(rejected[1]["index"], 1);
    assert_eq!(rejected[1]["code"], "time_out_of_range");
    assert_eq!(
        rejected[1]["message"], "activity_count samples span at most 1 h from start to end",
        "names the rule"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_end_is_rejected_over_the_websocket_and_analyses_still_work() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    ws.send(&json!({"type": "samples", "seq": 1, "samples": recent("w")}))
        .await;
    assert_eq!(ws.recv_type("ack").await["accepted"], 90);
    ws.send(&json!({"type": "samples", "seq": 2, "samples": bad()}))
        .await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(ack["accepted"], 0, "{ack}");
    assert_rejections(&ack);

    let analysis = crate::analysis::analyze(&mut ws).await;
    assert_eq!(analysis["minutes_present"], 90, "{analysis}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_end_is_rejected_over_rest_and_analyses_still_work() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut samples = bad();
    samples.extend(recent("r"));
    let (s, report) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": samples}),
            Some(&user.access),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["accepted"], 90, "{report}");
    assert_rejections(&report);

    let (s, analysis) = app
        .post("/api/v1/analyses", &json!({}), Some(&user.access))
        .await;
    assert!(s.is_success(), "{s} {analysis}");
    assert_eq!(analysis["minutes_present"], 90, "{analysis}");
}

/// A sample stored before validation refused it (written to the store directly here) never
/// moves the window: neither live nor when the window is rebuilt after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_far_future_sample_does_not_poison_the_window_after_a_restart() {
    let app = spawn_app().await;
    let user = app.user().await;
    let (s, report) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": recent("s")}),
            Some(&user.access),
        )
        .await;
    assert_eq!((s, &report["accepted"]), (StatusCode::OK, &json!(90)));
    let start = Utc::now().timestamp_millis() - 3_600_000;
    let poisoned = Sample {
        version: None,
        id: "stored-before-the-fix".into(),
        kind: Kind::ActivityCount,
        start: Timestamp {
            utc_ms: start,
            offset_secs: 0,
        },
        end: Timestamp::parse("9999-12-31T00:00:00Z"),
        value: 5.0,
        source: None,
        extra: None,
    };
    let new = app
        .app
        .store
        .insert_samples(user.user_id, vec![poisoned.clone()])
        .await
        .unwrap();
    assert_eq!(new, [true]);
    // Also through the window as ingest would have fed it.
    app.app.window_service.feed(user.user_id, &[poisoned]);
    let (s, analysis) = app
        .post("/api/v1/analyses", &json!({}), Some(&user.access))
        .await;
    assert!(s.is_success(), "live window: {s} {analysis}");
    assert_eq!(analysis["minutes_present"], 90, "{analysis}");

    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}).await;
    let (s, analysis) = app
        .post("/api/v1/analyses", &json!({}), Some(&user.access))
        .await;
    assert!(s.is_success(), "rebuilt window: {s} {analysis}");
    assert_eq!(analysis["minutes_present"], 90, "{analysis}");
}
