//! Rate state of one session: frames per second (with strikes) and samples per second.
//!
//! Rules:
//! - Every parsed frame takes a frame token; a refused frame is not processed and the client
//!   is told when to resend it (`rate_limited` with `retry_after_ms`).
//! - A client that keeps sending through `rate_limited` errors (more refusals in a row than
//!   the burst) is closed with 4008: it is not honouring the protocol. Any accepted frame
//!   clears the strikes.
//! - Samples are limited per session here, and per user on this node by `ingest::admit`; a
//!   batch refused by the user's budget gives the session's tokens back, since nothing was
//!   stored.
//!
//! The buckets themselves are `rate::TokenBucket` (tokio's clock, so paused-time tests
//! can check them).

use std::time::Duration;

use crate::config::LimitsConfig;
use crate::rate::TokenBucket;

/// Why a frame was refused.
#[derive(Debug)]
pub(super) enum Throttled {
    /// Resend after this long.
    Wait(Duration),
    /// Too many refusals in a row: close the session.
    Strikeout,
}

pub(super) struct Rate {
    frames: TokenBucket,
    /// Samples per second of this session.
    samples: TokenBucket,
    /// Consecutive frames refused by the frame limiter.
    strikes: u32,
    /// Refusals in a row tolerated before closing.
    max_strikes: u32,
}

impl Rate {
    pub(super) fn new(limits: &LimitsConfig) -> Rate {
        Rate {
            frames: TokenBucket::new(limits.max_frames_per_sec, limits.frame_burst),
            // Two seconds' worth, and at least one full frame, so a legal frame always fits.
            samples: TokenBucket::new(
                limits.max_samples_per_sec,
                u32::try_from(
                    (limits.max_samples_per_sec.saturating_mul(2) as usize)
                        .max(limits.max_samples_per_frame),
                )
                .unwrap_or(u32::MAX),
            ),
            strikes: 0,
            max_strikes: limits.frame_burst,
        }
    }

    /// Takes a token for one frame.
    pub(super) fn take_frame(&mut self) -> Result<(), Throttled> {
        match self.frames.try_take() {
            Ok(()) => {
                self.strikes = 0;
                Ok(())
            }
            Err(wait) => {
                self.strikes += 1;
                if self.strikes > self.max_strikes {
                    Err(Throttled::Strikeout)
                } else {
                    Err(Throttled::Wait(wait))
                }
            }
        }
    }

    /// Takes `n` tokens of the session's sample budget, or says how long to wait.
    pub(super) fn take_samples(&mut self, n: usize) -> Result<(), Duration> {
        self.samples.try_take_n(n)
    }

    /// Returns sample tokens for a batch that was refused after all.
    pub(super) fn give_back_samples(&mut self, n: usize) {
        self.samples.give_back(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_sec: u32, burst: u32) -> Rate {
        let mut limits = crate::config::Config::for_tests("/nonexistent").limits;
        limits.max_frames_per_sec = per_sec;
        limits.frame_burst = burst;
        Rate::new(&limits)
    }

    #[tokio::test(start_paused = true)]
    async fn strikes_out_only_after_more_refusals_in_a_row_than_the_burst() {
        let mut r = rate(1, 2);
        assert!(r.take_frame().is_ok());
        assert!(r.take_frame().is_ok());
        // Two refusals (the burst) are tolerated, the third closes.
        assert!(matches!(r.take_frame(), Err(Throttled::Wait(_))));
        assert!(matches!(r.take_frame(), Err(Throttled::Wait(_))));
        assert!(matches!(r.take_frame(), Err(Throttled::Strikeout)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_accepted_frame_clears_the_strikes() {
        let mut r = rate(1, 2);
        r.take_frame().unwrap();
        r.take_frame().unwrap();
        assert!(matches!(r.take_frame(), Err(Throttled::Wait(_))));
        assert!(matches!(r.take_frame(), Err(Throttled::Wait(_))));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(r.take_frame().is_ok());
        assert!(matches!(r.take_frame(), Err(Throttled::Wait(_))));
        assert!(matches!(r.take_frame(), Err(Throttled::Wait(_))));
        assert!(matches!(r.take_frame(), Err(Throttled::Strikeout)));
    }
}
