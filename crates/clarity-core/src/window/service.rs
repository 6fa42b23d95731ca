//! The window service: the one way into this node's windows for ingest, sessions, requests
//! and the bus.
//!
//! It holds what keeping windows needs and nothing more: the windows, the ownership leases,
//! the store (to rebuild a window) and the bus (to forward samples to the owner). It does not
//! run analyses: a day that new data completes becomes a [`DayComplete`] event on a channel
//! that the pipeline task consumes, so windows never call back into analysis.
//!
//! Rules (besides those of `ownership`):
//! - Events are sent in the order the days were completed and consumed in that order.
//! - The channel is unbounded: an event is a few words, at most one per completed local day
//!   per window update, and the consumer only spawns the analysis. Sending never waits, so
//!   applying samples (on the ingest path) never waits on analyses.
//! - Each event holds a token of the task tracker until its analysis is spawned there, so
//!   shutdown, which waits for the tracker, still waits for the analysis of a day completed
//!   by the last batches a session acknowledged.
//! - An edit or deletion ([`WindowService::data_changed`]) repairs the hours it touched from
//!   the store (subtracting old values from minute bins cannot undo a source's priority or
//!   the step coverage marks; reading those hours again can; see `window::repair`), on the
//!   owner: another node tells the owner over the bus (`Resync`, a rebuild). It then sends a
//!   [`DataChanged`] event on the same channel, after the days the batch completed, so the
//!   pipeline recomputes the analyses over those times.
//! - A node that takes a user's window (fresh ownership: after a restart or a takeover), once
//!   it has rebuilt it, reports due the changed times whose recomputation was never confirmed
//!   (`Store::pending_revisions`): an ack promises derived results that follow the data,
//!   whichever node dies. Until that read succeeds (the rebuild or the read may fail on a
//!   failing store) the user stays in `recovery_due` and every later use of the window as
//!   its owner tries again: the claim is fresh only once.

use std::sync::Arc;

use dashmap::DashSet;
use tokio::sync::mpsc;
use tokio_util::task::{TaskTracker, task_tracker::TaskTrackerToken};
use uuid::Uuid;

use super::ownership::{Claim, Ownership};
use super::{Applied, Windows};
use crate::bus::{Bus, Message};
use crate::samples::Sample;
use crate::store::{Store, StoreResult};

/// A local day that new data completed (or brought late activity to): its analysis is due.
pub struct DayComplete {
    pub user: Uuid,
    /// The day's local midnight, in minutes since the epoch (UTC).
    pub midnight: Option<i64>,
    /// Keeps shutdown waiting until the analysis is spawned.
    _held: TaskTrackerToken,
    /// Where the day was completed (the ingest of a frame or request): the analysis is
    /// traced as its child.
    pub span: tracing::Span,
}

/// Stored samples were replaced or removed: the analyses over these times are due again.
pub struct DataChanged {
    pub user: Uuid,
    /// The times, UTC ms `[start, end]`, of the old samples and of their new versions.
    pub spans: Vec<(i64, i64)>,
    /// The change seqs (`[from, to]`) whose stored revisions these spans are: cleared once
    /// recomputed (`store::revisions`).
    pub revisions: Vec<(u64, u64)>,
    /// Keeps shutdown waiting until the recomputation is spawned.
    _held: TaskTrackerToken,
}

/// What the pipeline is told, in order.
pub enum Due {
    Day(DayComplete),
    Changed(DataChanged),
}

/// Windows, leases, the store and the bus, plus where completed days go. Built once by the
/// app and shared.
pub struct WindowService {
    windows: Arc<Windows>,
    ownership: Arc<Ownership>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    tracker: TaskTracker,
    days: mpsc::UnboundedSender<Due>,
    /// Users this node took the window of whose pending revisions it has not read yet.
    recovery_due: DashSet<Uuid>,
}

impl WindowService {
    /// The service, and the receiving end of its completed days (for the pipeline task).
    pub fn new(
        windows: Arc<Windows>,
        ownership: Arc<Ownership>,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        tracker: TaskTracker,
    ) -> (WindowService, mpsc::UnboundedReceiver<Due>) {
        let (days, rx) = mpsc::unbounded_channel();
        let service = WindowService {
            windows,
            ownership,
            store,
            bus,
            tracker,
            days,
            recovery_due: DashSet::new(),
        };
        (service, rx)
    }

    /// Applies new samples to the window this node owns; a completed local day starts the
    /// daily analysis.
    pub fn feed(&self, user: Uuid, fresh: &[Sample]) {
        let applied = self.windows.apply(user, fresh);
        self.start_due_analysis(user, &applied);
    }

    /// Starts the daily analysis of the last day new data completed, and again that of every
    /// complete day it brought late activity to. (An analysis that finds the same input as
    /// one already stored is neither stored nor pushed again.)
    pub fn start_due_analysis(&self, user: Uuid, applied: &Applied) {
        let due = applied.due_days();
        if due.is_empty() {
            return;
        }
        let offset = self
            .windows
            .get(user)
            .map(|w| w.with(|s, _| s.offset_secs()))
            .unwrap_or(0);
        for day in due {
            let midnight = day
                .and_hms_opt(0, 0, 0)
                .map(|t| (t.and_utc().timestamp() - i64::from(offset)) / 60);
            // The receiver lives as long as the app; a send fails only once it is gone.
            let _ = self.days.send(Due::Day(DayComplete {
                user,
                midnight,
                _held: self.tracker.token(),
                span: tracing::Span::current(),
            }));
        }
    }

    /// Sends newly stored samples to the user's window: here if this node owns it
    /// (rebuilding it first when it just became the owner), else over the bus to the owner.
    pub async fn to_window(&self, user: Uuid, fresh: Vec<Sample>) {
        match self.ownership.claim(user).await {
            Claim::Owner { fresh: false } => {
                self.feed(user, &fresh);
                self.recover_if_due(user).await;
            }
            Claim::Owner { fresh: true } => self.take_over(user, &fresh).await,
            Claim::Elsewhere => {
                // A copy kept here would miss what the owner gets from elsewhere.
                self.windows.remove(user);
                self.recovery_due.remove(&user);
                self.bus.publish(Message::Samples {
                    user,
                    samples: fresh,
                });
            }
        }
    }

    /// Stored samples of `user` were replaced or removed (`spans`: their old and new times,
    /// stored as the revisions of change seqs `revisions`, the runs of seqs the write took),
    /// and `inserted` are new: the
    /// owner's window is read again from the store (the new samples applied once, after it,
    /// so the days they complete count), then the analyses over `spans` are reported due.
    pub async fn data_changed(
        &self,
        user: Uuid,
        inserted: Vec<Sample>,
        spans: Vec<(i64, i64)>,
        revisions: Vec<(u64, u64)>,
    ) {
        match self.ownership.claim(user).await {
            // Just became the owner: the rebuild reads the changed samples as stored.
            Claim::Owner { fresh: true } => self.take_over(user, &inserted).await,
            // No window here holds old values: new samples go where they always do.
            Claim::Owner { fresh: false } if self.windows.get(user).is_none() => {
                if !inserted.is_empty() {
                    self.feed(user, &inserted);
                }
                self.recover_if_due(user).await;
            }
            Claim::Owner { fresh: false } => {
                match self
                    .windows
                    .repair(&*self.store, user, &inserted, &spans)
                    .await
                {
                    Ok(applied) => self.start_due_analysis(user, &applied),
                    Err(e) => {
                        tracing::warn!(error = %e, "window rebuild failed; it is retried at the next session");
                    }
                }
                self.recover_if_due(user).await;
            }
            Claim::Elsewhere => {
                self.windows.remove(user);
                self.recovery_due.remove(&user);
                if !inserted.is_empty() {
                    self.bus.publish(Message::Samples {
                        user,
                        samples: inserted,
                    });
                }
                // The owner holds the old values: it reads the store again.
                self.bus.publish(Message::Resync {
                    users: Some(vec![user]),
                });
            }
        }
        let _ = self.days.send(Due::Changed(DataChanged {
            user,
            spans,
            revisions,
            _held: self.tracker.token(),
        }));
    }

    /// This node just became the owner of `user`'s window: reads the store first (`fresh`, a
    /// batch stored already, is applied once, after the rebuild, so a day it completes is seen
    /// as completed), then recovers what was left to recompute.
    async fn take_over(&self, user: Uuid, fresh: &[Sample]) {
        self.recovery_due.insert(user);
        self.windows.mark_stale(user);
        match self.windows.ensure_with(&*self.store, user, fresh).await {
            Ok(applied) => self.start_due_analysis(user, &applied),
            Err(e) => {
                tracing::warn!(error = %e, "window rebuild failed; it is retried at the next session");
            }
        }
        self.recover_if_due(user).await;
    }

    /// Reports due again the changed times of `user` whose recomputation was never confirmed
    /// (the node that acked them died first, or gave up on a failing store), once after this
    /// node took the window (`recovery_due`); a failed read is tried again at the next use.
    async fn recover_if_due(&self, user: Uuid) {
        // A read lock on the hot path; the entry is taken so that one caller reads.
        if !self.recovery_due.contains(&user) || self.recovery_due.remove(&user).is_none() {
            return;
        }
        match self.store.pending_revisions(user).await {
            Ok(pending) if pending.is_empty() => {}
            Ok(pending) => {
                tracing::info!(
                    revisions = pending.len(),
                    "recomputing analyses over changes not recomputed before"
                );
                let _ = self.days.send(Due::Changed(DataChanged {
                    user,
                    revisions: pending.iter().map(|r| (r.seq, r.seq)).collect(),
                    spans: pending.into_iter().flat_map(|r| r.spans).collect(),
                    _held: self.tracker.token(),
                }));
            }
            Err(e) => {
                self.recovery_due.insert(user);
                tracing::warn!(error = %e, "pending recomputations not read; tried again at the next use of the window");
            }
        }
    }

    /// Prepares this node's window of `user` for a session here: the owner keeps its window
    /// (and rebuilds it from the store when it just became the owner); a non-owner keeps
    /// none, since the owner gets the user's samples.
    pub async fn open_window(&self, user: Uuid) -> StoreResult<Claim> {
        let claim = self.ownership.claim(user).await;
        match claim {
            Claim::Owner { fresh } => {
                if fresh {
                    self.recovery_due.insert(user);
                    self.windows.mark_stale(user);
                }
                let rebuilt = self.windows.ensure(&*self.store, user).await;
                if let Ok(applied) = &rebuilt {
                    self.start_due_analysis(user, applied);
                }
                // After the rebuild, not before: the rebuild holds the session's first frames
                // meanwhile, and is the one wait a session starts with. Tried even when the
                // rebuild failed (the recomputation reads the store itself).
                self.recover_if_due(user).await;
                rebuilt?;
            }
            Claim::Elsewhere => {
                self.windows.remove(user);
                self.recovery_due.remove(&user);
            }
        }
        Ok(claim)
    }

    /// Prepares a window to analyse on request: the owner's own, or on another node a copy
    /// read afresh from the store (which has everything acked, wherever it arrived).
    pub async fn window_for_request(&self, user: Uuid) -> StoreResult<()> {
        let claim = self.ownership.claim(user).await;
        match claim {
            Claim::Owner { fresh: false } => {}
            Claim::Owner { fresh: true } => {
                self.recovery_due.insert(user);
                self.windows.mark_stale(user);
            }
            Claim::Elsewhere => self.windows.mark_stale(user),
        }
        let rebuilt = self.windows.ensure(&*self.store, user).await;
        if let Claim::Owner { .. } = claim {
            if let Ok(applied) = &rebuilt {
                self.start_due_analysis(user, applied);
            }
            self.recover_if_due(user).await;
        }
        rebuilt.map(|_| ())
    }

    /// Rebuilds the owned windows of `users` (all owned when `None`) from the store:
    /// forwarded samples may have been lost. At most a few at a time, so a resync of many
    /// users does not flood the store.
    pub async fn resync(&self, users: Option<Vec<Uuid>>) {
        use futures_util::StreamExt;
        let users: Vec<Uuid> = users
            .unwrap_or_else(|| self.ownership.owned())
            .into_iter()
            .filter(|u| self.ownership.owns(*u))
            .collect();
        if users.is_empty() {
            return;
        }
        tracing::info!(
            windows = users.len(),
            "rebuilding windows that may have missed samples"
        );
        for u in &users {
            self.windows.mark_stale(*u);
        }
        futures_util::stream::iter(users)
            .for_each_concurrent(4, |u| async move {
                match self.windows.ensure(&*self.store, u).await {
                    Ok(applied) => self.start_due_analysis(u, &applied),
                    Err(e) => {
                        tracing::warn!(error = %e, "window rebuild failed; it is retried at the next session");
                    }
                }
            })
            .await;
    }
}
