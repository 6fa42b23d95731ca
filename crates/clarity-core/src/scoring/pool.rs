//! The inference pool: dedicated OS threads (never the async runtime or its blocking pool)
//! that each own a model and run one session call for up to `max_batch` pending weeks.
//!
//! Rules:
//! - The queue is bounded; a full queue refuses at once ("busy") instead of letting waits
//!   pile up behind the model.
//! - Batching never waits for company: a thread takes what is queued when it becomes free,
//!   so a lone request runs at once and a burst across users shares session calls.
//! - Standardisation (scaler, missing minutes) happens on the pool thread too.
//! - Metrics: queue depth and capacity (gauges), weeks refused as busy (counter), batch size and latency from enqueue to result (histograms).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::bundle::{INPUT_LENGTH, Scaler};
use super::runtime::{Model, Output};
use crate::metrics;

/// One week to score and where its result goes.
pub struct Job {
    pub week: Vec<Option<f64>>,
    pub reply: oneshot::Sender<Result<(Output, f64), String>>,
    pub enqueued: Instant,
}

pub struct Pool {
    tx: mpsc::Sender<Job>,
    depth: Arc<AtomicUsize>,
}

impl Pool {
    /// Starts one thread per model.
    pub fn start(
        models: Vec<Model>,
        scaler: Arc<Scaler>,
        max_batch: usize,
        queue: usize,
    ) -> std::io::Result<Pool> {
        let (tx, rx) = mpsc::channel::<Job>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let depth = Arc::new(AtomicUsize::new(0));
        ::metrics::gauge!(metrics::PAT_QUEUE_CAPACITY).set(queue.max(1) as f64);
        for (i, model) in models.into_iter().enumerate() {
            let (rx, depth, scaler) = (rx.clone(), depth.clone(), scaler.clone());
            std::thread::Builder::new()
                .name(format!("pat-{i}"))
                .spawn(move || worker(&rx, model, &scaler, max_batch.max(1), &depth))?;
        }
        Ok(Pool { tx, depth })
    }

    /// Queues a job; `Err` gives it back when the queue is full or the pool is gone.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        // Counted before it is queued: a worker may take the job (and count it out) before
        // `try_send` returns, and the count must never go below zero.
        let d = self.depth.fetch_add(1, Ordering::Relaxed) + 1;
        match self.tx.try_send(job) {
            Ok(()) => {
                ::metrics::gauge!(metrics::PAT_QUEUE_DEPTH).set(d as f64);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(j)) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                ::metrics::counter!(metrics::PAT_WEEKS, "outcome" => "busy").increment(1);
                Err(j)
            }
            Err(mpsc::error::TrySendError::Closed(j)) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                Err(j)
            }
        }
    }
}

fn worker(
    rx: &Mutex<mpsc::Receiver<Job>>,
    mut model: Model,
    scaler: &Scaler,
    max_batch: usize,
    depth: &AtomicUsize,
) {
    let mut input: Vec<f32> = Vec::with_capacity(max_batch * INPUT_LENGTH);
    loop {
        let batch = {
            // Only the thread holding the lock waits for work; the others wait for the lock.
            let Ok(mut rx) = rx.lock() else { return };
            let Some(first) = rx.blocking_recv() else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let d = depth
            .fetch_sub(batch.len(), Ordering::Relaxed)
            .saturating_sub(batch.len());
        ::metrics::gauge!(metrics::PAT_QUEUE_DEPTH).set(d as f64);
        ::metrics::histogram!(metrics::PAT_BATCH_SIZE).record(batch.len() as f64);
        input.clear();
        let missing: Vec<f64> = batch
            .iter()
            .map(|job| scaler.apply(&job.week, &mut input))
            .collect();
        let result = model.run(&input, false);
        let outcome = if result.is_ok() { "ok" } else { "error" };
        ::metrics::counter!(metrics::PAT_WEEKS, "outcome" => outcome).increment(batch.len() as u64);
        match result {
            Ok(outputs) => {
                for ((job, out), missing) in batch.into_iter().zip(outputs).zip(missing) {
                    ::metrics::histogram!(metrics::PAT_LATENCY_SECONDS)
                        .record(job.enqueued.elapsed().as_secs_f64());
                    // The asker may have gone (session closed); nothing to do then.
                    let _ = job.reply.send(Ok((out, missing)));
                }
            }
            Err(e) => {
                for job in batch {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}
