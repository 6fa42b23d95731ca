//! Import jobs on this node: start, state, progress frames, and the analysis at the end.
//!
//! Rules:
//! - One import per user at a time ([`StartError::Running`]); the job's state lives in memory
//!   on the node that took the upload (a restart forgets it: re-POSTing the file re-runs the
//!   import, and derived ids make that add nothing twice).
//! - Only the job's owner sees it.
//! - The user's sessions get `import_progress` at most every 500 ms while it runs and one
//!   `import_done` at the end (protocol/schemas/server/import_*.json).
//! - The upload stays in the [`Archive`] after the import, so that it can be re-run when
//!   mappings improve ([`Imports::rerun`]: the same import id, read back from the archive);
//!   erasing the account removes it ([`Imports::erase_user`], which also stops the account's
//!   running import before its next batch is written).
//! - Samples go to the store only, not through the window: a history of years would complete
//!   every one of its days. At the end the user's window is marked stale (re-read from the
//!   store when next used) and every imported week is analysed once ([`history`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use serde::Serialize;
use uuid::Uuid;

use super::apple_health::{self, ImportError, ImportReport, Limits, Progress};
use super::archive::{Archive, ArchiveError};
use crate::pipeline::Pipeline;
use crate::pipeline::history;
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
    /// Set when the account is erased: the import stops before its next batch.
    cancelled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("an import of this account is running already ({0}); wait for its import_done")]
    Running(Uuid),
    /// A re-run of an upload that is not kept (never uploaded by this account, erased, or
    /// past `--import-retention-days`).
    #[error("no kept upload {0} of this account (uploads are kept --import-retention-days)")]
    NotKept(Uuid),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// This node's import jobs.
pub struct Imports {
    pipeline: Arc<Pipeline>,
    archive: Archive,
    limits: Limits,
    jobs: DashMap<Uuid, Arc<Mutex<Job>>>,
    running: DashMap<Uuid, Uuid>,
}

impl Imports {
    pub fn new(pipeline: Arc<Pipeline>, archive: Archive, limits: Limits) -> Imports {
        Imports {
            pipeline,
            archive,
            limits,
            jobs: DashMap::new(),
            running: DashMap::new(),
        }
    }

    /// The kept uploads (where uploads are written, and the retention sweep).
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// The account is being erased: its running import (if any, on this node) stops before
    /// its next batch.
    pub fn cancel_user(&self, user: Uuid) {
        let running = self.running.get(&user).map(|r| *r);
        if let Some(job) = running.and_then(|id| self.jobs.get(&id).map(|j| j.clone())) {
            job.lock().expect("import job lock").cancelled = true;
        }
    }

    /// The account was erased: its running import stops and its kept uploads are deleted.
    /// Returns how many uploads there were.
    pub async fn erase_user(&self, user: Uuid) -> Result<usize, ArchiveError> {
        self.cancel_user(user);
        self.archive.erase_user(user).await
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

    /// Runs the kept upload `id` of `user` again (the same import id: its job shows the new
    /// run), read back from the archive.
    pub async fn rerun(self: &Arc<Self>, user: Uuid, id: Uuid) -> Result<JobView, StartError> {
        match self.running.entry(user) {
            dashmap::Entry::Occupied(e) => return Err(StartError::Running(*e.get())),
            dashmap::Entry::Vacant(v) => {
                v.insert(id);
            }
        }
        match self.archive.fetch(user, id).await {
            Ok(Some(path)) => {
                self.start(user, id, path, "apple_health");
                Ok(self.get(user, id).expect("the job just started"))
            }
            Ok(None) => {
                self.release(user, id);
                Err(StartError::NotKept(id))
            }
            Err(e) => {
                self.release(user, id);
                Err(e.into())
            }
        }
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
            cancelled: false,
        }));
        self.jobs.insert(id, job.clone());
        let this = self.clone();
        self.pipeline.sessions.spawn(async move {
            let fanout = this.pipeline.fanout.clone();
            let sink = Frames {
                job: job.clone(),
                fanout: fanout.clone(),
                user,
            };
            let result =
                apple_health::run(this.pipeline.store.clone(), user, path, this.limits, sink).await;
            this.archive.done_reading(user, id).await;
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
            let span = report.span;
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
            let cancelled = job.lock().expect("import job lock").cancelled;
            if changed && !cancelled {
                // The samples bypassed the window: it is read again when next used.
                this.pipeline.windows.mark_stale(user);
                if let Some(span) = span {
                    history::spawn(&this.pipeline, user, span);
                }
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

/// The job's progress, as `import_progress` frames to the user's sessions.
struct Frames {
    job: Arc<Mutex<Job>>,
    fanout: Arc<crate::streams::FanOut>,
    user: Uuid,
}

impl Progress for Frames {
    fn progress(&mut self, report: &ImportReport) {
        let body = {
            let mut j = self.job.lock().expect("import job lock");
            j.view.report = report.clone();
            serde_json::to_string(&j.view).expect("job view serialises")
        };
        self.fanout.push_user(
            self.user,
            &encode(&ServerFrame::ImportProgress { body: &body }),
        );
    }

    fn cancelled(&self) -> Option<ImportError> {
        let cancelled = self.job.lock().expect("import job lock").cancelled;
        cancelled.then(|| ImportError::Cancelled("the account was erased".into()))
    }
}
