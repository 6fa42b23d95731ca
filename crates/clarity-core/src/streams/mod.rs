//! Per-user document streams (`analyses`, `insights`): offsets, live fan-out and replay.
//! The change feed of a user's samples (stream `samples`) lives in [`feed`]: its offsets are
//! the store's change seqs, and its followers read the store instead of receiving events.
//!
//! Rules:
//! - Every new document becomes one event with the next offset of its (user, stream),
//!   allocated by the store (one place for every node), and the event is kept there for
//!   replay (`--stream-history` events per stream).
//! - Publishing never waits on a reader: each subscriber has a small bounded queue and gets
//!   events with `try_send`. A full queue marks the subscriber lagged and drops the event for
//!   it alone; the subscriber tells its client `lagged` with the last offset it delivered and
//!   the client resumes from there. Memory per subscriber is bounded by that queue (events are
//!   encoded once and shared, reference-counted bytes) plus its session's outbound queue.
//! - A caught-up subscriber is served without its task: while its task waits with an empty
//!   queue, the publisher puts the next event (offset `last + 1`) straight into the session's
//!   outbound queue, under the same room rule the task keeps (a quarter free). Anything else
//!   (no room, a hole, a duplicate after a hole) goes through the task's queue as before, and
//!   the publisher stops writing directly until the task has caught up again. The switch and
//!   every direct write happen under the subscriber's lane lock, which `SubShared::end` also
//!   takes: once `end` returns, nothing more of the subscription reaches the session queue.
//! - The user's own device sessions get their events through the hub without subscribing,
//!   unless they subscribed explicitly (then only the subscription delivers, in order).
//! - Authorisation is checked when subscribing, after the subscriber is registered (see
//!   `subscription`); revoking a share ends the matching live subscriptions at once on this
//!   node and, when the bus delivers, on the others: an event published after the revoke by
//!   the node that revoked reaches another node after the revoke does (the bus keeps one
//!   node's messages in order).
//! - [`FanOut`] is the handle that delivers (hub, subscribers, bus, store for offsets);
//!   whoever produces documents gets it instead of the app.
//! - Events reach the other nodes over the bus; a node that missed some (bus outage) fills the
//!   gap from the store when the next event arrives (see `subscription`).

mod fanout;
pub mod feed;
pub mod hub;
pub mod subscription;

pub use fanout::FanOut;

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::protocol::{Frame, Outbound};
use crate::store::DocKind;

/// One event as delivered: its offset and the frame, encoded once and shared by every
/// subscriber.
#[derive(Clone)]
pub struct Event {
    pub offset: u64,
    pub frame: Frame,
}

/// Why a subscription ended from outside its session.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EndReason {
    Requested = 1,
    Revoked = 2,
}

/// State shared between a subscriber's registry entry and its task.
pub struct SubShared {
    /// Set when an event could not be queued: the task reports `lagged` and ends.
    pub lagged: AtomicBool,
    /// 0 while live, else an [`EndReason`].
    pub ended: AtomicU8,
    pub cancel: CancellationToken,
    /// Who writes the next event: the publisher (direct) or the task. See the module's rules.
    lane: Mutex<Lane>,
}

/// A subscriber's delivery position, shared by its task and the publishers.
#[derive(Default)]
pub struct Lane {
    /// `Some` while the task waits caught up: publishers write here directly.
    direct: Option<Direct>,
    /// The last offset put into the session's queue.
    pub last: u64,
}

struct Direct {
    out: Outbound,
    /// Free slots the session keeps for its own frames.
    room: usize,
}

/// What [`SubShared::offer`] did with an event.
#[derive(Debug, PartialEq, Eq)]
enum Offered {
    /// Written into the session's queue, or skipped (already delivered, or ended).
    Done,
    /// Queued for the subscriber's task.
    Queued,
    /// The task's queue was full: the subscriber is lagged now.
    Lagged,
}

impl SubShared {
    pub fn new(cancel: CancellationToken) -> SubShared {
        SubShared {
            lagged: AtomicBool::new(false),
            ended: AtomicU8::new(0),
            cancel,
            lane: Mutex::new(Lane::default()),
        }
    }

    /// Ends the subscription; once this returns no publisher writes for it any more.
    pub fn end(&self, reason: EndReason) {
        {
            let mut lane = self.lane();
            let _ =
                self.ended
                    .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire);
            lane.direct = None;
        }
        self.cancel.cancel();
    }

    /// The lane, locked. Held only for a few non-blocking steps (never across an await).
    pub fn lane(&self) -> MutexGuard<'_, Lane> {
        // A panic while holding it cannot leave the lane inconsistent (two plain fields).
        self.lane.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// For the task, caught up at `last` with an empty queue: lets publishers write the next
    /// events straight into `out`. `false` (nothing changed) when an event is queued after
    /// all or the subscription ended.
    pub fn go_direct(
        &self,
        rx: &mpsc::Receiver<Event>,
        out: &Outbound,
        room: usize,
        last: u64,
    ) -> bool {
        let mut lane = self.lane();
        // Publishers queue only under this lock, so an empty queue stays empty until it is
        // released, by which time they see `direct`.
        if !rx.is_empty() || self.ended.load(Ordering::Acquire) != 0 {
            return false;
        }
        lane.last = last;
        lane.direct = Some(Direct {
            out: out.clone(),
            room,
        });
        true
    }

    /// Delivers `event` for a publisher: directly when the lane allows, else into the task's
    /// queue `tx`.
    fn offer(&self, tx: &mpsc::Sender<Event>, event: &Event) -> Offered {
        let mut guard = self.lane();
        let lane = &mut *guard;
        if self.ended.load(Ordering::Acquire) != 0 {
            return Offered::Done;
        }
        if let Some(direct) = &lane.direct {
            if event.offset <= lane.last {
                return Offered::Done;
            }
            if event.offset == lane.last + 1
                && let Ok(mut permits) = direct.out.try_reserve_many(direct.room)
                && let Some(permit) = permits.next()
            {
                permit.send(Box::new(event.frame.clone()));
                lane.last = event.offset;
                return Offered::Done;
            }
            // No room, a hole, or the session is gone: the task takes over from here.
            lane.direct = None;
        }
        match tx.try_send(event.clone()) {
            Ok(()) => Offered::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lagged.store(true, Ordering::Release);
                Offered::Lagged
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offered::Done,
        }
    }

    pub fn end_reason(&self) -> Option<EndReason> {
        match self.ended.load(Ordering::Acquire) {
            1 => Some(EndReason::Requested),
            2 => Some(EndReason::Revoked),
            _ => None,
        }
    }
}

struct Subscriber {
    id: u64,
    viewer: Uuid,
    tx: mpsc::Sender<Event>,
    shared: Arc<SubShared>,
}

pub struct Streams {
    subs: DashMap<(Uuid, DocKind), Vec<Subscriber>>,
    next_id: AtomicU64,
    /// Events kept per stream for replay.
    pub history: u64,
}

/// Removes a subscriber from the registry when dropped.
pub struct Registration {
    streams: Arc<Streams>,
    key: (Uuid, DocKind),
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let empty = match self.streams.subs.get_mut(&self.key) {
            Some(mut list) => {
                list.retain(|s| s.id != self.id);
                list.is_empty()
            }
            None => false,
        };
        if empty {
            self.streams
                .subs
                .remove_if(&self.key, |_, list| list.is_empty());
        }
    }
}

impl Streams {
    pub fn new(history: u64) -> Streams {
        Streams {
            subs: DashMap::new(),
            next_id: AtomicU64::new(1),
            history: history.max(1),
        }
    }

    pub fn register(
        self: &Arc<Self>,
        owner: Uuid,
        kind: DocKind,
        viewer: Uuid,
        tx: mpsc::Sender<Event>,
        shared: Arc<SubShared>,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.subs
            .entry((owner, kind))
            .or_default()
            .push(Subscriber {
                id,
                viewer,
                tx,
                shared,
            });
        Registration {
            streams: self.clone(),
            key: (owner, kind),
            id,
        }
    }

    /// Live subscribers on this node, all streams together.
    pub fn subscriber_count(&self) -> usize {
        self.subs.iter().map(|e| e.value().len()).sum()
    }

    /// Queues `event` to every subscriber of the stream without waiting.
    pub fn fan_out(&self, owner: Uuid, kind: DocKind, event: &Event) {
        let Some(list) = self.subs.get(&(owner, kind)) else {
            return;
        };
        for s in list.iter() {
            if s.shared.lagged.load(Ordering::Acquire) {
                continue;
            }
            if s.shared.offer(&s.tx, event) == Offered::Lagged {
                ::metrics::counter!(crate::metrics::STREAM_LAGGED).increment(1);
            }
        }
    }

    /// Ends `viewer`'s live subscriptions to `owner`'s stream of `kind` (a share was revoked).
    pub fn revoke(&self, owner: Uuid, viewer: Uuid, kind: DocKind) -> usize {
        let Some(list) = self.subs.get(&(owner, kind)) else {
            return 0;
        };
        let mut n = 0;
        for s in list.iter().filter(|s| s.viewer == viewer) {
            s.shared.end(EndReason::Revoked);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests;
