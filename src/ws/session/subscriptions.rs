//! Live stream subscriptions of one session.
//!
//! Rules:
//! - One subscription per (watched user, stream); subscribing again replaces it (a client
//!   resuming from an offset), and the old one ends as `requested`.
//! - At most `max_subscriptions` live ones per session; finished ones (revoked, lagged) do
//!   not count.
//! - Authorisation is the subscription task's job (`streams::subscription`, and
//!   `streams::feed::subscription` for the `samples` change feed), checked when it starts
//!   and again on every revocation; the session only keeps the handles.
//! - `unsubscribed` goes through the push queue, behind the events the subscription already
//!   queued there, so nothing of the stream can follow it.
//! - Every subscription's token is a child of the session's: the session's end ends them all
//!   (they hold the push queue, which the writer needs dropped to finish).

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Gone, Session, count_out};
use crate::protocol::{Refusal, ServerFrame, Stream, encode};
use crate::streams::EndReason;
use crate::streams::feed;
use crate::streams::subscription;

#[derive(Default)]
pub(super) struct Subscriptions {
    /// Live stream subscriptions by watched user and stream.
    subs: HashMap<(Uuid, Stream), subscription::Handle>,
    /// Parent of every subscription's token: the session's end ends them all.
    cancel: CancellationToken,
}

impl Subscriptions {
    /// Ends every subscription of the session.
    pub(super) fn cancel_all(&self) {
        self.cancel.cancel();
    }
}

impl Session {
    pub(super) async fn on_subscribe(
        &mut self,
        owner: Uuid,
        stream: Stream,
        since: Option<u64>,
        epoch: Option<String>,
    ) -> Result<(), Gone> {
        self.subs.subs.retain(|_, h| !h.task.is_finished());
        // Subscribing again replaces the subscription (a client resuming from an offset).
        if let Some(old) = self.subs.subs.remove(&(owner, stream)) {
            old.shared.end(EndReason::Requested);
        }
        let max = self.state.config.limits.max_subscriptions;
        if self.subs.subs.len() >= max {
            return self
                .send(
                    &Refusal::new(
                        "too_many_subscriptions",
                        format!("at most {max} subscriptions per session"),
                    )
                    .frame(),
                )
                .await;
        }
        let (subs, out, cancel) = (
            &self.state.subscriptions,
            self.out.clone(),
            self.subs.cancel.child_token(),
        );
        let handle = match stream {
            Stream::Docs(kind) => {
                let req = subscription::Request {
                    viewer: self.user,
                    owner,
                    kind,
                    since,
                    epoch,
                    own: (owner == self.user).then(|| self.hub.explicit.clone()),
                    origin: self.origin.clone(),
                };
                subscription::start(subs, req, out, cancel)
            }
            Stream::Samples => {
                let req = feed::subscription::Request {
                    viewer: self.user,
                    owner,
                    since,
                    epoch,
                    origin: self.origin.clone(),
                };
                feed::subscription::start(subs, req, out, cancel)
            }
        };
        self.subs.subs.insert((owner, stream), handle);
        Ok(())
    }

    pub(super) async fn on_unsubscribe(&mut self, owner: Uuid, stream: Stream) -> Result<(), Gone> {
        match self.subs.subs.remove(&(owner, stream)) {
            Some(h) if !h.task.is_finished() => {
                h.shared.end(EndReason::Requested);
                let frame = ServerFrame::Unsubscribed {
                    stream,
                    user_id: owner,
                };
                count_out(frame.type_name());
                // Through the push queue, behind the events the subscription queued there:
                // nothing of it may follow `unsubscribed`.
                self.out
                    .send(Box::new(encode(&frame)))
                    .await
                    .map_err(|_| Gone)
            }
            _ => {
                self.send(
                    &Refusal::new(
                        "not_subscribed",
                        format!("no subscription to {owner}'s {} stream", stream.name()),
                    )
                    .frame(),
                )
                .await
            }
        }
    }
}
