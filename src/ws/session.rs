//! One device session: read frames, store batches, ack in order, keep the peer honest.
//!
//! Rules:
//! - Replies (acks, pongs, errors) go through a queue bounded in frames and bytes to a writer
//!   task; when it is full the session waits for room before reading on (TCP back-pressure on
//!   the client). Frames pushed from elsewhere never wait: a full push queue closes the session
//!   with 4009. A client that does not read its backlog within the write timeout is dropped
//!   (see `outbound.rs`). Nothing is lost: unacked batches are resent by the client.
//! - Up to `max_inflight_batches` batches wait for the store at once; acks leave in frame
//!   order, and batches reach the user's window in frame order too (`ingest::Turn`). At the
//!   limit the session stops reading, which pushes back through TCP.
//! - A recoverable problem gets an `error` frame; a protocol or auth violation gets an
//!   `error` frame and then a close frame with a documented code (protocol/README.md).
//! - On shutdown every batch already received is committed and acked before `going_away`.
//! - A session ended from outside (its login logged out: 4011; an administrator: 4012) also
//!   acks what it has in flight first, then sends an `error` frame saying why and closes.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;
use uuid::Uuid;

use super::hub::Kick;
use super::outbound::{self, Gone, Replies};
use super::rate::{self, TokenBucket};
use crate::app::AppState;
use crate::auth::{AccessError, Verified};
use crate::ingest::{self, IngestReport};
use crate::metrics;
use crate::protocol::{
    self, Command, ErrorFrame, Frame, Limits, PROTOCOL_VERSION, Refusal, STORE_RETRY_AFTER_MS,
    ServerFrame, encode,
};
use crate::store::{DocKind, StoreError};
use crate::streams::EndReason;
use crate::streams::subscription;
use crate::window::analysis::{self, Trigger};

/// Close codes (documented in protocol/README.md).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const TOO_BIG: u16 = 1009;
    pub const TOKEN_EXPIRED: u16 = 4001;
    pub const HEARTBEAT_TIMEOUT: u16 = 4002;
    pub const AUTH_INVALID: u16 = 4003;
    pub const RATE_LIMITED: u16 = 4008;
    pub const SLOW_CONSUMER: u16 = 4009;
    pub const LOGGED_OUT: u16 = 4011;
    pub const DISCONNECTED: u16 = 4012;
}

/// Longest the session waits for its writer to flush the final frames.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the peer's close reply after ours.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Suggested reconnect delay in `going_away`.
const RECONNECT_AFTER_MS: u64 = 1000;

type Pending = Pin<Box<dyn std::future::Future<Output = Completed> + Send>>;

struct Completed {
    seq: u64,
    received: Instant,
    result: Result<IngestReport, StoreError>,
}

/// Why the read loop ended.
enum End {
    /// The peer closed or vanished: nothing more can be sent.
    PeerGone,
    /// The server is shutting down.
    Shutdown,
    /// Close with this code after an explanatory `error` frame.
    Violation {
        code: u16,
        error: &'static str,
        message: String,
    },
    /// A push found the outbound queue full; the writer has been told to close.
    SlowConsumer,
}

struct Session {
    state: AppState,
    user: Uuid,
    /// The session's own replies (bounded; sending waits for room).
    replies: Replies,
    /// Where frames pushed to this session go (subscriptions, analyses it asked for).
    out: super::Outbound,
    /// This session in the hub, for pushed analyses; unregisters on drop.
    hub: super::hub::Registration,
    kill: Option<oneshot::Sender<CloseFrame>>,
    limiter: TokenBucket,
    /// Samples per second of this session.
    sample_limiter: TokenBucket,
    /// Consecutive frames refused by the rate limiter.
    strikes: u32,
    inflight: FuturesOrdered<Pending>,
    last_seen: Instant,
    /// Access token expiry, Unix seconds.
    token_exp: i64,
    /// The same expiry on tokio's clock, which the timers use.
    expire_at: Instant,
    warned: bool,
    expiry: Pin<Box<tokio::time::Sleep>>,
    /// Live stream subscriptions by watched user and stream.
    subs: HashMap<(Uuid, DocKind), subscription::Handle>,
    /// Parent of every subscription's token: the session's end ends them all.
    subs_cancel: tokio_util::sync::CancellationToken,
    /// Samples frames handed to the store, and those completed (acked or failed).
    submitted: u64,
    completed: u64,
    /// An `analyze` waiting for the batches sent before it: runs once `completed` reaches it.
    analyze_after: Option<u64>,
    /// Released once the last submitted batch is in the window: the next one waits for it,
    /// so the window sees batches in frame order whatever order the store finishes them in.
    window_turn: Option<oneshot::Receiver<()>>,
    /// Where the client connected from, for the audit entries of its subscriptions.
    origin: crate::audit::Origin,
}

pub async fn run(
    state: AppState,
    socket: WebSocket,
    verified: Verified,
    origin: crate::audit::Origin,
) {
    let session_id = Uuid::new_v4();
    let span = tracing::info_span!("ws", %session_id, user_id = %verified.user_id);
    async move {
        ::metrics::gauge!(metrics::WS_CONNECTIONS).increment(1.0);
        ::metrics::counter!(metrics::WS_SESSIONS_TOTAL).increment(1);
        tracing::debug!("session opened");
        let end = serve(state, socket, verified, session_id, origin).await;
        ::metrics::gauge!(metrics::WS_CONNECTIONS).decrement(1.0);
        tracing::debug!(reason = end, "session closed");
    }
    .instrument(span)
    .await
}

async fn serve(
    state: AppState,
    socket: WebSocket,
    verified: Verified,
    session_id: Uuid,
    origin: crate::audit::Origin,
) -> &'static str {
    let cfg = &state.config;
    let (sink, mut stream) = socket.split();
    let (out_tx, out_rx) = mpsc::channel(cfg.limits.outbound_queue.max(4));
    let (replies, replies_rx) = outbound::replies(
        cfg.limits.outbound_queue.max(4),
        cfg.limits.outbound_queue_bytes,
    );
    let (kill_tx, kill_rx) = oneshot::channel();

    let limits = Limits {
        max_frame_bytes: cfg.limits.max_frame_bytes,
        max_samples_per_frame: cfg.limits.max_samples_per_frame,
        max_frames_per_sec: cfg.limits.max_frames_per_sec,
        frame_burst: cfg.limits.frame_burst,
        max_inflight_batches: cfg.limits.max_inflight_batches.max(1),
    };
    // The writer starts with the welcome, before anything pushed (the hub, the bus) can
    // reach it: it must be the first frame the client reads.
    let welcome = ServerFrame::Welcome {
        protocol_version: PROTOCOL_VERSION,
        session_id,
        user_id: verified.user_id,
        server_time: protocol::now_rfc3339(),
        heartbeat_interval_ms: cfg.server.heartbeat_interval_ms,
        token_expires_at: protocol::unix_secs_rfc3339(verified.expires_at),
        limits: &limits,
    };
    count_out(welcome.type_name());
    let writer = state.sessions.spawn(outbound::write_loop(
        sink,
        text_message(encode(&welcome)),
        replies_rx,
        out_rx,
        kill_rx,
        cfg.limits.ws_write_timeout(),
    ));
    let hub = state.hub.register(
        verified.user_id,
        session_id,
        out_tx.clone(),
        verified.family,
    );
    // A logout between the token check and this registration found no session to close.
    if verified.family.is_some_and(|f| state.auth.is_ended(f)) {
        hub.control.kick(Kick::LoggedOut);
    }
    // The user's window is rebuilt from the store if this node has none (restart, another
    // node); the session does not wait for it.
    {
        let app = state.0.clone();
        let user = verified.user_id;
        state.sessions.spawn(async move {
            if let Err(e) = app.window_service.open_window(user).await {
                tracing::warn!(error = %e, "window rebuild failed; it is retried at the next session");
            }
        });
    }
    let mut s = Session {
        state: state.clone(),
        user: verified.user_id,
        replies,
        out: out_tx,
        hub,
        kill: Some(kill_tx),
        limiter: TokenBucket::new(cfg.limits.max_frames_per_sec, cfg.limits.frame_burst),
        sample_limiter: TokenBucket::new(
            cfg.limits.max_samples_per_sec,
            u32::try_from(
                (cfg.limits.max_samples_per_sec.saturating_mul(2) as usize)
                    .max(cfg.limits.max_samples_per_frame),
            )
            .unwrap_or(u32::MAX),
        ),
        strikes: 0,
        inflight: FuturesOrdered::new(),
        last_seen: Instant::now(),
        token_exp: verified.expires_at,
        expire_at: Instant::now(),
        warned: false,
        expiry: Box::pin(tokio::time::sleep(Duration::ZERO)),
        subs: HashMap::new(),
        subs_cancel: tokio_util::sync::CancellationToken::new(),
        submitted: 0,
        completed: 0,
        analyze_after: None,
        window_turn: None,
        origin,
    };
    s.schedule_expiry();
    let end = s.read_loop(&mut stream).await;
    let we_closed = matches!(end, End::Shutdown | End::Violation { .. });
    let reason = s.finish(end).await;
    // Subscription tasks hold the queue too: they must stop for the writer to finish.
    s.subs_cancel.cancel();
    // Dropping the queue lets the writer drain it and stop.
    drop(s);
    if we_closed {
        // Closing TCP while the peer's frames sit unread makes the kernel send a reset, which
        // can destroy our close frame in flight; so read until the peer answers the close.
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            while let Some(Ok(msg)) = stream.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    if tokio::time::timeout(FLUSH_TIMEOUT, writer).await.is_err() {
        tracing::debug!("writer did not finish flushing in time");
    }
    reason
}

impl Session {
    async fn read_loop(
        &mut self,
        stream: &mut futures_util::stream::SplitStream<WebSocket>,
    ) -> End {
        let state = self.state.clone();
        let cfg = &state.config;
        let shutdown = state.shutdown.clone();
        let interval = cfg.server.heartbeat_interval();
        let mut heartbeat = tokio::time::interval_at(Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let max_inflight = cfg.limits.max_inflight_batches.max(1);
        let overflow = self.hub.overflow.clone();
        let control = self.hub.control.clone();
        let writer_gone = self.replies.gone().clone();
        loop {
            tokio::select! {
                biased;
                () = writer_gone.cancelled() => return End::PeerGone,
                () = shutdown.cancelled() => return End::Shutdown,
                () = overflow.cancelled() => return End::SlowConsumer,
                why = control.kicked() => return kicked(why),
                Some(done) = self.inflight.next(), if !self.inflight.is_empty() => {
                    if self.complete(done).await.is_err() {
                        return End::PeerGone;
                    }
                }
                _ = heartbeat.tick() => {
                    if self.last_seen.elapsed() >= cfg.server.heartbeat_timeout() {
                        return End::Violation {
                            code: close::HEARTBEAT_TIMEOUT,
                            error: "heartbeat_timeout",
                            message: "no frame from the client within the heartbeat timeout".into(),
                        };
                    }
                    // With replies backed up the write timeout watches the peer instead.
                    self.replies.try_send(Message::Ping(Default::default()));
                }
                () = &mut self.expiry => {
                    if let Some(end) = self.on_expiry_timer().await {
                        return end;
                    }
                }
                msg = stream.next(), if self.inflight.len() < max_inflight => {
                    let msg = match msg {
                        None => return End::PeerGone,
                        Some(Err(e)) => return classify_read_error(e, cfg.limits.max_frame_bytes),
                        Some(Ok(m)) => m,
                    };
                    self.last_seen = Instant::now();
                    match self.on_message(msg).await {
                        Ok(None) => {}
                        Ok(Some(end)) => return end,
                        Err(Gone) => return End::PeerGone,
                    }
                }
            }
        }
    }

    /// Handles one incoming message; `Some` ends the session.
    async fn on_message(&mut self, msg: Message) -> Result<Option<End>, Gone> {
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => {
                count_in("binary");
                self.send(&ServerFrame::error(
                    "unsupported_frame",
                    "binary frames are not supported; send JSON text frames",
                ))
                .await?;
                return Ok(None);
            }
            Message::Close(_) => return Ok(Some(End::PeerGone)),
            // Control frames only prove liveness; tungstenite answers pings itself.
            Message::Ping(_) | Message::Pong(_) => return Ok(None),
        };
        let max = self.state.config.limits.max_frame_bytes;
        if text.len() > max {
            count_in("oversized");
            return Ok(Some(too_big(text.len(), max)));
        }
        let inbound = match protocol::parse(text.as_str()) {
            Ok(f) => f,
            Err(refusal) => {
                count_in("invalid");
                self.send(&refusal.frame()).await?;
                return Ok(None);
            }
        };
        if let Err(wait) = self.limiter.try_take() {
            count_in("rate_limited");
            self.strikes += 1;
            if self.strikes > self.state.config.limits.frame_burst {
                return Ok(Some(End::Violation {
                    code: close::RATE_LIMITED,
                    error: "rate_limit_exceeded",
                    message: "kept sending after rate_limited errors".into(),
                }));
            }
            let refusal = Refusal::new(
                "rate_limited",
                format!(
                    "too many frames; this `{}` frame was not processed: resend it after retry_after_ms",
                    protocol::command::truncate(inbound.ty.as_deref().unwrap_or("untyped"), 64)
                ),
            )
            .with_seq(inbound.seq)
            .retry_after(rate::retry_after_ms(wait));
            self.send(&refusal.frame()).await?;
            return Ok(None);
        }
        self.strikes = 0;
        count_in(inbound.label());
        let command = match inbound.command {
            Ok(c) => c,
            Err(refusal) => {
                self.send(&refusal.frame()).await?;
                return Ok(None);
            }
        };
        match command {
            Command::Samples { seq, samples } => {
                self.on_samples(seq, samples, &text).await?;
                Ok(None)
            }
            Command::Ping => {
                self.send(&ServerFrame::Pong {
                    server_time: protocol::now_rfc3339(),
                })
                .await?;
                Ok(None)
            }
            Command::Refresh { access_token } => self.on_refresh(&access_token).await,
            Command::Analyze => {
                // The analysis must see every batch sent before it: with batches still on
                // their way to the store, it starts when the last of them completes.
                if self.inflight.is_empty() {
                    self.analyze_now();
                } else {
                    self.analyze_after = Some(self.submitted);
                }
                Ok(None)
            }
            Command::Subscribe {
                kind,
                owner,
                since,
                epoch,
            } => {
                let owner = owner.unwrap_or(self.user);
                self.on_subscribe(owner, kind, since, epoch.map(|e| e.into_owned()))
                    .await?;
                Ok(None)
            }
            Command::Unsubscribe { kind, owner } => {
                let owner = owner.unwrap_or(self.user);
                self.on_unsubscribe(owner, kind).await?;
                Ok(None)
            }
        }
    }

    async fn on_samples(
        &mut self,
        seq: u64,
        list: Vec<&serde_json::value::RawValue>,
        text: &Utf8Bytes,
    ) -> Result<(), Gone> {
        let max = self.state.config.limits.max_samples_per_frame;
        if list.len() > max {
            return self
                .send(
                    &Refusal::new(
                        "too_many_samples",
                        format!("at most {max} samples per frame, got {}", list.len()),
                    )
                    .with_seq(Some(seq))
                    .frame(),
                )
                .await;
        }
        // Samples per second: this session's budget, then the user's on this node.
        let wait = match self.sample_limiter.try_take_n(list.len()) {
            Err(wait) => Some((
                wait,
                "session",
                self.state.config.limits.max_samples_per_sec,
            )),
            Ok(()) => match self.state.ingest.admit(self.user, list.len()) {
                Err(wait) => {
                    self.sample_limiter.give_back(list.len());
                    Some((
                        wait,
                        "user",
                        self.state.config.limits.max_user_samples_per_sec,
                    ))
                }
                Ok(()) => None,
            },
        };
        if let Some((wait, whose, per_sec)) = wait {
            count_in("rate_limited");
            let refusal = Refusal::new(
                "rate_limited",
                format!(
                    "more than {per_sec} samples per second for this {whose}; this batch was not stored"
                ),
            )
            .with_seq(Some(seq))
            .retry_after(rate::retry_after_ms(wait));
            return self.send(&refusal.frame()).await;
        }
        // Small frames are validated here; big ones on the blocking pool (re-read there from
        // the same bytes, which is cheap next to validating them).
        let work = if text.len() <= ingest::OFFLOAD_BYTES {
            Ok(ingest::prepare(&list))
        } else {
            Err(text.clone())
        };
        let app = self.state.0.clone();
        let user = self.user;
        let received = Instant::now();
        let turn = ingest::Turn::next(&mut self.window_turn);
        self.submitted += 1;
        self.inflight.push_back(
            async move {
                let prepared = match work {
                    Ok(p) => Ok(p),
                    Err(text) => ingest::off_runtime(move || prepare_frame(text.as_str()))
                        .await
                        .and_then(|p| p.ok_or_else(|| anyhow::anyhow!("frame changed on re-read")))
                        .map_err(StoreError::Other),
                };
                let result = match prepared {
                    Ok(p) => app.ingest.commit_in_turn(user, p, "ws", Some(turn)).await,
                    Err(e) => {
                        turn.pass().await;
                        Err(e)
                    }
                };
                Completed {
                    seq,
                    received,
                    result,
                }
            }
            .boxed(),
        );
        Ok(())
    }

    async fn on_subscribe(
        &mut self,
        owner: Uuid,
        kind: DocKind,
        since: Option<u64>,
        epoch: Option<String>,
    ) -> Result<(), Gone> {
        self.subs.retain(|_, h| !h.task.is_finished());
        // Subscribing again replaces the subscription (a client resuming from an offset).
        if let Some(old) = self.subs.remove(&(owner, kind)) {
            old.shared.end(EndReason::Requested);
        }
        let max = self.state.config.limits.max_subscriptions;
        if self.subs.len() >= max {
            return self
                .send(
                    &Refusal::new(
                        "too_many_subscriptions",
                        format!("at most {max} subscriptions per session"),
                    )
                    .frame(),
                )
                .await;
        }
        let req = subscription::Request {
            viewer: self.user,
            owner,
            kind,
            since,
            epoch,
            own: (owner == self.user).then(|| self.hub.explicit.clone()),
            origin: self.origin.clone(),
        };
        let handle = subscription::start(
            &self.state.subscriptions,
            req,
            self.out.clone(),
            self.subs_cancel.child_token(),
        );
        self.subs.insert((owner, kind), handle);
        Ok(())
    }

    async fn on_unsubscribe(&mut self, owner: Uuid, kind: DocKind) -> Result<(), Gone> {
        match self.subs.remove(&(owner, kind)) {
            Some(h) if !h.task.is_finished() => {
                h.shared.end(EndReason::Requested);
                let frame = ServerFrame::Unsubscribed {
                    kind,
                    user_id: owner,
                };
                count_out(frame.type_name());
                // Through the push queue, behind the events the subscription queued there:
                // nothing of it may follow `unsubscribed`.
                self.out
                    .send(Box::new(encode(&frame)))
                    .await
                    .map_err(|_| Gone)
            }
            _ => {
                self.send(
                    &Refusal::new(
                        "not_subscribed",
                        format!("no subscription to {owner}'s {} stream", kind.stream()),
                    )
                    .frame(),
                )
                .await
            }
        }
    }

    /// With Cognito this may wait for a key-set fetch (bounded by its timeout).
    async fn on_refresh(&mut self, token: &str) -> Result<Option<End>, Gone> {
        // Boxed: the check's future is large and rare; inline, every idle session would carry it.
        let checked = Box::pin(self.state.auth.verify_access(token)).await;
        match checked {
            Ok(v) if v.user_id == self.user => {
                // A logout of the new token's login must now end this session, not the old one's.
                self.hub.control.set_family(v.family);
                self.token_exp = v.expires_at;
                self.schedule_expiry();
                self.send(&ServerFrame::Refreshed {
                    expires_at: protocol::unix_secs_rfc3339(v.expires_at),
                })
                .await?;
                Ok(None)
            }
            Ok(_) => Ok(Some(End::Violation {
                code: close::AUTH_INVALID,
                error: "auth_invalid",
                message: "the refreshed token belongs to another user".into(),
            })),
            Err(AccessError::Token(e)) => Ok(Some(End::Violation {
                code: close::AUTH_INVALID,
                error: "auth_invalid",
                message: format!("refresh rejected: {e}"),
            })),
            // The token could not be checked now; the session keeps its current one.
            Err(e) => {
                let retry_after_ms = match e {
                    AccessError::Unavailable { retry_after } => retry_after.as_millis() as u64,
                    _ => STORE_RETRY_AFTER_MS,
                };
                let refusal = Refusal::new(
                    "auth_unavailable",
                    "the token cannot be checked now; send the refresh again later",
                )
                .retry_after(retry_after_ms.max(1000));
                self.send(&refusal.frame()).await?;
                Ok(None)
            }
        }
    }

    /// Converts the token's wall-clock expiry to tokio's clock once and arms the warning.
    fn schedule_expiry(&mut self) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let left = self
            .token_exp
            .saturating_mul(1000)
            .saturating_sub(now_ms)
            .max(0);
        let now = Instant::now();
        self.expire_at = now + Duration::from_millis(left as u64);
        self.warned = false;
        let warning = Duration::from_secs(self.state.config.auth.token_expiry_warning_secs);
        let warn_at = self.expire_at.checked_sub(warning).unwrap_or(now).max(now);
        self.expiry.as_mut().reset(warn_at);
    }

    async fn on_expiry_timer(&mut self) -> Option<End> {
        let now = Instant::now();
        if self.warned || now >= self.expire_at {
            return Some(End::Violation {
                code: close::TOKEN_EXPIRED,
                error: "token_expired",
                message: "access token expired; reconnect with a fresh token".into(),
            });
        }
        self.warned = true;
        let frame = ServerFrame::TokenExpiring {
            expires_at: protocol::unix_secs_rfc3339(self.token_exp),
            expires_in_ms: (self.expire_at - now).as_millis() as u64,
        };
        if self.send(&frame).await.is_err() {
            return Some(End::PeerGone);
        }
        self.expiry.as_mut().reset(self.expire_at);
        None
    }

    /// The result reaches every session of the user as an `analysis` frame.
    fn analyze_now(&mut self) {
        analysis::spawn(
            &self.state.pipeline,
            self.user,
            Trigger::Request,
            None,
            Some(self.out.clone()),
        );
    }

    async fn complete(&mut self, done: Completed) -> Result<(), Gone> {
        self.completed += 1;
        if self.analyze_after.is_some_and(|n| self.completed >= n) {
            self.analyze_after = None;
            self.analyze_now();
        }
        match done.result {
            Ok(report) => {
                ::metrics::histogram!(metrics::ACK_LATENCY_SECONDS)
                    .record(done.received.elapsed().as_secs_f64());
                self.send(&ServerFrame::Ack {
                    seq: done.seq,
                    accepted: report.accepted,
                    duplicates: report.duplicates,
                    rejected: &report.rejected,
                    rejected_omitted: report.rejected_omitted,
                })
                .await
            }
            Err(e) => {
                let failure = protocol::store_failure(&e, "batch not stored");
                // Resending is the answer to both: an ack is owed either way.
                let refusal = Refusal::new(
                    failure.code,
                    "samples were not stored; resend this batch later",
                )
                .with_seq(Some(done.seq))
                .retry_after(STORE_RETRY_AFTER_MS);
                self.send(&refusal.frame()).await
            }
        }
    }

    /// Ends the session according to `end`; returns a label for the log.
    async fn finish(&mut self, end: End) -> &'static str {
        match end {
            End::PeerGone => {
                // Batches already handed to the store still complete there; the peer cannot
                // hear the acks and will resend (idempotently).
                "peer_gone"
            }
            End::SlowConsumer => {
                self.kill_with(close::SLOW_CONSUMER, "slow consumer");
                count_close("slow_consumer");
                "slow_consumer"
            }
            End::Shutdown => {
                if self.drain().await.is_err() {
                    return "peer_gone";
                }
                let frame = ServerFrame::GoingAway {
                    reason: "server shutting down",
                    reconnect_after_ms: RECONNECT_AFTER_MS,
                };
                self.send_final(&frame, close::GOING_AWAY, "server shutting down")
                    .await;
                count_close("going_away");
                "shutdown"
            }
            End::Violation {
                code,
                error,
                message,
            } => {
                if self.drain().await.is_err() {
                    return "peer_gone";
                }
                tracing::info!(code, error, "closing session");
                let frame = ServerFrame::Error(ErrorFrame {
                    code: error,
                    message: message.into(),
                    seq: None,
                    retry_after_ms: None,
                });
                self.send_final(&frame, code, error).await;
                count_close(error);
                error
            }
        }
    }

    /// Waits for every batch in flight and sends its ack.
    async fn drain(&mut self) -> Result<(), Gone> {
        while let Some(done) = self.inflight.next().await {
            self.complete(done).await?;
        }
        Ok(())
    }

    async fn send_final(&mut self, frame: &ServerFrame<'_>, code: u16, reason: &'static str) {
        count_out(frame.type_name());
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        for msg in [text_message(encode(frame)), close] {
            if tokio::time::timeout(FLUSH_TIMEOUT, self.replies.send(msg))
                .await
                .map_or(true, |r| r.is_err())
            {
                return;
            }
        }
    }

    fn kill_with(&mut self, code: u16, reason: &'static str) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            });
        }
    }

    /// Queues a reply, waiting (and so not reading) while the replies queue is full.
    async fn send(&mut self, frame: &ServerFrame<'_>) -> Result<(), Gone> {
        count_out(frame.type_name());
        self.replies.send(text_message(encode(frame))).await
    }
}

/// The edge: our encoded frame as the WebSocket library's text message. The bytes are
/// shared, not copied (`Utf8Bytes` only checks that they are UTF-8).
pub(super) fn text_message(frame: Frame) -> Message {
    Message::Text(Utf8Bytes::try_from(frame.bytes().clone()).expect("frames are UTF-8"))
}

/// Validates the samples of an already checked `samples` frame (re-read from its text on
/// the blocking pool: the parsed list borrows the text and cannot travel there).
fn prepare_frame(text: &str) -> Option<ingest::Prepared> {
    match protocol::parse(text).ok()?.command.ok()? {
        Command::Samples { samples, .. } => Some(ingest::prepare(&samples)),
        _ => None,
    }
}

/// How a session ended from outside closes.
fn kicked(why: Kick) -> End {
    match why {
        Kick::LoggedOut => End::Violation {
            code: close::LOGGED_OUT,
            error: "logged_out",
            message: "this login was ended (logout); sign in again".into(),
        },
        Kick::Disconnected => End::Violation {
            code: close::DISCONNECTED,
            error: "disconnected",
            message: "an administrator ended this session".into(),
        },
    }
}

fn too_big(len: usize, max: usize) -> End {
    End::Violation {
        code: close::TOO_BIG,
        error: "frame_too_large",
        message: format!("frame of {len} bytes exceeds max_frame_bytes {max}"),
    }
}

fn classify_read_error(e: axum::Error, max: usize) -> End {
    match e.into_inner().downcast::<tungstenite::Error>() {
        Ok(e) => match *e {
            tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong {
                size,
                ..
            }) => too_big(size, max),
            e => {
                tracing::debug!(error = %e, "read failed");
                End::PeerGone
            }
        },
        Err(e) => {
            tracing::debug!(error = %e, "read failed");
            End::PeerGone
        }
    }
}

fn count_in(kind: &'static str) {
    ::metrics::counter!(metrics::WS_FRAMES_IN, "type" => kind).increment(1);
}

fn count_out(kind: &'static str) {
    ::metrics::counter!(metrics::WS_FRAMES_OUT, "type" => kind).increment(1);
}

fn count_close(reason: &'static str) {
    ::metrics::counter!(metrics::WS_CLOSES, "reason" => reason).increment(1);
}
