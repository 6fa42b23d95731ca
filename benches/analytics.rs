//! `analyze` over one synthetic week (10080 minutes, about 4 % missing).
//! Target: under 500 µs a week on one core (> 2,000 user-weeks/s).
//!
//! `phone_week`: the full analysis of a phone-shaped week (issue 18), the pure analytics the
//! analysis job runs: `analyze` on the window's step minutes, the stage nights, the heart days
//! and the step days, from a generated HealthKit-shaped week (see `analytics/phone_week.rs`).
//! Same target: ≥ 2,000 user-weeks/s on one core (throughput 1 element = 1 user-week).
//!
//! Two measurements: wall time (criterion's default) and this thread's CPU time. On a shared
//! machine wall time also counts the slices other processes get; CPU time is the cost on one
//! core (CLOCK_THREAD_CPUTIME_ID).

use std::f64::consts::PI;
use std::hint::black_box;

use clarity::analytics::cosinor::cosinor;
use clarity::analytics::nonparametric::{is_iv, l5_m10};
use clarity::analytics::{
    AnalysisOptions, ClockOffset, MinuteSeries, TudorLockeParams, analyze, per_minute, tudor_locke,
};
use std::time::Duration;

use clarity::analytics::heart::{HeartInput, heart};
use clarity::analytics::steps::step_days;
use clarity::analytics::{Signal, stage_nights};
use clarity::samples::sources::rank;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rustix::time::{ClockId, clock_gettime};

/// A 24 h rhythm with noise, night-time rest, a 45-minute gap a day (charging) at a moving
/// time, and scattered single missing minutes. Deterministic: xorshift, fixed seed.
fn synthetic_week() -> MinuteSeries {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let values: Vec<Option<f64>> = (0..7 * 1440)
        .map(|m| {
            let (day, minute) = (m / 1440, m % 1440);
            let charging = (600 + day * 37..645 + day * 37).contains(&minute);
            let dropout = next() < 0.01;
            let mu = 250.0 + 250.0 * (2.0 * PI * (minute as f64 - 900.0) / 1440.0).cos();
            let count = (mu + 120.0 * (next() - 0.5)).max(0.0).round();
            (!charging && !dropout).then_some(count)
        })
        .collect();
    // 2024-03-04T00:00Z.
    MinuteSeries::from_options(1_709_510_400_000, &values).expect("valid synthetic week")
}

#[path = "analytics/phone_week.rs"]
mod phone_week;

/// Everything the analysis job computes for one phone week.
fn analyze_phone_week(w: &phone_week::PhoneWeek, options: &AnalysisOptions) -> usize {
    let analysis = analyze(&w.steps_series, options);
    let nights = stage_nights(&w.spans, rank);
    // As the pipeline does: heart while asleep over the stage nights' asleep minutes.
    let asleep = clarity::pipeline::heart::asleep_nights(&nights);
    let heart = heart(&HeartInput {
        heart_rate: &w.heart_rate,
        nights: &asleep,
        workouts: &w.workouts,
        hrv_sdnn: &w.hrv,
        respiratory_rate: &w.respiratory,
        spo2: &w.spo2,
        ..Default::default()
    });
    let days = step_days(&w.steps, w.range);
    black_box(&analysis);
    nights.len() + heart.days.len() + days.len()
}

fn phone_options() -> AnalysisOptions {
    AnalysisOptions {
        clock: ClockOffset::from_minutes(-240).expect("valid offset"),
        signal: Signal::StepCount,
    }
}

fn bench(c: &mut Criterion) {
    let week = synthetic_week();
    let options = AnalysisOptions {
        clock: ClockOffset::from_minutes(60).expect("valid offset"),
        ..Default::default()
    };
    let mut group = c.benchmark_group("analytics");
    group.throughput(Throughput::Elements(1));
    group.bench_function("analyze_one_week", |b| {
        b.iter(|| analyze(black_box(&week), black_box(&options)))
    });
    // The parts, to see where the time goes.
    group.bench_function("per_minute_scores", |b| {
        b.iter(|| per_minute(black_box(&week)))
    });
    group.bench_function("is_iv", |b| b.iter(|| is_iv(black_box(&week))));
    group.bench_function("l5_m10", |b| {
        b.iter(|| l5_m10(black_box(&week), options.clock))
    });
    group.bench_function("cosinor", |b| {
        b.iter(|| cosinor(black_box(&week), options.clock))
    });
    let sadeh = per_minute(&week).sadeh;
    group.bench_function("tudor_locke", |b| {
        b.iter(|| tudor_locke(black_box(&week), &sadeh, &TudorLockeParams::default()))
    });
    let phone = phone_week::phone_week();
    let phone_opts = phone_options();
    // Sanity: a week of nights and days, so the benchmark measures real work.
    assert_eq!(analyze_phone_week(&phone, &phone_opts), 7 + 7 + 7);
    group.bench_function("phone_week", |b| {
        b.iter(|| analyze_phone_week(black_box(&phone), black_box(&phone_opts)))
    });
    group.finish();
}

/// Nanoseconds this thread has run on a CPU.
fn thread_cpu_ns() -> u64 {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    let ns = i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
    u64::try_from(ns).unwrap_or(0)
}

struct ThreadCpuTime {
    wall: WallTime,
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(thread_cpu_ns().saturating_sub(start))
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, d: &Duration) -> f64 {
        d.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

fn bench_cpu(c: &mut Criterion<ThreadCpuTime>) {
    let week = synthetic_week();
    let options = AnalysisOptions {
        clock: ClockOffset::from_minutes(60).expect("valid offset"),
        ..Default::default()
    };
    let mut group = c.benchmark_group("analytics_cpu_time");
    group.throughput(Throughput::Elements(1));
    group.bench_function("analyze_one_week", |b| {
        b.iter(|| analyze(black_box(&week), black_box(&options)))
    });
    let phone = phone_week::phone_week();
    let phone_opts = phone_options();
    group.bench_function("phone_week", |b| {
        b.iter(|| analyze_phone_week(black_box(&phone), black_box(&phone_opts)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpuTime { wall: WallTime });
    targets = bench_cpu
}
criterion_main!(benches, cpu);
