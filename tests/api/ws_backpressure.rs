//! What a client that sends faster than it reads costs, through real sockets: pipelined
//! frames within the burst are all answered, acks stay small whatever the frame held, a frame
//! far over the limit always gets its close frame, and a client that does not read its
//! backlog is dropped at the write timeout.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Ws, spawn_app, spawn_app_with};

/// Writes `n` pings in one go (one flush), as a client pipelining them would.
async fn pipeline_pings(ws: &mut Ws, n: usize) {
    for _ in 0..n {
        ws.stream
            .feed(Message::text(json!({"type": "ping"}).to_string()))
            .await
            .unwrap();
    }
    ws.stream.flush().await.unwrap();
}

#[tokio::test]
async fn pipelined_pings_within_the_burst_are_all_answered() {
    let app = spawn_app().await;
    let u = app.user().await;
    for _ in 0..3 {
        let mut ws = app.ws(&u.access).await;
        let burst = ws.welcome().await["limits"]["frame_burst"]
            .as_u64()
            .unwrap();
        assert_eq!(burst, 100, "protocol/README.md documents a burst of 100");
        pipeline_pings(&mut ws, 100).await;
        for i in 0..100 {
            let v = ws.recv().await;
            assert_eq!(v["type"], "pong", "frame {i}: {v}");
        }
        // Still open: the next frame is answered (by a pong, or by `rate_limited` while the
        // bucket refills), not by a close.
        ws.send(&json!({"type": "ping"})).await;
        let v = ws.recv().await;
        assert!(
            v["type"] == "pong" || v["code"] == "rate_limited",
            "session still open: {v}"
        );
    }
}

#[tokio::test]
async fn pipelining_far_past_the_burst_closes_4008_not_4009() {
    // One frame a second after the burst of 100: the 100 rate-limited frames in a row that
    // close the session then fit in a second even on a loaded machine (at the default 50 a
    // second, a server slowed to 20 ms a frame earns a token per frame and never strikes out).
    let app = spawn_app_with(|c| c.limits.max_frames_per_sec = 1).await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    pipeline_pings(&mut ws, 300).await;
    let (code, frames) = ws.until_close().await;
    assert_eq!(code, 4008, "{:?}", frames.last());
    assert_eq!(frames.last().unwrap()["code"], "rate_limit_exceeded");
    let pongs = frames.iter().filter(|f| f["type"] == "pong").count();
    assert!(pongs >= 100, "the burst is answered: {pongs} pongs");
    // The close follows `frame_burst` rate_limited errors in a row.
    let before = &frames[frames.len() - 101..frames.len() - 1];
    assert!(
        before.iter().all(|f| f["code"] == "rate_limited"),
        "{before:?}"
    );
}

#[tokio::test]
async fn an_ack_lists_at_most_100_rejections_with_short_messages_and_counts_the_rest() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    // 2,000 samples whose unknown kind is 300 characters long: echoed in full, the ack would
    // be larger than the frame.
    let kind = "k".repeat(300);
    let samples: Vec<Value> = (0..2000)
        .map(|i| json!({"id": format!("x{i}"), "kind": kind, "start": "2026-01-01T00:00:00Z", "value": 1}))
        .collect();
    let frame = json!({"type": "samples", "seq": 1, "samples": samples}).to_string();
    ws.send_text(&frame).await;
    let ack = ws.recv_type("ack").await;
    let size = ack.to_string().len();
    let rejected = ack["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 100, "{}", &ack.to_string()[..300]);
    assert_eq!(ack["rejected_omitted"], 1900);
    assert_eq!(ack["accepted"], 0);
    assert_eq!(rejected[0]["index"], 0);
    assert_eq!(rejected[99]["index"], 99);
    for r in rejected {
        assert_eq!(r["code"], "unknown_kind");
        let message = r["message"].as_str().unwrap();
        assert!(message.chars().count() <= 401, "{r}");
        // The list of kinds it promises is whole: it fits the message limit.
        assert!(message.ends_with("phq9, gad7"), "{r}");
    }
    assert!(
        size < 64 * 1024,
        "an ack of {size} bytes for a frame of {} bytes",
        frame.len()
    );

    // Over REST the report has the same bounds.
    let (status, body) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": samples}),
            Some(&u.access),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"].as_array().unwrap().len(), 100);
    assert_eq!(body["rejected_omitted"], 1900);
}

#[tokio::test]
async fn a_frame_far_over_the_limit_always_closes_with_1009_never_a_reset() {
    let app = spawn_app_with(|c| c.server.socket_send_buffer = 4096).await;
    let u = app.user().await;
    // Acks of ~8 KB each, so that the close frame is still in the server's send buffer when
    // the session ends: closing then with the big frame unread would reset the connection and
    // destroy it.
    let bad: Vec<Value> = (0..100)
        .map(|i| crate::common::hr(&format!("b{i}"), i, 1))
        .collect();
    let mut frames = Vec::new();
    for seq in 0..3 {
        let f = json!({"type": "samples", "seq": seq, "samples": bad}).to_string();
        frames.extend(client_frame(&f));
    }
    let big = 16 * 1024 * 1024;
    frames.extend([0x81, 0xff]);
    frames.extend((big as u64).to_be_bytes());
    frames.extend([0, 0, 0, 0]);
    for round in 0..20 {
        let tcp = small_buffer_client(app.addr, &u.access).await;
        let (mut rd, mut wr) = tcp.into_split();
        let head = frames.clone();
        let writer = tokio::spawn(async move {
            wr.write_all(&head).await?;
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..big / chunk.len() {
                wr.write_all(&chunk).await?;
            }
            std::io::Result::Ok(())
        });
        // Not reading yet: the acks fill the buffers between us.
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Then reading at a modest pace, as a phone on a slow link would: the end of the
        // answer is still on the server's side when it is done with the connection.
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1024];
        let close = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(code) = close_code(&got) {
                    return Ok(code);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                match rd.read(&mut buf).await {
                    Ok(0) => return Err("connection ended".to_owned()),
                    Err(e) => return Err(e.to_string()),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .expect("the server answers");
        assert_eq!(close, Ok(1009), "round {round}: no close frame");
        writer.abort();
    }
}

/// The code of the first close frame in the server's byte stream (unmasked frames), if any.
fn close_code(mut bytes: &[u8]) -> Option<u16> {
    while bytes.len() >= 2 {
        let (opcode, len7) = (bytes[0] & 0x0f, (bytes[1] & 0x7f) as usize);
        let (len, head) = match len7 {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return None,
            n => (n, 2),
        };
        if bytes.len() < head + len {
            return None;
        }
        if opcode == 0x8 {
            let p = &bytes[head..head + len];
            return Some(u16::from_be_bytes([p[0], p[1]]));
        }
        bytes = &bytes[head + len..];
    }
    None
}

/// A WebSocket handshake over a socket with a small receive buffer, by hand, so that the test
/// controls every byte it reads.
async fn small_buffer_client(addr: std::net::SocketAddr, token: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    let req = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// A masked client text frame.
fn client_frame(text: &str) -> Vec<u8> {
    let payload = text.as_bytes();
    let mask = [1u8, 2, 3, 4];
    let mut out = vec![0x81];
    match payload.len() {
        n @ 0..126 => out.push(0x80 | n as u8),
        n @ 126..65536 => {
            out.push(0x80 | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[tokio::test]
async fn a_client_that_reads_a_trickle_of_its_backlog_is_dropped_at_the_write_timeout() {
    const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
    let app = spawn_app_with(|c| {
        c.limits.ws_write_timeout_ms = WRITE_TIMEOUT.as_millis() as u64;
        c.server.socket_send_buffer = 4096;
        c.limits.max_frames_per_sec = 1_000_000;
        c.limits.frame_burst = 1_000_000;
    })
    .await;
    let u = app.user().await;
    let tcp = small_buffer_client(app.addr, &u.access).await;
    let (mut rd, mut wr) = tcp.into_split();
    // Pings as fast as the server takes them (bounded), so replies are always owed.
    let pings = client_frame(&json!({"type": "ping"}).to_string()).repeat(64);
    let writer = tokio::spawn(async move {
        for _ in 0..100_000 {
            if wr.write_all(&pings).await.is_err() {
                break;
            }
        }
    });
    // The client reads 512 bytes every 50 ms: every single write completes well within the
    // write timeout, but the backlog never drains.
    let started = Instant::now();
    let margin = Duration::from_secs(4);
    let mut buf = [0u8; 512];
    let mut dropped = false;
    while started.elapsed() < WRITE_TIMEOUT + margin {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if app.app.hub.session_count(u.user_id) == 0 {
            dropped = true;
            break;
        }
        match tokio::time::timeout(Duration::from_millis(50), rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                dropped = true;
                break;
            }
            _ => {}
        }
    }
    assert!(
        dropped,
        "session still open {:?} after the backlog began (write timeout {WRITE_TIMEOUT:?})",
        started.elapsed()
    );
    // The connection ends for the client too.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection was not closed");
    writer.abort();
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("clarity_ws_closes_total{reason=\"write_timeout\"}"),
        "{metrics}"
    );
}
