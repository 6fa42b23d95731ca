//! Hand-computed cases. Counts are exact; means are compared after the module's rounding to
//! one decimal, so the tolerance is 0.05 of the unit (values below are chosen so that the
//! exact mean is stated next to each check).

use chrono::NaiveDate;

use super::*;
use crate::samples::Timestamp;

const MIN: i64 = 60_000;

fn ts(t: &str) -> Timestamp {
    Timestamp::parse(t).unwrap_or_else(|| panic!("bad time {t}"))
}

fn r(t: &str, value: f64, source: Option<&'static str>) -> Reading<'static> {
    let t = ts(t);
    Reading {
        utc_ms: t.utc_ms,
        offset_secs: t.offset_secs,
        value,
        source,
        manual: false,
    }
}

/// A reading every 5 minutes from `from` for `n` readings, offset `offset_secs`, value by index.
fn every5(
    from: &str,
    n: usize,
    offset_secs: i32,
    source: Option<&'static str>,
    value: impl Fn(usize) -> f64,
) -> Vec<Reading<'static>> {
    let start = ts(from).utc_ms;
    (0..n)
        .map(|i| Reading {
            utc_ms: start + i as i64 * 5 * MIN,
            offset_secs,
            value: value(i),
            source,
            manual: false,
        })
        .collect()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn night(d: &str, from: &str, to: &str) -> AsleepNight {
    AsleepNight {
        date: date(d),
        intervals: vec![(ts(from).utc_ms, ts(to).utc_ms)],
    }
}

fn day<'h>(h: &'h Heart, d: &str) -> &'h HeartDay {
    h.days
        .iter()
        .find(|x| x.date == date(d))
        .unwrap_or_else(|| panic!("no day {d} in {:?}", h.days))
}

/// 22:00 on 1 March to 07:55 on 2 March (+01:00), asleep 23:00-07:00: the lowest asleep half
/// hour is 02:00-02:25 at 50; the evening's 45s are awake and belong to 1 March.
#[test]
fn resting_is_the_lowest_asleep_half_hour_else_the_days_lowest() {
    // Index 0 = 22:00 local; 02:00 is index 48, 03:00 index 60, 07:00 index 108.
    let hr = every5(
        "2026-03-01T22:00:00+01:00",
        120,
        3600,
        Some("Watch"),
        |i| match i {
            0..=2 => 45.0,
            48..=53 => 50.0,
            60..=65 => 52.0,
            108.. => 70.0,
            _ => 60.0,
        },
    );
    let nights = [night(
        "2026-03-02",
        "2026-03-01T23:00:00+01:00",
        "2026-03-02T07:00:00+01:00",
    )];
    let h = heart(&HeartInput {
        heart_rate: &hr,
        nights: &nights,
        ..HeartInput::default()
    });
    assert_eq!(h.days.len(), 2, "{:?}", h.days);
    let d1 = day(&h, "2026-03-01");
    // No night dated 1 March: [22:00, 22:30) = 45,45,45,60,60,60 -> 52.5 exactly.
    assert_eq!(d1.resting_method, Some(RestingMethod::DayLowest30Min));
    assert_eq!(d1.resting_bpm, Some(52.5));
    assert_eq!(d1.asleep_mean_bpm, None);
    assert_eq!(d1.hr_minutes, 24);
    let d2 = day(&h, "2026-03-02");
    assert_eq!(d2.resting_method, Some(RestingMethod::AsleepLowest30Min));
    assert_eq!(d2.resting_bpm, Some(50.0));
    // 96 asleep minutes (23:00-06:55): 6 x 50 + 6 x 52 + 84 x 60 = 5652 -> 58.875 -> 58.9.
    assert_eq!(d2.asleep_mean_bpm, Some(58.9));
    assert_eq!(d2.hr_minutes, 96);
    assert_eq!(
        h.sources,
        vec![SourceMinutes {
            source: "Watch".into(),
            minutes: 120,
            rank: 3,
            manual: false,
        }]
    );
}

#[test]
fn a_half_hour_needs_three_readings() {
    // Two low readings 10 minutes apart, then readings every 40 minutes: no window has 3.
    let hr = [
        r("2026-03-01T10:00:00Z", 40.0, None),
        r("2026-03-01T10:10:00Z", 40.0, None),
        r("2026-03-01T11:00:00Z", 80.0, None),
        r("2026-03-01T11:40:00Z", 80.0, None),
    ];
    let h = heart(&HeartInput {
        heart_rate: &hr,
        ..HeartInput::default()
    });
    let d = day(&h, "2026-03-01");
    assert_eq!((d.resting_bpm, d.resting_method), (None, None));
    assert_eq!(d.hr_minutes, 4);
}

#[test]
fn one_source_a_minute_the_watch_over_the_phone_then_more_readings_then_the_name() {
    let hr = [
        // Minute 1: the phone's 90 loses to the watch's 60 and 62 (mean 61).
        r("2026-03-01T10:00:10Z", 90.0, Some("iPhone")),
        r("2026-03-01T10:00:20Z", 60.0, Some("Apple Watch")),
        r("2026-03-01T10:00:40Z", 62.0, Some("Apple Watch")),
        // Minute 2: two unnamed-rank sources; "B" has more readings overall (3 vs 1).
        r("2026-03-01T10:01:00Z", 70.0, Some("A")),
        r("2026-03-01T10:01:30Z", 74.0, Some("B")),
        r("2026-03-01T10:30:00Z", 74.0, Some("B")),
        r("2026-03-01T10:31:00Z", 74.0, Some("B")),
        // Minute 3: same rank and readings ("C" and "D" once each): the smaller name.
        r("2026-03-01T10:02:00Z", 81.0, Some("D")),
        r("2026-03-01T10:02:30Z", 80.0, Some("C")),
    ];
    let h = heart(&HeartInput {
        heart_rate: &hr,
        ..HeartInput::default()
    });
    let by = |s: &str| h.sources.iter().find(|x| x.source == s).map(|x| x.minutes);
    assert_eq!(by("Apple Watch"), Some(1));
    assert_eq!(by("B"), Some(3));
    assert_eq!(by("C"), Some(1));
    assert_eq!((by("iPhone"), by("A"), by("D")), (None, None, None));
    // Minutes 10:00 61, 10:01 74, 10:02 80 (then 10:30, 10:31): lowest window 215/3.
    let d = day(&h, "2026-03-01");
    assert_eq!(d.hr_minutes, 5);
    assert_eq!(d.resting_bpm, Some(round1(215.0 / 3.0)));
}

#[test]
fn a_second_by_second_workout_is_one_value_a_minute_and_workouts_are_left_out() {
    // 60 readings in one minute (120..=179, mean 149.5) inside a workout that also holds an
    // (implausible) low run, which must not be the day's resting rate.
    let mut hr: Vec<Reading<'static>> = (0..60)
        .map(|s| Reading {
            utc_ms: ts("2026-03-01T18:00:00Z").utc_ms + s * 1000,
            offset_secs: 0,
            value: 120.0 + s as f64,
            source: None,
            manual: false,
        })
        .collect();
    hr.extend(every5("2026-03-01T18:05:00Z", 3, 0, None, |_| 40.0));
    hr.extend(every5("2026-03-01T20:00:00Z", 3, 0, None, |i| {
        70.0 + i as f64
    }));
    let workouts = [(
        ts("2026-03-01T18:00:00Z").utc_ms,
        ts("2026-03-01T18:30:00Z").utc_ms,
    )];
    let h = heart(&HeartInput {
        heart_rate: &hr,
        workouts: &workouts,
        ..HeartInput::default()
    });
    let d = day(&h, "2026-03-01");
    assert_eq!(d.hr_minutes, 7);
    // Outside the workout: 70, 71, 72 -> 71.
    assert_eq!(d.resting_bpm, Some(71.0));
    let without = heart(&HeartInput {
        heart_rate: &hr,
        ..HeartInput::default()
    });
    // Counted, the low run inside the workout would be the day's lowest half hour (40 x 3).
    assert_eq!(day(&without, "2026-03-01").resting_bpm, Some(40.0));
}

/// Berlin, 29 March 2026: 02:00 CET becomes 03:00 CEST (UTC 01:00). Each reading keeps its
/// own offset, so the dates split at local midnight on both sides of the change.
#[test]
fn dst_readings_are_dated_by_their_own_offset() {
    let start = ts("2026-03-28T21:00:00Z").utc_ms;
    let change = ts("2026-03-29T01:00:00Z").utc_ms;
    let hr: Vec<Reading<'static>> = (0..108)
        .map(|i| {
            let utc_ms = start + i * 5 * MIN;
            Reading {
                utc_ms,
                offset_secs: if utc_ms < change { 3600 } else { 7200 },
                // 03:00-03:25 CEST (UTC 01:00-01:25) is the low half hour.
                value: if (change..change + 30 * MIN).contains(&utc_ms) {
                    48.0
                } else {
                    60.0
                },
                source: Some("Watch"),
                manual: false,
            }
        })
        .collect();
    let nights = [night(
        "2026-03-29",
        "2026-03-28T23:00:00+01:00",
        "2026-03-29T07:00:00+02:00",
    )];
    let h = heart(&HeartInput {
        heart_rate: &hr,
        nights: &nights,
        ..HeartInput::default()
    });
    // 22:00-23:55 CET on the 28th; 00:00-01:55 CET and 03:00-07:55 CEST on the 29th.
    assert_eq!(day(&h, "2026-03-28").hr_minutes, 24);
    assert_eq!(day(&h, "2026-03-29").hr_minutes, 84);
    let d = day(&h, "2026-03-29");
    assert_eq!(d.resting_method, Some(RestingMethod::AsleepLowest30Min));
    assert_eq!(d.resting_bpm, Some(48.0));
    // Asleep UTC 22:00-05:00: 84 minutes, 6 x 48 + 78 x 60 = 4968 -> 59.142.. -> 59.1.
    assert_eq!(d.asleep_mean_bpm, Some(59.1));
}

#[test]
fn the_devices_resting_rate_wins_over_the_waking_days_lowest_half_hour_but_not_over_sleep() {
    // A phone-shaped day: readings every 5 minutes from 07:00 to 23:00 only, never asleep.
    let hr = every5("2026-03-01T07:00:00Z", 192, 0, Some("Watch"), |i| {
        66.0 + (i % 5) as f64
    });
    let device = [r("2026-03-01T08:00:00Z", 58.0, Some("Watch"))];
    let h = heart(&HeartInput {
        heart_rate: &hr,
        resting_device: &device,
        ..HeartInput::default()
    });
    let d = day(&h, "2026-03-01");
    assert_eq!(d.resting_method, Some(RestingMethod::Device));
    assert_eq!(d.resting_bpm, Some(58.0));
    // With heart rate asleep that night, the asleep half hour comes first.
    let mut asleep = every5("2026-03-01T01:00:00Z", 12, 0, Some("Watch"), |_| 49.0);
    asleep.extend(hr);
    let nights = [night(
        "2026-03-01",
        "2026-03-01T00:30:00Z",
        "2026-03-01T06:30:00Z",
    )];
    let h = heart(&HeartInput {
        heart_rate: &asleep,
        nights: &nights,
        resting_device: &device,
        ..HeartInput::default()
    });
    let d = day(&h, "2026-03-01");
    assert_eq!(d.resting_method, Some(RestingMethod::AsleepLowest30Min));
    assert_eq!(d.resting_bpm, Some(49.0));
}

#[test]
fn a_day_without_the_watch_is_listed_with_nulls_and_a_day_of_device_values_only_uses_them() {
    let mut hr = every5("2026-03-01T12:00:00Z", 6, 0, Some("Watch"), |_| 66.0);
    hr.extend(every5("2026-03-03T12:00:00Z", 6, 0, Some("Watch"), |_| {
        64.0
    }));
    let device = [
        r("2026-03-04T08:00:00Z", 58.0, Some("Watch")),
        r("2026-03-04T09:00:00Z", 61.0, Some("iPhone")),
    ];
    let h = heart(&HeartInput {
        heart_rate: &hr,
        resting_device: &device,
        ..HeartInput::default()
    });
    let dates: Vec<String> = h.days.iter().map(|d| d.date.to_string()).collect();
    assert_eq!(
        dates,
        ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    );
    let gap = day(&h, "2026-03-02");
    assert_eq!(
        gap,
        &HeartDay {
            date: date("2026-03-02"),
            resting_bpm: None,
            resting_method: None,
            asleep_mean_bpm: None,
            hrv_sdnn_ms: None,
            hrv_rmssd_ms: None,
            respiratory_rate: None,
            spo2_pct: None,
            hr_minutes: 0,
        }
    );
    let json = serde_json::to_value(gap).unwrap();
    assert!(
        json["resting_bpm"].is_null() && json["hr_minutes"] == 0,
        "{json}"
    );
    let d4 = day(&h, "2026-03-04");
    assert_eq!(d4.resting_method, Some(RestingMethod::Device));
    assert_eq!(d4.resting_bpm, Some(58.0), "the watch wins over the phone");
    assert_eq!(day(&h, "2026-03-03").resting_bpm, Some(64.0));
}

#[test]
fn sdnn_and_rmssd_are_separate_days_and_separate_trends() {
    let sdnn_days = [50.0, 52.0, 48.0, 50.0, 44.0, 46.0, 45.0];
    let mut sdnn = Vec::new();
    for (i, v) in sdnn_days.iter().enumerate() {
        let t = format!("2026-03-0{}T03:00:00+01:00", i + 1);
        // Two readings a day, mean = v.
        sdnn.push(r(&t, v - 2.0, Some("Watch")));
        sdnn.push(r(&t.replace("03:00", "15:00"), v + 2.0, Some("Watch")));
    }
    let rmssd = [
        r("2026-03-06T03:00:00+01:00", 30.0, Some("Watch")),
        r("2026-03-07T03:00:00+01:00", 32.0, Some("Watch")),
    ];
    let h = heart(&HeartInput {
        hrv_sdnn: &sdnn,
        hrv_rmssd: &rmssd,
        ..HeartInput::default()
    });
    assert_eq!(h.days.len(), 7);
    for (d, v) in h.days.iter().zip(sdnn_days) {
        assert_eq!(d.hrv_sdnn_ms, Some(v), "{d:?}");
    }
    assert_eq!(day(&h, "2026-03-05").hrv_rmssd_ms, None);
    assert_eq!(day(&h, "2026-03-07").hrv_rmssd_ms, Some(32.0));
    let s = h.hrv.sdnn.as_ref().unwrap();
    // Recent 5-7 March: 45; previous 1-4 March: 50; change -5.
    assert_eq!(
        (s.recent_from, s.recent_to),
        (date("2026-03-05"), date("2026-03-07"))
    );
    assert_eq!((s.recent_days, s.recent_mean), (3, 45.0));
    assert_eq!((s.previous_days, s.previous_mean), (4, Some(50.0)));
    assert_eq!(s.change, Some(-5.0));
    assert_eq!(s.unit, "ms");
    let m = h.hrv.rmssd.as_ref().unwrap();
    assert_eq!((m.recent_days, m.recent_mean), (2, 31.0));
    assert_eq!(
        (m.previous_days, m.previous_mean, m.change),
        (0, None, None)
    );
    assert!(h.resting.is_none());
}

#[test]
fn respiratory_rate_and_spo2_are_nightly_readings_taken_asleep() {
    let rr = [
        r("2026-03-02T01:00:00+01:00", 14.0, Some("Watch")),
        r("2026-03-02T03:00:00+01:00", 15.0, Some("Watch")),
        // Awake: not nightly.
        r("2026-03-02T12:00:00+01:00", 20.0, Some("Watch")),
        r("2026-03-03T12:00:00+01:00", 18.0, Some("Watch")),
    ];
    let spo2 = [
        r("2026-03-02T02:00:00+01:00", 95.0, Some("Watch")),
        r("2026-03-02T04:00:00+01:00", 96.0, Some("Watch")),
        r("2026-03-02T04:00:00+01:00", 90.0, Some("iPhone")),
    ];
    let nights = [night(
        "2026-03-02",
        "2026-03-01T23:30:00+01:00",
        "2026-03-02T06:30:00+01:00",
    )];
    let h = heart(&HeartInput {
        nights: &nights,
        respiratory_rate: &rr,
        spo2: &spo2,
        ..HeartInput::default()
    });
    let d = day(&h, "2026-03-02");
    assert_eq!(d.respiratory_rate, Some(14.5));
    assert_eq!(d.spo2_pct, Some(95.5));
    let d3 = day(&h, "2026-03-03");
    assert_eq!((d3.respiratory_rate, d3.spo2_pct), (None, None));
}

#[test]
fn resting_trend_compares_the_last_three_days_with_the_days_before() {
    let mut device = Vec::new();
    for (d, v) in [(1, 60.0), (2, 62.0), (4, 57.0), (5, 58.0), (6, 59.0)] {
        device.push(r(&format!("2026-03-0{d}T08:00:00Z"), v, None));
    }
    let h = heart(&HeartInput {
        resting_device: &device,
        ..HeartInput::default()
    });
    let t = h.resting.unwrap();
    assert_eq!(t.unit, "bpm");
    assert_eq!((t.recent_days, t.recent_mean), (3, 58.0));
    assert_eq!((t.previous_days, t.previous_mean), (2, Some(61.0)));
    assert_eq!(t.change, Some(-3.0));
    // 3 March has no value: it is listed, with nulls.
    assert_eq!(h.days.len(), 6);
}

#[test]
fn nothing_in_nothing_out() {
    let h = heart(&HeartInput::default());
    assert!(h.days.is_empty() && h.sources.is_empty());
    assert!(h.resting.is_none() && h.hrv.sdnn.is_none() && h.hrv.rmssd.is_none());
}

#[test]
fn a_manual_reading_wins_its_minute_and_is_listed_as_manual() {
    let watch = r("2026-03-01T12:00:10Z", 90.0, Some("Watch"));
    let typed = Reading {
        manual: true,
        ..r("2026-03-01T12:00:40Z", 62.0, Some("Watch"))
    };
    for readings in [[&watch, &typed], [&typed, &watch]] {
        let (minutes, sources) = minutes::dedupe(&readings);
        assert_eq!(minutes.len(), 1);
        assert_eq!(minutes[0].value, 62.0);
        assert_eq!(
            sources,
            [SourceMinutes {
                source: "Watch".into(),
                minutes: 1,
                rank: 3,
                manual: true,
            }]
        );
    }
}
