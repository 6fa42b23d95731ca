//! Sync v2 writes through the real interfaces: deletes over WebSocket (`delete` frame) and
//! REST (`POST /api/v1/health-data/delete`, `DELETE /api/v1/health-data/{id}`), updates by
//! `version`, the ack counts, bad delete frames, and retries after a reconnect.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Session, TestApp, Ws, spawn_app, yesterday};

/// An activity sample at `minute` after 06:00 yesterday (UTC), optionally versioned.
fn act(id: &str, minute: i64, value: i64, version: Option<i64>) -> Value {
    let t = yesterday() + chrono::Duration::hours(6) + chrono::Duration::minutes(minute);
    let mut s =
        json!({"id": id, "kind": "activity_count", "start": t.to_rfc3339(), "value": value});
    if let Some(v) = version {
        s["version"] = json!(v);
    }
    s
}

async fn session(app: &TestApp) -> (Session, Ws) {
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    (user, ws)
}

/// The ack of frame `seq`, checked to count exactly `counts` (the other counts 0).
async fn ack(ws: &mut Ws, seq: u64, counts: &[(&str, u64)]) -> Value {
    let a = ws.recv_type("ack").await;
    assert_eq!(a["seq"], seq, "{a}");
    for field in ["accepted", "duplicates", "updated", "deleted", "not_found"] {
        let want = counts.iter().find(|(f, _)| *f == field).map_or(0, |c| c.1);
        assert_eq!(a[field], want, "{field} in {a}");
    }
    a
}

/// The caller's stored samples as `(id, value, version)`, in time order.
async fn stored(app: &TestApp, user: &Session) -> Vec<(String, f64, Option<i64>)> {
    app.all_samples(&user.access, "")
        .await
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["value"].as_f64().unwrap(),
                s["version"].as_i64(),
            )
        })
        .collect()
}

fn ids(stored: &[(String, f64, Option<i64>)]) -> Vec<&str> {
    stored.iter().map(|s| s.0.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_frame_is_acked_with_counts_and_is_idempotent() {
    let app = spawn_app().await;
    let (user, mut ws) = session(&app).await;
    let batch: Vec<Value> = (0..3).map(|i| act(&format!("s{i}"), i, 10, None)).collect();
    ws.send(&json!({"type": "samples", "seq": 1, "samples": batch}))
        .await;
    ack(&mut ws, 1, &[("accepted", 3)]).await;

    ws.send(&json!({"type": "delete", "seq": 2, "ids": ["s0", "never-stored"]}))
        .await;
    ack(&mut ws, 2, &[("deleted", 1), ("not_found", 1)]).await;
    assert_eq!(ids(&stored(&app, &user).await), ["s1", "s2"]);

    // Again: nothing left to delete, same state.
    ws.send(&json!({"type": "delete", "seq": 3, "ids": ["s0"]}))
        .await;
    ack(&mut ws, 3, &[("not_found", 1)]).await;
    assert_eq!(ids(&stored(&app, &user).await), ["s1", "s2"]);

    // A late re-send of the deleted sample (no version) does not bring it back: tombstone.
    ws.send(&json!({"type": "samples", "seq": 4, "samples": [act("s0", 0, 10, None)]}))
        .await;
    ack(&mut ws, 4, &[("duplicates", 1)]).await;
    assert_eq!(ids(&stored(&app, &user).await), ["s1", "s2"]);

    // Another user's id is unknown here: nothing of theirs is touched.
    let (other, mut other_ws) = session(&app).await;
    other_ws
        .send(&json!({"type": "samples", "seq": 1, "samples": [act("theirs", 0, 5, None)]}))
        .await;
    ack(&mut other_ws, 1, &[("accepted", 1)]).await;
    ws.send(&json!({"type": "delete", "seq": 5, "ids": ["theirs"]}))
        .await;
    ack(&mut ws, 5, &[("not_found", 1)]).await;
    assert_eq!(ids(&stored(&app, &other).await), ["theirs"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_higher_version_updates_and_the_rest_are_duplicates() {
    let app = spawn_app().await;
    let (user, mut ws) = session(&app).await;
    ws.send(&json!({"type": "samples", "seq": 1, "samples": [act("e", 0, 10, Some(1))]}))
        .await;
    ack(&mut ws, 1, &[("accepted", 1)]).await;
    ws.send(&json!({"type": "samples", "seq": 2, "samples": [act("e", 0, 20, Some(2))]}))
        .await;
    ack(&mut ws, 2, &[("updated", 1)]).await;
    assert_eq!(stored(&app, &user).await, [("e".to_owned(), 20.0, Some(2))]);
    // Same version, lower version, no version: duplicates; the stored value stays.
    let again = [
        act("e", 0, 30, Some(2)),
        act("e", 0, 40, Some(1)),
        act("e", 0, 50, None),
    ];
    ws.send(&json!({"type": "samples", "seq": 3, "samples": again}))
        .await;
    ack(&mut ws, 3, &[("duplicates", 3)]).await;
    assert_eq!(stored(&app, &user).await, [("e".to_owned(), 20.0, Some(2))]);

    // REST: the upload answer counts `updated` too.
    let (status, body) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": [act("e", 0, 60, Some(3)), act("f", 1, 7, None)]}),
            Some(&user.access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["accepted"], &body["duplicates"], &body["updated"]),
        (&json!(1), &json!(0), &json!(1)),
        "{body}"
    );
    assert_eq!(
        stored(&app, &user).await,
        [("e".to_owned(), 60.0, Some(3)), ("f".to_owned(), 7.0, None)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_deletes_report_what_was_not_found() {
    let app = spawn_app().await;
    let user = app.user().await;
    let batch: Vec<Value> = (0..3)
        .map(|i| act(&format!("r/{i}"), i, 10, None))
        .collect();
    let (status, body) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": batch}),
            Some(&user.access),
        )
        .await;
    assert_eq!((status, &body["accepted"]), (StatusCode::OK, &json!(3)));

    let (status, body) = app
        .post(
            "/api/v1/health-data/delete",
            &json!({"ids": ["r/0", "nope"]}),
            Some(&user.access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"deleted": 1, "not_found": 1, "not_found_ids": ["nope"]})
    );
    let (_, body) = app
        .post(
            "/api/v1/health-data/delete",
            &json!({"ids": ["r/0"]}),
            Some(&user.access),
        )
        .await;
    assert_eq!(
        body,
        json!({"deleted": 0, "not_found": 1, "not_found_ids": ["r/0"]})
    );

    // One id in the path (percent-encoded): 204, then 404 once it is gone.
    let one = |id: &str| {
        let url = app.url(&format!("/api/v1/health-data/{}", urlencoding_path(id)));
        app.http.delete(url).bearer_auth(&user.access).send()
    };
    assert_eq!(one("r/1").await.unwrap().status(), StatusCode::NO_CONTENT);
    let again = one("r/1").await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert_eq!(ids(&stored(&app, &user).await), ["r/2"]);

    // Bad bodies name the rule; nothing is deleted.
    for (bad, code) in [
        (json!({"ids": []}), "invalid_ids"),
        (json!({"ids": ["r/2", ""]}), "invalid_ids"),
        (
            json!({"ids": (0..1001).map(|i| i.to_string()).collect::<Vec<_>>()}),
            "invalid_ids",
        ),
        (json!({"ids": "r/2"}), "invalid_body"),
        (json!({"id": ["r/2"]}), "invalid_body"),
    ] {
        let (status, body) = app
            .post("/api/v1/health-data/delete", &bad, Some(&user.access))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["code"], code, "{bad}: {body}");
    }
    let (status, body) = app
        .post(
            "/api/v1/health-data/delete",
            &json!({"ids": []}),
            Some(&user.access),
        )
        .await;
    assert_eq!(
        body["error"]["message"], "`ids` must list 1 to 1000 sample ids, got 0",
        "{status} {body}"
    );
    assert_eq!(ids(&stored(&app, &user).await), ["r/2"]);
    // Without a token: 401.
    let (status, _) = app
        .post("/api/v1/health-data/delete", &json!({"ids": ["r/2"]}), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// `/` and `%` escaped for a path segment.
fn urlencoding_path(id: &str) -> String {
    id.replace('%', "%25").replace('/', "%2F")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_delete_frames_get_errors_naming_the_rule() {
    let app = spawn_app().await;
    let (user, mut ws) = session(&app).await;
    ws.send(&json!({"type": "samples", "seq": 1, "samples": [act("keep", 0, 1, None)]}))
        .await;
    ack(&mut ws, 1, &[("accepted", 1)]).await;
    let many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    for (frame, code, message, seq) in [
        (
            json!({"type": "delete", "seq": 2, "ids": []}),
            "invalid_ids",
            "`ids` must list 1 to 1000 sample ids, got 0",
            Some(2),
        ),
        (
            json!({"type": "delete", "seq": 3, "ids": many}),
            "invalid_ids",
            "`ids` must list 1 to 1000 sample ids, got 1001",
            Some(3),
        ),
        (
            json!({"type": "delete", "seq": 4, "ids": ["keep", "bad\u{7}"]}),
            "invalid_ids",
            "ids[1]: an id must be 1-128 bytes without control characters",
            Some(4),
        ),
        (
            json!({"type": "delete", "seq": 5, "ids": "keep"}),
            "invalid_frame",
            "`ids` must be an array of sample id strings",
            Some(5),
        ),
        (
            json!({"type": "delete", "seq": 6}),
            "invalid_frame",
            "missing field `ids`",
            Some(6),
        ),
        (
            json!({"type": "delete", "ids": ["keep"]}),
            "invalid_frame",
            "delete frames need a non-negative integer `seq`",
            None,
        ),
    ] {
        ws.send(&frame).await;
        let e = ws.recv_type("error").await;
        assert_eq!(e["code"], code, "{frame}: {e}");
        assert_eq!(e["message"], message, "{frame}: {e}");
        assert_eq!(e["seq"].as_u64(), seq, "{frame}: {e}");
    }
    // The session goes on, and nothing was deleted.
    ws.send(&json!({"type": "ping"})).await;
    ws.recv_type("pong").await;
    assert_eq!(ids(&stored(&app, &user).await), ["keep"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_deletes_and_updates_after_a_reconnect_end_in_the_same_state() {
    let app = spawn_app().await;
    let (user, mut ws) = session(&app).await;
    let batch: Vec<Value> = (0..4)
        .map(|i| act(&format!("k{i}"), i, 10, Some(1)))
        .collect();
    ws.send(&json!({"type": "samples", "seq": 1, "samples": batch}))
        .await;
    ack(&mut ws, 1, &[("accepted", 4)]).await;

    let update = json!({"type": "samples", "seq": 2, "samples": [act("k1", 1, 99, Some(2))]});
    let delete = json!({"type": "delete", "seq": 3, "ids": ["k2", "k3"]});
    // Sent, then the connection drops before the client reads the acks.
    ws.send(&update).await;
    ws.send(&delete).await;
    drop(ws);

    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    // The server may or may not have applied them before the drop: either way the resent
    // frames end in the same state.
    ws.send(&update).await;
    let a = ws.recv_type("ack").await;
    assert_eq!(a["seq"], 2);
    assert_eq!(
        a["updated"].as_u64().unwrap() + a["duplicates"].as_u64().unwrap(),
        1
    );
    ws.send(&delete).await;
    let a = ws.recv_type("ack").await;
    assert_eq!(a["seq"], 3);
    assert_eq!(
        a["deleted"].as_u64().unwrap() + a["not_found"].as_u64().unwrap(),
        2
    );
    let want = vec![
        ("k0".to_owned(), 10.0, Some(1)),
        ("k1".to_owned(), 99.0, Some(2)),
    ];
    assert_eq!(stored(&app, &user).await, want);

    // Once more, now certainly applied before: duplicates and not_found, same state.
    ws.send(&update).await;
    ack(&mut ws, 2, &[("duplicates", 1)]).await;
    ws.send(&delete).await;
    ack(&mut ws, 3, &[("not_found", 2)]).await;
    assert_eq!(stored(&app, &user).await, want);
}
