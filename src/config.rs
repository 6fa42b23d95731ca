//! Command line and environment configuration.
//!
//! Rules: every setting is a flag with an `env = "CLARITY_..."` twin and a default that works
//! on a laptop; secrets are `SecretString` and never printed (`Debug` redacts them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

#[derive(Debug, Parser)]
#[command(
    name = "clarity",
    version,
    about = "Real-time server for wearable health data"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(Box<Config>),
    /// Create the store's tables (idempotent) and exit. Production DynamoDB tables come from
    /// the deploy template instead.
    Migrate(MigrateArgs),
    /// Analyse an actigraphy CSV (`timestamp_utc_iso8601,activity_count`, one row a minute)
    /// with the server's own analytics and print one JSON document.
    Analyze(AnalyzeArgs),
    /// Score one week of activity (a 10080-row CSV in the `analyze` format) with a PAT model
    /// bundle and print `{"embedding":[96 floats],"scores":{...}}`.
    Score(ScoreArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// Model bundle folder (written by `scripts/pat-export`).
    #[arg(long)]
    pub model: PathBuf,
    /// Input CSV, `timestamp_utc_iso8601,activity_count`, 10080 minutes; an empty count is a
    /// missing minute (filled with the scaler's mean).
    #[arg(long)]
    pub input: PathBuf,
    /// ONNX Runtime shared library (`libonnxruntime.so.1.31.1` from the onnxruntime wheel);
    /// falls back to `ORT_DYLIB_PATH`.
    #[arg(long, env = "CLARITY_ONNXRUNTIME_LIB")]
    pub onnxruntime_lib: Option<PathBuf>,
    /// Also print the token rows (`tokens`, tokens × 96).
    #[arg(long)]
    pub tokens: bool,
}

/// `clarity migrate` takes only the settings that creating the store's tables uses.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Folder of the embedded database (SQLite).
    #[arg(long, env = "CLARITY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Storage backend.
    #[arg(long, env = "CLARITY_STORE", value_enum, default_value = "sqlite")]
    pub store: StoreKind,

    /// Prefix of the DynamoDB table name (the table is `<prefix>clarity`).
    #[arg(long, env = "CLARITY_DYNAMODB_TABLE_PREFIX", default_value = "")]
    pub dynamodb_table_prefix: String,

    /// DynamoDB endpoint override, e.g. `http://127.0.0.1:8000` for DynamoDB Local. Region
    /// and credentials come from the standard AWS chain (`AWS_REGION`, `AWS_PROFILE`, task role).
    #[arg(long, env = "CLARITY_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,

    /// Attempts per DynamoDB request (SDK standard retry with jittered backoff).
    #[arg(long, env = "CLARITY_DYNAMODB_MAX_ATTEMPTS", default_value_t = 4)]
    pub dynamodb_max_attempts: u32,

    /// Longest wait for one store operation, milliseconds.
    #[arg(long, env = "CLARITY_STORE_TIMEOUT_MS", default_value_t = 5_000)]
    pub store_timeout_ms: u64,

    /// SQLite `synchronous` pragma: FULL survives power loss, NORMAL only process crashes.
    #[arg(long, env = "CLARITY_SQLITE_SYNCHRONOUS", default_value = "FULL")]
    pub sqlite_synchronous: String,

    /// Log output format.
    #[arg(long, env = "CLARITY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "CLARITY_LOG", default_value = "info")]
    pub log: String,
}

impl MigrateArgs {
    /// The serve defaults with these settings: what `app::migrate` takes.
    pub fn into_config(self) -> Config {
        let mut c = Cli::parse_from(["clarity"]).into_config();
        c.data_dir = self.data_dir;
        c.store = self.store;
        c.dynamodb_table_prefix = self.dynamodb_table_prefix;
        c.dynamodb_endpoint = self.dynamodb_endpoint;
        c.dynamodb_max_attempts = self.dynamodb_max_attempts;
        c.store_timeout_ms = self.store_timeout_ms;
        c.sqlite_synchronous = self.sqlite_synchronous;
        c.log_format = self.log_format;
        c.log = self.log;
        c
    }
}

#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// Input CSV; an empty count is a missing minute.
    #[arg(long)]
    pub input: PathBuf,
    /// Also write `timestamp_utc_iso8601,cole_kripke,sadeh` per minute (1 sleep, 0 wake,
    /// empty missing) to this file.
    #[arg(long)]
    pub per_minute: Option<PathBuf>,
    /// Local clock for clock times and nights, minutes east of UTC.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub utc_offset_minutes: i32,
}

impl Cli {
    /// The serve settings, whether given after `serve` or bare.
    pub fn into_config(self) -> Config {
        match self.command {
            Some(Command::Serve(c)) => *c,
            Some(Command::Migrate(m)) => m.into_config(),
            Some(Command::Analyze(_) | Command::Score(_)) | None => self.serve,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// Embedded SQLite database in the data folder: one node, zero setup.
    Sqlite,
    /// One DynamoDB table shared by every node.
    Dynamodb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CLARITY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Folder for the embedded database and the generated signing key.
    #[arg(long, env = "CLARITY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Storage backend.
    #[arg(long, env = "CLARITY_STORE", value_enum, default_value = "sqlite")]
    pub store: StoreKind,

    /// Prefix of the DynamoDB table name (the table is `<prefix>clarity`), to keep several
    /// deployments or test runs in one account.
    #[arg(long, env = "CLARITY_DYNAMODB_TABLE_PREFIX", default_value = "")]
    pub dynamodb_table_prefix: String,

    /// DynamoDB endpoint override, e.g. `http://127.0.0.1:8000` for DynamoDB Local. Region
    /// and credentials come from the standard AWS chain (`AWS_REGION`, `AWS_PROFILE`, task role).
    #[arg(long, env = "CLARITY_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,

    /// Attempts per DynamoDB request (SDK standard retry with jittered backoff) within the
    /// store timeout.
    #[arg(long, env = "CLARITY_DYNAMODB_MAX_ATTEMPTS", default_value_t = 4)]
    pub dynamodb_max_attempts: u32,

    /// Sample writes of this node in flight to DynamoDB at once; more wait their turn within
    /// the store timeout instead of piling onto a saturated table.
    #[arg(long, env = "CLARITY_DYNAMODB_MAX_INFLIGHT", default_value_t = 64)]
    pub dynamodb_max_inflight: usize,

    /// HS256 signing key for access tokens, shared by all nodes of a deployment. When unset a
    /// random key is generated once and kept in the data folder.
    #[arg(long, env = "CLARITY_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,

    /// `iss` claim put in and required of access tokens.
    #[arg(long, env = "CLARITY_JWT_ISSUER", default_value = "clarity")]
    pub jwt_issuer: String,

    /// `aud` claim put in and required of access tokens.
    #[arg(long, env = "CLARITY_JWT_AUDIENCE", default_value = "clarity-api")]
    pub jwt_audience: String,

    /// Access token lifetime, seconds.
    #[arg(long, env = "CLARITY_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,

    /// Refresh token lifetime, seconds.
    #[arg(long, env = "CLARITY_REFRESH_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl_secs: u64,

    /// How long before its token expires a WebSocket session gets a `token_expiring` frame.
    #[arg(long, env = "CLARITY_TOKEN_EXPIRY_WARNING_SECS", default_value_t = 60)]
    pub token_expiry_warning_secs: u64,

    /// Interval of server WebSocket pings, milliseconds.
    #[arg(long, env = "CLARITY_HEARTBEAT_INTERVAL_MS", default_value_t = 30_000)]
    pub heartbeat_interval_ms: u64,

    /// Missed heartbeat intervals after which a silent peer is dropped.
    #[arg(long, env = "CLARITY_HEARTBEAT_MISSES", default_value_t = 3)]
    pub heartbeat_misses: u32,

    /// Largest accepted WebSocket message, bytes.
    #[arg(long, env = "CLARITY_MAX_FRAME_BYTES", default_value_t = 1024 * 1024)]
    pub max_frame_bytes: usize,

    /// Most samples in one `samples` frame.
    #[arg(long, env = "CLARITY_MAX_SAMPLES_PER_FRAME", default_value_t = 5000)]
    pub max_samples_per_frame: usize,

    /// Sustained frames per second a session may send.
    #[arg(long, env = "CLARITY_MAX_FRAMES_PER_SEC", default_value_t = 50)]
    pub max_frames_per_sec: u32,

    /// Burst of frames above the sustained rate; also the number of consecutive rate-limited
    /// frames after which the session is closed (4008).
    #[arg(long, env = "CLARITY_FRAME_BURST", default_value_t = 100)]
    pub frame_burst: u32,

    /// Samples frames a session may have waiting for the store at once.
    #[arg(long, env = "CLARITY_MAX_INFLIGHT_BATCHES", default_value_t = 8)]
    pub max_inflight_batches: usize,

    /// Frames queued to a session's socket, per kind: pushed frames (analyses, insights,
    /// stream events) beyond it close the session as a slow consumer (4009); the session's own
    /// replies (acks, pongs, errors) beyond it make it stop reading until they drain.
    #[arg(long, env = "CLARITY_OUTBOUND_QUEUE", default_value_t = 64)]
    pub outbound_queue: usize,

    /// Bytes of replies queued to a session's socket; beyond it the session stops reading
    /// until the client has read some (TCP back-pressure on the client).
    #[arg(long, env = "CLARITY_OUTBOUND_QUEUE_BYTES", default_value_t = 256 * 1024)]
    pub outbound_queue_bytes: usize,

    /// A session whose output has been waiting for the socket this long without catching up
    /// (the client reads too slowly or not at all) is dropped, milliseconds.
    #[arg(long, env = "CLARITY_WS_WRITE_TIMEOUT_MS", default_value_t = 10_000)]
    pub ws_write_timeout_ms: u64,

    /// Kernel send buffer per connection, bytes (0: the kernel's autotuning, up to
    /// megabytes). Bounds what a peer that stops reading costs; Linux doubles the value.
    #[arg(long, env = "CLARITY_SOCKET_SEND_BUFFER", default_value_t = 131_072)]
    pub socket_send_buffer: usize,

    /// Events kept per stream (a user's analyses or insights) for `subscribe` with `since`;
    /// a client further behind is told `recover: false` and reloads over REST.
    #[arg(long, env = "CLARITY_STREAM_HISTORY", default_value_t = 256)]
    pub stream_history: u64,

    /// Stream subscriptions one session may hold at once.
    #[arg(long, env = "CLARITY_MAX_SUBSCRIPTIONS", default_value_t = 16)]
    pub max_subscriptions: usize,

    /// Most samples in one REST upload.
    #[arg(
        long,
        env = "CLARITY_MAX_SAMPLES_PER_REQUEST",
        default_value_t = 10_000
    )]
    pub max_samples_per_request: usize,

    /// Largest accepted HTTP request body, bytes.
    #[arg(long, env = "CLARITY_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Longest wait for one store operation before answering 503, milliseconds.
    #[arg(long, env = "CLARITY_STORE_TIMEOUT_MS", default_value_t = 5_000)]
    pub store_timeout_ms: u64,

    /// Write operations queued for the store before callers get 503 / `store_unavailable`.
    #[arg(long, env = "CLARITY_STORE_QUEUE_DEPTH", default_value_t = 65_536)]
    pub store_queue_depth: usize,

    /// Samples queued for the store before callers get 503 / `store_unavailable`.
    #[arg(
        long,
        env = "CLARITY_STORE_MAX_PENDING_SAMPLES",
        default_value_t = 200_000
    )]
    pub store_max_pending_samples: usize,

    /// SQLite `synchronous` pragma: FULL survives power loss, NORMAL only process crashes.
    #[arg(long, env = "CLARITY_SQLITE_SYNCHRONOUS", default_value = "FULL")]
    pub sqlite_synchronous: String,

    /// A user's live window is dropped after this long without new data or a session
    /// (it is rebuilt from the store when they come back), seconds.
    #[arg(long, env = "CLARITY_WINDOW_IDLE_SECS", default_value_t = 900)]
    pub window_idle_secs: u64,

    /// Samples one WebSocket session may send per second (bursts up to twice that, or one
    /// full frame); more get `rate_limited` with `retry_after_ms`.
    #[arg(long, env = "CLARITY_MAX_SAMPLES_PER_SEC", default_value_t = 5_000)]
    pub max_samples_per_sec: u32,

    /// Samples one user may send per second over all their sessions and REST uploads on a
    /// node (bursts up to twice that).
    #[arg(
        long,
        env = "CLARITY_MAX_USER_SAMPLES_PER_SEC",
        default_value_t = 10_000
    )]
    pub max_user_samples_per_sec: u32,

    /// Open WebSocket sessions per user on a node (0: no limit); one more is refused with 429.
    #[arg(long, env = "CLARITY_MAX_SESSIONS_PER_USER", default_value_t = 20)]
    pub max_sessions_per_user: usize,

    /// A new connection must be answered (its request complete, or the WebSocket upgraded)
    /// within this, or it is closed: clients that trickle headers cannot hold sockets.
    #[arg(long, env = "CLARITY_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000)]
    pub handshake_timeout_ms: u64,

    /// A connection that sends nothing for this long is closed (0: the heartbeat timeout plus
    /// 30 s, so live WebSockets, which answer pings, are never cut).
    #[arg(long, env = "CLARITY_IDLE_TIMEOUT_SECS", default_value_t = 0)]
    pub idle_timeout_secs: u64,

    /// Open connections per client address (0: no limit). Behind a load balancer every
    /// connection comes from the balancer: set 0 there.
    #[arg(long, env = "CLARITY_MAX_CONNECTIONS_PER_IP", default_value_t = 512)]
    pub max_connections_per_ip: usize,

    /// How nodes talk to each other: `memory` (one node; nothing to set up) or a Redis URL
    /// (`redis://HOST:PORT`, `rediss://` for TLS) shared by every node of a deployment.
    #[arg(long, env = "CLARITY_BUS", default_value = "memory")]
    pub bus: String,

    /// Prefix of the bus channel and lease keys in Redis, so deployments can share one.
    #[arg(long, env = "CLARITY_BUS_PREFIX", default_value = "clarity:")]
    pub bus_prefix: String,

    /// This node's name on the bus (lease holder); a fresh random id when unset.
    #[arg(long, env = "CLARITY_NODE_ID")]
    pub node_id: Option<uuid::Uuid>,

    /// How long a node's claim on a user's window lasts without renewal: after a node dies,
    /// another takes its users over within this.
    #[arg(long, env = "CLARITY_LEASE_TTL_MS", default_value_t = 15_000)]
    pub lease_ttl_ms: u64,

    /// Google Gemini API key. Without one, insights come from the built-in local generator.
    #[arg(long, env = "GEMINI_API_KEY", hide_env_values = true)]
    pub gemini_api_key: Option<SecretString>,

    /// Base URL of the Generative Language API.
    #[arg(
        long,
        env = "CLARITY_GEMINI_BASE_URL",
        default_value = "https://generativelanguage.googleapis.com"
    )]
    pub gemini_base_url: String,

    /// Gemini model.
    #[arg(long, env = "CLARITY_GEMINI_MODEL", default_value = "gemini-2.5-flash")]
    pub gemini_model: String,

    /// Longest wait for one Gemini attempt (streamed body included), milliseconds.
    #[arg(long, env = "CLARITY_GEMINI_TIMEOUT_MS", default_value_t = 20_000)]
    pub gemini_timeout_ms: u64,

    /// Attempts per insight on 429, 5xx and timeouts (jittered exponential backoff,
    /// `Retry-After` honoured).
    #[arg(long, env = "CLARITY_GEMINI_MAX_ATTEMPTS", default_value_t = 3)]
    pub gemini_max_attempts: u32,

    /// Gemini calls in flight at once.
    #[arg(long, env = "CLARITY_GEMINI_MAX_CONCURRENCY", default_value_t = 4)]
    pub gemini_max_concurrency: usize,

    /// Consecutive failed calls that open the circuit breaker.
    #[arg(long, env = "CLARITY_GEMINI_BREAKER_FAILURES", default_value_t = 5)]
    pub gemini_breaker_failures: u32,

    /// How long an open breaker sends insights to the fallback, seconds.
    #[arg(long, env = "CLARITY_GEMINI_BREAKER_SECS", default_value_t = 60)]
    pub gemini_breaker_secs: u64,

    /// Stream Gemini's answer (`insight_delta` frames) instead of waiting for it whole.
    #[arg(long, env = "CLARITY_GEMINI_STREAM", default_value_t = true, action = clap::ArgAction::Set)]
    pub gemini_stream: bool,

    /// When Gemini fails, answer with the local generator (recorded as such); `false` sends
    /// `insight_failed` instead.
    #[arg(long, env = "CLARITY_GEMINI_FALLBACK", default_value_t = true, action = clap::ArgAction::Set)]
    pub gemini_fallback: bool,

    /// `POST /api/v1/insights` requests a user may make per hour.
    #[arg(long, env = "CLARITY_INSIGHT_REQUESTS_PER_HOUR", default_value_t = 12)]
    pub insight_requests_per_hour: u32,

    /// Longest wait for sessions to finish on shutdown, seconds.
    #[arg(long, env = "CLARITY_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// PAT model bundle folder (`scripts/pat-export --out`). Unset: no PAT scoring; analyses
    /// say PAT is unavailable.
    #[arg(long, env = "CLARITY_PAT_MODEL")]
    pub pat_model: Option<PathBuf>,

    /// ONNX Runtime shared library for PAT (`libonnxruntime.so.1.31.1` from the onnxruntime
    /// 1.31.1 wheel); falls back to `ORT_DYLIB_PATH`.
    #[arg(long, env = "CLARITY_ONNXRUNTIME_LIB")]
    pub onnxruntime_lib: Option<PathBuf>,

    /// PAT inference threads, each with its own session.
    #[arg(long, env = "CLARITY_PAT_THREADS", default_value_t = 1)]
    pub pat_threads: usize,

    /// ONNX Runtime threads inside one session call (0: one per core).
    #[arg(long, env = "CLARITY_PAT_INTRA_THREADS", default_value_t = 0)]
    pub pat_intra_threads: usize,

    /// Most pending weeks (across users) run in one session call.
    #[arg(long, env = "CLARITY_PAT_MAX_BATCH", default_value_t = 16)]
    pub pat_max_batch: usize,

    /// Weeks waiting for PAT before more are refused (`pat.code` `busy`).
    #[arg(long, env = "CLARITY_PAT_QUEUE", default_value_t = 256)]
    pub pat_queue: usize,

    /// Log output format.
    #[arg(long, env = "CLARITY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "CLARITY_LOG", default_value = "info")]
    pub log: String,

    /// Who issues access tokens: `local` (signup/login/refresh here, HS256) or `cognito`
    /// (RS256 access tokens of an Amazon Cognito user pool; the local account endpoints are off).
    #[arg(long, env = "CLARITY_AUTH", value_enum, default_value = "local")]
    pub auth: AuthMode,

    /// Cognito user pool id, e.g. `us-east-1_AbC123xyz` (required with `--auth cognito`).
    #[arg(long, env = "CLARITY_COGNITO_USER_POOL_ID")]
    pub cognito_user_pool_id: Option<String>,

    /// Cognito app client id; access tokens must carry it as `client_id` (required with
    /// `--auth cognito`).
    #[arg(long, env = "CLARITY_COGNITO_CLIENT_ID")]
    pub cognito_client_id: Option<String>,

    /// AWS region of the user pool. Default: the pool id's prefix (`us-east-1` for
    /// `us-east-1_AbC123xyz`).
    #[arg(long, env = "CLARITY_COGNITO_REGION")]
    pub cognito_region: Option<String>,

    /// Where the pool's signing keys are fetched. Default:
    /// `https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json`.
    #[arg(long, env = "CLARITY_COGNITO_JWKS_URL")]
    pub cognito_jwks_url: Option<String>,

    /// Age after which the cached key set is fetched again (in the background; the cached
    /// keys keep working meanwhile and if the fetch fails), seconds.
    #[arg(
        long,
        env = "CLARITY_COGNITO_JWKS_MAX_AGE_SECS",
        default_value_t = 3600
    )]
    pub cognito_jwks_max_age_secs: u64,

    /// Shortest interval between two key-set fetches (a token with an unknown `kid` triggers
    /// one at most this often, so garbage tokens cannot flood Cognito), milliseconds.
    #[arg(
        long,
        env = "CLARITY_COGNITO_JWKS_MIN_REFETCH_MS",
        default_value_t = 30_000
    )]
    pub cognito_jwks_min_refetch_ms: u64,

    /// Longest wait for one key-set fetch, milliseconds.
    #[arg(long, env = "CLARITY_COGNITO_JWKS_TIMEOUT_MS", default_value_t = 5_000)]
    pub cognito_jwks_timeout_ms: u64,

    /// Browser origins allowed to open WebSockets and to read REST answers (CORS), exact
    /// and comma-separated, e.g. `https://app.example.com,https://admin.example.com`. Empty
    /// (the default): WebSockets from any origin, no CORS headers. The server's own origin
    /// (Origin host = Host header: the built-in dashboard) is always allowed.
    #[arg(long, env = "CLARITY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Accounts allowed to use `/api/v1/admin/*`, by account id (UUIDs, comma-separated; an
    /// account's id is the `user_id` of its signup answer and of `GET /api/v1/user/profile`).
    /// Empty (the default): nobody.
    #[arg(long, env = "CLARITY_ADMIN_USER_IDS", value_delimiter = ',')]
    pub admin_user_ids: Vec<String>,

    /// Removed (an email address proves nothing until someone signs up with it): given, the
    /// server refuses to start and points to `--admin-user-ids`.
    #[arg(long, env = "CLARITY_ADMIN_EMAILS", value_delimiter = ',', hide = true)]
    pub admin_emails: Vec<String>,

    /// Take the client address for login throttling from the last `X-Forwarded-For` entry
    /// (what a load balancer such as the ALB appends) instead of the TCP peer. Only behind a
    /// proxy that sets it: otherwise clients could pick their own address.
    #[arg(long, env = "CLARITY_TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// Failed logins for one account from one client address before further attempts from
    /// that address must wait (1 s, then doubling up to the window).
    #[arg(long, env = "CLARITY_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Failed logins from one client address, over all accounts, per window (a token
    /// bucket); past it the address gets 429 until the bucket refills.
    #[arg(long, env = "CLARITY_LOGIN_MAX_FAILURES_PER_IP", default_value_t = 30)]
    pub login_max_failures_per_ip: u32,

    /// Window of the login failure budgets, seconds: an account's failures from an address
    /// are forgotten this long after the last one, and the per-address bucket refills over it.
    #[arg(long, env = "CLARITY_LOGIN_FAILURE_WINDOW_SECS", default_value_t = 900)]
    pub login_failure_window_secs: u64,

    /// Days an audit log entry is kept (then no longer listed, and deleted: by the next
    /// appends on SQLite, by TTL on DynamoDB); at least 1.
    #[arg(long, env = "CLARITY_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Accounts and tokens managed by this server.
    Local,
    /// Access tokens issued by an Amazon Cognito user pool.
    Cognito,
}

impl Config {
    /// Defaults with a given data folder and an ephemeral port: what tests start from.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Config {
        let mut c = Cli::parse_from(["clarity"]).into_config();
        c.listen = "127.0.0.1:0".parse().expect("valid address");
        c.data_dir = data_dir.into();
        c
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms.max(1))
    }

    pub fn heartbeat_timeout(&self) -> Duration {
        self.heartbeat_interval() * self.heartbeat_misses.max(1)
    }

    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store_timeout_ms.max(1))
    }

    pub fn window_idle(&self) -> Duration {
        Duration::from_secs(self.window_idle_secs.max(1))
    }

    pub fn pat_options(&self) -> crate::scoring::PatOptions {
        crate::scoring::PatOptions {
            model: self.pat_model.clone(),
            onnxruntime_lib: self.onnxruntime_lib.clone(),
            threads: self.pat_threads,
            intra_threads: self.pat_intra_threads,
            max_batch: self.pat_max_batch,
            queue: self.pat_queue,
        }
    }

    pub fn ws_write_timeout(&self) -> Duration {
        Duration::from_millis(self.ws_write_timeout_ms.max(1))
    }

    pub fn idle_timeout(&self) -> Duration {
        if self.idle_timeout_secs > 0 {
            Duration::from_secs(self.idle_timeout_secs)
        } else {
            self.heartbeat_timeout() + Duration::from_secs(30)
        }
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms.max(100))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The Cognito settings with `--auth cognito`, `None` with local auth; an error naming
    /// the missing or malformed flag otherwise.
    pub fn cognito(&self) -> anyhow::Result<Option<crate::auth::cognito::CognitoSettings>> {
        if self.auth != AuthMode::Cognito {
            return Ok(None);
        }
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        let pool = given(&self.cognito_user_pool_id).ok_or_else(|| {
            anyhow::anyhow!(
                "--auth cognito needs --cognito-user-pool-id (CLARITY_COGNITO_USER_POOL_ID)"
            )
        })?;
        let client_id = given(&self.cognito_client_id).ok_or_else(|| {
            anyhow::anyhow!("--auth cognito needs --cognito-client-id (CLARITY_COGNITO_CLIENT_ID)")
        })?;
        let region = match given(&self.cognito_region) {
            Some(r) => r.to_owned(),
            None => crate::auth::cognito::region_of_pool(pool).ok_or_else(|| {
                anyhow::anyhow!(
                    "cannot derive the region from --cognito-user-pool-id `{pool}` (expected \
                     `<region>_<id>`, e.g. `us-east-1_AbC123xyz`); set --cognito-region"
                )
            })?,
        };
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{pool}");
        let jwks_url = match given(&self.cognito_jwks_url) {
            Some(u) => u.to_owned(),
            None => format!("{issuer}/.well-known/jwks.json"),
        };
        Ok(Some(crate::auth::cognito::CognitoSettings {
            issuer,
            client_id: client_id.to_owned(),
            jwks_url,
            jwks_max_age: Duration::from_secs(self.cognito_jwks_max_age_secs.max(1)),
            min_refetch: Duration::from_millis(self.cognito_jwks_min_refetch_ms),
            fetch_timeout: Duration::from_millis(self.cognito_jwks_timeout_ms.max(1)),
        }))
    }
}
