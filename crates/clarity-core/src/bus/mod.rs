//! The bus between nodes: stream events, frames for a user's sessions, revoked shares,
//! samples for a window owned elsewhere, sessions to end (logout, admin disconnect) and
//! notices that a user's samples changed (change feed), plus
//! the leases that say which node owns a window.
//!
//! Rules:
//! - Local delivery never depends on the bus: a node delivers to its own sessions directly
//!   and publishes for the others. So a bus outage degrades a node to single-node behaviour
//!   instead of stopping it.
//! - Publishing never waits: messages go into a bounded queue that a task drains. Delivery is
//!   at most once. Whatever a node may have missed is made good from the store: stream
//!   subscribers fill offset gaps from the store, and samples that could not be forwarded (or
//!   were missed by a node that lost its connection) make the owner rebuild the window
//!   ([`Message::Resync`], [`Bus::reconnects`]).
//! - A lease is claimed for a set of users at once and held by a node id; it expires unless
//!   renewed, so a dead node's windows move to another node within one lease period.

pub mod memory;
pub mod redis;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::samples::Sample;
use crate::store::DocKind;

/// What nodes tell each other.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// A new stream event, already appended to the store under `offset`.
    Event {
        user: Uuid,
        stream: Stream,
        offset: u64,
        text: String,
    },
    /// A frame for every session of `user` that is not a stream event (streamed insight text,
    /// a failed insight, a document asked for again).
    UserFrame { user: Uuid, text: String },
    /// A share was revoked: live subscriptions of `viewer` to `owner`'s stream end.
    Revoked {
        owner: Uuid,
        viewer: Uuid,
        stream: Stream,
    },
    /// Samples stored by a node that does not own `user`'s window, for the owner to apply.
    Samples { user: Uuid, samples: Vec<Sample> },
    /// Forwarded samples of these users (all users when `None`) were lost: their owners
    /// rebuild the windows from the store.
    Resync { users: Option<Vec<Uuid>> },
    /// A logout ended login `family` of `user`: its access tokens are refused and its
    /// sessions closed (4011) on every node.
    LoggedOut { user: Uuid, family: Uuid },
    /// An administrator disconnected `user`: every session of theirs closes (4012).
    Disconnect { user: Uuid },
    /// `user`'s account was erased: their tokens are refused, their sessions closed (4011
    /// `account_erased`) and their window and caches dropped on every node.
    Erased { user: Uuid },
    /// `user`'s samples changed (durably), up to change seq `head` when the writer knew it:
    /// followers of their change feed read the store (`streams::feed`). No payload, so a
    /// lost notice costs latency, not data.
    SamplesChanged { user: Uuid, head: Option<u64> },
}

/// A stream name on the wire (`DocKind` stays free of serde).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Analyses,
    Insights,
}

impl From<DocKind> for Stream {
    fn from(k: DocKind) -> Stream {
        match k {
            DocKind::Analysis => Stream::Analyses,
            DocKind::Insight => Stream::Insights,
        }
    }
}

impl From<Stream> for DocKind {
    fn from(s: Stream) -> DocKind {
        match s {
            Stream::Analyses => DocKind::Analysis,
            Stream::Insights => DocKind::Insight,
        }
    }
}

/// A message and the node that sent it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub node: Uuid,
    pub msg: Message,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

/// What `/api/ready` reports about the bus.
#[derive(Debug, Clone, Serialize)]
pub struct BusStatus {
    /// `memory` or `redis`.
    pub kind: &'static str,
    /// Whether messages from other nodes are being received right now.
    pub up: bool,
}

/// Messages between the nodes of one deployment and the window leases.
#[async_trait::async_trait]
pub trait Bus: Send + Sync + 'static {
    /// This node's id (lease holder name, and how a node skips its own messages).
    fn node(&self) -> Uuid;

    /// Queues `msg` for every other node; never waits.
    fn publish(&self, msg: Message);

    /// Messages from other nodes, in the order each sender published them. Given once.
    fn take_inbox(&self) -> Option<mpsc::Receiver<Message>>;

    /// Claims (or renews) the window leases of `users` for this node for `ttl`. Returns, per
    /// user, whether this node holds the lease now.
    async fn claim(&self, users: &[Uuid], ttl: Duration) -> Result<Vec<bool>, BusError>;

    /// Gives up this node's leases of `users` (those held by another node are untouched).
    async fn release(&self, users: &[Uuid]) -> Result<(), BusError>;

    fn status(&self) -> BusStatus;

    /// Bumped whenever this node may have missed messages (a reconnect, an overflowing
    /// inbox): owned windows are then rebuilt from the store.
    fn reconnects(&self) -> watch::Receiver<u64>;

    /// Sends what is queued and stops (after the node's sessions have drained).
    async fn close(&self) {}
}
