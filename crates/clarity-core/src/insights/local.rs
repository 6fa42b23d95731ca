//! The built-in generator: deterministic, rule-based text from the features.
//!
//! Rules: every sentence states a measured value and what it means against a published
//! reference range; nothing is invented, so the same features always give the same text.
//! Durations, shares and changes are worded by [`super::text`]: nothing positive reads as
//! zero, and a change is said as a change. A window too short for any finding says so in its
//! summary instead of summarising nothing.
//! Ranges: adults need 7-9 h of sleep (AASM/SRS); sleep efficiency >= 85 % is normal;
//! IS ~0.6 and RA ~0.85 are typical for healthy adults in actigraphy studies, IV > 1 is a
//! fragmented rhythm.

use super::features::{Features, RHYTHM_MIN_DAYS};
use super::text::{difference, duration, minutes_difference, percent, span};
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
    if f.coverage < 0.8 {
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
        _ => {
            points.push("No complete night was recorded, so sleep duration is not reported.".into())
        }
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
        points.push(format!(
            "Your daily rhythm was {word} from day to day (interdaily stability {is:.2})."
        ));
        if is < 0.4 {
            recs.push("Regular meal, light and activity times strengthen the daily rhythm.".into());
        }
    }
    if let Some(iv) = f.intradaily_variability.filter(|iv| rhythm && *iv > 1.0) {
        points.push(format!("Activity switched often between rest and movement within days (intradaily variability {iv:.2}), a fragmented pattern."));
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
            "Activity peaked around {} on a fitted 24-hour curve.",
            clock(peak)
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
        recs.push(
            "Keep wearing the device day and night: a full picture needs about a week of data."
                .into(),
        );
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
}
