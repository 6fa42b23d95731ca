//! The pipeline: what happens to a user's data after it reaches the window, from analysis to
//! insight to the push (window → analysis → insight → fan-out).
//!
//! [`Pipeline`] holds what that path uses and nothing more: the windows (to snapshot) and the
//! window service (to prepare a window asked for on request), the store, PAT scoring, the
//! insight generators, the analysis permits, the task tracker its background work runs on,
//! and the fan-out that delivers the results. The steps themselves live with their subject
//! (`window::analysis`, `insights`) and take the pipeline.
//!
//! Rules:
//! - Completed days arrive as [`DayComplete`] events from the window service, consumed by one
//!   task ([`Pipeline::consume_days`]) in the order they were sent; windows never call into
//!   analyses.
//! - Background work is spawned on the session tracker, which shutdown waits for.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use crate::insights::Insights;
use crate::scoring::Pat;
use crate::store::Store;
use crate::streams::FanOut;
use crate::window::Windows;
use crate::window::analysis::Trigger;
use crate::window::service::{DayComplete, WindowService};

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
}

impl Pipeline {
    /// Starts the analysis of each day the window service reports complete, in the order
    /// reported. It outlives the shutdown signal, since sessions still acknowledging batches
    /// during shutdown may complete days: each event keeps the session tracker busy until
    /// its analysis is spawned there, so the tracker empties only once no event is left, and
    /// then this task ends.
    pub async fn consume_days(self: Arc<Self>, mut days: mpsc::UnboundedReceiver<DayComplete>) {
        let tracker = self.sessions.clone();
        let done = tracker.wait();
        tokio::pin!(done);
        loop {
            tokio::select! {
                biased;
                day = days.recv() => match day {
                    Some(day) => crate::window::analysis::spawn(
                        &self,
                        day.user,
                        Trigger::DayComplete,
                        day.midnight,
                        None,
                    ),
                    None => return,
                },
                () = &mut done => return,
            }
        }
    }
}
