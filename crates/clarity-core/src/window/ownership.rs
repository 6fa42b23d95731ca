//! Which node owns a user's window: the holder of the user's lease on the bus.
//!
//! Rules:
//! - Only the owner applies samples to its window and runs the analyses that completed days
//!   start; other nodes store samples and forward them to the owner over the bus. So a day
//!   is scored once, whichever node the samples arrived on.
//! - A node claims a user's lease when it has a session or samples for a user nobody owns,
//!   renews its leases every quarter period while it keeps the window, and releases them when
//!   the window is dropped or the node stops. A dead node's leases expire; the next node
//!   with samples or a session for the user claims it.
//! - A node that just became owner rebuilds the window from the store (everything acked is
//!   there), so no minute is lost in a hand-over.
//! - When the bus is down, a node acts as the owner of what it sees (single-node behaviour);
//!   when it returns, leases are claimed again and owned windows are rebuilt.
//! - Answers are cached locally (owned: until half the lease has passed; elsewhere: briefly),
//!   so ingest does not ask Redis for every batch.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;
use uuid::Uuid;

use crate::bus::Bus;

/// How long "another node owns it" is believed before asking again.
const ELSEWHERE_FOR: Duration = Duration::from_secs(1);

/// The answer to "who owns this window?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This node; `fresh` when it did not own it a moment ago (rebuild the window).
    Owner { fresh: bool },
    /// Another node holds the lease.
    Elsewhere,
}

pub struct Ownership {
    bus: Arc<dyn Bus>,
    ttl: Duration,
    /// Users this node owns, with the time until which that is taken for granted.
    owned: DashMap<Uuid, Instant>,
    /// Users another node owned when last asked, until when that is believed.
    elsewhere: DashMap<Uuid, Instant>,
}

impl Ownership {
    pub fn new(bus: Arc<dyn Bus>, ttl: Duration) -> Ownership {
        Ownership {
            bus,
            ttl: ttl.max(Duration::from_millis(100)),
            owned: DashMap::new(),
            elsewhere: DashMap::new(),
        }
    }

    /// The lease period; renewals run every quarter of it.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether this node owns `user`'s window, as far as it knows without asking.
    pub fn owns(&self, user: Uuid) -> bool {
        self.owned.contains_key(&user)
    }

    /// Users this node owns.
    pub fn owned(&self) -> Vec<Uuid> {
        self.owned.iter().map(|e| *e.key()).collect()
    }

    /// Who owns `user`'s window, claiming it if nobody does.
    pub async fn claim(&self, user: Uuid) -> Claim {
        let now = Instant::now();
        if self.owned.get(&user).is_some_and(|until| *until > now) {
            return Claim::Owner { fresh: false };
        }
        if self.elsewhere.get(&user).is_some_and(|until| *until > now) {
            return Claim::Elsewhere;
        }
        match self.bus.claim(&[user], self.ttl).await {
            Ok(held) if held.first() == Some(&true) => {
                self.elsewhere.remove(&user);
                // Whoever inserts first is the one that saw the hand-over (and rebuilds).
                let was_owner = self
                    .owned
                    .insert(user, Instant::now() + self.ttl / 2)
                    .is_some();
                if !was_owner {
                    ::metrics::counter!(crate::metrics::LEASES_CLAIMED).increment(1);
                }
                Claim::Owner { fresh: !was_owner }
            }
            Ok(_) => {
                self.owned.remove(&user);
                self.elsewhere.insert(user, Instant::now() + ELSEWHERE_FOR);
                Claim::Elsewhere
            }
            Err(_) => {
                // Alone until the bus returns: act as the owner of what this node sees, and
                // ask again a little later rather than at every batch.
                let was_owner = self
                    .owned
                    .insert(user, Instant::now() + self.ttl / 4)
                    .is_some();
                Claim::Owner { fresh: !was_owner }
            }
        }
    }

    /// Renews the leases of owned users that `keep` still wants and releases the others.
    /// Returns the users whose lease another node holds now (their windows must go).
    pub async fn renew(&self, keep: impl Fn(Uuid) -> bool) -> Vec<Uuid> {
        let (kept, dropped): (Vec<Uuid>, Vec<Uuid>) =
            self.owned().into_iter().partition(|u| keep(*u));
        if !dropped.is_empty() {
            for u in &dropped {
                self.owned.remove(u);
            }
            let _ = self.bus.release(&dropped).await;
        }
        let mut lost = Vec::new();
        for chunk in kept.chunks(500) {
            match self.bus.claim(chunk, self.ttl).await {
                Ok(held) => {
                    let until = Instant::now() + self.ttl / 2;
                    for (u, h) in chunk.iter().zip(held) {
                        if h {
                            if let Some(mut e) = self.owned.get_mut(u) {
                                *e = until;
                            }
                        } else {
                            self.owned.remove(u);
                            lost.push(*u);
                        }
                    }
                }
                // Keep acting as owner; claims retry once the cached answers lapse.
                Err(_) => break,
            }
        }
        ::metrics::gauge!(crate::metrics::LEASES).set(self.owned.len() as f64);
        self.elsewhere.retain(|_, until| *until > Instant::now());
        lost
    }

    /// Gives every lease back (shutdown), so another node can take over at once.
    pub async fn release_all(&self) {
        let users = self.owned();
        self.owned.clear();
        for chunk in users.chunks(500) {
            if self.bus.release(chunk).await.is_err() {
                break;
            }
        }
    }
}
