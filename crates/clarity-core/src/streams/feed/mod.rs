//! The change feed of a user's samples (stream `samples`): who is following it on this node,
//! and how they learn that there is something new.
//!
//! Rules:
//! - The store is the only source of the changes: a follower reads `Store::changes` after
//!   the last seq it delivered, never a payload carried by a notice. So a follower on any node,
//!   a resumed one and one that missed notices all read the same sequence, in order, without
//!   duplicates or holes.
//! - A write that changed something is announced with [`Feed::changed`] once the store has
//!   returned (durable): this node's followers of that user are woken at once, and the other
//!   nodes through the bus (`Message::SamplesChanged`), whose dispatcher calls [`Feed::poke`].
//! - A notice is a flag, not a queue: notices that arrive while a follower is busy merge into
//!   one wake-up, so a follower that stops reading holds only its own task and one page of
//!   changes, and never slows a writer. Its client is dropped by the session's write timeout.
//! - A node that may have missed bus messages (reconnect) wakes every follower
//!   ([`Feed::poke_all`]); a follower woken for nothing reads an empty page.
//! - A follower is registered before it reads the head, so no change falls between its
//!   replay and its live part.

mod position;
pub mod subscription;

pub use position::{InvalidToken, Position, RESYNC_REQUIRED, Resync, check_resume};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::bus::{Bus, Message};

/// What a follower is woken with: a permit that merges notices, and the highest head a notice
/// announced since it last looked (`UNKNOWN_HEAD` when a notice did not say).
#[derive(Default)]
pub struct Wake {
    notify: Notify,
    head: AtomicU64,
}

/// A notice whose sender did not know the new head: always worth a read.
const UNKNOWN_HEAD: u64 = u64::MAX;

impl Wake {
    fn poke(&self, head: Option<u64>) {
        self.head
            .fetch_max(head.unwrap_or(UNKNOWN_HEAD), Ordering::AcqRel);
        self.notify.notify_one();
    }

    /// Resolves at the next notice (at once if one came since the last call); returns the
    /// highest head announced since then.
    pub async fn notified(&self) -> u64 {
        self.notify.notified().await;
        self.head.swap(0, Ordering::AcqRel)
    }
}

/// This node's followers of change feeds, by user, and the bus to tell the other nodes.
/// Built once by the app and shared.
pub struct Feed {
    followers: DashMap<Uuid, Vec<(u64, Arc<Wake>)>>,
    next_id: AtomicU64,
    bus: Arc<dyn Bus>,
}

/// A follower's registration; dropping it unregisters.
pub struct Following {
    feed: Arc<Feed>,
    user: Uuid,
    id: u64,
    pub wake: Arc<Wake>,
}

impl Drop for Following {
    fn drop(&mut self) {
        let empty = match self.feed.followers.get_mut(&self.user) {
            Some(mut list) => {
                list.retain(|(id, _)| *id != self.id);
                list.is_empty()
            }
            None => false,
        };
        if empty {
            self.feed
                .followers
                .remove_if(&self.user, |_, list| list.is_empty());
        }
    }
}

impl Feed {
    pub fn new(bus: Arc<dyn Bus>) -> Feed {
        Feed {
            followers: DashMap::new(),
            next_id: AtomicU64::new(1),
            bus,
        }
    }

    /// Registers a follower of `user`'s changes on this node.
    pub fn follow(self: &Arc<Self>, user: Uuid) -> Following {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let wake = Arc::new(Wake::default());
        self.followers
            .entry(user)
            .or_default()
            .push((id, wake.clone()));
        Following {
            feed: self.clone(),
            user,
            id,
            wake,
        }
    }

    /// `user`'s samples changed (the write is durable), up to change seq `head` when the writer
    /// knows it: wakes the followers here and, over the bus, on the other nodes.
    pub fn changed(&self, user: Uuid, head: Option<u64>) {
        self.poke(user, head);
        self.bus.publish(Message::SamplesChanged { user, head });
    }

    /// Wakes this node's followers of `user` (a notice from another node).
    pub fn poke(&self, user: Uuid, head: Option<u64>) {
        if let Some(list) = self.followers.get(&user) {
            for (_, wake) in list.iter() {
                wake.poke(head);
            }
        }
    }

    /// Wakes every follower on this node: notices may have been lost.
    pub fn poke_all(&self) {
        for list in self.followers.iter() {
            for (_, wake) in list.iter() {
                wake.poke(None);
            }
        }
    }

    /// Followers on this node, all users together.
    pub fn follower_count(&self) -> usize {
        self.followers.iter().map(|e| e.value().len()).sum()
    }
}

/// Announces a write's changes to `user`'s feed, when there is a feed and the write changed
/// something (`head`: the last change seq it took, when known). The one call ingest makes.
pub fn announce(feed: Option<&Feed>, user: Uuid, changed: bool, head: Option<u64>) {
    if let (Some(feed), true) = (feed, changed) {
        feed.changed(user, head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::memory::{MemoryBus, Net};
    use std::time::Duration;

    fn feed() -> Arc<Feed> {
        Arc::new(Feed::new(Arc::new(MemoryBus::new(
            Uuid::new_v4(),
            Net::new(),
        ))))
    }

    async fn woken(wake: &Wake) -> Option<u64> {
        tokio::time::timeout(Duration::from_millis(50), wake.notified())
            .await
            .ok()
    }

    #[tokio::test]
    async fn notices_merge_into_one_wake_up_with_the_highest_head() {
        let feed = feed();
        let user = Uuid::new_v4();
        let f = feed.follow(user);
        feed.changed(user, Some(3));
        feed.changed(user, Some(7));
        feed.changed(user, Some(5));
        assert_eq!(woken(&f.wake).await, Some(7));
        assert_eq!(woken(&f.wake).await, None, "one wake-up for the three");
        feed.changed(user, None);
        feed.changed(user, Some(9));
        assert_eq!(woken(&f.wake).await, Some(UNKNOWN_HEAD));
    }

    #[tokio::test]
    async fn only_the_users_followers_are_woken_and_dropping_unregisters() {
        let feed = feed();
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        let a = feed.follow(user);
        let b = feed.follow(other);
        assert_eq!(feed.follower_count(), 2);
        feed.poke(user, Some(1));
        assert_eq!(woken(&a.wake).await, Some(1));
        assert_eq!(woken(&b.wake).await, None);
        feed.poke_all();
        assert!(woken(&a.wake).await.is_some());
        assert!(woken(&b.wake).await.is_some());
        drop(a);
        drop(b);
        assert_eq!(feed.follower_count(), 0);
        assert!(feed.followers.is_empty(), "no empty list is left behind");
    }

    #[tokio::test]
    async fn a_write_that_changed_nothing_is_not_announced() {
        let feed = feed();
        let user = Uuid::new_v4();
        let f = feed.follow(user);
        announce(Some(&feed), user, false, None);
        assert_eq!(woken(&f.wake).await, None);
        announce(Some(&feed), user, true, Some(2));
        assert_eq!(woken(&f.wake).await, Some(2));
    }
}
