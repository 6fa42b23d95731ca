//! `churn`: N workers each looping connect → `welcome` → (one small batch → ack) →
//! clean close; measures connects/s and handshake latency.
//!
//! Cycle `k` of worker `w` uses connection index `w + k·N`, so successive
//! connections rotate over the accounts and the client source addresses.
//! Between cycles a worker pauses `--pause-ms` ±50% (uniform jitter); after a
//! failed connect it backs off 100-300 ms so a dead server is not hammered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{Env, join_all};
use crate::ChurnArgs;
use crate::client::{self, ServerFrame, Ws, close_key, ws_err_key};
use crate::report::{
    ErrorCounts, LatencyBuf, Report, RssSampler, Section, SharedHist, r3, read_rss,
};
use crate::samples::{Rng, SampleGen};

const READ_BUFFER: usize = 4 * 1024;
/// Close handshake bound.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

struct Plan {
    batch: usize,
    pause: Duration,
    max_cycles: u64,
}

#[derive(Default)]
struct Shared {
    connects: AtomicU64,
    failures: AtomicU64,
    /// Workers that have stopped.
    finished: AtomicU64,
    welcome: SharedHist,
    ack: SharedHist,
    close: SharedHist,
}

#[derive(Default)]
struct WorkerResult {
    errors: ErrorCounts,
    attempts: u64,
    connects: u64,
    connects_in_window: u64,
    connect_failures: u64,
    cycles_completed: u64,
    batches_sent: u64,
    batches_acked: u64,
    samples_sent: u64,
    samples_accepted: u64,
    samples_duplicates: u64,
    samples_rejected: u64,
    closes_clean: u64,
    /// Frames other than ack/error, by type (`server_frames.<type>`).
    other_frames: ErrorCounts,
}

pub async fn run(env: Arc<Env>, args: &ChurnArgs) -> Result<Report> {
    let n = env.common.connections;
    let pid = env.common.server_pid;
    let plan = Arc::new(Plan {
        batch: args.batch,
        pause: Duration::from_millis(args.pause_ms),
        max_cycles: args.max_cycles,
    });
    let shared = Arc::new(Shared::default());
    let rss_before = pid.and_then(read_rss);
    let sampler = pid.map(|p| RssSampler::start(p, Duration::from_millis(250)));

    eprintln!(
        "[loadtest] churn: {n} workers over {} source address(es); batch {} per connection, pause {} ms (±50%)",
        env.sources.len().max(1),
        args.batch,
        args.pause_ms
    );
    let window_start = Instant::now();
    let window_end = window_start + Duration::from_secs(env.common.duration);
    let mut tasks = JoinSet::new();
    for w in 0..n {
        tasks.spawn(worker(
            env.clone(),
            plan.clone(),
            shared.clone(),
            w,
            window_start,
            window_end,
        ));
    }

    let mut last = (window_start, 0u64);
    let mut window_closed_at = None;
    while Instant::now() < window_end && !env.stopped() {
        let next = match env.progress_every() {
            Some(every) => (Instant::now() + every).min(window_end),
            None => window_end,
        };
        tokio::select! {
            _ = env.sleep_until(next) => {}
            _ = super::all_finished(&shared.finished, n) => {
                window_closed_at = Some(Instant::now());
                break;
            }
        }
        let now = Instant::now();
        if now < window_end && !env.stopped() {
            let connects = shared.connects.load(Ordering::Relaxed);
            eprintln!(
                "[loadtest] churn: t={:.0}s connects={connects} ({:.0}/s) failures={}{}",
                (now - window_start).as_secs_f64(),
                (connects - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9),
                shared.failures.load(Ordering::Relaxed),
                pid.and_then(read_rss)
                    .map(|b| format!(" server_rss={:.1}MiB", b as f64 / 1048576.0))
                    .unwrap_or_default()
            );
            last = (now, connects);
        }
    }
    // Workers stop on their own at window_end (or Ctrl-C / --max-cycles); a cycle in
    // progress is bounded by the connect timeout + ack wait + close timeout.
    let grace = env.common.connect_timeout() * 2 + CLOSE_TIMEOUT + Duration::from_secs(1);
    let (results, aborted) = join_all(&mut tasks, Instant::now() + grace).await;
    let window_secs = window_closed_at
        .unwrap_or_else(|| Instant::now().min(window_end))
        .saturating_duration_since(window_start)
        .as_secs_f64();
    let rss_end = pid.and_then(read_rss);
    let rss_peak = sampler.map(RssSampler::stop);

    let mut t = WorkerResult::default();
    let mut report = env.base_report();
    for r in &results {
        report.errors.merge(&r.errors);
        t.other_frames.merge(&r.other_frames);
        t.attempts += r.attempts;
        t.connects += r.connects;
        t.connects_in_window += r.connects_in_window;
        t.connect_failures += r.connect_failures;
        t.cycles_completed += r.cycles_completed;
        t.batches_sent += r.batches_sent;
        t.batches_acked += r.batches_acked;
        t.samples_sent += r.samples_sent;
        t.samples_accepted += r.samples_accepted;
        t.samples_duplicates += r.samples_duplicates;
        t.samples_rejected += r.samples_rejected;
        t.closes_clean += r.closes_clean;
    }
    report.errors.add("drain.aborted_workers", aborted as u64);

    report
        .params
        .set("workers", n as u64)
        .set("batch_per_connection", args.batch as u64)
        .set("pause_ms", args.pause_ms)
        .set("max_cycles_per_worker", args.max_cycles)
        .set(
            "latency_ms_measures",
            "TCP connect start -> welcome frame read (TCP + upgrade + auth + welcome)",
        );
    report
        .counts
        .set("connect_attempts", t.attempts)
        .set("connects", t.connects)
        .set("connects_in_window", t.connects_in_window)
        .set("connect_failures", t.connect_failures)
        .set("cycles_completed", t.cycles_completed)
        .set("closes_clean", t.closes_clean)
        .set("batches_sent", t.batches_sent)
        .set("batches_acked", t.batches_acked)
        .set("samples_sent", t.samples_sent)
        .set("samples_acked", t.samples_accepted + t.samples_duplicates)
        .set("samples_accepted", t.samples_accepted)
        .set("samples_duplicates", t.samples_duplicates)
        .set("samples_rejected", t.samples_rejected);
    t.other_frames.copy_into(&mut report.counts);
    let w = window_secs.max(1e-9);
    report
        .rates
        .set("window_s", r3(window_secs))
        .set("connects_per_sec", r3(t.connects_in_window as f64 / w))
        .set("cycles_per_sec", r3(t.cycles_completed as f64 / w));
    report.latency_ms = shared.welcome.summary();
    if let Some(l) = shared.ack.summary() {
        report.extra_latency_ms.insert("ack".into(), l);
    }
    if let Some(l) = shared.close.summary() {
        report.extra_latency_ms.insert("close".into(), l);
    }
    if pid.is_some() {
        let mut rss = Section::default();
        rss.set("before", rss_before)
            .set("end", rss_end)
            .set("peak", rss_peak)
            .set("after", pid.and_then(read_rss));
        report.server_rss_bytes = Some(rss);
    }
    report.nothing_established = t.connects == 0;
    Ok(report)
}

async fn worker(
    env: Arc<Env>,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    w: usize,
    window_start: Instant,
    window_end: Instant,
) -> WorkerResult {
    let res = worker_loop(&env, &plan, &shared, w, window_start, window_end).await;
    shared.finished.fetch_add(1, Ordering::Relaxed);
    res
}

async fn worker_loop(
    env: &Env,
    plan: &Plan,
    shared: &Shared,
    w: usize,
    window_start: Instant,
    window_end: Instant,
) -> WorkerResult {
    let n = env.common.connections;
    let mut res = WorkerResult::default();
    let mut rng = Rng::new((w as u64).wrapping_mul(0xA076_1D64_78BD_642F) ^ 0xC4_0C4);
    let mut welcome_lat = LatencyBuf::new(&shared.welcome);
    let mut ack_lat = LatencyBuf::new(&shared.ack);
    let mut close_lat = LatencyBuf::new(&shared.close);

    let now = chrono::Utc::now();
    let mut samples = (plan.batch > 0).then(|| {
        let seed = (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x0C4C_4C4C;
        // Thirty days of minutes, starting over when they run out.
        let start = now - chrono::Duration::days(30) + chrono::Duration::minutes((w % 60) as i64);
        SampleGen::new(format!("lt-{}-c{w}", env.run_id), w, start, seed).wrap_at(now)
    });

    // Spread the workers' first connects over the first pause (or 100 ms).
    let first = plan
        .pause
        .max(Duration::from_millis(100))
        .mul_f64(rng.f64());
    tokio::time::sleep_until((window_start + first).min(window_end)).await;

    let mut k: u64 = 0;
    while Instant::now() < window_end && !env.stopped() {
        if plan.max_cycles > 0 && k >= plan.max_cycles {
            break;
        }
        let idx = w + k as usize * n;
        k += 1;
        res.attempts += 1;
        let t0 = Instant::now();
        let (mut ws, _welcome) = match env.connect(idx, client::ws_config(READ_BUFFER)).await {
            Ok(v) => v,
            Err(e) => {
                res.connect_failures += 1;
                shared.failures.fetch_add(1, Ordering::Relaxed);
                res.errors.inc(e.key());
                let backoff = Duration::from_millis(100 + rng.range(0, 200) as u64);
                tokio::time::sleep_until((Instant::now() + backoff).min(window_end)).await;
                continue;
            }
        };
        let welcomed = Instant::now();
        welcome_lat.record(welcomed - t0);
        res.connects += 1;
        if welcomed <= window_end {
            res.connects_in_window += 1;
        }
        shared.connects.fetch_add(1, Ordering::Relaxed);

        let mut ok = true;
        if let Some(sample_gen) = samples.as_mut() {
            ok = upload_one(env, &mut ws, sample_gen, plan.batch, &mut res, &mut ack_lat).await;
        }
        if ok {
            let c0 = Instant::now();
            match client::close_ws_checked(&mut ws, CLOSE_TIMEOUT).await {
                Ok(()) => {
                    close_lat.record(c0.elapsed());
                    res.closes_clean += 1;
                    res.cycles_completed += 1;
                }
                Err(key) => res.errors.inc(key),
            }
        }
        drop(ws);

        if !plan.pause.is_zero() {
            let pause = plan.pause.mul_f64(0.5 + rng.f64());
            tokio::time::sleep_until((Instant::now() + pause).min(window_end)).await;
        }
    }
    res
}

/// Send one `samples` frame and wait for its ack. `false` when the session is unusable.
async fn upload_one(
    env: &Env,
    ws: &mut Ws,
    samples: &mut SampleGen,
    batch: usize,
    res: &mut WorkerResult,
    ack_lat: &mut LatencyBuf<'_>,
) -> bool {
    let frame = samples.frame(1, batch);
    let sent_at = Instant::now();
    let deadline = sent_at + env.common.connect_timeout();
    match tokio::time::timeout_at(deadline, ws.send(Message::Text(frame.into()))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            res.errors.inc(format!("send.{}", ws_err_key(&e)));
            return false;
        }
        Err(_) => {
            res.errors.inc("send.timeout");
            return false;
        }
    }
    res.batches_sent += 1;
    res.samples_sent += batch as u64;
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(m) => m,
            Err(_) => {
                res.errors.inc("ack.timeout");
                return false;
            }
        };
        match msg {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerFrame>(&t) {
                Ok(ServerFrame::Ack(ack)) if ack.seq == 1 => {
                    ack_lat.record(sent_at.elapsed());
                    res.batches_acked += 1;
                    res.samples_accepted += ack.accepted;
                    res.samples_duplicates += ack.duplicates;
                    res.samples_rejected += ack.rejected.len() as u64;
                    for r in &ack.rejected {
                        res.errors.inc(format!(
                            "rejected_sample.{}",
                            r.code.as_deref().unwrap_or("unknown")
                        ));
                    }
                    return true;
                }
                Ok(ServerFrame::Ack(_)) => res.errors.inc("protocol.ack_unknown_seq"),
                Ok(ServerFrame::Error(e)) => {
                    res.errors.inc(format!("error.{}", e.code));
                    if e.seq == Some(1) {
                        // Not stored (e.g. store_unavailable); the session is still fine.
                        return true;
                    }
                }
                Ok(ServerFrame::Welcome(_)) => res.errors.inc("protocol.unexpected_welcome"),
                Ok(ServerFrame::Other) => res
                    .other_frames
                    .inc(format!("server_frames.{}", client::frame_type(&t))),
                Err(_) => res.errors.inc("protocol.bad_json"),
            },
            Some(Ok(Message::Close(f))) => {
                res.errors.inc(close_key(f.as_ref()));
                return false;
            }
            Some(Ok(Message::Binary(_))) => res.errors.inc("protocol.binary_frame"),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                res.errors.inc(ws_err_key(&e));
                return false;
            }
            None => {
                res.errors.inc("close.eof");
                return false;
            }
        }
    }
}
