use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::hooked::Hooks;
use crate::common::{PASSWORD, TestApp, hr, spawn_app, spawn_app_with, spawn_with_store};

#[tokio::test]
async fn signup_login_profile() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/v1/auth/signup",
            &json!({"email": " Ann@Example.com ", "password": PASSWORD, "display_name": "Ann"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["email"], "ann@example.com");
    let user_id = body["user_id"].as_str().unwrap().to_owned();

    let (status, pair) = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "ANN@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert!(pair["refresh_token"].as_str().unwrap().len() >= 40);

    let token = pair["access_token"].as_str().unwrap();
    let (status, profile) = app.get("/api/v1/user/profile", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["user_id"], user_id);
    assert_eq!(profile["email"], "ann@example.com");
    assert_eq!(profile["display_name"], "Ann");
    let created =
        chrono::DateTime::parse_from_rfc3339(profile["created_at"].as_str().unwrap()).unwrap();
    assert!((chrono::Utc::now() - created.to_utc()).num_seconds().abs() < 60);
}

#[tokio::test]
async fn signup_validation() {
    let app = spawn_app().await;
    app.signup("dup@example.com").await;
    let cases = [
        (
            json!({"email": "DUP@example.com", "password": PASSWORD}),
            StatusCode::CONFLICT,
            "email_taken",
        ),
        (
            json!({"email": "new@example.com", "password": "short"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
        ),
        (
            json!({"email": "new@example.com", "password": "password123"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
        ),
        (
            json!({"email": "new@example.com", "password": "aaaaaaaaaaaa"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        ),
        (
            json!({"email": "a@nodot", "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        ),
        (
            json!({"email": "new@example.com"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"email": "new@example.com", "password": PASSWORD, "display_name": "x".repeat(101)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
    ];
    for (body, status, code) in cases {
        let (s, b) = app.post("/api/v1/auth/signup", &body, None).await;
        assert_eq!(
            (s, b["error"]["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
    }
    // Malformed JSON and a wrong content type.
    let resp = app
        .http
        .post(app.url("/api/v1/auth/signup"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    let (s, b) = crate::common::into_json(resp).await;
    assert_eq!(
        (s, b["error"]["code"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let resp = app
        .http
        .post(app.url("/api/v1/auth/signup"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    let (s, _) = crate::common::into_json(resp).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn login_failures_look_alike() {
    let app = spawn_app().await;
    app.signup("known@example.com").await;
    let (s1, b1) = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "known@example.com", "password": "wrong horse battery"}),
            None,
        )
        .await;
    let (s2, b2) = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "unknown@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    let (s3, b3) = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "not an email", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!((s1, &b1), (s2, &b2));
    assert_eq!((s1, &b1), (s3, &b3));
    assert_eq!(b1["error"]["code"], "invalid_credentials");
}

#[tokio::test]
async fn refresh_rotates_and_detects_reuse() {
    let app = spawn_app().await;
    let u = app.user().await;
    let (s, pair) = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": u.refresh}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let new_refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, u.refresh);
    let (s, _) = app
        .get("/api/v1/user/profile", pair["access_token"].as_str())
        .await;
    assert_eq!(s, StatusCode::OK);

    // Replaying the spent token is refused and revokes the whole family...
    let (s, b) = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": u.refresh}),
            None,
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "refresh_token_reused")
    );
    // ...including the token that replaced it.
    let (s, b) = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": new_refresh}),
            None,
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "invalid_refresh_token")
    );

    // Another login is a separate family and still works.
    let (_, refresh2) = app.login(&u.email).await;
    let (s, _) = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh2}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, b) = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": "garbage"}),
            None,
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "invalid_refresh_token")
    );
    let (s, _) = app.post("/api/v1/auth/refresh", &json!({}), None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn expired_refresh_token_is_refused() {
    let app = spawn_app_with(|c| c.auth.refresh_token_ttl_secs = 1).await;
    let u = app.user().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, b) = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": u.refresh}),
            None,
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "invalid_refresh_token")
    );
}

#[tokio::test]
async fn access_tokens_are_checked() {
    let app = spawn_app().await;
    let u = app.user().await;
    let (s, b) = app.get("/api/v1/user/profile", None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let resp = app
        .http
        .get(app.url("/api/v1/user/profile"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");

    // Tampered payload.
    let mut parts: Vec<String> = u.access.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let (s, _) = app
        .get("/api/v1/user/profile", Some(&parts.join(".")))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Signed with another key, right claims.
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": u.user_id, "iat": now, "exp": now + 600, "iss": "clarity", "aud": "clarity-api", "jti": u.user_id});
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-another").unwrap(),
    )
    .unwrap();
    let (s, _) = app.get("/api/v1/user/profile", Some(&forged)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Right key, expired.
    let claims = json!({"sub": u.user_id, "iat": now - 1000, "exp": now - 100, "iss": "clarity", "aud": "clarity-api", "jti": u.user_id});
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(crate::common::JWT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let (s, b) = app.get("/api/v1/user/profile", Some(&expired)).await;
    assert_eq!(
        (s, b["error"]["code"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "token_expired")
    );
}

/// Every authenticated request of `token` is refused with 401 `account_not_found`: upload,
/// history, share creation, profile and the WebSocket handshake.
async fn assert_account_refused(app: &TestApp, token: &str, grantee: &str) {
    let upload = json!({"samples": [hr("gone-1", 0, 60)]});
    let share = json!({"grantee_email": grantee, "scope": "insights"});
    for (what, (s, body)) in [
        (
            "upload",
            app.post("/api/v1/health-data", &upload, Some(token)).await,
        ),
        ("history", app.get("/api/v1/health-data", Some(token)).await),
        (
            "share",
            app.post("/api/v1/shares", &share, Some(token)).await,
        ),
        (
            "profile",
            app.get("/api/v1/user/profile", Some(token)).await,
        ),
    ] {
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("account_not_found")),
            "{what}: {body}"
        );
    }
    let (status, body) = app.ws_try(Some(token), &[]).await.err().expect("refused");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("account_not_found"))
    );
}

#[tokio::test]
async fn tokens_of_accounts_that_do_not_exist_are_refused() {
    let hooks = Hooks::default();
    let app = spawn_with_store(|s| hooks.wrap(s)).await;
    let grantee = app.user().await;

    // Signed with the server's key for an id no account ever had.
    let never = app.mint(uuid::Uuid::new_v4(), Duration::from_secs(600));
    assert_account_refused(&app, &never, &grantee.email).await;

    // An account that worked, then was removed from the store (and forgotten by the
    // node's account cache, as erasure does).
    let u = app.user().await;
    let (s, body) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": [hr("before-1", 0, 60)]}),
            Some(&u.access),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    hooks.remove_account(u.user_id);
    app.app.auth.forget_account(u.user_id);
    assert_account_refused(&app, &u.access, &grantee.email).await;
    let minted = app.mint(u.user_id, Duration::from_secs(600));
    assert_account_refused(&app, &minted, &grantee.email).await;

    // Accounts that exist are served as before.
    let (s, _) = app.get("/api/v1/health-data", Some(&grantee.access)).await;
    assert_eq!(s, StatusCode::OK);
}
