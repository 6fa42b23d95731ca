//! `rest-upload`: N HTTP clients POSTing sample batches to `/api/v1/health-data`;
//! measures requests/s, samples/s and request latency.
//!
//! Each client has its own keep-alive HTTP/1.1 connection (bound to its source
//! address), opened by a warm-up `GET /api/health` before the window starts.
//! A 503 (load shed) is counted separately from errors; the client waits
//! `Retry-After` and resends the same body (same ids: idempotent).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Env, join_all};
use crate::RestUploadArgs;
use crate::client::{self, UploadReport};
use crate::report::{
    ErrorCounts, LatencyBuf, Report, RssSampler, Section, SharedHist, r3, read_rss,
};
use crate::samples::SampleGen;

/// Wait after a 503 without a usable Retry-After.
const DEFAULT_SHED_BACKOFF: Duration = Duration::from_millis(500);
/// Assumed per-client request rate (unpaced runs) when placing sample times.
const ASSUMED_MAX_RATE: f64 = 500.0;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Warmup,
    Running { end: Instant },
}

struct Plan {
    rate: f64,
    batch: usize,
    max_requests: u64,
    drain: Duration,
}

#[derive(Default)]
struct Shared {
    requests_ok: AtomicU64,
    samples_acked: AtomicU64,
    shed: AtomicU64,
    errors: AtomicU64,
    /// Clients that have stopped.
    finished: AtomicU64,
    hist: SharedHist,
}

#[derive(Default)]
struct ClientResult {
    errors: ErrorCounts,
    warmed_up: bool,
    requests_sent: u64,
    requests_ok: u64,
    requests_ok_in_window: u64,
    requests_shed: u64,
    requests_failed: u64,
    batches_abandoned: u64,
    samples_sent: u64,
    samples_accepted: u64,
    samples_duplicates: u64,
    samples_rejected: u64,
    samples_acked_in_window: u64,
    send_slips: u64,
}

pub async fn run(env: Arc<Env>, args: &RestUploadArgs) -> Result<Report> {
    let n = env.common.connections;
    let pid = env.common.server_pid;
    let plan = Arc::new(Plan {
        rate: args.rate,
        batch: args.batch,
        max_requests: args.max_requests,
        drain: Duration::from_secs(args.drain_timeout),
    });
    let shared = Arc::new(Shared::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Warmup);
    let rss_before = pid.and_then(read_rss);

    eprintln!(
        "[loadtest] rest-upload: {n} clients over {} source address(es); batch {}, {}",
        env.sources.len().max(1),
        args.batch,
        if args.rate > 0.0 {
            format!("{} req/s per client", args.rate)
        } else {
            "as fast as answers allow".into()
        }
    );
    let warmup_started = Instant::now();
    let warmed = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let http = client::upload_client(
            env.source(i),
            env.common.connect_timeout(),
            Duration::from_secs(args.request_timeout),
        )?;
        tasks.spawn(upload_client(
            env.clone(),
            plan.clone(),
            shared.clone(),
            warmed.clone(),
            http,
            i,
            phase_rx.clone(),
        ));
    }
    // Warm-up: every client opens its connection (bounded by the connect timeout).
    let warmup_deadline = warmup_started + env.common.connect_timeout() + Duration::from_secs(1);
    while (warmed.load(Ordering::Relaxed) as usize) < n
        && Instant::now() < warmup_deadline
        && !env.stopped()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let warmup_secs = warmup_started.elapsed().as_secs_f64();
    eprintln!(
        "[loadtest] rest-upload: {} of {n} clients connected in {warmup_secs:.2}s; uploading for {}s",
        warmed.load(Ordering::Relaxed),
        env.common.duration
    );

    let sampler = pid.map(|p| RssSampler::start(p, Duration::from_millis(250)));
    let window_start = Instant::now();
    let mut window_end = window_start + Duration::from_secs(env.common.duration);
    let _ = phase_tx.send(Phase::Running { end: window_end });
    let mut last = (window_start, 0u64, 0u64);
    while Instant::now() < window_end && !env.stopped() {
        let next = match env.progress_every() {
            Some(every) => (Instant::now() + every).min(window_end),
            None => window_end,
        };
        // Also wake up when every client is done early (--max-requests).
        tokio::select! {
            _ = env.sleep_until(next) => {}
            _ = super::all_finished(&shared.finished, n) => break,
        }
        let now = Instant::now();
        if now < window_end && !env.stopped() {
            let reqs = shared.requests_ok.load(Ordering::Relaxed);
            let samples = shared.samples_acked.load(Ordering::Relaxed);
            let dt = (now - last.0).as_secs_f64().max(1e-9);
            eprintln!(
                "[loadtest] rest-upload: t={:.0}s requests_ok={reqs} ({:.0}/s) samples={samples} ({:.0}/s) shed={} errors={}{}",
                (now - window_start).as_secs_f64(),
                (reqs - last.1) as f64 / dt,
                (samples - last.2) as f64 / dt,
                shared.shed.load(Ordering::Relaxed),
                shared.errors.load(Ordering::Relaxed),
                pid.and_then(read_rss)
                    .map(|b| format!(" server_rss={:.1}MiB", b as f64 / 1048576.0))
                    .unwrap_or_default()
            );
            last = (now, reqs, samples);
        }
    }
    if Instant::now() < window_end {
        // Ctrl-C, or every client reached --max-requests.
        window_end = Instant::now();
        let _ = phase_tx.send(Phase::Running { end: window_end });
    }
    let window_secs = (window_end - window_start).as_secs_f64();
    let rss_end = pid.and_then(read_rss);
    let rss_peak = sampler.map(RssSampler::stop);

    let (results, aborted) =
        join_all(&mut tasks, window_end + plan.drain + Duration::from_secs(2)).await;
    drop(phase_tx);

    let mut t = ClientResult::default();
    let mut report = env.base_report();
    let mut warmed_up = 0u64;
    for r in &results {
        report.errors.merge(&r.errors);
        warmed_up += u64::from(r.warmed_up);
        t.requests_sent += r.requests_sent;
        t.requests_ok += r.requests_ok;
        t.requests_ok_in_window += r.requests_ok_in_window;
        t.requests_shed += r.requests_shed;
        t.requests_failed += r.requests_failed;
        t.batches_abandoned += r.batches_abandoned;
        t.samples_sent += r.samples_sent;
        t.samples_accepted += r.samples_accepted;
        t.samples_duplicates += r.samples_duplicates;
        t.samples_rejected += r.samples_rejected;
        t.samples_acked_in_window += r.samples_acked_in_window;
        t.send_slips += r.send_slips;
    }
    report.errors.add("drain.aborted_clients", aborted as u64);

    report
        .params
        .set("clients", n as u64)
        .set("batch", args.batch as u64)
        .set("rate_requests_per_sec_per_client", args.rate)
        .set("max_requests_per_client", args.max_requests)
        .set("request_timeout_s", args.request_timeout)
        .set("drain_timeout_s", args.drain_timeout)
        .set("latency_ms_measures", "POST sent -> 200 answer read");
    report
        .counts
        .set("clients_connected", warmed_up)
        .set("requests_sent", t.requests_sent)
        .set("requests_ok", t.requests_ok)
        .set("requests_ok_in_window", t.requests_ok_in_window)
        .set("requests_shed_503", t.requests_shed)
        .set("requests_failed", t.requests_failed)
        .set("batches_abandoned_after_shed", t.batches_abandoned)
        .set("samples_sent", t.samples_sent)
        .set("samples_acked", t.samples_accepted + t.samples_duplicates)
        .set("samples_accepted", t.samples_accepted)
        .set("samples_duplicates", t.samples_duplicates)
        .set("samples_rejected", t.samples_rejected)
        .set("samples_acked_in_window", t.samples_acked_in_window)
        .set("send_slips", t.send_slips);
    let w = window_secs.max(1e-9);
    report
        .rates
        .set("warmup_s", r3(warmup_secs))
        .set("window_s", r3(window_secs))
        .set("requests_per_sec", r3(t.requests_ok_in_window as f64 / w))
        .set("samples_per_sec", r3(t.samples_acked_in_window as f64 / w))
        .set("shed_per_sec", r3(t.requests_shed as f64 / w))
        .set(
            "target_requests_per_sec",
            if args.rate > 0.0 {
                r3(args.rate * n as f64)
            } else {
                0.0
            },
        );
    report.latency_ms = shared.hist.summary();
    if pid.is_some() {
        let mut rss = Section::default();
        rss.set("before", rss_before)
            .set("end", rss_end)
            .set("peak", rss_peak)
            .set("after", pid.and_then(read_rss));
        report.server_rss_bytes = Some(rss);
    }
    report.nothing_established = t.requests_ok == 0;
    Ok(report)
}

enum Outcome {
    Ok(UploadReport),
    Shed(Duration),
    Failed(String),
}

async fn upload_client(
    env: Arc<Env>,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    warmed: Arc<AtomicU64>,
    http: reqwest::Client,
    i: usize,
    phase_rx: watch::Receiver<Phase>,
) -> ClientResult {
    let res = upload_loop(env, plan, &shared, warmed, http, i, phase_rx).await;
    shared.finished.fetch_add(1, Ordering::Relaxed);
    res
}

async fn upload_loop(
    env: Arc<Env>,
    plan: Arc<Plan>,
    shared: &Shared,
    warmed: Arc<AtomicU64>,
    http: reqwest::Client,
    i: usize,
    mut phase_rx: watch::Receiver<Phase>,
) -> ClientResult {
    let mut res = ClientResult::default();
    let mut lat = LatencyBuf::new(&shared.hist);
    let upload_url = env.target.endpoint("/api/v1/health-data");
    let auth = match HeaderValue::from_str(&format!("Bearer {}", env.token(i))) {
        Ok(v) => v,
        Err(_) => {
            res.errors.inc("client.bad_token");
            warmed.fetch_add(1, Ordering::Relaxed);
            return res;
        }
    };

    // Warm-up: open the keep-alive connection.
    match http.get(env.target.endpoint("/api/health")).send().await {
        Ok(r) if r.status().is_success() => {
            let _ = r.bytes().await;
            res.warmed_up = true;
        }
        Ok(r) => res
            .errors
            .inc(format!("warmup.http_{}", r.status().as_u16())),
        Err(e) => res
            .errors
            .inc(format!("warmup.{}", client::http_err_key(&e))),
    }
    warmed.fetch_add(1, Ordering::Relaxed);

    let end = match phase_rx
        .wait_for(|p| matches!(p, Phase::Running { .. }))
        .await
    {
        Ok(p) => match *p {
            Phase::Running { end } => end,
            Phase::Warmup => return res,
        },
        Err(_) => return res,
    };
    let mut window_end = end;
    let hard_deadline = |window_end: Instant| window_end + plan.drain;

    // Sample times: far enough back for the whole run, never before 2001 nor in the future.
    let now = chrono::Utc::now();
    let secs = (window_end - Instant::now()).as_secs_f64() + plan.drain.as_secs_f64();
    let rate = if plan.rate > 0.0 {
        plan.rate
    } else {
        ASSUMED_MAX_RATE
    };
    let minutes = (secs * rate * plan.batch as f64 / 2.0).ceil() as i64 + 1440 + (i % 60) as i64;
    let floor = chrono::DateTime::parse_from_rfc3339("2001-01-01T00:00:00Z")
        .expect("valid date")
        .with_timezone(&chrono::Utc);
    let start = (now - chrono::Duration::minutes(minutes)).max(floor);
    let seed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x0BE5_7F00;
    let mut samples =
        SampleGen::new(format!("lt-{}-r{i}", env.run_id), i, start, seed).wrap_at(now);

    let interval = (plan.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / plan.rate));
    let phase_frac = (i as f64 * 0.618_033_988_75).fract();
    let mut next_due = interval.map(|iv| Instant::now() + iv.mul_f64(phase_frac));
    // A shed batch is resent as is.
    let mut pending: Option<Bytes> = None;

    loop {
        if let Ok(true) = phase_rx.has_changed()
            && let Phase::Running { end } = *phase_rx.borrow_and_update()
        {
            window_end = end;
        }
        let now = Instant::now();
        if now >= window_end || env.stopped() {
            break;
        }
        if plan.max_requests > 0 && res.requests_ok >= plan.max_requests {
            break;
        }
        if let (Some(iv), Some(due)) = (interval, next_due) {
            if due > now {
                tokio::select! {
                    _ = tokio::time::sleep_until(due.min(window_end)) => {}
                    _ = phase_rx.changed() => continue,
                }
                if Instant::now() >= window_end {
                    break;
                }
            }
            let mut next = due + iv;
            if next + iv < Instant::now() {
                res.send_slips += 1;
                next = Instant::now() + iv;
            }
            next_due = Some(next);
        }

        let body = match pending.take() {
            Some(b) => b,
            None => {
                res.samples_sent += plan.batch as u64;
                Bytes::from(samples.rest_body(plan.batch))
            }
        };
        res.requests_sent += 1;
        let sent_at = Instant::now();
        let request = http
            .post(upload_url.clone())
            .header(AUTHORIZATION, auth.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body.clone());
        let outcome = match tokio::time::timeout_at(hard_deadline(window_end), send(request)).await
        {
            Ok(o) => o,
            Err(_) => Outcome::Failed("drain.timeout".into()),
        };
        let done_at = Instant::now();
        match outcome {
            Outcome::Ok(report) => {
                lat.record(done_at - sent_at);
                res.requests_ok += 1;
                res.samples_accepted += report.accepted;
                res.samples_duplicates += report.duplicates;
                res.samples_rejected += report.rejected.len() as u64;
                for r in &report.rejected {
                    res.errors.inc(format!(
                        "rejected_sample.{}",
                        r.code.as_deref().unwrap_or("unknown")
                    ));
                }
                let acked = report.accepted + report.duplicates;
                if done_at <= window_end {
                    res.requests_ok_in_window += 1;
                    res.samples_acked_in_window += acked;
                }
                shared.requests_ok.fetch_add(1, Ordering::Relaxed);
                shared.samples_acked.fetch_add(acked, Ordering::Relaxed);
            }
            Outcome::Shed(wait) => {
                res.requests_shed += 1;
                shared.shed.fetch_add(1, Ordering::Relaxed);
                let resume = Instant::now() + wait;
                if resume >= window_end {
                    res.batches_abandoned += 1;
                    break;
                }
                pending = Some(body);
                tokio::time::sleep_until(resume).await;
            }
            Outcome::Failed(key) => {
                res.requests_failed += 1;
                shared.errors.fetch_add(1, Ordering::Relaxed);
                res.errors.inc(key);
                // Don't spin on a dead server.
                tokio::time::sleep_until(
                    (Instant::now() + Duration::from_millis(100)).min(window_end),
                )
                .await;
            }
        }
    }
    res
}

async fn send(request: reqwest::RequestBuilder) -> Outcome {
    let resp = match request.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(client::http_err_key(&e)),
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(client::http_err_key(&e)),
    };
    match status {
        StatusCode::OK => match serde_json::from_slice::<UploadReport>(&bytes) {
            Ok(r) => Outcome::Ok(r),
            Err(_) => Outcome::Failed("protocol.bad_json".into()),
        },
        StatusCode::SERVICE_UNAVAILABLE => {
            let ms = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.pointer("/error/retry_after_ms").and_then(|m| m.as_u64()))
                .or(retry_after.map(|s| s * 1000));
            Outcome::Shed(
                ms.map(Duration::from_millis)
                    .unwrap_or(DEFAULT_SHED_BACKOFF)
                    .min(Duration::from_secs(10)),
            )
        }
        s => Outcome::Failed(format!("http_{}", s.as_u16())),
    }
}
