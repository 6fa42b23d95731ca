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
    out: crate::protocol::Outbound,
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
    /// The account was erased (`DELETE /api/v1/user`).
    Erased,
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
        out: crate::protocol::Outbound,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Frame::from_encoded(text.to_string())
    }

    fn session(
        hub: &Arc<Hub>,
        user: Uuid,
        cap: usize,
        family: Option<Uuid>,
    ) -> (Registration, mpsc::Receiver<crate::protocol::Outgoing>) {
        let (tx, rx) = mpsc::channel(cap);
        (hub.register(user, Uuid::new_v4(), tx, family), rx)
    }

    #[test]
    fn dropping_a_registration_removes_only_that_session() {
        let hub = Arc::new(Hub::default());
        let user = Uuid::new_v4();
        let (a, _ra) = session(&hub, user, 4, None);
        let (b, _rb) = session(&hub, user, 4, None);
        assert_eq!(hub.session_count(user), 2);
        drop(a);
        assert_eq!(hub.session_count(user), 1);
        assert!(hub.has_sessions(user));
        drop(b);
        assert_eq!(hub.session_count(user), 0);
        assert!(!hub.has_sessions(user));
        assert!(hub.users.is_empty(), "no empty list is left behind");
    }

    #[test]
    fn push_reaches_every_session_of_the_user_and_no_one_else() {
        let hub = Arc::new(Hub::default());
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (_a, mut ra) = session(&hub, user, 4, None);
        let (_b, mut rb) = session(&hub, user, 4, None);
        let (_c, mut rc) = session(&hub, other, 4, None);
        assert_eq!(hub.push(user, &frame("{\"type\":\"x\"}")), 2);
        assert_eq!(ra.try_recv().unwrap().as_str(), "{\"type\":\"x\"}");
        assert_eq!(rb.try_recv().unwrap().as_str(), "{\"type\":\"x\"}");
        assert!(rc.try_recv().is_err());
        assert_eq!(hub.push(Uuid::new_v4(), &frame("{}")), 0);
    }

    #[test]
    fn a_full_queue_is_reported_as_overflow_and_others_still_get_the_frame() {
        let hub = Arc::new(Hub::default());
        let user = Uuid::new_v4();
        let (slow, _rs) = session(&hub, user, 1, None);
        let (fast, mut rf) = session(&hub, user, 4, None);
        assert_eq!(hub.push(user, &frame("1")), 2);
        assert!(!slow.overflow.is_cancelled());
        assert_eq!(hub.push(user, &frame("2")), 1);
        assert!(slow.overflow.is_cancelled(), "the full session is told");
        assert!(!fast.overflow.is_cancelled());
        assert_eq!(rf.try_recv().unwrap().as_str(), "1");
        assert_eq!(rf.try_recv().unwrap().as_str(), "2");
    }

    #[test]
    fn a_closed_queue_is_skipped_without_overflow() {
        let hub = Arc::new(Hub::default());
        let user = Uuid::new_v4();
        let (gone, rx) = session(&hub, user, 4, None);
        drop(rx);
        assert_eq!(hub.push(user, &frame("1")), 0);
        assert!(!gone.overflow.is_cancelled());
    }

    #[test]
    fn stream_events_skip_sessions_subscribed_to_that_stream_explicitly() {
        let hub = Arc::new(Hub::default());
        let user = Uuid::new_v4();
        let (explicit, mut re) = session(&hub, user, 4, None);
        let (_plain, mut rp) = session(&hub, user, 4, None);
        explicit.explicit[DocKind::Analysis.code() as usize].fetch_add(1, Ordering::AcqRel);
        assert_eq!(hub.push_event(user, DocKind::Analysis, &frame("a")), 1);
        assert!(re.try_recv().is_err());
        assert_eq!(rp.try_recv().unwrap().as_str(), "a");
        // Another stream still reaches it.
        assert_eq!(hub.push_event(user, DocKind::Insight, &frame("i")), 2);
        assert_eq!(re.try_recv().unwrap().as_str(), "i");
    }

    #[tokio::test]
    async fn logout_kicks_only_the_sessions_of_that_login() {
        let hub = Arc::new(Hub::default());
        let user = Uuid::new_v4();
        let (login, other_login) = (Uuid::new_v4(), Uuid::new_v4());
        let (a, _ra) = session(&hub, user, 4, Some(login));
        let (b, _rb) = session(&hub, user, 4, Some(other_login));
        assert_eq!(hub.kick_family(user, login), 1);
        assert_eq!(a.control.kicked().await, Kick::LoggedOut);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(1), b.control.kicked())
                .await
                .is_err(),
            "the other login's session stays"
        );
        // A refresh moved `b` to `login`: the next logout of it ends `b` too.
        b.control.set_family(Some(login));
        assert_eq!(hub.kick_family(user, login), 1, "`a` was already told");
        assert_eq!(b.control.kicked().await, Kick::LoggedOut);
    }

    #[tokio::test]
    async fn disconnect_kicks_every_session_of_the_user_once() {
        let hub = Arc::new(Hub::default());
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (a, _ra) = session(&hub, user, 4, Some(Uuid::new_v4()));
        let (b, _rb) = session(&hub, user, 4, None);
        let (c, _rc) = session(&hub, other, 4, None);
        assert_eq!(hub.kick_user(user, Kick::Disconnected), 2);
        assert_eq!(a.control.kicked().await, Kick::Disconnected);
        assert_eq!(b.control.kicked().await, Kick::Disconnected);
        assert!(!c.control.kicked.is_cancelled());
        assert_eq!(hub.kick_user(user, Kick::LoggedOut), 0, "already told");
        assert_eq!(
            a.control.kicked().await,
            Kick::Disconnected,
            "the first reason stays"
        );
    }
}
