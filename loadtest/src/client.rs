//! Talking to the server: target URL handling, account signup/login over REST,
//! WebSocket connect (with source-address spreading) and protocol frames.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use futures_util::stream;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub type Ws = WebSocketStream<TcpStream>;

/// Where the server is. Only loopback addresses are accepted.
#[derive(Debug, Clone)]
pub struct Target {
    /// Base URL for REST calls (scheme + host + port).
    pub base: Url,
    /// `ws://HOST:PORT/api/v1/ws`
    pub ws_url: String,
    /// Resolved socket address of the server.
    pub server: SocketAddr,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self> {
        let base = Url::parse(url).with_context(|| format!("invalid --url {url:?}"))?;
        if base.scheme() != "http" {
            bail!(
                "--url must be an http:// URL (got scheme {:?})",
                base.scheme()
            );
        }
        let host = base
            .host_str()
            .ok_or_else(|| anyhow!("--url has no host"))?;
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| {
                    anyhow!("--url host must be a loopback IP or localhost (got {host:?})")
                })?
        };
        if !ip.is_loopback() {
            bail!("refusing non-loopback server address {ip}: this tool only targets loopback");
        }
        let port = base.port_or_known_default().unwrap_or(80);
        let server = SocketAddr::new(ip, port);
        let mut base = base;
        base.set_path("/");
        base.set_query(None);
        Ok(Self {
            ws_url: format!("ws://{server}/api/v1/ws"),
            base,
            server,
        })
    }

    pub fn endpoint(&self, path: &str) -> Url {
        self.base.join(path).expect("static path joins")
    }
}

/// Client source addresses to spread sockets over (127.0.0.2..), so that more
/// than one source address's worth of ephemeral ports is available.
#[derive(Debug, Clone)]
pub struct SourcePool {
    ips: Arc<Vec<IpAddr>>,
}

impl SourcePool {
    pub fn new(server: SocketAddr, count: u8) -> Self {
        let ips = match server.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => (0..count)
                .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + k)))
                .collect(),
            // IPv6 has a single loopback address; let the kernel choose.
            _ => Vec::new(),
        };
        Self { ips: Arc::new(ips) }
    }

    pub fn len(&self) -> usize {
        self.ips.len()
    }

    pub fn pick(&self, i: usize) -> Option<IpAddr> {
        if self.ips.is_empty() {
            None
        } else {
            Some(self.ips[i % self.ips.len()])
        }
    }
}

// ---------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Account {
    /// Position in the run's account list (`lt-<run_id>-<index>@example.com`): scenarios
    /// that give accounts roles (fanout: devices, then viewers) pick them by it.
    pub index: usize,
    pub email: String,
    pub access_token: String,
    pub expires_in: Option<u64>,
}

#[derive(Debug, Default, Clone)]
pub struct AccountStats {
    pub created: usize,
    pub existing: usize,
    pub failed: usize,
    pub retries: usize,
    pub secs: f64,
}

#[derive(Deserialize)]
struct LoginResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .context("building HTTP client")
}

/// HTTP client for one upload worker: one keep-alive connection (HTTP/1.1),
/// bound to `src` when given.
pub fn upload_client(
    src: Option<IpAddr>,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(Duration::from_secs(90))
        .local_address(src)
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .build()
        .context("building HTTP client")
}

/// Answer to `POST /api/v1/health-data`.
#[derive(Debug, Deserialize)]
pub struct UploadReport {
    #[serde(default)]
    pub accepted: u64,
    #[serde(default)]
    pub duplicates: u64,
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

/// Error-count key for a reqwest transport error: `transport.<what>`.
pub fn http_err_key(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else if e.is_request() {
        "request"
    } else {
        "other"
    };
    format!("transport.{what}")
}

const MAX_HTTP_ATTEMPTS: usize = 6;

/// POST JSON, retrying on 429/503 (honouring Retry-After) and transport errors.
async fn post_json(
    http: &reqwest::Client,
    url: &Url,
    body: &serde_json::Value,
    retries: &mut usize,
) -> Result<(StatusCode, String)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let res = http.post(url.clone()).json(body).send().await;
        let wait = match res {
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let text = resp.text().await.unwrap_or_default();
                let retryable = status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::SERVICE_UNAVAILABLE;
                if !retryable || attempt >= MAX_HTTP_ATTEMPTS {
                    return Ok((status, text));
                }
                Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 10))
            }
            Err(e) => {
                // Transport errors (e.g. connection refused) are retried only briefly.
                if attempt >= 3 {
                    return Err(anyhow!(e).context(format!("POST {url}")));
                }
                Duration::from_millis(500 * attempt as u64)
            }
        };
        *retries += 1;
        tokio::time::sleep(wait).await;
    }
}

enum SignupOutcome {
    Created,
    Existing,
}

async fn signup_and_login(
    http: &reqwest::Client,
    target: &Target,
    index: usize,
    email: String,
    password: &str,
    display_name: String,
    retries: &mut usize,
) -> Result<(Account, SignupOutcome)> {
    let body = json!({ "email": email, "password": password, "display_name": display_name });
    let (status, text) = post_json(
        http,
        &target.endpoint("/api/v1/auth/signup"),
        &body,
        retries,
    )
    .await?;
    let outcome = match status {
        StatusCode::CREATED | StatusCode::OK => SignupOutcome::Created,
        StatusCode::CONFLICT => SignupOutcome::Existing,
        s => bail!("signup {email}: HTTP {s}: {}", snippet(&text)),
    };
    let body = json!({ "email": email, "password": password });
    let (status, text) =
        post_json(http, &target.endpoint("/api/v1/auth/login"), &body, retries).await?;
    if status != StatusCode::OK {
        bail!("login {email}: HTTP {status}: {}", snippet(&text));
    }
    let login: LoginResponse = serde_json::from_str(&text)
        .with_context(|| format!("login {email}: bad response {}", snippet(&text)))?;
    Ok((
        Account {
            index,
            email,
            access_token: login.access_token,
            expires_in: login.expires_in,
        },
        outcome,
    ))
}

fn snippet(s: &str) -> String {
    let s = s.trim();
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

/// Create (or log into) `n` accounts `lt-<run_id>-<i>@example.com` with
/// bounded concurrency. Fails only if no account could be obtained.
pub async fn create_accounts(
    http: &reqwest::Client,
    target: &Target,
    run_id: &str,
    password: &str,
    n: usize,
    concurrency: usize,
) -> Result<(Vec<Account>, AccountStats)> {
    let started = Instant::now();
    type Attempt = (usize, Result<(Account, SignupOutcome)>, usize);
    let results: Vec<Attempt> = stream::iter(0..n)
        .map(|i| async move {
            let email = format!("lt-{run_id}-{i}@example.com");
            let mut retries = 0;
            let r = signup_and_login(
                http,
                target,
                i,
                email,
                password,
                format!("Load Test {i}"),
                &mut retries,
            )
            .await;
            (i, r, retries)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;

    let mut stats = AccountStats::default();
    let mut ok: Vec<(usize, Account)> = Vec::with_capacity(n);
    let mut first_err = None;
    for (i, r, retries) in results {
        stats.retries += retries;
        match r {
            Ok((acct, SignupOutcome::Created)) => {
                stats.created += 1;
                ok.push((i, acct));
            }
            Ok((acct, SignupOutcome::Existing)) => {
                stats.existing += 1;
                ok.push((i, acct));
            }
            Err(e) => {
                stats.failed += 1;
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    stats.secs = started.elapsed().as_secs_f64();
    if let Some(e) = &first_err {
        eprintln!(
            "[loadtest] warning: {} of {n} accounts failed; first error: {e:#}",
            stats.failed
        );
    }
    if ok.is_empty() {
        return Err(first_err
            .unwrap_or_else(|| anyhow!("no accounts requested"))
            .context("could not create any account"));
    }
    ok.sort_by_key(|(i, _)| *i);
    Ok((ok.into_iter().map(|(_, a)| a).collect(), stats))
}

// ---------------------------------------------------------------------------
// Protocol frames (server → client)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct Limits {
    #[serde(default)]
    pub max_frame_bytes: Option<u64>,
    #[serde(default)]
    pub max_samples_per_frame: Option<u64>,
    #[serde(default)]
    pub max_frames_per_sec: Option<f64>,
    #[serde(default)]
    pub frame_burst: Option<f64>,
    #[serde(default)]
    pub max_inflight_batches: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Welcome {
    #[serde(default)]
    #[allow(dead_code)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub heartbeat_interval_ms: Option<u64>,
    #[serde(default)]
    pub limits: Limits,
}

#[derive(Debug, Deserialize)]
pub struct Rejected {
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Ack {
    pub seq: u64,
    #[serde(default)]
    pub accepted: u64,
    #[serde(default)]
    pub duplicates: u64,
    /// Sync v2: samples that replaced a stored one (a higher `version`).
    #[serde(default)]
    pub updated: u64,
    /// Sync v2: ids a `delete` frame removed, and ids it did not find.
    #[serde(default)]
    pub deleted: u64,
    #[serde(default)]
    pub not_found: u64,
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorFrame {
    pub code: String,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome(Welcome),
    Ack(Ack),
    Error(ErrorFrame),
    #[serde(other)]
    Other,
}

/// The `type` of a server frame that isn't otherwise handled (e.g. `token_expiring`).
pub fn frame_type(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// Error-count key for a close frame: `close.<code>` (or `close.no_status`).
pub fn close_key(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) => format!("close.{}", u16::from(f.code)),
        None => "close.no_status".to_string(),
    }
}

/// Error-count key for a WebSocket error.
pub fn ws_err_key(e: &WsError) -> String {
    match e {
        WsError::ConnectionClosed => "ws.connection_closed".into(),
        WsError::AlreadyClosed => "ws.already_closed".into(),
        WsError::Io(io) => format!("ws.io.{:?}", io.kind()),
        WsError::Protocol(p) => format!("ws.protocol.{}", short_debug(p)),
        WsError::Capacity(_) => "ws.capacity".into(),
        WsError::WriteBufferFull(_) => "ws.write_buffer_full".into(),
        WsError::Http(resp) => format!("ws.http_{}", resp.status().as_u16()),
        other => format!("ws.{}", short_debug(other)),
    }
}

fn short_debug<T: std::fmt::Debug>(v: &T) -> String {
    let s = format!("{v:?}");
    s.split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("other")
        .to_string()
}

// ---------------------------------------------------------------------------
// WebSocket connect
// ---------------------------------------------------------------------------

#[derive(Debug)]
pub enum ConnectError {
    Timeout(&'static str),
    Bind(std::io::Error),
    Tcp(std::io::Error),
    HttpStatus(u16),
    Handshake(String),
    Closed(String),
    BadWelcome,
}

impl ConnectError {
    /// Error-count key, e.g. `connect.timeout.tcp`, `connect.http_401`.
    pub fn key(&self) -> String {
        match self {
            ConnectError::Timeout(stage) => format!("connect.timeout.{stage}"),
            ConnectError::Bind(e) => format!("connect.bind.{:?}", e.kind()),
            ConnectError::Tcp(e) => format!("connect.tcp.{:?}", e.kind()),
            ConnectError::HttpStatus(s) => format!("connect.http_{s}"),
            ConnectError::Handshake(k) => format!("connect.handshake.{k}"),
            ConnectError::Closed(k) => format!("connect.before_welcome.{k}"),
            ConnectError::BadWelcome => "connect.bad_welcome".into(),
        }
    }
}

/// WebSocket config with small buffers: tungstenite's 128 KiB default read
/// buffer is eagerly allocated and would dominate client memory at 100k sockets.
pub fn ws_config(read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// Open a TCP connection (bound to `src` if given), upgrade it to an
/// authenticated WebSocket and read the `welcome` frame, all within `timeout`.
pub async fn connect_ws(
    target: &Target,
    token: &str,
    src: Option<IpAddr>,
    config: WebSocketConfig,
    timeout: Duration,
) -> Result<(Ws, Welcome), ConnectError> {
    connect_ws_with(target, token, src, config, timeout, None).await
}

/// [`connect_ws`] with a receive buffer size (SO_RCVBUF, set before connecting so the TCP
/// window is negotiated with it): a client that stops reading then fills up after a few
/// KiB instead of the kernel's default hundreds, so the server notices the stall soon.
pub async fn connect_ws_with(
    target: &Target,
    token: &str,
    src: Option<IpAddr>,
    config: WebSocketConfig,
    timeout: Duration,
    recv_buffer: Option<u32>,
) -> Result<(Ws, Welcome), ConnectError> {
    let deadline = tokio::time::Instant::now() + timeout;

    let socket = match target.server {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(ConnectError::Bind)?;
    if let Some(bytes) = recv_buffer {
        socket
            .set_recv_buffer_size(bytes)
            .map_err(ConnectError::Bind)?;
    }
    if let Some(ip) = src {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(ConnectError::Bind)?;
    }
    let stream = tokio::time::timeout_at(deadline, socket.connect(target.server))
        .await
        .map_err(|_| ConnectError::Timeout("tcp"))?
        .map_err(ConnectError::Tcp)?;
    let _ = stream.set_nodelay(true);

    let mut request = target
        .ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::Handshake(short_debug(&e)))?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ConnectError::Handshake("bad_token".into()))?;
    request.headers_mut().insert(AUTHORIZATION, auth);

    let (mut ws, _resp) = tokio::time::timeout_at(
        deadline,
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)),
    )
    .await
    .map_err(|_| ConnectError::Timeout("upgrade"))?
    .map_err(|e| match e {
        WsError::Http(resp) => ConnectError::HttpStatus(resp.status().as_u16()),
        other => ConnectError::Handshake(ws_err_key(&other)),
    })?;

    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| ConnectError::Timeout("welcome"))?;
        match msg {
            Some(Ok(Message::Text(t))) => {
                return match serde_json::from_str::<ServerFrame>(&t) {
                    Ok(ServerFrame::Welcome(w)) => Ok((ws, w)),
                    Ok(ServerFrame::Error(e)) => {
                        Err(ConnectError::Closed(format!("error.{}", e.code)))
                    }
                    _ => Err(ConnectError::BadWelcome),
                };
            }
            Some(Ok(Message::Close(f))) => return Err(ConnectError::Closed(close_key(f.as_ref()))),
            Some(Ok(Message::Binary(_))) => return Err(ConnectError::BadWelcome),
            Some(Ok(_)) => continue, // ping/pong
            Some(Err(e)) => return Err(ConnectError::Closed(ws_err_key(&e))),
            None => return Err(ConnectError::Closed("eof".into())),
        }
    }
}

/// Close a WebSocket with 1000 and wait for the server's close frame or EOF,
/// bounded by `timeout`. `Err(key)` when the close was not clean.
pub async fn close_ws_checked(ws: &mut Ws, timeout: Duration) -> Result<(), String> {
    let frame = CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "".into(),
    };
    let closing = async {
        ws.close(Some(frame))
            .await
            .map_err(|e| format!("close.send.{}", ws_err_key(&e)))?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(f)))) if u16::from(f.code) != 1000 => {
                    return Err(format!("close.reply.{}", u16::from(f.code)));
                }
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Err(WsError::ConnectionClosed)) => return Ok(()),
                Some(Err(e)) => return Err(format!("close.{}", ws_err_key(&e))),
                Some(Ok(_)) => {} // frames sent before the server saw our close
            }
        }
    };
    tokio::time::timeout(timeout, closing)
        .await
        .map_err(|_| "close.timeout".to_string())?
}

/// Politely close a WebSocket: send Close(1000) and read until the server's
/// close (or EOF), bounded by `timeout`.
pub async fn close_ws(ws: &mut Ws, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, async {
        let frame = CloseFrame {
            code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: "loadtest done".into(),
        };
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
