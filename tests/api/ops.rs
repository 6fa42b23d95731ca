use reqwest::StatusCode;
use serde_json::json;

use crate::common::{hr, spawn_app};

#[tokio::test]
async fn liveness_readiness_and_json_errors() {
    let app = spawn_app().await;
    let (s, b) = app.get("/api/health", None).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, b) = app.get("/api/ready", None).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ready")));
    let (s, b) = app.get("/api/nope", None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let resp = app
        .http
        .delete(app.url("/api/health"))
        .send()
        .await
        .unwrap();
    let (s, b) = crate::common::into_json(resp).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn readiness_reflects_a_closed_store() {
    let app = spawn_app().await;
    app.app.store.close().await;
    let (s, b) = app.get("/api/ready", None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"))
    );
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let app = spawn_app().await;
    let u = app.user().await;
    let (s, _) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": [hr("m1", 1, 60), hr("m2", 2, 999)]}),
            Some(&u.access),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    ws.send(&json!({"type": "samples", "seq": 1, "samples": [hr("m3", 3, 61)]}))
        .await;
    ws.recv_type("ack").await;

    let resp = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    for needle in [
        "clarity_samples_total{outcome=\"accepted\",transport=\"rest\"}",
        "clarity_samples_total{outcome=\"rejected\",transport=\"rest\"}",
        "clarity_samples_total{outcome=\"accepted\",transport=\"ws\"}",
        "clarity_ws_connections",
        "clarity_ws_frames_received_total{type=\"samples\"}",
        "clarity_ack_latency_seconds_bucket",
        "clarity_store_commit_seconds_bucket",
        "clarity_http_requests_total",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }
}
