//! The built-in generator: deterministic, rule-based text from the features.
//!
//! Rules: every sentence states a measured value and what it means against a published
//! reference range; nothing is invented, so the same features always give the same text.
//! Ranges: adults need 7-9 h of sleep (AASM/SRS); sleep efficiency >= 85 % is normal;
//! IS ~0.6 and RA ~0.85 are typical for healthy adults in actigraphy studies, IV > 1 is a
//! fragmented rhythm.

use super::features::Features;
use super::{Generated, GeneratorKind};

fn hm(minutes: f64) -> String {
    let m = minutes.round() as i64;
    format!("{}h {:02}m", m / 60, m % 60)
}

/// A stretch of data: hours below two days, days above.
fn span(days: f64) -> String {
    if days >= 2.0 {
        format!("{days:.1} days")
    } else {
        hm(days * 1440.0)
    }
}

fn clock(hours: f64) -> String {
    let m = (hours * 60.0).round() as i64 % 1440;
    format!("{:02}:{:02}", m / 60, m % 60)
}

pub fn generate(f: &Features) -> Generated {
    let mut points = Vec::new();
    let mut recs = Vec::new();
    let mut headline = Vec::new();

    // Day-to-day measures mean nothing on a day or two of data.
    let rhythm = f.days >= 2.0;
    if !rhythm {
        points.push(format!(
            "Only {} of data so far: day-to-day rhythm measures need at least two days.",
            span(f.days)
        ));
    }
    if f.coverage < 0.8 {
        points.push(format!(
            "Only {:.0}% of the minutes in the analysed {} have activity data, so these findings are tentative.",
            f.coverage * 100.0,
            span(f.days)
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
                hm(mean)
            ));
            points.push(format!(
                "Average sleep over {n} night{}: {} ({verdict}).",
                if n == 1 { "" } else { "s" },
                hm(mean)
            ));
            if let Some(sd) = f.sleep_minutes_sd {
                if sd > 60.0 {
                    points.push(format!(
                        "Sleep length varied by about {} from night to night, which is irregular.",
                        hm(sd)
                    ));
                    recs.push("Keep bed and wake times within an hour of each other every day, weekends included.".into());
                } else {
                    points.push(format!(
                        "Sleep length was regular (night-to-night variation about {}).",
                        hm(sd)
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
    if let Some(c) = &f.change {
        if let Some(d) = c.sleep_minutes_mean.filter(|d| d.abs() >= 15.0) {
            let dir = if d > 0.0 { "more" } else { "less" };
            points.push(format!(
                "That is {} {dir} sleep a night than in your previous report.",
                hm(d.abs())
            ));
        }
        if let Some(d) = c.interdaily_stability.filter(|d| d.abs() >= 0.05) {
            let dir = if d > 0.0 { "more" } else { "less" };
            points.push(format!("Your rhythm was {dir} regular than in your previous report (interdaily stability {d:+.2})."));
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
        format!("Summary of {} of activity data.", span(f.days))
    } else {
        let mut s = headline.join("; ");
        s.push('.');
        s
    };
    points.truncate(8);
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
