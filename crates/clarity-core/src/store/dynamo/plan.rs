//! Planning a `write_samples` call: the sync-v2 rules applied to what the id index says,
//! without touching DynamoDB, split into parts that each fit one transaction.
//!
//! Rules:
//! - Ops apply in order against the state read from the id index (one item per id: live in a
//!   chunk, or a tombstone); each op sees the effects of the ones before it in the batch.
//! - A tombstone older than [`TOMBSTONE_DAYS`] counts as absent, whether or not DynamoDB's TTL
//!   has deleted it yet (it does so lazily, DynamoDB Local hardly ever).
//! - A part touches at most [`MAX_PART_ITEMS`] index and chunk items (plus the head, the
//!   change-log item and a revision: DynamoDB's 100 actions a transaction), at most [`MAX_PART_BYTES`] of
//!   sample data (the change-log item's 400 KB, the transaction's 4 MB) and at most
//!   [`MAX_CHUNK_IDS`] ids of one chunk (the 4 KB update-expression limit). An item appears
//!   once per part: an id changed twice in one part is written once, in its final state.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::samples::{Kind, Sample};
use crate::store::{OpOutcome, SampleOp, TOMBSTONE_DAYS};

use super::codec;

/// Index and chunk items one transaction may touch besides the head, the change log and a
/// revision (`dynamo::revisions`).
pub const MAX_PART_ITEMS: usize = 97;
/// Encoded sample bytes per part: the change-log item holds them all and must stay below
/// DynamoDB's 400 KB item limit.
pub const MAX_PART_BYTES: usize = 300_000;
/// Ids one chunk update may SET or REMOVE (`#iNN = :vNN, ` stays far below 4 KB).
pub const MAX_CHUNK_IDS: usize = 100;

const TOMBSTONE_MS: i64 = TOMBSTONE_DAYS * 24 * 3600 * 1000;

/// A chunk item: (kind, hour bucket).
pub type ChunkKey = (Kind, i64);

/// What the id index says about one id.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Absent,
    /// Stored in chunk `chunk`. `sample` is known when this batch wrote it (else it is read
    /// from the chunk when an update or delete needs the old value).
    Live {
        chunk: ChunkKey,
        version: Option<i64>,
        sample: Option<Sample>,
    },
    /// Deleted at `deleted_ms`, keeping the deleted sample's version.
    Tomb {
        version: Option<i64>,
        deleted_ms: i64,
    },
}

impl State {
    /// A tombstone past its lifetime is forgotten.
    pub fn aged(self, now_ms: i64) -> State {
        match self {
            State::Tomb { deleted_ms, .. } if deleted_ms + TOMBSTONE_MS <= now_ms => State::Absent,
            s => s,
        }
    }
}

/// A stored sample an `Updated` or `Deleted` op replaced, as the write result reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Removed {
    /// Written earlier in this batch.
    Known(Sample),
    /// In the store: read from its chunk before anything is committed.
    Stored { id: String, chunk: ChunkKey },
}

/// One change of a part, in op order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedChange {
    pub seq: u64,
    /// The sample as stored after an upsert; `None` for a delete.
    pub sample: Option<Sample>,
    pub id: String,
}

/// One transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Part {
    /// Ops `ops.start..ops.end` of the (replanned) batch end in this part.
    pub end: usize,
    pub changes: Vec<PlannedChange>,
    /// Final index state of every id the part changes (`Live` always with its sample), with
    /// the seq of its last change.
    pub index: BTreeMap<String, (State, u64)>,
    /// Per chunk: ids to set to a sample, ids to remove.
    pub chunks: BTreeMap<ChunkKey, ChunkEdit>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkEdit {
    pub set: BTreeMap<String, Sample>,
    pub remove: BTreeSet<String>,
}

impl Part {
    fn items(&self) -> usize {
        self.index.len() + self.chunks.len()
    }
}

/// The whole plan of a batch (or of its rest after a conflict).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub outcomes: Vec<OpOutcome>,
    /// Per changing op, in order: its seq.
    pub seqs: Vec<u64>,
    pub removed: Vec<Removed>,
    /// Parts in order; parts without changes are left out (nothing to write), so the last
    /// part may end before the ops do.
    pub parts: Vec<Part>,
}

/// Plans `ops` against `states` (every id of `ops` present), the user's change head `head`.
pub fn plan(ops: &[SampleOp], mut states: HashMap<String, State>, head: u64, now_ms: i64) -> Plan {
    let mut out = Plan::default();
    let mut seq = head;
    let mut part = Part::default();
    // Index state before the part, of ids the part touches.
    let mut before: HashMap<String, State> = HashMap::new();
    let mut bytes = 0usize;
    for (i, op) in ops.iter().enumerate() {
        let id = op.id().to_owned();
        let old = states
            .get(&id)
            .cloned()
            .unwrap_or(State::Absent)
            .aged(now_ms);
        let (outcome, new) = apply(op, &old, now_ms);
        out.outcomes.push(outcome);
        let Some(new) = new else {
            continue;
        };
        if matches!(outcome, OpOutcome::Updated | OpOutcome::Deleted) {
            out.removed.push(match &old {
                State::Live {
                    sample: Some(s), ..
                } => Removed::Known(s.clone()),
                State::Live { chunk, .. } => Removed::Stored {
                    id: id.clone(),
                    chunk: *chunk,
                },
                _ => unreachable!("only a live sample is updated or deleted"),
            });
        }
        let size = match op {
            SampleOp::Put(s) => encoded_len(s),
            SampleOp::Delete(id) => id.len() + 16,
        };
        // Would this op overflow the part? Count what it adds.
        let adds_index = usize::from(!part.index.contains_key(&id));
        let chunks_of = |s: &State| match s {
            State::Live { chunk, .. } => Some(*chunk),
            _ => None,
        };
        let touched: Vec<ChunkKey> = [chunks_of(before.get(&id).unwrap_or(&old)), chunks_of(&new)]
            .into_iter()
            .flatten()
            .collect();
        let adds_chunks = touched
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|c| !part.chunks.contains_key(c))
            .count();
        let crowded = touched.iter().any(|c| {
            part.chunks
                .get(c)
                .is_some_and(|e| e.set.len() + e.remove.len() >= MAX_CHUNK_IDS)
        });
        if !part.changes.is_empty()
            && (part.items() + adds_index + adds_chunks > MAX_PART_ITEMS
                || bytes + size > MAX_PART_BYTES
                || crowded)
        {
            close(&mut part, &mut before, &mut out.parts, i);
            bytes = 0;
        }
        seq += 1;
        out.seqs.push(seq);
        bytes += size;
        before.entry(id.clone()).or_insert_with(|| old.clone());
        part.changes.push(PlannedChange {
            seq,
            sample: match &new {
                State::Live { sample, .. } => sample.clone(),
                _ => None,
            },
            id: id.clone(),
        });
        part.index.insert(id.clone(), (new.clone(), seq));
        rebuild_chunks(&mut part, &before, &id);
        states.insert(id, new);
    }
    if !part.changes.is_empty() {
        close(&mut part, &mut before, &mut out.parts, ops.len());
    }
    out
}

fn close(part: &mut Part, before: &mut HashMap<String, State>, parts: &mut Vec<Part>, end: usize) {
    part.end = end;
    parts.push(std::mem::take(part));
    before.clear();
}

/// Recomputes the chunk edits of `id` in `part` from its state before the part and now.
fn rebuild_chunks(part: &mut Part, before: &HashMap<String, State>, id: &str) {
    for edit in part.chunks.values_mut() {
        edit.set.remove(id);
        edit.remove.remove(id);
    }
    let from = match before.get(id) {
        Some(State::Live { chunk, .. }) => Some(*chunk),
        _ => None,
    };
    let to = match part.index.get(id) {
        Some((
            State::Live {
                chunk,
                sample: Some(s),
                ..
            },
            _,
        )) => Some((*chunk, s.clone())),
        _ => None,
    };
    if let Some(c) = from
        && to.as_ref().is_none_or(|(t, _)| *t != c)
    {
        part.chunks
            .entry(c)
            .or_default()
            .remove
            .insert(id.to_owned());
    }
    if let Some((c, s)) = to {
        part.chunks
            .entry(c)
            .or_default()
            .set
            .insert(id.to_owned(), s);
    }
    part.chunks
        .retain(|_, e| !(e.set.is_empty() && e.remove.is_empty()));
}

/// One op against one id's state: its outcome and, when it changes something, the new state.
fn apply(op: &SampleOp, old: &State, now_ms: i64) -> (OpOutcome, Option<State>) {
    let newer =
        |stored: Option<i64>, sent: Option<i64>| sent.is_some_and(|v| v > stored.unwrap_or(-1));
    match (op, old) {
        (SampleOp::Put(s), State::Absent) => (OpOutcome::Inserted, Some(live(s))),
        (SampleOp::Put(s), State::Tomb { version, .. }) if newer(*version, s.version) => {
            (OpOutcome::Inserted, Some(live(s)))
        }
        (SampleOp::Put(s), State::Live { version, .. }) if newer(*version, s.version) => {
            (OpOutcome::Updated, Some(live(s)))
        }
        (SampleOp::Put(_), _) => (OpOutcome::Duplicate, None),
        (SampleOp::Delete(_), State::Live { version, .. }) => (
            OpOutcome::Deleted,
            Some(State::Tomb {
                version: *version,
                deleted_ms: now_ms,
            }),
        ),
        (SampleOp::Delete(_), _) => (OpOutcome::NotFound, None),
    }
}

fn live(s: &Sample) -> State {
    State::Live {
        chunk: (s.kind, codec::bucket_of(s.start.utc_ms)),
        version: s.version,
        sample: Some(s.clone()),
    }
}

/// About what a sample costs in the change log and its chunk.
fn encoded_len(s: &Sample) -> usize {
    let extra = s.extra.as_ref().map_or(0, |e| e.to_bytes().len());
    64 + s.id.len() + s.source.as_ref().map_or(0, String::len) + extra
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
