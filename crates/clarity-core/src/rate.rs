//! Rate limits (frames per session, samples per session and per user): a token bucket on
//! tokio's clock.
//!
//! Hand-written rather than `governor` because it must follow tokio's (pausable) clock, which
//! the tests use to check limits and heartbeats without sleeping.

use std::time::Duration;

use tokio::time::Instant;

/// A bucket's wait as the `retry_after_ms` a client is told: rounded up to the millisecond
/// (at least 1), so that a client waiting exactly that long is never refused again.
pub fn retry_after_ms(wait: Duration) -> u64 {
    u64::try_from(wait.as_micros().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

pub struct TokenBucket {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(per_sec: u32, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            per_sec: f64::from(per_sec.max(1)),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&mut self) -> Result<(), Duration> {
        self.try_take_n(1)
    }

    /// Takes `n` tokens at once, or none and says how long until `n` are available (`n`
    /// above the burst is capped to it, so a single request can always pass eventually).
    pub fn try_take_n(&mut self, n: usize) -> Result<(), Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        let n = (n as f64).min(self.burst);
        if self.tokens >= n {
            self.tokens -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((n - self.tokens) / self.per_sec))
        }
    }

    /// Whether the bucket has refilled completely (nothing to remember about its owner).
    pub fn is_full(&mut self) -> bool {
        self.try_take_n(0).is_ok() && self.tokens >= self.burst
    }

    /// Returns `n` tokens taken for work that did not happen after all.
    pub fn give_back(&mut self, n: usize) {
        self.tokens = (self.tokens + n as f64).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waiting_the_advertised_retry_after_is_always_enough() {
        // 3 per second: the wait for one token is 333.3 ms, which must be told as 334.
        let mut b = TokenBucket::new(3, 1);
        b.try_take().unwrap();
        let wait = b.try_take().unwrap_err();
        let told = retry_after_ms(wait);
        tokio::time::advance(Duration::from_millis(told)).await;
        b.try_take()
            .expect("a client that waited retry_after_ms is let in");
        assert_eq!(told, 334);
        assert_eq!(retry_after_ms(Duration::from_micros(10)), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refills_at_the_configured_rate() {
        let mut b = TokenBucket::new(10, 3);
        for _ in 0..3 {
            assert!(b.try_take().is_ok());
        }
        let wait = b.try_take().unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(b.try_take().is_ok());
        assert!(b.try_take().is_err());
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..3 {
            assert!(b.try_take().is_ok());
        }
        assert!(b.try_take().is_err());
    }
}
