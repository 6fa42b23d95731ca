//! Token expiry of one session: a `token_expiring` warning before the access token runs out,
//! a 4001 close when it does, and the in-band `refresh` that moves both.
//!
//! Rules:
//! - The token's wall-clock expiry is converted to tokio's clock once per token: every
//!   session timer then follows tokio's (pausable) clock, which the tests rely on.
//! - One warning per token. The timer fires first at the warning time, then at expiry; a
//!   refresh re-arms both.
//! - A refreshed token of another user, or an invalid one, closes the session (4003); a token
//!   that cannot be checked now keeps the current one and the client is told to retry.
//! - A refresh moves the session to the new token's login, so that logging that login out
//!   ends this session.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::{End, Gone, Session, close};
use crate::auth::AccessError;
use crate::protocol::{self, Refusal, STORE_RETRY_AFTER_MS, ServerFrame};

pub(super) struct Expiry {
    /// Access token expiry, Unix seconds.
    token_exp: i64,
    /// The same expiry on tokio's clock, which the timers use.
    expire_at: Instant,
    warned: bool,
    timer: Pin<Box<Sleep>>,
    /// How long before expiry the warning goes out.
    warning: Duration,
}

impl Expiry {
    pub(super) fn new(token_exp: i64, warning: Duration) -> Expiry {
        let mut expiry = Expiry {
            token_exp,
            expire_at: Instant::now(),
            warned: false,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            warning,
        };
        expiry.schedule(token_exp);
        expiry
    }

    /// The timer to wait on: due at the warning, then at expiry.
    pub(super) fn timer(&mut self) -> &mut Pin<Box<Sleep>> {
        &mut self.timer
    }

    /// Converts the token's wall-clock expiry to tokio's clock once and arms the warning.
    fn schedule(&mut self, token_exp: i64) {
        self.token_exp = token_exp;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let left = self
            .token_exp
            .saturating_mul(1000)
            .saturating_sub(now_ms)
            .max(0);
        let now = Instant::now();
        self.expire_at = now + Duration::from_millis(left as u64);
        self.warned = false;
        let warn_at = self
            .expire_at
            .checked_sub(self.warning)
            .unwrap_or(now)
            .max(now);
        self.timer.as_mut().reset(warn_at);
    }
}

impl Session {
    /// With Cognito this may wait for a key-set fetch (bounded by its timeout).
    pub(super) async fn on_refresh(&mut self, token: &str) -> Result<Option<End>, Gone> {
        // Boxed: the check's future is large and rare; inline, every idle session would carry it.
        let checked = Box::pin(self.state.auth.verify_access(token)).await;
        match checked {
            Ok(v) if v.user_id == self.user => {
                // A logout of the new token's login must now end this session, not the old one's.
                self.hub.control.set_family(v.family);
                self.expiry.schedule(v.expires_at);
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

    /// The timer fired: warn once, then end the session at expiry.
    pub(super) async fn on_expiry_timer(&mut self) -> Option<End> {
        let now = Instant::now();
        if self.expiry.warned || now >= self.expiry.expire_at {
            return Some(End::Violation {
                code: close::TOKEN_EXPIRED,
                error: "token_expired",
                message: "access token expired; reconnect with a fresh token".into(),
            });
        }
        self.expiry.warned = true;
        let frame = ServerFrame::TokenExpiring {
            expires_at: protocol::unix_secs_rfc3339(self.expiry.token_exp),
            expires_in_ms: (self.expiry.expire_at - now).as_millis() as u64,
        };
        if self.send(&frame).await.is_err() {
            return Some(End::PeerGone);
        }
        let expire_at = self.expiry.expire_at;
        self.expiry.timer.as_mut().reset(expire_at);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix_now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// How far ahead of now the timer is due.
    fn due_in(expiry: &mut Expiry) -> Duration {
        expiry.timer().deadline() - Instant::now()
    }

    #[tokio::test(start_paused = true)]
    async fn the_warning_is_due_the_warning_period_before_expiry() {
        let mut expiry = Expiry::new(unix_now() + 600, Duration::from_secs(60));
        // The token's expiry is whole seconds: up to one second less than 600 s is left.
        let due = due_in(&mut expiry);
        assert!(
            due > Duration::from_secs(538) && due <= Duration::from_secs(540),
            "{due:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_closer_to_expiry_than_the_warning_is_warned_at_once() {
        let mut expiry = Expiry::new(unix_now() + 10, Duration::from_secs(60));
        assert_eq!(due_in(&mut expiry), Duration::ZERO);
        let mut expired = Expiry::new(unix_now() - 10, Duration::from_secs(60));
        assert_eq!(due_in(&mut expired), Duration::ZERO);
        assert!(expired.expire_at <= Instant::now(), "already expired");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_moves_the_warning_and_allows_a_new_one() {
        let mut expiry = Expiry::new(unix_now() + 10, Duration::from_secs(60));
        expiry.warned = true;
        expiry.schedule(unix_now() + 3600);
        assert!(!expiry.warned, "the new token gets its own warning");
        assert!(due_in(&mut expiry) > Duration::from_secs(3538));
    }
}
