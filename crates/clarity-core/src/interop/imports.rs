//! Import jobs on this node: start, state, progress frames, and the analysis at the end.
//!
//! Rules:
//! - One import per user at a time ([`StartError::Running`]); the job's state lives in memory
//!   on the node that took the upload (a restart forgets it: re-POSTing the file re-runs the
//!   import, and derived ids make that add nothing twice).
//! - Only the job's owner sees it.
//! - The user's sessions get `import_progress` at most every 500 ms while it runs and one
//!   `import_done` at the end (protocol/schemas/server/import_*.json).
//! - The upload stays in the data dir's `imports/` folder after the import, so that it can be
//!   re-run when mappings improve.
//! - Samples go to the store only, not through the window: a history of years would complete
//!   every one of its days. At the end the user's window is re-read from the store and the
//!   latest week is analysed once (trigger `import`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use serde::Serialize;
use uuid::Uuid;

use super::apple_health::{self, ImportReport, Limits};
use crate::pipeline::Pipeline;
use crate::pipeline::analysis::{self, Trigger};
use crate::protocol::{ServerFrame, encode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobError {
    pub code: &'static str,
    pub message: String,
}

/// A job as `GET /api/v1/imports/{id}` shows it (and the frames carry it).
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub import_id: Uuid,
    pub format: &'static str,
    pub state: State,
    #[serde(flatten)]
    pub report: ImportReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
}

struct Job {
    user: Uuid,
    view: JobView,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("an import of this account is running already ({0}); wait for its import_done")]
    Running(Uuid),
}

/// This node's import jobs.
pub struct Imports {
    pipeline: Arc<Pipeline>,
    dir: PathBuf,
    limits: Limits,
    jobs: DashMap<Uuid, Arc<Mutex<Job>>>,
    running: DashMap<Uuid, Uuid>,
}

impl Imports {
    pub fn new(pipeline: Arc<Pipeline>, data_dir: &Path, limits: Limits) -> Imports {
        Imports {
            pipeline,
            dir: data_dir.join("imports"),
            limits,
            jobs: DashMap::new(),
            running: DashMap::new(),
        }
    }

    /// Where the upload of `id` is written (the folder is created).
    pub fn upload_path(&self, id: Uuid) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        Ok(self.dir.join(format!("{id}.export")))
    }

    /// Claims the user's import slot for a new upload; [`Imports::release`] gives it back if
    /// the upload fails before [`Imports::start`].
    pub fn claim(&self, user: Uuid) -> Result<Uuid, StartError> {
        let id = Uuid::now_v7();
        match self.running.entry(user) {
            dashmap::Entry::Occupied(e) => Err(StartError::Running(*e.get())),
            dashmap::Entry::Vacant(v) => {
                v.insert(id);
                Ok(id)
            }
        }
    }

    pub fn release(&self, user: Uuid, id: Uuid) {
        self.running.remove_if(&user, |_, running| *running == id);
    }

    /// Starts the claimed import `id` of the uploaded file at `path`.
    pub fn start(self: &Arc<Self>, user: Uuid, id: Uuid, path: PathBuf, format: &'static str) {
        let job = Arc::new(Mutex::new(Job {
            user,
            view: JobView {
                import_id: id,
                format,
                state: State::Running,
                report: ImportReport {
                    bytes_total: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                    ..ImportReport::default()
                },
                error: None,
            },
        }));
        self.jobs.insert(id, job.clone());
        let this = self.clone();
        self.pipeline.sessions.spawn(async move {
            let progress_job = job.clone();
            let fanout = this.pipeline.fanout.clone();
            let progress_fanout = fanout.clone();
            let result = apple_health::run(
                this.pipeline.store.clone(),
                user,
                path,
                this.limits,
                move |r: &ImportReport| {
                    let body = {
                        let mut j = progress_job.lock().expect("import job lock");
                        j.view.report = r.clone();
                        serde_json::to_string(&j.view).expect("job view serialises")
                    };
                    progress_fanout
                        .push_user(user, &encode(&ServerFrame::ImportProgress { body: &body }));
                },
            )
            .await;
            let (report, error) = match result {
                Ok(r) => (r, None),
                Err((r, e)) => {
                    tracing::warn!(code = e.code(), "import failed");
                    let error = JobError {
                        code: e.code(),
                        message: e.to_string(),
                    };
                    (r, Some(error))
                }
            };
            let changed = report.samples_stored + report.updated > 0;
            let body = {
                let mut j = job.lock().expect("import job lock");
                j.view.state = if error.is_some() {
                    State::Failed
                } else {
                    State::Done
                };
                j.view.report = report;
                j.view.error = error;
                serde_json::to_string(&j.view).expect("job view serialises")
            };
            this.release(user, id);
            fanout.push_user(user, &encode(&ServerFrame::ImportDone { body: &body }));
            if changed {
                // The samples bypassed the window: read it again, then analyse once.
                this.pipeline.windows.mark_stale(user);
                analysis::spawn(&this.pipeline, user, Trigger::Import, None, None);
            }
        });
    }

    /// The job `id`, if it is `user`'s.
    pub fn get(&self, user: Uuid, id: Uuid) -> Option<JobView> {
        let job = self.jobs.get(&id)?.clone();
        let j = job.lock().expect("import job lock");
        (j.user == user).then(|| j.view.clone())
    }
}
