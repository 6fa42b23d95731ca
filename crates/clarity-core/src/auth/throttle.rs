//! Login throttling: budgets for failed logins, per node and in memory.
//!
//! Rules:
//! - Two budgets, both spent by failed logins only:
//!   - per account and client address: `max_failures` failures are free; then each further
//!     attempt from that address must wait 1 s after the previous one, doubling with every
//!     further failure, at most `window`. The failures are forgotten `window` after the last.
//!     Only the addresses that failed wait, so an attacker elsewhere cannot lock the real
//!     user out of their account.
//!   - per client address over all accounts: a token bucket of `max_failures_per_ip` tokens
//!     refilling over `window`; while it is empty every login from that address waits. It
//!     bounds guessing across many accounts (and the argon2 work it costs us).
//! - An attempt is counted when it starts, so parallel guesses cannot slip past a budget,
//!   and given back when the password was right (which also clears that account's failures
//!   from that address) or when the server could not decide (store unavailable).
//! - Accounts are keyed by a per-process keyed hash of the normalised email: no address is
//!   kept, and none is logged.
//! - Per node and in memory: behind a load balancer each node counts on its own and a
//!   restart forgets. Idle entries are swept, so memory follows recent failures.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::time::Instant;

/// Wait after the first failure past the free ones; doubles per further failure.
const BASE_BACKOFF: Duration = Duration::from_secs(1);
/// Longest interval between sweeps of idle entries.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Which budget refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Account,
    Address,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Address => "ip",
        }
    }
}

/// An attempt refused: retry after `wait`.
#[derive(Debug, Clone, Copy)]
pub struct Throttled {
    pub scope: Scope,
    pub wait: Duration,
}

struct Failures {
    count: u32,
    /// No attempt from this address before then.
    until: Instant,
    last: Instant,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct LoginThrottle {
    max_failures: u32,
    per_ip: f64,
    window: Duration,
    hasher: std::collections::hash_map::RandomState,
    accounts: DashMap<(u64, IpAddr), Failures>,
    addresses: DashMap<IpAddr, Bucket>,
    swept: Mutex<Instant>,
}

/// A login attempt in progress. Dropping it without [`Attempt::succeeded`] or
/// [`Attempt::undecided`] leaves it counted as a failure.
#[must_use = "an attempt not settled counts as a failed login"]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    key: (u64, IpAddr),
}

impl LoginThrottle {
    pub fn new(max_failures: u32, max_failures_per_ip: u32, window: Duration) -> LoginThrottle {
        LoginThrottle {
            max_failures: max_failures.max(1),
            per_ip: f64::from(max_failures_per_ip.max(1)),
            window: window.max(Duration::from_millis(1)),
            hasher: Default::default(),
            accounts: DashMap::new(),
            addresses: DashMap::new(),
            swept: Mutex::new(Instant::now()),
        }
    }

    /// Starts an attempt to log in as `email` from `ip`, or says how long to wait.
    pub fn begin(&self, email: &str, ip: IpAddr) -> Result<Attempt<'_>, Throttled> {
        let now = Instant::now();
        self.sweep(now);
        let key = (
            self.hasher.hash_one(email.trim().to_lowercase().as_str()),
            ip,
        );
        self.take_token(ip, now)?;
        let locked = match self.accounts.entry(key) {
            Entry::Occupied(mut e) => {
                let f = e.get_mut();
                if now.duration_since(f.last) >= self.window {
                    *f = self.counted(1, now);
                    None
                } else if f.count >= self.max_failures && now < f.until {
                    Some(f.until - now)
                } else {
                    *f = self.counted(f.count + 1, now);
                    None
                }
            }
            Entry::Vacant(e) => {
                e.insert(self.counted(1, now));
                None
            }
        };
        if let Some(wait) = locked {
            self.give_token(ip);
            return Err(Throttled {
                scope: Scope::Account,
                wait,
            });
        }
        Ok(Attempt {
            throttle: self,
            key,
        })
    }

    /// The record after the `count`-th failure (counted now).
    fn counted(&self, count: u32, now: Instant) -> Failures {
        let until = match count.checked_sub(self.max_failures) {
            None => now,
            Some(over) => {
                now + BASE_BACKOFF
                    .saturating_mul(1 << over.min(20))
                    .min(self.window)
            }
        };
        Failures {
            count,
            until,
            last: now,
        }
    }

    fn take_token(&self, ip: IpAddr, now: Instant) -> Result<(), Throttled> {
        let rate = self.per_ip / self.window.as_secs_f64();
        let mut b = self.addresses.entry(ip).or_insert(Bucket {
            tokens: self.per_ip,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(self.per_ip);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        Err(Throttled {
            scope: Scope::Address,
            wait: Duration::from_secs_f64((1.0 - b.tokens) / rate),
        })
    }

    fn give_token(&self, ip: IpAddr) {
        if let Some(mut b) = self.addresses.get_mut(&ip) {
            b.tokens = (b.tokens + 1.0).min(self.per_ip);
        }
    }

    /// Drops what no longer holds anything back: account failures a window old, full buckets.
    fn sweep(&self, now: Instant) {
        {
            let mut swept = self.swept.lock().expect("throttle sweep lock");
            if now.duration_since(*swept) < SWEEP_EVERY.min(self.window) {
                return;
            }
            *swept = now;
        }
        let window = self.window;
        let rate = self.per_ip / window.as_secs_f64();
        self.accounts
            .retain(|_, f| now.duration_since(f.last) < window);
        self.addresses
            .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < self.per_ip);
    }
}

impl Attempt<'_> {
    /// The password was right: the attempt is given back and this address's failures for
    /// the account are forgotten.
    pub fn succeeded(self) {
        self.throttle.accounts.remove(&self.key);
        self.throttle.give_token(self.key.1);
    }

    /// No verdict (the store was unavailable): the attempt is given back.
    pub fn undecided(self) {
        if let Some(mut f) = self.throttle.accounts.get_mut(&self.key) {
            f.count = f.count.saturating_sub(1);
        }
        self.throttle.give_token(self.key.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn account_backoff_doubles_and_only_for_the_failing_address() {
        let t = LoginThrottle::new(3, 100, Duration::from_secs(900));
        let (attacker, user) = (ip("10.0.0.1"), ip("10.0.0.2"));
        for _ in 0..3 {
            drop(t.begin("Ann@example.com", attacker).unwrap());
        }
        let e = t.begin("ann@example.com ", attacker).err().unwrap();
        assert_eq!((e.scope, e.wait), (Scope::Account, Duration::from_secs(1)));
        // The real user, elsewhere, is not held back.
        t.begin("ann@example.com", user).unwrap().succeeded();
        // Other accounts from the attacker's address are not held back either.
        drop(t.begin("bob@example.com", attacker).unwrap());
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(t.begin("ann@example.com", attacker).unwrap());
        let e = t.begin("ann@example.com", attacker).err().unwrap();
        assert_eq!(e.wait, Duration::from_secs(2));
        tokio::time::advance(Duration::from_secs(2)).await;
        // Success clears the failures: three free ones again.
        t.begin("ann@example.com", attacker).unwrap().succeeded();
        for _ in 0..3 {
            drop(t.begin("ann@example.com", attacker).unwrap());
        }
        assert!(t.begin("ann@example.com", attacker).is_err());
        // A window after the last failure, everything is forgotten.
        tokio::time::advance(Duration::from_secs(900)).await;
        drop(t.begin("ann@example.com", attacker).unwrap());
        drop(t.begin("ann@example.com", attacker).unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn address_bucket_refills_over_the_window() {
        let t = LoginThrottle::new(100, 4, Duration::from_secs(60));
        let a = ip("10.0.0.1");
        for i in 0..4 {
            drop(t.begin(&format!("u{i}@example.com"), a).unwrap());
        }
        let e = t.begin("u9@example.com", a).err().unwrap();
        assert_eq!((e.scope, e.wait), (Scope::Address, Duration::from_secs(15)));
        // Successes and undecided attempts cost nothing.
        assert!(t.begin("u9@example.com", ip("10.0.0.2")).is_ok_and(|a| {
            a.succeeded();
            true
        }));
        tokio::time::advance(Duration::from_secs(15)).await;
        t.begin("u9@example.com", a).unwrap().undecided();
        t.begin("u9@example.com", a).unwrap().succeeded();
        drop(t.begin("u9@example.com", a).unwrap());
        assert!(t.begin("u9@example.com", a).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_entries_are_swept() {
        let t = LoginThrottle::new(3, 3, Duration::from_secs(10));
        drop(t.begin("a@example.com", ip("10.0.0.1")).unwrap());
        assert_eq!((t.accounts.len(), t.addresses.len()), (1, 1));
        tokio::time::advance(Duration::from_secs(11)).await;
        t.begin("b@example.com", ip("10.0.0.2"))
            .unwrap()
            .succeeded();
        // The new entries stay; the old ones are gone.
        assert_eq!(t.accounts.len(), 0);
        assert_eq!(t.addresses.len(), 1);
    }
}
