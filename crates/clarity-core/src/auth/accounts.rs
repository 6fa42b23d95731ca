//! Which accounts are known to exist: a small cache in front of the store, so that checking
//! the account behind every authenticated request costs a store read at most once per
//! account and TTL.
//!
//! Rules:
//! - Only positive answers are kept, each for [`ACCOUNT_TTL`]: an account removed from the
//!   store is refused on every node within that time, at once on a node that forgets it
//!   ([`AccountCache::forget`], for account erasure).
//! - Bounded: past [`MAX_ENTRIES`] expired entries are swept, and if that is not enough the
//!   cache starts over (one store read per active user follows).
//! - An account being erased is marked ([`AccountCache::erase`]): refused whatever the cache
//!   or the store says, until [`ACCOUNT_TTL`] after the mark (by then no positive answer read
//!   before the erasure is left on any node that heard of it; the store answers for itself).

use std::time::{Duration, Instant};

use dashmap::DashMap;
use uuid::Uuid;

/// How long an account seen in the store is taken to exist without asking again.
pub const ACCOUNT_TTL: Duration = Duration::from_secs(30);

/// Accounts remembered at most (an entry is ~40 bytes).
const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
pub struct AccountCache {
    /// Account id and when its entry was made.
    seen: DashMap<Uuid, Instant>,
    /// Accounts being erased, and when the mark was made.
    erased: DashMap<Uuid, Instant>,
}

impl AccountCache {
    /// Whether `id` was seen in the store less than [`ACCOUNT_TTL`] ago.
    pub fn is_fresh(&self, id: Uuid) -> bool {
        self.seen
            .get(&id)
            .is_some_and(|at| at.elapsed() < ACCOUNT_TTL)
    }

    /// Notes that the store has `id` now.
    pub fn remember(&self, id: Uuid) {
        if self.seen.len() >= MAX_ENTRIES {
            self.seen.retain(|_, at| at.elapsed() < ACCOUNT_TTL);
            if self.seen.len() >= MAX_ENTRIES {
                self.seen.clear();
            }
        }
        self.seen.insert(id, Instant::now());
    }

    /// Drops what is known of `id`: its next request asks the store.
    pub fn forget(&self, id: Uuid) {
        self.seen.remove(&id);
    }

    /// Marks `id` as being erased: refused from now on (see the module rules).
    pub fn erase(&self, id: Uuid) {
        self.seen.remove(&id);
        if self.erased.len() >= MAX_ENTRIES {
            self.erased.retain(|_, at| at.elapsed() < ACCOUNT_TTL);
        }
        self.erased.insert(id, Instant::now());
    }

    /// Takes back [`AccountCache::erase`] (the erasure failed).
    pub fn unerase(&self, id: Uuid) {
        self.erased.remove(&id);
    }

    /// Whether `id` was marked erased less than [`ACCOUNT_TTL`] ago.
    pub fn is_erased(&self, id: Uuid) -> bool {
        self.erased
            .get(&id)
            .is_some_and(|at| at.elapsed() < ACCOUNT_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets() {
        let cache = AccountCache::default();
        let id = Uuid::new_v4();
        assert!(!cache.is_fresh(id));
        cache.remember(id);
        assert!(cache.is_fresh(id));
        cache.forget(id);
        assert!(!cache.is_fresh(id));
    }

    #[test]
    fn erased_accounts_are_refused_until_unerased() {
        let cache = AccountCache::default();
        let id = Uuid::new_v4();
        cache.remember(id);
        cache.erase(id);
        assert!(cache.is_erased(id));
        assert!(!cache.is_fresh(id));
        cache.unerase(id);
        assert!(!cache.is_erased(id));
    }

    #[test]
    fn entries_expire() {
        let cache = AccountCache::default();
        let id = Uuid::new_v4();
        let old = Instant::now().checked_sub(ACCOUNT_TTL + Duration::from_secs(1));
        if let Some(old) = old {
            cache.seen.insert(id, old);
            assert!(!cache.is_fresh(id));
        }
    }
}
