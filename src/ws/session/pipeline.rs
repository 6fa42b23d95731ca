//! Batches of one session on their way to the store, and their acks.
//!
//! Rules:
//! - Up to `max_inflight_batches` batches wait for the store at once; at the limit the
//!   session stops reading, which pushes back on the client through TCP.
//! - Acks (or the `error` that replaces one) leave in frame order (`FuturesOrdered`), whatever
//!   order the store finishes them in.
//! - Batches reach the user's window in frame order too: each waits for the previous one's
//!   turn (`ingest::Turn`), and a batch that fails before the store passes its turn on.
//! - An `analyze` must see every batch sent before it, so with batches in flight it runs when
//!   the last of them completes.
//! - Draining (shutdown, a close from outside, a violation) waits for every batch in flight
//!   and acks it before the final frame: nothing received is left unanswered.
//! - Samples are rate-limited per session and per user before they are handed over; a
//!   refused batch is not stored and the client is told when to resend it.
//! - A `series` frame is a `samples` frame in another shape: the same limits (its values count
//!   against `max_samples_per_frame`, its samples against the rates), validation, ack.
//! - A `delete` frame is a batch like a `samples` frame: in flight with them, acked in frame
//!   order, applied to the window in turn, and each id counts as a sample against the rates.

use std::pin::Pin;

use axum::extract::ws::Utf8Bytes;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

use super::{Gone, Session, count_in};
use crate::ingest::{self, IngestReport};
use crate::metrics;
use crate::pipeline::analysis::{self, Trigger};
use crate::protocol::{self, Command, Refusal, STORE_RETRY_AFTER_MS, ServerFrame};
use crate::rate;
use crate::store::StoreError;

type Pending = Pin<Box<dyn std::future::Future<Output = Completed> + Send>>;

pub(super) struct Completed {
    seq: u64,
    /// The frame's span: the ack is traced as its child.
    span: tracing::Span,
    received: Instant,
    result: Result<IngestReport, StoreError>,
}

pub(super) struct Pipeline {
    inflight: FuturesOrdered<Pending>,
    /// At most this many batches in flight.
    max: usize,
    /// Samples frames handed to the store, and those completed (acked or failed).
    submitted: u64,
    completed: u64,
    /// An `analyze` waiting for the batches sent before it: runs once `completed` reaches it.
    analyze_after: Option<u64>,
    /// Released once the last submitted batch is in the window: the next one waits for it,
    /// so the window sees batches in frame order whatever order the store finishes them in.
    window_turn: Option<oneshot::Receiver<()>>,
}

impl Pipeline {
    pub(super) fn new(max_inflight: usize) -> Pipeline {
        Pipeline {
            inflight: FuturesOrdered::new(),
            max: max_inflight.max(1),
            submitted: 0,
            completed: 0,
            analyze_after: None,
            window_turn: None,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.inflight.is_empty()
    }

    /// Whether another batch may be read: below the limit of batches in flight.
    pub(super) fn has_room(&self) -> bool {
        self.inflight.len() < self.max
    }

    /// The oldest batch, once it completes (`None` with nothing in flight).
    pub(super) async fn next(&mut self) -> Option<Completed> {
        self.inflight.next().await
    }
}

impl Session {
    pub(super) async fn on_samples(
        &mut self,
        seq: u64,
        list: Vec<&serde_json::value::RawValue>,
        text: &Utf8Bytes,
        span: tracing::Span,
    ) -> Result<(), Gone> {
        let max = self.state.config.limits.max_samples_per_frame;
        if list.len() > max {
            return self
                .send(
                    &Refusal::new(
                        "too_many_samples",
                        format!("at most {max} samples per frame, got {}", list.len()),
                    )
                    .with_seq(Some(seq))
                    .frame(),
                )
                .await;
        }
        if !self.admit(seq, list.len()).await? {
            return Ok(());
        }
        // Small frames are validated here; big ones on the blocking pool (re-read there from
        // the same bytes, which is cheap next to validating them).
        let work = if text.len() <= ingest::OFFLOAD_BYTES {
            Ok(ingest::prepare(&list))
        } else {
            Err(text.clone())
        };
        let app = self.state.0.clone();
        let user = self.user;
        self.submit(seq, span, move |turn| {
            async move {
                let prepared = match work {
                    Ok(p) => Ok(p),
                    Err(text) => ingest::off_runtime(move || prepare_frame(text.as_str()))
                        .await
                        .and_then(|p| p.ok_or_else(|| anyhow::anyhow!("frame changed on re-read")))
                        .map_err(StoreError::Other),
                };
                match prepared {
                    Ok(p) => app.ingest.commit_in_turn(user, p, "ws", Some(turn)).await,
                    Err(e) => {
                        turn.pass().await;
                        Err(e)
                    }
                }
            }
            .boxed()
        });
        Ok(())
    }

    /// A `series` frame (shape already checked by the parser): a batch like `samples`, its
    /// values expanded into the samples they stand for and validated as those would be.
    pub(super) async fn on_series(
        &mut self,
        seq: u64,
        series: crate::samples::Series,
        frame_len: usize,
        span: tracing::Span,
    ) -> Result<(), Gone> {
        let max = self.state.config.limits.max_samples_per_frame;
        if series.values.len() > max {
            return self
                .send(
                    &Refusal::new(
                        "too_many_samples",
                        format!(
                            "at most {max} values per series frame, got {}",
                            series.values.len()
                        ),
                    )
                    .with_seq(Some(seq))
                    .frame(),
                )
                .await;
        }
        if !self.admit(seq, series.samples()).await? {
            return Ok(());
        }
        // As for samples frames: big ones are validated on the blocking pool (the series is
        // owned, so it travels there as it is).
        let offload = frame_len > ingest::OFFLOAD_BYTES;
        let app = self.state.0.clone();
        let user = self.user;
        self.submit(seq, span, move |turn| {
            async move {
                let prepared = if offload {
                    ingest::off_runtime(move || ingest::prepare_series(&series))
                        .await
                        .map_err(StoreError::Other)
                } else {
                    Ok(ingest::prepare_series(&series))
                };
                match prepared {
                    Ok(p) => app.ingest.commit_in_turn(user, p, "ws", Some(turn)).await,
                    Err(e) => {
                        turn.pass().await;
                        Err(e)
                    }
                }
            }
            .boxed()
        });
        Ok(())
    }

    /// A `delete` frame (ids already checked by the parser): a batch like `samples`.
    pub(super) async fn on_delete(
        &mut self,
        seq: u64,
        ids: Vec<String>,
        span: tracing::Span,
    ) -> Result<(), Gone> {
        if !self.admit(seq, ids.len()).await? {
            return Ok(());
        }
        let app = self.state.0.clone();
        let user = self.user;
        self.submit(seq, span, move |turn| {
            async move {
                app.ingest
                    .delete(user, ids, "ws", Some(turn))
                    .await
                    .map(|(report, _)| report)
            }
            .boxed()
        });
        Ok(())
    }

    /// Queues a batch's store work behind those in flight (its ack in frame order, its window
    /// update in turn).
    fn submit(
        &mut self,
        seq: u64,
        span: tracing::Span,
        work: impl FnOnce(
            ingest::Turn,
        ) -> Pin<
            Box<dyn std::future::Future<Output = Result<IngestReport, StoreError>> + Send>,
        >,
    ) {
        let received = Instant::now();
        let turn = ingest::Turn::next(&mut self.pipeline.window_turn);
        self.pipeline.submitted += 1;
        let work = work(turn).instrument(tracing::info_span!(parent: &span, "ingest"));
        self.pipeline.inflight.push_back(
            async move {
                Completed {
                    seq,
                    received,
                    result: work.await,
                    span,
                }
            }
            .boxed(),
        );
    }

    /// Takes `n` samples from the session's and the user's budgets; `false` (after telling
    /// the client when to resend) when they do not fit.
    async fn admit(&mut self, seq: u64, n: usize) -> Result<bool, Gone> {
        // Samples per second: this session's budget, then the user's on this node.
        let wait = match self.rate.take_samples(n) {
            Err(wait) => Some((
                wait,
                "session",
                self.state.config.limits.max_samples_per_sec,
            )),
            Ok(()) => match self.state.ingest.admit(self.user, n) {
                Err(wait) => {
                    self.rate.give_back_samples(n);
                    Some((
                        wait,
                        "user",
                        self.state.config.limits.max_user_samples_per_sec,
                    ))
                }
                Ok(()) => None,
            },
        };
        if let Some((wait, whose, per_sec)) = wait {
            count_in("rate_limited");
            let refusal = Refusal::new(
                "rate_limited",
                format!(
                    "more than {per_sec} samples per second for this {whose}; this batch was not stored"
                ),
            )
            .with_seq(Some(seq))
            .retry_after(rate::retry_after_ms(wait));
            self.send(&refusal.frame()).await?;
            return Ok(false);
        }
        Ok(true)
    }

    pub(super) fn on_analyze(&mut self) {
        // The analysis must see every batch sent before it: with batches still on
        // their way to the store, it starts when the last of them completes.
        if self.pipeline.inflight.is_empty() {
            self.analyze_now();
        } else {
            self.pipeline.analyze_after = Some(self.pipeline.submitted);
        }
    }

    /// The result reaches every session of the user as an `analysis` frame.
    fn analyze_now(&mut self) {
        analysis::spawn(
            &self.state.pipeline,
            self.user,
            Trigger::Request,
            None,
            Some(self.out.clone()),
        );
    }

    pub(super) async fn complete(&mut self, done: Completed) -> Result<(), Gone> {
        self.pipeline.completed += 1;
        if self
            .pipeline
            .analyze_after
            .is_some_and(|n| self.pipeline.completed >= n)
        {
            self.pipeline.analyze_after = None;
            self.analyze_now();
        }
        let ack = tracing::info_span!(
            parent: &done.span,
            "ws.ack",
            seq = done.seq,
            accepted = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        match done.result {
            Ok(report) => {
                ::metrics::histogram!(metrics::ACK_LATENCY_SECONDS)
                    .record(done.received.elapsed().as_secs_f64());
                ack.record("accepted", report.accepted);
                self.send(&ServerFrame::Ack {
                    seq: done.seq,
                    accepted: report.accepted,
                    duplicates: report.duplicates,
                    updated: report.updated,
                    deleted: report.deleted,
                    not_found: report.not_found,
                    rejected: &report.rejected,
                    rejected_omitted: report.rejected_omitted,
                })
                .instrument(ack)
                .await
            }
            Err(e) => {
                let failure = protocol::store_failure(&e, "batch not stored");
                ack.record("code", failure.code);
                let refusal = if failure.code == "account_erased" {
                    // Nothing to resend: the session is closed right after (4011).
                    Refusal::new(
                        failure.code,
                        "the batch was not stored: the account was erased",
                    )
                    .with_seq(Some(done.seq))
                } else {
                    // Resending is the answer to both others: an ack is owed either way.
                    Refusal::new(
                        failure.code,
                        "the batch was not stored; resend this frame later",
                    )
                    .with_seq(Some(done.seq))
                    .retry_after(STORE_RETRY_AFTER_MS)
                };
                self.send(&refusal.frame()).instrument(ack).await
            }
        }
    }

    /// Waits for every batch in flight and sends its ack.
    pub(super) async fn drain(&mut self) -> Result<(), Gone> {
        while let Some(done) = self.pipeline.next().await {
            self.complete(done).await?;
        }
        Ok(())
    }
}

/// Validates the samples of an already checked `samples` frame (re-read from its text on
/// the blocking pool: the parsed list borrows the text and cannot travel there).
fn prepare_frame(text: &str) -> Option<ingest::Prepared> {
    match protocol::parse(text).ok()?.command.ok()? {
        Command::Samples { samples, .. } => Some(ingest::prepare(&samples)),
        _ => None,
    }
}
