//! The ingest path shared by REST uploads and WebSocket `samples` and `series` frames.
//!
//! Rules: validation happens before the store is touched and rejects per sample; the report
//! exists only once the store has committed, so building one means the accepted samples are
//! durable. A report never echoes client input at length: it lists the first
//! [`MAX_LISTED_REJECTIONS`] rejections, each message cut to [`MAX_REJECTION_MESSAGE`]
//! characters, and counts the rest (`rejected_omitted`).
//!
//! [`Ingest`] is the handle: the store, the window service and the per-user sample budgets;
//! completed days leave through the window service as events, so ingest never runs analyses.
//!
//! Sync v2: every write is a list of [`SampleOp`]s (uploads are `Put`s, a `delete` frame or
//! request `Delete`s) applied by [`Ingest::write`], the one path to the store. A write that
//! replaced or removed stored samples (`Updated`, `Deleted`) makes the window service rebuild
//! the user's window from the store and report the changed times, so that derived results
//! over them are recomputed (see `pipeline::revise`): a window never keeps a deleted or an
//! old value, and no current analysis depends on one.

use std::sync::Arc;
use tracing::Instrument;

use dashmap::DashMap;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::metrics::SAMPLES;
use crate::rate::TokenBucket;
pub use crate::samples::ids::{BadIds, MAX_DELETE_IDS, check_ids};
use crate::samples::{self, Rejection, Sample};
use crate::store::{OpOutcome, SampleOp, Store, StoreError, WriteResult};
use crate::streams::feed::{self, Feed};
use crate::window::service::WindowService;

/// Inputs above this size are validated on the blocking pool: validation costs about a
/// microsecond a sample, and a 1 MiB frame would otherwise hold one of the runtime's workers
/// (two on a 2-core machine) for several milliseconds.
pub const OFFLOAD_BYTES: usize = 64 * 1024;

/// Rejections listed in a report; the rest are only counted. A frame of thousands of bad
/// samples would otherwise be answered with an ack larger than the frame.
pub const MAX_LISTED_REJECTIONS: usize = 100;

/// Longest rejection message, in characters (a message may quote the sample's input). Room
/// for the longest message the parser writes, `unknown_kind` with the list of all kinds
/// (about 390 characters): cutting it would drop kinds from the list it promises.
pub const MAX_REJECTION_MESSAGE: usize = 400;

/// A validated batch, not yet stored.
pub struct Prepared {
    samples: Vec<Sample>,
    rejected: Vec<Rejection>,
    rejected_omitted: usize,
}

/// What happened to each sample of a batch (the `ack` of a `samples` or `delete` frame, the
/// answer to an upload).
#[derive(Debug, Default, Serialize)]
pub struct IngestReport {
    /// Stored now (new ids).
    pub accepted: usize,
    /// Already stored (same `id` for this user, same or lower `version`): not stored again.
    pub duplicates: usize,
    /// Stored ids replaced by a higher `version`.
    pub updated: usize,
    /// Stored samples removed (a delete). Not part of an upload's answer.
    #[serde(skip)]
    pub deleted: usize,
    /// Ids a delete named that were not stored (unknown or already deleted). Not part of an
    /// upload's answer.
    #[serde(skip)]
    pub not_found: usize,
    /// Not stored, with why: the first 100 such samples.
    pub rejected: Vec<Rejection>,
    /// Further samples not stored because they are invalid, beyond those listed in `rejected`.
    pub rejected_omitted: usize,
}

/// The answer to a delete: what was removed, and which named ids were not stored.
#[derive(Debug, Default, Serialize)]
pub struct DeleteReport {
    pub deleted: usize,
    pub not_found: usize,
    /// The ids counted in `not_found`, in request order.
    pub not_found_ids: Vec<String>,
}

/// A batch's place in its session's order. Batches in flight are stored concurrently (on
/// DynamoDB they complete in any order), but their samples reach the window in the order
/// the client sent them: each waits for the one before. So the batch that completes a day
/// is applied after every batch sent before it, and that day's analysis sees them all.
pub struct Turn {
    /// Resolves (or fails, if that batch was dropped) once the previous batch is applied.
    previous: Option<oneshot::Receiver<()>>,
    /// Dropped once this batch is applied (or given up): that releases the next one.
    _release_next: oneshot::Sender<()>,
}

impl Turn {
    /// The next turn after `last` (the previous batch's release), which it then holds.
    pub fn next(last: &mut Option<oneshot::Receiver<()>>) -> Turn {
        let (release_next, release) = oneshot::channel();
        Turn {
            previous: last.replace(release),
            _release_next: release_next,
        }
    }

    /// Gives the turn up without applying anything, once the batches before are applied:
    /// the order holds for the batches after a failed one too.
    pub async fn pass(mut self) {
        self.wait().await;
    }

    async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            // An error means the previous batch ended without reaching the window (store
            // failure, session gone): nothing to wait for.
            let _ = previous.await;
        }
    }
}

pub fn prepare(raw: &[&RawValue]) -> Prepared {
    prepared(samples::parse_batch(
        raw,
        chrono::Utc::now().timestamp_millis(),
    ))
}

/// A `series` frame's samples, validated as the same samples in a `samples` frame would be.
pub fn prepare_series(series: &samples::Series) -> Prepared {
    prepared(samples::parse_series(
        series,
        chrono::Utc::now().timestamp_millis(),
    ))
}

fn prepared((valid, mut rejected): (Vec<(usize, Sample)>, Vec<Rejection>)) -> Prepared {
    let rejected_omitted = rejected.len().saturating_sub(MAX_LISTED_REJECTIONS);
    rejected.truncate(MAX_LISTED_REJECTIONS);
    for r in &mut rejected {
        if let Some((cut, _)) = r.message.char_indices().nth(MAX_REJECTION_MESSAGE) {
            r.message.truncate(cut);
            r.message.push('…');
        }
    }
    Prepared {
        samples: valid.into_iter().map(|(_, s)| s).collect(),
        rejected,
        rejected_omitted,
    }
}

/// Runs a validation closure on the blocking pool.
pub async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow::anyhow!("validation task failed: {e}"))
}

/// One user's sample budget on this node, all their sessions and REST uploads together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserBudget {
    /// Sustained samples per second.
    pub per_sec: u32,
    /// Samples that may arrive at once above the sustained rate.
    pub burst: u32,
}

/// What ingest needs: the store, the window service (new samples go to the window, whose
/// completed days it reports), and this node's per-user sample budgets. Built once by the
/// app and shared.
pub struct Ingest {
    store: Arc<dyn Store>,
    window_service: Arc<WindowService>,
    /// Samples per second per user on this node (all sessions and REST uploads together);
    /// full buckets are dropped by the window sweep ([`Ingest::forget_full_budgets`]).
    user_samples: DashMap<Uuid, TokenBucket>,
    per_sec: u32,
    burst: u32,
    /// Where writes that changed something are announced (change feed followers).
    feed: Option<Arc<Feed>>,
}

impl Ingest {
    pub fn new(
        store: Arc<dyn Store>,
        window_service: Arc<WindowService>,
        budget: UserBudget,
    ) -> Ingest {
        Ingest {
            store,
            window_service,
            user_samples: DashMap::new(),
            per_sec: budget.per_sec.max(1),
            burst: budget.burst.max(1),
            feed: None,
        }
    }

    /// Announces every write that changes a user's samples to `feed`.
    pub fn with_feed(mut self, feed: Arc<Feed>) -> Ingest {
        self.feed = Some(feed);
        self
    }

    /// Takes `n` samples from `user`'s per-second budget on this node, or says how long until
    /// they fit (the request is then refused, not queued).
    pub fn admit(&self, user: Uuid, n: usize) -> Result<(), std::time::Duration> {
        self.user_samples
            .entry(user)
            .or_insert_with(|| TokenBucket::new(self.per_sec, self.burst))
            .try_take_n(n)
    }

    /// Drops the budgets that are full again (their users have been quiet), so the map does
    /// not grow with every user ever seen.
    pub fn forget_full_budgets(&self) {
        self.user_samples.retain(|_, bucket| !bucket.is_full());
    }

    /// Stores the valid part of a batch; resolves once it is durable. The new samples then go
    /// into the user's live window; a completed local day starts the daily analysis.
    pub async fn commit(
        &self,
        user: Uuid,
        prepared: Prepared,
        transport: &'static str,
    ) -> Result<IngestReport, StoreError> {
        self.commit_in_turn(user, prepared, transport, None).await
    }

    /// [`Ingest::commit`], applying to the window only once the batch before it (`turn`) has been.
    pub async fn commit_in_turn(
        &self,
        user: Uuid,
        prepared: Prepared,
        transport: &'static str,
        turn: Option<Turn>,
    ) -> Result<IngestReport, StoreError> {
        let Prepared {
            samples,
            rejected,
            rejected_omitted,
        } = prepared;
        let ops = samples.into_iter().map(SampleOp::Put).collect();
        let (mut report, _) = self.write(user, ops, transport, turn).await?;
        report.rejected = rejected;
        report.rejected_omitted = rejected_omitted;
        count(
            transport,
            "rejected",
            report.rejected.len() + rejected_omitted,
        );
        Ok(report)
    }

    /// Deletes `ids` (checked with [`check_ids`]) of `user`; resolves once durable.
    pub async fn delete(
        &self,
        user: Uuid,
        ids: Vec<String>,
        transport: &'static str,
        turn: Option<Turn>,
    ) -> Result<(IngestReport, Vec<String>), StoreError> {
        let ops = ids.into_iter().map(SampleOp::Delete).collect();
        self.write(user, ops, transport, turn).await
    }

    /// Applies `ops` in order and resolves once they are durable: the one way samples reach
    /// the store. Then, in the session's turn, new samples go to the window; a write that
    /// replaced or removed stored samples makes the window be rebuilt and the derived results
    /// over the changed times be recomputed. Returns the counts and the ids of `Delete`s that
    /// found nothing.
    pub async fn write(
        &self,
        user: Uuid,
        ops: Vec<SampleOp>,
        transport: &'static str,
        mut turn: Option<Turn>,
    ) -> Result<(IngestReport, Vec<String>), StoreError> {
        // The ops are moved into the store call; what the window needs of them is kept.
        let kept: Vec<Option<Sample>> = ops
            .iter()
            .map(|op| match op {
                SampleOp::Put(s) => Some(s.clone()),
                SampleOp::Delete(_) => None,
            })
            .collect();
        let deleted_ids: Vec<Option<String>> = ops
            .iter()
            .map(|op| match op {
                SampleOp::Delete(id) => Some(id.clone()),
                SampleOp::Put(_) => None,
            })
            .collect();
        let commit = tracing::info_span!("store.commit", ops = kept.len());
        let written = match self.store.write_samples(user, ops).instrument(commit).await {
            Ok(w) => w,
            Err(e) => {
                if let Some(turn) = turn {
                    turn.pass().await;
                }
                return Err(e);
            }
        };
        // The write is durable here: followers of the change feed are told first.
        let WriteResult {
            outcomes,
            removed,
            seqs,
        } = written;
        feed::announce(
            self.feed.as_deref(),
            user,
            !seqs.is_empty(),
            seqs.last().copied(),
        );
        let mut report = IngestReport::default();
        let mut not_found_ids = Vec::new();
        let mut inserted = Vec::new();
        let mut changed_spans: Vec<(i64, i64)> = removed.iter().map(Sample::span).collect();
        for ((outcome, put), del) in outcomes.iter().zip(kept).zip(deleted_ids) {
            match outcome {
                OpOutcome::Inserted => {
                    report.accepted += 1;
                    inserted.extend(put);
                }
                OpOutcome::Updated => {
                    report.updated += 1;
                    changed_spans.extend(put.as_ref().map(Sample::span));
                }
                OpOutcome::Duplicate => report.duplicates += 1,
                OpOutcome::Deleted => report.deleted += 1,
                OpOutcome::NotFound => {
                    report.not_found += 1;
                    not_found_ids.extend(del);
                }
            }
        }
        if let Some(turn) = &mut turn {
            turn.wait().await;
        }
        if !changed_spans.is_empty() {
            // Old values are in the window: it is read again from the store (which has the
            // new ones), and the analyses over the changed times are recomputed.
            let revisions = crate::store::revisions::seq_runs(&seqs);
            self.window_service
                .data_changed(user, inserted, changed_spans, revisions)
                .await;
        } else if !inserted.is_empty() {
            // Duplicates are already in the window (or older than it): only new samples count.
            self.window_service.to_window(user, inserted).await;
        }
        // Releases the next batch of the session.
        drop(turn);
        count(transport, "accepted", report.accepted);
        count(transport, "duplicate", report.duplicates);
        count(transport, "updated", report.updated);
        count(transport, "deleted", report.deleted);
        count(transport, "not_found", report.not_found);
        Ok((report, not_found_ids))
    }
}

fn count(transport: &'static str, outcome: &'static str, n: usize) {
    if n > 0 {
        metrics::counter!(SAMPLES, "outcome" => outcome, "transport" => transport)
            .increment(n as u64);
    }
}
