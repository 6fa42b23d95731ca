//! Live sessions by user, so that server-initiated frames (analyses) reach every device a
//! user has connected to this node.
//!
//! Rules: a push never waits: it `try_send`s into each session's bounded outbound queue; a
//! session whose queue is full is told to close as a slow consumer (4009) instead of making
//! the pusher wait or dropping the frame silently. Sessions are ended from outside the same
//! way, by a token their loop watches ([`Control`]): a logout ends those of one login (4011),
//! an administrator all of a user's (4012); the session still acks what it has in flight.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::protocol::Frame;
use crate::store::DocKind;

#[derive(Clone)]
struct Entry {
    session: Uuid,
    out: super::Outbound,
    /// Cancelled when a push found the queue full.
    overflow: CancellationToken,
    /// Explicit subscriptions of this session to its own streams, by `DocKind::code`: their
    /// events come through the subscription, in order, not through the hub.
    explicit: Explicit,
    control: Arc<Control>,
}

/// Why a session is ended from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// The login its token belongs to was ended by a logout.
    LoggedOut,
    /// An administrator disconnected the user.
    Disconnected,
}

/// What others may know and do about a live session: its login, and ending it.
#[derive(Default)]
pub struct Control {
    /// The refresh-token family of the session's current access token (`None`: Cognito).
    family: Mutex<Option<Uuid>>,
    kicked: CancellationToken,
    why: OnceLock<Kick>,
}

impl Control {
    /// Tells the session to close; `false` when it had been told already.
    pub fn kick(&self, why: Kick) -> bool {
        let first = self.why.set(why).is_ok();
        self.kicked.cancel();
        first
    }

    /// Resolves once the session is told to close, with the reason.
    pub async fn kicked(&self) -> Kick {
        self.kicked.cancelled().await;
        *self.why.get().unwrap_or(&Kick::Disconnected)
    }

    /// The session's token was replaced (in-band refresh), maybe by another login's.
    pub fn set_family(&self, family: Option<Uuid>) {
        *self.family.lock().expect("session family lock") = family;
    }

    fn family(&self) -> Option<Uuid> {
        *self.family.lock().expect("session family lock")
    }
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
    pub explicit: Explicit,
    pub control: Arc<Control>,
}

/// Counts of a session's explicit subscriptions to its own streams, by `DocKind::code`.
pub type Explicit = Arc<[AtomicU32; 3]>;

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
        out: super::Outbound,
        family: Option<Uuid>,
    ) -> Registration {
        let overflow = CancellationToken::new();
        let explicit: Explicit = Arc::new(Default::default());
        let control = Arc::new(Control::default());
        control.set_family(family);
        self.users.entry(user).or_default().push(Entry {
            session,
            out,
            overflow: overflow.clone(),
            explicit: explicit.clone(),
            control: control.clone(),
        });
        Registration {
            hub: self.clone(),
            user,
            session,
            overflow,
            explicit,
            control,
        }
    }

    /// Live sessions of `user` on this node.
    pub fn session_count(&self, user: Uuid) -> usize {
        self.users.get(&user).map_or(0, |l| l.len())
    }

    /// Tells every session of `user` on this node to close; returns how many were told.
    pub fn kick_user(&self, user: Uuid, why: Kick) -> usize {
        self.kick_where(user, why, |_| true)
    }

    /// Tells the sessions of `user` whose token belongs to login `family` to close (4011).
    pub fn kick_family(&self, user: Uuid, family: Uuid) -> usize {
        self.kick_where(user, Kick::LoggedOut, |c| c.family() == Some(family))
    }

    fn kick_where(&self, user: Uuid, why: Kick, pick: impl Fn(&Control) -> bool) -> usize {
        let controls: Vec<Arc<Control>> = match self.users.get(&user) {
            Some(list) => list.iter().map(|e| e.control.clone()).collect(),
            None => return 0,
        };
        controls
            .iter()
            .filter(|c| pick(c))
            .filter(|c| c.kick(why))
            .count()
    }

    pub fn has_sessions(&self, user: Uuid) -> bool {
        self.users.get(&user).is_some_and(|l| !l.is_empty())
    }

    /// Queues `frame` to every session of `user`; returns how many got it.
    pub fn push(&self, user: Uuid, frame: &Frame) -> usize {
        self.push_where(user, frame, |_| true)
    }

    /// Queues a stream event to the user's sessions that did not subscribe to that stream
    /// explicitly.
    pub fn push_event(&self, user: Uuid, kind: DocKind, frame: &Frame) -> usize {
        let i = kind.code() as usize;
        self.push_where(user, frame, |e| e.explicit[i].load(Ordering::Acquire) == 0)
    }

    fn push_where(&self, user: Uuid, frame: &Frame, keep: impl Fn(&Entry) -> bool) -> usize {
        let entries: Vec<Entry> = match self.users.get(&user) {
            Some(list) => list.iter().filter(|e| keep(e)).cloned().collect(),
            None => return 0,
        };
        let mut sent = 0;
        for e in entries {
            match e.out.try_send(Box::new(frame.clone())) {
                Ok(()) => sent += 1,
                Err(mpsc::error::TrySendError::Full(_)) => e.overflow.cancel(),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        sent
    }
}
