//! `POST /api/v1/auth/logout`: ends one login everywhere. Its refresh tokens (the whole
//! family) stop rotating, its access tokens are refused, and the WebSocket sessions opened
//! with them close with 4011 after an `error` `logged_out`. Other logins of the same user
//! carry on. A replayed (spent) refresh token ends its login exactly as a logout does.

use clarity::config::AuthMode;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, Ws, spawn_app, spawn_app_with, spawn_nodes};

async fn logout(app: &TestApp, access: Option<&str>, refresh: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/auth/logout",
        &json!({ "refresh_token": refresh }),
        access,
    )
    .await
}

async fn refresh(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/auth/refresh",
        &json!({ "refresh_token": token }),
        None,
    )
    .await
}

/// The session is still served: a ping is answered.
async fn assert_alive(ws: &mut Ws) {
    ws.send(&json!({"type": "ping"})).await;
    ws.recv_type("pong").await;
}

#[tokio::test]
async fn logout_ends_the_login_its_tokens_and_its_sessions_only() {
    let app = spawn_app().await;
    let u = app.user().await;
    // A second login of the same user (another device).
    let (other_access, other_refresh) = app.login(&u.email).await;

    // The first login rotates once: both of its access tokens and its newest refresh token
    // belong to it.
    let (s, pair) = refresh(&app, &u.refresh).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let access2 = pair["access_token"].as_str().unwrap().to_owned();
    let refresh2 = pair["refresh_token"].as_str().unwrap().to_owned();

    let mut first = app.ws(&u.access).await;
    first.welcome().await;
    let mut rotated = app.ws(&access2).await;
    rotated.welcome().await;
    let mut other = app.ws(&other_access).await;
    other.welcome().await;

    let (s, body) = logout(&app, Some(&access2), &refresh2).await;
    assert_eq!((s, &body), (StatusCode::NO_CONTENT, &Value::Null));

    for ws in [&mut first, &mut rotated] {
        let (code, frames) = ws.until_close().await;
        assert_eq!(code, 4011, "{frames:?}");
        let last = frames.last().expect("an error frame before the close");
        assert_eq!(
            (&last["type"], &last["code"]),
            (&json!("error"), &json!("logged_out"))
        );
    }
    assert_alive(&mut other).await;

    // No token of the login rotates any more, the spent one included.
    for t in [&refresh2, &u.refresh] {
        let (s, b) = refresh(&app, t).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_refresh_token")),
            "{b}"
        );
    }
    // Its access tokens are refused, over REST and at the WebSocket handshake.
    for t in [&u.access, &access2] {
        let (s, b) = app.get("/api/v1/user/profile", Some(t)).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("token_revoked")),
            "{b}"
        );
        let (status, _) = app.ws_try(Some(t), &[]).await.err().expect("refused");
        assert_eq!(status, 401);
    }

    // The other login is untouched.
    let (s, _) = app.get("/api/v1/user/profile", Some(&other_access)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = refresh(&app, &other_refresh).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_alive(&mut other).await;
}

#[tokio::test]
async fn logout_checks_the_caller_and_the_token() {
    let app = spawn_app().await;
    let u = app.user().await;
    let v = app.user().await;

    let (s, b) = logout(&app, None, &u.refresh).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    // Another user's refresh token ends nothing.
    let (s, b) = logout(&app, Some(&u.access), &v.refresh).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_refresh_token"))
    );
    let (s, _) = refresh(&app, &v.refresh).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = logout(&app, Some(&u.access), "not-a-token").await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_refresh_token"))
    );
    let (s, b) = app
        .post("/api/v1/auth/logout", &json!({}), Some(&u.access))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );

    // Logging out twice is fine: the second call finds the login ended already. The access
    // token of a login just ended is refused, so the second call uses another login's.
    let (s, _) = logout(&app, Some(&u.access), &u.refresh).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (access, _) = app.login(&u.email).await;
    let (s, _) = logout(&app, Some(&access), &u.refresh).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = logout(&app, Some(&u.access), &u.refresh).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_revoked"))
    );
}

#[tokio::test]
async fn a_session_follows_the_login_of_its_latest_token() {
    let app = spawn_app().await;
    let u = app.user().await;
    let (access_b, refresh_b) = app.login(&u.email).await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    // The session now runs on login B's token: ending login A leaves it alone...
    ws.send(&json!({"type": "refresh", "access_token": access_b}))
        .await;
    ws.recv_type("refreshed").await;
    let (s, _) = logout(&app, Some(&u.access), &u.refresh).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_alive(&mut ws).await;
    // ...and ending login B ends it.
    let (s, _) = logout(&app, Some(&access_b), &refresh_b).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (code, _) = ws.until_close().await;
    assert_eq!(code, 4011);
}

#[tokio::test]
async fn cognito_mode_has_no_local_logout() {
    let app = spawn_app_with(|c| {
        c.auth.mode = AuthMode::Cognito;
        c.cognito.user_pool_id = Some("us-east-1_AbC123xyz".into());
        c.cognito.client_id = Some("3n4b5urk1ft4fl3mg5e62d9ado".into());
        // Never fetched: logout answers before any token is looked at.
        c.cognito.jwks_url = Some("http://127.0.0.1:9/jwks.json".into());
    })
    .await;
    let (s, b) = logout(&app, Some("whatever"), "whatever").await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("local_auth_disabled"))
    );
}

/// The refresh-token replay (a thief's or the owner's) answers `refresh_token_reused` and
/// ends that login like a logout: both the original and the thief's rotated access tokens
/// are refused over REST and at the handshake, on the node that saw the replay and on the
/// others (bus), and sessions running on them close with 4011. Another login carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_refresh_token_ends_the_login_on_every_node() {
    let (_store, nodes) = spawn_nodes(2, |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let u = a.user().await;
    let (other_access, _) = a.login(&u.email).await;

    // The thief spends the stolen refresh token first and gets a pair of their own.
    let (s, pair) = refresh(a, &u.refresh).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let thief_access = pair["access_token"].as_str().unwrap().to_owned();
    let thief_refresh = pair["refresh_token"].as_str().unwrap().to_owned();

    let mut owner_a = a.ws(&u.access).await;
    owner_a.welcome().await;
    let mut thief_b = b.ws(&thief_access).await;
    thief_b.welcome().await;
    let mut other_b = b.ws(&other_access).await;
    other_b.welcome().await;

    // The owner's app presents the spent token: the replay is detected on node A.
    let (s, body) = refresh(a, &u.refresh).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("refresh_token_reused")),
        "{body}"
    );

    for ws in [&mut owner_a, &mut thief_b] {
        let (code, frames) = ws.until_close().await;
        assert_eq!(code, 4011, "{frames:?}");
        let last = frames.last().expect("an error frame before the close");
        assert_eq!(
            (&last["type"], &last["code"]),
            (&json!("error"), &json!("logged_out"))
        );
    }
    for node in [a, b] {
        for t in [&u.access, &thief_access] {
            let (s, body) = node.get("/api/v1/user/profile", Some(t)).await;
            assert_eq!(
                (s, body["error"]["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("token_revoked")),
                "{body}"
            );
            let (s, body) = node.get("/api/v1/health-data", Some(t)).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
            let (status, body) = node.ws_try(Some(t), &[]).await.err().expect("refused");
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (401, Some("token_revoked"))
            );
        }
    }
    // The thief's refresh token is dead too; the other login is untouched.
    let (s, b2) = refresh(b, &thief_refresh).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b2}");
    let (s, _) = b.get("/api/v1/user/profile", Some(&other_access)).await;
    assert_eq!(s, StatusCode::OK);
    assert_alive(&mut other_b).await;
}
