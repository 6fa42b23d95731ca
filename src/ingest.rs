//! The ingest path shared by REST uploads and WebSocket `samples` frames.
//!
//! Rules: validation happens before the store is touched and rejects per sample; the report
//! exists only once the store has committed, so building one means the accepted samples are
//! durable.

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::metrics::SAMPLES;
use crate::samples::{self, Rejection, Sample};
use crate::store::{Store, StoreError};

/// Inputs above this size are validated on the blocking pool: validation costs about a
/// microsecond a sample, and a 1 MiB frame would otherwise hold one of the runtime's workers
/// (two on a 2-core machine) for several milliseconds.
pub const OFFLOAD_BYTES: usize = 64 * 1024;

/// A validated batch, not yet stored.
pub struct Prepared {
    samples: Vec<Sample>,
    rejected: Vec<Rejection>,
}

/// What happened to each sample of a batch.
#[derive(Debug, Serialize)]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<Rejection>,
}

pub fn prepare(raw: &[&RawValue]) -> Prepared {
    let (valid, rejected) = samples::parse_batch(raw, chrono::Utc::now().timestamp_millis());
    Prepared {
        samples: valid.into_iter().map(|(_, s)| s).collect(),
        rejected,
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

/// Stores the valid part of a batch; resolves once it is durable.
pub async fn commit(
    store: Arc<dyn Store>,
    user: Uuid,
    prepared: Prepared,
    transport: &'static str,
) -> Result<IngestReport, StoreError> {
    let Prepared { samples, rejected } = prepared;
    let new = store.insert_samples(user, samples).await?;
    let accepted = new.iter().filter(|n| **n).count();
    let duplicates = new.len() - accepted;
    let count = |outcome: &'static str, n: usize| {
        if n > 0 {
            metrics::counter!(SAMPLES, "outcome" => outcome, "transport" => transport)
                .increment(n as u64);
        }
    };
    count("accepted", accepted);
    count("duplicate", duplicates);
    count("rejected", rejected.len());
    Ok(IngestReport {
        accepted,
        duplicates,
        rejected,
    })
}
