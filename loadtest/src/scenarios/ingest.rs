//! `ingest`: N sessions uploading sample batches; measures samples/s and ack latency.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{ConnTracker, Env, connect_deadline, join_all, ramp, wait_connected};
use crate::client::{self, Limits, ServerFrame, close_key, ws_err_key};
use crate::report::{
    ErrorCounts, LatencyMs, Report, RssSampler, Section, new_histogram, r3, read_cpu_secs, read_rss,
};
use crate::samples::{DELETE_FRAME, SampleGen};
use crate::{FrameShape, IdShape, IngestArgs};

/// How far back a session's data may start: 120 days of minutes.
const MAX_BACKFILL_MINUTES: f64 = 120.0 * 1440.0;
const READ_BUFFER: usize = 16 * 1024;
/// Fraction of the server's frame rate we allow ourselves (clock skew margin).
const RATE_LIMIT_MARGIN: f64 = 0.9;
/// Defaults when the welcome frame omits a limit.
const DEFAULT_FRAMES_PER_SEC: f64 = 50.0;
const DEFAULT_FRAME_BURST: f64 = 100.0;
const DEFAULT_MAX_INFLIGHT: u64 = 8;
/// Backoff after rate_limited / store_unavailable without retry_after_ms.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// Latencies are buffered per session and flushed into the shared histogram.
const LATENCY_FLUSH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Sessions are still connecting; don't send yet.
    Connecting,
    /// Send until `end`, then drain acks until `end + drain`.
    Running { end: Instant },
}

/// Parameters every session needs.
struct Plan {
    rate: f64,
    batch: usize,
    inflight: usize,
    duration: Duration,
    drain: Duration,
    upsert: f64,
    delete: f64,
    frame: FrameShape,
    uuid_ids: bool,
}

/// Shared live counters (progress lines) and the latency histogram.
#[derive(Default)]
struct Shared {
    samples_acked: AtomicU64,
    batches_acked: AtomicU64,
    hist: Mutex<Option<Histogram<u64>>>,
    limits: OnceLock<Limits>,
    effective: OnceLock<(usize, usize, f64)>,
}

impl Shared {
    fn flush(&self, buf: &mut Vec<u64>) {
        if buf.is_empty() {
            return;
        }
        let mut g = self.hist.lock().expect("histogram lock");
        let h = g.get_or_insert_with(new_histogram);
        for us in buf.drain(..) {
            h.saturating_record(us.max(1));
        }
    }
}

#[derive(Default)]
struct SessionResult {
    errors: ErrorCounts,
    batches_sent: u64,
    samples_sent: u64,
    batches_acked: u64,
    batches_acked_in_window: u64,
    batches_failed: u64,
    batches_unacked: u64,
    samples_accepted: u64,
    samples_duplicates: u64,
    samples_updated: u64,
    samples_deleted: u64,
    samples_not_found: u64,
    samples_rejected: u64,
    samples_acked_in_window: u64,
    send_slips: u64,
    frame_too_large: u64,
    /// WebSocket payload bytes of the batches sent (compressed, where they are).
    wire_bytes: u64,
    /// Frames other than ack/error, by type (`server_frames.<type>`).
    other_frames: ErrorCounts,
}

pub async fn run(env: Arc<Env>, args: &IngestArgs) -> Result<Report> {
    let n = env.common.connections;
    let pid = env.common.server_pid;
    let plan = Arc::new(Plan {
        rate: args.rate,
        batch: args.batch,
        inflight: args.inflight,
        duration: Duration::from_secs(env.common.duration),
        drain: Duration::from_secs(args.drain_timeout),
        upsert: args.upsert_pct / 100.0,
        delete: args.delete_pct / 100.0,
        frame: args.frame,
        uuid_ids: args.ids == IdShape::Uuid,
    });
    let shared = Arc::new(Shared::default());
    let tracker = Arc::new(ConnTracker::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let mut tasks = JoinSet::new();
    let rss_before = pid.and_then(read_rss);

    eprintln!(
        "[loadtest] ingest: opening {n} sessions at {}/s; rate {} batch/s/session ({}), batch {}, inflight {}",
        env.common.ramp_per_sec,
        args.rate,
        if args.rate == 0.0 {
            "as fast as acks allow"
        } else {
            "paced"
        },
        args.batch,
        args.inflight
    );
    let started = Instant::now();
    let spawned = ramp(&env, n, &mut tasks, |i, permit| {
        session(
            env.clone(),
            plan.clone(),
            shared.clone(),
            tracker.clone(),
            i,
            permit,
            phase_rx.clone(),
        )
    })
    .await;
    let connect_secs = wait_connected(
        &env,
        &tracker,
        spawned,
        started,
        connect_deadline(&env, started),
    )
    .await;
    eprintln!(
        "[loadtest] ingest: {} established, {} failed in {connect_secs:.2}s; sending for {}s",
        tracker.established(),
        tracker.failed(),
        env.common.duration
    );

    let rss_connected = pid.and_then(read_rss);
    let sampler = pid.map(|p| RssSampler::start(p, Duration::from_millis(250)));

    // Measurement window.
    let cpu_start = pid.and_then(read_cpu_secs);
    let window_start = Instant::now();
    let mut window_end = window_start + plan.duration;
    let _ = phase_tx.send(Phase::Running { end: window_end });
    let mut last = (window_start, 0u64);
    while Instant::now() < window_end && !env.stopped() {
        let next = match env.progress_every() {
            Some(every) => (Instant::now() + every).min(window_end),
            None => window_end,
        };
        env.sleep_until(next).await;
        let now = Instant::now();
        if now < window_end && !env.stopped() {
            let acked = shared.samples_acked.load(Ordering::Relaxed);
            let rate = (acked - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9);
            last = (now, acked);
            eprintln!(
                "[loadtest] ingest: t={:.0}s open={} batches_acked={} samples_acked={} ({:.0}/s){}",
                (now - window_start).as_secs_f64(),
                tracker.open(),
                shared.batches_acked.load(Ordering::Relaxed),
                acked,
                rate,
                pid.and_then(read_rss)
                    .map(|b| format!(" server_rss={:.1}MiB", b as f64 / 1048576.0))
                    .unwrap_or_default()
            );
        }
    }
    if env.stopped() && Instant::now() < window_end {
        window_end = Instant::now();
        let _ = phase_tx.send(Phase::Running { end: window_end });
    }
    let window_secs = (window_end - window_start).as_secs_f64();
    let rss_end = pid.and_then(read_rss);
    let rss_peak_window = sampler.map(RssSampler::stop);

    // Drain: sessions stop by themselves at window_end + drain (+ close timeout).
    let (results, aborted) =
        join_all(&mut tasks, window_end + plan.drain + Duration::from_secs(5)).await;
    drop(phase_tx);
    let cpu_end = pid.and_then(read_cpu_secs);

    // Aggregate.
    let mut total = SessionResult::default();
    let mut report = env.base_report();
    for r in &results {
        report.errors.merge(&r.errors);
        total.other_frames.merge(&r.other_frames);
        total.batches_sent += r.batches_sent;
        total.samples_sent += r.samples_sent;
        total.batches_acked += r.batches_acked;
        total.batches_acked_in_window += r.batches_acked_in_window;
        total.batches_failed += r.batches_failed;
        total.batches_unacked += r.batches_unacked;
        total.samples_accepted += r.samples_accepted;
        total.samples_duplicates += r.samples_duplicates;
        total.samples_updated += r.samples_updated;
        total.samples_deleted += r.samples_deleted;
        total.samples_not_found += r.samples_not_found;
        total.samples_rejected += r.samples_rejected;
        total.samples_acked_in_window += r.samples_acked_in_window;
        total.send_slips += r.send_slips;
        total.frame_too_large += r.frame_too_large;
        total.wire_bytes += r.wire_bytes;
    }
    report.errors.add("drain.aborted_sessions", aborted as u64);
    report.errors.add(
        "client.frame_exceeds_max_frame_bytes",
        total.frame_too_large,
    );

    report
        .params
        .set("rate_batches_per_sec", args.rate)
        .set("batch_requested", args.batch as u64)
        .set("inflight_requested", args.inflight as u64)
        .set("drain_timeout_s", args.drain_timeout)
        .set(
            "frame",
            clap::ValueEnum::to_possible_value(&args.frame).map(|v| v.get_name().to_owned()),
        );
    if let Some(&(batch, inflight, fps)) = shared.effective.get() {
        report
            .params
            .set("batch_effective", batch as u64)
            .set("inflight_effective", inflight as u64)
            .set("client_frame_rate_cap", r3(fps));
    }
    if let Some(l) = shared.limits.get() {
        report
            .params
            .set("server_limits", serde_json::to_value(l).unwrap_or_default());
    }
    let established = tracker.established();
    let samples_acked = total.samples_accepted
        + total.samples_duplicates
        + total.samples_updated
        + total.samples_deleted
        + total.samples_not_found;
    report
        .counts
        .set("sessions_target", n as u64)
        .set("sessions_established", established as u64)
        .set("sessions_failed", tracker.failed() as u64)
        .set("sessions_lost", tracker.lost() as u64)
        .set("batches_sent", total.batches_sent)
        .set("batches_acked", total.batches_acked)
        .set("batches_acked_in_window", total.batches_acked_in_window)
        .set("batches_failed", total.batches_failed)
        .set("batches_unacked", total.batches_unacked)
        .set("samples_sent", total.samples_sent)
        .set("samples_acked", samples_acked)
        .set("samples_accepted", total.samples_accepted)
        .set("samples_duplicates", total.samples_duplicates)
        .set("samples_updated", total.samples_updated)
        .set("samples_deleted", total.samples_deleted)
        .set("samples_not_found", total.samples_not_found)
        .set("samples_rejected", total.samples_rejected)
        .set("samples_acked_in_window", total.samples_acked_in_window)
        .set("send_slips", total.send_slips)
        .set("wire_bytes_sent", total.wire_bytes);
    total.other_frames.copy_into(&mut report.counts);
    let w = window_secs.max(1e-9);
    report
        .rates
        .set("connect_phase_s", r3(connect_secs))
        .set("window_s", r3(window_secs))
        .set(
            "samples_per_sec",
            r3(total.samples_acked_in_window as f64 / w),
        )
        .set(
            "batches_per_sec",
            r3(total.batches_acked_in_window as f64 / w),
        )
        .set(
            "target_batches_per_sec",
            if args.rate > 0.0 {
                r3(args.rate * established as f64)
            } else {
                0.0
            },
        );
    let per_sample = |x: f64| (samples_acked > 0).then(|| r3(x / samples_acked as f64));
    report.rates.set(
        "wire_bytes_per_sample",
        (total.samples_sent > 0).then(|| r3(total.wire_bytes as f64 / total.samples_sent as f64)),
    );
    if let (Some(a), Some(b)) = (cpu_start, cpu_end) {
        // From the window's start to the end of the drain: every acked batch's work.
        report
            .rates
            .set("server_cpu_s", r3(b - a))
            .set("server_cpu_us_per_sample", per_sample((b - a) * 1e6));
    }
    let hist = shared.hist.lock().expect("histogram lock").take();
    report.latency_ms = hist.as_ref().and_then(LatencyMs::from_us);
    if pid.is_some() {
        let mut rss = Section::default();
        rss.set("before", rss_before)
            .set("connected", rss_connected)
            .set("end", rss_end)
            .set("peak", rss_peak_window)
            .set("after", pid.and_then(read_rss));
        rss.set(
            "per_connection",
            match (rss_before, rss_connected) {
                (Some(b), Some(c)) if established > 0 => {
                    Some(r3((c as f64 - b as f64) / established as f64))
                }
                _ => None,
            },
        );
        report.server_rss_bytes = Some(rss);
    }
    report.nothing_established = established == 0;
    Ok(report)
}

/// One uploading session.
async fn session(
    env: Arc<Env>,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    tracker: Arc<ConnTracker>,
    i: usize,
    permit: OwnedSemaphorePermit,
    mut phase_rx: watch::Receiver<Phase>,
) -> SessionResult {
    let mut res = SessionResult::default();
    let connected = env
        .connect_counted(i, client::ws_config(READ_BUFFER), &tracker, permit)
        .await;
    let (mut ws, welcome) = match connected {
        Ok(v) => v,
        Err(key) => {
            res.errors.inc(key);
            return res;
        }
    };

    // Respect the server's limits.
    let limits = welcome.limits.clone();
    let _ = shared.limits.set(limits.clone());
    let batch = match limits.max_samples_per_frame {
        Some(m) if m > 0 => plan.batch.min(m as usize),
        _ => plan.batch,
    };
    let inflight_cap = plan.inflight.min(
        limits
            .max_inflight_batches
            .unwrap_or(DEFAULT_MAX_INFLIGHT)
            .max(1) as usize,
    );
    let fps = limits
        .max_frames_per_sec
        .unwrap_or(DEFAULT_FRAMES_PER_SEC)
        .max(0.1)
        * RATE_LIMIT_MARGIN;
    let burst = (limits.frame_burst.unwrap_or(DEFAULT_FRAME_BURST) / 2.0).max(1.0);
    let _ = shared.effective.set((batch, inflight_cap, fps));
    let max_frame_bytes = limits.max_frame_bytes.map(|b| b as usize);
    let mut bucket = TokenBucket::new(fps, burst);

    // Data starts far enough in the past that the whole run stays before "now".
    let frames_per_sec = if plan.rate > 0.0 {
        plan.rate.min(fps)
    } else {
        fps
    };
    // A server whose frame limit is lifted announces a rate no session reaches: then at most
    // MAX_BACKFILL_MINUTES back (the server refuses data from before 2000), wrapping
    // to the start at "now" should a session get that far.
    let minutes_needed =
        ((plan.duration.as_secs_f64() + plan.drain.as_secs_f64()) * frames_per_sec * batch as f64
            / 2.0)
            .min(MAX_BACKFILL_MINUTES);
    let now = chrono::Utc::now();
    let start =
        now - chrono::Duration::minutes(minutes_needed.ceil() as i64 + 1440 + (i % 60) as i64);
    let seed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x00C1_A817;
    let prefix = format!("lt-{}-{i}", env.run_id);
    let mut samples = SampleGen::new(prefix.clone(), i, start, seed)
        .with_edits(plan.upsert, plan.delete)
        .wrap_at(now);
    if plan.uuid_ids {
        // Sessions may share a user, and runs a server: the key differs per run and session.
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&prefix, &mut h);
        samples = samples.with_uuid_ids(std::hash::Hasher::finish(&h));
    }
    // Series frames' source: derived ids are per source, and sessions may share a user.
    let source = format!("lt-{}-{i}", env.run_id);

    // Spread paced sessions uniformly over one send interval.
    let interval = (plan.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / plan.rate));
    let phase_frac = (i as f64 * 0.618_033_988_75).fract();
    let mut next_due: Option<Instant> = None;

    let mut seq: u64 = 0;
    let mut inflight: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut backoff_until: Option<Instant> = None;
    let mut lat_buf: Vec<u64> = Vec::with_capacity(LATENCY_FLUSH);
    let mut phase = *phase_rx.borrow();
    let mut phase_open = true;
    let mut lost = false;

    loop {
        let now = Instant::now();
        let (sending, window_end, hard_deadline) = match phase {
            Phase::Connecting => (false, None, None),
            Phase::Running { end } => (now < end, Some(end), Some(end + plan.drain)),
        };
        if let Some(end) = window_end {
            if !sending && inflight.is_empty() {
                break;
            }
            if now >= end + plan.drain {
                break;
            }
        }
        if !phase_open && window_end.is_none() {
            break; // driver went away before starting
        }
        if sending && next_due.is_none() {
            next_due = interval.map(|iv| now + iv.mul_f64(phase_frac));
        }
        let ready_at = if sending && inflight.len() < inflight_cap {
            let mut t = bucket.ready_at(now);
            if let Some(d) = next_due {
                t = t.max(d);
            }
            if let Some(b) = backoff_until {
                t = t.max(b);
            }
            Some(t)
        } else {
            None
        };
        // Wake up at the window end / drain deadline to re-evaluate.
        let wake = match (sending, window_end, hard_deadline) {
            (true, Some(end), _) => end,
            (false, _, Some(h)) => h,
            _ => now + Duration::from_secs(3600),
        };

        tokio::select! {
            biased;
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerFrame>(&t) {
                    Ok(ServerFrame::Ack(ack)) => {
                        let now = Instant::now();
                        let Some(pos) = inflight.iter().position(|e| e.0 == ack.seq) else {
                            res.errors.inc("protocol.ack_unknown_seq");
                            continue;
                        };
                        if pos != 0 {
                            res.errors.inc("protocol.ack_out_of_order");
                        }
                        let (_, sent_at) = inflight.remove(pos).expect("position is valid");
                        lat_buf.push((now - sent_at).as_micros() as u64);
                        if lat_buf.len() >= LATENCY_FLUSH {
                            shared.flush(&mut lat_buf);
                        }
                        let acked = ack.accepted
                            + ack.duplicates
                            + ack.updated
                            + ack.deleted
                            + ack.not_found;
                        res.batches_acked += 1;
                        res.samples_accepted += ack.accepted;
                        res.samples_duplicates += ack.duplicates;
                        res.samples_updated += ack.updated;
                        res.samples_deleted += ack.deleted;
                        res.samples_not_found += ack.not_found;
                        res.samples_rejected += ack.rejected.len() as u64;
                        for r in &ack.rejected {
                            res.errors.inc(format!(
                                "rejected_sample.{}",
                                r.code.as_deref().unwrap_or("unknown")
                            ));
                        }
                        if window_end.is_none_or(|end| now <= end) {
                            res.batches_acked_in_window += 1;
                            res.samples_acked_in_window += acked;
                        }
                        shared.batches_acked.fetch_add(1, Ordering::Relaxed);
                        shared.samples_acked.fetch_add(acked, Ordering::Relaxed);
                    }
                    Ok(ServerFrame::Error(e)) => {
                        res.errors.inc(format!("error.{}", e.code));
                        if let Some(pos) = e
                            .seq
                            .and_then(|s| inflight.iter().position(|x| x.0 == s))
                        {
                            inflight.remove(pos);
                            res.batches_failed += 1;
                        }
                        if e.retry_after_ms.is_some()
                            || e.code == "rate_limited"
                            || e.code == "store_unavailable"
                        {
                            let wait = e
                                .retry_after_ms
                                .map(Duration::from_millis)
                                .unwrap_or(DEFAULT_BACKOFF);
                            backoff_until = Some(Instant::now() + wait);
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
                    lost = true;
                    break;
                }
                Some(Ok(Message::Binary(_))) => res.errors.inc("protocol.binary_frame"),
                Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
                Some(Err(e)) => {
                    res.errors.inc(ws_err_key(&e));
                    lost = true;
                    break;
                }
                None => {
                    res.errors.inc("close.eof");
                    lost = true;
                    break;
                }
            },
            changed = phase_rx.changed(), if phase_open => {
                if changed.is_ok() {
                    phase = *phase_rx.borrow_and_update();
                } else {
                    phase_open = false;
                }
            }
            _ = tokio::time::sleep_until(ready_at.unwrap_or(now)), if ready_at.is_some() => {
                let now = Instant::now();
                if window_end.is_none_or(|end| now >= end) {
                    continue;
                }
                if let (Some(iv), Some(due)) = (interval, next_due) {
                    let mut next = due + iv;
                    if next + iv < now {
                        // More than one interval behind (inflight full / backoff): resync.
                        res.send_slips += 1;
                        next = now + iv;
                    }
                    next_due = Some(next);
                }
                seq += 1;
                let frame = match plan.frame {
                    FrameShape::Samples | FrameShape::SamplesDeflate => samples.frame(seq, batch),
                    FrameShape::Series | FrameShape::Deflate => {
                        samples.series_frame(seq, batch, &source)
                    }
                };
                let is_delete = frame.starts_with(r#"{"type":"delete""#);
                if max_frame_bytes.is_some_and(|m| frame.len() > m) {
                    res.frame_too_large += 1;
                }
                let message = match plan.frame {
                    FrameShape::Samples | FrameShape::Series => Message::Text(frame.into()),
                    FrameShape::Deflate | FrameShape::SamplesDeflate => {
                        Message::Binary(deflate(&frame).into())
                    }
                };
                let wire = message.len() as u64;
                bucket.take(now);
                let sent_at = Instant::now();
                let deadline = hard_deadline.unwrap_or(sent_at + plan.drain);
                match tokio::time::timeout_at(deadline, ws.send(message)).await {
                    Ok(Ok(())) => {
                        inflight.push_back((seq, sent_at));
                        res.wire_bytes += wire;
                        res.batches_sent += 1;
                        res.samples_sent += if is_delete {
                            DELETE_FRAME as u64
                        } else {
                            batch as u64
                        };
                    }
                    Ok(Err(e)) => {
                        res.errors.inc(format!("send.{}", ws_err_key(&e)));
                        lost = true;
                        break;
                    }
                    Err(_) => {
                        res.errors.inc("send.timeout");
                        lost = true;
                        break;
                    }
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }

    shared.flush(&mut lat_buf);
    res.batches_unacked += inflight.len() as u64;
    if !inflight.is_empty() && !lost {
        res.errors
            .add("drain.unacked_batches", inflight.len() as u64);
    }
    if lost {
        tracker.lost.fetch_add(1, Ordering::Relaxed);
    } else {
        client::close_ws(&mut ws, Duration::from_secs(2)).await;
    }
    res
}

/// One frame as a raw DEFLATE stream (protocol/README.md, Compressed frames).
fn deflate(text: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).expect("writes to a Vec");
    e.finish().expect("writes to a Vec")
}

/// Client-side token bucket so we stay under the server's frame rate limit.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: 1.0,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
    }

    fn ready_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= 1.0 {
            now
        } else {
            now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }
}
