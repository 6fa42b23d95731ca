//! Running an analysis: snapshot a window, compute off the async runtime, store once, push.
//!
//! Rules:
//! - The window is copied under its lock (microseconds); the analytics run on the blocking
//!   pool, at most one per CPU at a time, so a burst of completed days cannot starve sessions.
//! - The analysis id is a digest of the user and the exact input (range, clock, every minute),
//!   so the same data gives the same id: stored once, pushed once per trigger that found it new.
//! - Explicit requests are always answered (with the stored result when it already exists).
//! - PAT: a window whose data spans the full week (activity in its first and its last minute,
//!   10080 minutes) is also embedded by PAT, concurrently with the analytics; shorter spans get
//!   `pat.available: false` (`insufficient_data`), as does every analysis without a model.
//!   The PAT result is part of the stored document; the id stays a digest of the input only.
//! - Heart (`heart`, see [`super::heart`]): the week's heart samples are read from the store
//!   before the id is made, and are part of its input, so new heart data gives a new analysis.
//! - Sleep stages are not in the window: the nights they make are read from the store (see
//!   [`super::sleep`]) and are part of the input the id digests (their asleep minutes too).
//!   The heart part measures "while asleep" over exactly those nights.
//! - Step data (`activity.kind` step_count): PAT was trained on minute activity counts, so
//!   steps are never fed to it; `pat` says so (`unsupported_signal`). The rhythm measures run
//!   on the steps and name their signal; actigraphy sleep is not scored (see `analytics`).
//!   `activity.coverage` states the rule that turned step intervals into minutes and what
//!   it counted (see `window::series`).
//! - Per-day steps (`activity.days`, see [`super::steps`]): the step samples of the analysed
//!   range are read from the store before the id is made and are part of its input; each
//!   minute is dated by its sample's own offset, with the window's source order.
//! - Step data across a change of UTC offset: the rhythm measures and `activity.hourly` run on
//!   the local clock (`analytics::clock`, offsets from the step samples read above); the id
//!   of such an analysis also digests that it did.

use std::sync::Arc;
use tracing::Instrument;

use chrono::{SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Pipeline;
use super::heart::{self, HeartSamples};
use super::steps::{self, StepSamples};
use crate::analytics::{self, AnalysisOptions, ClockOffset, MinuteSeries, Signal};
use crate::protocol::{Outbound, ServerFrame, encode};
use crate::scoring::PatResult;
use crate::store::{AnalysisRecord, DocKind, StoreError};
use crate::window::{ActivityKind, Coverage, Series, WINDOW_MINUTES, read_series};

/// Completed-day analyses older than this get no automatic insight.
const INSIGHT_RECENT_MS: i64 = 2 * 86_400_000;

/// Why an analysis ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A local day completed.
    DayComplete,
    /// A client asked (`analyze` frame or `POST /api/v1/analyses`).
    Request,
    /// An import of history ended (one analysis per imported week, see [`super::history`]).
    Import,
    /// Samples an analysis used were edited or deleted: it was recomputed (`supersedes`).
    DataChanged,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::DayComplete => "day_complete",
            Trigger::Request => "request",
            Trigger::Import => "import",
            Trigger::DataChanged => "data_changed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("no activity data in the last 7 days")]
    NoData,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("analysis failed: {0}")]
    Failed(String),
}

/// What the window held for one analysis.
struct Snapshot {
    /// End of the analysed week before trimming (exclusive): what the nights are cut at.
    week_to_minute: i64,
    from_minute: i64,
    activity: Vec<Option<f64>>,
    offset_secs: i32,
    activity_kind: Option<ActivityKind>,
    coverage: Coverage,
    sources: Vec<(String, bool, usize)>,
    hr_minutes: usize,
    hr_mean: Option<f64>,
    /// The untrimmed week, UTC ms: where heart samples are read.
    heart_range: (i64, i64),
}

#[derive(Serialize)]
struct SourceUse {
    source: String,
    minutes: usize,
    rank: u8,
    /// The user's manual entries of this source (they win their minutes over recorded data).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    manual: bool,
}

/// The stored and pushed document (without `type`).
#[derive(Serialize)]
struct Body<'a> {
    analysis_id: Uuid,
    user_id: Uuid,
    created_at: String,
    trigger: &'static str,
    window: Range,
    minutes_present: usize,
    activity: ActivityInfo,
    heart_rate: HeartRateInfo,
    heart: &'a analytics::heart::Heart,
    pat: PatResult,
    nonparametric: &'a analytics::Nonparametric,
    cosinor: &'a analytics::Cosinor,
    sleep: super::sleep::SleepDoc<'a>,
    /// The analysis this one replaces (its data was edited or deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    supersedes: Option<Uuid>,
}

#[derive(Serialize)]
struct Range {
    from: String,
    to: String,
    utc_offset_minutes: i32,
}

#[derive(Serialize)]
struct ActivityInfo {
    /// `activity_count`, or `step_count` when the user has no activity counts.
    kind: Option<ActivityKind>,
    /// How minutes were counted as present.
    coverage: CoverageInfo,
    /// Which source filled how many minutes (wearable > unnamed > phone; never summed).
    sources: Vec<SourceUse>,
    /// Mean per clock hour, for charts: derived data that can be shared without raw samples.
    /// On the local clock across an offset change (module rules).
    hourly: Hourly,
    /// Steps per local day (`analytics::steps`); empty without step samples.
    days: Vec<analytics::steps::StepDay>,
}

/// Why step rhythm measures have no PAT score.
const PAT_STEPS_REASON: &str = "step data: PAT was trained on minute activity counts; \
steps are a different signal, so no score is given for them";

/// The coverage rule of `activity.coverage`.
#[derive(Serialize)]
struct CoverageInfo {
    /// `samples` (activity counts: a minute is present when it has a sample) or
    /// `step_source_hours` (steps: see [`STEP_RULE`]).
    rule: &'static str,
    description: &'static str,
    /// Clock hours counted as recording (`step_source_hours`); `null` for `samples`.
    recording_hours: Option<usize>,
    /// Minutes without a step sample counted as 0 steps.
    filled_minutes: usize,
}

const SAMPLES_RULE: &str = "A minute is present when it has an activity count sample; a \
minute without one is missing, never zero.";
const STEP_RULE: &str = "A step counter records only while its wearer moves. A clock hour \
(UTC hour: the local hour for whole-hour offsets) counts as recording when a source that sent \
steps sent any sample of any kind overlapping it; there a minute without steps is 0 steps. \
Minutes of other hours are missing.";

impl CoverageInfo {
    fn new(kind: Option<ActivityKind>, c: Coverage) -> CoverageInfo {
        match kind {
            Some(ActivityKind::StepCount) => CoverageInfo {
                rule: "step_source_hours",
                description: STEP_RULE,
                recording_hours: Some(c.recording_hours),
                filled_minutes: c.filled_minutes,
            },
            _ => CoverageInfo {
                rule: "samples",
                description: SAMPLES_RULE,
                recording_hours: None,
                filled_minutes: 0,
            },
        }
    }
}

#[derive(Serialize)]
struct Hourly {
    /// Start of the first hour (in the analysis clock).
    start: String,
    /// Mean over the hour's present minutes, one decimal; `null` for an hour with none.
    means: Vec<Option<f64>>,
}

/// Hourly means of a minute series starting at `from_minute` (hours aligned to the clock).
fn hourly(from_minute: i64, offset_secs: i32, activity: &[Option<f64>]) -> Hourly {
    let offset_min = i64::from(offset_secs / 60);
    let first_hour = (from_minute + offset_min).div_euclid(60) * 60 - offset_min;
    let mut means = Vec::new();
    let mut hour = first_hour;
    let end = from_minute + activity.len() as i64;
    while hour < end {
        let (mut n, mut sum) = (0u32, 0.0);
        for m in hour.max(from_minute)..(hour + 60).min(end) {
            if let Some(v) = activity[(m - from_minute) as usize] {
                n += 1;
                sum += v;
            }
        }
        means.push((n > 0).then(|| (sum / f64::from(n) * 10.0).round() / 10.0));
        hour += 60;
    }
    Hourly {
        start: rfc3339(first_hour, offset_secs),
        means,
    }
}

#[derive(Serialize)]
struct HeartRateInfo {
    minutes: usize,
    mean_bpm: Option<f64>,
}

fn rfc3339(minute: i64, offset_secs: i32) -> String {
    let offset = chrono::FixedOffset::east_opt(offset_secs)
        .unwrap_or(chrono::FixedOffset::east_opt(0).expect("zero offset"));
    offset
        .timestamp_opt(minute * 60, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn snapshot(pipeline: &Pipeline, user: Uuid, until_minute: Option<i64>) -> Option<Snapshot> {
    let window = pipeline.windows.get(user)?;
    window.with(|series, _version| snapshot_of(series, until_minute, false))
}

/// The week of `series` ending at `until_minute` (the series' end when `None`; with `exact`,
/// exactly `until_minute` even where the series ends earlier), trimmed to its activity.
fn snapshot_of(series: &Series, until_minute: Option<i64>, exact: bool) -> Option<Snapshot> {
    {
        let end = series.end_minute()?;
        let to = match (until_minute, exact) {
            (Some(until), true) => until,
            (until, _) => until.unwrap_or(end).min(end),
        };
        let from = to - WINDOW_MINUTES as i64;
        let heart_range = (from * 60_000, to * 60_000);
        let all: Vec<Option<f64>> = series.activity(from, to).collect();
        let first = all.iter().position(Option::is_some)?;
        let last = all.iter().rposition(Option::is_some)?;
        let activity = all[first..=last].to_vec();
        let week_to = to;
        let (from, to) = (from + first as i64, from + last as i64 + 1);
        let (mut hr_n, mut hr_sum) = (0usize, 0.0);
        for v in series.heart_rate(from, to).flatten() {
            hr_n += 1;
            hr_sum += v;
        }
        Some(Snapshot {
            week_to_minute: week_to,
            from_minute: from,
            activity,
            offset_secs: series.offset_secs(),
            activity_kind: series.activity_kind(),
            coverage: series.coverage(from, to),
            sources: series.activity_minutes_by_source(from, to),
            hr_minutes: hr_n,
            hr_mean: (hr_n > 0).then(|| (hr_sum / hr_n as f64 * 10.0).round() / 10.0),
            heart_range,
        })
    }
}

fn digest_id(
    user: Uuid,
    snap: &Snapshot,
    heart: &HeartSamples,
    steps: &StepSamples,
    stages: &[analytics::StageNight],
) -> Uuid {
    let mut h = Sha256::new();
    // Without stage nights the digest is what it always was.
    for n in stages {
        h.update(serde_json::to_vec(n).unwrap_or_default());
        // Not in the document, but the heart part depends on them.
        for (a, b) in &n.asleep_intervals {
            h.update(a.to_le_bytes());
            h.update(b.to_le_bytes());
        }
    }
    h.update(user.as_bytes());
    h.update(snap.from_minute.to_le_bytes());
    h.update(snap.offset_secs.to_le_bytes());
    for v in &snap.activity {
        match v {
            Some(x) => h.update(x.to_le_bytes()),
            None => h.update([0xFF; 8]),
        }
    }
    // Manual entries decide who owns a minute (and are listed): digested, only when there are
    // some, so that the ids of data without them are what they always were.
    for (source, _, minutes) in snap.sources.iter().filter(|s| s.1) {
        h.update(source.as_bytes());
        h.update([0xFE]);
        h.update(minutes.to_le_bytes());
    }
    heart.digest(&mut h);
    steps.digest(&mut h);
    digest_uuid(h)
}

/// Analyses `user`'s window (up to `until_minute`, exclusive) and stores the result.
/// Returns the record and whether it was new.
pub async fn run(
    pipeline: &Arc<Pipeline>,
    user: Uuid,
    trigger: Trigger,
    until_minute: Option<i64>,
) -> Result<(AnalysisRecord, bool), AnalysisError> {
    if matches!(trigger, Trigger::Request | Trigger::Import) {
        // After a restart (or an import, which writes past the window) the window may still
        // be unread; on a node that does not own it, it is read afresh.
        pipeline.window_service.window_for_request(user).await?;
    }
    // From the snapshot until stored: a recomputation after an edit waits for this analysis
    // (and then replaces it) or runs first (and this one sees the rebuilt window).
    let _derived = pipeline.lock_user(user).await;
    if trigger == Trigger::DayComplete {
        // From here a new event for this day queues a new analysis (see `consume_days`).
        pipeline.days_pending.remove(&(user, until_minute));
    }
    let snap = snapshot(pipeline, user, until_minute).ok_or(AnalysisError::NoData)?;
    compute(pipeline, user, trigger, snap, None).await
}

/// Analyses the week ending at `until_minute` (exclusive) as the store holds it now (read
/// for this: the window may hold another week). Returns the record and whether it was new.
pub async fn of_week(
    pipeline: &Arc<Pipeline>,
    user: Uuid,
    trigger: Trigger,
    until_minute: i64,
) -> Result<(AnalysisRecord, bool), AnalysisError> {
    let until = until_minute * 60_000;
    let series = read_series(
        &*pipeline.store,
        user,
        (until - WINDOW_MINUTES as i64 * 60_000, until),
    )
    .await?;
    let snap = snapshot_of(&series, Some(until_minute), true).ok_or(AnalysisError::NoData)?;
    compute(pipeline, user, trigger, snap, None).await
}

/// Recomputes the analysis of the week ending at `until_minute` from `series` (read from
/// the store for this), naming the analysis it replaces in its body (`supersedes`). Returns
/// the record and whether it was new (an existing one with the same input is returned as
/// stored).
pub async fn recompute(
    pipeline: &Arc<Pipeline>,
    user: Uuid,
    trigger: Trigger,
    series: &Series,
    until_minute: i64,
    supersedes: Uuid,
) -> Result<(AnalysisRecord, bool), AnalysisError> {
    let snap = snapshot_of(series, Some(until_minute), true).ok_or(AnalysisError::NoData)?;
    compute(pipeline, user, trigger, snap, Some(supersedes)).await
}

async fn compute(
    pipeline: &Arc<Pipeline>,
    user: Uuid,
    trigger: Trigger,
    snap: Snapshot,
    supersedes: Option<Uuid>,
) -> Result<(AnalysisRecord, bool), AnalysisError> {
    let heart_samples = heart::read(&*pipeline.store, user, snap.heart_range).await?;
    let to_minute = snap.from_minute + snap.activity.len() as i64;
    let step_range = (snap.from_minute * 60_000, to_minute * 60_000);
    let step_samples = steps::read(&*pipeline.store, user, step_range).await?;
    let week_to_ms = snap.week_to_minute * 60_000;
    let spans = super::sleep::read_stage_spans(&*pipeline.store, user, week_to_ms).await?;
    let stages =
        tokio::task::spawn_blocking(move || super::sleep::nights_in_week(&spans, week_to_ms))
            .await
            .map_err(|e| AnalysisError::Failed(e.to_string()))?;
    // Step data across a change of UTC offset: the rhythm measures and the hourly chart run on
    // the local clock (`analytics::clock`).
    let local = (snap.activity_kind == Some(ActivityKind::StepCount))
        .then(|| {
            let target = snap.offset_secs / 60;
            let offsets = analytics::clock::offsets_per_minute(
                snap.from_minute,
                snap.activity.len(),
                &step_samples.clock_changes(),
                target,
            );
            analytics::clock::to_local_clock(snap.from_minute, &snap.activity, &offsets, target)
        })
        .flatten();
    let mut id = digest_id(user, &snap, &heart_samples, &step_samples, &stages);
    if local.is_some() {
        // Analyses stored before the local clock was used get a new id, hence a new result.
        let mut h = Sha256::new();
        h.update(id.as_bytes());
        h.update(b"local-clock");
        id = digest_uuid(h);
    }
    let asleep = heart::asleep_nights(&stages);
    if let Some(existing) = pipeline.store.get_analysis(user, id).await? {
        if supersedes.is_none() && existing.superseded_by.is_some() {
            // The data went back to what this analysis saw (samples re-added after a
            // deletion): it is current again, delivered like a new one, not stored twice.
            pipeline
                .store
                .set_superseded(DocKind::Analysis, user, id, None)
                .await?;
            let current = AnalysisRecord {
                superseded_by: None,
                ..existing
            };
            return Ok((current, true));
        }
        return Ok((existing, false));
    }
    let created_at = Utc::now();
    let (activity, from_ms, offset_secs) = (
        snap.activity.clone(),
        snap.from_minute * 60_000,
        snap.offset_secs,
    );
    let local_for_job = local.clone();
    let signal = match snap.activity_kind {
        Some(ActivityKind::StepCount) => Signal::StepCount,
        _ => Signal::ActivityCount,
    };
    let analytics_job = async {
        // Held for the analytics only: PAT has its own pool and queue, so waiting for it must
        // not keep other users' analytics from starting (that is what fills PAT batches).
        let _permit = pipeline
            .analysis_permits
            .acquire()
            .await
            .map_err(|_| AnalysisError::Failed("shutting down".into()))?;
        let started = std::time::Instant::now();
        type Out = (
            analytics::Analysis,
            usize,
            analytics::heart::Heart,
            Vec<analytics::steps::StepDay>,
        );
        let local = local_for_job;
        let job = move || -> Result<Out, AnalysisError> {
            let series = MinuteSeries::from_options(from_ms, &activity)
                .map_err(|e| AnalysisError::Failed(e.to_string()))?;
            let clock = ClockOffset::from_seconds(offset_secs).unwrap_or_default();
            let options = AnalysisOptions { clock, signal };
            let mut result = analytics::analyze(&series, &options);
            if let Some(local) = local {
                let series = MinuteSeries::from_options(local.start_minute * 60_000, &local.values)
                    .map_err(|e| AnalysisError::Failed(e.to_string()))?;
                let rhythm = analytics::analyze(&series, &options);
                result.nonparametric = rhythm.nonparametric;
                result.cosinor = rhythm.cosinor;
            }
            Ok((
                result,
                series.n_present(),
                heart_samples.analyze(&asleep),
                step_samples.analyze(),
            ))
        };
        let out = tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| AnalysisError::Failed(e.to_string()))??;
        ::metrics::histogram!(crate::metrics::ANALYSIS_SECONDS)
            .record(started.elapsed().as_secs_f64());
        Ok::<_, AnalysisError>(out)
    };
    let pat_job = async {
        if signal == Signal::StepCount {
            PatResult::unavailable("unsupported_signal", PAT_STEPS_REASON)
        } else if snap.activity.len() == WINDOW_MINUTES {
            pipeline
                .pat
                .score(snap.activity.clone())
                .instrument(tracing::info_span!("pat"))
                .await
        } else if let Err(reason) = pipeline.pat.status() {
            PatResult::unavailable("not_configured", reason)
        } else {
            PatResult::unavailable(
                "insufficient_data",
                format!(
                    "PAT needs data spanning a full week (10080 minutes); this window spans {}",
                    snap.activity.len()
                ),
            )
        }
    };
    let (analytics_out, pat) = tokio::join!(analytics_job, pat_job);
    let (result, minutes_present, heart, step_days) = analytics_out?;
    let start_ms = snap.from_minute * 60_000;
    let body = Body {
        analysis_id: id,
        user_id: user,
        created_at: created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        trigger: trigger.as_str(),
        window: Range {
            from: rfc3339(snap.from_minute, snap.offset_secs),
            to: rfc3339(to_minute, snap.offset_secs),
            utc_offset_minutes: snap.offset_secs / 60,
        },
        minutes_present,
        activity: ActivityInfo {
            kind: snap.activity_kind,
            coverage: CoverageInfo::new(snap.activity_kind, snap.coverage),
            sources: snap
                .sources
                .iter()
                .map(|(s, manual, n)| SourceUse {
                    source: s.clone(),
                    minutes: *n,
                    rank: crate::window::series::rank(s),
                    manual: *manual,
                })
                .collect(),
            hourly: match &local {
                Some(l) => hourly(l.start_minute, snap.offset_secs, &l.values),
                None => hourly(snap.from_minute, snap.offset_secs, &snap.activity),
            },
            days: step_days,
        },
        heart_rate: HeartRateInfo {
            minutes: snap.hr_minutes,
            mean_bpm: snap.hr_mean,
        },
        heart: &heart,
        pat,
        nonparametric: &result.nonparametric,
        cosinor: &result.cosinor,
        sleep: super::sleep::doc(&result.sleep, &stages),
        supersedes,
    };
    // A few kilobytes of JSON: microseconds, fine on the runtime.
    let record = AnalysisRecord {
        superseded_by: None,
        id,
        user_id: user,
        created_at,
        window_from_ms: start_ms,
        window_to_ms: to_minute * 60_000,
        body: serde_json::to_string(&body).map_err(|e| AnalysisError::Failed(e.to_string()))?,
    };
    let new = pipeline.store.put_analysis(record.clone()).await?;
    ::metrics::counter!(crate::metrics::ANALYSES, "trigger" => trigger.as_str(), "outcome" => if new { "new" } else { "existing" }).increment(1);
    Ok((record, new))
}

/// A v8 UUID from the first 16 bytes of a SHA-256: ids that are digests of their input.
pub fn digest_uuid(h: Sha256) -> Uuid {
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    Uuid::new_v8(b)
}

/// Runs an analysis in the background and pushes it to the user's sessions if it is new
/// (or was asked for). Failures of a request go back to the asking session (`reply`) only.
pub fn spawn(
    pipeline: &Arc<Pipeline>,
    user: Uuid,
    trigger: Trigger,
    until_minute: Option<i64>,
    reply: Option<Outbound>,
) {
    let pipeline2 = pipeline.clone();
    // A child of the caller's span (the ingest that completed the day, the request, ...).
    let span = tracing::info_span!("analysis", trigger = trigger.as_str(), user_id = %user);
    let task = async move {
        let error = |code: &str, message: &str| {
            if let Some(r) = &reply {
                let frame = ServerFrame::AnalysisError { code, message };
                // A full queue means the session is already closing as a slow consumer.
                let _ = r.try_send(Box::new(encode(&frame)));
            }
        };
        match run(&pipeline2, user, trigger, until_minute).await {
            Ok((record, new)) => {
                if new {
                    pipeline2
                        .fanout
                        .deliver(DocKind::Analysis, &record, true)
                        .instrument(tracing::info_span!("push", kind = "analysis"))
                        .await;
                } else if trigger == Trigger::Request {
                    // Asked for again: the answer goes to the asking session only.
                    if let Some(r) = &reply {
                        let frame = ServerFrame::Document {
                            kind: DocKind::Analysis,
                            body: &record.body,
                        };
                        let _ = r.try_send(Box::new(encode(&frame)));
                    }
                }
                // A backfill of old days completes many days at once: only recent ones (or
                // asked-for analyses) are worth a model call.
                let recent =
                    Utc::now().timestamp_millis() - record.window_to_ms < INSIGHT_RECENT_MS;
                if new && (trigger == Trigger::Request || recent) {
                    super::insight::spawn(&pipeline2, user, record);
                }
            }
            Err(AnalysisError::NoData) => {
                if trigger == Trigger::Request {
                    error("no_data", "no activity data in the last 7 days to analyse");
                }
            }
            Err(AnalysisError::Store(e)) => {
                let failure = crate::protocol::store_failure(&e, "analysis not stored");
                let message = if failure.transient {
                    "the analysis could not be stored; ask again later"
                } else {
                    "the analysis failed"
                };
                error(failure.code, message);
            }
            Err(e) => {
                tracing::error!(error = %e, "analysis failed");
                error("internal", "the analysis failed");
            }
        }
    };
    pipeline.sessions.spawn(task.instrument(span));
}
