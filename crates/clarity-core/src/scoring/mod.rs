//! PAT (Pretrained Actigraphy Transformer) scoring: a week of activity → a 96-float embedding
//! and, when the bundle has a head, named scores.
//!
//! Rules:
//! - Optional: without a bundle or without ONNX Runtime the server runs as before; PAT is
//!   reported unavailable (with the reason) in `/api/ready` and in every analysis, and the
//!   reason is logged once, at start-up.
//! - Input: exactly one week (10080 minutes). A missing minute is filled with the scaler's mean
//!   for that minute of the week (0 after standardisation) and the fraction filled is reported
//!   as `missing_fraction`; judge the embedding by it.
//! - Inference runs on the dedicated pool in [`pool`], never on the async runtime.
//! - Embeddings and scores are health data: never logged.

pub mod bundle;
pub mod pool;
pub mod runtime;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::oneshot;

pub use bundle::{Bundle, BundleError, EMBED_DIM, INPUT_LENGTH, Scaler};
pub use runtime::{Model, Output};

/// Settings of the scoring service (the server builds them from its command line).
#[derive(Debug, Clone, Default)]
pub struct PatOptions {
    pub model: Option<PathBuf>,
    pub onnxruntime_lib: Option<PathBuf>,
    pub threads: usize,
    pub intra_threads: usize,
    pub max_batch: usize,
    pub queue: usize,
}

/// The `pat` member of an analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PatResult {
    Available {
        available: True,
        model: String,
        embedding: Vec<f32>,
        scores: BTreeMap<String, f32>,
        missing_fraction: f64,
    },
    Unavailable {
        available: False,
        code: &'static str,
        reason: String,
    },
}

/// Serialises as `true`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct True;
/// Serialises as `false`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct False;

impl Serialize for True {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

impl Serialize for False {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(false)
    }
}

impl PatResult {
    pub fn unavailable(code: &'static str, reason: impl Into<String>) -> PatResult {
        PatResult::Unavailable {
            available: False,
            code,
            reason: reason.into(),
        }
    }
}

enum State {
    Ready { pool: pool::Pool, model: String },
    Unavailable(String),
}

/// The scoring service held by the app.
pub struct Pat {
    state: State,
}

impl Pat {
    /// Opens the bundle and the runtime and starts the pool; any failure leaves PAT
    /// unavailable with the reason (logged here, once). Blocking: hashes files, loads models.
    pub fn start(opts: &PatOptions) -> Pat {
        match Self::try_start(opts) {
            Ok((pool, model)) => {
                tracing::info!(
                    model,
                    threads = opts.threads.max(1),
                    max_batch = opts.max_batch,
                    "PAT scoring ready"
                );
                Pat {
                    state: State::Ready { pool, model },
                }
            }
            Err(reason) => {
                if opts.model.is_some() {
                    tracing::warn!(reason, "PAT scoring unavailable");
                } else {
                    tracing::info!(reason, "PAT scoring off");
                }
                Pat::unavailable(reason)
            }
        }
    }

    pub fn unavailable(reason: impl Into<String>) -> Pat {
        Pat {
            state: State::Unavailable(reason.into()),
        }
    }

    fn try_start(opts: &PatOptions) -> Result<(pool::Pool, String), String> {
        let dir = opts
            .model
            .as_ref()
            .ok_or("no model bundle configured (--pat-model)")?;
        let bundle = Bundle::open(dir).map_err(|e| e.to_string())?;
        let lib = runtime::library_path(opts.onnxruntime_lib.as_deref())
            .ok_or("ONNX Runtime library not configured (--onnxruntime-lib or ORT_DYLIB_PATH)")?;
        let env = runtime::environment(&lib)?;
        let models = (0..opts.threads.max(1))
            .map(|_| Model::open(env, &bundle, opts.intra_threads))
            .collect::<Result<Vec<_>, _>>()?;
        let pool = pool::Pool::start(
            models,
            Arc::new(bundle.scaler.clone()),
            opts.max_batch,
            opts.queue,
        )
        .map_err(|e| format!("cannot start the PAT threads: {e}"))?;
        Ok((pool, bundle.manifest.model.clone()))
    }

    /// `Ok(model name)` when scoring works, else `Err(reason)`.
    pub fn status(&self) -> Result<&str, &str> {
        match &self.state {
            State::Ready { model, .. } => Ok(model),
            State::Unavailable(reason) => Err(reason),
        }
    }

    /// Scores one week (10080 minutes, `None` = missing). Never fails: problems come back as
    /// an unavailable result with a code.
    pub async fn score(&self, week: Vec<Option<f64>>) -> PatResult {
        let (pool, model) = match &self.state {
            State::Ready { pool, model } => (pool, model),
            State::Unavailable(reason) => {
                return PatResult::unavailable("not_configured", reason.clone());
            }
        };
        if week.len() != INPUT_LENGTH {
            return PatResult::unavailable(
                "insufficient_data",
                "PAT needs a full week (10080 minutes) of data",
            );
        }
        let (tx, rx) = oneshot::channel();
        let job = pool::Job {
            week,
            reply: tx,
            enqueued: Instant::now(),
        };
        if pool.submit(job).is_err() {
            return PatResult::unavailable("busy", "the PAT queue is full; try again later");
        }
        match rx.await {
            Ok(Ok((out, missing_fraction))) => PatResult::Available {
                available: True,
                model: model.clone(),
                embedding: out.embedding,
                scores: out.scores.into_iter().collect(),
                missing_fraction,
            },
            Ok(Err(e)) => {
                tracing::error!(error = e, "PAT inference failed");
                PatResult::unavailable("failed", "PAT inference failed")
            }
            Err(_) => PatResult::unavailable("failed", "the PAT pool stopped"),
        }
    }
}
