//! A session's way out: the replies it owes, the frames pushed to it, and the writer task
//! that puts both on the socket.
//!
//! Rules:
//! - Replies (acks, pongs, errors) answer what the session read. They queue bounded in frames
//!   (`--outbound-queue`) and in bytes (`--outbound-queue-bytes`); when either is full the
//!   session waits for room before it reads on, so a client that pipelines frames is slowed
//!   by TCP back-pressure instead of being closed, and one that does not read costs at most
//!   the budget.
//! - Pushed frames (analyses, insights, stream events) come from elsewhere and never wait: a
//!   full push queue closes the session as a slow consumer (4009, see `hub.rs`).
//! - Each queue keeps its order; the writer prefers replies and otherwise interleaves them.
//! - The write timeout bounds the backlog, not one write: once output has waited for the
//!   socket for `--ws-write-timeout-ms` without the writer ever catching up, the connection
//!   is dropped. A client that reads a trickle cannot stretch it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// The writer is gone (the peer vanished or the write timeout dropped it): nothing more can
/// be sent.
#[derive(Debug)]
pub struct Gone;

/// The sending side of a session's replies.
pub struct Replies {
    tx: mpsc::Sender<Reply>,
    budget: Arc<Semaphore>,
    max_bytes: usize,
    gone: CancellationToken,
}

/// A queued reply; its share of the byte budget returns when it is dropped (written).
pub struct Reply {
    msg: Message,
    ticket: Ticket,
}

struct Ticket {
    _permit: OwnedSemaphorePermit,
    bytes: usize,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        ::metrics::gauge!(metrics::WS_OUTBOUND_BYTES).decrement(self.bytes as f64);
    }
}

/// The receiving side, for [`write_loop`].
pub struct RepliesRx {
    rx: mpsc::Receiver<Reply>,
    gone: CancellationToken,
}

/// A replies queue of at most `frames` frames and `max_bytes` bytes.
pub fn replies(frames: usize, max_bytes: usize) -> (Replies, RepliesRx) {
    let max_bytes = max_bytes.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let (tx, rx) = mpsc::channel(frames.max(1));
    let gone = CancellationToken::new();
    let replies = Replies {
        tx,
        budget: Arc::new(Semaphore::new(max_bytes)),
        max_bytes,
        gone: gone.clone(),
    };
    (replies, RepliesRx { rx, gone })
}

impl Replies {
    /// Queues `msg`, waiting while the queue is full (in frames or bytes).
    pub async fn send(&self, msg: Message) -> Result<(), Gone> {
        let cost = self.cost(&msg);
        let queue = async {
            let permit = self
                .budget
                .clone()
                .acquire_many_owned(cost)
                .await
                .map_err(|_| Gone)?;
            self.tx
                .send(Reply::new(msg, permit))
                .await
                .map_err(|_| Gone)
        };
        tokio::select! {
            biased;
            () = self.gone.cancelled() => Err(Gone),
            r = queue => r,
        }
    }

    /// Queues `msg` if there is room now; `false` when there is not (or the writer is gone).
    pub fn try_send(&self, msg: Message) -> bool {
        let Ok(permit) = self.budget.clone().try_acquire_many_owned(self.cost(&msg)) else {
            return false;
        };
        self.tx.try_send(Reply::new(msg, permit)).is_ok()
    }

    /// Cancelled once the writer has stopped.
    pub fn gone(&self) -> &CancellationToken {
        &self.gone
    }

    /// Bytes of the budget `msg` takes: its size, at most the whole budget (so that one large
    /// reply still fits, alone).
    fn cost(&self, msg: &Message) -> u32 {
        message_len(msg).clamp(1, self.max_bytes) as u32
    }
}

impl Reply {
    fn new(msg: Message, permit: OwnedSemaphorePermit) -> Reply {
        let bytes = message_len(&msg);
        ::metrics::gauge!(metrics::WS_OUTBOUND_BYTES).increment(bytes as f64);
        Reply {
            msg,
            ticket: Ticket {
                _permit: permit,
                bytes,
            },
        }
    }
}

fn message_len(msg: &Message) -> usize {
    match msg {
        Message::Text(t) => t.len(),
        Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
        Message::Close(c) => 2 + c.as_ref().map_or(0, |c| c.reason.len()),
    }
}

/// Owns the socket's sending half: writes `first`, then queued frames in order; a kill
/// request jumps the queues (a push found its queue full). Stops when both queues are closed,
/// after a close frame, when the peer is gone, or when the backlog outlives `timeout`.
pub async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    first: Message,
    replies: RepliesRx,
    mut pushed: mpsc::Receiver<super::Outgoing>,
    mut kill: oneshot::Receiver<CloseFrame>,
    timeout: Duration,
) {
    let RepliesRx {
        rx: mut replies,
        gone,
    } = replies;
    // The session learns of any exit here, so it stops waiting for room in the queue.
    let _gone = gone.drop_guard();
    // When the output began to wait: reset only once everything queued has been written.
    let mut behind_since: Option<Instant> = None;
    let mut next = Some((first, None));
    // A oneshot must not be polled again once it resolved (the session may drop its sender).
    let mut kill_armed = true;
    loop {
        let (msg, ticket) = match next.take() {
            Some(m) => m,
            None => {
                if replies.is_empty() && pushed.is_empty() {
                    behind_since = None;
                }
                tokio::select! {
                    biased;
                    res = &mut kill, if kill_armed => {
                        kill_armed = false;
                        match res {
                            Ok(frame) => (Message::Close(Some(frame)), None),
                            Err(_) => continue,
                        }
                    }
                    Some(r) = replies.recv() => (r.msg, Some(r.ticket)),
                    Some(m) = pushed.recv() => (super::session::text_message(*m), None),
                    else => break,
                }
            }
        };
        let deadline = *behind_since.get_or_insert_with(Instant::now) + timeout;
        let is_close = matches!(msg, Message::Close(_));
        match tokio::time::timeout_at(deadline, sink.send(msg)).await {
            Ok(Ok(())) if !is_close => drop(ticket),
            Ok(Ok(())) => {
                // Flushes what tungstenite still holds; bounded by the same deadline.
                let _ = tokio::time::timeout_at(deadline, sink.close()).await;
                return;
            }
            Ok(Err(_)) => {
                // Most often the peer closed first and this frame came too late: the close
                // reply tungstenite still holds must go out, or the peer sees a bare FIN.
                let _ = tokio::time::timeout_at(deadline, sink.close()).await;
                return;
            }
            Err(_) => {
                // Waiting longer for a peer that does not read only holds memory: drop it.
                tracing::debug!("write timeout: the client did not read its backlog in time");
                ::metrics::counter!(metrics::WS_CLOSES, "reason" => "write_timeout").increment(1);
                return;
            }
        }
    }
    let deadline = behind_since.unwrap_or_else(Instant::now) + timeout;
    let _ = tokio::time::timeout_at(deadline, sink.close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Message {
        Message::Text("x".repeat(n).into())
    }

    #[tokio::test]
    async fn replies_are_bounded_in_bytes_and_in_frames() {
        let (tx, mut rx) = replies(64, 10_000);
        assert!(tx.try_send(text(6_000)));
        // 6,000 of 10,000 bytes are queued: 5,000 more do not fit, 4,000 do.
        assert!(!tx.try_send(text(5_000)));
        assert!(tx.try_send(text(4_000)));
        assert!(!tx.try_send(text(1)));
        // A waiting sender gets room once the writer has taken (written) a reply.
        let waiting = tokio::spawn(async move {
            tx.send(text(5_000)).await.unwrap();
            tx
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(rx.rx.recv().await.unwrap());
        let tx = waiting.await.unwrap();
        // A reply larger than the whole budget still goes, alone.
        drop(rx.rx.recv().await.unwrap());
        drop(rx.rx.recv().await.unwrap());
        assert!(tx.try_send(text(50_000)));
        assert!(!tx.try_send(text(1)));

        let (tx, _rx) = replies(2, 10_000);
        assert!(tx.try_send(text(1)));
        assert!(tx.try_send(text(1)));
        assert!(!tx.try_send(text(1)), "at most 2 frames");
    }

    #[tokio::test]
    async fn a_sender_waiting_for_room_learns_that_the_writer_is_gone() {
        let (tx, rx) = replies(1, 10_000);
        assert!(tx.try_send(text(1)));
        let waiting = tokio::spawn(async move { tx.send(text(1)).await });
        tokio::task::yield_now().await;
        rx.gone.cancel();
        assert!(waiting.await.unwrap().is_err());
    }
}
