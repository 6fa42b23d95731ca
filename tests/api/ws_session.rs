//! Session lifecycle: token expiry and in-band refresh, heartbeats, graceful shutdown.
//! Heartbeat and expiry tests run on paused tokio time with the production defaults
//! (15 min tokens, 30 s heartbeats), so they take no wall-clock time. Time is paused once the
//! session is open: account and token checks read the store, whose bounded waits paused
//! time could skip past.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Frame, TestApp, hr, spawn_app, spawn_app_with, spawn_in};

const LONG: Duration = Duration::from_secs(3600);

/// Paused time auto-advances even while socket I/O is in flight, so a server that pings
/// would race the client's pongs against its own close; token tests switch pings off.
async fn app_without_pings() -> TestApp {
    spawn_app_with(|c| c.server.heartbeat_interval_ms = 24 * 3600 * 1000).await
}

#[tokio::test]
async fn expiring_token_is_announced_then_the_session_closes_4001() {
    let app = app_without_pings().await;
    let token = app.mint(app.account().await, Duration::from_secs(900));
    let mut ws = app.ws(&token).await;
    let welcome = ws.welcome().await;
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let warn = ws.recv_within(LONG).await;
    assert_eq!(warn["type"], "token_expiring", "{warn}");
    assert_eq!(warn["expires_at"], welcome["token_expires_at"]);
    let left = warn["expires_in_ms"].as_u64().unwrap();
    assert!((55_000..=61_000).contains(&left), "warned {left} ms ahead");
    let waited = started.elapsed().as_secs();
    assert!((835..=845).contains(&waited), "warning after {waited} s");
    let (code, frames) = ws.until_close_within(LONG).await;
    assert_eq!(code, 4001);
    assert_eq!(frames.last().unwrap()["code"], "token_expired");
    let total = started.elapsed().as_secs();
    assert!((895..=905).contains(&total), "closed after {total} s");
}

#[tokio::test]
async fn in_band_refresh_extends_the_session() {
    let app = app_without_pings().await;
    let user = app.account().await;
    let mut ws = app.ws(&app.mint(user, Duration::from_secs(900))).await;
    ws.welcome().await;
    tokio::time::pause();
    assert_eq!(ws.recv_within(LONG).await["type"], "token_expiring");
    let fresh = app.mint(user, Duration::from_secs(1800));
    ws.send(&json!({"type": "refresh", "access_token": fresh}))
        .await;
    let refreshed = ws.recv_within(LONG).await;
    assert_eq!(refreshed["type"], "refreshed", "{refreshed}");
    ws.send(&json!({"type": "ping"})).await;
    assert_eq!(ws.recv_within(LONG).await["type"], "pong");
    let before = tokio::time::Instant::now();
    // The old expiry passes without a close; the next event is the new token's warning.
    let next = ws.recv_within(LONG).await;
    assert_eq!(next["type"], "token_expiring", "{next}");
    assert_eq!(next["expires_at"], refreshed["expires_at"]);
    assert!(before.elapsed() > Duration::from_secs(1700));
}

#[tokio::test]
async fn refresh_with_a_bad_or_foreign_token_closes_4003() {
    let app = app_without_pings().await;
    let user = app.account().await;
    for bad in [
        app.mint(app.account().await, Duration::from_secs(900)),
        "garbage".to_owned(),
    ] {
        let mut ws = app.ws(&app.mint(user, Duration::from_secs(900))).await;
        ws.welcome().await;
        ws.send(&json!({"type": "refresh", "access_token": bad}))
            .await;
        let (code, frames) = ws.until_close_within(LONG).await;
        assert_eq!(code, 4003);
        assert_eq!(frames.last().unwrap()["code"], "auth_invalid");
    }
}

#[tokio::test]
async fn silent_peer_is_dropped_after_missed_heartbeats() {
    let app = spawn_app().await;
    let mut ws = app
        .ws(&app.mint(app.account().await, Duration::from_secs(900)))
        .await;
    ws.welcome().await;
    tokio::time::pause();
    // Not reading means not answering pings.
    tokio::time::sleep(Duration::from_secs(200)).await;
    // The server gave up on us: the session task is gone and counted as a heartbeat timeout.
    assert!(app.app.sessions.is_empty(), "session still running");
    let metrics = app.app.metrics.render();
    assert!(
        metrics.contains("clarity_ws_closes_total{reason=\"heartbeat_timeout\"}"),
        "{metrics}"
    );
    // What reaches a peer this late depends on its socket; if anything, it is the documented
    // error and close code (tungstenite may fail first on the pongs it owes for the pings).
    loop {
        match ws.next_frame().await {
            Frame::Ping => {}
            Frame::Json(v) => assert_eq!(v["code"], "heartbeat_timeout", "{v}"),
            Frame::Close(code, _) => {
                assert_eq!(code, 4002);
                break;
            }
            Frame::Ended => break,
        }
    }
}

#[tokio::test]
async fn responsive_peer_stays_connected() {
    let app = spawn_app().await;
    let mut ws = app
        .ws(&app.mint(app.account().await, Duration::from_secs(3600)))
        .await;
    ws.welcome().await;
    tokio::time::pause();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let mut pings = 0;
    // Reading answers pings (tungstenite pongs automatically).
    while let Ok(frame) = tokio::time::timeout_at(deadline, ws.next_frame()).await {
        match frame {
            Frame::Ping => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 18, "{pings} pings in 10 minutes");
}

#[tokio::test]
async fn shutdown_acks_what_arrived_then_says_going_away() {
    let mut app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    for seq in 0..20u64 {
        let batch: Vec<Value> = (0..60)
            .map(|i| hr(&format!("{seq}-{i}"), (seq * 60 + i) as i64, 60))
            .collect();
        ws.send(&json!({"type": "samples", "seq": seq, "samples": batch}))
            .await;
    }
    app.begin_shutdown();
    let (code, frames) = ws.until_close().await;
    assert_eq!(code, 1001);
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "going_away", "{frames:?}");
    assert!(last["reconnect_after_ms"].as_u64().is_some());
    let acked: Vec<u64> = frames
        .iter()
        .filter(|f| f["type"] == "ack")
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        acked,
        (0..acked.len() as u64).collect::<Vec<_>>(),
        "acks in order"
    );
    let email = u.email.clone();
    let dir = app.stop().await;

    // No new connections once stopped; every acked sample is there after a restart.
    let app = spawn_in(dir, |_| {}).await;
    let (access, _) = app.login(&email).await;
    let stored = app.all_samples(&access, "").await;
    assert!(
        stored.len() >= acked.len() * 60,
        "{} stored, {} acked batches",
        stored.len(),
        acked.len()
    );
    for seq in &acked {
        for i in 0..60 {
            let id = format!("{seq}-{i}");
            assert!(
                stored.iter().any(|s| s["id"] == id.as_str()),
                "acked sample {id} missing"
            );
        }
    }
}

#[tokio::test]
async fn upgrades_are_refused_during_shutdown() {
    let mut app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    app.begin_shutdown();
    let (code, _) = ws.until_close().await;
    assert_eq!(code, 1001);
    let url = format!("{}?access_token={}", app.ws_url(), u.access);
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    app.stop().await;
}
