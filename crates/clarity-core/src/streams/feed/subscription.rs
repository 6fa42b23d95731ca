//! One session's subscription to a user's change feed (stream `samples`): replay the changes
//! after `since` from the store, then follow live, woken by the feed's notices.
//!
//! Rules:
//! - Only the user's own feed: a `user_id` of anyone else is refused with `forbidden` (no
//!   share grants raw samples) and recorded in that user's audit log as `access_denied`.
//! - Offsets are change seqs, read from the store in pages after the last one delivered: they
//!   reach the client strictly increasing, with no duplicate and no change missing.
//! - `since` absent: live only, from the head. `since` 0: every current sample (the
//!   replay from 0 rebuilds the state). Otherwise the position must be valid for this epoch
//!   (`epoch`, when given, must be the store's) and between the floor and the head; if not,
//!   or if the floor passes the follower later, the client gets `error` `resync_required`
//!   and the subscription ends.
//! - `subscribed.offset` is the head when subscribing; `replay` is 0 because the replay is
//!   paged from the store and not counted in advance: the client has caught up once it has
//!   applied the change at `offset`.
//! - Bounded: at most one page of changes in hand, sent while a quarter of the session's push
//!   queue is free (as the document streams do); notices never queue (see `feed`).

use std::sync::Arc;

use uuid::Uuid;

use super::{Resync, check_resume};
use crate::protocol::{self, Frame, Outbound, ServerFrame, Stream, encode};
use crate::store::{Change, StoreError};
use crate::streams::SubShared;
use crate::streams::subscription::{Handle, Subscriptions, send, send_final};

/// Changes read from the store at once.
pub const PAGE: usize = 200;

/// What the client asked for.
pub struct Request {
    pub viewer: Uuid,
    pub owner: Uuid,
    pub since: Option<u64>,
    pub epoch: Option<String>,
    /// Where the viewer connected from, for the owner's audit log.
    pub origin: crate::audit::Origin,
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

fn error_frame<'a>(
    code: &'a str,
    message: &'a str,
    retry: Option<u64>,
    req: &Request,
) -> ServerFrame<'a> {
    ServerFrame::StreamError {
        stream: Stream::Samples,
        user_id: req.owner,
        code,
        message,
        retry_after_ms: retry,
    }
}

async fn run(subs: Arc<Subscriptions>, req: Request, out: Outbound, shared: Arc<SubShared>) {
    ::metrics::gauge!(crate::metrics::SUBSCRIPTIONS).increment(1.0);
    match serve(&subs, &req, &out, &shared).await {
        Ok(None) => {}
        Ok(Some(resync)) => {
            let message = format!(
                "{}; subscribe again with since=0 and no epoch: the changes replayed from 0 are \
                 every current sample, so replace your copy with them, then follow live",
                resync.reason()
            );
            send_final(
                &out,
                &error_frame(super::RESYNC_REQUIRED, &message, None, &req),
            )
            .await;
        }
        Err(e) => {
            let failure = protocol::store_failure(&e, "change feed subscription failed");
            let message = if failure.transient {
                "the change feed could not be read; subscribe again later with since set to \
                 the last offset you applied"
            } else {
                "the subscription failed"
            };
            let frame = error_frame(failure.code, message, failure.retry_after_ms(), &req);
            send_final(&out, &frame).await;
        }
    }
    ::metrics::gauge!(crate::metrics::SUBSCRIPTIONS).decrement(1.0);
}

/// `Ok(Some)`: the client must resync; `Ok(None)`: ended from outside (asked for by the
/// client, whom the session answers `unsubscribed`, or the session is gone).
async fn serve(
    subs: &Arc<Subscriptions>,
    req: &Request,
    out: &Outbound,
    shared: &SubShared,
) -> Result<Option<Resync>, StoreError> {
    // Before the head is read (see the module's rules).
    let following = subs.feed.follow(req.owner);
    if req.owner != req.viewer {
        let denied = crate::audit::Event {
            owner: req.owner,
            actor: Some(req.viewer),
            action: crate::audit::Action::AccessDenied,
            target: Some(Stream::SAMPLES.to_owned()),
            origin: &req.origin,
        };
        subs.audit.record_refusal(denied).await;
        let refused = error_frame(
            "forbidden",
            "the samples stream is only ever your own: subscribe without user_id",
            None,
            req,
        );
        send_final(out, &refused).await;
        return Ok(None);
    }
    let store = &subs.store;
    let epoch = store.epoch().await?;
    if req.since.is_some() && req.epoch.as_deref().is_some_and(|e| e != epoch) {
        return Ok(Some(Resync::OtherEpoch));
    }
    let after = req.since.unwrap_or(0);
    let first = store
        .changes(req.owner, after, if req.since.is_some() { PAGE } else { 1 })
        .await?;
    if let Err(resync) = check_resume(after, &first) {
        return Ok(Some(resync));
    }
    let subscribed = ServerFrame::Subscribed {
        stream: Stream::Samples,
        user_id: req.owner,
        epoch: &epoch,
        offset: first.head,
        recover: true,
        replay: 0,
    };
    if !send(out, shared, encode(&subscribed)).await {
        return Ok(None);
    }
    let mut last = after;
    let mut page = match req.since {
        Some(_) => Some(first),
        // Live only: from the head.
        None => {
            last = first.head;
            None
        }
    };
    loop {
        // Deliver the page in hand and those after it, until the store has no more.
        while let Some(p) = page.take() {
            if let Err(resync) = check_resume(last, &p) {
                return Ok(Some(resync));
            }
            for change in &p.changes {
                if change.seq <= last {
                    continue;
                }
                let frame = change_frame(req.owner, change);
                if !send(out, shared, frame).await {
                    return Ok(None);
                }
                last = change.seq;
            }
            if p.more && !p.changes.is_empty() {
                page = Some(store.changes(req.owner, last, PAGE).await?);
            }
        }
        // Then wait for a notice that says (or may say) there is more.
        loop {
            let announced = tokio::select! {
                biased;
                () = shared.cancel.cancelled() => return Ok(None),
                head = following.wake.notified() => head,
            };
            if announced > last {
                break;
            }
        }
        page = Some(store.changes(req.owner, last, PAGE).await?);
    }
}

fn change_frame(owner: Uuid, change: &Change) -> Frame {
    encode(&ServerFrame::Change {
        user_id: owner,
        offset: change.seq,
        op: &change.op,
    })
}
