//! Pending recomputations: what a write that replaced or removed samples leaves in the store
//! until the analyses over its times have been recomputed, so that derived results follow
//! the data even when the node dies between the ack and the recomputation.
//!
//! Rules every backend keeps:
//! - A [`Store::write_samples`](super::Store::write_samples) transaction that replaces or
//!   removes samples stores one [`Revision`] in that same transaction (SQLite: one per call;
//!   DynamoDB: one per part, each part being its own transaction): the times of the old
//!   samples and of their new versions, keyed by the last change seq the transaction took,
//!   which no other transaction of the user takes.
//! - The pipeline clears revisions (`clear_revisions`, by seq ranges) only once every analysis
//!   over their times has been recomputed: a recomputation is idempotent, so doing one twice
//!   is harmless, and clearing one not done would lose it. The ranges are the runs of seqs
//!   the write itself took ([`seq_runs`]), never the span from its first seq to its last: a
//!   write split into parts (DynamoDB) that lost a race took seqs around another node's
//!   write, whose revision is that node's to clear.
//! - A revision left behind (the node was killed, or gave up on a failing store) is found by
//!   `pending_revisions` when a node next opens the user's window (a session, an ingest or a
//!   request after a restart or a takeover), and recomputed then.
//! - Erasing an account erases its revisions.

use crate::samples::Sample;

use super::{OpOutcome, SampleOp};

/// The changed times of one write transaction whose recomputation is not confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The last change seq of the transaction.
    pub seq: u64,
    /// UTC ms `[start, end]` of the old samples and of their new versions.
    pub spans: Vec<(i64, i64)>,
}

/// The changed times of `ops` given what each did (`outcomes`, in op order) and the samples
/// they replaced or removed (`removed`): the old samples' and the new versions' spans.
/// Empty when nothing was replaced or removed (inserts change no analysis' input that an
/// analysis had seen: a day they complete is analysed anew).
pub fn changed_spans<'a>(
    ops: impl IntoIterator<Item = &'a SampleOp>,
    outcomes: &[OpOutcome],
    removed: &[Sample],
) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = removed.iter().map(Sample::span).collect();
    for (op, outcome) in ops.into_iter().zip(outcomes) {
        if let (SampleOp::Put(s), OpOutcome::Updated) = (op, outcome) {
            spans.push(s.span());
        }
    }
    spans
}

/// The runs of consecutive seqs in `seqs` (ascending, as a write's result lists them) as
/// inclusive ranges: what [`clear_revisions`](super::Store::clear_revisions) may clear for
/// that write.
pub fn seq_runs(seqs: &[u64]) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &seq in seqs {
        match runs.last_mut() {
            Some((_, last)) if seq == *last + 1 => *last = seq,
            _ => runs.push((seq, seq)),
        }
    }
    runs
}

/// The stored form of `spans` (JSON `[[start, end], ...]`), the same on every backend.
pub fn encode_spans(spans: &[(i64, i64)]) -> String {
    serde_json::to_string(spans).expect("integers encode")
}

/// [`encode_spans`]'s inverse; `None` for anything else.
pub fn decode_spans(text: &str) -> Option<Vec<(i64, i64)>> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_runs_leave_out_the_seqs_another_write_took_between_parts() {
        assert_eq!(seq_runs(&[]), Vec::<(u64, u64)>::new());
        assert_eq!(seq_runs(&[7]), vec![(7, 7)]);
        assert_eq!(seq_runs(&[3, 4, 5]), vec![(3, 5)]);
        // Parts of one write at 10-12 and, after losing a race to a write at 13-15, 16-17.
        assert_eq!(seq_runs(&[10, 11, 12, 16, 17]), vec![(10, 12), (16, 17)]);
    }
    use crate::samples::{Kind, Timestamp};

    fn at(id: &str, ms: i64) -> Sample {
        Sample::new(
            id,
            Kind::StepCount,
            Timestamp {
                utc_ms: ms,
                offset_secs: 0,
            },
            Some(Timestamp {
                utc_ms: ms + 60_000,
                offset_secs: 0,
            }),
            1.0,
            None,
        )
    }

    #[test]
    fn spans_are_the_old_samples_and_the_new_versions_only() {
        let ops = [
            SampleOp::Put(at("new", 0)),
            SampleOp::Put(at("moved", 500_000)),
            SampleOp::Delete("gone".into()),
            SampleOp::Put(at("dup", 900_000)),
        ];
        let outcomes = [
            OpOutcome::Inserted,
            OpOutcome::Updated,
            OpOutcome::Deleted,
            OpOutcome::Duplicate,
        ];
        let removed = [at("moved", 100_000), at("gone", 200_000)];
        let spans = changed_spans(&ops, &outcomes, &removed);
        assert_eq!(
            spans,
            vec![(100_000, 160_000), (200_000, 260_000), (500_000, 560_000)]
        );
        assert_eq!(decode_spans(&encode_spans(&spans)), Some(spans));
        assert_eq!(decode_spans("{}"), None);
        assert!(changed_spans(&ops[..1], &outcomes[..1], &[]).is_empty());
    }
}
