//! `--auth cognito`: Cognito access tokens (RS256, the pool's JWKS) through the real HTTP and
//! WebSocket interfaces. The pool's key set is served by a local axum server that counts its
//! fetches; tokens are signed with the fixed test keys in tests/fixtures/.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::http::StatusCode as AxumStatus;
use base64::Engine;
use clarity::app::App;
use clarity::config::{AuthMode, Config};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use crate::common::{TestApp, Ws, hr, into_json, spawn_app_with};

const POOL: &str = "eu-west-1_TestPool1";
const CLIENT_ID: &str = "3n4b5urk1ft4fl3mg5e62d9ado";
const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TestPool1";

/// A signing key of the test pool.
struct TestKey {
    kid: &'static str,
    encoding: EncodingKey,
    jwk: Value,
}

fn load_key(file: &str, kid: &'static str) -> TestKey {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    let pem = std::fs::read_to_string(&path).expect("test key");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("PEM body");
    let encoding = EncodingKey::from_rsa_der(&der);
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("public key");
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    TestKey {
        kid,
        encoding,
        jwk: serde_json::to_value(jwk).unwrap(),
    }
}

fn key1() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| load_key("cognito-test-key-1.pem", "test-kid-1"))
}

fn key2() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| load_key("cognito-test-key-2.pem", "test-kid-2"))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a Cognito access token for `sub`.
fn claims(sub: Uuid) -> Value {
    let now = now();
    json!({
        "sub": sub,
        "iss": ISSUER,
        "client_id": CLIENT_ID,
        "origin_jti": Uuid::new_v4(),
        "event_id": Uuid::new_v4(),
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "jti": Uuid::new_v4(),
        "username": sub,
    })
}

fn sign_with(key: &TestKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn sign(key: &TestKey, claims: &Value) -> String {
    sign_with(key, key.kid, claims)
}

/// The pool's key set, served on a free port; counts fetches; can be taken "down" (503).
struct Jwks {
    addr: SocketAddr,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Jwks {
    async fn start(keys: &[&TestKey]) -> Jwks {
        let served: Arc<Mutex<Vec<Value>>> =
            Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let router = axum::Router::new().route(
            "/pool/.well-known/jwks.json",
            axum::routing::get({
                let (served, fetches, down) = (served.clone(), fetches.clone(), down.clone());
                move || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    if down.load(Ordering::SeqCst) {
                        return Err(AxumStatus::SERVICE_UNAVAILABLE);
                    }
                    let keys = served.lock().unwrap().clone();
                    Ok(axum::Json(json!({ "keys": keys })))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Jwks {
            addr,
            keys: served,
            fetches,
            down,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/pool/.well-known/jwks.json", self.addr)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn serve(&self, keys: &[&TestKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Waits until the server has answered `n` fetches (background refreshes).
    async fn wait_fetches(&self, n: usize) {
        for _ in 0..200 {
            if self.fetches() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} key-set fetches, saw {}", self.fetches());
    }
}

fn cognito_config(c: &mut Config, jwks: &Jwks) {
    c.auth.mode = AuthMode::Cognito;
    c.cognito.user_pool_id = Some(POOL.into());
    c.cognito.client_id = Some(CLIENT_ID.into());
    c.cognito.jwks_url = Some(jwks.url());
    c.cognito.jwks_timeout_ms = 2_000;
}

async fn spawn_cognito(jwks: &Jwks, f: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(|c| {
        cognito_config(c, jwks);
        f(c);
    })
    .await
}

/// The HTTP answer to a WebSocket upgrade that is refused.
async fn ws_refused(app: &TestApp, token: &str) -> (u16, Value) {
    let mut req = app.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            (resp.status().as_u16(), body)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, got a WebSocket"),
    }
}

#[tokio::test]
async fn cognito_tokens_open_profile_history_shares_and_websocket() {
    let jwks = Jwks::start(&[key1()]).await;
    let app = spawn_cognito(&jwks, |_| {}).await;
    assert_eq!(jwks.fetches(), 0, "keys are fetched on demand");

    // Ann's pool signs in by email address as username; Bob's names users by their sub.
    let ann = Uuid::new_v4();
    let mut ann_claims = claims(ann);
    ann_claims["username"] = "Ann@Example.com".into();
    let ann_token = sign(key1(), &ann_claims);
    let bob = Uuid::new_v4();
    let mut c = claims(bob);
    c["email"] = "bob@example.com".into();
    let bob_token = sign(key1(), &c);

    // First request: the account is provisioned (id = sub, name = username).
    let (status, profile) = app.get("/api/v1/user/profile", Some(&ann_token)).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["user_id"], ann.to_string());
    assert_eq!(profile["email"], "ann@example.com");
    assert_eq!(profile["display_name"], Value::Null);
    let created = profile["created_at"].clone();
    // An `email` claim, when the pool adds one, wins over the username.
    let (status, profile) = app.get("/api/v1/user/profile", Some(&bob_token)).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["email"], "bob@example.com");

    // Sample history.
    let (status, body) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": [hr("a", 0, 60), hr("b", 1, 61)]}),
            Some(&ann_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 2);
    assert_eq!(app.all_samples(&ann_token, "").await.len(), 2);

    // Shares address the provisioned accounts by their names.
    let (status, share) = app
        .post(
            "/api/v1/shares",
            &json!({"grantee_email": "BOB@example.com", "scope": "insights"}),
            Some(&ann_token),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{share}");
    assert_eq!(share["grantee_id"], bob.to_string());
    assert_eq!(share["owner_email"], "ann@example.com");

    // WebSocket, header and query string.
    let mut ws = app.ws(&ann_token).await;
    let welcome = ws.welcome().await;
    assert_eq!(welcome["user_id"], ann.to_string());
    // Ann's token's own expiry (Bob's claims may have been made a second later).
    let exp = chrono::DateTime::from_timestamp(ann_claims["exp"].as_i64().unwrap(), 0).unwrap();
    let announced =
        chrono::DateTime::parse_from_rfc3339(welcome["token_expires_at"].as_str().unwrap())
            .unwrap();
    assert_eq!(announced.timestamp(), exp.timestamp());
    ws.send(&json!({"type": "samples", "seq": 1, "samples": [hr("c", 2, 62)]}))
        .await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(ack["accepted"], 1, "{ack}");
    let url = format!("{}?access_token={ann_token}", app.ws_url());
    let (stream, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("query token");
    let mut ws2 = Ws { stream };
    assert_eq!(ws2.welcome().await["user_id"], ann.to_string());

    // Many requests, tokens and users later: still the one fetch, and one account each.
    for _ in 0..10 {
        let (status, p) = app.get("/api/v1/user/profile", Some(&ann_token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(p["created_at"], created);
    }
    for _ in 0..5 {
        let t = sign(key1(), &claims(Uuid::new_v4()));
        assert_eq!(
            app.get("/api/v1/user/profile", Some(&t)).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(jwks.fetches(), 1);
    assert_eq!(app.app.auth.cognito().unwrap().fetches(), 1);
    // A user whose token names nobody is named by their id.
    let carl = Uuid::new_v4();
    let mut c = claims(carl);
    c.as_object_mut().unwrap().remove("username");
    let (_, p) = app
        .get("/api/v1/user/profile", Some(&sign(key1(), &c)))
        .await;
    assert_eq!(p["email"], carl.to_string());
}

#[tokio::test]
async fn concurrent_first_requests_provision_one_account() {
    let jwks = Jwks::start(&[key1()]).await;
    let app = spawn_cognito(&jwks, |_| {}).await;
    let user = Uuid::new_v4();
    let mut c = claims(user);
    c["username"] = "dora@example.com".into();
    let token = sign(key1(), &c);
    let answers = futures_util::future::join_all(
        (0..8).map(|_| app.get("/api/v1/user/profile", Some(&token))),
    )
    .await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["user_id"], user.to_string());
        assert_eq!(body["created_at"], answers[0].1["created_at"]);
    }
    assert_eq!(jwks.fetches(), 1, "one fetch at a time, and then the cache");
}

#[tokio::test]
async fn bad_cognito_tokens_get_401() {
    let jwks = Jwks::start(&[key1()]).await;
    let app = spawn_cognito(&jwks, |_| {}).await;
    let user = Uuid::new_v4();
    let good = sign(key1(), &claims(user));
    assert_eq!(
        app.get("/api/v1/user/profile", Some(&good)).await.0,
        StatusCode::OK
    );
    assert_eq!(jwks.fetches(), 1);

    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(user);
        f(&mut c);
        c
    };
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let hs256_same_kid = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key1().kid.to_owned());
        // HMAC keyed with the public modulus: the classic RS/HS confusion attempt.
        let secret = key1().jwk["n"].as_str().unwrap().as_bytes().to_vec();
        jsonwebtoken::encode(
            &header,
            &claims(user),
            &EncodingKey::from_secret(&secret).unwrap(),
        )
        .unwrap()
    };
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": key1().kid})),
        b64(&claims(user))
    );
    let no_kid = {
        let header = Header::new(Algorithm::RS256);
        jsonwebtoken::encode(&header, &claims(user), &key1().encoding).unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            sign(
                key1(),
                &with(&|c| {
                    c["iss"] = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other".into()
                }),
            ),
            "unauthorized",
        ),
        (
            "wrong client_id",
            sign(key1(), &with(&|c| c["client_id"] = "someone-else".into())),
            "unauthorized",
        ),
        (
            "no client_id",
            sign(
                key1(),
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("client_id");
                }),
            ),
            "unauthorized",
        ),
        (
            "id token",
            sign(
                key1(),
                &with(&|c| {
                    c["token_use"] = "id".into();
                    c["aud"] = CLIENT_ID.into();
                }),
            ),
            "unauthorized",
        ),
        (
            "expired",
            sign(
                key1(),
                &with(&|c| {
                    c["iat"] = (now() - 7200).into();
                    c["exp"] = (now() - 3600).into();
                }),
            ),
            "token_expired",
        ),
        (
            "issued in the future",
            sign(key1(), &with(&|c| c["iat"] = (now() + 3600).into())),
            "unauthorized",
        ),
        (
            "sub not a UUID",
            sign(key1(), &with(&|c| c["sub"] = "not-a-uuid".into())),
            "unauthorized",
        ),
        ("HS256 with the same kid", hs256_same_kid, "unauthorized"),
        ("alg none", alg_none, "unauthorized"),
        ("no kid", no_kid, "unauthorized"),
        (
            "signed by another key under a known kid",
            sign_with(key2(), key1().kid, &claims(user)),
            "unauthorized",
        ),
        (
            "unknown kid",
            sign_with(key2(), "kid-nobody-published", &claims(user)),
            "unauthorized",
        ),
        (
            "local HS256 token",
            app.mint(user, Duration::from_secs(600)),
            "unauthorized",
        ),
        ("garbage", "not.a.jwt".to_owned(), "unauthorized"),
    ];
    for (what, token, code) in &cases {
        let (status, body) = app.get("/api/v1/user/profile", Some(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"]["code"], *code, "{what}: {body}");
        let (status, body) = ws_refused(&app, token).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"]["code"], *code, "{what}: {body}");
    }
    // Unknown kids within the refetch interval (30 s by default) fetch nothing.
    for _ in 0..10 {
        let t = sign_with(key2(), &format!("kid-{}", Uuid::new_v4()), &claims(user));
        assert_eq!(
            app.get("/api/v1/user/profile", Some(&t)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(jwks.fetches(), 1, "bad tokens made us fetch the key set");
}

#[tokio::test]
async fn key_rotation_refetches_for_a_new_kid_but_not_too_often() {
    let jwks = Jwks::start(&[key1()]).await;
    let app = spawn_cognito(&jwks, |c| c.cognito.jwks_min_refetch_ms = 1_000).await;
    let user = Uuid::new_v4();
    let old = sign(key1(), &claims(user));
    assert_eq!(
        app.get("/api/v1/user/profile", Some(&old)).await.0,
        StatusCode::OK
    );
    assert_eq!(jwks.fetches(), 1);

    // Cognito publishes a new key and starts signing with it.
    jwks.serve(&[key1(), key2()]);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let new = sign(key2(), &claims(user));
    let (status, body) = app.get("/api/v1/user/profile", Some(&new)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(jwks.fetches(), 2, "the unknown kid fetched the set again");
    // Both keys verify from the cache now.
    for t in [&old, &new, &old, &new] {
        assert_eq!(
            app.get("/api/v1/user/profile", Some(t)).await.0,
            StatusCode::OK
        );
    }
    let mut ws = app.ws(&new).await;
    assert_eq!(ws.welcome().await["user_id"], user.to_string());
    assert_eq!(jwks.fetches(), 2);

    // A burst of tokens with made-up kids: one fetch at most, however many arrive.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let garbage: Vec<String> = (0..30)
        .map(|_| sign_with(key2(), &format!("kid-{}", Uuid::new_v4()), &claims(user)))
        .collect();
    let answers = futures_util::future::join_all(
        garbage
            .iter()
            .map(|t| app.get("/api/v1/user/profile", Some(t))),
    )
    .await;
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::UNAUTHORIZED));
    assert_eq!(jwks.fetches(), 3, "one refetch for the whole burst");
    // Unknown kids on tokens that could never pass (another pool) fetch nothing at all.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let mut other_pool = claims(user);
    other_pool["iss"] = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other".into();
    let t = sign_with(key2(), "kid-of-another-pool", &other_pool);
    assert_eq!(
        app.get("/api/v1/user/profile", Some(&t)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(jwks.fetches(), 3);
}

#[tokio::test]
async fn key_set_is_refreshed_after_its_max_age() {
    let jwks = Jwks::start(&[key1(), key2()]).await;
    let app = spawn_cognito(&jwks, |c| {
        c.cognito.jwks_max_age_secs = 1;
        c.cognito.jwks_min_refetch_ms = 100;
    })
    .await;
    let user = Uuid::new_v4();
    let old = sign(key1(), &claims(user));
    assert_eq!(
        app.get("/api/v1/user/profile", Some(&old)).await.0,
        StatusCode::OK
    );
    assert_eq!(jwks.fetches(), 1);

    // Cognito retires key 1. Once the cache is stale, a request still verifies from it and
    // refreshes it in the background; after that, key 1 is gone.
    jwks.serve(&[key2()]);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        app.get("/api/v1/user/profile", Some(&old)).await.0,
        StatusCode::OK
    );
    jwks.wait_fetches(2).await;
    let mut status = StatusCode::OK;
    for _ in 0..100 {
        status = app.get("/api/v1/user/profile", Some(&old)).await.0;
        if status != StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the retired key still verifies"
    );
    let new = sign(key2(), &claims(user));
    assert_eq!(
        app.get("/api/v1/user/profile", Some(&new)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn key_set_outage_keeps_cached_keys_and_answers_503_for_the_rest() {
    let jwks = Jwks::start(&[key1()]).await;
    let app = spawn_cognito(&jwks, |c| {
        c.cognito.jwks_max_age_secs = 1;
        c.cognito.jwks_min_refetch_ms = 1_000;
    })
    .await;
    let user = Uuid::new_v4();
    let cached = sign(key1(), &claims(user));
    assert_eq!(
        app.get("/api/v1/user/profile", Some(&cached)).await.0,
        StatusCode::OK
    );

    // The key-set server fails; the cache goes stale and its refresh fails.
    jwks.set_down(true);
    jwks.serve(&[key1(), key2()]);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        app.get("/api/v1/user/profile", Some(&cached)).await.0,
        StatusCode::OK
    );
    jwks.wait_fetches(2).await;
    for _ in 0..3 {
        assert_eq!(
            app.get("/api/v1/user/profile", Some(&cached)).await.0,
            StatusCode::OK
        );
    }
    let mut ws = app.ws(&cached).await;
    assert_eq!(ws.welcome().await["user_id"], user.to_string());

    // A token with a kid we have not seen may be fine: 503 with Retry-After, not 401.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let new = sign(key2(), &claims(user));
    let resp = app
        .http
        .get(app.url("/api/v1/user/profile"))
        .bearer_auth(&new)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    let (status, body) = into_json(resp).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(body["error"]["retry_after_ms"].as_u64().unwrap() >= 1000);
    assert_eq!(jwks.fetches(), 3);
    // Within the interval: the same answer, without another fetch.
    let (status, body) = ws_refused(&app, &new).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(jwks.fetches(), 3);

    // Back up: the new key is fetched and verifies.
    jwks.set_down(false);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = app.get("/api/v1/user/profile", Some(&new)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(jwks.fetches(), 4);
}

#[tokio::test]
async fn websocket_refresh_with_cognito_tokens() {
    let jwks = Jwks::start(&[key1()]).await;
    let app = spawn_cognito(&jwks, |c| c.cognito.jwks_min_refetch_ms = 200).await;
    let user = Uuid::new_v4();
    let mut first = claims(user);
    first["exp"] = (now() + 600).into();
    let mut ws = app.ws(&sign(key1(), &first)).await;
    ws.welcome().await;

    // A later token of the same user.
    let mut later = claims(user);
    later["exp"] = (now() + 7200).into();
    ws.send(&json!({"type": "refresh", "access_token": sign(key1(), &later)}))
        .await;
    let refreshed = ws.recv_type("refreshed").await;
    let expected = chrono::DateTime::from_timestamp(later["exp"].as_i64().unwrap(), 0).unwrap();
    let got =
        chrono::DateTime::parse_from_rfc3339(refreshed["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(got.timestamp(), expected.timestamp(), "{refreshed}");

    // Keys unreachable and a kid we do not know: the session carries on with its token.
    jwks.set_down(true);
    jwks.serve(&[key1(), key2()]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    ws.send(&json!({"type": "refresh", "access_token": sign(key2(), &later)}))
        .await;
    let err = ws.recv_type("error").await;
    assert_eq!(err["code"], "auth_unavailable", "{err}");
    assert!(err["retry_after_ms"].as_u64().unwrap() >= 1000);
    ws.send(&json!({"type": "ping"})).await;
    ws.recv_type("pong").await;
    jwks.set_down(false);
    tokio::time::sleep(Duration::from_millis(250)).await;
    ws.send(&json!({"type": "refresh", "access_token": sign(key2(), &later)}))
        .await;
    ws.recv_type("refreshed").await;

    // Another user's token ends the session (4003), as in local mode.
    ws.send(&json!({"type": "refresh", "access_token": sign(key1(), &claims(Uuid::new_v4()))}))
        .await;
    let (code, frames) = ws.until_close().await;
    assert_eq!(code, 4003);
    assert_eq!(frames.last().unwrap()["code"], "auth_invalid");
}

#[tokio::test]
async fn local_account_endpoints_are_off() {
    let jwks = Jwks::start(&[key1()]).await;
    let app = spawn_cognito(&jwks, |_| {}).await;
    for (path, body) in [
        (
            "/api/v1/auth/signup",
            json!({"email": "ann@example.com", "password": crate::common::PASSWORD}),
        ),
        (
            "/api/v1/auth/login",
            json!({"email": "ann@example.com", "password": crate::common::PASSWORD}),
        ),
        ("/api/v1/auth/refresh", json!({"refresh_token": "x"})),
        ("/api/v1/auth/signup", json!({})),
    ] {
        let (status, resp) = app.post(path, &body, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {resp}");
        assert_eq!(resp["error"]["code"], "local_auth_disabled", "{path}");
        assert!(
            resp["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Cognito"),
            "{resp}"
        );
    }
    assert_eq!(jwks.fetches(), 0);
}

#[tokio::test]
async fn cognito_mode_needs_pool_and_client() {
    let dir = tempfile::tempdir().unwrap();
    let start = |f: &dyn Fn(&mut Config)| {
        let mut c = Config::for_tests(dir.path());
        c.auth.mode = AuthMode::Cognito;
        c.cognito.user_pool_id = Some(POOL.into());
        c.cognito.client_id = Some(CLIENT_ID.into());
        f(&mut c);
        async move {
            match App::new(c).await {
                Ok(_) => panic!("started without the Cognito settings"),
                Err(e) => format!("{e:#}"),
            }
        }
    };
    let e = start(&|c| c.cognito.user_pool_id = None).await;
    assert!(e.contains("--cognito-user-pool-id"), "{e}");
    let e = start(&|c| c.cognito.client_id = Some(" ".into())).await;
    assert!(e.contains("--cognito-client-id"), "{e}");
    let e = start(&|c| c.cognito.user_pool_id = Some("nounderscore".into())).await;
    assert!(e.contains("--cognito-region"), "{e}");

    // The defaults derived from the pool id.
    let mut c = Config::for_tests(dir.path());
    c.auth.mode = AuthMode::Cognito;
    c.cognito.user_pool_id = Some(POOL.into());
    c.cognito.client_id = Some(CLIENT_ID.into());
    let s = c.cognito().unwrap().unwrap();
    assert_eq!(s.issuer, ISSUER);
    assert_eq!(s.jwks_url, format!("{ISSUER}/.well-known/jwks.json"));
    c.cognito.region = Some("us-west-2".into());
    assert_eq!(
        c.cognito().unwrap().unwrap().issuer,
        "https://cognito-idp.us-west-2.amazonaws.com/eu-west-1_TestPool1"
    );
    c.auth.mode = AuthMode::Local;
    assert!(c.cognito().unwrap().is_none());
}
