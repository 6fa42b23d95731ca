//! The ingest ceiling: the full ingest path (WebSocket frame -> parse -> validate -> window ->
//! ack) of a real in-process server, once with sample writes acked from an in-memory queue
//! ([`queue_store::QueueStore`]: what the server costs without the store), once on the real
//! SQLite store with the analyses' sample reads answered empty as in the queue run (the
//! writes' cost alone), and once on the plain SQLite store (writes and the reads of the
//! analyses that completed days trigger), alternating, in one run; prints each run, the
//! medians and their ratios.
//!
//! This is benchmark code only: the server has no flag for it. The load is the `loadtest`
//! binary's saturated ingest (`$LOADTEST`, default `target/release/loadtest`), so the figures
//! are comparable with BENCHMARKS.md's.
//!
//! ```sh
//! cargo build --release -p loadtest
//! cargo bench --bench ingest_ceiling   # CEILING_SECS=15 CEILING_ROUNDS=3 by default
//! ```

mod queue_store;

use queue_store::Writes;

use std::path::PathBuf;
use std::sync::Arc;

use clarity::app::App;
use clarity::config::Config;
use clarity::store::Store;
use tokio::sync::oneshot;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Queue,
    SqliteWrites,
    Sqlite,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Queue => "in-memory queue (ceiling)",
            Variant::SqliteWrites => "SQLite writes, blind reads",
            Variant::Sqlite => "SQLite store",
        }
    }
}

struct Run {
    samples_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn loadtest() -> PathBuf {
    std::env::var_os("LOADTEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
            target.join("release/loadtest")
        })
}

/// The server as `clarity serve` runs it, with the per-user limits lifted as in
/// BENCHMARKS.md ("How to run"): the load generator puts many sessions on few accounts. The
/// per-session frame rate is lifted too: at its default (50 frames/s, 100 sessions, 60
/// samples a frame) it capped the ceiling at 300,000 samples/s, which is not the server's.
fn config(dir: &std::path::Path) -> Config {
    let mut config = Config::for_tests(dir);
    config.auth.jwt_secret = Some(
        "ingest-ceiling-bench-secret-0123456789abcdef"
            .to_string()
            .into(),
    );
    config.telemetry.log = "warn".into();
    config.limits.max_sessions_per_user = 0;
    config.limits.max_user_samples_per_sec = 100_000_000;
    config.limits.max_samples_per_sec = 100_000_000;
    config.limits.max_frames_per_sec = 1_000_000;
    config.limits.frame_burst = 1_000_000;
    config
}

async fn run_once(variant: Variant, secs: u64) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let config = config(dir.path());
    let store = clarity::app::open_store(&config).await?;
    let store: Arc<dyn Store> = match variant {
        Variant::Queue => Arc::new(queue_store::QueueStore::new(store, Writes::Queue)),
        Variant::SqliteWrites => Arc::new(queue_store::QueueStore::new(store, Writes::Store)),
        Variant::Sqlite => store,
    };
    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App::with_store(config, store).await?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(clarity::server::run(app, listener, async {
        let _ = stopped.await;
    }));
    let report = dir.path().join("report.json");
    let out = tokio::process::Command::new(loadtest())
        .args(["ingest", "--url", &format!("http://{addr}")])
        .args([
            "--connections",
            "100",
            "--rate",
            "0",
            "--inflight",
            "8",
            "--batch",
            "60",
        ])
        .args(["--duration", &secs.to_string()])
        .arg("--json")
        .arg(&report)
        .output()
        .await?;
    let _ = stop.send(());
    server.await??;
    anyhow::ensure!(
        out.status.success(),
        "loadtest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let errors = json["counts"]["batches_failed"].as_u64().unwrap_or(0)
        + json["counts"]["sessions_failed"].as_u64().unwrap_or(0)
        + json["counts"]["batches_unacked"].as_u64().unwrap_or(0);
    Ok(Run {
        samples_per_sec: num(&json["rates"]["samples_per_sec"]),
        p50_ms: num(&json["latency_ms"]["p50"]),
        p99_ms: num(&json["latency_ms"]["p99"]),
        errors,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: then only check
    // that the bench builds.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let secs = env_or("CEILING_SECS", 15);
    let rounds = env_or("CEILING_ROUNDS", 3);
    anyhow::ensure!(
        loadtest().exists(),
        "no loadtest binary at {} (cargo build --release -p loadtest, or set LOADTEST)",
        loadtest().display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let variants = [Variant::Queue, Variant::SqliteWrites, Variant::Sqlite];
    let mut runs: Vec<Vec<Run>> = variants.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (i, v) in variants.iter().enumerate() {
            let run = rt.block_on(run_once(*v, secs))?;
            println!(
                "round {round} {:<26} {:>10.0} samples/s  ack p50 {:>7.1} ms  p99 {:>7.1} ms  errors {}",
                v.name(),
                run.samples_per_sec,
                run.p50_ms,
                run.p99_ms,
                run.errors
            );
            runs[i].push(run);
        }
    }
    let med = |i: usize, f: fn(&Run) -> f64| median(runs[i].iter().map(f).collect());
    for (i, v) in variants.iter().enumerate() {
        println!(
            "median {:<26} {:>10.0} samples/s  ack p50 {:>7.1} ms  p99 {:>7.1} ms",
            v.name(),
            med(i, |r| r.samples_per_sec),
            med(i, |r| r.p50_ms),
            med(i, |r| r.p99_ms)
        );
    }
    let ceiling = med(0, |r| r.samples_per_sec);
    println!(
        "store cost, writes alone: ceiling / SQLite writes = {:.2}x (goal: <= 2x)",
        ceiling / med(1, |r| r.samples_per_sec)
    );
    println!(
        "store cost, writes and the analyses' reads: ceiling / SQLite = {:.2}x",
        ceiling / med(2, |r| r.samples_per_sec)
    );
    Ok(())
}
