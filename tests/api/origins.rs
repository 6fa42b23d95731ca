//! `--allowed-origins`: WebSocket handshakes from foreign browser origins are refused before
//! the upgrade (403 JSON); REST answers carry CORS headers for allowed origins only, and
//! preflights are answered. The server's own origin (the dashboard) always passes; clients
//! that send no Origin (apps, websocat) too. Without a list nothing changes.

use clarity::app::App;
use clarity::config::Config;
use reqwest::{Method, StatusCode};

use crate::common::{TestApp, into_json, spawn_app, spawn_app_with};

const APP_ORIGIN: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example.net";

async fn with_list() -> TestApp {
    spawn_app_with(|c| {
        c.server.allowed_origins = vec![APP_ORIGIN.into(), "http://localhost:3000".into()];
    })
    .await
}

#[tokio::test]
async fn foreign_origins_are_refused_at_the_websocket_handshake() {
    let app = with_list().await;
    let u = app.user().await;

    let (status, body) = app
        .ws_try(Some(&u.access), &[("origin", EVIL)])
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "origin_not_allowed", "{body}");
    // Refused before the token is even looked at.
    let (status, _) = app
        .ws_try(None, &[("origin", EVIL)])
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 403);
    // A look-alike of an allowed origin is another origin.
    for origin in [
        "http://app.example.com",
        "https://app.example.com.evil.example.net",
        "http://localhost:3001",
        "null",
    ] {
        let refused = app.ws_try(Some(&u.access), &[("origin", origin)]).await;
        assert_eq!(refused.err().map(|e| e.0), Some(403), "{origin}");
    }

    // Listed origins, the server's own (the dashboard's page) and no Origin at all connect.
    let own = format!("http://{}", app.addr);
    for headers in [
        vec![("origin", APP_ORIGIN)],
        vec![("origin", "HTTPS://APP.EXAMPLE.COM")],
        vec![("origin", own.as_str())],
        vec![],
    ] {
        let mut ws = app
            .ws_try(Some(&u.access), &headers)
            .await
            .unwrap_or_else(|e| panic!("{headers:?}: {e:?}"));
        assert_eq!(ws.welcome().await["user_id"], u.user_id.to_string());
    }
}

#[tokio::test]
async fn rest_answers_carry_cors_headers_for_allowed_origins_only() {
    let app = with_list().await;
    let u = app.user().await;
    let get = |origin: &'static str, token: Option<String>| {
        let mut req = app
            .http
            .get(app.url("/api/v1/user/profile"))
            .header("origin", origin);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };

    let resp = get(APP_ORIGIN, Some(u.access.clone())).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], APP_ORIGIN);
    assert!(vary_has_origin(h), "{h:?}");
    assert!(
        h["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("retry-after")
    );
    assert!(h.get("access-control-allow-credentials").is_none());

    // Errors too, so that the page can read why.
    let resp = get(APP_ORIGIN, None).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["access-control-allow-origin"], APP_ORIGIN);

    // A foreign origin is answered (the browser hides it from the page) without CORS headers.
    let resp = get(EVIL, Some(u.access.clone())).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert!(vary_has_origin(resp.headers()));

    // No Origin: not a browser's cross-origin call; nothing to add but Vary.
    let resp = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert!(vary_has_origin(resp.headers()));
}

#[tokio::test]
async fn preflights_are_answered_for_allowed_origins_and_refused_for_others() {
    let app = with_list().await;
    let preflight = |origin: &'static str, path: &'static str| {
        app.http
            .request(Method::OPTIONS, app.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };

    for path in [
        "/api/v1/health-data",
        "/api/v1/auth/login",
        "/api/v1/shares",
    ] {
        let resp = preflight("http://localhost:3000", path).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{path}");
        let h = resp.headers();
        assert_eq!(h["access-control-allow-origin"], "http://localhost:3000");
        let methods = h["access-control-allow-methods"].to_str().unwrap();
        for m in ["GET", "POST", "DELETE"] {
            assert!(methods.contains(m), "{methods}");
        }
        let allowed = h["access-control-allow-headers"].to_str().unwrap();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
        assert_eq!(h["access-control-max-age"], "3600");
        assert!(vary_has_origin(h));
    }

    let resp = preflight(EVIL, "/api/v1/health-data").await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let (status, body) = into_json(resp).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "origin_not_allowed");
}

#[tokio::test]
async fn without_a_list_every_origin_connects_and_rest_stays_same_origin() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app
        .ws_try(Some(&u.access), &[("origin", EVIL)])
        .await
        .expect("any origin when no list is set");
    ws.welcome().await;

    let resp = app
        .http
        .get(app.url("/api/v1/user/profile"))
        .header("origin", EVIL)
        .bearer_auth(&u.access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    // No CORS: a preflight is just an OPTIONS request the API does not serve.
    let resp = app
        .http
        .request(Method::OPTIONS, app.url("/api/v1/health-data"))
        .header("origin", EVIL)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let (status, body) = into_json(resp).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
}

#[tokio::test]
async fn a_malformed_origin_in_the_list_stops_the_start_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.server.allowed_origins = vec![APP_ORIGIN.into(), "https://app.example.com/".into()];
    let err = App::new(config).await.err().expect("refused").to_string();
    assert!(err.contains("--allowed-origins"), "{err}");
    assert!(err.contains("`https://app.example.com/`"), "{err}");
}

fn vary_has_origin(h: &reqwest::header::HeaderMap) -> bool {
    h.get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("origin"))
}
