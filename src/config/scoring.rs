//! PAT scoring settings: the model bundle, the ONNX Runtime library, and the inference pool.
//!
//! Rules: without a model bundle nothing is scored and analyses say PAT is unavailable; the
//! server starts either way. Renamed fields keep their old argument id and flag.

use std::path::PathBuf;

use clap::Args;

use crate::scoring::PatOptions;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "PAT scoring")]
pub struct ScoringConfig {
    /// PAT model bundle folder (`scripts/pat-export --out`). Unset: no PAT scoring; analyses
    /// say PAT is unavailable.
    #[arg(
        id = "pat_model",
        value_name = "PAT_MODEL",
        long = "pat-model",
        env = "CLARITY_PAT_MODEL"
    )]
    pub model: Option<PathBuf>,

    /// ONNX Runtime shared library for PAT (`libonnxruntime.so.1.31.1` from the onnxruntime
    /// 1.31.1 wheel); falls back to `ORT_DYLIB_PATH`.
    #[arg(long, env = "CLARITY_ONNXRUNTIME_LIB")]
    pub onnxruntime_lib: Option<PathBuf>,

    /// PAT inference threads, each with its own session.
    #[arg(
        id = "pat_threads",
        value_name = "PAT_THREADS",
        long = "pat-threads",
        env = "CLARITY_PAT_THREADS",
        default_value_t = 1
    )]
    pub threads: usize,

    /// ONNX Runtime threads inside one session call (0: one per core).
    #[arg(
        id = "pat_intra_threads",
        value_name = "PAT_INTRA_THREADS",
        long = "pat-intra-threads",
        env = "CLARITY_PAT_INTRA_THREADS",
        default_value_t = 0
    )]
    pub intra_threads: usize,

    /// Most pending weeks (across users) run in one session call.
    #[arg(
        id = "pat_max_batch",
        value_name = "PAT_MAX_BATCH",
        long = "pat-max-batch",
        env = "CLARITY_PAT_MAX_BATCH",
        default_value_t = 16
    )]
    pub max_batch: usize,

    /// Weeks waiting for PAT before more are refused (`pat.code` `busy`).
    #[arg(
        id = "pat_queue",
        value_name = "PAT_QUEUE",
        long = "pat-queue",
        env = "CLARITY_PAT_QUEUE",
        default_value_t = 256
    )]
    pub queue: usize,
}

impl From<&ScoringConfig> for PatOptions {
    fn from(c: &ScoringConfig) -> PatOptions {
        PatOptions {
            model: c.model.clone(),
            onnxruntime_lib: c.onnxruntime_lib.clone(),
            threads: c.threads,
            intra_threads: c.intra_threads,
            max_batch: c.max_batch,
            queue: c.queue,
        }
    }
}
