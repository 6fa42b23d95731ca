//! `idle`: open and hold N authenticated WebSocket connections and measure the
//! server's memory per connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{ConnTracker, Env, connect_deadline, join_all, ramp, wait_connected};
use crate::IdleArgs;
use crate::client::{self, ServerFrame, close_key, ws_err_key};
use crate::report::{ErrorCounts, Report, RssSampler, r3, read_rss};

/// Read buffer per client connection: server traffic is tiny (welcome, pings).
const READ_BUFFER: usize = 4 * 1024;

#[derive(Default)]
struct ConnResult {
    errors: ErrorCounts,
    messages: u64,
    /// Text frames by type (`server_frames.<type>`).
    frames: ErrorCounts,
    heartbeat_ms: Option<u64>,
}

pub async fn run(env: Arc<Env>, _args: &IdleArgs) -> Result<Report> {
    let n = env.common.connections;
    let pid = env.common.server_pid;
    let rss_before = pid.and_then(read_rss);
    let sampler = pid.map(|p| RssSampler::start(p, Duration::from_millis(250)));

    let tracker = Arc::new(ConnTracker::default());
    // `true` = release the connections.
    let (release_tx, release_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    eprintln!(
        "[loadtest] idle: opening {n} connections at {}/s over {} source address(es)",
        env.common.ramp_per_sec,
        env.sources.len().max(1)
    );
    let started = Instant::now();
    let spawned = ramp(&env, n, &mut tasks, |i, permit| {
        idle_conn(env.clone(), tracker.clone(), i, permit, release_rx.clone())
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
    let established_at_connect = tracker.established();
    eprintln!(
        "[loadtest] idle: {established_at_connect} established, {} failed in {connect_secs:.2}s; holding for {}s",
        tracker.failed(),
        env.common.duration
    );

    // Hold.
    let hold_start = Instant::now();
    let hold_end = hold_start + Duration::from_secs(env.common.duration);
    while Instant::now() < hold_end && !env.stopped() {
        let next = match env.progress_every() {
            Some(every) => (Instant::now() + every).min(hold_end),
            None => hold_end,
        };
        env.sleep_until(next).await;
        if Instant::now() < hold_end && !env.stopped() {
            eprintln!(
                "[loadtest] idle: t={:.0}s open={} lost={}{}",
                hold_start.elapsed().as_secs_f64(),
                tracker.open(),
                tracker.lost(),
                pid.and_then(read_rss)
                    .map(|b| format!(" server_rss={:.1}MiB", b as f64 / 1048576.0))
                    .unwrap_or_default()
            );
        }
    }
    let hold_secs = hold_start.elapsed().as_secs_f64();
    let rss_open = pid.and_then(read_rss);
    let open_at_end = tracker.open();
    let rss_peak = sampler.map(RssSampler::stop);

    // Release: every task closes its socket (bounded), then gets aborted if late.
    let _ = release_tx.send(true);
    let close_started = Instant::now();
    let (results, aborted) = join_all(&mut tasks, Instant::now() + Duration::from_secs(15)).await;
    let close_secs = close_started.elapsed().as_secs_f64();
    // Give the server a moment to free per-connection state.
    if pid.is_some() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rss_after = pid.and_then(read_rss);

    // Report.
    let mut report = env.base_report();
    let mut messages = 0;
    let mut heartbeat = None;
    let mut frames = ErrorCounts::default();
    for r in &results {
        report.errors.merge(&r.errors);
        frames.merge(&r.frames);
        messages += r.messages;
        heartbeat = heartbeat.or(r.heartbeat_ms);
    }
    report
        .errors
        .add("close_phase.aborted_tasks", aborted as u64);
    let established = tracker.established();
    report.params.set("heartbeat_interval_ms", heartbeat);
    report
        .counts
        .set("connections_target", n as u64)
        .set("connections_attempted", spawned as u64)
        .set("connections_established", established as u64)
        .set("connections_failed", tracker.failed() as u64)
        .set("connections_lost_during_hold", tracker.lost() as u64)
        .set("connections_open_at_end", open_at_end as u64)
        .set("text_frames_received", messages);
    frames.copy_into(&mut report.counts);
    report
        .rates
        .set("connect_phase_s", r3(connect_secs))
        .set(
            "connects_per_sec",
            r3(established_at_connect as f64 / connect_secs.max(1e-9)),
        )
        .set("hold_s", r3(hold_secs))
        .set("close_phase_s", r3(close_secs));
    if pid.is_some() {
        let mut rss = crate::report::Section::default();
        rss.set("before", rss_before)
            .set("open", rss_open)
            .set("peak", rss_peak)
            .set("after", rss_after);
        let per_conn = match (rss_before, rss_open) {
            (Some(b), Some(o)) if open_at_end > 0 => {
                Some(r3((o as f64 - b as f64) / open_at_end as f64))
            }
            _ => None,
        };
        rss.set("per_connection", per_conn);
        report.server_rss_bytes = Some(rss);
    }
    report.nothing_established = established == 0;
    Ok(report)
}

async fn idle_conn(
    env: Arc<Env>,
    tracker: Arc<ConnTracker>,
    i: usize,
    permit: OwnedSemaphorePermit,
    mut release: watch::Receiver<bool>,
) -> ConnResult {
    let mut res = ConnResult::default();
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
    res.heartbeat_ms = welcome.heartbeat_interval_ms;

    // Keep polling the stream so Pings are answered, until released.
    loop {
        tokio::select! {
            biased;
            _ = release.wait_for(|r| *r) => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    res.messages += 1;
                    res.frames.inc(format!("server_frames.{}", client::frame_type(&t)));
                    if let Ok(ServerFrame::Error(e)) = serde_json::from_str::<ServerFrame>(&t) {
                        res.errors.inc(format!("error.{}", e.code));
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    res.errors.inc(close_key(f.as_ref()));
                    tracker.lost.fetch_add(1, Ordering::Relaxed);
                    return res;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    res.errors.inc(ws_err_key(&e));
                    tracker.lost.fetch_add(1, Ordering::Relaxed);
                    return res;
                }
                None => {
                    res.errors.inc("close.eof");
                    tracker.lost.fetch_add(1, Ordering::Relaxed);
                    return res;
                }
            },
        }
    }
    client::close_ws(&mut ws, Duration::from_secs(5)).await;
    res
}
