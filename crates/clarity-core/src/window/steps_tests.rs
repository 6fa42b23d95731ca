//! The step coverage rule and the field report of issue 18, from samples to analysis: three
//! days of phone data, steps only while walking between 07:00 and 23:00 local (UTC+1), heart
//! rate every 5 minutes and sleep stages every night from a watch. The server used to put the
//! activity peak before the first step of the day and to score walking minutes as sleep.

use crate::analytics::{self, AnalysisOptions, ClockOffset, MinuteSeries, Signal};
use crate::samples::{Kind, Sample, SleepStage, Timestamp};
use crate::window::Series;

const MINUTE_MS: i64 = 60_000;
/// 2026-11-02T00:00:00+01:00.
const DAY0_LOCAL_MIDNIGHT_MS: i64 = 1_793_574_000_000;
const OFFSET_SECS: i32 = 3600;

fn at(local_minute: i64) -> Timestamp {
    Timestamp {
        utc_ms: DAY0_LOCAL_MIDNIGHT_MS + local_minute * MINUTE_MS,
        offset_secs: OFFSET_SECS,
    }
}

fn sample(kind: Kind, from: i64, to: Option<i64>, value: f64, source: &str) -> Sample {
    Sample {
        version: None,
        id: format!("{kind:?}-{from}-{source}"),
        kind,
        start: at(from),
        end: to.map(at),
        value,
        source: Some(source.to_owned()),
        extra: None,
    }
}

/// One walk per hour from 07:00 to 22:xx (all ending before 23:00): (start, end, steps), local
/// minutes since day 0's midnight. Busier mornings, as a commute gives.
pub fn walks() -> Vec<(i64, i64, f64)> {
    let mut out = Vec::new();
    for d in 0..3i64 {
        for h in 7..23i64 {
            let start = d * 1440 + h * 60 + (d * 17 + h * 29) % 40;
            let len = 5 + (d * 7 + h * 3) % 15;
            let rate = 60 + (h * 13 + d * 5) % 60 + if h < 9 { 40 } else { 0 };
            out.push((start, start + len, (len * rate) as f64));
        }
    }
    out
}

/// The field report's samples: steps from `step_source`, heart rate every 5 minutes and sleep
/// stages 23:30-06:30 from "Apple Watch".
fn field_report(step_source: &str) -> Vec<Sample> {
    let mut out: Vec<Sample> = walks()
        .into_iter()
        .map(|(a, b, steps)| sample(Kind::StepCount, a, Some(b), steps, step_source))
        .collect();
    for m in (0..3 * 1440).step_by(5) {
        out.push(sample(
            Kind::HeartRate,
            m,
            None,
            60.0 + (m % 7) as f64,
            "Apple Watch",
        ));
    }
    let stages = [
        SleepStage::Light,
        SleepStage::Deep,
        SleepStage::Light,
        SleepStage::Rem,
    ];
    for night in 0..3i64 {
        // The night before day `night`'s morning: 23:30 the evening before to 06:30.
        for (i, k) in (-30..390).step_by(30).enumerate() {
            let from = night * 1440 + k;
            if from < 0 {
                continue;
            }
            let stage = stages[i % stages.len()];
            out.push(sample(
                Kind::SleepStage,
                from,
                Some(from + 30),
                stage as u8 as f64,
                "Apple Watch",
            ));
        }
    }
    out
}

/// What `pipeline::analysis` does with a window: trim to the first and last present minute,
/// analyse in the user's clock with the window's signal.
fn analyse(series: &Series) -> (analytics::Analysis, i64, Vec<Option<f64>>) {
    let end = series.end_minute().unwrap();
    let from = end - crate::window::WINDOW_MINUTES as i64;
    let all: Vec<Option<f64>> = series.activity(from, end).collect();
    let first = all.iter().position(Option::is_some).unwrap();
    let last = all.iter().rposition(Option::is_some).unwrap();
    let minutes = all[first..=last].to_vec();
    let start = from + first as i64;
    let s = MinuteSeries::from_options(start * MINUTE_MS, &minutes).unwrap();
    let options = AnalysisOptions {
        clock: ClockOffset::from_seconds(OFFSET_SECS).unwrap(),
        signal: Signal::StepCount,
    };
    (analytics::analyze(&s, &options), start, minutes)
}

fn local_hour(utc_minute: i64) -> i64 {
    (utc_minute + i64::from(OFFSET_SECS / 60)).rem_euclid(1440) / 60
}

fn hhmm_hour(t: &str) -> i64 {
    t[..2].parse().unwrap()
}

#[test]
fn minutes_without_steps_are_zero_only_in_hours_the_step_source_was_recording() {
    for order in [false, true] {
        let mut w = Series::new();
        let mut samples = vec![
            // The phone walks 08:10-08:20 and sends its battery-hungry nothing else.
            sample(
                Kind::StepCount,
                8 * 60 + 10,
                Some(8 * 60 + 20),
                100.0,
                "iPhone",
            ),
            // The watch sends heart rate at 02:00 but no steps: not a step source.
            sample(Kind::HeartRate, 2 * 60, None, 55.0, "Apple Watch"),
            // The phone sends a sleep stage at 05:00-06:30 (any kind marks its hours).
            sample(Kind::SleepStage, 5 * 60, Some(6 * 60 + 30), 1.0, "iPhone"),
        ];
        if order {
            samples.reverse();
        }
        for s in &samples {
            w.add(s);
        }
        let base = at(0).utc_ms / MINUTE_MS;
        let v: Vec<Option<f64>> = w.activity(base, base + 9 * 60).collect();
        let hour = |h: usize| &v[h * 60..(h + 1) * 60];
        assert!(
            hour(2).iter().all(Option::is_none),
            "watch HR does not mark steps"
        );
        assert!(hour(7).iter().all(Option::is_none));
        assert_eq!(
            hour(8)[9],
            Some(0.0),
            "before the walk: recording, no steps"
        );
        assert_eq!(hour(8)[10], Some(10.0));
        assert_eq!(hour(8).iter().flatten().sum::<f64>(), 100.0);
        assert!(hour(5).iter().chain(hour(6)).all(|m| *m == Some(0.0)));
        let c = w.coverage(base, base + 9 * 60);
        assert_eq!(c.recording_hours, 3, "05, 06 and 08 (reversed: {order})");
        // 05 and 06 whole; 08 up to the window's end at 08:20, less the 10 walking minutes.
        assert_eq!(c.filled_minutes, 2 * 60 + 10);
    }
}

#[test]
fn activity_counts_are_never_filled() {
    let mut w = Series::new();
    w.add(&sample(
        Kind::StepCount,
        8 * 60,
        Some(8 * 60 + 5),
        50.0,
        "iPhone",
    ));
    w.add(&sample(
        Kind::ActivityCount,
        8 * 60 + 30,
        None,
        7.0,
        "iPhone",
    ));
    let base = at(0).utc_ms / MINUTE_MS;
    let v: Vec<Option<f64>> = w.activity(base + 8 * 60, base + 9 * 60).collect();
    assert_eq!(v.iter().flatten().count(), 1, "{v:?}");
    assert_eq!(w.coverage(base, base + 1440).filled_minutes, 0);
}

#[test]
fn field_report_with_the_watch_counting_steps_peaks_inside_the_waking_hours() {
    let mut w = Series::new();
    for s in field_report("Apple Watch") {
        w.add(&s);
    }
    let (a, start, minutes) = analyse(&w);
    // The watch sent heart rate all day and night: every hour is recording, nights are 0.
    assert!(minutes.iter().all(Option::is_some));
    let walking_hours: Vec<i64> = (7..23).collect();
    let np = &a.nonparametric;
    assert_eq!(np.signal, Signal::StepCount);
    let m10 = np.m10.as_ref().expect("the average day is complete");
    assert!(
        walking_hours.contains(&hhmm_hour(&m10.start)),
        "M10 starts at {} (window from local hour {})",
        m10.start,
        local_hour(start)
    );
    let l5 = np.l5.as_ref().unwrap();
    assert_eq!(l5.mean, 0.0, "the quietest hours are the nights");
    let peak = a.cosinor.acrophase_hours.expect("a peak inside the day");
    assert!(walking_hours.contains(&(peak as i64)), "acrophase {peak}");
    let is = np.is.unwrap();
    assert!((0.0..=1.0).contains(&is), "IS {is}");
    // No actigraphy sleep from steps.
    assert_eq!(a.sleep.cole_kripke, None);
    assert_eq!(a.sleep.sadeh, None);
    assert!(a.sleep.periods.is_empty() && a.sleep.nights.is_empty());
    assert!(
        a.sleep
            .actigraphy_reason
            .as_deref()
            .unwrap()
            .starts_with("step data")
    );
}

#[test]
fn field_report_with_phone_steps_has_no_peak_outside_the_hours_with_steps() {
    let mut w = Series::new();
    for s in field_report("iPhone") {
        w.add(&s);
    }
    let (a, start, minutes) = analyse(&w);
    // The phone sent nothing at night: those hours stay missing, walking hours are complete.
    for (i, m) in minutes.iter().enumerate() {
        let hour = local_hour(start + i as i64);
        assert_eq!(
            m.is_some(),
            (7..23).contains(&hour),
            "minute {i} (local hour {hour})"
        );
    }
    let c = w.coverage(start, start + minutes.len() as i64);
    assert_eq!(c.recording_hours, 3 * 16);
    let np = &a.nonparametric;
    if let Some(m10) = &np.m10 {
        assert!(
            (7..23).contains(&hhmm_hour(&m10.start)),
            "M10 {}",
            m10.start
        );
    }
    if let Some(peak) = a.cosinor.acrophase_hours {
        assert!((7.0..23.0).contains(&peak), "acrophase {peak}");
    }
    if let Some(is) = np.is {
        assert!((0.0..=1.0).contains(&is), "IS {is}");
    }
    assert_eq!(a.sleep.cole_kripke, None);
}
