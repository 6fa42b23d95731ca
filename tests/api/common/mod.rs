//! Test harness: a real server on an ephemeral port with its own data folder, HTTP and
//! WebSocket clients, and validation of every server frame against protocol/schemas.

#![allow(dead_code)]

pub mod backend;
pub mod claims;
pub mod fuzz;
pub mod hooked;
pub mod process;
pub mod redis;
pub mod wrap;

pub use backend::Backend;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clarity::app::App;
use clarity::config::Config;
use clarity::store::Store;
use clarity::store::sqlite::{SqliteOptions, SqliteStore};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

pub struct TestApp {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(f: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_in(dir, f).await
}

/// Starts a server on an existing data folder (restart tests).
pub async fn spawn_in(dir: tempfile::TempDir, f: impl FnOnce(&mut Config)) -> TestApp {
    // TEST_LOG=debug shows the server's log for a failing test.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into()))
        .with_test_writer()
        .try_init();
    let mut config = Config::for_tests(dir.path());
    config.auth.jwt_secret = Some(JWT_SECRET.to_string().into());
    config.telemetry.log = "warn".into();
    f(&mut config);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .expect("bind");
    let app = Arc::new(App::new(config).await.expect("app starts"));
    serve(app, listener, dir).await
}

/// Starts a server on `backend` (a fresh table for DynamoDB).
pub async fn spawn_on(backend: &Backend, f: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = backend.config(dir.path());
    // Table creation gets the default timeout: a test's short store timeout is for its
    // traffic, not for the setup (DynamoDB Local under a busy run can take seconds).
    backend.migrate(&config).await;
    f(&mut config);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .expect("bind");
    let app = Arc::new(App::new(config).await.expect("app starts"));
    serve(app, listener, dir).await
}

/// Starts a server whose store is wrapped by `wrap` (fault injection).
pub async fn spawn_with_store(wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(dir.path());
    config.auth.jwt_secret = Some(JWT_SECRET.to_string().into());
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).expect("store opens");
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .expect("bind");
    let app = App::with_store(config, wrap(Arc::new(store)))
        .await
        .expect("app starts");
    serve(Arc::new(app), listener, dir).await
}

/// Starts a server on a SQLite store the test keeps a handle to (its fault-injection hooks).
pub async fn spawn_with_sqlite() -> (TestApp, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(dir.path());
    config.auth.jwt_secret = Some(JWT_SECRET.to_string().into());
    let store =
        Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).expect("store opens"));
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .expect("bind");
    let app = App::with_store(config, store.clone())
        .await
        .expect("app starts");
    (serve(Arc::new(app), listener, dir).await, store)
}

pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    dir: tempfile::TempDir,
) -> TestApp {
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(clarity::server::run(app.clone(), listener, async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        app,
        dir,
        http: reqwest::Client::new(),
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

/// `n` nodes in this process sharing one SQLite store and one in-process bus, as several
/// processes share DynamoDB and Redis. The returned folder holds the store; keep it.
pub async fn spawn_nodes(n: usize, f: impl Fn(&mut Config)) -> (tempfile::TempDir, Vec<TestApp>) {
    spawn_nodes_with_store(n, |s| s, f).await
}

/// [`spawn_nodes`] on a store wrapped by `wrap` (race hooks, fault injection).
pub async fn spawn_nodes_with_store(
    n: usize,
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    f: impl Fn(&mut Config),
) -> (tempfile::TempDir, Vec<TestApp>) {
    let shared = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = wrap(Arc::new(
        SqliteStore::open(shared.path(), SqliteOptions::default()).expect("store opens"),
    ));
    let net = clarity::bus::memory::Net::new();
    let mut nodes = Vec::new();
    for _ in 0..n {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_tests(dir.path());
        config.auth.jwt_secret = Some(JWT_SECRET.to_string().into());
        f(&mut config);
        let bus = Arc::new(clarity::bus::memory::MemoryBus::new(
            Uuid::new_v4(),
            net.clone(),
        ));
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .expect("bind");
        let app = App::with_parts(config, store.clone(), bus)
            .await
            .expect("app starts");
        nodes.push(serve(Arc::new(app), listener, dir).await);
    }
    (shared, nodes)
}

pub struct Session {
    pub user_id: Uuid,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/api/v1/ws", self.addr)
    }

    /// Graceful shutdown, as on SIGTERM; returns the data folder for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), h)
                .await
                .expect("server stops within 30 s")
                .expect("server task")
                .expect("server result");
        }
        self.dir
    }

    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn wait_stopped(&mut self) {
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), h)
                .await
                .expect("server stops within 30 s")
                .expect("server task")
                .expect("server result");
        }
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        into_json(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        into_json(req.send().await.expect("request")).await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self.http.get(self.url("/metrics")).send().await.unwrap();
        resp.text().await.unwrap()
    }

    pub async fn signup(&self, email: &str) -> Uuid {
        let (status, body) = self
            .post(
                "/api/v1/auth/signup",
                &json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["user_id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn login(&self, email: &str) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                &json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    /// A new account, logged in.
    pub async fn user(&self) -> Session {
        let email = format!("u{}@example.com", Uuid::new_v4().simple());
        let user_id = self.signup(&email).await;
        let (access, refresh) = self.login(&email).await;
        Session {
            user_id,
            email,
            access,
            refresh,
        }
    }

    /// An account made directly in the store (no signup request; its password is
    /// [`PASSWORD`]), e.g. with an id chosen before the server started.
    pub async fn account_with_id(&self, id: Uuid, email: &str) {
        let user = clarity::store::UserRecord {
            id,
            email: email.to_owned(),
            display_name: None,
            password_hash: clarity::auth::password::hash(PASSWORD).expect("hash"),
            created_at: chrono::Utc::now(),
        };
        self.app
            .store
            .create_user(user)
            .await
            .expect("account stored");
    }

    /// A new account made directly in the store, for tests that mint their own tokens.
    pub async fn account(&self) -> Uuid {
        let id = Uuid::now_v7();
        self.account_with_id(id, &format!("a{}@example.com", id.simple()))
            .await;
        id
    }

    /// An access token signed with the server's key, without touching the store.
    pub fn mint(&self, user: Uuid, ttl: Duration) -> String {
        self.app.auth.keys().issue(user, ttl).unwrap().0
    }

    pub async fn ws(&self, token: &str) -> Ws {
        let mut req = self.ws_url().into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (stream, resp) = tokio_tungstenite::connect_async(req)
            .await
            .expect("ws connect");
        assert_eq!(resp.status(), 101);
        Ws { stream }
    }

    /// A WebSocket handshake with extra headers (and a token, if given); `Err` holds the
    /// refusal's status and JSON body.
    pub async fn ws_try(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Ws, (u16, Value)> {
        let mut req = self.ws_url().into_client_request().unwrap();
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        for (k, v) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
            req.headers_mut().insert(name, v.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, resp)) => {
                assert_eq!(resp.status(), 101);
                Ok(Ws { stream })
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let body = resp
                    .body()
                    .as_deref()
                    .map(|b| serde_json::from_slice(b).expect("JSON refusal"))
                    .unwrap_or(Value::Null);
                Err((resp.status().as_u16(), body))
            }
            Err(e) => panic!("ws connect: {e}"),
        }
    }

    /// Every sample of the caller, following cursors.
    pub async fn all_samples(&self, token: &str, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/health-data?limit=1000{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, body) = self.get(&path, Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            out.extend(body["samples"].as_array().unwrap().iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }
}

pub async fn into_json(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        assert!(
            ctype.starts_with("application/json"),
            "{status}: {ctype}: {text}"
        );
        serde_json::from_str(&text).expect("JSON body")
    };
    if !status.is_success() {
        assert!(
            body["error"]["code"].is_string(),
            "error body shape: {body}"
        );
        assert!(
            body["error"]["message"].is_string(),
            "error body shape: {body}"
        );
    }
    (status, body)
}

/// A heart-rate sample at minute `i` of 2026-11-01, in UTC+01:00.
/// 00:00 UTC yesterday: a start for test data that lies inside "the last 7 days" whenever
/// the tests run. Fixed dates there are time bombs: a window rebuilt from the store (a new
/// node taking the user over, an evicted window) reads the week before now.
pub fn yesterday() -> chrono::DateTime<chrono::FixedOffset> {
    let day = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
    day.and_hms_opt(0, 0, 0).unwrap().and_utc().fixed_offset()
}

pub fn hr(id: &str, minute: i64, value: i64) -> Value {
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00+01:00").unwrap()
        + chrono::Duration::minutes(minute);
    json!({"id": id, "kind": "heart_rate", "start": t.to_rfc3339(), "value": value})
}

/// What the server sent, after schema validation.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Close(u16, String),
    Ping,
    /// The connection ended without a close frame.
    Ended,
}

/// Frames the server sends unasked.
pub const PUSHED: [&str; 5] = [
    "analysis",
    "insight",
    "insight_delta",
    "insight_failed",
    "superseded",
];

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, v: &Value) {
        self.stream
            .send(Message::text(v.to_string()))
            .await
            .expect("ws send");
    }

    pub async fn send_text(&mut self, s: &str) {
        self.stream.send(Message::text(s)).await.expect("ws send");
    }

    /// Next frame of interest, skipping pongs; pings are reported (heartbeat tests).
    pub async fn next_frame(&mut self) -> Frame {
        loop {
            match self.stream.next().await {
                None => return Frame::Ended,
                Some(Err(e)) => {
                    eprintln!("websocket read ended: {e}");
                    return Frame::Ended;
                }
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("server sends JSON");
                    validate_server_frame(&v);
                    return Frame::Json(v);
                }
                Some(Ok(Message::Close(c))) => {
                    return match c {
                        Some(c) => Frame::Close(c.code.into(), c.reason.to_string()),
                        None => Frame::Close(1005, String::new()),
                    };
                }
                Some(Ok(Message::Ping(_))) => return Frame::Ping,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Next JSON frame, within 10 s (of tokio time), skipping pings.
    pub async fn recv(&mut self) -> Value {
        self.recv_within(Duration::from_secs(10)).await
    }

    /// Next JSON frame within `limit`, skipping pings. Paused-time tests pass a long limit:
    /// tokio's auto-advance may jump to the nearest timer while socket I/O is in flight.
    pub async fn recv_within(&mut self, limit: Duration) -> Value {
        let fut = async {
            loop {
                match self.next_frame().await {
                    Frame::Json(v) => return v,
                    Frame::Ping => {}
                    other => panic!("expected a JSON frame, got {other:?}"),
                }
            }
        };
        tokio::time::timeout(limit, fut)
            .await
            .expect("frame in time")
    }

    /// Next JSON frame of the given type, skipping pings and the frames the server pushes on
    /// its own (analyses, insights), which may arrive at any point.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            let t = v["type"].as_str().unwrap_or("");
            if t != ty && PUSHED.contains(&t) {
                continue;
            }
            assert_eq!(v["type"], ty, "unexpected frame: {v}");
            return v;
        }
    }

    /// Reads until the close frame; returns its code and the JSON frames seen before it.
    pub async fn until_close(&mut self) -> (u16, Vec<Value>) {
        self.until_close_within(Duration::from_secs(30)).await
    }

    pub async fn until_close_within(&mut self, limit: Duration) -> (u16, Vec<Value>) {
        let mut seen = Vec::new();
        let fut = async {
            loop {
                match self.next_frame().await {
                    Frame::Json(v) => seen.push(v),
                    Frame::Ping => {}
                    Frame::Close(code, _) => return code,
                    Frame::Ended => panic!("connection ended without a close frame after {seen:?}"),
                }
            }
        };
        let code = tokio::time::timeout(limit, fut)
            .await
            .expect("close in time");
        (code, seen)
    }

    pub async fn welcome(&mut self) -> Value {
        self.recv_type("welcome").await
    }
}

type Validators = HashMap<String, jsonschema::Validator>;

fn validators() -> &'static Validators {
    static V: OnceLock<Validators> = OnceLock::new();
    V.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/schemas/server");
        let mut map = HashMap::new();
        for entry in std::fs::read_dir(&dir).expect("protocol/schemas/server exists") {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let schema: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let v = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .unwrap_or_else(|e| panic!("{}: invalid schema: {e}", path.display()));
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                map.insert(name, v);
            }
        }
        map
    })
}

/// Panics unless `frame` matches the schema for its `type`.
pub fn validate_server_frame(frame: &Value) {
    let ty = frame["type"]
        .as_str()
        .unwrap_or_else(|| panic!("frame without type: {frame}"));
    let v = validators()
        .get(ty)
        .unwrap_or_else(|| panic!("no schema in protocol/schemas/server for type `{ty}`: {frame}"));
    let errors: Vec<String> = v
        .iter_errors(frame)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "frame violates protocol/schemas/server/{ty}.json: {errors:?}\n{frame}"
    );
}
