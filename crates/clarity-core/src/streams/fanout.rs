//! The fan-out handle: where a new document or a server-initiated frame goes once stored.
//!
//! It holds what delivery touches and nothing more: the hub (this node's sessions by user),
//! the stream registry (this node's subscribers), the bus (the other nodes) and the store
//! (which allocates stream offsets and keeps events for replay). Rules are the module's
//! (see `streams`): local delivery never waits and never depends on the bus.

use std::sync::Arc;

use uuid::Uuid;

use super::{Event, Streams};
use crate::bus::{Bus, Message};
use crate::protocol::{Frame, ServerFrame, encode};
use crate::store::{DocKind, DocRecord, Store, StoreResult};
use crate::streams::hub::Hub;

/// Delivers to this node's sessions and subscribers and publishes for the others. Built once
/// by the app and shared.
pub struct FanOut {
    hub: Arc<Hub>,
    streams: Arc<Streams>,
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
}

impl FanOut {
    pub fn new(
        hub: Arc<Hub>,
        streams: Arc<Streams>,
        bus: Arc<dyn Bus>,
        store: Arc<dyn Store>,
    ) -> FanOut {
        FanOut {
            hub,
            streams,
            bus,
            store,
        }
    }

    /// Queues `frame` to every session of `user`, on this node and the others.
    pub fn push_user(&self, user: Uuid, frame: &Frame) {
        self.hub.push(user, frame);
        self.bus.publish(Message::UserFrame {
            user,
            text: frame.as_str().to_owned(),
        });
    }

    /// Appends a new document to its stream and delivers the event to the owner's sessions
    /// and every subscriber on this node.
    pub async fn publish(&self, kind: DocKind, doc: &DocRecord) -> StoreResult<u64> {
        self.publish_body(kind, doc.user_id, doc.body.clone()).await
    }

    async fn publish_body(&self, kind: DocKind, user: Uuid, body: String) -> StoreResult<u64> {
        let offset = self
            .store
            .append_event(user, kind, body.clone(), self.streams.history)
            .await?;
        let event = Event {
            offset,
            frame: encode(&ServerFrame::Event {
                kind,
                offset,
                body: &body,
            }),
        };
        self.hub.push_event(user, kind, &event.frame);
        self.streams.fan_out(user, kind, &event);
        self.bus.publish(Message::Event {
            user,
            stream: kind.into(),
            offset,
            text: event.frame.as_str().to_owned(),
        });
        ::metrics::counter!(crate::metrics::STREAM_EVENTS, "stream" => kind.stream()).increment(1);
        Ok(offset)
    }

    /// Appends a `superseded` event (document `old` of `user` was replaced by `by`) to the
    /// stream of `kind` and delivers it like a document's event, so that replay and resume
    /// include it.
    pub async fn publish_superseded(
        &self,
        kind: DocKind,
        user: Uuid,
        old: Uuid,
        by: Uuid,
    ) -> StoreResult<u64> {
        let body = superseded_body(user, old, by);
        self.publish_body(kind, user, body).await
    }

    /// Sends a stored document where it belongs: a new one is published as a stream event;
    /// one that already existed (asked for again) goes to the owner's sessions as a plain
    /// frame.
    pub async fn deliver(&self, kind: DocKind, doc: &DocRecord, new: bool) {
        let plain = || {
            encode(&ServerFrame::Document {
                kind,
                body: &doc.body,
            })
        };
        if new {
            if let Err(e) = self.publish(kind, doc).await {
                // The document is stored and readable over REST; only the live event is lost.
                tracing::warn!(error = %e, stream = kind.stream(), "event not appended to its stream");
                self.push_user(doc.user_id, &plain());
            }
        } else {
            self.push_user(doc.user_id, &plain());
        }
    }
}

/// The stored body of a `superseded` event: it names its own `type`, so the stream position
/// is spliced in after it (see `protocol::frame`).
fn superseded_body(user: Uuid, old: Uuid, by: Uuid) -> String {
    #[derive(serde::Serialize)]
    struct Superseded {
        #[serde(rename = "type")]
        ty: &'static str,
        user_id: Uuid,
        id: Uuid,
        by: Uuid,
    }
    serde_json::to_string(&Superseded {
        ty: "superseded",
        user_id: user,
        id: old,
        by,
    })
    .expect("a superseded event always serialises")
}
