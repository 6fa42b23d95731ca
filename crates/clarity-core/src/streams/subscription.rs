//! One live subscription of a session: authorise, replay what the client missed, then
//! forward live events in offset order.
//!
//! Rules:
//! - Registered before the grant is checked, deliveries held back until it passes: a share
//!   deleted before the check is seen by it (a strongly consistent read), one deleted after
//!   finds the registration when the revoke ends live subscriptions (here, or on another node
//!   when the bus delivers `Revoked`). Checking first and registering after would let a
//!   revoke in between find nothing and the subscription outlive it.
//! - Registered before the stream head is read, so no event falls between replay and live.
//! - Sends into the session's outbound queue only while a quarter of it is free, so acks,
//!   pongs and heartbeats always find room; a reader that stops reading holds this task, not
//!   the publisher, and its events beyond the small per-subscription queue are dropped and
//!   reported as `lagged`.
//! - Caught up (its queue empty), the task hands the lane to the publishers, which write the
//!   next events into the session's queue themselves under the same room rule (one task hop
//!   less per delivery; see `streams`); the first event they cannot write that way comes
//!   back through the queue and the task goes on from the lane's last offset.
//! - Subscribing to another user's stream is recorded in their audit log before anything of
//!   the stream is sent (one entry per subscribe); when it cannot be recorded the client gets
//!   `store_unavailable` instead.
//! - Offsets reach the client strictly increasing: duplicates are skipped and a hole (an event
//!   published out of order, on another task or node) is filled from the store.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::{EndReason, Event, Streams, SubShared};
use crate::audit::AuditLog;
use crate::protocol::{self, Frame, Outbound, ServerFrame, encode};
use crate::store::{DocKind, Store, StoreError, StreamEvent};

/// Events waiting for one subscriber's task before it counts as lagged.
const QUEUE: usize = 32;
/// Longest wait to tell the client a subscription ended.
const FINAL_SEND: Duration = Duration::from_secs(5);

/// What the client asked for.
pub struct Request {
    pub viewer: Uuid,
    pub owner: Uuid,
    pub kind: DocKind,
    pub since: Option<u64>,
    pub epoch: Option<String>,
    /// For a session's own stream: its hub counters, so the hub stops pushing what this
    /// subscription delivers.
    pub own: Option<crate::streams::hub::Explicit>,
    /// Where the viewer connected from, for the owner's audit log.
    pub origin: crate::audit::Origin,
}

/// Holds one count in a session's explicit-subscription counters.
struct OwnGuard(crate::streams::hub::Explicit, usize);

impl Drop for OwnGuard {
    fn drop(&mut self) {
        self.0[self.1].fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// What subscriptions use: the registry of live subscribers, the store (grants, replay,
/// filling gaps), the audit log (subscribing to another user's stream is recorded) and the
/// task tracker the subscription tasks run on. Built once by the app and shared.
pub struct Subscriptions {
    pub streams: Arc<Streams>,
    /// Followers of change feeds (stream `samples`), woken when a user's samples change.
    pub feed: Arc<super::feed::Feed>,
    pub store: Arc<dyn Store>,
    pub audit: AuditLog,
    pub sessions: TaskTracker,
}

/// The session's side of a subscription task.
pub struct Handle {
    pub shared: Arc<SubShared>,
    pub task: tokio::task::JoinHandle<()>,
}

pub fn start(
    subs: &Arc<Subscriptions>,
    req: Request,
    out: Outbound,
    cancel: tokio_util::sync::CancellationToken,
) -> Handle {
    let shared = Arc::new(SubShared::new(cancel));
    let task = subs
        .sessions
        .spawn(run(subs.clone(), req, out, shared.clone()));
    Handle { shared, task }
}

/// Free slots of the session's queue a subscription leaves for the session's own frames.
fn room(out: &Outbound) -> usize {
    out.max_capacity() / 4 + 1
}

/// Sends while leaving room for the session's own frames; `false` when the session is gone
/// or the subscription was cancelled.
pub(super) async fn send(out: &Outbound, shared: &SubShared, frame: Frame) -> bool {
    tokio::select! {
        biased;
        () = shared.cancel.cancelled() => false,
        permits = out.reserve_many(room(out)) => match permits {
            Ok(mut p) => {
                // Checked under the lane lock that `end` takes: nothing follows an end (the
                // session's `unsubscribed` goes out right after it).
                let _lane = shared.lane();
                if shared.end_reason().is_some() {
                    return false;
                }
                if let Some(permit) = p.next() {
                    permit.send(Box::new(frame));
                }
                true
            }
            Err(_) => false,
        },
    }
}

pub(super) async fn send_final(out: &Outbound, frame: &ServerFrame<'_>) {
    let _ = tokio::time::timeout(FINAL_SEND, out.send(Box::new(encode(frame)))).await;
}

/// An `error` naming the stream of `req`.
fn error_frame<'a>(
    code: &'a str,
    message: &'a str,
    retry_after_ms: Option<u64>,
    req: &Request,
) -> ServerFrame<'a> {
    ServerFrame::StreamError {
        stream: req.kind.into(),
        user_id: req.owner,
        code,
        message,
        retry_after_ms,
    }
}

async fn run(subs: Arc<Subscriptions>, req: Request, out: Outbound, shared: Arc<SubShared>) {
    ::metrics::gauge!(crate::metrics::SUBSCRIPTIONS).increment(1.0);
    if let Err(e) = serve(&subs, &req, &out, &shared).await {
        let failure = protocol::store_failure(&e, "subscription failed");
        let message = if failure.transient {
            "the stream could not be read; subscribe again later"
        } else {
            "the subscription failed"
        };
        let frame = error_frame(failure.code, message, failure.retry_after_ms(), &req);
        send_final(&out, &frame).await;
    }
    ::metrics::gauge!(crate::metrics::SUBSCRIPTIONS).decrement(1.0);
}

async fn serve(
    subs: &Arc<Subscriptions>,
    req: &Request,
    out: &Outbound,
    shared: &Arc<SubShared>,
) -> Result<(), StoreError> {
    let store = &subs.store;
    let audit_event = |action| crate::audit::Event {
        owner: req.owner,
        actor: Some(req.viewer),
        action,
        target: Some(req.kind.stream().to_owned()),
        origin: &req.origin,
    };
    let _own = req.own.clone().map(|counts| {
        let i = req.kind.code() as usize;
        counts[i].fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        OwnGuard(counts, i)
    });
    // Before the grant check (see the module's rules); nothing is read from `rx` until the
    // check has passed.
    let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
    let _registration = subs
        .streams
        .register(req.owner, req.kind, req.viewer, tx, shared.clone());
    if req.owner != req.viewer && !store.has_share(req.owner, req.viewer, req.kind).await? {
        let denied = audit_event(crate::audit::Action::AccessDenied);
        subs.audit.record_refusal(denied).await;
        let refused = error_frame(
            "forbidden",
            "no share grants you this stream; ask its owner to share it",
            None,
            req,
        );
        send_final(out, &refused).await;
        return Ok(());
    }
    if req.owner != req.viewer {
        // Before anything of the stream goes out; no entry, no subscription.
        subs.audit
            .record(audit_event(crate::audit::Action::StreamSubscribed))
            .await?;
    }
    let (head, epoch) = tokio::try_join!(store.stream_head(req.owner, req.kind), store.epoch())?;
    let history = subs.streams.history;
    let (recover, replay) = match req.since {
        None => (true, Vec::new()),
        Some(since) => {
            let same_epoch = req.epoch.as_deref().is_none_or(|e| e == epoch);
            if !same_epoch || since > head || head - since > history {
                (false, Vec::new())
            } else if since == head {
                (true, Vec::new())
            } else {
                let events = store
                    .read_events(req.owner, req.kind, since, (head - since) as usize)
                    .await?;
                // The oldest wanted event must still be there; later holes are offsets whose
                // event was never written (a node died in between) and are skipped.
                if events.first().is_some_and(|e| e.offset == since + 1) {
                    (true, events)
                } else {
                    (false, Vec::new())
                }
            }
        }
    };
    let subscribed = ServerFrame::Subscribed {
        stream: req.kind.into(),
        user_id: req.owner,
        epoch: &epoch,
        offset: head,
        recover,
        replay: replay.len(),
    };
    if !send(out, shared, encode(&subscribed)).await {
        return finish(out, shared, req, None).await;
    }
    // An event whose offset is allocated but not yet written (DynamoDB: two requests) is
    // missing from the replay; it arrives live, so `last` is what was actually replayed.
    let mut last = match (req.since, recover) {
        (Some(since), true) => replay.last().map_or(since, |e| e.offset),
        _ => head,
    };
    for ev in replay {
        if !send(out, shared, event(req.kind, ev.offset, &ev.body)).await {
            return finish(out, shared, req, None).await;
        }
    }
    loop {
        let ev = match rx.try_recv() {
            Ok(ev) => ev,
            Err(_) if shared.lagged.load(std::sync::atomic::Ordering::Acquire) => {
                let last = last.max(shared.lane().last);
                return finish(out, shared, req, Some(last)).await;
            }
            Err(_) => {
                // Caught up: the publishers write the next events themselves until one cannot.
                shared.go_direct(&rx, out, room(out), last);
                tokio::select! {
                    biased;
                    () = shared.cancel.cancelled() => return finish(out, shared, req, None).await,
                    ev = rx.recv() => match ev {
                        Some(ev) => ev,
                        None => return Ok(()),
                    },
                }
            }
        };
        // Where the publishers left off (they wrote while this task waited).
        last = last.max(shared.lane().last);
        if ev.offset <= last {
            continue;
        }
        if ev.offset > last + 1 {
            for missed in fill(subs, req, last, ev.offset).await? {
                if !send(out, shared, event(req.kind, missed.offset, &missed.body)).await {
                    return finish(out, shared, req, None).await;
                }
            }
        }
        if !send(out, shared, ev.frame).await {
            return finish(out, shared, req, None).await;
        }
        last = ev.offset;
    }
}

/// Events between `last` and `upto` (exclusive) from the store: published out of order, so
/// normally already written; one short wait covers a writer that is a step behind.
async fn fill(
    subs: &Subscriptions,
    req: &Request,
    last: u64,
    upto: u64,
) -> Result<Vec<StreamEvent>, StoreError> {
    let want = (upto - last - 1) as usize;
    let mut events = subs
        .store
        .read_events(req.owner, req.kind, last, want)
        .await?;
    if events.len() < want {
        tokio::time::sleep(Duration::from_millis(200)).await;
        events = subs
            .store
            .read_events(req.owner, req.kind, last, want)
            .await?;
    }
    events.retain(|e| e.offset < upto);
    Ok(events)
}

/// A stored event, encoded for this subscriber alone (replayed or filled from the store).
fn event(kind: DocKind, offset: u64, body: &str) -> Frame {
    encode(&ServerFrame::Event { kind, offset, body })
}

/// Tells the client why the subscription ended, where it did not ask for it.
async fn finish(
    out: &Outbound,
    shared: &SubShared,
    req: &Request,
    lagged_at: Option<u64>,
) -> Result<(), StoreError> {
    let frame = match (lagged_at, shared.end_reason()) {
        (_, Some(EndReason::Revoked)) => ServerFrame::Revoked {
            stream: req.kind.into(),
            user_id: req.owner,
        },
        (Some(last), _) => ServerFrame::Lagged {
            stream: req.kind.into(),
            user_id: req.owner,
            last_offset: last,
        },
        // Asked for by the client (the session answers) or the session is gone.
        _ => return Ok(()),
    };
    send_final(out, &frame).await;
    Ok(())
}
