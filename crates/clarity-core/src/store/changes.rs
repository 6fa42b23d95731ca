//! Sync v2 in the store: versioned upserts, deletions with tombstones, and the per-user change
//! sequence the change feed reads.
//!
//! Rules every backend keeps (the conformance tests check them on both):
//! - The ops of one [`Store::write_samples`] call apply in order, as if sent one by one, and
//!   the call is durable when it returns (as `insert_samples` always was).
//! - `Put` of a new id: `Inserted`. Of a stored id: `Updated` when the new `version` is
//!   greater than the stored one (a stored sample without a version counts as version
//!   `-1`, so any versioned re-send replaces it), else `Duplicate` (a re-sent id without a
//!   version is always a duplicate: protocol v1). Of a tombstoned id: `Inserted` when the new
//!   version is greater than the tombstone's, else `Duplicate` (a late re-send of a deleted
//!   sample never resurrects it).
//! - `Delete` of a stored id: `Deleted`, leaving a tombstone with the deleted sample's version
//!   for [`TOMBSTONE_DAYS`]; of an unknown or already deleted id: `NotFound` (not an error).
//! - Every `Inserted`, `Updated` and `Deleted` takes the user's next change sequence number
//!   (1, 2, ...; strictly increasing per user, gaps allowed). `Duplicate` and `NotFound`
//!   change nothing and take none.
//! - [`Store::changes`] lists changes with `seq > after` in `seq` order. Replaying from 0 onto
//!   an empty set rebuilds the current samples exactly. A backend may compact (list only the
//!   latest change of each id) and may forget tombstones after [`TOMBSTONE_DAYS`]; it then
//!   raises `floor`, and a reader whose `after` is below `floor` (and not 0) must start again
//!   from 0.

use uuid::Uuid;

use crate::samples::Sample;

/// How long a deletion's tombstone is kept (and so how long a late re-send of a deleted
/// sample's old version is refused, and how long a change-feed position stays valid).
pub const TOMBSTONE_DAYS: i64 = 90;

/// One change a client asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleOp {
    Put(Sample),
    Delete(String),
}

impl SampleOp {
    pub fn id(&self) -> &str {
        match self {
            SampleOp::Put(s) => &s.id,
            SampleOp::Delete(id) => id,
        }
    }
}

/// What one [`SampleOp`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpOutcome {
    Inserted,
    Updated,
    Duplicate,
    Deleted,
    NotFound,
}

impl OpOutcome {
    /// Whether the op changed the stored samples (and took a change sequence number).
    pub fn changed(self) -> bool {
        matches!(
            self,
            OpOutcome::Inserted | OpOutcome::Updated | OpOutcome::Deleted
        )
    }
}

/// The result of [`Store::write_samples`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteResult {
    /// One per op, in order.
    pub outcomes: Vec<OpOutcome>,
    /// The stored samples that `Updated` and `Deleted` ops replaced or removed, as they were:
    /// derived results over their days must be recomputed.
    pub removed: Vec<Sample>,
    /// The change sequence numbers the changing ops took, in op order (one per
    /// `outcomes[i].changed()`).
    pub seqs: Vec<u64>,
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOp {
    /// The sample as stored after an insert or update.
    Upsert(Sample),
    /// The id was deleted.
    Delete { id: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub seq: u64,
    pub op: ChangeOp,
}

/// A page of [`Store::changes`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// `true` when changes after the last one returned may follow.
    pub more: bool,
    /// The user's latest change sequence number when the page was read.
    pub head: u64,
    /// Positions below this (other than 0) are no longer complete: start again from 0.
    pub floor: u64,
}

/// What [`Store::erase_user`] left, for the caller's audit entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Erased {
    /// Whether an account record existed (a second erase finds none).
    pub account: bool,
    /// Samples and tombstones removed.
    pub samples: u64,
    /// Analyses, insights and stream events removed.
    pub documents: u64,
    /// Shares (owned and received) removed.
    pub shares: u64,
}

/// The user whose erasure a restarted node must finish (see [`Store::pending_erasures`]).
pub type PendingErasure = Uuid;
