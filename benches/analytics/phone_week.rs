//! A phone-shaped week for the benchmark: what a HealthKit user sends in 7 days (watch and
//! iPhone step intervals while walking, heart rate every 5 minutes and every 5 s in a daily
//! 45-minute run, sleep stages every night, HRV, SpO2 and respiratory rate at night), built into
//! the inputs the analysis job gets: the window's step minutes, the stage spans, the heart
//! readings and the step samples. Deterministic: xorshift, fixed seed. About 3,600 samples.

use clarity::analytics::heart::Reading;
use clarity::analytics::steps::StepSample;
use clarity::analytics::{MinuteSeries, StageSpan};
use clarity::samples::{Kind, Sample, SleepStage, Timestamp};
use clarity::window::Series;

const MIN: i64 = 60_000;
/// 2026-10-05T00:00-04:00.
const T0: i64 = 1_791_172_800_000;
const OFFSET: i32 = -4 * 3600;
const WATCH: &str = "Apple Watch";
const PHONE: &str = "iPhone";

pub struct PhoneWeek {
    pub steps_series: MinuteSeries,
    pub spans: Vec<StageSpan>,
    pub heart_rate: Vec<Reading<'static>>,
    pub hrv: Vec<Reading<'static>>,
    pub spo2: Vec<Reading<'static>>,
    pub respiratory: Vec<Reading<'static>>,
    pub workouts: Vec<(i64, i64)>,
    pub steps: Vec<StepSample<'static>>,
    pub range: (i64, i64),
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() * (hi - lo) as f64) as i64
    }
}

fn reading(utc_ms: i64, value: f64) -> Reading<'static> {
    Reading {
        utc_ms,
        offset_secs: OFFSET,
        value,
        source: Some(WATCH),
        manual: false,
    }
}

fn step(start_ms: i64, minutes: i64, value: f64, source: &'static str) -> StepSample<'static> {
    StepSample {
        start_ms,
        end_ms: Some(start_ms + minutes * MIN),
        offset_secs: OFFSET,
        value,
        source: Some(source),
        manual: false,
    }
}

/// Step intervals of one walk: the watch in chunks of up to 10 minutes, the phone over the
/// same minutes in chunks of up to 7 when it was carried.
fn walk(rng: &mut Rng, start: i64, minutes: i64, out: &mut Vec<StepSample<'static>>) {
    for (source, chunk, pace) in [(WATCH, 10, 100.0), (PHONE, 7, 90.0)] {
        if source == PHONE && rng.next() < 0.25 {
            continue;
        }
        let mut m = 0;
        while m < minutes {
            let n = chunk.min(minutes - m);
            out.push(step(start + m * MIN, n, (pace * n as f64).round(), source));
            m += n;
        }
    }
}

pub fn phone_week() -> PhoneWeek {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut steps, mut spans) = (Vec::new(), Vec::new());
    let (mut heart_rate, mut hrv, mut spo2, mut respiratory, mut workouts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for day in 0..7 {
        let midnight = T0 + day * 1440 * MIN;
        // Walks between 07:00 and 23:00.
        let mut t = midnight + 7 * 60 * MIN;
        while t < midnight + 23 * 60 * MIN {
            let minutes = rng.int(5, 21);
            walk(&mut rng, t, minutes, &mut steps);
            t += (minutes + rng.int(20, 90)) * MIN;
        }
        // Heart rate every 5 minutes, every 5 s in a 45-minute run at 18:00.
        let run = midnight + 18 * 60 * MIN;
        workouts.push((run, run + 45 * MIN));
        for m in (0..1440).step_by(5) {
            let at = midnight + m * MIN + 20_000;
            heart_rate.push(reading(at, 60.0 + 20.0 * rng.next()));
        }
        for s in 0..45 * 12 {
            heart_rate.push(reading(run + s * 5_000, 140.0 + 20.0 * rng.next()));
        }
        // The night ending this morning: 23:00 the evening before to about 07:00.
        let bed = midnight - 60 * MIN;
        let mut at = bed;
        let cycle = [
            SleepStage::Awake,
            SleepStage::Light,
            SleepStage::Deep,
            SleepStage::Light,
            SleepStage::Rem,
        ];
        for i in 0.. {
            let stage = cycle[i % cycle.len()];
            let len = if stage == SleepStage::Awake {
                rng.int(2, 12)
            } else {
                rng.int(10, 40)
            };
            spans.push(StageSpan {
                start_ms: at,
                end_ms: at + len * MIN,
                offset_secs: OFFSET,
                end_offset_secs: OFFSET,
                stage,
                source: WATCH.to_owned(),
            });
            at += len * MIN;
            if at >= midnight + 7 * 60 * MIN {
                break;
            }
        }
        for k in 0..4 {
            let at = midnight + (150 + k * 10) * MIN + 30_000;
            respiratory.push(reading(at, 14.0 + rng.next()));
            if k < 3 {
                spo2.push(reading(at, 95.0 + 3.0 * rng.next()));
            }
            if k < 2 {
                hrv.push(reading(at, 40.0 + 10.0 * rng.next()));
            }
        }
    }
    let range = (T0, T0 + 7 * 1440 * MIN);
    PhoneWeek {
        steps_series: window_minutes(&steps, &heart_rate, range),
        spans,
        heart_rate,
        hrv,
        spo2,
        respiratory,
        workouts,
        steps,
        range,
    }
}

/// The step minutes as the window holds them (coverage rule included): what the analysis job
/// gets from its snapshot.
fn window_minutes(
    steps: &[StepSample<'static>],
    heart_rate: &[Reading<'static>],
    (from, to): (i64, i64),
) -> MinuteSeries {
    let ts = |utc_ms| Timestamp {
        utc_ms,
        offset_secs: OFFSET,
    };
    let sample = |kind, start, end: Option<i64>, value, source: Option<&str>| Sample {
        version: None,
        id: String::new(),
        kind,
        start: ts(start),
        end: end.map(ts),
        value,
        source: source.map(str::to_owned),
        extra: None,
    };
    let mut series = Series::new();
    for s in steps {
        series.add(&sample(
            Kind::StepCount,
            s.start_ms,
            s.end_ms,
            s.value,
            s.source,
        ));
    }
    for r in heart_rate {
        series.add(&sample(Kind::HeartRate, r.utc_ms, None, r.value, r.source));
    }
    let minutes: Vec<Option<f64>> = series.activity(from / MIN, to / MIN).collect();
    MinuteSeries::from_options(from, &minutes).expect("valid step minutes")
}
