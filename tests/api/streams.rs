//! Shares and stream subscriptions: grant/deny/revoke, offsets, resume with `since`, history
//! limits, and a stalled subscriber that must neither grow nor slow anything.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{Frame, Session, TestApp, Ws, spawn_app, spawn_app_with};

pub(crate) async fn share(
    app: &TestApp,
    owner: &Session,
    grantee: &str,
    scope: &str,
) -> (StatusCode, Value) {
    app.post(
        "/api/v1/shares",
        &json!({"grantee_email": grantee, "scope": scope}),
        Some(&owner.access),
    )
    .await
}

pub(crate) async fn delete(app: &TestApp, path: &str, token: &str) -> StatusCode {
    app.http
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// One new minute of activity then `analyze`: one new analysis and one new insight. Returns
/// when the device's own session has both events; their offsets.
pub(crate) async fn produce(device: &mut Ws, minute: i64) -> (u64, u64) {
    let t0 = crate::common::yesterday() + chrono::Duration::hours(6);
    let start = (t0 + chrono::Duration::minutes(minute)).to_rfc3339();
    device
        .send(&json!({"type": "samples", "seq": minute, "samples": [
            {"id": format!("m{minute}"), "kind": "activity_count", "start": start, "value": (minute * 13) % 400}
        ]}))
        .await;
    device.send(&json!({"type": "analyze"})).await;
    let (mut analysis, mut insight) = (None, None);
    while analysis.is_none() || insight.is_none() {
        let v = device.recv().await;
        match v["type"].as_str().unwrap() {
            "analysis" => analysis = v["offset"].as_u64(),
            "insight" => insight = v["offset"].as_u64(),
            "ack" | "insight_delta" => {}
            other => panic!("unexpected frame {other}: {v}"),
        }
    }
    (analysis.unwrap(), insight.unwrap())
}

async fn subscribe(ws: &mut Ws, user: &Session, stream: &str, since: Option<u64>) -> Value {
    let mut frame = json!({"type": "subscribe", "stream": stream, "user_id": user.user_id});
    if let Some(s) = since {
        frame["since"] = json!(s);
    }
    ws.send(&frame).await;
    ws.recv().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_are_granted_listed_and_deleted_only_by_their_parties() {
    let app = spawn_app().await;
    let (owner, viewer, stranger) = (app.user().await, app.user().await, app.user().await);

    let (status, created) = share(&app, &owner, &viewer.email.to_uppercase(), "insights").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["owner_id"], json!(owner.user_id));
    assert_eq!(created["grantee_id"], json!(viewer.user_id));
    assert_eq!(created["grantee_email"], json!(viewer.email));
    assert_eq!(created["scope"], "insights");
    let id = created["share_id"].as_str().unwrap().to_owned();

    // The same grant again is the same share.
    let (status, again) = share(&app, &owner, &viewer.email, "insights").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["share_id"], json!(id));

    let (status, body) = share(&app, &owner, "nobody@example.com", "insights").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("grantee_not_found"))
    );
    let (status, body) = share(&app, &owner, &owner.email, "insights").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, body) = share(&app, &owner, &viewer.email, "samples").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, _) = app
        .post(
            "/api/v1/shares",
            &json!({"grantee_email": viewer.email, "scope": "insights"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, mine) = app.get("/api/v1/shares", Some(&owner.access)).await;
    assert_eq!(mine["granted"].as_array().unwrap().len(), 1);
    assert_eq!(mine["received"], json!([]));
    let (_, theirs) = app.get("/api/v1/shares", Some(&viewer.access)).await;
    assert_eq!(theirs["granted"], json!([]));
    assert_eq!(theirs["received"][0]["share_id"], json!(id));
    assert_eq!(theirs["received"][0]["owner_email"], json!(owner.email));

    let path = format!("/api/v1/shares/{id}");
    assert_eq!(
        delete(&app, &path, &stranger.access).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(&app, "/api/v1/shares/not-a-uuid", &owner.access).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(&app, &path, &owner.access).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&app, &path, &owner.access).await,
        StatusCode::NOT_FOUND
    );
    let (_, theirs) = app.get("/api/v1/shares", Some(&viewer.access)).await;
    assert_eq!(theirs["received"], json!([]));

    // A grantee may leave a share.
    let (_, s) = share(&app, &owner, &viewer.email, "analyses").await;
    let path = format!("/api/v1/shares/{}", s["share_id"].as_str().unwrap());
    assert_eq!(
        delete(&app, &path, &viewer.access).await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_need_a_grant_carry_offsets_and_end_when_revoked() {
    let app = spawn_app().await;
    let (owner, viewer) = (app.user().await, app.user().await);
    let mut device = app.ws(&owner.access).await;
    device.welcome().await;
    let mut dash = app.ws(&viewer.access).await;
    dash.welcome().await;

    // No grant: refused, and the session stays usable.
    let refused = subscribe(&mut dash, &owner, "insights", None).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "forbidden");
    dash.send(&json!({"type": "ping"})).await;
    assert_eq!(dash.recv().await["type"], "pong");
    let list = format!("/api/v1/insights?user_id={}", owner.user_id);
    let (status, body) = app.get(&list, Some(&viewer.access)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );

    let (_, sh) = share(&app, &owner, &viewer.email, "insights").await;
    // A grant for insights is not one for analyses.
    assert_eq!(
        subscribe(&mut dash, &owner, "analyses", None).await["code"],
        "forbidden"
    );
    let sub = subscribe(&mut dash, &owner, "insights", None).await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    assert_eq!(sub["offset"], 0);
    assert_eq!(sub["recover"], true);

    let (a1, i1) = produce(&mut device, 0).await;
    assert_eq!((a1, i1), (1, 1));
    let ev = dash.recv().await;
    assert_eq!(ev["type"], "insight");
    assert_eq!(ev["stream"], "insights");
    assert_eq!(ev["offset"], 1);
    assert_eq!(ev["user_id"], json!(owner.user_id));
    let (_, produced) = produce(&mut device, 1).await;
    assert_eq!(produced, 2);
    assert_eq!(dash.recv().await["offset"], 2);

    // The shared history is readable over REST too.
    let (status, body) = app.get(&list, Some(&viewer.access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["insights"].as_array().unwrap().len(), 2);
    let one = format!(
        "/api/v1/insights/{}?user_id={}",
        ev["insight_id"].as_str().unwrap(),
        owner.user_id
    );
    assert_eq!(app.get(&one, Some(&viewer.access)).await.0, StatusCode::OK);
    let analyses = format!("/api/v1/analyses?user_id={}", owner.user_id);
    assert_eq!(
        app.get(&analyses, Some(&viewer.access)).await.0,
        StatusCode::FORBIDDEN
    );

    // Revoking ends the live subscription at once and closes REST access.
    let path = format!("/api/v1/shares/{}", sh["share_id"].as_str().unwrap());
    assert_eq!(
        delete(&app, &path, &owner.access).await,
        StatusCode::NO_CONTENT
    );
    let ended = dash.recv().await;
    assert_eq!(ended["type"], "unsubscribed", "{ended}");
    assert_eq!(ended["reason"], "revoked");
    produce(&mut device, 2).await;
    assert_eq!(
        subscribe(&mut dash, &owner, "insights", None).await["code"],
        "forbidden"
    );
    assert_eq!(
        app.get(&list, Some(&viewer.access)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(&one, Some(&viewer.access)).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_after_a_reconnect_replays_exactly_the_missed_events_in_order() {
    let app = spawn_app().await;
    let (owner, viewer) = (app.user().await, app.user().await);
    share(&app, &owner, &viewer.email, "analyses").await;
    let mut device = app.ws(&owner.access).await;
    device.welcome().await;

    let mut dash = app.ws(&viewer.access).await;
    dash.welcome().await;
    let sub = subscribe(&mut dash, &owner, "analyses", None).await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();
    produce(&mut device, 0).await;
    let first = dash.recv().await;
    assert_eq!(first["offset"], 1);
    drop(dash);

    for m in 1..=3 {
        produce(&mut device, m).await;
    }
    let mut dash = app.ws(&viewer.access).await;
    dash.welcome().await;
    dash.send(
        &json!({"type": "subscribe", "stream": "analyses", "user_id": owner.user_id,
                      "since": 1, "epoch": epoch}),
    )
    .await;
    let sub = dash.recv().await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    assert_eq!(
        (
            sub["offset"].as_u64(),
            sub["recover"].as_bool(),
            sub["replay"].as_u64()
        ),
        (Some(4), Some(true), Some(3))
    );
    let mut ids = Vec::new();
    for want in 2..=4 {
        let ev = dash.recv().await;
        assert_eq!(
            (ev["type"].as_str(), ev["offset"].as_u64()),
            (Some("analysis"), Some(want))
        );
        ids.push(ev["analysis_id"].clone());
    }
    // Live events continue the sequence, with nothing repeated.
    produce(&mut device, 4).await;
    assert_eq!(dash.recv().await["offset"], 5);
    ids.dedup();
    assert_eq!(ids.len(), 3);

    // Already up to date: nothing to replay.
    let sub = subscribe(&mut dash, &owner, "analyses", Some(5)).await;
    assert_eq!(
        (sub["recover"].as_bool(), sub["replay"].as_u64()),
        (Some(true), Some(0))
    );
    // From another epoch (another store): offsets are not comparable.
    dash.send(
        &json!({"type": "subscribe", "stream": "analyses", "user_id": owner.user_id,
                      "since": 2, "epoch": "elsewhere"}),
    )
    .await;
    let sub = dash.recv().await;
    assert_eq!(
        (sub["recover"].as_bool(), sub["offset"].as_u64()),
        (Some(false), Some(5))
    );
    // Ahead of the stream (it was reset): reload.
    assert_eq!(
        subscribe(&mut dash, &owner, "analyses", Some(99)).await["recover"],
        false
    );
    // Still subscribed once: one copy of the next event.
    produce(&mut device, 5).await;
    assert_eq!(dash.recv().await["offset"], 6);
    dash.send(&json!({"type": "ping"})).await;
    assert_eq!(dash.recv().await["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_older_than_the_history_limit_are_not_replayed() {
    let app = spawn_app_with(|c| c.limits.stream_history = 3).await;
    let owner = app.user().await;
    let mut device = app.ws(&owner.access).await;
    device.welcome().await;
    for m in 0..5 {
        produce(&mut device, m).await;
    }
    let mut dash = app.ws(&owner.access).await;
    dash.welcome().await;
    let sub = subscribe(&mut dash, &owner, "insights", Some(0)).await;
    assert_eq!(
        (sub["recover"].as_bool(), sub["offset"].as_u64()),
        (Some(false), Some(5))
    );
    let sub = subscribe(&mut dash, &owner, "insights", Some(2)).await;
    assert_eq!(
        (sub["recover"].as_bool(), sub["replay"].as_u64()),
        (Some(true), Some(3))
    );
    for want in 3..=5 {
        assert_eq!(dash.recv().await["offset"], want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_streams_need_no_grant_and_an_explicit_subscription_is_not_doubled() {
    let app = spawn_app().await;
    let owner = app.user().await;
    let mut device = app.ws(&owner.access).await;
    device.welcome().await;
    let mut other = app.ws(&owner.access).await;
    other.welcome().await;
    produce(&mut device, 0).await;
    // Without subscribing, the user's sessions get their own events.
    assert_eq!(other.recv_type("analysis").await["offset"], 1);

    other
        .send(&json!({"type": "subscribe", "stream": "analyses", "since": 0}))
        .await;
    let sub = loop {
        let v = other.recv().await;
        if v["type"] == "subscribed" {
            break v;
        }
    };
    assert_eq!(sub["user_id"], json!(owner.user_id));
    assert_eq!(other.recv().await["offset"], 1);
    produce(&mut device, 1).await;
    let mut analyses = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), other.next_frame()).await {
            Ok(Frame::Json(v)) if v["type"] == "analysis" => analyses.push(v["offset"].clone()),
            Ok(_) | Err(_) => {}
        }
    }
    assert_eq!(
        analyses,
        vec![json!(2)],
        "exactly one copy of the new event"
    );

    // Unsubscribing stops it; the hub delivers again.
    other
        .send(&json!({"type": "unsubscribe", "stream": "analyses"}))
        .await;
    let v = other.recv_type("unsubscribed").await;
    assert_eq!(v["reason"], "requested");
    other
        .send(&json!({"type": "unsubscribe", "stream": "analyses"}))
        .await;
    assert_eq!(other.recv_type("error").await["code"], "not_subscribed");
    other
        .send(&json!({"type": "subscribe", "stream": "sleep"}))
        .await;
    assert_eq!(other.recv_type("error").await["code"], "invalid_frame");
    other
        .send(&json!({"type": "subscribe", "stream": "insights", "user_id": "me"}))
        .await;
    assert_eq!(other.recv_type("error").await["code"], "invalid_frame");
    produce(&mut device, 2).await;
    assert_eq!(other.recv_type("analysis").await["offset"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_holds_a_bounded_number_of_subscriptions() {
    let app = spawn_app_with(|c| c.limits.max_subscriptions = 1).await;
    let owner = app.user().await;
    let mut ws = app.ws(&owner.access).await;
    ws.welcome().await;
    assert_eq!(
        subscribe(&mut ws, &owner, "insights", None).await["type"],
        "subscribed"
    );
    // Replacing the same one is fine; a second stream is not.
    assert_eq!(
        subscribe(&mut ws, &owner, "insights", None).await["type"],
        "subscribed"
    );
    let v = subscribe(&mut ws, &owner, "analyses", None).await;
    assert_eq!(v["code"], "too_many_subscriptions");
}

/// A WebSocket client whose socket buffers are tiny, so that not reading fills the path from
/// the server quickly.
async fn stalled_client(app: &TestApp, token: &str) -> Ws {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock.connect(app.addr).await.unwrap();
    let mut req = app.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (stream, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    Ws { stream }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_is_bounded_does_not_delay_others_and_resumes_from_its_offset() {
    const EVENTS: u64 = 100;
    let app = spawn_app_with(|c| {
        c.limits.outbound_queue = 8;
        c.server.socket_send_buffer = 8192;
        // The device sends two frames per event, as fast as the server answers.
        c.limits.max_frames_per_sec = 10_000;
        c.server.heartbeat_interval_ms = 600_000;
    })
    .await;
    let (owner, viewer) = (app.user().await, app.user().await);
    share(&app, &owner, &viewer.email, "insights").await;
    let mut device = app.ws(&owner.access).await;
    device.welcome().await;

    let mut stalled = stalled_client(&app, &viewer.access).await;
    stalled.welcome().await;
    assert_eq!(
        subscribe(&mut stalled, &owner, "insights", None).await["type"],
        "subscribed"
    );

    let mut healthy = app.ws(&viewer.access).await;
    healthy.welcome().await;
    assert_eq!(
        subscribe(&mut healthy, &owner, "insights", None).await["type"],
        "subscribed"
    );
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while (got.len() as u64) < EVENTS {
            let v = healthy.recv().await;
            assert_eq!(v["type"], "insight", "{v}");
            got.push((v["offset"].as_u64().unwrap(), Instant::now()));
        }
        got
    });

    // The stalled client reads nothing from here on.
    let mut sent = Vec::new();
    for m in 0..EVENTS as i64 {
        sent.push(Instant::now());
        produce(&mut device, m).await;
    }
    let got = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the healthy subscriber gets every event")
        .unwrap();
    let offsets: Vec<u64> = got.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (1..=EVENTS).collect::<Vec<_>>());
    let delays: Vec<Duration> = got.iter().zip(&sent).map(|((_, at), s)| *at - *s).collect();
    println!(
        "healthy subscriber, analyze -> insight: median {:?} over the first 10 events, {:?} over the last 50 (stalled reader saturated)",
        median(delays[..10].to_vec()),
        median(delays[50..].to_vec())
    );

    // The stalled reader's backlog was cut off: it got a contiguous prefix, then `lagged`.
    let mut last = 0;
    let lagged_at = loop {
        let v = match tokio::time::timeout(Duration::from_secs(3), stalled.recv()).await {
            Ok(v) => v,
            Err(_) => panic!("no `lagged` after {last} events: the reader was never cut off"),
        };
        match v["type"].as_str().unwrap() {
            "insight" => {
                assert_eq!(v["offset"].as_u64(), Some(last + 1));
                last += 1;
            }
            "lagged" => break v["last_offset"].as_u64().unwrap(),
            other => panic!("unexpected {other}: {v}"),
        }
    };
    assert_eq!(lagged_at, last);
    assert!(
        last < EVENTS,
        "the stalled reader was bounded (got {last} of {EVENTS} before lagging)"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("clarity_stream_lagged_total"),
        "lagging is counted"
    );

    // It resumes from its last offset and gets exactly the rest.
    let sub = subscribe(&mut stalled, &owner, "insights", Some(last)).await;
    assert_eq!(
        (sub["recover"].as_bool(), sub["replay"].as_u64()),
        (Some(true), Some(EVENTS - last))
    );
    for want in last + 1..=EVENTS {
        assert_eq!(stalled.recv().await["offset"], want);
    }
    println!(
        "stalled reader: {last} events delivered before `lagged`, {} replayed on resume",
        EVENTS - last
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_sees_every_batch_sent_before_it() {
    let app = spawn_app().await;
    let owner = app.user().await;
    let mut ws = app.ws(&owner.access).await;
    ws.welcome().await;
    let t0 = crate::common::yesterday();
    // Sent back to back, without waiting for acks: the analysis must include all of them.
    for batch in 0..5i64 {
        let samples: Vec<Value> = (0..240)
            .map(|i| {
                let m = batch * 240 + i;
                json!({"id": format!("b{m}"), "kind": "activity_count",
                       "start": (t0 + chrono::Duration::minutes(m)).to_rfc3339(), "value": m % 300})
            })
            .collect();
        ws.send(&json!({"type": "samples", "seq": batch, "samples": samples}))
            .await;
    }
    ws.send(&json!({"type": "analyze"})).await;
    let analysis = loop {
        let v = ws.recv().await;
        if v["type"] == "analysis" {
            break v;
        }
    };
    assert_eq!(analysis["minutes_present"], 1200, "{}", analysis["window"]);
}
