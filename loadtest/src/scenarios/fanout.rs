//! `fanout`: devices publish insights and dashboards (viewer accounts the devices shared
//! `insights` with) watch them live. Measures the latency from a device's `analyze` frame to
//! each dashboard's `insight` event and checks delivery: every event to every subscriber
//! exactly once, in offset order. `loadtest fanout --help` describes the procedure.
//!
//! Matching an event to its `analyze`: a device runs one round at a time (samples, ack,
//! analyze, then its `analysis` frame comes back with the analysis id), so each requested
//! analysis maps to one analyze send time. The device's own session receives its insight
//! events with their stream offsets, which gives offset -> analysis id -> send time.
//! Dashboards only timestamp (offset, receive time); latencies are computed after the run,
//! so a dashboard that hears of an event before the device does needs no coordination.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use chrono::{Days, NaiveTime, Utc};
use futures_util::{SinkExt, StreamExt, stream};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::{ConnTracker, Env, connect_deadline, join_all, ramp, wait_connected};
use crate::FanoutArgs;
use crate::client::{self, Account, Ws, close_key, ws_err_key};
use crate::report::{
    ErrorCounts, LatencyMs, Report, RssSampler, Section, new_histogram, r3, read_rss,
};
use crate::samples::{SampleGen, utc_offset};

/// Insight events are a few KiB; tungstenite grows the buffer for bigger frames.
const READ_BUFFER: usize = 8 * 1024;
/// Samples per seed frame (well under the server's default 5,000; even, so minutes stay whole).
const SEED_FRAME_SAMPLES: usize = 2_000;
/// Warm-up analysis and insight: milliseconds normally, bounded anyway.
const WARMUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long stalled dashboards read after the drain to see what the server left them.
const STALLED_READ: Duration = Duration::from_secs(2);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Dashboards are still connecting: devices wait.
    Connecting,
    /// Devices run rounds until `end`; everyone reads until `drain_until`, then closes.
    Running { end: Instant, drain_until: Instant },
}

/// Live counters for progress lines.
#[derive(Default)]
struct Live {
    rounds: AtomicU64,
    delivered: AtomicU64,
}

/// The top-level fields of a server frame this scenario reads. Event frames are a stored
/// document with routing fields spliced in front, so a key such as `user_id` may occur twice;
/// the first occurrence wins (the routing field) and everything else is skipped unparsed:
/// insight documents are kilobytes and every dashboard parses every one.
#[derive(Debug, Default)]
struct Frame {
    ty: String,
    stream: Option<String>,
    user_id: Option<String>,
    offset: Option<u64>,
    analysis_id: Option<String>,
    trigger: Option<String>,
    code: Option<String>,
    seq: Option<u64>,
    accepted: Option<u64>,
    duplicates: Option<u64>,
    rejected: Option<usize>,
}

enum Key {
    Type,
    Stream,
    UserId,
    Offset,
    AnalysisId,
    Trigger,
    Code,
    Seq,
    Accepted,
    Duplicates,
    Rejected,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "type" => Key::Type,
                    "stream" => Key::Stream,
                    "user_id" => Key::UserId,
                    "offset" => Key::Offset,
                    "analysis_id" => Key::AnalysisId,
                    "trigger" => Key::Trigger,
                    "code" => Key::Code,
                    "seq" => Key::Seq,
                    "accepted" => Key::Accepted,
                    "duplicates" => Key::Duplicates,
                    "rejected" => Key::Rejected,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Frame {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FrameVisitor;
        impl<'de> Visitor<'de> for FrameVisitor {
            type Value = Frame;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Frame, A::Error> {
                fn first<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
                    m: &mut A,
                    slot: &mut Option<T>,
                ) -> Result<(), A::Error> {
                    if slot.is_some() {
                        m.next_value::<IgnoredAny>()?;
                    } else {
                        *slot = m.next_value::<Option<T>>()?;
                    }
                    Ok(())
                }
                let mut f = Frame::default();
                let mut ty: Option<String> = None;
                while let Some(key) = m.next_key::<Key>()? {
                    match key {
                        Key::Type => first(&mut m, &mut ty)?,
                        Key::Stream => first(&mut m, &mut f.stream)?,
                        Key::UserId => first(&mut m, &mut f.user_id)?,
                        Key::Offset => first(&mut m, &mut f.offset)?,
                        Key::AnalysisId => first(&mut m, &mut f.analysis_id)?,
                        Key::Trigger => first(&mut m, &mut f.trigger)?,
                        Key::Code => first(&mut m, &mut f.code)?,
                        Key::Seq => first(&mut m, &mut f.seq)?,
                        Key::Accepted => first(&mut m, &mut f.accepted)?,
                        Key::Duplicates => first(&mut m, &mut f.duplicates)?,
                        Key::Rejected => {
                            if f.rejected.is_some() {
                                m.next_value::<IgnoredAny>()?;
                            } else {
                                let list = m.next_value::<Option<Vec<IgnoredAny>>>()?;
                                f.rejected = list.map(|l| l.len());
                            }
                        }
                        Key::Other => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                f.ty = ty.unwrap_or_default();
                Ok(f)
            }
        }
        d.deserialize_map(FrameVisitor)
    }
}

/// What one `ws.next()` gave: `Ok(Some(text))`, `Ok(None)` for frames to skip (ping and pong,
/// which tungstenite answers, binary), `Err(key)` when the connection ended.
fn text_of(msg: Option<Result<Message, WsError>>) -> Result<Option<Utf8Bytes>, String> {
    match msg {
        Some(Ok(Message::Text(t))) => Ok(Some(t)),
        Some(Ok(Message::Close(f))) => Err(close_key(f.as_ref())),
        Some(Ok(_)) => Ok(None),
        Some(Err(e)) => Err(ws_err_key(&e)),
        None => Err("close.eof".into()),
    }
}

/// Reads the next text frame before `deadline`; `Err(key)` on timeout, close or error.
async fn read_frame(ws: &mut Ws, deadline: Instant) -> Result<Frame, String> {
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| "timeout".to_string())?;
        if let Some(t) = text_of(msg)? {
            return serde_json::from_str(&t).map_err(|_| "protocol.bad_json".to_string());
        }
    }
}

async fn send_text(ws: &mut Ws, text: String) -> Result<(), String> {
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|e| format!("send.{}", ws_err_key(&e)))
}

// ---------------------------------------------------------------------------
// Shares
// ---------------------------------------------------------------------------

#[derive(Default)]
struct ShareStats {
    created: u64,
    existing: u64,
    errors: ErrorCounts,
}

/// Every device shares `insights` with every viewer (small requests, bounded concurrency).
async fn create_shares(env: &Env, devices: &[Account], viewers: &[Account]) -> ShareStats {
    let http = match client::http_client() {
        Ok(h) => h,
        Err(_) => {
            let mut s = ShareStats::default();
            s.errors.inc("share.http_client");
            return s;
        }
    };
    let url = env.target.endpoint("/api/v1/shares");
    let pairs: Vec<(&Account, &Account)> = devices
        .iter()
        .flat_map(|d| viewers.iter().map(move |v| (d, v)))
        .collect();
    let outcomes: Vec<Result<u16, String>> = stream::iter(pairs)
        .map(|(device, viewer)| {
            let (http, url) = (&http, &url);
            async move {
                let body = json!({"grantee_email": viewer.email, "scope": "insights"});
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let res = http
                        .post(url.clone())
                        .bearer_auth(&device.access_token)
                        .json(&body)
                        .send()
                        .await;
                    match res {
                        // Load shedding: wait and resend, as a real client would.
                        Ok(r) if r.status().as_u16() == 503 && attempt < 5 => {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        Ok(r) => return Ok(r.status().as_u16()),
                        Err(e) if attempt < 3 => {
                            let _ = e;
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        Err(e) => return Err(client::http_err_key(&e)),
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut s = ShareStats::default();
    for o in outcomes {
        match o {
            Ok(201) => s.created += 1,
            Ok(200) => s.existing += 1,
            Ok(code) => s.errors.inc(format!("share.http_{code}")),
            Err(key) => s.errors.inc(format!("share.{key}")),
        }
    }
    s
}

// ---------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------

/// What a device tells the driver once it is connected, seeded and warmed up.
struct DeviceReady {
    user_id: String,
}

#[derive(Default)]
struct DeviceResult {
    errors: ErrorCounts,
    other_frames: ErrorCounts,
    user_id: Option<String>,
    /// Stream offset of the warm-up insight (the last event before the measurement).
    warmup_offset: Option<u64>,
    rounds: u64,
    rounds_skipped: u64,
    samples_acked: u64,
    /// Own insight events in arrival order: offset, send time of the `analyze` it answers
    /// (None when it answers none of ours, e.g. a completed day), receive time.
    events: Vec<(u64, Option<Instant>, Instant)>,
    /// Samples frame sent -> ack, µs.
    ack_us: Vec<u64>,
    lost: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Round {
    Idle,
    AwaitAck { seq: u64, sent: Instant },
    AwaitAnalysis { sent: Instant },
}

struct DevicePlan {
    interval: Duration,
    minutes_per_frame: usize,
    seed_minutes: usize,
    devices: usize,
}

#[allow(clippy::too_many_arguments)]
async fn device(
    env: Arc<Env>,
    plan: Arc<DevicePlan>,
    live: Arc<Live>,
    d: usize,
    account: Account,
    source: Option<IpAddr>,
    ready: oneshot::Sender<Result<DeviceReady, String>>,
    mut phase_rx: watch::Receiver<Phase>,
) -> DeviceResult {
    let mut res = DeviceResult::default();
    let fail = |res: &mut DeviceResult, ready: oneshot::Sender<_>, key: String| {
        res.errors.inc(key.clone());
        let _ = ready.send(Err(key));
    };
    let connected = client::connect_ws(
        &env.target,
        &account.access_token,
        source,
        client::ws_config(READ_BUFFER),
        env.common.connect_timeout(),
    )
    .await;
    let (mut ws, welcome) = match connected {
        Ok(v) => v,
        Err(e) => {
            fail(&mut res, ready, format!("device.{}", e.key()));
            return res;
        }
    };
    let Some(user_id) = welcome.user_id.clone() else {
        fail(&mut res, ready, "device.welcome_without_user_id".into());
        return res;
    };
    res.user_id = Some(user_id.clone());

    // The data lies on yesterday's local calendar day from midnight on: recent enough for
    // the window, and no local day completes (which would add the server's daily analysis
    // and insight, events no analyze asked for) until seed + rounds pass 24 hours.
    let offset = utc_offset(d);
    let start = (Utc::now().with_timezone(&offset).date_naive() - Days::new(1))
        .and_time(NaiveTime::MIN)
        .and_local_timezone(offset)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc::now() - chrono::Duration::days(1));
    let seed = (d as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xFA_0017;
    let mut samples = SampleGen::new(format!("lt-{}-dev{d}", env.run_id), d, start, seed);
    let mut seq = 0u64;

    // Seed, one frame at a time.
    let per_frame = welcome
        .limits
        .max_samples_per_frame
        .map_or(SEED_FRAME_SAMPLES, |m| (m as usize).min(SEED_FRAME_SAMPLES))
        & !1;
    let mut left = plan.seed_minutes * 2;
    let seed_deadline = Instant::now() + WARMUP_TIMEOUT + Duration::from_secs(left as u64 / 500);
    while left > 0 {
        let n = left.min(per_frame.max(2));
        seq += 1;
        if let Err(key) = send_text(&mut ws, samples.frame(seq, n)).await {
            fail(&mut res, ready, format!("device.seed.{key}"));
            return res;
        }
        loop {
            match read_frame(&mut ws, seed_deadline).await {
                Ok(f) if f.ty == "ack" && f.seq == Some(seq) => {
                    res.samples_acked += f.accepted.unwrap_or(0);
                    break;
                }
                Ok(f) if f.ty == "error" => {
                    let key = format!("device.seed.error.{}", f.code.unwrap_or_default());
                    fail(&mut res, ready, key);
                    return res;
                }
                Ok(f) => res.other_frames.inc(format!("device_frames.{}", f.ty)),
                Err(key) => {
                    fail(&mut res, ready, format!("device.seed.{key}"));
                    return res;
                }
            }
        }
        left -= n;
    }

    // Warm-up: the first analysis and insight of the run (the first insight of a user has no
    // previous week to compare with), so the stream has a HEAD and the measured rounds are
    // steady-state ones.
    if let Err(key) = send_text(&mut ws, r#"{"type":"analyze"}"#.into()).await {
        fail(&mut res, ready, format!("device.warmup.{key}"));
        return res;
    }
    let warmup_deadline = Instant::now() + WARMUP_TIMEOUT;
    let mut warm_analysis: Option<String> = None;
    loop {
        match read_frame(&mut ws, warmup_deadline).await {
            Ok(f) if f.ty == "analysis" && warm_analysis.is_none() => {
                warm_analysis = f.analysis_id;
            }
            Ok(f) if f.ty == "insight" && warm_analysis.is_some() => {
                if f.analysis_id == warm_analysis {
                    res.warmup_offset = f.offset;
                    break;
                }
            }
            Ok(f) if f.ty == "error" || f.ty == "insight_failed" => {
                let code = f.code.unwrap_or_else(|| f.ty.clone());
                fail(&mut res, ready, format!("device.warmup.error.{code}"));
                return res;
            }
            Ok(f) => res.other_frames.inc(format!("device_frames.{}", f.ty)),
            Err(key) => {
                fail(&mut res, ready, format!("device.warmup.{key}"));
                return res;
            }
        }
    }
    if res.warmup_offset.is_none() {
        // The contract gives a device's own sessions their events with offsets; without
        // them no event can be matched to its analyze.
        res.errors.inc("device.event_without_offset");
    }
    let _ = ready.send(Ok(DeviceReady {
        user_id: user_id.clone(),
    }));

    // Rounds. Devices start spread over one interval so several don't analyse at once.
    let mut round = Round::Idle;
    let mut sent_by_analysis: HashMap<String, Instant> = HashMap::new();
    let mut next_tick: Option<Instant> = None;
    let mut phase = *phase_rx.borrow();
    let mut phase_open = true;
    loop {
        let now = Instant::now();
        let (end, drain_until) = match phase {
            Phase::Running { end, drain_until } => (Some(end), Some(drain_until)),
            Phase::Connecting => (None, None),
        };
        if drain_until.is_some_and(|t| now >= t) || (!phase_open && end.is_none()) {
            break;
        }
        let sending = end.is_some_and(|e| now < e);
        if sending && next_tick.is_none() {
            let lag = plan.interval.mul_f64(d as f64 / plan.devices as f64);
            next_tick = Some(now + lag);
        }
        let wake = drain_until.unwrap_or(now + Duration::from_secs(3600));
        let tick_at = next_tick.filter(|_| sending);
        tokio::select! {
            biased;
            msg = ws.next() => {
                let t = match text_of(msg) {
                    Ok(Some(t)) => t,
                    Ok(None) => continue,
                    Err(key) => {
                        res.errors.inc(format!("device.{key}"));
                        res.lost = true;
                        break;
                    }
                };
                let Ok(f) = serde_json::from_str::<Frame>(&t) else {
                    res.errors.inc("device.protocol.bad_json");
                    continue;
                };
                let now = Instant::now();
                match (f.ty.as_str(), round) {
                    ("ack", Round::AwaitAck { seq: s, sent }) if f.seq == Some(s) => {
                        res.ack_us.push((now - sent).as_micros() as u64);
                        res.samples_acked += f.accepted.unwrap_or(0);
                        if f.rejected.unwrap_or(0) > 0 || f.duplicates.unwrap_or(0) > 0 {
                            // Unchanged data would give the same analysis and no insight.
                            res.errors.inc("device.samples_not_new");
                        }
                        let sent = Instant::now();
                        if let Err(key) = send_text(&mut ws, r#"{"type":"analyze"}"#.into()).await {
                            res.errors.inc(format!("device.{key}"));
                            res.lost = true;
                            break;
                        }
                        round = Round::AwaitAnalysis { sent };
                        res.rounds += 1;
                        live.rounds.fetch_add(1, Ordering::Relaxed);
                    }
                    ("analysis", Round::AwaitAnalysis { sent })
                        if f.trigger.as_deref().is_none_or(|t| t == "request") =>
                    {
                        if let Some(id) = f.analysis_id {
                            sent_by_analysis.insert(id, sent);
                        }
                        round = Round::Idle;
                    }
                    ("insight", _) if f.user_id.as_deref() == Some(user_id.as_str()) => {
                        match f.offset {
                            Some(offset) => {
                                let sent = f
                                    .analysis_id
                                    .as_ref()
                                    .and_then(|id| sent_by_analysis.get(id).copied());
                                res.events.push((offset, sent, now));
                            }
                            None => res.errors.inc("device.event_without_offset"),
                        }
                    }
                    ("error", r) => {
                        res.errors.inc(format!("device.error.{}", f.code.unwrap_or_default()));
                        // A failed samples frame or analysis ends the round.
                        match r {
                            Round::AwaitAck { seq: s, .. } if f.seq == Some(s) => round = Round::Idle,
                            Round::AwaitAnalysis { .. } if f.seq.is_none() => round = Round::Idle,
                            _ => {}
                        }
                    }
                    ("insight_failed", _) => res.errors.inc("device.insight_failed"),
                    (ty, _) => res.other_frames.inc(format!("device_frames.{ty}")),
                }
            }
            changed = phase_rx.changed(), if phase_open => {
                if changed.is_ok() {
                    phase = *phase_rx.borrow_and_update();
                } else {
                    phase_open = false;
                }
            }
            _ = tokio::time::sleep_until(tick_at.unwrap_or(now)), if tick_at.is_some() => {
                let now = Instant::now();
                let mut next = tick_at.unwrap_or(now) + plan.interval;
                if next < now {
                    next = now + plan.interval; // fell behind (slow acks): resync
                }
                next_tick = Some(next);
                if round != Round::Idle {
                    // The previous round is not done: starting another would let two
                    // analyses race and blur which analyze an event answers.
                    res.rounds_skipped += 1;
                    continue;
                }
                seq += 1;
                let frame = samples.frame(seq, plan.minutes_per_frame * 2);
                let sent = Instant::now();
                if let Err(key) = send_text(&mut ws, frame).await {
                    res.errors.inc(format!("device.{key}"));
                    res.lost = true;
                    break;
                }
                round = Round::AwaitAck { seq, sent };
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    if round != Round::Idle && !res.lost {
        res.errors.inc("device.round_unfinished_at_end");
    }
    if !res.lost {
        client::close_ws(&mut ws, CLOSE_TIMEOUT).await;
    }
    res
}

// ---------------------------------------------------------------------------
// Dashboards
// ---------------------------------------------------------------------------

#[derive(Default)]
struct DashResult {
    errors: ErrorCounts,
    other_frames: ErrorCounts,
    device: usize,
    stalled: bool,
    /// HEAD from `subscribed`; None when the subscription never came.
    head: Option<u64>,
    /// Insight events of the watched user, in arrival order: (offset, receive time).
    events: Vec<(u64, Instant)>,
    lagged: u64,
    unsubscribed: u64,
    lost: bool,
    /// Stalled dashboards: what they found when reading after the drain.
    stalled_found: ErrorCounts,
}

struct DashPlan {
    /// Device index and user id per ready device.
    devices: Vec<(usize, String)>,
    dashboards: usize,
    viewers: Vec<Account>,
    stalled_rcvbuf: u32,
    /// Nodes the dashboards connect to, round-robin.
    targets: Vec<client::Target>,
}

/// Waits until the run's drain ends (or the driver goes away) without touching the socket.
async fn wait_drain_end(phase_rx: &mut watch::Receiver<Phase>) {
    loop {
        let phase = *phase_rx.borrow_and_update();
        match phase {
            Phase::Running { drain_until, .. } => {
                tokio::select! {
                    _ = tokio::time::sleep_until(drain_until) => return,
                    changed = phase_rx.changed() => if changed.is_err() { return },
                }
            }
            Phase::Connecting => {
                if phase_rx.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn dashboard(
    env: Arc<Env>,
    plan: Arc<DashPlan>,
    live: Arc<Live>,
    tracker: Arc<ConnTracker>,
    j: usize,
    permit: OwnedSemaphorePermit,
    mut phase_rx: watch::Receiver<Phase>,
) -> DashResult {
    let n_dev = plan.devices.len();
    let (device, ref user_id) = plan.devices[j % n_dev];
    // Spread each device's dashboards over all viewers.
    let viewer = &plan.viewers[(j / n_dev) % plan.viewers.len()];
    let stalled = j >= plan.dashboards;
    let mut res = DashResult {
        device,
        stalled,
        ..DashResult::default()
    };
    let deadline = Instant::now() + env.common.connect_timeout();
    let subscribed = async {
        let (mut ws, _welcome) = client::connect_ws_with(
            &plan.targets[j % plan.targets.len()],
            &viewer.access_token,
            // Devices use the first source addresses' slots.
            env.source(n_dev + j),
            client::ws_config(READ_BUFFER),
            env.common.connect_timeout(),
            stalled.then_some(plan.stalled_rcvbuf),
        )
        .await
        .map_err(|e| e.key())?;
        let sub = json!({"type": "subscribe", "stream": "insights", "user_id": user_id});
        send_text(&mut ws, sub.to_string())
            .await
            .map_err(|k| format!("subscribe.{k}"))?;
        loop {
            let f = read_frame(&mut ws, deadline)
                .await
                .map_err(|k| format!("subscribe.{k}"))?;
            match f.ty.as_str() {
                "subscribed" if f.user_id.as_deref() == Some(user_id.as_str()) => {
                    return Ok((ws, f.offset.unwrap_or(0)));
                }
                "error" => {
                    return Err(format!("subscribe.error.{}", f.code.unwrap_or_default()));
                }
                ty => res.other_frames.inc(format!("server_frames.{ty}")),
            }
        }
    };
    let (mut ws, head) = match subscribed.await {
        Ok(v) => v,
        Err(key) => {
            tracker.failed.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            res.errors.inc(key);
            return res;
        }
    };
    tracker.established.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    res.head = Some(head);

    if stalled {
        // Never poll the socket until the drain is over: the server sees a reader that
        // stopped (TCP window closed). Then read what it left us, briefly.
        wait_drain_end(&mut phase_rx).await;
        let until = Instant::now() + STALLED_READ;
        loop {
            match read_frame(&mut ws, until).await {
                Ok(f) => res.stalled_found.inc(format!("stalled_found.{}", f.ty)),
                Err(key) if key == "timeout" => {
                    res.stalled_found.inc("stalled_found.still_open");
                    break;
                }
                Err(key) => {
                    res.stalled_found.inc(format!("stalled_found.{key}"));
                    res.lost = true;
                    break;
                }
            }
        }
        if !res.lost {
            client::close_ws(&mut ws, CLOSE_TIMEOUT).await;
        }
        return res;
    }

    let mut phase = *phase_rx.borrow();
    let mut phase_open = true;
    loop {
        let now = Instant::now();
        let drain_until = match phase {
            Phase::Running { drain_until, .. } => Some(drain_until),
            Phase::Connecting => None,
        };
        if drain_until.is_some_and(|t| now >= t) || (!phase_open && drain_until.is_none()) {
            break;
        }
        let wake = drain_until.unwrap_or(now + Duration::from_secs(3600));
        tokio::select! {
            biased;
            msg = ws.next() => match text_of(msg) {
                Ok(Some(t)) => {
                    let received = Instant::now();
                    match serde_json::from_str::<Frame>(&t) {
                        Ok(f) if f.ty == "insight" && f.user_id.as_deref() == Some(user_id.as_str()) => {
                            match f.offset {
                                Some(offset) => {
                                    res.events.push((offset, received));
                                    live.delivered.fetch_add(1, Ordering::Relaxed);
                                }
                                None => res.errors.inc("event_without_offset"),
                            }
                        }
                        Ok(f) if f.ty == "insight" => res.errors.inc("event_for_other_user"),
                        Ok(f) if f.ty == "lagged" => res.lagged += 1,
                        Ok(f) if f.ty == "unsubscribed" => res.unsubscribed += 1,
                        Ok(f) if f.ty == "error" => {
                            res.errors.inc(format!("error.{}", f.code.unwrap_or_default()));
                        }
                        Ok(f) => res.other_frames.inc(format!("server_frames.{}", f.ty)),
                        Err(_) => res.errors.inc("protocol.bad_json"),
                    }
                }
                Ok(None) => {}
                Err(key) => {
                    res.errors.inc(key);
                    res.lost = true;
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
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    if res.lost {
        tracker.lost.fetch_add(1, Ordering::Relaxed);
    } else {
        client::close_ws(&mut ws, CLOSE_TIMEOUT).await;
    }
    res
}

// ---------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------

/// Delivery tallies over all healthy dashboards.
#[derive(Default, Debug, PartialEq)]
struct Delivery {
    expected: u64,
    delivered: u64,
    missing: u64,
    duplicates: u64,
    out_of_order: u64,
    unexpected: u64,
}

/// Checks one dashboard's events against the offsets it should have got:
/// `head + 1 ..= last`. `on_new` sees each first delivery in arrival order.
fn check_delivery(
    head: u64,
    last: u64,
    events: &[(u64, Instant)],
    d: &mut Delivery,
    mut on_new: impl FnMut(u64, Instant),
) {
    let expected = last.saturating_sub(head);
    d.expected += expected;
    let mut seen = HashSet::with_capacity(events.len());
    let mut highest = head;
    let mut delivered = 0;
    for &(offset, at) in events {
        if offset <= head || offset > last {
            d.unexpected += 1;
        } else if !seen.insert(offset) {
            d.duplicates += 1;
        } else {
            delivered += 1;
            if offset < highest {
                d.out_of_order += 1;
            }
            highest = highest.max(offset);
            on_new(offset, at);
        }
    }
    d.delivered += delivered;
    d.missing += expected - delivered;
}

pub async fn run(env: Arc<Env>, args: &FanoutArgs) -> Result<Report> {
    let pid = env.common.server_pid;
    let m = env.common.connections;
    let k = args.stalled;
    let live = Arc::new(Live::default());
    let mut report = env.base_report();
    report
        .params
        .set("devices", args.devices as u64)
        .set("dashboards", m as u64)
        .set("stalled", k as u64)
        .set("interval_ms", args.interval_ms)
        .set("minutes_per_frame", args.minutes_per_frame as u64)
        .set("seed_minutes", args.seed_minutes as u64)
        .set("stalled_rcvbuf", args.stalled_rcvbuf)
        .set("drain_timeout_s", args.drain_timeout);

    let devices: Vec<Account> = env
        .accounts
        .iter()
        .filter(|a| a.index < args.devices)
        .cloned()
        .collect();
    let viewers: Vec<Account> = env
        .accounts
        .iter()
        .filter(|a| a.index >= args.devices)
        .cloned()
        .collect();
    report.params.set("viewers", viewers.len() as u64);
    let targets = if args.dashboard_urls.is_empty() {
        vec![env.target.clone()]
    } else {
        args.dashboard_urls
            .iter()
            .map(|u| client::Target::parse(u))
            .collect::<Result<Vec<_>>>()?
    };
    report.params.set("dashboard_nodes", targets.len() as u64);
    let per_day = args.seed_minutes as f64
        + env.common.duration as f64 * 1000.0 / args.interval_ms as f64
            * args.minutes_per_frame as f64;
    if per_day > 1440.0 {
        report.notes.push(format!(
            "seed + rounds span {per_day:.0} minutes, past a local day: the server's daily \
             analysis may add insight events that answer no analyze (events_unmatched)"
        ));
    }
    if devices.len() < args.devices || viewers.is_empty() {
        report.errors.add(
            "setup.accounts_missing",
            (args.devices - devices.len()) as u64 + u64::from(viewers.is_empty()),
        );
        if devices.is_empty() || viewers.is_empty() {
            report.nothing_established = true;
            return Ok(report);
        }
    }

    eprintln!(
        "[loadtest] fanout: {} device(s) share insights with {} viewer(s)",
        devices.len(),
        viewers.len()
    );
    let shares = tokio::time::timeout(
        Duration::from_secs(60),
        create_shares(&env, &devices, &viewers),
    )
    .await
    .unwrap_or_else(|_| {
        let mut s = ShareStats::default();
        s.errors.inc("share.timeout");
        s
    });
    report.errors.merge(&shares.errors);

    // Devices: connect, seed, warm up.
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let dplan = Arc::new(DevicePlan {
        interval: Duration::from_millis(args.interval_ms),
        minutes_per_frame: args.minutes_per_frame,
        seed_minutes: args.seed_minutes,
        devices: devices.len(),
    });
    let mut device_tasks = JoinSet::new();
    let mut readies = Vec::new();
    for (d, account) in devices.iter().enumerate() {
        let (tx, rx) = oneshot::channel();
        readies.push((d, rx));
        device_tasks.spawn(device(
            env.clone(),
            dplan.clone(),
            live.clone(),
            d,
            account.clone(),
            env.source(d),
            tx,
            phase_rx.clone(),
        ));
    }
    let ready_deadline = Instant::now()
        + env.common.connect_timeout()
        + WARMUP_TIMEOUT * 2
        + Duration::from_secs(args.seed_minutes as u64 / 500);
    let mut ready_devices = Vec::new();
    for (d, rx) in readies {
        if let Ok(Ok(Ok(r))) = tokio::time::timeout_at(ready_deadline, rx).await {
            ready_devices.push((d, r.user_id));
        }
    }
    eprintln!(
        "[loadtest] fanout: {}/{} device(s) seeded and warmed up; opening {m} dashboards{} at {}/s",
        ready_devices.len(),
        devices.len(),
        if k > 0 {
            format!(" + {k} stalled")
        } else {
            String::new()
        },
        env.common.ramp_per_sec
    );

    let rss_before = pid.and_then(read_rss);
    let tracker = Arc::new(ConnTracker::default());
    let mut dash_tasks = JoinSet::new();
    let mut spawned = 0;
    let mut connect_secs = 0.0;
    if !ready_devices.is_empty() {
        let plan = Arc::new(DashPlan {
            devices: ready_devices.clone(),
            dashboards: m,
            viewers: viewers.clone(),
            stalled_rcvbuf: args.stalled_rcvbuf,
            targets: targets.clone(),
        });
        let started = Instant::now();
        spawned = ramp(&env, m + k, &mut dash_tasks, |j, permit| {
            dashboard(
                env.clone(),
                plan.clone(),
                live.clone(),
                tracker.clone(),
                j,
                permit,
                phase_rx.clone(),
            )
        })
        .await;
        connect_secs = wait_connected(
            &env,
            &tracker,
            spawned,
            started,
            connect_deadline(&env, started),
        )
        .await;
    }
    eprintln!(
        "[loadtest] fanout: {} subscribed, {} failed in {connect_secs:.2}s; rounds every {} ms for {}s",
        tracker.established(),
        tracker.failed(),
        args.interval_ms,
        env.common.duration
    );
    let rss_connected = pid.and_then(read_rss);
    let sampler = pid.map(|p| RssSampler::start(p, Duration::from_millis(250)));

    // Measurement window, then the drain.
    let window_start = Instant::now();
    let drain = Duration::from_secs(args.drain_timeout);
    let mut end = window_start + Duration::from_secs(env.common.duration);
    if ready_devices.is_empty() {
        end = window_start;
    }
    let _ = phase_tx.send(Phase::Running {
        end,
        drain_until: end + drain,
    });
    while Instant::now() < end + drain && !env.stopped() {
        let next = match env.progress_every() {
            Some(every) => (Instant::now() + every).min(end + drain),
            None => end + drain,
        };
        env.sleep_until(next).await;
        if Instant::now() < end + drain && !env.stopped() {
            eprintln!(
                "[loadtest] fanout: t={:.0}s{} open={} rounds={} delivered={}",
                window_start.elapsed().as_secs_f64(),
                if Instant::now() >= end {
                    " (drain)"
                } else {
                    ""
                },
                tracker.open(),
                live.rounds.load(Ordering::Relaxed),
                live.delivered.load(Ordering::Relaxed)
            );
        }
    }
    if env.stopped() {
        let now = Instant::now();
        end = end.min(now);
        let _ = phase_tx.send(Phase::Running {
            end,
            drain_until: now,
        });
    }
    let window_secs = (end - window_start).as_secs_f64();
    let rss_end = pid.and_then(read_rss);
    let rss_peak = sampler.map(RssSampler::stop);

    let close_deadline = Instant::now() + STALLED_READ + CLOSE_TIMEOUT + Duration::from_secs(10);
    let (dashes, dash_aborted) = join_all(&mut dash_tasks, close_deadline).await;
    let (device_results, dev_aborted) = join_all(&mut device_tasks, close_deadline).await;
    drop(phase_tx);
    report.errors.add(
        "close_phase.aborted_tasks",
        (dash_aborted + dev_aborted) as u64,
    );

    // Per device: offsets -> analyze send time, and the last offset anyone saw.
    let n_dev = devices.len();
    let mut sent_at: Vec<HashMap<u64, Instant>> = vec![HashMap::new(); n_dev];
    let mut last: Vec<u64> = vec![0; n_dev];
    let mut base: Vec<Option<u64>> = vec![None; n_dev];
    let mut device_hist = new_histogram();
    let mut ack_hist = new_histogram();
    let (mut rounds, mut skipped, mut samples_acked, mut devices_lost) = (0, 0, 0, 0);
    let mut device_frames = ErrorCounts::default();
    for r in &device_results {
        report.errors.merge(&r.errors);
        device_frames.merge(&r.other_frames);
        rounds += r.rounds;
        skipped += r.rounds_skipped;
        samples_acked += r.samples_acked;
        devices_lost += u64::from(r.lost);
        for &us in &r.ack_us {
            ack_hist.saturating_record(us.max(1));
        }
        let Some(d) = r
            .user_id
            .as_ref()
            .and_then(|u| ready_devices.iter().find(|(_, id)| id == u).map(|x| x.0))
        else {
            continue;
        };
        base[d] = r.warmup_offset;
        for &(offset, sent, received) in &r.events {
            last[d] = last[d].max(offset);
            if let Some(s) = sent {
                sent_at[d].insert(offset, s);
                device_hist.saturating_record(((received - s).as_micros() as u64).max(1));
            }
        }
    }
    for r in dashes.iter().filter(|r| !r.stalled) {
        if let Some(h) = r.head {
            base[r.device] = Some(base[r.device].map_or(h, |b| b.min(h)));
        }
        for &(offset, _) in &r.events {
            last[r.device] = last[r.device].max(offset);
        }
    }

    let mut delivery = Delivery::default();
    let mut hist = new_histogram();
    let mut unmatched_deliveries = 0u64;
    let (mut subscribed, mut failed, mut lost) = (0u64, 0u64, 0u64);
    let (mut lagged, mut unsubscribed) = (0u64, 0u64);
    let (mut stalled_subscribed, mut stalled_lost) = (0u64, 0u64);
    let mut frames = ErrorCounts::default();
    let mut stalled_found = ErrorCounts::default();
    for r in &dashes {
        report.errors.merge(&r.errors);
        frames.merge(&r.other_frames);
        if r.stalled {
            stalled_subscribed += u64::from(r.head.is_some());
            stalled_lost += u64::from(r.lost);
            stalled_found.merge(&r.stalled_found);
            continue;
        }
        let Some(head) = r.head else {
            failed += 1;
            continue;
        };
        subscribed += 1;
        lost += u64::from(r.lost);
        lagged += r.lagged;
        unsubscribed += r.unsubscribed;
        let sent = &sent_at[r.device];
        check_delivery(
            head,
            last[r.device],
            &r.events,
            &mut delivery,
            |offset, received| match sent.get(&offset) {
                Some(&s) => hist.saturating_record(((received - s).as_micros() as u64).max(1)),
                None => unmatched_deliveries += 1,
            },
        );
    }
    let mut events = 0u64;
    let mut events_matched = 0u64;
    for d in 0..n_dev {
        if let Some(b) = base[d] {
            events += last[d].saturating_sub(b);
            events_matched += sent_at[d].keys().filter(|&&o| o > b).count() as u64;
        }
    }

    report
        .counts
        .set("devices_ready", ready_devices.len() as u64);
    report.counts.set("devices_lost", devices_lost);
    report
        .counts
        .set("shares_created", shares.created)
        .set("shares_existing", shares.existing)
        .set("rounds", rounds)
        .set("rounds_skipped", skipped)
        .set("samples_acked", samples_acked)
        .set("dashboards_target", m as u64)
        .set("dashboard_sessions_attempted", spawned as u64)
        .set("dashboards_subscribed", subscribed)
        .set("dashboards_failed", failed)
        .set("dashboards_lost", lost)
        .set("events", events)
        .set("events_matched", events_matched)
        .set("events_unmatched", events - events_matched.min(events))
        .set("expected_deliveries", delivery.expected)
        .set("delivered", delivery.delivered)
        .set("missing", delivery.missing)
        .set("duplicates", delivery.duplicates)
        .set("out_of_order", delivery.out_of_order)
        .set("unexpected_offsets", delivery.unexpected)
        .set("deliveries_without_latency", unmatched_deliveries)
        .set("lagged_notices", lagged)
        .set("unsubscribed_notices", unsubscribed);
    if k > 0 {
        report
            .counts
            .set("stalled_target", k as u64)
            .set("stalled_subscribed", stalled_subscribed)
            .set("stalled_closed_by_server", stalled_lost);
        stalled_found.copy_into(&mut report.counts);
    }
    frames.copy_into(&mut report.counts);
    device_frames.copy_into(&mut report.counts);
    let w = window_secs.max(1e-9);
    report
        .rates
        .set("connect_phase_s", r3(connect_secs))
        .set("window_s", r3(window_secs))
        .set("events_per_sec", r3(events as f64 / w))
        .set("deliveries_per_sec", r3(delivery.delivered as f64 / w));
    report.latency_ms = LatencyMs::from_us(&hist);
    if let Some(l) = LatencyMs::from_us(&device_hist) {
        report
            .extra_latency_ms
            .insert("device_own_insight".into(), l);
    }
    if let Some(l) = LatencyMs::from_us(&ack_hist) {
        report.extra_latency_ms.insert("samples_ack".into(), l);
    }
    report.notes.push(
        "latency: device sends analyze -> dashboard receives the insight event (healthy \
         dashboards only; stalled ones are in stalled_*)"
            .into(),
    );
    if pid.is_some() {
        let mut rss = Section::default();
        rss.set("before_dashboards", rss_before)
            .set("connected", rss_connected)
            .set("end", rss_end)
            .set("peak", rss_peak)
            .set("after", pid.and_then(read_rss));
        report.server_rss_bytes = Some(rss);
    }
    report.nothing_established = subscribed == 0;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_reads_routing_fields_first_and_skips_the_rest() {
        let text = r#"{"type":"insight","stream":"insights","user_id":"u1","offset":7,
            "insight_id":"i","user_id":"u1-doc","analysis_id":"a1",
            "key_points":["x"],"features":{"offset":99,"nested":{"type":"no"}}}"#;
        let f: Frame = serde_json::from_str(text).unwrap();
        assert_eq!(f.ty, "insight");
        assert_eq!(f.stream.as_deref(), Some("insights"));
        assert_eq!(f.user_id.as_deref(), Some("u1"));
        assert_eq!(f.offset, Some(7));
        assert_eq!(f.analysis_id.as_deref(), Some("a1"));
        let ack: Frame = serde_json::from_str(
            r#"{"type":"ack","seq":3,"accepted":10,"duplicates":0,"rejected":[{"index":1}]}"#,
        )
        .unwrap();
        assert_eq!(
            (ack.seq, ack.accepted, ack.rejected),
            (Some(3), Some(10), Some(1))
        );
        let null: Frame = serde_json::from_str(r#"{"type":"error","seq":null}"#).unwrap();
        assert_eq!(null.seq, None);
    }

    #[test]
    fn delivery_counts_missing_duplicates_and_order() {
        let t = Instant::now();
        let mut d = Delivery::default();
        let mut firsts = Vec::new();
        // head 2, last 7: expects 3..=7; 5 missing, 4 twice, 6 before 4, 1 and 9 unexpected.
        let events = [(3, t), (6, t), (4, t), (4, t), (7, t), (1, t), (9, t)];
        check_delivery(2, 7, &events, &mut d, |o, _| firsts.push(o));
        assert_eq!(
            d,
            Delivery {
                expected: 5,
                delivered: 4,
                missing: 1,
                duplicates: 1,
                out_of_order: 1,
                unexpected: 2,
            }
        );
        assert_eq!(firsts, [3, 6, 4, 7]);
    }
}
