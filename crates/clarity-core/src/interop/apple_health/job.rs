//! Running one import: the export is parsed on a blocking thread and its samples written in
//! batches of [`BATCH`] through [`Store::write_samples`] by the calling task.
//!
//! Rules:
//! - At most [`QUEUED_BATCHES`] parsed batches wait for the store: the parser waits for the
//!   store, never the other way round, so memory stays bounded and the import runs at the
//!   store's write rate.
//! - A transient store failure (`Overloaded`, `Timeout`, `Unavailable`) is retried with
//!   exponential backoff for up to [`RETRY_FOR`]; a retried batch may count as duplicates what
//!   the failed attempt stored (ids are derived, so nothing is stored twice).
//! - `progress` is called at most every [`PROGRESS_EVERY`] (and not after the end): the
//!   caller's frames are rate-limited by construction.
//! - On failure (malformed XML, zip bomb, store error) what was stored stays stored; the
//!   report says how far it came. Re-running the import completes it without duplicates.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use uuid::Uuid;

use super::map::{self, Mapped};
use super::reader::HealthReader;
use super::{ImportError, ImportReport, Limits, source};
use crate::pipeline::history::Span;
use crate::samples::Sample;
use crate::store::{OpOutcome, SampleOp, Store, StoreError, WriteResult};

/// Samples per store write.
pub const BATCH: usize = 5_000;
/// Parsed batches waiting for the store.
pub const QUEUED_BATCHES: usize = 2;
/// Longest time a batch is retried while the store is overloaded or unavailable.
pub const RETRY_FOR: Duration = Duration::from_secs(120);
/// Least time between two progress reports.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Receives the report while the import runs.
pub trait Progress: Send {
    fn progress(&mut self, report: &ImportReport);

    /// Why the import must stop before its next batch is written (the account was erased),
    /// if it must.
    fn cancelled(&self) -> Option<ImportError> {
        None
    }
}

impl<F: FnMut(&ImportReport) + Send> Progress for F {
    fn progress(&mut self, report: &ImportReport) {
        self(report)
    }
}

/// What the parser counted up to a batch (cumulative).
#[derive(Debug, Clone, Default)]
struct Counts {
    records_read: u64,
    records_by_type: std::collections::BTreeMap<String, u64>,
    rejected: std::collections::BTreeMap<String, u64>,
    unmapped: std::collections::BTreeMap<String, u64>,
}

struct Batch {
    samples: Vec<Sample>,
    counts: Counts,
}

/// Imports the export at `path` into `user`'s samples. On failure, the report so far comes
/// with the error.
pub async fn run(
    store: Arc<dyn Store>,
    user: Uuid,
    path: PathBuf,
    limits: Limits,
    mut progress: impl Progress,
) -> Result<ImportReport, (ImportReport, ImportError)> {
    let mut report = ImportReport {
        bytes_total: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        ..ImportReport::default()
    };
    let done = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::channel::<Batch>(QUEUED_BATCHES);
    let parser = tokio::task::spawn_blocking({
        let done = done.clone();
        move || parse(&path, limits, done, tx)
    });
    let mut last_progress = Instant::now();
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        let Counts {
            records_read,
            records_by_type,
            rejected,
            unmapped,
        } = batch.counts;
        (report.records_read, report.records_by_type) = (records_read, records_by_type);
        (report.rejected, report.unmapped) = (rejected, unmapped);
        if let Some(e) = progress.cancelled() {
            failure = Some(e);
            break;
        }
        let span = span_of(&batch.samples);
        match write(&*store, user, batch.samples).await {
            Ok(result) => {
                for o in result.outcomes {
                    match o {
                        OpOutcome::Inserted => report.samples_stored += 1,
                        OpOutcome::Updated => report.updated += 1,
                        _ => report.duplicates += 1,
                    }
                }
                report.span = widen(report.span, span);
            }
            Err(e) => {
                failure = Some(ImportError::Store(e));
                // Dropping the receiver stops the parser at its next batch.
                break;
            }
        }
        report.bytes_done = done.load(Ordering::Relaxed).min(report.bytes_total);
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            progress.progress(&report);
        }
    }
    drop(rx);
    let parsed = parser
        .await
        .map_err(|e| ImportError::Io(format!("the parser stopped: {e}")));
    report.bytes_done = done.load(Ordering::Relaxed).min(report.bytes_total);
    let error = match (failure, parsed) {
        (Some(e), _) => Some(e),
        (None, Err(e)) | (None, Ok(Err(e))) => Some(e),
        (None, Ok(Ok(()))) => None,
    };
    match error {
        Some(e) => Err((report, e)),
        None => {
            report.bytes_done = report.bytes_total;
            Ok(report)
        }
    }
}

/// What [`check`] found: what an import of the same file would read, map and refuse.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CheckReport {
    pub records_read: u64,
    pub records_by_type: std::collections::BTreeMap<String, u64>,
    /// Samples the mapped elements become (an import stores these, less the duplicates).
    pub samples: u64,
    pub rejected: std::collections::BTreeMap<String, u64>,
    pub unmapped: std::collections::BTreeMap<String, u64>,
    pub bytes_total: u64,
    /// The earliest and latest sample start, RFC 3339 UTC.
    pub earliest: Option<String>,
    pub latest: Option<String>,
}

/// Parses and maps the export at `path` exactly as [`run`] does, storing nothing: a user's
/// check of a file before importing it, and the parse cost of an import on its own (the
/// parser never waits for a store here).
pub async fn check(
    path: PathBuf,
    limits: Limits,
) -> Result<CheckReport, (CheckReport, ImportError)> {
    let mut report = CheckReport {
        bytes_total: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        ..CheckReport::default()
    };
    let (tx, mut rx) = mpsc::channel::<Batch>(QUEUED_BATCHES);
    let parser =
        tokio::task::spawn_blocking(move || parse(&path, limits, Arc::new(AtomicU64::new(0)), tx));
    let mut span = None;
    while let Some(batch) = rx.recv().await {
        report.samples += batch.samples.len() as u64;
        span = widen(span, span_of(&batch.samples));
        let c = batch.counts;
        (report.records_read, report.records_by_type) = (c.records_read, c.records_by_type);
        (report.rejected, report.unmapped) = (c.rejected, c.unmapped);
    }
    let rfc3339 = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    if let Some(s) = span {
        report.earliest = rfc3339(s.earliest_ms);
        report.latest = rfc3339(s.latest_ms);
    }
    match parser.await {
        Ok(Ok(())) => Ok(report),
        Ok(Err(e)) => Err((report, e)),
        Err(e) => Err((report, ImportError::Io(format!("the parser stopped: {e}")))),
    }
}

/// The starts of the earliest and latest samples of a batch.
fn span_of(samples: &[Sample]) -> Option<Span> {
    let earliest = samples.iter().map(|s| s.start.utc_ms).min()?;
    let latest = samples.iter().max_by_key(|s| s.start.utc_ms)?;
    Some(Span {
        earliest_ms: earliest,
        latest_ms: latest.start.utc_ms,
        latest_offset_secs: latest.start.offset_secs,
    })
}

fn widen(a: Option<Span>, b: Option<Span>) -> Option<Span> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let latest = if b.latest_ms > a.latest_ms { b } else { a };
            Some(Span {
                earliest_ms: a.earliest_ms.min(b.earliest_ms),
                ..latest
            })
        }
        (a, b) => a.or(b),
    }
}

/// One batch through the store, retried while the store is transiently unavailable.
async fn write(
    store: &dyn Store,
    user: Uuid,
    samples: Vec<Sample>,
) -> Result<WriteResult, StoreError> {
    let give_up = Instant::now() + RETRY_FOR;
    let mut delay = Duration::from_millis(20);
    loop {
        let ops = samples.iter().cloned().map(SampleOp::Put).collect();
        match store.write_samples(user, ops).await {
            Err(e) if e.is_transient() && Instant::now() + delay < give_up => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// The parser thread: elements -> batches on `tx` (the last one also carries the final
/// counts). Stops early when the receiver is gone.
fn parse(
    path: &std::path::Path,
    limits: Limits,
    done: Arc<AtomicU64>,
    tx: mpsc::Sender<Batch>,
) -> Result<(), ImportError> {
    source::with_xml(path, limits, done, |xml| {
        let mut reader = HealthReader::new(xml);
        let mut counts = Counts::default();
        let mut samples = Vec::with_capacity(BATCH);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let flush = |samples: &mut Vec<Sample>, counts: &Counts| {
            let batch = Batch {
                samples: std::mem::replace(samples, Vec::with_capacity(BATCH)),
                counts: counts.clone(),
            };
            tx.blocking_send(batch).is_ok()
        };
        let result = loop {
            let el = match reader.next_element() {
                Ok(Some(el)) => el,
                Ok(None) => break Ok(()),
                Err(super::reader::ReadError::Io(m)) => break Err(ImportError::Io(m)),
                Err(e) => break Err(ImportError::Read(e)),
            };
            let ty = map::type_of(&el);
            if matches!(el.name.as_str(), "ExportDate" | "Me") {
                continue;
            }
            *counts.records_by_type.entry(ty.to_owned()).or_default() += 1;
            counts.records_read += 1;
            if el.name == "Correlation" {
                // Health's Correlation holds its Records; independent readers count them.
                for c in el.children.iter().filter(|c| c.name == "Record") {
                    *counts
                        .records_by_type
                        .entry(map::type_of(c).to_owned())
                        .or_default() += 1;
                    counts.records_read += 1;
                }
            }
            match map::map(&el, now_ms) {
                Mapped::Sample(s) => samples.push(*s),
                Mapped::Rejected(code) => *counts.rejected.entry(code.to_owned()).or_default() += 1,
                Mapped::Unmapped => *counts.unmapped.entry(ty.to_owned()).or_default() += 1,
            }
            if samples.len() >= BATCH && !flush(&mut samples, &counts) {
                return Ok(());
            }
        };
        // What was read before an error is still written, and the counts are final.
        flush(&mut samples, &counts);
        result
    })
    .map_err(|e| match e {
        ImportError::Io(m) if m.contains("zip bomb") => ImportError::ZipBomb(m),
        other => other,
    })
}
