//! How a session ends: why the read loop stopped, and what the client hears then.
//!
//! Rules:
//! - A peer that is gone hears nothing; batches already handed to the store still complete
//!   there, and the client resends what it did not see acked (idempotently).
//! - Every other end first drains the pipeline (every batch received is acked), then sends
//!   one final frame (`going_away` on shutdown, an `error` naming the rule otherwise) and a
//!   close frame with the documented code (protocol/README.md).
//! - A slow consumer cannot be drained through its full queue: the writer is told to close
//!   with 4009 at once.
//! - The final frames wait at most `FLUSH_TIMEOUT` for room: a peer that does not read is not
//!   waited for.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};

use super::{FLUSH_TIMEOUT, Session, close, count_out, text_message};
use crate::metrics;
use crate::protocol::{ErrorFrame, ServerFrame, encode};
use crate::streams::hub::Kick;

/// Suggested reconnect delay in `going_away`.
const RECONNECT_AFTER_MS: u64 = 1000;

/// Why the read loop ended.
pub(super) enum End {
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

impl Session {
    /// Ends the session according to `end`; returns a label for the log.
    pub(super) async fn finish(&mut self, end: End) -> &'static str {
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
}

/// How a session ended from outside closes.
pub(super) fn kicked(why: Kick) -> End {
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
        // The tokens of an erased account are refused like those of an ended login.
        Kick::Erased => End::Violation {
            code: close::LOGGED_OUT,
            error: "account_erased",
            message: "this account was erased (DELETE /api/v1/user); its tokens no longer work"
                .into(),
        },
    }
}

pub(super) fn too_big(len: usize, max: usize) -> End {
    End::Violation {
        code: close::TOO_BIG,
        error: "frame_too_large",
        message: format!("frame of {len} bytes exceeds max_frame_bytes {max}"),
    }
}

/// A compressed frame whose text is over the limit (`len`: the compressed size).
pub(super) fn inflated_too_big(len: usize, max: usize) -> End {
    End::Violation {
        code: close::TOO_BIG,
        error: "frame_too_large",
        message: format!("compressed frame of {len} bytes inflates past max_frame_bytes {max}"),
    }
}

pub(super) fn classify_read_error(e: axum::Error, max: usize) -> End {
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

fn count_close(reason: &'static str) {
    ::metrics::counter!(metrics::WS_CLOSES, "reason" => reason).increment(1);
}
