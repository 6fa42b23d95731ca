//! The checker itself: each kind of false claim in a hand-written text is caught, and true
//! texts (the local generator's sentences, worded as it words them) pass.

use serde_json::{Value, json};

use super::{Violation, check};

/// Three days of activity counts: two complete nights, activity 07:00-23:00, a resting HR trend.
fn analysis() -> Value {
    let means: Vec<Value> = (0..72)
        .map(|i| {
            json!(if (7..23).contains(&(i % 24)) {
                50.0
            } else {
                0.0
            })
        })
        .collect();
    json!({
        "window": {"from": "2026-03-01T00:00:00+01:00", "to": "2026-03-04T00:00:00+01:00", "utc_offset_minutes": 60},
        "minutes_present": 4320,
        "activity": {"kind": "activity_count", "sources": [],
                     "hourly": {"start": "2026-03-01T00:00:00+01:00", "means": means}},
        "heart_rate": {"minutes": 900, "mean_bpm": 72.4},
        "nonparametric": {"is": 0.482, "iv": 0.9, "ra": 0.93,
                          "l5": {"mean": 1.0, "start": "02:00"}, "m10": {"mean": 50.0, "start": "09:00"}},
        "cosinor": {"mesor": 30.0, "amplitude": 25.0, "acrophase_hours": 14.5},
        "sleep": {
            "cole_kripke": {"sleep_minutes": 900}, "sadeh": {"sleep_minutes": 880},
            "periods": [
                {"in_bed": "2026-03-01T23:00:00+01:00", "out_bed": "2026-03-02T07:00:00+01:00", "total_sleep_minutes": 440, "waso_minutes": 20, "efficiency_pct": 88.2, "awakenings": 3},
                {"in_bed": "2026-03-02T23:00:00+01:00", "out_bed": "2026-03-03T07:00:00+01:00", "total_sleep_minutes": 420, "waso_minutes": 40, "efficiency_pct": 90.0, "awakenings": 5}
            ],
            "nights": [
                {"date": "2026-03-02", "method": "actigraphy", "sadeh_sleep_minutes": 440, "cole_kripke_sleep_minutes": 450, "minutes_present": 1440},
                {"date": "2026-03-03", "method": "actigraphy", "sadeh_sleep_minutes": 420, "cole_kripke_sleep_minutes": 430, "minutes_present": 1440}
            ]
        },
        "heart": {
            "days": [{"date": "2026-03-03", "resting_bpm": 58.0, "resting_method": "asleep_lowest_30min", "asleep_mean_bpm": 61.0, "hrv_sdnn_ms": null, "hrv_rmssd_ms": null, "respiratory_rate": null, "spo2_pct": null}],
            "resting": {"unit": "bpm", "recent_from": "2026-03-01", "recent_to": "2026-03-03", "recent_days": 3, "recent_mean": 58.0, "previous_days": 4, "previous_mean": 61.0, "change": -3.0},
            "hrv": {"sdnn": null, "rmssd": null}, "sources": []
        },
        "pat": {"available": false, "code": "insufficient_data", "reason": "short"}
    })
}

/// The features the generator reads out of [`analysis`], by their documented rules.
fn features() -> Value {
    json!({
        "days": 3.0, "span_minutes": 4320, "coverage": 1.0, "activity_kind": "activity_count",
        "nights": 2, "sleep_minutes_mean": 430.0, "sleep_minutes_sd": 14.1,
        "sleep_efficiency_mean": 89.1, "awakenings_mean": 4.0,
        "l5_start": "02:00", "m10_start": "09:00",
        "interdaily_stability": 0.482, "intradaily_variability": 0.9, "relative_amplitude": 0.93,
        "acrophase_hours": 14.5, "mean_heart_rate_bpm": 72.4,
        "heart": {"resting_bpm": {"recent_days": 3, "recent_mean": 58.0, "previous_days": 4, "previous_mean": 61.0, "change": -3.0},
                  "resting_methods": ["asleep_lowest_30min"], "hrv_sdnn_ms": null, "hrv_rmssd_ms": null}
    })
}

fn insight(points: &[&str]) -> Value {
    json!({"summary": "You slept 7h 10m a night on average (within the 7-9 hours recommended for adults); your day-night contrast was strong.",
           "key_points": points, "recommendations": ["Keep your current routine: regular sleep and daytime activity are working for you."],
           "features": features()})
}

const TRUE_POINTS: &[&str] = &[
    "Average sleep over 2 nights: 7 h 10 min (within the 7-9 hours recommended for adults).",
    "Sleep length was regular (night-to-night variation about 14 minutes).",
    "Sleep efficiency averaged 89%, in the normal range.",
    "Your daily rhythm was moderately stable from day to day (interdaily stability 0.48).",
    "The contrast between your most active 10 hours and least active 5 hours was strong (relative amplitude 0.93).",
    "Your quietest 5 hours usually began at 02:00 and your most active 10 hours at 09:00.",
    "Activity peaked around 14:30 on a fitted 24-hour curve.",
    "Mean recorded heart rate was 72 bpm.",
    "Resting heart rate (lowest 30-minute average while asleep) averaged 58 bpm over 3 recent days, 3 bpm lower than over 4 earlier days (61 bpm).",
];

fn rules(v: &[Violation]) -> Vec<&'static str> {
    v.iter().map(|v| v.rule).collect()
}

/// `point` added to the true text gives exactly one violation, of `rule`, on that sentence.
fn caught(a: &Value, i: &mut Value, point: &str, rule: &str) {
    i["key_points"].as_array_mut().unwrap().push(json!(point));
    let v = check(i, a, None);
    assert_eq!(rules(&v), vec![rule], "{point:?}: {v:#?}");
    assert!(point.contains(v[0].sentence.trim_end_matches('.')), "{v:?}");
}

#[test]
fn claims_a_true_text_passes_every_rule() {
    let v = check(&insight(TRUE_POINTS), &analysis(), None);
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn claims_numbers_not_in_the_analysis_are_caught_in_every_unit() {
    let a = analysis();
    for point in [
        "You slept 8h 05m a night.",
        "Sleep efficiency averaged 95%.",
        "Mean recorded heart rate was 91 bpm.",
        "Your daily rhythm was stable (interdaily stability 0.71).",
        "Your quietest 5 hours usually began at 04:15.",
        "Average sleep over 6 nights.",
        "Your night of 2026-03-09 was short.",
        "You walked 8,400 steps a day.",
        "Deep sleep took 45 minutes.",
    ] {
        let mut i = insight(TRUE_POINTS);
        i["key_points"].as_array_mut().unwrap().push(json!(point));
        let v = check(&i, &a, None);
        assert!(
            rules(&v).contains(&"every number traces to the analysis"),
            "{point:?}: {v:#?}"
        );
    }
}

#[test]
fn claims_a_change_must_be_said_as_a_change_with_its_direction() {
    let a = analysis();
    let previous = json!({"interdaily_stability": 0.662});
    let mut i = insight(TRUE_POINTS);
    i["features"]["change"] = json!({"interdaily_stability_delta": -0.18});
    let with = |i: &Value, p: &str| {
        let mut i = i.clone();
        i["key_points"].as_array_mut().unwrap().push(json!(p));
        rules(&check(&i, &a, Some(&previous)))
    };
    let good = "Your rhythm was less regular: interdaily stability was 0.18 lower than in your previous report (0.48 now).";
    assert!(with(&i, good).is_empty(), "{:?}", with(&i, good));
    for (p, rule) in [
        (
            "Your interdaily stability -0.18.",
            "a change is said as a change",
        ),
        (
            "Stability changed by -0.18 since last week.",
            "a change is said as a change",
        ),
        (
            "Stability changed by 0.18 since last week.",
            "every number traces to the analysis",
        ),
        (
            "Interdaily stability was 0.18 higher than in your previous report.",
            "every number traces to the analysis",
        ),
        (
            "Resting heart rate was 3 bpm higher than before.",
            "every number traces to the analysis",
        ),
    ] {
        assert_eq!(with(&i, p), vec![rule], "{p:?}");
    }
    // A change without the earlier features to check it against is itself refused.
    assert_eq!(
        rules(&check(&i, &a, None)),
        vec!["feature traces to the analysis"]
    );
    let mut wrong = i.clone();
    wrong["features"]["change"]["interdaily_stability_delta"] = json!(-0.3);
    assert_eq!(
        rules(&check(&wrong, &a, Some(&previous))),
        vec!["feature traces to the analysis"]
    );
}

#[test]
fn claims_no_night_is_refused_when_the_analysis_has_one() {
    let a = analysis();
    let p = "No complete night was recorded, so sleep duration is not reported.";
    caught(
        &a,
        &mut insight(TRUE_POINTS),
        p,
        "no 'no night' when a night exists",
    );
    // Stage nights, or heart rate while asleep, are nights too.
    let mut staged = analysis();
    staged["sleep"]["nights"] =
        json!([{"date": "2026-03-03", "method": "stages", "asleep_minutes": 430}]);
    staged["sleep"]["periods"] = json!([]);
    let v = check(
        &json!({"summary": p, "key_points": [], "recommendations": [], "features": {}}),
        &staged,
        None,
    );
    assert_eq!(
        rules(&v),
        vec!["no 'no night' when a night exists"],
        "{v:#?}"
    );
    let mut asleep_hr = analysis();
    asleep_hr["sleep"]["nights"] = json!([]);
    let v = check(
        &json!({"summary": p, "key_points": [], "recommendations": [], "features": {}}),
        &asleep_hr,
        None,
    );
    assert!(v[0].detail.contains("asleep_mean_bpm"), "{v:#?}");
    // Without any night the sentence is true.
    asleep_hr["heart"]["days"][0]["asleep_mean_bpm"] = Value::Null;
    let v = check(
        &json!({"summary": p, "key_points": [], "recommendations": [], "features": {}}),
        &asleep_hr,
        None,
    );
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn claims_a_peak_outside_the_hours_with_activity_is_refused() {
    let mut a = analysis();
    a["cosinor"]["acrophase_hours"] = json!(5.5);
    a["nonparametric"]["m10"]["start"] = json!("03:00");
    let mut i = insight(&TRUE_POINTS[..5]);
    i["features"]["acrophase_hours"] = json!(5.5);
    i["features"]["m10_start"] = json!("03:00");
    for p in [
        "Activity peaked around 05:30 on a fitted 24-hour curve.",
        "Your quietest 5 hours usually began at 02:00 and your most active 10 hours at 03:00.",
    ] {
        caught(
            &a,
            &mut i.clone(),
            p,
            "no activity peak outside the hours with activity",
        );
    }
}

#[test]
fn claims_wear_the_device_only_on_counts_with_low_coverage() {
    let rec = "Wear the device day and night, including while asleep, for more reliable results.";
    let low = "Only 40% of the minutes in the analysed 3.0 days have activity data, so these findings are tentative.";
    caught(
        &analysis(),
        &mut insight(TRUE_POINTS),
        rec,
        "coverage claims only when coverage is low",
    );
    let mut i = insight(TRUE_POINTS);
    i["key_points"].as_array_mut().unwrap().push(json!(low));
    assert_eq!(
        rules(&check(&i, &analysis(), None)),
        vec![
            "every number traces to the analysis",
            "coverage claims only when coverage is low"
        ]
    );
    // Truly low coverage on activity counts: both are true.
    let mut a = analysis();
    a["minutes_present"] = json!(1728);
    let mut i = insight(TRUE_POINTS);
    i["features"]["coverage"] = json!(0.4);
    i["key_points"].as_array_mut().unwrap().push(json!(low));
    i["recommendations"]
        .as_array_mut()
        .unwrap()
        .push(json!(rec));
    assert!(check(&i, &a, None).is_empty(), "{:#?}", check(&i, &a, None));
    // On steps a minute without steps is no minute without the device.
    a["activity"]["kind"] = json!("step_count");
    i["features"]["activity_kind"] = json!("step_count");
    i["key_points"] = json!([low]);
    i["summary"] = json!("Steps only.");
    let v = check(&i, &a, None);
    assert_eq!(
        rules(&v),
        vec!["coverage claims only when coverage is low"],
        "{v:#?}"
    );
}

#[test]
fn claims_no_sentence_about_a_measure_the_analysis_does_not_hold() {
    let mut a = analysis();
    a["heart"] = json!({"days": [], "resting": null, "hrv": {"sdnn": null, "rmssd": null}});
    a["nonparametric"]["is"] = json!(1.058);
    let mut i = insight(&[]);
    i["features"] = json!({});
    i["summary"] = json!("A week.");
    for (p, measure) in [
        ("Your resting heart rate was steady.", "resting heart rate"),
        ("Your HRV (RMSSD) was steady.", "RMSSD"),
        (
            "Your daily rhythm was stable from day to day (interdaily stability).",
            "interdaily stability",
        ),
        ("Your blood oxygen was normal.", "SpO2"),
    ] {
        let mut i = i.clone();
        i["key_points"] = json!([p]);
        let v = check(&i, &a, None);
        assert!(
            v.iter().any(
                |v| v.rule == "no sentence about a measure the data cannot support"
                    && v.detail.contains(measure)
            ),
            "{p:?}: {v:#?}"
        );
    }
    // Saying that it is not available is true.
    i["key_points"] = json!(["Resting heart rate could not be measured without heart data."]);
    assert!(check(&i, &a, None).is_empty());
    // Sleep from actigraphy periods on step data is no sleep measure.
    a["activity"]["kind"] = json!("step_count");
    i["key_points"] = json!(["Sleep efficiency averaged 89%, in the normal range."]);
    i["features"] = json!({"sleep_efficiency_mean": 89.1});
    let v = check(&i, &a, None);
    assert_eq!(
        rules(&v),
        vec!["no sentence about a measure the data cannot support"],
        "{v:#?}"
    );
}

#[test]
fn claims_features_that_are_not_the_analysis_are_caught() {
    let a = analysis();
    for (k, bad) in [
        ("interdaily_stability", json!(0.7)),
        ("sleep_minutes_mean", json!(445.0)),
        ("coverage", json!(0.5)),
        ("nights", json!(7)),
        ("m10_start", json!("10:00")),
    ] {
        let mut i = insight(&[]);
        i["features"][k] = bad;
        let v = check(&i, &a, None);
        assert_eq!(
            rules(&v),
            vec!["feature traces to the analysis"],
            "{k}: {v:#?}"
        );
    }
}

#[test]
fn claims_too_short_is_refused_for_a_window_of_two_days_or_more() {
    let p = "Only 3.0 days of activity data so far: too short for a summary.";
    let v = check(&json!({"summary": p, "features": {}}), &analysis(), None);
    assert_eq!(
        rules(&v),
        vec!["no 'too short' for a window long enough"],
        "{v:#?}"
    );
    let mut a = analysis();
    a["window"]["to"] = json!("2026-03-01T00:03:00+01:00");
    let p = "Only 3 minutes of activity data so far: too short for a summary.";
    let v = check(&json!({"summary": p, "features": {}}), &a, None);
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn claims_steps_a_day_trace_to_the_mean_of_the_complete_days_only() {
    let mut a = analysis();
    let day = |date: &str, steps: Value, complete: bool| json!({"date": date, "steps": steps, "step_minutes": 100, "complete": complete, "sources": []});
    a["activity"]["days"] = json!([
        day("2026-03-01", json!(2000), false),
        day("2026-03-02", json!(9000), true),
        day("2026-03-03", json!(null), true),
        day("2026-03-04", json!(11000), true),
        day("2026-03-05", json!(3000), false),
    ]);
    let mut i = insight(TRUE_POINTS);
    i["features"]["steps_per_day_mean"] = json!(10000.0);
    i["features"]["step_days"] = json!(2);
    let said = "You took 10,000 steps a day on average over 2 complete days.";
    i["key_points"].as_array_mut().unwrap().push(json!(said));
    let v = check(&i, &a, None);
    assert!(v.is_empty(), "{v:#?}");
    // The mean over every day (partial ones and the day without data read as 0) is no field.
    for bad in [
        "You took 6,250 steps a day on average over 4 days.",
        "You took 5,000 steps a day on average over 5 days.",
    ] {
        caught(
            &a,
            &mut insight(TRUE_POINTS),
            bad,
            "every number traces to the analysis",
        );
    }
    // A feature taken over the partial days too does not trace.
    let mut i = insight(&[]);
    i["features"]["steps_per_day_mean"] = json!(8333.0);
    let v = check(&i, &a, None);
    assert_eq!(rules(&v), vec!["feature traces to the analysis"], "{v:#?}");
}
