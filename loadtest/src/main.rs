//! `loadtest`: a load generator for the Clarity server.
//!
//! It drives a *real* server over loopback the way phones do: it signs up and
//! logs in a set of user accounts over REST, then opens authenticated
//! WebSocket sessions (spread over many 127.0.0.x source addresses so that
//! more than ~28k connections fit through one listening port) and runs one
//! scenario against them.
//!
//! Layout: `client` (REST + WebSocket helpers, protocol frames), `samples`
//! (realistic sample generator), `report` (table / JSON output, RSS probes),
//! and one module per scenario under `scenarios`.

mod client;
mod report;
mod samples;
mod scenarios;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::report::Report;

#[derive(Parser, Debug)]
#[command(
    name = "loadtest",
    version,
    about = "Load generator for the Clarity server (real server, loopback only)",
    long_about = "Load generator for the Clarity server.\n\n\
        Drives a running server over loopback like real phones do: creates --users accounts \
        (POST /api/v1/auth/signup, falling back to login when the account exists), logs them in, \
        opens --connections authenticated WebSocket sessions to /api/v1/ws at --ramp-per-sec, \
        then runs the chosen scenario for --duration seconds and prints a report \
        (optionally also as JSON with --json).\n\n\
        Client sockets are bound to source addresses 127.0.0.2..127.0.0.254 (round-robin) so a \
        single run can exceed the ~28k ephemeral ports of one source address. RLIMIT_NOFILE is \
        raised to the hard limit at start. Every phase is bounded by timeouts; the run always \
        ends by itself (Ctrl-C ends the measurement early and still prints the report).\n\n\
        Examples:\n  \
        loadtest idle --connections 50000 --duration 30 --server-pid $(pidof clarity)\n  \
        loadtest ingest --connections 500 --rate 1 --batch 60 --duration 60 --json ingest.json\n  \
        loadtest ingest --connections 50 --rate 0 --inflight 8 --duration 30\n  \
        loadtest rest-upload --connections 16 --batch 1000 --duration 20\n  \
        loadtest churn --connections 50 --batch 10 --duration 20\n  \
        loadtest fanout --connections 1000 --devices 1 --duration 20 --stalled 10"
)]
struct Cli {
    #[command(subcommand)]
    scenario: ScenarioCmd,
}

#[derive(Subcommand, Debug)]
enum ScenarioCmd {
    /// Open and hold N authenticated WebSocket connections; measure server RSS per connection.
    ///
    /// Each connection reads the `welcome` frame and then keeps polling its stream (so server
    /// Pings are answered) until the hold period ends. Reports connections established/failed,
    /// closes by code, and with --server-pid the server RSS before connecting, with all
    /// connections open, and (open - before) / established bytes per connection.
    Idle(IdleArgs),
    /// N sessions uploading batches of samples; measure throughput and ack latency.
    ///
    /// Each session sends `samples` frames of --batch realistic minute samples
    /// (activity_count + heart_rate, consecutive minutes from a per-session start time, unique
    /// ids) at --rate batches/s, or as fast as acks allow with --rate 0 (keeping up to
    /// --inflight unacked batches). The server's per-session limits from `welcome` are
    /// respected (frames/s, burst, max in-flight, max samples per frame). Ack latency is the
    /// time from sending a frame to receiving its `ack`.
    Ingest(IngestArgs),
    /// N HTTP clients POSTing sample batches to /api/v1/health-data; measure req/s and latency.
    ///
    /// Each of --connections clients keeps one keep-alive HTTP/1.1 connection (bound to its
    /// source address), opened by a warm-up GET /api/health, then POSTs --batch realistic
    /// minute samples (activity_count + heart_rate, unique ids) as fast as answers allow, or
    /// --rate requests/s per client. Latency is from sending a POST to reading its 200 answer.
    /// A 503 is counted as shed (not an error); the client waits Retry-After and resends the
    /// same batch. Any other non-200 status is an error (`http_<status>`).
    RestUpload(RestUploadArgs),
    /// N workers each looping: open an authenticated WebSocket, read `welcome`, optionally send
    /// one small batch and wait for its ack, close cleanly (1000); measure connects/s.
    ///
    /// Latency is from the TCP connect to reading `welcome`; with --batch the ack latency and
    /// the close-handshake time are reported too. Successive connections of a worker rotate
    /// over the accounts and source addresses. Workers pause --pause-ms ±50% between cycles
    /// and back off 100-300 ms after a failed connect.
    Churn(ChurnArgs),
    /// Devices publish insights and --connections dashboards watch them live; measures the
    /// latency from a device's `analyze` to each dashboard's `insight` event and whether every
    /// event reached every dashboard exactly once, in offset order.
    ///
    /// Accounts: --devices device accounts and --viewers viewer accounts (signup costs an
    /// argon2 hash, so dashboards share viewer accounts; --users is ignored). Every device
    /// shares `insights` with every viewer (POST /api/v1/shares). Each device uploads
    /// --seed-minutes of data and analyses it once (warm-up, not measured). Then the dashboards
    /// connect as viewers, spread round-robin over the devices, and each subscribes to its
    /// device's `insights` stream, waiting for `subscribed`.
    ///
    /// Measurement: every --interval-ms each device sends a `samples` frame with
    /// --minutes-per-frame new minutes (activity_count + heart_rate), waits for its ack and
    /// sends `{"type":"analyze"}`; the new data gives a new analysis and an insight, pushed to
    /// every subscriber. A round starts only when the previous one's `analysis` frame is back
    /// (otherwise it is skipped and counted), so each analysis maps to exactly one analyze.
    /// The device's own session receives its insight events too (with their offsets): offset ->
    /// analysis_id -> analyze send time. Dashboards timestamp each insight event and report
    /// (offset, time); latency = dashboard receive time - analyze send time. Expected deliveries
    /// per dashboard = the offsets after the HEAD its `subscribed` named, up to the last one
    /// produced; missing, duplicate, out-of-order and unexpected offsets are counted, and
    /// `lagged` notices.
    ///
    /// --stalled K adds K dashboards (not counted in the figures above) that subscribe and then
    /// never read their socket (small receive buffer, connection kept open); after the drain
    /// they read what is left, reported as `stalled_*` counts (events, `lagged`, close codes).
    Fanout(FanoutArgs),
}

/// Flags shared by every scenario.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Server base URL (http, loopback only); the WebSocket URL is ws://HOST:PORT/api/v1/ws.
    #[arg(long, env = "LOADTEST_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Number of WebSocket sessions to open (idle, ingest), HTTP clients (rest-upload),
    /// connect/disconnect workers (churn) or dashboards (fanout).
    #[arg(short = 'c', long, default_value_t = 100)]
    pub connections: usize,

    /// Measurement (hold / send) duration in seconds, after all sessions are connected.
    #[arg(short = 'd', long, default_value_t = 30)]
    pub duration: u64,

    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// PID of the server process; its VmRSS is read from /proc/PID/status to report memory.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Number of distinct user accounts (default: min(connections, 100)); sessions are
    /// spread over them round-robin.
    #[arg(long)]
    pub users: Option<usize>,

    /// Connection open rate (new WebSocket sessions per second).
    #[arg(long, default_value_t = 2000.0)]
    pub ramp_per_sec: f64,

    /// Timeout for one session to connect (TCP + upgrade + welcome), in seconds.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout: u64,

    /// Maximum number of connection attempts in progress at once.
    #[arg(long, default_value_t = 512)]
    pub max_pending_connects: usize,

    /// Number of client source addresses to spread sockets over (127.0.0.2 .. 127.0.0.(1+N)),
    /// 1..=253. Only used when the server listens on an IPv4 loopback address.
    #[arg(long, default_value_t = 253, value_parser = clap::value_parser!(u8).range(1..=253))]
    pub source_ips: u8,

    /// Run identifier used in account emails (lt-<run-id>-<i>@example.com) and sample ids.
    /// Reuse one to reuse existing accounts (signup answers 409, then login). Default: random.
    #[arg(long)]
    pub run_id: Option<String>,

    /// Password for the load-test accounts.
    #[arg(long, default_value = "correct-horse-battery-staple")]
    pub password: String,

    /// Concurrent signup/login requests while creating accounts (argon2 is slow server-side).
    #[arg(long, default_value_t = 8)]
    pub signup_concurrency: usize,

    /// Seconds between progress lines on stderr (0 = none).
    #[arg(long, default_value_t = 5)]
    pub progress_every: u64,
}

#[derive(Args, Debug, Clone)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Batches per second per session; 0 = as fast as acks (and the server's frame rate
    /// limit) allow.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,

    /// Samples per batch (capped at the server's limits.max_samples_per_frame).
    #[arg(long, default_value_t = 60)]
    pub batch: usize,

    /// Maximum unacknowledged batches per session (capped at limits.max_inflight_batches).
    #[arg(long, default_value_t = 1)]
    pub inflight: usize,

    /// Percent of sample slots that edit a recently sent sample (same id, higher `version`).
    #[arg(long, default_value_t = 0.0, value_parser = percent)]
    pub upsert_pct: f64,

    /// Percent of the samples sent that are later deleted (`delete` frames of 10 ids,
    /// replacing a `samples` frame when due).
    #[arg(long, default_value_t = 0.0, value_parser = percent)]
    pub delete_pct: f64,

    /// Seconds to wait for outstanding acks after the measurement window.
    #[arg(long, default_value_t = 5)]
    pub drain_timeout: u64,

    /// How batches go on the wire (the same minutes either way): `samples` (sample
    /// objects), `series` (series frames of --batch values, activity_count and heart_rate in
    /// turn, ids derived by the server), `deflate` (those series frames as raw DEFLATE binary
    /// messages) or `samples-deflate` (samples frames so). With --server-pid the report has
    /// the server's CPU per sample; it always has the wire bytes per sample.
    #[arg(long, value_enum, default_value_t = FrameShape::Samples)]
    pub frame: FrameShape,

    /// Sample ids: `counter` (`lt-<run>-<session>-<n>`, in order) or `uuid` (random-looking
    /// UUIDs, as HealthKit and Health Connect send: the store's id index gets scattered
    /// inserts). `samples` frames only (series frames' ids are derived by the server).
    #[arg(long, value_enum, default_value_t = IdShape::Counter)]
    pub ids: IdShape,
}

/// The `--ids` of `ingest`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdShape {
    Counter,
    Uuid,
}

/// The `--frame` of `ingest`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameShape {
    Samples,
    Series,
    Deflate,
    SamplesDeflate,
}

#[derive(Args, Debug, Clone)]
pub struct RestUploadArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Samples per request (the server accepts at most 10,000 by default).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,

    /// Requests per second per client; 0 = as fast as answers allow.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,

    /// Stop each client after this many successful requests (0 = run for --duration).
    #[arg(long, default_value_t = 0)]
    pub max_requests: u64,

    /// Timeout for one request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,

    /// Seconds to wait for requests in flight after the measurement window.
    #[arg(long, default_value_t = 5)]
    pub drain_timeout: u64,
}

#[derive(Args, Debug, Clone)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Samples to upload (one frame, waiting for its ack) on each connection; 0 = none.
    #[arg(long, default_value_t = 0)]
    pub batch: usize,

    /// Pause between a worker's cycles in milliseconds (uniform jitter of ±50%).
    #[arg(long, default_value_t = 0)]
    pub pause_ms: u64,

    /// Stop each worker after this many connection attempts (0 = run for --duration).
    #[arg(long, default_value_t = 0)]
    pub max_cycles: u64,
}

#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Device accounts publishing insights; dashboards are spread over them round-robin.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,

    /// Viewer accounts the dashboards log in as (at most --connections + --stalled are made).
    #[arg(long, default_value_t = 10)]
    pub viewers: usize,

    /// Milliseconds between a device's rounds (samples frame, ack, analyze).
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,

    /// New minutes of data per round (two samples each: activity_count and heart_rate).
    #[arg(long, default_value_t = 5)]
    pub minutes_per_frame: usize,

    /// Minutes of data each device uploads before the measurement (analysed once, unmeasured).
    #[arg(long, default_value_t = 360)]
    pub seed_minutes: usize,

    /// Extra dashboards that subscribe and then stop reading (connection kept open).
    #[arg(long, default_value_t = 0)]
    pub stalled: usize,

    /// SO_RCVBUF of the stalled dashboards' sockets in bytes (the kernel doubles it).
    #[arg(long, default_value_t = 4096)]
    pub stalled_rcvbuf: u32,

    /// Seconds to keep reading after the last round, so late events still count.
    #[arg(long, default_value_t = 5)]
    pub drain_timeout: u64,

    /// Connect the dashboards to these nodes instead of --url (repeat the flag to spread them
    /// round-robin): devices on one node, dashboards on others measures delivery across the
    /// bus between nodes.
    #[arg(long = "dashboard-url", value_name = "URL")]
    pub dashboard_urls: Vec<String>,
}

impl CommonArgs {
    fn validate(&self) -> Result<()> {
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        if self.users == Some(0) {
            bail!("--users must be at least 1");
        }
        if !(self.ramp_per_sec.is_finite() && self.ramp_per_sec > 0.0) {
            bail!("--ramp-per-sec must be > 0");
        }
        if self.connect_timeout == 0 {
            bail!("--connect-timeout must be at least 1 second");
        }
        if self.max_pending_connects == 0 || self.signup_concurrency == 0 {
            bail!("--max-pending-connects and --signup-concurrency must be at least 1");
        }
        Ok(())
    }

    pub fn user_count(&self) -> usize {
        self.users
            .unwrap_or_else(|| self.connections.min(100))
            .min(self.connections)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout)
    }
}

/// Exit codes: 0 = report produced, 1 = report produced but no session could be
/// established, 2 = setup error (bad flags, server unreachable, no account).
fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: error: building tokio runtime: {e}");
            std::process::exit(2);
        }
    };
    let result = rt.block_on(run(cli));
    // Don't wait for stragglers (aborted tasks, idle pooled HTTP connections).
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(report) if report.failed() => std::process::exit(1),
        Ok(_) => {}
        Err(e) => {
            eprintln!("loadtest: error: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn run(cli: Cli) -> Result<Report> {
    let (common, scenario_name) = match &cli.scenario {
        ScenarioCmd::Idle(a) => (a.common.clone(), "idle"),
        ScenarioCmd::Ingest(a) => (a.common.clone(), "ingest"),
        ScenarioCmd::RestUpload(a) => (a.common.clone(), "rest-upload"),
        ScenarioCmd::Churn(a) => (a.common.clone(), "churn"),
        ScenarioCmd::Fanout(a) => (a.common.clone(), "fanout"),
    };
    common.validate()?;
    if let ScenarioCmd::Ingest(a) = &cli.scenario {
        if !(a.rate.is_finite() && a.rate >= 0.0) {
            bail!("--rate must be >= 0");
        }
        if a.batch == 0 || a.inflight == 0 {
            bail!("--batch and --inflight must be at least 1");
        }
    }
    if let ScenarioCmd::RestUpload(a) = &cli.scenario {
        if !(a.rate.is_finite() && a.rate >= 0.0) {
            bail!("--rate must be >= 0");
        }
        if a.batch == 0 || a.request_timeout == 0 {
            bail!("--batch and --request-timeout must be at least 1");
        }
    }

    let users = match &cli.scenario {
        ScenarioCmd::Fanout(a) => {
            if a.devices == 0 || a.viewers == 0 {
                bail!("--devices and --viewers must be at least 1");
            }
            if a.interval_ms == 0 || a.minutes_per_frame == 0 {
                bail!("--interval-ms and --minutes-per-frame must be at least 1");
            }
            // Accounts 0..devices are devices, the rest viewers (no more than dashboards).
            a.devices + a.viewers.min(common.connections + a.stalled)
        }
        _ => common.user_count(),
    };
    let env = std::sync::Arc::new(scenarios::Env::prepare(&common, scenario_name, users).await?);

    let mut report = match cli.scenario {
        ScenarioCmd::Idle(a) => scenarios::idle::run(env, &a).await?,
        ScenarioCmd::Ingest(a) => scenarios::ingest::run(env, &a).await?,
        ScenarioCmd::RestUpload(a) => scenarios::rest_upload::run(env, &a).await?,
        ScenarioCmd::Churn(a) => scenarios::churn::run(env, &a).await?,
        ScenarioCmd::Fanout(a) => scenarios::fanout::run(env, &a).await?,
    };
    report.finish();
    report.print_table();
    if let Some(path) = &common.json {
        report.write_json(path)?;
        eprintln!("[loadtest] JSON report written to {}", path.display());
    }
    Ok(report)
}

fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a percentage between 0 and 100")),
    }
}
