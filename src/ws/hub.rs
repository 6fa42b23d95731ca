//! Live sessions by user, so that server-initiated frames (analyses) reach every device a
//! user has connected to this node.
//!
//! Rules: a push never waits: it `try_send`s into each session's bounded outbound queue; a
//! session whose queue is full is told to close as a slow consumer (4009) instead of making
//! the pusher wait or dropping the frame silently.

use std::sync::Arc;

use axum::extract::ws::Message;
use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Clone)]
struct Entry {
    session: Uuid,
    out: mpsc::Sender<Message>,
    /// Cancelled when a push found the queue full.
    overflow: CancellationToken,
}

#[derive(Default)]
pub struct Hub {
    users: DashMap<Uuid, Vec<Entry>>,
}

/// Removes the session from the hub when dropped.
pub struct Registration {
    hub: Arc<Hub>,
    user: Uuid,
    session: Uuid,
    pub overflow: CancellationToken,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let empty = match self.hub.users.get_mut(&self.user) {
            Some(mut list) => {
                list.retain(|e| e.session != self.session);
                list.is_empty()
            }
            None => false,
        };
        if empty {
            self.hub
                .users
                .remove_if(&self.user, |_, list| list.is_empty());
        }
    }
}

impl Hub {
    pub fn register(
        self: &Arc<Self>,
        user: Uuid,
        session: Uuid,
        out: mpsc::Sender<Message>,
    ) -> Registration {
        let overflow = CancellationToken::new();
        self.users.entry(user).or_default().push(Entry {
            session,
            out,
            overflow: overflow.clone(),
        });
        Registration {
            hub: self.clone(),
            user,
            session,
            overflow,
        }
    }

    pub fn has_sessions(&self, user: Uuid) -> bool {
        self.users.get(&user).is_some_and(|l| !l.is_empty())
    }

    /// Queues `text` to every session of `user`; returns how many got it.
    pub fn push(&self, user: Uuid, text: &str) -> usize {
        let entries: Vec<Entry> = match self.users.get(&user) {
            Some(list) => list.clone(),
            None => return 0,
        };
        let mut sent = 0;
        for e in entries {
            match e.out.try_send(Message::Text(text.into())) {
                Ok(()) => sent += 1,
                Err(mpsc::error::TrySendError::Full(_)) => e.overflow.cancel(),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        sent
    }
}
