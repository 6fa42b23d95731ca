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
//!
//! This file keeps the read loop and the ending; the session's sub-states live next to it:
//! `expiry` (token expiry and refresh), `pipeline` (batches in flight and their acks),
//! `subscriptions` (live streams) and `throttle` (frame and sample rates); how it closes is in
//! `end`.

mod end;
mod expiry;
mod pipeline;
mod subscriptions;
mod throttle;

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;
use uuid::Uuid;

use super::outbound::{self, Gone, Replies};
use crate::app::AppState;
use crate::auth::Verified;
use crate::metrics;
use crate::protocol::compressed::Inflate;
use crate::protocol::{
    self, Command, Frame, Limits, PROTOCOL_VERSION, Refusal, ServerFrame, encode,
};
use crate::rate;
use crate::streams::hub::Kick;
use end::{End, classify_read_error, inflated_too_big, kicked, too_big};
use expiry::Expiry;
use pipeline::Pipeline;
use subscriptions::Subscriptions;
use throttle::{Rate, Throttled};

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
struct Session {
    state: AppState,
    user: Uuid,
    /// The session's own replies (bounded; sending waits for room).
    replies: Replies,
    /// Where frames pushed to this session go (subscriptions, analyses it asked for).
    out: super::Outbound,
    /// This session in the hub, for pushed analyses; unregisters on drop.
    hub: crate::streams::hub::Registration,
    kill: Option<oneshot::Sender<CloseFrame>>,
    /// Frame and sample rates.
    rate: Rate,
    /// Batches on their way to the store, acked in frame order.
    pipeline: Pipeline,
    last_seen: Instant,
    /// When the access token expires, and the warning before it.
    expiry: Expiry,
    /// Live stream subscriptions.
    subs: Subscriptions,
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
    // Likewise an erasure between the token check and this registration.
    if state.auth.is_erased(verified.user_id) {
        hub.control.kick(Kick::Erased);
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
        rate: Rate::new(&cfg.limits),
        pipeline: Pipeline::new(cfg.limits.max_inflight_batches),
        last_seen: Instant::now(),
        expiry: Expiry::new(
            verified.expires_at,
            Duration::from_secs(cfg.auth.token_expiry_warning_secs),
        ),
        subs: Subscriptions::default(),
        origin,
    };
    let end = s.read_loop(&mut stream).await;
    let we_closed = matches!(end, End::Shutdown | End::Violation { .. });
    let reason = s.finish(end).await;
    // Subscription tasks hold the queue too: they must stop for the writer to finish.
    s.subs.cancel_all();
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
                Some(done) = self.pipeline.next(), if !self.pipeline.is_empty() => {
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
                () = self.expiry.timer() => {
                    if let Some(end) = self.on_expiry_timer().await {
                        return end;
                    }
                }
                msg = stream.next(), if self.pipeline.has_room() => {
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
        let max = self.state.config.limits.max_frame_bytes;
        let text = match msg {
            Message::Text(t) => t,
            // A compressed text frame (protocol/README.md, Compressed frames).
            Message::Binary(b) => match protocol::compressed::inflate(&b, max) {
                Ok(text) => Utf8Bytes::from(text),
                Err(Inflate::TooBig) => {
                    count_in("oversized");
                    return Ok(Some(inflated_too_big(b.len(), max)));
                }
                Err(e) => {
                    count_in("binary");
                    self.send(&Refusal::new(e.code(), e.to_string()).frame())
                        .await?;
                    return Ok(None);
                }
            },
            Message::Close(_) => return Ok(Some(End::PeerGone)),
            // Control frames only prove liveness; tungstenite answers pings itself.
            Message::Ping(_) | Message::Pong(_) => return Ok(None),
        };
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
        match self.rate.take_frame() {
            Ok(()) => {}
            Err(Throttled::Strikeout) => {
                count_in("rate_limited");
                return Ok(Some(End::Violation {
                    code: close::RATE_LIMITED,
                    error: "rate_limit_exceeded",
                    message: "kept sending after rate_limited errors".into(),
                }));
            }
            Err(Throttled::Wait(wait)) => {
                count_in("rate_limited");
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
        }
        count_in(inbound.label());
        // One trace per frame (not one per session, which could last for days), continuing
        // the client's when the frame names one.
        let span = tracing::info_span!(
            parent: None,
            "ws.frame",
            kind = inbound.label(),
            seq = inbound.seq,
            user_id = %self.user,
        );
        crate::otel::continue_trace(&span, inbound.traceparent.as_deref());
        let command = match inbound.command {
            Ok(c) => c,
            Err(refusal) => {
                self.send(&refusal.frame()).await?;
                return Ok(None);
            }
        };
        match command {
            Command::Samples { seq, samples } => {
                self.on_samples(seq, samples, &text, span).await?;
                Ok(None)
            }
            Command::Series { seq, series } => {
                self.on_series(seq, series, text.len(), span).await?;
                Ok(None)
            }
            Command::Delete { seq, ids } => {
                self.on_delete(seq, ids, span).await?;
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
                let _in = span.enter();
                self.on_analyze();
                Ok(None)
            }
            Command::Subscribe {
                stream,
                owner,
                since,
                epoch,
            } => {
                let owner = owner.unwrap_or(self.user);
                self.on_subscribe(owner, stream, since, epoch.map(|e| e.into_owned()))
                    .await?;
                Ok(None)
            }
            Command::Unsubscribe { stream, owner } => {
                let owner = owner.unwrap_or(self.user);
                self.on_unsubscribe(owner, stream).await?;
                Ok(None)
            }
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

fn count_in(kind: &'static str) {
    ::metrics::counter!(metrics::WS_FRAMES_IN, "type" => kind).increment(1);
}

fn count_out(kind: &'static str) {
    ::metrics::counter!(metrics::WS_FRAMES_OUT, "type" => kind).increment(1);
}
