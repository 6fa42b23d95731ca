//! Connection-level limits, through real sockets: the handshake deadline (slowloris), the idle
//! deadline, and connections per client address.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::spawn_app_with;

/// Reads until the server closes; returns what it sent and how long that took.
async fn read_until_closed(tcp: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("connection still open after {limit:?}"),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_client_trickling_headers_is_cut_at_the_handshake_deadline() {
    let app = spawn_app_with(|c| c.server.handshake_timeout_ms = 300).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (sent, took) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(
        sent.is_empty(),
        "nothing answered to a half request: {sent}"
    );
    assert!(
        took >= Duration::from_millis(250),
        "not before the deadline: {took:?}"
    );
    // A client that sends its request in time is served as usual.
    let (s, _) = app.get("/api/health", None).await;
    assert_eq!(s, 200);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("clarity_connections_timed_out_total{phase=\"handshake\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn idle_connections_close_but_live_websockets_stay() {
    let app = spawn_app_with(|c| {
        // Margins for a loaded machine: the client must answer within the heartbeat timeout
        // (4 x 400 ms) and the idle deadline (2 s), and it reads only when polled.
        c.server.idle_timeout_secs = 2;
        c.server.heartbeat_interval_ms = 400;
        c.server.heartbeat_misses = 4;
    })
    .await;
    // An idle keep-alive connection goes after the idle deadline.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (sent, took) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    // A WebSocket whose client answers the server's pings (tungstenite does, while read)
    // outlives the idle deadline several times over.
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let until = Instant::now() + Duration::from_millis(6500);
    while Instant::now() < until {
        let _ = tokio::time::timeout(Duration::from_millis(100), ws.next_frame()).await;
    }
    ws.send(&serde_json::json!({"type": "ping"})).await;
    ws.recv_type("pong").await;
}

#[tokio::test]
async fn connections_per_address_are_capped_with_a_json_429() {
    let app = spawn_app_with(|c| c.server.max_connections_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // Let the server accept them before the fourth arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = TcpStream::connect(app.addr).await.unwrap();
    let (sent, _) = read_until_closed(&mut fourth, Duration::from_secs(5)).await;
    assert!(sent.starts_with("HTTP/1.1 429"), "{sent}");
    let body = sent.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"]["code"], "too_many_connections");
    // A slot frees when a connection closes.
    held.pop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resp = reqwest::Client::new()
        .get(app.url("/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

fn batch(prefix: &str, n: usize) -> serde_json::Value {
    let samples: Vec<serde_json::Value> = (0..n)
        .map(|i| crate::common::hr(&format!("{prefix}-{i}"), i as i64, 70))
        .collect();
    serde_json::Value::Array(samples)
}

#[tokio::test]
async fn samples_per_second_are_limited_per_session_and_per_user() {
    let app = spawn_app_with(|c| {
        c.limits.max_samples_per_frame = 100;
        c.limits.max_samples_per_request = 100;
        c.limits.max_samples_per_sec = 100;
        c.limits.max_user_samples_per_sec = 150;
    })
    .await;
    let u = app.user().await;
    let mut a = app.ws(&u.access).await;
    a.welcome().await;
    // Session budget: bursts of 200, then 100 a second.
    for seq in 0..2 {
        a.send(&serde_json::json!({"type": "samples", "seq": seq, "samples": batch(&format!("a{seq}"), 100)}))
            .await;
        assert_eq!(a.recv_type("ack").await["accepted"], 100);
    }
    a.send(&serde_json::json!({"type": "samples", "seq": 2, "samples": batch("a2", 100)}))
        .await;
    let e = a.recv_type("error").await;
    assert_eq!(e["code"], "rate_limited", "{e}");
    assert_eq!(e["seq"], 2);
    assert!(e["message"].as_str().unwrap().contains("session"), "{e}");
    let wait = e["retry_after_ms"].as_u64().unwrap();
    assert!((1..=1000).contains(&wait), "{e}");
    // The user's budget (300 burst) has 100 left: another session gets it, then REST is
    // refused with 429 and Retry-After.
    let mut b = app.ws(&u.access).await;
    b.welcome().await;
    b.send(&serde_json::json!({"type": "samples", "seq": 0, "samples": batch("b0", 100)}))
        .await;
    assert_eq!(b.recv_type("ack").await["accepted"], 100);
    let (s, body) = app
        .post(
            "/api/v1/health-data",
            &serde_json::json!({"samples": batch("r0", 100)}),
            Some(&u.access),
        )
        .await;
    assert_eq!(s, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    // Refused batches were not stored; after the wait the session's batch goes through.
    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    a.send(&serde_json::json!({"type": "samples", "seq": 3, "samples": batch("a2", 100)}))
        .await;
    assert_eq!(a.recv_type("ack").await["accepted"], 100);
}

#[tokio::test]
async fn sessions_per_user_are_capped_at_the_handshake() {
    let app = spawn_app_with(|c| c.limits.max_sessions_per_user = 2).await;
    let u = app.user().await;
    let mut first = app.ws(&u.access).await;
    first.welcome().await;
    let mut second = app.ws(&u.access).await;
    second.welcome().await;
    let url = format!("{}?access_token={}", app.ws_url(), u.access);
    match tokio_tungstenite::connect_async(url.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
            let body: serde_json::Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        }
        other => panic!("third session not refused: {:?}", other.map(|_| ())),
    }
    // Another user is not affected, and a slot frees when a session ends.
    let v = app.user().await;
    app.ws(&v.access).await.welcome().await;
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok((stream, _)) = tokio_tungstenite::connect_async(url.clone()).await {
            let mut ws = crate::common::Ws { stream };
            ws.welcome().await;
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_body_announced_over_the_limit_is_refused_413_at_once() {
    let app = spawn_app_with(|c| c.limits.max_body_bytes = 1024 * 1024).await;
    let u = app.user().await;
    for path in ["/api/v1/health-data", "/api/v1/auth/login"] {
        let mut tcp = TcpStream::connect(app.addr).await.unwrap();
        // Headers only: the body would follow, but a server that waits for it waits for ever.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n",
            u.access
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        // Hang guard only: the answer comes at once, not at a timeout.
        let (answer, _) = read_until_closed(&mut tcp, Duration::from_secs(3)).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        let body = &answer[answer.find("\r\n\r\n").expect("a body") + 4..];
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1048576"),
            "the message names the limit: {body}"
        );
    }
}
