//! The built-in generator: deterministic, rule-based text from the features.
//!
//! Rules: every sentence states a measured value and what it means against a published
//! reference range; nothing is invented, so the same features always give the same text.
//! Durations, shares and changes are worded by [`super::text`]: nothing positive reads as
//! zero, and a change is said as a change. A window too short for any finding says so in its
//! summary instead of summarising nothing.
//! Sleep comes from the nights in the features: the device's sleep stages where it staged a
//! night, actigraphy otherwise; deep and REM sleep are said only from stages.
//! Ranges: adults need 7-9 h of sleep (AASM/SRS); sleep efficiency >= 85 % is normal;
//! IS ~0.6 and RA ~0.85 are typical for healthy adults in actigraphy studies, IV > 1 is a
//! fragmented rhythm.
//! Step data (a phone or watch step counter): low coverage means hours in which no step source
//! sent anything, so the text says that and never asks to "wear the device day and night";
//! sleep is not estimated from steps and the text says so instead of "no complete night";
//! rhythm sentences name steps as their signal. A measure the features leave out (IS or RA
//! outside [0, 1], a peak outside the hours with activity) gets no sentence.

use super::features::{Features, RHYTHM_MIN_DAYS};
use super::text::{difference, duration, minutes_difference, percent, span, thousands};
use super::{Generated, GeneratorKind};

/// Changes smaller than these are not worth a sentence.
const SLEEP_CHANGE_MINUTES: f64 = 15.0;
const RHYTHM_CHANGE: f64 = 0.05;

fn clock(hours: f64) -> String {
    let m = (hours * 60.0).round() as i64 % 1440;
    format!("{:02}:{:02}", m / 60, m % 60)
}

pub fn generate(f: &Features) -> Generated {
    let mut points = Vec::new();
    let mut recs = Vec::new();
    let mut headline = Vec::new();

    // Day-to-day measures mean nothing on a day or two of data.
    let rhythm = f.days >= RHYTHM_MIN_DAYS;
    // Stored features from before `span_minutes` existed carry only the rounded days.
    let minutes = if f.span_minutes > 0 {
        f.span_minutes as f64
    } else {
        f.days * 1440.0
    };
    if !rhythm {
        points.push(format!(
            "Only {} of data so far: day-to-day rhythm measures need at least two days.",
            span(minutes)
        ));
    }
    let steps = f.is_steps();
    if f.coverage < 0.8 && steps {
        // The coverage rule already counts every hour a step source was recording: the rest
        // are hours it sent nothing, which more wearing would not change for a phone.
        points.push(format!(
            "Steps were recorded in {} of the minutes of the analysed {}; hours in which your phone or watch sent no data are left out, so these findings are tentative.",
            percent(f.coverage),
            span(minutes)
        ));
    } else if f.coverage < 0.8 {
        points.push(format!(
            "Only {} of the minutes in the analysed {} have activity data, so these findings are tentative.",
            percent(f.coverage),
            span(minutes)
        ));
        recs.push(
            "Wear the device day and night, including while asleep, for more reliable results."
                .into(),
        );
    }
    match (f.sleep_minutes_mean, f.nights) {
        (Some(mean), n) if n > 0 => {
            let verdict = if mean < 420.0 {
                recs.push("Aim for at least 7 hours of sleep: an earlier, fixed bedtime is the simplest lever.".into());
                "below the 7-9 hours recommended for adults"
            } else if mean > 540.0 {
                recs.push("Long sleep can reflect illness or low activity; if you feel unrested, mention it to a clinician.".into());
                "above the 7-9 hours recommended for adults"
            } else {
                "within the 7-9 hours recommended for adults"
            };
            headline.push(format!(
                "You slept {} a night on average ({verdict})",
                duration(mean)
            ));
            points.push(format!(
                "Average sleep over {n} night{}: {} ({verdict}).",
                if n == 1 { "" } else { "s" },
                duration(mean)
            ));
            if let Some(sd) = f.sleep_minutes_sd {
                if sd > 60.0 {
                    points.push(format!(
                        "Sleep length varied by about {} from night to night, which is irregular.",
                        duration(sd)
                    ));
                    recs.push("Keep bed and wake times within an hour of each other every day, weekends included.".into());
                } else if sd.round() < 1.0 {
                    // A spread that rounds to nothing is no variation to report as a number.
                    points.push(
                        "Sleep length was regular: it varied by under a minute from night to night."
                            .into(),
                    );
                } else {
                    points.push(format!(
                        "Sleep length was regular (night-to-night variation about {}).",
                        duration(sd)
                    ));
                }
            }
        }
        _ if steps => points.push(
            "Sleep is not estimated from step counts: a minute without steps is not a minute asleep."
                .into(),
        ),
        _ => {
            points.push("No complete night was recorded, so sleep duration is not reported.".into())
        }
    }
    if let (Some(deep), Some(rem)) = (f.deep_minutes_mean, f.rem_minutes_mean) {
        points.push(format!(
            "Your device's sleep stages show {} of deep sleep and {} of REM sleep a night on average.",
            duration(deep),
            duration(rem)
        ));
    }
    if let Some(eff) = f.sleep_efficiency_mean {
        if eff < 85.0 {
            points.push(format!("Sleep efficiency averaged {eff:.0}%, below the usual 85%: a lot of time in bed was spent awake."));
            recs.push(
                "If you lie awake for long, get up and return to bed only when sleepy.".into(),
            );
        } else {
            points.push(format!(
                "Sleep efficiency averaged {eff:.0}%, in the normal range."
            ));
        }
    }
    if let Some(is) = f.interdaily_stability.filter(|_| rhythm) {
        let word = if is >= 0.6 {
            "stable"
        } else if is >= 0.4 {
            "moderately stable"
        } else {
            "unstable"
        };
        let of = if steps { " (from your steps)" } else { "" };
        points.push(format!(
            "Your daily rhythm{of} was {word} from day to day (interdaily stability {is:.2})."
        ));
        if is < 0.4 {
            recs.push("Regular meal, light and activity times strengthen the daily rhythm.".into());
        }
    }
    if let Some(iv) = f.intradaily_variability.filter(|iv| rhythm && *iv > 1.0) {
        // A phone counts steps only while walking: hours without steps are not rest, so step
        // data is said as walking in bursts, not as fragmented rest and activity.
        points.push(if steps {
            format!("Your steps came in short bursts: hours of walking alternated with hours without steps within days (intradaily variability {iv:.2}).")
        } else {
            format!("Activity switched often between rest and movement within days (intradaily variability {iv:.2}), a fragmented pattern.")
        });
    }
    if let Some(ra) = f.relative_amplitude.filter(|_| rhythm) {
        let word = if ra >= 0.85 {
            "strong"
        } else if ra >= 0.7 {
            "moderate"
        } else {
            "weak"
        };
        points.push(format!("The contrast between your most active 10 hours and least active 5 hours was {word} (relative amplitude {ra:.2})."));
        if ra < 0.7 {
            recs.push(
                "More daytime activity and a darker, quieter night raise the day-night contrast."
                    .into(),
            );
        }
        headline.push(format!("your day-night contrast was {word}"));
    }
    if let (Some(l5), Some(m10)) = (&f.l5_start, &f.m10_start) {
        points.push(format!(
            "Your quietest 5 hours usually began at {l5} and your most active 10 hours at {m10}."
        ));
    }
    if let Some(peak) = f.acrophase_hours.filter(|_| rhythm) {
        points.push(format!(
            "{} peaked around {} on a fitted 24-hour curve.",
            if steps { "Steps" } else { "Activity" },
            clock(peak)
        ));
    }
    if let Some(steps) = f.steps_per_day_mean {
        points.push(format!(
            "You took {} steps a day on average over {} complete {}.",
            thousands(steps),
            f.step_days,
            if f.step_days == 1 { "day" } else { "days" }
        ));
    }
    if let Some(hr) = f.mean_heart_rate_bpm {
        points.push(format!("Mean recorded heart rate was {hr:.0} bpm."));
    }
    if let Some(h) = &f.heart {
        points.extend(super::heart::points(h));
    }
    if let Some(c) = &f.change {
        if let Some(d) = c
            .sleep_minutes_mean_delta
            .filter(|d| d.abs() >= SLEEP_CHANGE_MINUTES)
        {
            points.push(format!(
                "That is {} sleep a night than in your previous report.",
                minutes_difference(d)
            ));
        }
        let rhythm_change = |d: &Option<f64>| d.filter(|d| rhythm && d.abs() >= RHYTHM_CHANGE);
        if let (Some(d), Some(is)) = (
            rhythm_change(&c.interdaily_stability_delta),
            f.interdaily_stability,
        ) {
            let dir = if d > 0.0 { "more" } else { "less" };
            points.push(format!(
                "Your rhythm was {dir} regular: interdaily stability was {} in your previous report ({is:.2} now).",
                difference(d, 2)
            ));
        }
        if let (Some(d), Some(ra)) = (
            rhythm_change(&c.relative_amplitude_delta),
            f.relative_amplitude,
        ) {
            let dir = if d > 0.0 { "stronger" } else { "weaker" };
            points.push(format!(
                "Your day-night contrast was {dir}: relative amplitude was {} in your previous report ({ra:.2} now).",
                difference(d, 2)
            ));
        }
    }
    if recs.is_empty() && !rhythm {
        recs.push(if steps {
            "Keep your phone or watch with you: a full picture needs about a week of data.".into()
        } else {
            "Keep wearing the device day and night: a full picture needs about a week of data."
                .into()
        });
    }
    if recs.is_empty() {
        recs.push(
            "Keep your current routine: regular sleep and daytime activity are working for you."
                .into(),
        );
    }
    let summary = if headline.is_empty() {
        // Nothing to sum up: say why rather than "summarising" a stretch of data.
        format!(
            "Only {} of activity data so far: too short for a summary (sleep needs a complete night, daily rhythm at least two days).",
            span(minutes)
        )
    } else {
        let mut s = headline.join("; ");
        s.push('.');
        s
    };
    // Room for the heart trends (resting rate, SDNN, RMSSD) after the sleep and rhythm points.
    points.truncate(11);
    recs.truncate(5);
    Generated {
        generator: GeneratorKind::Local,
        model: None,
        summary,
        key_points: points,
        recommendations: recs,
        fallback_reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(g: &Generated) -> Vec<String> {
        let mut v = vec![g.summary.clone()];
        v.extend(g.key_points.iter().cloned());
        v.extend(g.recommendations.iter().cloned());
        v
    }

    #[test]
    fn a_night_to_night_spread_that_rounds_to_nothing_is_not_stated_as_zero() {
        for sd in [0.0, 0.3] {
            let f = Features {
                days: 3.0,
                coverage: 1.0,
                nights: 3,
                sleep_minutes_mean: Some(450.0),
                sleep_minutes_sd: Some(sd),
                ..Features::default()
            };
            let texts = all(&generate(&f));
            assert!(texts.iter().all(|t| !t.contains("0h 00m")), "{texts:#?}");
            assert!(
                texts.iter().any(|t| t.contains("under a minute")),
                "{texts:#?}"
            );
        }
    }

    /// A stage night of an analysis document, as `pipeline::sleep` writes it.
    fn stage_night(date: &str, asleep: u32, deep: u32, rem: u32, eff: f64) -> serde_json::Value {
        serde_json::json!({
            "date": date, "method": "stages", "source": "Apple Watch", "sources": ["Apple Watch"],
            "asleep_minutes": asleep, "light_minutes": asleep - deep - rem, "deep_minutes": deep,
            "rem_minutes": rem, "unspecified_minutes": 0, "efficiency_pct": eff, "awakenings": 2
        })
    }

    #[test]
    fn stage_nights_are_nights_with_their_own_efficiency_and_stages() {
        // Step data, no actigraphy night, 20 % coverage: only the stages tell sleep.
        let a = serde_json::json!({
            "window": {"from": "2026-03-01T07:00:00+01:00", "to": "2026-03-04T07:00:00+01:00"},
            "minutes_present": 864,
            "sleep": {"periods": [{"efficiency_pct": 50.0, "awakenings": 9}], "nights": [
                stage_night("2026-03-02", 420, 60, 90, 90.0),
                stage_night("2026-03-03", 450, 80, 100, 92.0),
            ]},
        });
        let f = Features::from_analysis(&a);
        assert_eq!((f.nights, f.stage_nights), (2, 2));
        assert_eq!(f.sleep_minutes_mean, Some(435.0));
        assert_eq!(
            f.sleep_efficiency_mean,
            Some(91.0),
            "the stages', not the periods'"
        );
        assert_eq!(f.awakenings_mean, Some(2.0));
        assert_eq!(
            (f.deep_minutes_mean, f.rem_minutes_mean),
            (Some(70.0), Some(95.0))
        );
        let texts = all(&generate(&f));
        assert!(
            texts.iter().all(|t| !t.contains("No complete night")),
            "{texts:#?}"
        );
        assert!(texts[0].contains("You slept 7h 15m a night"), "{texts:#?}");
        assert!(
            texts
                .iter()
                .any(|t| t.contains("1h 10m of deep sleep and 1h 35m of REM")),
            "{texts:#?}"
        );
        assert!(
            texts.iter().any(|t| t.contains("averaged 91%")),
            "{texts:#?}"
        );
    }

    #[test]
    fn short_sleep_and_spreads_under_an_hour_are_in_minutes() {
        let f = Features {
            days: 3.0,
            coverage: 1.0,
            nights: 2,
            sleep_minutes_mean: Some(45.0),
            sleep_minutes_sd: Some(12.4),
            ..Features::default()
        };
        let texts = all(&generate(&f));
        assert!(texts[0].contains("45 minutes a night"), "{texts:#?}");
        assert!(
            texts.iter().any(|t| t.contains("about 12 minutes")),
            "{texts:#?}"
        );
        assert!(texts.iter().all(|t| !t.contains("0h ")), "{texts:#?}");
    }

    /// A step-only analysis document: phone hours 07-23 recorded, nights missing.
    fn steps_doc(is: Option<f64>, m10: &str, acrophase: f64) -> serde_json::Value {
        let mut means = Vec::new();
        for _day in 0..3 {
            for h in 0..24 {
                means.push(if (7..23).contains(&h) {
                    serde_json::json!(12.5)
                } else {
                    serde_json::Value::Null
                });
            }
        }
        serde_json::json!({
            "window": {"from": "2026-11-02T00:00:00+01:00", "to": "2026-11-05T00:00:00+01:00"},
            "minutes_present": 3 * 16 * 60,
            "activity": {"kind": "step_count",
                         "hourly": {"start": "2026-11-02T00:00:00+01:00", "means": means}},
            "nonparametric": {"is": is, "is_ggir": 1.058, "iv": 0.9, "ra": null, "l5": null,
                              "m10": {"mean": 30.0, "start": m10}},
            "cosinor": {"acrophase_hours": acrophase},
            "sleep": {"cole_kripke": null, "sadeh": null, "periods": [], "nights": []},
            "heart_rate": {"mean_bpm": 64.0}
        })
    }

    #[test]
    fn step_data_never_asks_to_wear_a_device_nor_claims_no_night_or_a_peak_outside_the_day() {
        let f = Features::from_analysis(&steps_doc(None, "05:30", 5.5));
        assert_eq!(
            f.interdaily_stability, None,
            "GGIR's 1.058 is never read as IS"
        );
        assert_eq!(f.m10_start, None, "05:30 is outside the hours with steps");
        assert_eq!(f.acrophase_hours, None);
        assert_eq!(
            f.active_hours.as_ref().unwrap(),
            &(7..23).collect::<Vec<u8>>()
        );
        let texts = all(&generate(&f)).join("\n");
        for banned in [
            "Wear the device",
            "wear the device",
            "No complete night",
            "05:30",
            "stability",
        ] {
            assert!(!texts.contains(banned), "{banned:?} in {texts}");
        }
        assert!(
            texts.contains("Sleep is not estimated from step counts"),
            "{texts}"
        );
        assert!(texts.contains("Steps were recorded in 67%"), "{texts}");

        // Inside the day, with a bounded IS: said, and named as steps.
        let f = Features::from_analysis(&steps_doc(Some(0.62), "07:20", 14.3));
        assert_eq!(f.m10_start.as_deref(), Some("07:20"));
        let texts = all(&generate(&f)).join("\n");
        assert!(texts.contains("(from your steps) was stable"), "{texts}");
        assert!(texts.contains("interdaily stability 0.62"), "{texts}");
        assert!(texts.contains("Steps peaked around 14:18"), "{texts}");

        // Walks between hours without steps: bursts of walking, never "fragmented" rest.
        let mut bursts = steps_doc(Some(0.62), "07:20", 14.3);
        bursts["nonparametric"]["iv"] = serde_json::json!(2.14);
        let texts = all(&generate(&Features::from_analysis(&bursts))).join("\n");
        assert!(
            texts.contains("Your steps came in short bursts") && texts.contains("variability 2.14"),
            "{texts}"
        );
        assert!(
            !texts.contains("fragmented") && !texts.contains("rest and movement"),
            "{texts}"
        );
    }

    #[test]
    fn steps_a_day_are_the_mean_of_the_complete_days_only() {
        let mut a = steps_doc(Some(0.62), "07:20", 14.3);
        let day = |date: &str, steps: serde_json::Value, complete: bool| {
            serde_json::json!({"date": date, "steps": steps, "step_minutes": 90,
                               "complete": complete, "sources": []})
        };
        a["activity"]["days"] = serde_json::json!([
            day("2026-11-01", serde_json::json!(900), false),
            day("2026-11-02", serde_json::json!(8200), true),
            day("2026-11-03", serde_json::Value::Null, true),
            day("2026-11-04", serde_json::json!(12031), true),
            day("2026-11-05", serde_json::json!(400), false),
        ]);
        let f = Features::from_analysis(&a);
        assert_eq!(f.steps_per_day_mean, Some(10116.0), "(8200 + 12031) / 2");
        assert_eq!(f.step_days, 2);
        let texts = all(&generate(&f)).join("\n");
        assert!(
            texts.contains("You took 10,116 steps a day on average over 2 complete days."),
            "{texts}"
        );
        // Only partial days: no daily figure at all.
        a["activity"]["days"] =
            serde_json::json!([day("2026-11-05", serde_json::json!(400), false)]);
        let f = Features::from_analysis(&a);
        assert_eq!((f.steps_per_day_mean, f.step_days), (None, 0));
        assert!(!all(&generate(&f)).join("\n").contains("steps a day"));
    }
}
