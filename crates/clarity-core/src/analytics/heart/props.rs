//! Property tests: `heart` is total (no panic, no NaN) and every value stays in the range of
//! the readings it is made of, whatever the times, offsets, sources and nights.

use proptest::prelude::*;

use super::*;

const SOURCES: [Option<&str>; 4] = [None, Some("Apple Watch"), Some("iPhone"), Some("Oura")];
/// About four days around 2026-03-01, so readings share minutes, nights and days.
const BASE_MS: i64 = 1_772_323_200_000;
const SPAN_MS: i64 = 4 * 86_400_000;

fn reading(values: std::ops::Range<f64>) -> impl Strategy<Value = Reading<'static>> {
    let value = prop_oneof![
        8 => values.prop_map(|v| v),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => -1e6f64..1e6,
    ];
    (0..SPAN_MS, -50_400i32..=50_400, value, 0..SOURCES.len()).prop_map(|(t, off, v, s)| Reading {
        utc_ms: BASE_MS + t,
        offset_secs: off,
        value: v,
        source: SOURCES[s],
        manual: false,
    })
}

fn readings(
    values: std::ops::Range<f64>,
    n: usize,
) -> impl Strategy<Value = Vec<Reading<'static>>> {
    prop::collection::vec(reading(values), 0..n)
}

fn interval() -> impl Strategy<Value = (i64, i64)> {
    (0..SPAN_MS, -3_600_000i64..12 * 3_600_000)
        .prop_map(|(t, len)| (BASE_MS + t, BASE_MS + t + len))
}

fn nights() -> impl Strategy<Value = Vec<AsleepNight>> {
    prop::collection::vec(
        (0u64..6, prop::collection::vec(interval(), 0..4)).prop_map(|(d, intervals)| AsleepNight {
            date: NaiveDate::from_ymd_opt(2026, 2, 28).unwrap() + chrono::Days::new(d),
            intervals,
        }),
        0..5,
    )
}

fn within(x: Option<f64>, (lo, hi): (f64, f64)) -> bool {
    x.is_none_or(|v| v.is_finite() && v >= lo - 0.05 && v <= hi + 0.05)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn total_and_in_range(
        hr in readings(20.0..300.0, 600),
        sdnn in readings(0.0..1000.0, 30),
        rmssd in readings(0.0..1000.0, 30),
        rr in readings(1.0..100.0, 30),
        spo2 in readings(50.0..100.0, 30),
        device in readings(20.0..300.0, 10),
        nights in nights(),
        workouts in prop::collection::vec(interval(), 0..3),
    ) {
        let h = heart(&HeartInput {
            heart_rate: &hr,
            nights: &nights,
            workouts: &workouts,
            hrv_sdnn: &sdnn,
            hrv_rmssd: &rmssd,
            respiratory_rate: &rr,
            spo2: &spo2,
            resting_device: &device,
        });
        let mut previous = None;
        for d in &h.days {
            prop_assert!(previous < Some(d.date), "dates ascend, once each");
            previous = Some(d.date);
            prop_assert!(within(d.resting_bpm, HR_RANGE) && within(d.asleep_mean_bpm, HR_RANGE));
            prop_assert_eq!(d.resting_bpm.is_some(), d.resting_method.is_some());
            prop_assert!(within(d.hrv_sdnn_ms, HRV_RANGE) && within(d.hrv_rmssd_ms, HRV_RANGE));
            prop_assert!(within(d.respiratory_rate, RR_RANGE) && within(d.spo2_pct, SPO2_RANGE));
            prop_assert!(d.hr_minutes <= hr.len());
        }
        let won: usize = h.sources.iter().map(|s| s.minutes).sum();
        prop_assert_eq!(won, h.days.iter().map(|d| d.hr_minutes).sum::<usize>());
        for (t, range) in [(&h.resting, HR_RANGE), (&h.hrv.sdnn, HRV_RANGE), (&h.hrv.rmssd, HRV_RANGE)] {
            if let Some(t) = t {
                prop_assert!(within(Some(t.recent_mean), range) && within(t.previous_mean, range));
                prop_assert!(t.change.is_none_or(f64::is_finite));
                prop_assert!(t.recent_days >= 1 && t.recent_from <= t.recent_to);
            }
        }
        // Serialises without NaN (serde_json would write null for a NaN; none may exist).
        prop_assert!(serde_json::to_string(&h).is_ok());
    }
}
