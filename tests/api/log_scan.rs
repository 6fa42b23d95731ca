//! The server's logs never carry secrets or health data. A full scenario (signup, login,
//! failed logins, refresh and a replayed refresh token, WebSocket ingest with the token in the
//! query string, in-band refresh, analyses, insights, shares, a subscription, REST history
//! and audit reads, a revoke, bad tokens, shutdown) runs against the real binary at
//! `--log debug`, in JSON and in text format; then every line it wrote is scanned for the
//! passwords, every token (and any 20-character piece of one), the signing key, the email
//! addresses, the display name, the sample values and the values and text derived from them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use crate::common::process::start_logged;
use crate::common::{Backend, Ws, into_json};

const PASSWORD: &str = "Ultramarine-Walrus-8431-Quartz";
const WRONG_PASSWORD: &str = "Vermilion-Heron-2207-Basalt";
const GARBAGE_TOKEN: &str = "Hyacinth-4471-Obsidian-not-a-real-token-at-all";
const DISPLAY_NAME: &str = "Zebulon Quixote-Marchetti";
/// Sample values unlikely to occur in a log by chance, compared as whole numbers.
const ACTIVITY: [f64; 3] = [98765.25, 87123.75, 76543.125];
const HEART_RATE: [f64; 2] = [173.37, 181.93];
const HRV: f64 = 432.17;

struct Client {
    http: reqwest::Client,
    addr: SocketAddr,
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn send(&self, req: reqwest::RequestBuilder, token: Option<&str>) -> (StatusCode, Value) {
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        into_json(req.send().await.expect("request")).await
    }

    async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        self.send(self.http.post(self.url(path)).json(&body), token)
            .await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(path)), token).await
    }

    async fn delete(&self, path: &str, token: &str) -> StatusCode {
        self.send(self.http.delete(self.url(path)), Some(token))
            .await
            .0
    }

    /// A WebSocket, the token in the query string or in the header.
    async fn ws(&self, token: &str, in_query: bool) -> Ws {
        let url = if in_query {
            format!("ws://{}/api/v1/ws?access_token={token}", self.addr)
        } else {
            format!("ws://{}/api/v1/ws", self.addr)
        };
        let mut req = url.into_client_request().unwrap();
        if !in_query {
            req.headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
        let mut ws = Ws { stream };
        ws.welcome().await;
        ws
    }

    async fn login(&self, email: &str) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pair(&body)
    }
}

fn pair(body: &Value) -> (String, String) {
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn sample(id: &str, kind: &str, minute: i64, value: f64) -> Value {
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-28T06:00:00+01:00").unwrap();
    let start = (t0 + chrono::Duration::minutes(minute)).to_rfc3339();
    json!({"id": id, "kind": kind, "start": start, "value": value, "source": "Apple Watch"})
}

/// What must never be logged.
#[derive(Default)]
struct Secrets {
    /// Compared as substrings.
    strings: Vec<String>,
    /// Compared by every 20-character piece.
    tokens: Vec<String>,
    /// Compared as whole numbers.
    numbers: HashSet<String>,
}

impl Secrets {
    /// Non-integer numbers with at least 5 digits in a document (derived health values).
    fn numbers_of(&mut self, v: &Value) {
        match v {
            Value::Number(n) => {
                let s = n.to_string();
                let digits = s.chars().filter(char::is_ascii_digit).count();
                if s.contains('.') && digits >= 5 {
                    self.numbers.insert(s);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| self.numbers_of(v)),
            Value::Object(o) => o.values().for_each(|v| self.numbers_of(v)),
            _ => {}
        }
    }

    /// Longer strings of a derived document (insight sentences).
    fn texts_of(&mut self, v: &Value) {
        match v {
            Value::String(s) if s.len() >= 24 && s.contains(' ') => self.strings.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| self.texts_of(v)),
            Value::Object(o) => o.values().for_each(|v| self.texts_of(v)),
            _ => {}
        }
    }
}

/// Runs the scenario against the server at `addr`; returns what it must not have logged, and
/// the sessions still open (closed by the server's shutdown).
async fn scenario(addr: SocketAddr) -> (Secrets, Vec<Ws>) {
    let c = Client {
        http: reqwest::Client::new(),
        addr,
    };
    let tag = &Uuid::new_v4().simple().to_string()[..10];
    let owner_email = format!("zq-owner-{tag}@clarity-scan.example");
    let viewer_email = format!("zq-viewer-{tag}@clarity-scan.example");
    let ghost_email = format!("zq-ghost-{tag}@clarity-scan.example");
    let mut secrets = Secrets::default();
    secrets.strings.extend([
        PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        GARBAGE_TOKEN.to_owned(),
        DISPLAY_NAME.to_owned(),
        "Zebulon".to_owned(),
    ]);
    for e in [&owner_email, &viewer_email, &ghost_email] {
        secrets.strings.push(e.clone());
        secrets
            .strings
            .push(e.split('@').next().unwrap().to_owned());
    }

    for (email, name) in [(&owner_email, Some(DISPLAY_NAME)), (&viewer_email, None)] {
        let (status, body) = c
            .post(
                "/api/v1/auth/signup",
                json!({"email": email, "password": PASSWORD, "display_name": name}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // A password too weak, and one that is the email: refused with a reason.
    let (status, _) = c
        .post(
            "/api/v1/auth/signup",
            json!({"email": ghost_email, "password": ghost_email}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (owner_access_1, owner_refresh_1) = c.login(&owner_email).await;
    let (viewer_access, viewer_refresh) = c.login(&viewer_email).await;
    for email in [&owner_email, &ghost_email] {
        let (status, _) = c
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": WRONG_PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = c
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": owner_refresh_1}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (owner_access, owner_refresh) = pair(&body);
    secrets.tokens.extend([
        owner_access_1.clone(),
        owner_refresh_1.clone(),
        owner_access.clone(),
        owner_refresh.clone(),
        viewer_access.clone(),
        viewer_refresh.clone(),
    ]);

    // The device streams samples, refreshes in band, and asks for an analysis.
    let mut device = c.ws(&owner_access, true).await;
    let mut samples = Vec::new();
    for m in 0..90 {
        let a = ACTIVITY[(m % 3) as usize];
        samples.push(sample(&format!("act-{m}"), "activity_count", m, a));
        samples.push(sample(
            &format!("hr-{m}"),
            "heart_rate",
            m,
            HEART_RATE[(m % 2) as usize],
        ));
    }
    samples.push(sample("hrv-1", "heart_rate_variability", 5, HRV));
    device
        .send(&json!({"type": "samples", "seq": 1, "samples": samples}))
        .await;
    let ack = device.recv_type("ack").await;
    assert_eq!(ack["accepted"], 181, "{ack}");
    device
        .send(&json!({"type": "refresh", "access_token": owner_access}))
        .await;
    assert_eq!(device.recv_type("refreshed").await["type"], "refreshed");
    device.send(&json!({"type": "analyze"})).await;
    let analysis = device.recv_type("analysis").await;
    let insight = device.recv_type("insight").await;
    secrets.numbers_of(&analysis);
    secrets.numbers_of(&insight);
    secrets.texts_of(&insight["summary"]);
    secrets.texts_of(&insight["key_points"]);
    secrets.texts_of(&insight["recommendations"]);

    // REST: upload, history, analyses, insights, profile.
    let more: Vec<Value> = (90..100)
        .map(|m| sample(&format!("hr-{m}"), "heart_rate", m, HEART_RATE[0]))
        .collect();
    let (status, body) = c
        .post(
            "/api/v1/health-data",
            json!({"samples": more}),
            Some(&owner_access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = c
        .get(
            "/api/v1/health-data?kind=heart_rate&limit=50",
            Some(&owner_access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["samples"][0]["value"], json!(HEART_RATE[0]));
    for path in ["/api/v1/analyses", "/api/v1/insights"] {
        let (status, body) = c.post(path, json!({}), Some(&owner_access)).await;
        assert!(status.is_success(), "{path}: {body}");
        secrets.numbers_of(&body);
    }
    assert_eq!(
        c.get("/api/v1/user/profile", Some(&owner_access)).await.0,
        StatusCode::OK
    );

    // Shares by email, a subscription and REST reads by the viewer, a revoke.
    let mut share_ids = Vec::new();
    for scope in ["insights", "analyses"] {
        let (status, body) = c
            .post(
                "/api/v1/shares",
                json!({"grantee_email": viewer_email.to_uppercase(), "scope": scope}),
                Some(&owner_access),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        share_ids.push(body["share_id"].as_str().unwrap().to_owned());
    }
    let owner_id = analysis["user_id"].as_str().unwrap().to_owned();
    let mut dash = c.ws(&viewer_access, false).await;
    dash.send(&json!({"type": "subscribe", "stream": "insights", "user_id": owner_id, "since": 0}))
        .await;
    assert_eq!(dash.recv_type("subscribed").await["type"], "subscribed");
    let replayed = dash.recv_type("insight").await;
    secrets.numbers_of(&replayed);
    for path in [
        format!("/api/v1/insights?user_id={owner_id}"),
        format!("/api/v1/analyses?user_id={owner_id}"),
        format!(
            "/api/v1/analyses/{}?user_id={owner_id}",
            analysis["analysis_id"].as_str().unwrap()
        ),
    ] {
        let (status, body) = c.get(&path, Some(&viewer_access)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    assert_eq!(
        c.get("/api/v1/shares", Some(&viewer_access)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        c.delete(&format!("/api/v1/shares/{}", share_ids[0]), &owner_access)
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(dash.recv_type("unsubscribed").await["reason"], "revoked");
    let (status, body) = c.get("/api/v1/audit?limit=100", Some(&owner_access)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Bad credentials of every kind.
    let (status, _) = c
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": owner_refresh_1}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a replayed refresh token");
    assert_eq!(
        c.get("/api/v1/user/profile", Some(GARBAGE_TOKEN)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let bad_ws = format!("ws://{addr}/api/v1/ws?access_token={GARBAGE_TOKEN}");
    assert!(tokio_tungstenite::connect_async(bad_ws).await.is_err());
    // Unknown frames echo nothing sensitive either.
    device
        .send_text(&format!("{{\"type\":\"{PASSWORD}\"}}"))
        .await;
    device.recv_type("error").await;

    for v in ACTIVITY.iter().chain(&HEART_RATE).chain([&HRV]) {
        secrets.numbers.insert(json!(v).to_string());
    }
    for v in ACTIVITY {
        // The whole part too, should a log round them.
        secrets.numbers.insert((v.trunc() as i64).to_string());
    }
    (secrets, vec![device, dash])
}

/// Lines that contain any of `secrets`, with what they contain.
fn leaks(lines: &[String], secrets: &Secrets) -> Vec<String> {
    const PIECE: usize = 20;
    let mut pieces: HashSet<&[u8]> = HashSet::new();
    for t in &secrets.tokens {
        assert!(t.len() >= PIECE);
        pieces.extend(t.as_bytes().windows(PIECE));
    }
    let mut found = Vec::new();
    for line in lines {
        let mut what: Vec<String> = secrets
            .strings
            .iter()
            .filter(|s| line.contains(s.as_str()))
            .cloned()
            .collect();
        if line.as_bytes().windows(PIECE).any(|w| pieces.contains(w)) {
            what.push("a piece of a token".into());
        }
        for number in line.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
            let number = number.trim_matches('.');
            if secrets.numbers.contains(number) {
                what.push(format!("the value {number}"));
            }
        }
        if !what.is_empty() {
            let shown: String = line.chars().take(400).collect();
            found.push(format!("{what:?} in: {shown}"));
        }
    }
    found
}

async fn scan(format: &str, level: &str, backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    backend.migrate(&backend.config(dir.path())).await;
    let env = backend.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (mut child, addr, captured) =
        start_logged(&["serve"], dir.path(), &env, level, format).await;
    let (mut secrets, sessions) = scenario(addr).await;
    let key = std::fs::read_to_string(dir.path().join("jwt_secret")).unwrap_or_default();
    if key.trim().len() >= 20 {
        secrets.tokens.push(key.trim().to_owned());
    }
    // A graceful shutdown (sessions open: `going_away`) logs its own lines.
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops")
        .unwrap();
    drop(sessions);
    // The readers drain what is left in the pipes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = captured.lock().unwrap().clone();
    let marker = if format == "json" {
        "\"DEBUG\""
    } else {
        " DEBUG "
    };
    assert!(
        lines.len() > 20 && lines.iter().any(|l| l.contains(marker)),
        "the debug log was captured: {lines:?}"
    );
    if format == "json" {
        for l in &lines {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        }
    }
    if std::env::var_os("LOG_SCAN_DUMP").is_some() {
        eprintln!("{}", lines.join("\n"));
    }
    let found = leaks(&lines, &secrets);
    assert!(
        found.is_empty(),
        "{} of {} log lines leak:\n{}",
        found.len(),
        lines.len(),
        found.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_at_debug_carry_no_secrets_or_health_data() {
    scan("json", "debug", Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_at_debug_carry_no_secrets_or_health_data() {
    scan("text", "debug", Backend::Sqlite).await;
}

/// Trace enables every dependency's log too (WebSocket frame dumps are capped by the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_at_trace_carry_no_secrets_or_health_data() {
    scan("text", "trace", Backend::Sqlite).await;
}

/// The AWS SDK's log (requests name accounts by email) on DynamoDB Local, when configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_json_logs_at_trace_carry_no_secrets_or_health_data() {
    if let Some(backend) = Backend::dynamodb() {
        scan("json", "trace", backend).await;
    }
}

#[test]
fn the_scanner_finds_what_it_looks_for() {
    let secrets = Secrets {
        strings: vec!["ann@example.com".into()],
        tokens: vec!["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLWJ5dGVz".into()],
        numbers: ["173.37".to_owned(), "98765".to_owned()].into(),
    };
    let lines: Vec<String> = [
        "user ann@example.com logged in",
        "token=...eyJzdWIiOiIxMjMifQ.c2lnbm...",
        "{\"value\":173.37}",
        "value=98765 ms",
        "elapsed 1173.371 ms, 987650 bytes, 173.3 bpm, id 0198765.2",
    ]
    .map(str::to_owned)
    .into();
    let found = leaks(&lines, &secrets);
    assert_eq!(found.len(), 4, "{found:#?}");
}
