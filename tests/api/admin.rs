//! `POST /api/v1/admin/users/{id}/disconnect`: an admin (`--admin-user-ids`) closes every live
//! WebSocket session of a user, on every node, with 4012 after an `error` `disconnected`.
//! Not a ban: the user reconnects with the same token. Non-admins get 403, unknown users 404.
//! The cross-node tests run two nodes in one process on one store and an in-process bus;
//! logout's sessions and tokens end across nodes too. Admins are named by account id: the
//! removed `--admin-emails` stops the start, so signing up with an admin's address first
//! gains nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use clarity::app::App;
use clarity::config::Config;

use crate::common::{JWT_SECRET, Session, TestApp, serve, spawn_app, spawn_app_with, spawn_nodes};

const ADMIN: &str = "boss@example.com";
/// The admin's account id, as given to `--admin-user-ids`.
const ADMIN_ID: Uuid = Uuid::from_u128(0xad_0001);

/// The admin's account (made as an operator would, with the id the server was started with)
/// and its access token.
async fn admin(app: &TestApp) -> String {
    app.account_with_id(ADMIN_ID, ADMIN).await;
    app.login(ADMIN).await.0
}

fn admins(c: &mut Config) {
    c.auth.admin_user_ids = vec![Uuid::new_v4().to_string(), ADMIN_ID.to_string()];
}

async fn disconnect(app: &TestApp, token: Option<&str>, user: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/admin/users/{user}/disconnect"),
        &json!({}),
        token,
    )
    .await
}

#[tokio::test]
async fn an_admin_disconnects_every_session_of_a_user() {
    let app = spawn_app_with(admins).await;
    let boss = admin(&app).await;
    let u = app.user().await;
    let bystander = app.user().await;
    let mut phone = app.ws(&u.access).await;
    phone.welcome().await;
    let mut watch = app.ws(&u.access).await;
    watch.welcome().await;
    let mut other = app.ws(&bystander.access).await;
    other.welcome().await;

    let (s, body) = disconnect(&app, Some(&boss), &u.user_id.to_string()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body,
        json!({"user_id": u.user_id.to_string(), "closed_sessions": 2})
    );
    for ws in [&mut phone, &mut watch] {
        let (code, frames) = ws.until_close().await;
        assert_eq!(code, 4012, "{frames:?}");
        let last = frames.last().expect("an error frame before the close");
        assert_eq!(last["code"], "disconnected");
    }
    other.send(&json!({"type": "ping"})).await;
    other.recv_type("pong").await;

    // Not a ban: the same token connects again.
    let mut again = app.ws(&u.access).await;
    again.welcome().await;

    // The count is of sessions this call closed: the bystander's one, then none.
    let (s, body) = disconnect(&app, Some(&boss), &bystander.user_id.to_string()).await;
    assert_eq!(
        (s, body["closed_sessions"].as_u64()),
        (StatusCode::ACCEPTED, Some(1))
    );
    let (s, body) = disconnect(&app, Some(&boss), &bystander.user_id.to_string()).await;
    assert_eq!(
        (s, body["closed_sessions"].as_u64()),
        (StatusCode::ACCEPTED, Some(0))
    );
}

#[tokio::test]
async fn only_admins_may_and_only_existing_users() {
    let app = spawn_app_with(admins).await;
    let boss = admin(&app).await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let v: Session = app.user().await;

    let (s, b) = disconnect(&app, Some(&v.access), &u.user_id.to_string()).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    // Not even oneself.
    let (s, _) = disconnect(&app, Some(&u.access), &u.user_id.to_string()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = disconnect(&app, None, &u.user_id.to_string()).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    for unknown in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let (s, b) = disconnect(&app, Some(&boss), &unknown).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("user_not_found")),
            "{unknown}"
        );
    }
    // Nothing happened to the session meanwhile.
    ws.send(&json!({"type": "ping"})).await;
    ws.recv_type("pong").await;
}

#[tokio::test]
async fn without_admin_user_ids_nobody_is_an_admin() {
    let app = spawn_app().await;
    let boss = admin(&app).await;
    let u = app.user().await;
    let (s, _) = disconnect(&app, Some(&boss), &u.user_id.to_string()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn disconnect_and_logout_reach_sessions_on_other_nodes() {
    let (_store, nodes) = spawn_nodes(2, admins).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let boss = admin(a).await;
    let u = a.user().await;

    // Admin on node A, the user's session on node B.
    let mut ws = b.ws(&u.access).await;
    ws.welcome().await;
    let (s, body) = disconnect(a, Some(&boss), &u.user_id.to_string()).await;
    assert_eq!(
        (s, body["closed_sessions"].as_u64()),
        (StatusCode::ACCEPTED, Some(0)),
        "none on node A"
    );
    let (code, _) = ws.until_close().await;
    assert_eq!(code, 4012);

    // Logout on node A ends the login's session on node B, and B refuses its token.
    let mut ws = b.ws(&u.access).await;
    ws.welcome().await;
    let (s, _) = a
        .post(
            "/api/v1/auth/logout",
            &json!({"refresh_token": u.refresh}),
            Some(&u.access),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (code, frames) = ws.until_close().await;
    assert_eq!(code, 4011, "{frames:?}");
    let (s, body) = b.get("/api/v1/user/profile", Some(&u.access)).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_revoked"))
    );
    // The refresh token is refused by either node (the store is shared).
    let (s, _) = b
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": u.refresh}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// The field report's attack: with admins named by an address nobody had signed up with
/// yet, whoever signed up with it (in any case) was an admin. The server now refuses to start
/// with `--admin-emails`, pointing to `--admin-user-ids`; had it started, the attacker must
/// not be able to disconnect anyone.
#[tokio::test]
async fn signing_up_with_an_admins_address_gives_no_admin_rights() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.auth.jwt_secret = Some(JWT_SECRET.to_string().into());
    config.auth.admin_emails = vec!["admin@example.com".into()];
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .unwrap();
    match App::new(config).await {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("--admin-emails") && msg.contains("--admin-user-ids"),
                "{msg}"
            );
        }
        Ok(started) => {
            let app = serve(std::sync::Arc::new(started), listener, dir).await;
            let victim = app.user().await;
            app.signup("Admin@Example.com").await;
            let attacker = app.login("admin@example.com").await.0;
            let (s, body) = disconnect(&app, Some(&attacker), &victim.user_id.to_string()).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "the attacker is an admin: {body}");
        }
    }
    // Malformed ids stop the start too, naming the bad entry.
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.auth.jwt_secret = Some(JWT_SECRET.to_string().into());
    config.auth.admin_user_ids = vec!["admin@example.com".into()];
    let err = App::new(config).await.err().expect("refused");
    assert!(err.to_string().contains("`admin@example.com`"), "{err}");
}

/// With admins configured by id, an account taking an admin's old address is nobody special,
/// and the configured id is the admin whatever its address.
#[tokio::test]
async fn admins_are_their_account_ids_not_their_addresses() {
    let app = spawn_app_with(|c| c.auth.admin_user_ids = vec![ADMIN_ID.to_string()]).await;
    let victim = app.user().await;
    // An address nobody holds, then the admin's own address in another case: no rights.
    app.signup("Admin@Example.com").await;
    let squatter = app.login("admin@example.com").await.0;
    let (s, _) = disconnect(&app, Some(&squatter), &victim.user_id.to_string()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.account_with_id(ADMIN_ID, "renamed-boss@example.com")
        .await;
    let boss = app.login("renamed-boss@example.com").await.0;
    let mut ws = app.ws(&victim.access).await;
    ws.welcome().await;
    let (s, body) = disconnect(&app, Some(&boss), &victim.user_id.to_string()).await;
    assert_eq!(
        (s, body["closed_sessions"].as_u64()),
        (StatusCode::ACCEPTED, Some(1)),
        "{body}"
    );
    let (code, _) = ws.until_close().await;
    assert_eq!(code, 4012);
}
