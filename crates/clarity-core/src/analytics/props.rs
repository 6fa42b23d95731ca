//! Property tests: `analyze` is total (no panic, no NaN) and its outputs stay in the ranges the
//! definitions guarantee.
//!
//! What the definitions guarantee, and what they do not:
//! - `is` (the bounded IS) is in [0, 1] always: between-hour plus within-hour sums of squares
//!   make the total. `is_ggir` (the reference formula) is >= 0 and <= 1 only for complete
//!   whole days; with missing hours the hours of day are unevenly weighted and it can exceed
//!   1 (e.g. one hour of day seen once, far from Xm), so only `is_ggir` <= N/p <= N is
//!   asserted there. The two agree on complete whole days.
//! - 0 <= IV <= 4N/(N−1): (a−b)² <= 2(a−c)² + 2(b−c)² for any c, each bin is in at most two
//!   pairs.
//! - With the average day fully covered, L5 <= mean of the day <= M10, so RA is in [0, 1].

use proptest::prelude::*;

use super::series::DAY_MINUTES;
use super::*;

fn count() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        3 => Just(None),
        3 => Just(Some(0.0)),
        6 => (0u32..400).prop_map(|c| Some(f64::from(c))),
        2 => (0.0f64..1e4).prop_map(Some),
        1 => Just(Some(1e12)),
        1 => (0.0f64..1e300).prop_map(Some),
    ]
}

fn any_series() -> impl Strategy<Value = MinuteSeries> {
    (
        -10_000_000i64..40_000_000,
        prop::collection::vec(count(), 0..3 * DAY_MINUTES),
    )
        .prop_map(|(minute, v)| MinuteSeries::from_options(minute * 60_000, &v).unwrap())
}

fn any_clock() -> impl Strategy<Value = ClockOffset> {
    (-1439i32..1440).prop_map(|m| ClockOffset::from_minutes(m).unwrap())
}

fn check(a: &Analysis, s: &MinuteSeries, clock: ClockOffset) {
    let np = &a.nonparametric;
    let finite = |x: Option<f64>| x.is_none_or(f64::is_finite);
    assert!(finite(np.is) && finite(np.is_ggir) && finite(np.iv) && finite(np.ra));
    assert!(finite(a.cosinor.mesor) && finite(a.cosinor.amplitude));
    if let Some(is) = np.is {
        assert!((0.0..=1.0).contains(&is), "IS {is}");
    }
    if let Some(is) = np.is_ggir {
        let n = s.len().div_ceil(60) as f64;
        assert!((0.0..=n).contains(&is), "GGIR IS {is}");
    }
    if let Some(iv) = np.iv {
        let n = s.len().div_ceil(60) as f64;
        assert!(iv >= 0.0 && iv <= 4.0 * n / (n - 1.0) + 1e-9, "IV {iv}");
    }
    if let Some(ra) = np.ra {
        assert!((-1e-12..=1.0 + 1e-12).contains(&ra), "RA {ra}");
    }
    if let (Some(l5), Some(m10)) = (&np.l5, &np.m10) {
        assert!(l5.mean.is_finite() && m10.mean.is_finite());
        assert!(l5.mean <= m10.mean * (1.0 + 1e-12), "{l5:?} {m10:?}");
    }
    if let Some(h) = a.cosinor.acrophase_hours {
        assert!((0.0..24.0).contains(&h), "acrophase {h}");
    }
    if let Some(h) = a.cosinor.acrophase_hours {
        // The peak lies in a clock hour with activity: some minute of it above zero.
        let hour = h as usize;
        let active = (0..s.len()).any(|i| {
            s.get(i).is_some_and(|c| c > 0.0)
                && clock.minute_of_day(s.start_epoch_minute() + i as i64) / 60 == hour
        });
        assert!(active, "acrophase {h} in an hour without activity");
    }
    if a.nonparametric.signal == Signal::StepCount {
        assert_eq!((&a.sleep.cole_kripke, &a.sleep.sadeh), (&None, &None));
        assert!(a.sleep.periods.is_empty() && a.sleep.nights.is_empty());
        assert!(a.sleep.actigraphy_reason.is_some());
        return;
    }
    assert_eq!(a.sleep.actigraphy_reason, None);
    let n_present = s.n_present();
    assert!(a.sleep.sadeh.as_ref().unwrap().sleep_minutes <= n_present);
    assert!(a.sleep.cole_kripke.as_ref().unwrap().sleep_minutes <= n_present);
    let nights = &a.sleep.nights;
    assert_eq!(
        nights.iter().map(|n| n.minutes_present).sum::<usize>(),
        n_present
    );
    let sadeh_nights: usize = nights.iter().map(|n| n.sadeh_sleep_minutes).sum();
    assert_eq!(sadeh_nights, a.sleep.sadeh.as_ref().unwrap().sleep_minutes);
    for n in nights {
        assert!(n.minutes_present > 0 && n.minutes_present <= DAY_MINUTES);
    }
    for p in &a.sleep.periods {
        assert!(p.in_bed < p.out_bed);
        assert!((0.0..=100.0).contains(&p.efficiency_pct));
        assert!(p.total_sleep_minutes + p.waso_minutes >= 160);
    }
    let json = serde_json::to_string(a).unwrap();
    // serde_json without `float_roundtrip` may move a float by an ulp: compare the rest.
    let back: Analysis = serde_json::from_str(&json).unwrap();
    assert_eq!(back.sleep, a.sleep);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn analyze_is_total(s in any_series(), clock in any_clock(), steps in any::<bool>()) {
        let signal = if steps { Signal::StepCount } else { Signal::ActivityCount };
        let a = analyze(&s, &AnalysisOptions { clock, signal });
        check(&a, &s, clock);
        let pm = per_minute(&s);
        for ((ck, sd), p) in pm.cole_kripke.iter().zip(&pm.sadeh).zip(s.present()) {
            prop_assert_eq!(*ck == SleepWake::Missing, !p);
            prop_assert_eq!(*sd == SleepWake::Missing, !p);
        }
    }

    #[test]
    fn whole_days_keep_is_at_most_one(
        days in 1usize..4,
        seed in prop::collection::vec(0u32..1000, DAY_MINUTES),
        shift in 0usize..DAY_MINUTES,
    ) {
        let v: Vec<Option<f64>> = (0..days * DAY_MINUTES)
            .map(|m| Some(f64::from(seed[(m * 7 + m / DAY_MINUTES * shift) % DAY_MINUTES])))
            .collect();
        let s = MinuteSeries::from_options(0, &v).unwrap();
        let a = analyze(&s, &AnalysisOptions::default());
        check(&a, &s, ClockOffset::UTC);
        if let Some(is) = a.nonparametric.is_ggir {
            prop_assert!(is <= 1.0 + 1e-9, "IS {}", is);
        }
        // Complete whole days: the bounded IS is the reference formula (from two days on;
        // one day has no day-to-day variation to measure).
        match (a.nonparametric.is, a.nonparametric.is_ggir) {
            (Some(b), Some(g)) => prop_assert!((b - g).abs() <= 1e-9 * g.abs().max(1e-12)),
            (None, _) if days == 1 => {}
            (b, g) => prop_assert_eq!(b, g),
        }
        prop_assert!(a.nonparametric.l5.is_some());
    }
}

/// Hourly levels with whole hours missing: what a phone gives (and what made GGIR's IS 1.058).
/// A steady rhythm (a level per hour of day) plus noise, so IS is high and the uneven weights
/// of missing hours show.
fn hours_with_gaps() -> impl Strategy<Value = Vec<Option<f64>>> {
    (2usize..8, prop::collection::vec(0u32..2000, 24), 0u32..200).prop_flat_map(
        |(days, levels, noise)| {
            prop::collection::vec((any::<bool>(), 0u32..7, 0u32..=noise), days * 24).prop_map(
                move |bins| {
                    bins.iter()
                        .enumerate()
                        .map(|(k, (_, gap, n))| (*gap >= 2).then(|| f64::from(levels[k % 24] + n)))
                        .collect()
                },
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bounded_is_stays_in_0_1_with_missing_hours(hours in hours_with_gaps(), steps in any::<bool>()) {
        let v: Vec<Option<f64>> = hours.iter().flat_map(|h| std::iter::repeat_n(*h, 60)).collect();
        let s = MinuteSeries::from_options(0, &v).unwrap();
        let signal = if steps { Signal::StepCount } else { Signal::ActivityCount };
        let a = analyze(&s, &AnalysisOptions { signal, ..Default::default() });
        check(&a, &s, ClockOffset::UTC);
        if let Some(is) = a.nonparametric.is {
            prop_assert!((0.0..=1.0).contains(&is), "IS {}", is);
        }
    }
}

#[test]
fn missing_hours_can_push_the_ggir_is_above_one_but_not_the_bounded_one() {
    // Two days; hour 0 is high on day 1 only, every other hour flat but for small noise:
    // hour 0 seen once weighs as much as hours seen twice in GGIR's sum over hours of day.
    let mut hours: Vec<Option<f64>> = (0..48).map(|k| Some(10.0 + (k % 3) as f64)).collect();
    hours[0] = Some(500.0);
    hours[24] = None;
    let v: Vec<Option<f64>> = hours
        .iter()
        .flat_map(|h| std::iter::repeat_n(*h, 60))
        .collect();
    let s = MinuteSeries::from_options(0, &v).unwrap();
    let np = analyze(&s, &AnalysisOptions::default()).nonparametric;
    let ggir = np.is_ggir.unwrap();
    assert!(ggir > 1.0, "GGIR IS {ggir}");
    let is = np.is.unwrap();
    assert!((0.0..=1.0).contains(&is), "IS {is}");
}

#[test]
fn edge_cases() {
    let cases: Vec<Vec<Option<f64>>> = vec![
        vec![],
        vec![None; 3 * DAY_MINUTES],
        vec![Some(5.0)],
        {
            let mut v = vec![None; DAY_MINUTES];
            v[700] = Some(12.0);
            v
        },
        vec![Some(0.0); DAY_MINUTES],
        vec![Some(1e12); 7 * DAY_MINUTES],
        vec![Some(f64::MAX); 2 * DAY_MINUTES],
        (0..7 * DAY_MINUTES)
            .map(|m| Some((m % 997) as f64))
            .collect(),
    ];
    for v in cases {
        let s = MinuteSeries::from_options(1_709_510_400_000, &v).unwrap();
        for clock in [ClockOffset::UTC, ClockOffset::from_minutes(-719).unwrap()] {
            let a = analyze(
                &s,
                &AnalysisOptions {
                    clock,
                    ..Default::default()
                },
            );
            check(&a, &s, clock);
        }
    }
}

#[test]
fn empty_and_flat_are_null_in_json() {
    let s = MinuteSeries::from_options(0, &[]).unwrap();
    let json = serde_json::to_value(analyze(&s, &AnalysisOptions::default())).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "nonparametric": {"signal": "activity_count", "is": null, "is_ggir": null,
                              "iv": null, "ra": null, "l5": null, "m10": null},
            "cosinor": {"signal": "activity_count", "mesor": null, "amplitude": null,
                        "acrophase_hours": null},
            "sleep": {"cole_kripke": {"sleep_minutes": 0}, "sadeh": {"sleep_minutes": 0},
                      "periods": [], "nights": [], "actigraphy_reason": null}
        })
    );
    let flat = MinuteSeries::from_options(0, &vec![Some(7.0); 2 * DAY_MINUTES]).unwrap();
    let a = analyze(&flat, &AnalysisOptions::default());
    assert_eq!((a.nonparametric.is, a.nonparametric.iv), (None, None));
    assert_eq!(a.cosinor.acrophase_hours, None);
}

#[test]
fn json_shape_of_a_night() {
    // 2024-03-04T00:00Z, 10 quiet hours then 14 active: one Sadeh period 00:00–10:00.
    let v: Vec<Option<f64>> = (0..DAY_MINUTES)
        .map(|m| Some(if m < 600 { 0.0 } else { 500.0 }))
        .collect();
    let s = MinuteSeries::from_options(1_709_510_400_000, &v).unwrap();
    let a = analyze(&s, &AnalysisOptions::default());
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(
        json["sleep"]["periods"],
        serde_json::json!([{
            "in_bed": "2024-03-04T00:00:00Z", "out_bed": "2024-03-04T10:00:00Z",
            "total_sleep_minutes": 600, "waso_minutes": 0, "efficiency_pct": 100.0,
            "awakenings": 0
        }])
    );
    assert_eq!(json["sleep"]["nights"][0]["date"], "2024-03-03");
    assert_eq!(json["nonparametric"]["l5"]["start"], "00:00");
    let local = analyze(
        &s,
        &AnalysisOptions {
            clock: ClockOffset::from_minutes(330).unwrap(),
            ..Default::default()
        },
    );
    assert_eq!(local.sleep.periods[0].in_bed, "2024-03-04T05:30:00+05:30");
    assert_eq!(local.nonparametric.l5.unwrap().start, "05:30");
}

/// Less than a day of data gets no cosinor: 50 minutes of a morning walk once gave a MESOR of
/// 50 and an amplitude of 220 (a curve far below zero), the same data over two days a fit.
#[test]
fn the_cosinor_needs_a_day_of_data() {
    let walk = |minutes: usize| {
        let counts: Vec<f64> = (0..minutes)
            .map(|m| {
                if m % DAY_MINUTES < 50 {
                    300.0 + (m % 7) as f64 * 100.0
                } else {
                    0.0
                }
            })
            .collect();
        let present = vec![true; minutes];
        MinuteSeries::new(8 * 60 * 60_000, counts, present).unwrap()
    };
    let short = analyze(&walk(50), &AnalysisOptions::default());
    assert_eq!(
        (
            short.cosinor.mesor,
            short.cosinor.amplitude,
            short.cosinor.acrophase_hours
        ),
        (None, None, None)
    );
    let two_days = analyze(&walk(2 * DAY_MINUTES), &AnalysisOptions::default());
    let (mesor, amplitude) = (
        two_days.cosinor.mesor.unwrap(),
        two_days.cosinor.amplitude.unwrap(),
    );
    assert!(mesor > 0.0 && amplitude > 0.0, "{mesor} {amplitude}");
}
