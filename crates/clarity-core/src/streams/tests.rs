//! Unit tests of the `Streams` registry through its public API: registration, in-order
//! fan-out to the subscribers of one (owner, stream), revocation, lag.
//!
//! Declared from lib.rs rather than streams/mod.rs while that module is being reworked on
//! another branch (narrow handles); move the declaration there once it lands.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::protocol::Frame;
use crate::store::DocKind;
use crate::streams::{EndReason, Event, Registration, Streams, SubShared};

struct Sub {
    _reg: Registration,
    rx: mpsc::Receiver<Event>,
    shared: Arc<SubShared>,
}

fn subscribe(streams: &Arc<Streams>, owner: Uuid, kind: DocKind, viewer: Uuid, cap: usize) -> Sub {
    let (tx, rx) = mpsc::channel(cap);
    let shared = Arc::new(SubShared::new(Default::default()));
    let reg = streams.register(owner, kind, viewer, tx, shared.clone());
    Sub {
        _reg: reg,
        rx,
        shared,
    }
}

fn event(offset: u64) -> Event {
    Event {
        offset,
        frame: Frame::from_encoded(format!("{{\"offset\":{offset}}}")),
    }
}

fn offsets(rx: &mut mpsc::Receiver<Event>) -> Vec<u64> {
    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        assert_eq!(e.frame.as_str(), format!("{{\"offset\":{}}}", e.offset));
        seen.push(e.offset);
    }
    seen
}

#[test]
fn events_reach_the_subscribers_of_that_stream_in_order() {
    let streams = Arc::new(Streams::new(10));
    let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut a = subscribe(&streams, owner, DocKind::Analysis, Uuid::new_v4(), 8);
    let mut b = subscribe(&streams, owner, DocKind::Analysis, owner, 8);
    let mut insights = subscribe(&streams, owner, DocKind::Insight, Uuid::new_v4(), 8);
    let mut elsewhere = subscribe(&streams, other, DocKind::Analysis, owner, 8);
    for offset in 1..=3 {
        streams.fan_out(owner, DocKind::Analysis, &event(offset));
    }
    assert_eq!(offsets(&mut a.rx), [1, 2, 3]);
    assert_eq!(offsets(&mut b.rx), [1, 2, 3]);
    assert!(offsets(&mut insights.rx).is_empty());
    assert!(offsets(&mut elsewhere.rx).is_empty());
}

#[test]
fn dropping_the_registration_unsubscribes() {
    let streams = Arc::new(Streams::new(10));
    let owner = Uuid::new_v4();
    let a = subscribe(&streams, owner, DocKind::Analysis, owner, 8);
    let mut b = subscribe(&streams, owner, DocKind::Analysis, owner, 8);
    assert_eq!(streams.subscriber_count(), 2);
    drop(a);
    assert_eq!(streams.subscriber_count(), 1);
    streams.fan_out(owner, DocKind::Analysis, &event(1));
    assert_eq!(offsets(&mut b.rx), [1]);
    drop(b);
    assert_eq!(streams.subscriber_count(), 0);
    // Nothing left to deliver to, and nothing fails.
    streams.fan_out(owner, DocKind::Analysis, &event(2));
}

#[test]
fn revoke_ends_only_that_viewers_subscriptions_to_that_stream() {
    let streams = Arc::new(Streams::new(10));
    let (owner, viewer, friend) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let revoked = subscribe(&streams, owner, DocKind::Analysis, viewer, 8);
    let kept = subscribe(&streams, owner, DocKind::Analysis, friend, 8);
    let other_stream = subscribe(&streams, owner, DocKind::Insight, viewer, 8);
    assert_eq!(streams.revoke(owner, viewer, DocKind::Analysis), 1);
    assert_eq!(revoked.shared.end_reason(), Some(EndReason::Revoked));
    assert!(revoked.shared.cancel.is_cancelled(), "its task is woken");
    assert_eq!(kept.shared.end_reason(), None);
    assert_eq!(other_stream.shared.end_reason(), None);
    assert_eq!(streams.revoke(Uuid::new_v4(), viewer, DocKind::Analysis), 0);
}

#[test]
fn the_first_end_reason_stays() {
    let streams = Arc::new(Streams::new(10));
    let owner = Uuid::new_v4();
    let sub = subscribe(&streams, owner, DocKind::Analysis, owner, 8);
    sub.shared.end(EndReason::Requested);
    streams.revoke(owner, owner, DocKind::Analysis);
    assert_eq!(sub.shared.end_reason(), Some(EndReason::Requested));
}

#[test]
fn a_full_queue_marks_only_that_subscriber_lagged_and_it_gets_nothing_more() {
    let streams = Arc::new(Streams::new(10));
    let owner = Uuid::new_v4();
    let mut slow = subscribe(&streams, owner, DocKind::Insight, owner, 1);
    let mut fast = subscribe(&streams, owner, DocKind::Insight, owner, 8);
    streams.fan_out(owner, DocKind::Insight, &event(1));
    assert!(!slow.shared.lagged.load(Ordering::Acquire));
    streams.fan_out(owner, DocKind::Insight, &event(2));
    assert!(slow.shared.lagged.load(Ordering::Acquire));
    assert_eq!(offsets(&mut slow.rx), [1]);
    // With room again it still gets nothing: it must resume from its last offset instead,
    // or it would see a gap.
    streams.fan_out(owner, DocKind::Insight, &event(3));
    assert!(offsets(&mut slow.rx).is_empty());
    assert!(!fast.shared.lagged.load(Ordering::Acquire));
    assert_eq!(offsets(&mut fast.rx), [1, 2, 3]);
}

/// A session's push queue of `cap` slots, its receiver drained as offsets.
fn session_queue(
    cap: usize,
) -> (
    crate::protocol::Outbound,
    mpsc::Receiver<crate::protocol::Outgoing>,
) {
    mpsc::channel(cap)
}

fn written(rx: &mut mpsc::Receiver<crate::protocol::Outgoing>) -> Vec<u64> {
    let mut seen = Vec::new();
    while let Ok(f) = rx.try_recv() {
        let v: serde_json::Value = serde_json::from_str(f.as_str()).expect("a test frame");
        seen.push(v["offset"].as_u64().expect("an offset"));
    }
    seen
}

#[test]
fn a_caught_up_subscriber_gets_events_straight_into_its_session_queue_in_order() {
    let streams = Arc::new(Streams::new(10));
    let owner = Uuid::new_v4();
    let mut sub = subscribe(&streams, owner, DocKind::Insight, owner, 8);
    let (out, mut session) = session_queue(16);
    assert!(sub.shared.go_direct(&sub.rx, &out, 5, 3));
    // Already delivered: skipped.
    streams.fan_out(owner, DocKind::Insight, &event(3));
    for offset in 4..=6 {
        streams.fan_out(owner, DocKind::Insight, &event(offset));
    }
    assert_eq!(written(&mut session), [4, 5, 6]);
    assert!(offsets(&mut sub.rx).is_empty(), "no task hop");
    assert_eq!(sub.shared.lane().last, 6);
}

#[test]
fn without_room_or_after_a_hole_the_task_takes_over_until_it_caught_up_again() {
    let streams = Arc::new(Streams::new(10));
    let owner = Uuid::new_v4();
    let mut sub = subscribe(&streams, owner, DocKind::Insight, owner, 8);
    // 8 slots, each write needs 3 free (its own and 2 kept): 6 events fit directly.
    let (out, mut session) = session_queue(8);
    assert!(sub.shared.go_direct(&sub.rx, &out, 3, 0));
    for offset in 1..=7 {
        streams.fan_out(owner, DocKind::Insight, &event(offset));
    }
    assert_eq!(written(&mut session), [1, 2, 3, 4, 5, 6]);
    // Room again, but 7 waits in the task's queue: 8 must not pass it.
    streams.fan_out(owner, DocKind::Insight, &event(8));
    assert!(written(&mut session).is_empty());
    assert_eq!(offsets(&mut sub.rx), [7, 8]);
    // The task wrote them and caught up; a hole (10 after 8) goes to the task (it fills 9).
    assert!(sub.shared.go_direct(&sub.rx, &out, 3, 8));
    streams.fan_out(owner, DocKind::Insight, &event(10));
    assert!(written(&mut session).is_empty());
    assert_eq!(offsets(&mut sub.rx), [10]);
    assert!(!sub.shared.lagged.load(Ordering::Acquire));
}

#[test]
fn the_lane_is_not_handed_over_while_events_wait_for_the_task() {
    let streams = Arc::new(Streams::new(10));
    let owner = Uuid::new_v4();
    let mut sub = subscribe(&streams, owner, DocKind::Insight, owner, 8);
    let (out, mut session) = session_queue(16);
    streams.fan_out(owner, DocKind::Insight, &event(1));
    assert!(!sub.shared.go_direct(&sub.rx, &out, 5, 0));
    streams.fan_out(owner, DocKind::Insight, &event(2));
    assert!(written(&mut session).is_empty());
    assert_eq!(offsets(&mut sub.rx), [1, 2]);
}

#[test]
fn nothing_is_written_directly_once_the_subscription_ended() {
    let streams = Arc::new(Streams::new(10));
    let (owner, viewer) = (Uuid::new_v4(), Uuid::new_v4());
    let sub = subscribe(&streams, owner, DocKind::Insight, viewer, 8);
    let (out, mut session) = session_queue(16);
    assert!(sub.shared.go_direct(&sub.rx, &out, 5, 0));
    streams.fan_out(owner, DocKind::Insight, &event(1));
    assert_eq!(streams.revoke(owner, viewer, DocKind::Insight), 1);
    streams.fan_out(owner, DocKind::Insight, &event(2));
    assert_eq!(written(&mut session), [1]);
    assert!(
        !sub.shared.go_direct(&sub.rx, &out, 5, 1),
        "an ended lane stays closed"
    );
}
