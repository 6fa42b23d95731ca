use std::time::Duration;

use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{hr, spawn_app, spawn_app_with};

#[tokio::test]
async fn handshake_requires_a_valid_token() {
    let app = spawn_app().await;
    let u = app.user().await;
    // No token, bad token: 401 with a JSON body, before any upgrade.
    for req in [
        app.ws_url(),
        format!("{}?access_token=not-a-jwt", app.ws_url()),
    ] {
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401);
                let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
                assert_eq!(body["error"]["code"], "unauthorized");
            }
            other => panic!("expected HTTP 401, got {other:?}"),
        }
    }
    // Query-string token (websocat, browsers).
    let url = format!("{}?access_token={}", app.ws_url(), u.access);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("query token accepted");
    let mut ws = crate::common::Ws {
        stream: {
            let _ = ws.send(Message::text("{\"type\":\"ping\"}")).await;
            ws
        },
    };
    let welcome = ws.welcome().await;
    assert_eq!(welcome["user_id"], u.user_id.to_string());
    ws.recv_type("pong").await;

    // A plain GET with a good token is told to upgrade.
    let (s, b) = app.get("/api/v1/ws", Some(&u.access)).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UPGRADE_REQUIRED, Some("upgrade_required"))
    );
}

#[tokio::test]
async fn welcome_announces_session_and_limits() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    let w = ws.welcome().await;
    assert_eq!(w["protocol_version"], 1);
    assert_eq!(w["user_id"], u.user_id.to_string());
    assert_eq!(w["heartbeat_interval_ms"], 30_000);
    assert_eq!(w["limits"]["max_frame_bytes"], 1_048_576);
    assert_eq!(w["limits"]["max_samples_per_frame"], 5000);
    assert_eq!(w["limits"]["max_inflight_batches"], 8);
    let exp =
        chrono::DateTime::parse_from_rfc3339(w["token_expires_at"].as_str().unwrap()).unwrap();
    let left = exp.timestamp() - chrono::Utc::now().timestamp();
    assert!((880..=900).contains(&left), "token expiry {left}s away");
}

#[tokio::test]
async fn ack_means_stored() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let batch: Vec<Value> = (0..60).map(|i| hr(&format!("w{i}"), i, 50 + i)).collect();
    ws.send(&json!({"type": "samples", "seq": 7, "samples": batch}))
        .await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(
        (
            ack["seq"].as_u64(),
            ack["accepted"].as_u64(),
            ack["duplicates"].as_u64()
        ),
        (Some(7), Some(60), Some(0))
    );
    assert_eq!(ack["rejected"], json!([]));
    // Readable through REST the moment the ack arrives.
    let stored = app.all_samples(&u.access, "").await;
    assert_eq!(stored.len(), 60);

    // Same batch again plus one bad sample: duplicates and a rejection, nothing new stored.
    let mut again = batch.clone();
    again.push(
        json!({"id": "bad", "kind": "heart_rate", "start": "2026-11-01T00:00:00Z", "value": 5}),
    );
    ws.send(&json!({"type": "samples", "seq": 8, "samples": again}))
        .await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(
        (ack["accepted"].as_u64(), ack["duplicates"].as_u64()),
        (Some(0), Some(60))
    );
    assert_eq!(
        ack["rejected"],
        json!([{"index": 60, "code": "out_of_range", "message": "heart_rate must be within 20..=300 count/min; got 5"}])
    );
    assert_eq!(app.all_samples(&u.access, "").await.len(), 60);
}

#[tokio::test]
async fn acks_follow_frame_order_with_batches_in_flight() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    for seq in 0..40u64 {
        let batch: Vec<Value> = (0..30)
            .map(|i| hr(&format!("{seq}-{i}"), (seq * 30 + i) as i64, 70))
            .collect();
        ws.send(&json!({"type": "samples", "seq": seq, "samples": batch}))
            .await;
    }
    for seq in 0..40u64 {
        let ack = ws.recv_type("ack").await;
        assert_eq!(ack["seq"].as_u64(), Some(seq));
        assert_eq!(ack["accepted"].as_u64(), Some(30));
    }
    assert_eq!(app.all_samples(&u.access, "").await.len(), 1200);
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_session_stays_open() {
    let app = spawn_app_with(|c| c.limits.max_samples_per_frame = 10).await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let cases: Vec<(String, &str, Option<u64>)> = vec![
        ("{not json".into(), "invalid_json", None),
        ("[1,2,3]".into(), "invalid_frame", None),
        (json!({"seq": 1}).to_string(), "invalid_frame", None),
        (
            json!({"type": "teleport", "seq": 2}).to_string(),
            "unknown_type",
            Some(2),
        ),
        (
            json!({"type": "samples", "samples": []}).to_string(),
            "invalid_frame",
            None,
        ),
        (
            json!({"type": "samples", "seq": -1, "samples": []}).to_string(),
            "invalid_frame",
            None,
        ),
        (
            json!({"type": "samples", "seq": 3}).to_string(),
            "invalid_frame",
            Some(3),
        ),
        (
            json!({"type": "samples", "seq": 4, "samples": {"id": 1}}).to_string(),
            "invalid_frame",
            Some(4),
        ),
        (
            json!({"type": "samples", "seq": 5, "samples": vec![hr("x", 1, 60); 11]}).to_string(),
            "too_many_samples",
            Some(5),
        ),
        (
            json!({"type": "refresh"}).to_string(),
            "invalid_frame",
            None,
        ),
    ];
    for (text, code, seq) in cases {
        ws.send_text(&text).await;
        let e = ws.recv_type("error").await;
        assert_eq!(e["code"], code, "{text}");
        assert_eq!(e["seq"].as_u64(), seq, "{text}");
    }
    ws.stream
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    assert_eq!(ws.recv_type("error").await["code"], "unsupported_frame");
    // Still open and working.
    ws.send(&json!({"type": "samples", "seq": 9, "samples": [hr("after", 1, 60)]}))
        .await;
    assert_eq!(ws.recv_type("ack").await["accepted"], 1);
    assert_eq!(
        app.all_samples(&u.access, "").await.len(),
        1,
        "nothing from the bad frames was stored"
    );
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let app = spawn_app_with(|c| c.limits.max_frame_bytes = 2048).await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    assert_eq!(ws.welcome().await["limits"]["max_frame_bytes"], 2048);
    let batch: Vec<Value> = (0..40).map(|i| hr(&format!("big-{i}"), i, 60)).collect();
    ws.send(&json!({"type": "samples", "seq": 1, "samples": batch}))
        .await;
    let (code, frames) = ws.until_close().await;
    assert_eq!(code, 1009);
    assert_eq!(frames.last().unwrap()["code"], "frame_too_large");

    // Far over the limit: tungstenite refuses it without buffering it whole. The explanation
    // arrives; the close frame may be lost to the TCP reset that unread bytes cause.
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    ws.send_text(&"x".repeat(200_000)).await;
    let mut explained = false;
    loop {
        match ws.next_frame().await {
            crate::common::Frame::Json(v) => {
                assert_eq!(v["code"], "frame_too_large");
                explained = true;
            }
            crate::common::Frame::Close(code, _) => {
                assert_eq!(code, 1009);
                break;
            }
            crate::common::Frame::Ended => break,
            crate::common::Frame::Ping => {}
        }
    }
    assert!(explained);
}

#[tokio::test]
async fn rate_limit_abuse_closes_with_4008() {
    let app = spawn_app_with(|c| {
        c.limits.max_frames_per_sec = 5;
        c.limits.frame_burst = 5;
    })
    .await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    for _ in 0..20 {
        ws.send(&json!({"type": "ping"})).await;
    }
    let (code, frames) = ws.until_close().await;
    assert_eq!(code, 4008);
    let pongs = frames.iter().filter(|f| f["type"] == "pong").count();
    let limited: Vec<&Value> = frames
        .iter()
        .filter(|f| f["code"] == "rate_limited")
        .collect();
    assert_eq!(pongs, 5, "the burst is served");
    assert_eq!(limited.len(), 5, "then `frame_burst` warnings");
    assert!(
        limited
            .iter()
            .all(|f| f["retry_after_ms"].as_u64().unwrap() > 0)
    );
    assert_eq!(frames.last().unwrap()["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn rate_limited_client_that_backs_off_keeps_its_session() {
    let app = spawn_app_with(|c| {
        c.limits.max_frames_per_sec = 20;
        c.limits.frame_burst = 2;
    })
    .await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    for _ in 0..3 {
        ws.send(&json!({"type": "ping"})).await;
    }
    ws.recv_type("pong").await;
    ws.recv_type("pong").await;
    let e = ws.recv_type("error").await;
    assert_eq!(e["code"], "rate_limited");
    tokio::time::sleep(Duration::from_millis(
        e["retry_after_ms"].as_u64().unwrap() + 20,
    ))
    .await;
    ws.send(&json!({"type": "ping"})).await;
    ws.recv_type("pong").await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_at_the_write_timeout() {
    let app = spawn_app_with(|c| {
        c.limits.outbound_queue = 4;
        c.limits.ws_write_timeout_ms = 1000;
        c.limits.max_frames_per_sec = 1_000_000;
        c.limits.frame_burst = 1_000_000;
    })
    .await;
    let u = app.user().await;
    let mut req = app.ws_url().into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", u.access).parse().unwrap(),
    );
    let (mut stream, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    // Frames whose acks are large (one rejection per sample), sent without ever reading, until
    // the server stops reading from us. Each ack is ~70 KB; kernel buffers hold a few MB.
    let bad: Vec<Value> = (0..1000)
        .map(|i| json!({"id": format!("b{i}"), "kind": "heart_rate", "start": "2026-11-01T00:00:00Z", "value": 1}))
        .collect();
    let frame = json!({"type": "samples", "seq": 0, "samples": bad}).to_string();
    for _ in 0..5000 {
        match tokio::time::timeout(
            Duration::from_secs(2),
            stream.send(Message::text(frame.clone())),
        )
        .await
        {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    // Our sends stopped (the server stopped reading: its replies to us are backed up) for
    // longer than the write timeout: the server has dropped us. Reading now gets what the
    // kernel buffers held, then the end; no close frame could be sent.
    let mut ws = crate::common::Ws { stream };
    let end = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match ws.next_frame().await {
                crate::common::Frame::Close(code, _) => return Some(code),
                crate::common::Frame::Ended => return None,
                _ => {}
            }
        }
    })
    .await
    .expect("session ends");
    assert_eq!(end, None);
    assert_eq!(app.app.hub.session_count(u.user_id), 0);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("clarity_ws_closes_total{reason=\"write_timeout\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn client_close_is_answered() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    ws.stream
        .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    let (code, frames) = ws.until_close().await;
    assert_eq!((code, frames.len()), (1000, 0));
}

#[tokio::test]
async fn big_batches_take_the_same_path() {
    // Over 64 KiB, validation runs on the blocking pool; results must not differ.
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let mut batch: Vec<Value> = (0..3000).map(|i| hr(&format!("big-{i}"), i, 60)).collect();
    batch[1234]["value"] = json!(1000);
    let text = json!({"type": "samples", "seq": 1, "samples": batch}).to_string();
    assert!(text.len() > 64 * 1024);
    ws.send_text(&text).await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(
        (ack["accepted"].as_u64(), ack["duplicates"].as_u64()),
        (Some(2999), Some(0))
    );
    assert_eq!(ack["rejected"][0]["index"], 1234);

    let rest: Vec<Value> = (0..5000).map(|i| hr(&format!("big-{i}"), i, 60)).collect();
    let (s, b) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": rest}),
            Some(&u.access),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (b["accepted"].as_u64(), b["duplicates"].as_u64()),
        (Some(2001), Some(2999))
    );
    assert_eq!(app.all_samples(&u.access, "").await.len(), 5000);
}

#[tokio::test]
async fn concurrent_duplicates_are_stored_once() {
    // Four sessions of one user race to send the same 20 batches; every id is accepted by
    // exactly one of them and reported as a duplicate to the others.
    let app = spawn_app().await;
    let u = app.user().await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut ws = app.ws(&u.access).await;
        ws.welcome().await;
        clients.push(ws);
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let (mut accepted, mut duplicates) = (0, 0);
                for seq in 0..20u64 {
                    let batch: Vec<Value> = (0..50)
                        .map(|i| hr(&format!("race-{seq}-{i}"), (seq * 50 + i) as i64, 70))
                        .collect();
                    ws.send(&json!({"type": "samples", "seq": seq, "samples": batch}))
                        .await;
                }
                for _ in 0..20 {
                    let ack = ws.recv_type("ack").await;
                    accepted += ack["accepted"].as_u64().unwrap();
                    duplicates += ack["duplicates"].as_u64().unwrap();
                }
                (accepted, duplicates)
            })
        })
        .collect();
    let (mut accepted, mut duplicates) = (0, 0);
    for t in tasks {
        let (a, d) = t.await.unwrap();
        accepted += a;
        duplicates += d;
    }
    assert_eq!((accepted, duplicates), (1000, 3000));
    assert_eq!(app.all_samples(&u.access, "").await.len(), 1000);
}
