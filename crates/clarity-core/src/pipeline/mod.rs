//! The pipeline: what happens to a user's data after it reaches the window, from analysis to
//! insight to the push (window → analysis → insight → fan-out).
//!
//! [`Pipeline`] holds what that path uses and nothing more: the windows (to snapshot) and the
//! window service (to prepare a window asked for on request), the store, PAT scoring, the
//! insight generators, the analysis permits, the task tracker its background work runs on,
//! and the fan-out that delivers the results. Its two steps are its submodules:
//! [`analysis`] (snapshot a window, compute, store, push) and [`insight`] (generate, store,
//! push); the windows and the insight generators below them know nothing of the pipeline.
//! [`heart`] reads an analysis' heart samples from the store (they are not in the window), and
//! [`steps`] its step samples (for the per-day totals, dated by each sample's offset).
//! [`history`] analyses an import's weeks, once at its end.
//!
//! Rules:
//! - Completed days arrive as [`Due::Day`] events from the window service, consumed by one
//!   task ([`Pipeline::consume_days`]) in the order they were sent; windows never call into
//!   analyses. Edits and deletions arrive the same way ([`Due::Changed`]) and are handled by
//!   [`revise`] (recompute, supersede).
//! - A day's analysis is queued once: a completed-day event for a (user, day) whose analysis
//!   has not taken its snapshot yet is dropped, that analysis covering it.
//! - Background work is spawned on the session tracker, which shutdown waits for.

pub mod analysis;
pub mod heart;
pub mod history;
pub mod insight;
pub mod revise;
pub mod sleep;
pub mod steps;

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use crate::insights::Insights;
use crate::scoring::Pat;
use crate::store::Store;
use crate::streams::FanOut;
use crate::window::Windows;
use crate::window::service::{Due, WindowService};
use analysis::Trigger;

/// Analysis, insight and push, with what they need. Built once by the app and shared.
pub struct Pipeline {
    pub windows: Arc<Windows>,
    pub window_service: Arc<WindowService>,
    pub store: Arc<dyn Store>,
    /// PAT embeddings of full weeks; unavailable (with the reason) without a model bundle.
    pub pat: Pat,
    /// Insight generation (Gemini or local).
    pub insights: Insights,
    /// Analyses running at once: one per CPU, so sessions keep their share of the runtime.
    pub analysis_permits: Semaphore,
    /// Where background analyses and insights run (the app's session tracker).
    pub sessions: TaskTracker,
    pub fanout: Arc<FanOut>,
    /// One lock per user, held by a recomputation ([`revise`]) and by a new analysis or
    /// insight from its snapshot (or check) until it is stored: a result computed from data
    /// an edit is replacing is then either stored before the recomputation looks (and
    /// replaced by it) or computed after it (from the new data). See [`Pipeline::lock_user`].
    pub revising: dashmap::DashMap<uuid::Uuid, Arc<tokio::sync::Mutex<()>>>,
    /// Changed spans waiting for each user's recomputation runner ([`revise`]).
    pub revise_pending: dashmap::DashMap<uuid::Uuid, revise::Pending>,
    /// The day analyses spawned and not yet snapshotted, by (user, local midnight): a day
    /// already waiting is not queued again ([`Pipeline::consume_days`]).
    pub days_pending: dashmap::DashSet<(uuid::Uuid, Option<i64>)>,
}

/// `user`'s derived-results lock ([`Pipeline::revising`]); released (and its map entry
/// dropped when nobody else waits) on drop.
pub struct UserLock<'a> {
    pipeline: &'a Pipeline,
    user: uuid::Uuid,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for UserLock<'_> {
    fn drop(&mut self) {
        self.guard.take();
        self.pipeline
            .revising
            .remove_if(&self.user, |_, l| Arc::strong_count(l) == 1);
    }
}

impl Pipeline {
    /// Waits for and holds `user`'s derived-results lock. Not reentrant: code holding it
    /// calls the `*_locked` / `recompute` paths, never one that takes it again.
    pub async fn lock_user(&self, user: uuid::Uuid) -> UserLock<'_> {
        let lock = self.revising.entry(user).or_default().clone();
        let guard = lock.lock_owned().await;
        UserLock {
            pipeline: self,
            user,
            guard: Some(guard),
        }
    }

    /// Starts the analysis of each day the window service reports complete, in the order
    /// reported. It outlives the shutdown signal, since sessions still acknowledging batches
    /// during shutdown may complete days: each event keeps the session tracker busy until
    /// its analysis is spawned there, so the tracker empties only once no event is left, and
    /// then this task ends.
    pub async fn consume_days(self: Arc<Self>, mut days: mpsc::UnboundedReceiver<Due>) {
        let tracker = self.sessions.clone();
        let done = tracker.wait();
        tokio::pin!(done);
        loop {
            tokio::select! {
                biased;
                day = days.recv() => match day {
                    Some(Due::Day(day)) => {
                        // A day whose analysis waits (for its user's lock, behind others) is
                        // not queued again: that one snapshots the window later and sees
                        // what this event reports. A phone backfilling a week brings late
                        // data to the same days batch after batch.
                        if !self.days_pending.insert((day.user, day.midnight)) {
                            continue;
                        }
                        // The analysis continues the trace of the ingest that completed the day.
                        let _in = day.span.enter();
                        analysis::spawn(&self, day.user, Trigger::DayComplete, day.midnight, None);
                    }
                    Some(Due::Changed(changed)) => {
                        revise::spawn(
                            &self,
                            changed.user,
                            changed.spans.clone(),
                            changed.revisions.clone(),
                        );
                    }
                    None => return,
                },
                () = &mut done => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Day complete → analysis → insight → push, without a socket: the real fan-out, with a
    //! stream subscriber on each stream as the recorder, over SQLite in a temp dir.

    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::mpsc;
    use tokio_util::task::TaskTracker;
    use uuid::Uuid;

    use super::Pipeline;
    use crate::bus::Bus;
    use crate::bus::memory::{MemoryBus, Net};
    use crate::insights::Insights;
    use crate::samples::{Kind, Sample, Timestamp};
    use crate::scoring::Pat;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{DocKind, Store};
    use crate::streams::hub::Hub;
    use crate::streams::{Event, FanOut, Streams, SubShared};
    use crate::window::Windows;
    use crate::window::ownership::Ownership;
    use crate::window::service::WindowService;

    fn sample(utc_ms: i64, value: f64) -> Sample {
        Sample {
            version: None,
            id: utc_ms.to_string(),
            kind: Kind::StepCount,
            start: Timestamp {
                utc_ms,
                offset_secs: 0,
            },
            end: None,
            value,
            source: None,
            extra: None,
        }
    }

    async fn next(rx: &mut mpsc::Receiver<Event>) -> serde_json::Value {
        let ev = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("an event within a minute")
            .expect("the stream is open");
        serde_json::from_str(ev.frame.as_str()).unwrap()
    }

    struct Rig {
        pipeline: Arc<Pipeline>,
        window_service: Arc<WindowService>,
        store: Arc<dyn Store>,
        streams: Arc<Streams>,
        tracker: TaskTracker,
        _dir: tempfile::TempDir,
    }

    /// A pipeline over SQLite in a temp dir, consuming its window service's events.
    async fn rig() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::store::sqlite::SqliteOptions::default();
        let path = dir.path().to_owned();
        let store: Arc<dyn Store> = Arc::new(
            tokio::task::spawn_blocking(move || SqliteStore::open(&path, opts))
                .await
                .unwrap()
                .unwrap(),
        );
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(Uuid::new_v4(), Net::new()));
        let streams = Arc::new(Streams::new(256));
        let fanout = Arc::new(FanOut::new(
            Arc::new(Hub::default()),
            streams.clone(),
            bus.clone(),
            store.clone(),
        ));
        let windows = Arc::new(Windows::default());
        let ownership = Arc::new(Ownership::new(bus.clone(), Duration::from_secs(15)));
        let tracker = TaskTracker::new();
        let (window_service, days) = WindowService::new(
            windows.clone(),
            ownership,
            store.clone(),
            bus,
            tracker.clone(),
        );
        let window_service = Arc::new(window_service);
        let pipeline = Arc::new(Pipeline {
            windows,
            window_service: window_service.clone(),
            store: store.clone(),
            pat: Pat::unavailable("no model in this test"),
            insights: Insights::new(None, true),
            analysis_permits: tokio::sync::Semaphore::new(1),
            sessions: tracker.clone(),
            fanout,
            revising: Default::default(),
            revise_pending: Default::default(),
            days_pending: Default::default(),
        });
        tokio::spawn(pipeline.clone().consume_days(days));

        Rig {
            pipeline,
            window_service,
            store,
            streams,
            tracker,
            _dir: dir,
        }
    }

    /// Yesterday (of now) every ten minutes, then one sample now that completes it.
    fn completed_day() -> (Vec<Sample>, i64) {
        let last = chrono::Utc::now().timestamp_millis() / 60_000 * 60_000 - 60_000;
        let day_start = last / 86_400_000 * 86_400_000 - 86_400_000;
        let mut samples: Vec<Sample> = (0..144)
            .map(|i| sample(day_start + i * 600_000, 10.0 + (i % 7) as f64))
            .collect();
        samples.push(sample(last, 5.0));
        (samples, day_start)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_completed_day_is_analysed_explained_and_pushed() {
        let Rig {
            pipeline: _pipeline,
            window_service,
            store,
            streams,
            tracker,
            _dir,
        } = rig().await;
        let user = Uuid::new_v4();
        let mut recorders = Vec::new();
        let mut registrations = Vec::new();
        for kind in [DocKind::Analysis, DocKind::Insight] {
            let (tx, rx) = mpsc::channel(8);
            let shared = Arc::new(SubShared::new(Default::default()));
            registrations.push(streams.register(user, kind, user, tx, shared));
            recorders.push(rx);
        }

        let (samples, _) = completed_day();
        window_service.feed(user, &samples);

        let analysis = next(&mut recorders[0]).await;
        assert_eq!(analysis["type"], "analysis", "{analysis}");
        assert_eq!(analysis["stream"], "analyses", "{analysis}");
        assert_eq!(analysis["offset"], 1, "{analysis}");
        let analysis_id = analysis["analysis_id"].clone();
        assert!(analysis_id.is_string(), "{analysis}");
        assert_eq!(analysis["trigger"], "day_complete", "{analysis}");

        let insight = next(&mut recorders[1]).await;
        assert_eq!(insight["type"], "insight", "{insight}");
        assert_eq!(insight["stream"], "insights", "{insight}");
        assert_eq!(insight["analysis_id"], analysis_id, "{insight}");
        assert_eq!(insight["generator"], "local", "{insight}");

        // The insight's event is in the store, and the pipeline's work ends with shutdown.
        assert_eq!(store.stream_head(user, DocKind::Insight).await.unwrap(), 1);
        tracker.close();
        tokio::time::timeout(Duration::from_secs(10), tracker.wait())
            .await
            .expect("the pipeline's work ends");
        drop(registrations);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_day_waiting_for_its_analysis_is_not_queued_again() {
        let rig = rig().await;
        let user = Uuid::new_v4();
        let (tx, mut analyses) = mpsc::channel(8);
        let shared = Arc::new(SubShared::new(Default::default()));
        let _registration = rig
            .streams
            .register(user, DocKind::Analysis, user, tx, shared);

        // While the user's lock is held, the day completes and then gets late data five times
        // (a phone backfilling it batch by batch): one analysis waits, not six.
        let held = rig.pipeline.lock_user(user).await;
        let (samples, day_start) = completed_day();
        rig.window_service.feed(user, &samples);
        for i in 0..5 {
            rig.window_service
                .feed(user, &[sample(day_start + 300_000 + i * 600_000, 3.0)]);
        }
        // Each event holds a tracker token until consumed: once they are all consumed, only
        // the analyses they spawned are left.
        tokio::time::timeout(Duration::from_secs(10), async {
            while rig.tracker.len() != 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{} tasks wait, not 1", rig.tracker.len()));
        drop(held);
        let first = next(&mut analyses).await;
        assert_eq!(first["trigger"], "day_complete", "{first}");

        // Once that analysis took its snapshot, new late data queues the day again.
        rig.window_service
            .feed(user, &[sample(day_start + 420_000, 4.0)]);
        let second = next(&mut analyses).await;
        assert_eq!(second["trigger"], "day_complete", "{second}");
        assert_ne!(second["analysis_id"], first["analysis_id"]);
        assert!(rig.pipeline.days_pending.is_empty());
    }
}
