//! A claim checker for insight texts (issue 18): what an insight says is checked against its
//! analysis document, not against a stored string.
//!
//! Rules:
//! - Every number said (durations "7h 20m" / "7 h 20 min" / "45 minutes", bpm, ms, %, clock
//!   times, days, nights, counts, plain ratios, dates) traces to a field of the analysis, or to
//!   a feature of the insight that itself traces to the analysis ([`facts`]), at the
//!   precision the text shows it. Reference values of the generators' published ranges (the
//!   [`said::REFERENCE`] phrases: "7-9 hours", "the usual 85%", the names "most active 10 hours",
//!   "30-minute average") are not findings and are left out.
//! - A number glued to a name (L5, M10, SpO2, PHQ-9) is part of the name.
//! - A change is said as a change: a signed number is never said, and a number followed by
//!   lower/higher/less/more traces to a difference field with that sign; a difference said
//!   without its direction reads as a value and is refused.
//! - Claims the data contradicts are refused: "no (complete) night" when the analysis has a
//!   complete night or heart rate while asleep; an activity peak or the most active 10 hours
//!   starting in a clock hour without activity (`activity.hourly`); "wear the device" unless
//!   the signal is activity counts and the analysis' own coverage is below 80 %; a sentence
//!   naming a measure the analysis does not hold (null, or outside its range), unless the
//!   sentence says it is not available or names it only to keep it apart ("not comparable
//!   with RMSSD"); "too short" for a window of two days or more (what day-to-day measures
//!   need).

mod facts;
mod said;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

pub use facts::{Fact, Unit};
use said::{CLOCK, numbers, trace};

#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub rule: &'static str,
    pub sentence: String,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {:?}: {}", self.rule, self.sentence, self.detail)
    }
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("a valid pattern")
}

static NO_NIGHT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\bno (?:complete |full )?nights?\b|\bno sleep (?:was |has been )?recorded|sleep duration is not reported",
    )
});
static PEAK: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)(?:\bpeak(?:ed|s)?\b|most active 10 hours)[^.;]*?\b(\d{1,2}):(\d{2})\b")
});
static WEAR: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\bwear (?:the|your) (?:device|watch|tracker)\b"));
static LOW_COVERAGE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)have activity data|findings are tentative"));
static TOO_SHORT: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\btoo short\b"));
/// "(not comparable with RMSSD)" names a measure to keep it apart, not to state it.
static APART: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)not comparable with \w+"));
/// Day-to-day measures need this many days (insights::features::RHYTHM_MIN_DAYS).
const RHYTHM_MIN_MINUTES: f64 = 2.0 * 1440.0;
static UNAVAILABLE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\bnot (?:reported|estimated|available|measured|measurable)|\bcannot\b|\bcould not\b|\bneeds?\b",
    )
});

/// The summary, key points and recommendations of an insight.
pub fn texts(insight: &Value) -> Vec<String> {
    let mut all = vec![insight["summary"].as_str().unwrap_or("").to_owned()];
    for list in ["key_points", "recommendations"] {
        for v in insight[list].as_array().into_iter().flatten() {
            all.push(v.as_str().unwrap_or("").to_owned());
        }
    }
    all
}

fn sentences(text: &str) -> Vec<String> {
    static END: LazyLock<Regex> = LazyLock::new(|| re(r"[.!?;]\s+"));
    END.split(text)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Clock times the analysis holds as strings: L5/M10 starts, local times of nights.
fn clock_facts(a: &Value) -> Vec<Fact> {
    let mut all = Vec::new();
    facts::strings(a, &mut all);
    all.iter()
        .filter_map(|s| {
            let hours = if let Some(c) = CLOCK.captures(s).filter(|_| s.len() == 5) {
                c[1].parse::<f64>().ok()? + c[2].parse::<f64>().ok()? / 60.0
            } else {
                let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
                let t = chrono::Timelike::num_seconds_from_midnight(&t.time());
                f64::from(t) / 3600.0
            };
            Some(Fact {
                path: format!("analysis string {s}"),
                value: hours,
                unit: Unit::Clock,
                delta: false,
            })
        })
        .collect()
}

/// The measures a sentence may name, and whether the analysis holds each.
fn measures(a: &Value) -> Vec<(Regex, &'static str, Option<String>)> {
    let any = |list: &Value, k: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|e| e[k].as_f64().is_some()))
    };
    // Rounding noise of an exactly regular week (1 + 2e-16) is no IS above 1.
    let unit = |v: &Value| {
        v.as_f64()
            .is_some_and(|x| (-1e-9..=1.0 + 1e-9).contains(&x))
    };
    let steps = a["activity"]["kind"] == "step_count";
    let nights = facts::nights(a);
    let stage = |k: &str| {
        nights
            .iter()
            .any(|n| facts::is_stage_night(n) && n[k].as_f64().is_some())
    };
    let (days, hrv) = (&a["heart"]["days"], &a["heart"]["hrv"]);
    let sdnn = !hrv["sdnn"].is_null() || any(days, "hrv_sdnn_ms");
    let rmssd = !hrv["rmssd"].is_null() || any(days, "hrv_rmssd_ms");
    let slept = stage("asleep_minutes") || (!steps && nights.iter().any(facts::is_complete_night));
    let table: Vec<(&str, &'static str, bool, &str)> = vec![
        (
            r"interdaily stability",
            "interdaily stability",
            unit(&a["nonparametric"]["is"]),
            "nonparametric.is null or outside [0, 1]",
        ),
        (
            r"intradaily variability",
            "intradaily variability",
            !a["nonparametric"]["iv"].is_null(),
            "nonparametric.iv null",
        ),
        (
            r"relative amplitude|day-night contrast",
            "relative amplitude",
            unit(&a["nonparametric"]["ra"]),
            "nonparametric.ra null or outside [0, 1]",
        ),
        (
            r"sleep efficiency",
            "sleep efficiency",
            stage("efficiency_pct") || (!steps && any(&a["sleep"]["periods"], "efficiency_pct")),
            "no stage night efficiency_pct, and no sleep.periods efficiency on activity counts",
        ),
        (
            r"you slept|average sleep|sleep length|a night on average",
            "sleep duration",
            slept,
            "no stage night and no complete actigraphy night on activity counts in sleep.nights",
        ),
        (
            r"resting heart rate",
            "resting heart rate",
            !a["heart"]["resting"].is_null() || any(days, "resting_bpm"),
            "heart.resting and heart.days[].resting_bpm null",
        ),
        (
            r"\bSDNN\b",
            "SDNN",
            sdnn,
            "heart.hrv.sdnn and heart.days[].hrv_sdnn_ms null",
        ),
        (
            r"\bRMSSD\b",
            "RMSSD",
            rmssd,
            "heart.hrv.rmssd and heart.days[].hrv_rmssd_ms null",
        ),
        (
            r"\bHRV\b|heart rate variability",
            "HRV",
            sdnn || rmssd,
            "no HRV in heart.hrv or heart.days[]",
        ),
        (
            r"deep sleep|\bREM\b",
            "sleep stages",
            stage("deep_minutes") || stage("rem_minutes"),
            "no stage night with deep_minutes or rem_minutes",
        ),
        (
            r"\bSpO2\b|oxygen saturation|blood oxygen",
            "SpO2",
            any(days, "spo2_pct"),
            "heart.days[].spo2_pct null",
        ),
        (
            r"respiratory rate|breathing rate",
            "respiratory rate",
            any(days, "respiratory_rate"),
            "heart.days[].respiratory_rate null",
        ),
        (
            r"(?:mean|average) (?:recorded )?heart rate",
            "mean heart rate",
            !a["heart_rate"]["mean_bpm"].is_null(),
            "heart_rate.mean_bpm null",
        ),
        (
            r"fitted 24-hour curve|acrophase",
            "acrophase",
            !a["cosinor"]["acrophase_hours"].is_null(),
            "cosinor.acrophase_hours null",
        ),
    ];
    table
        .into_iter()
        .map(|(pattern, name, held, why)| {
            (
                re(&format!("(?i){pattern}")),
                name,
                (!held).then(|| why.to_owned()),
            )
        })
        .collect()
}

/// Everything `insight` says that its analysis does not support. `previous` is the features
/// of the user's previous insight (what `features.change` is measured against), if any.
pub fn check(insight: &Value, analysis: &Value, previous: Option<&Value>) -> Vec<Violation> {
    let features = &insight["features"];
    let mut out: Vec<Violation> = facts::untraced_features(features, analysis, previous)
        .into_iter()
        .map(|detail| Violation {
            rule: "feature traces to the analysis",
            sentence: String::new(),
            detail,
        })
        .collect();
    let mut known = facts::of_analysis(analysis);
    known.retain(|f| !f.path.starts_with("a clock hour"));
    known.extend(clock_facts(analysis));
    known.extend(facts::of_features(features));
    let mut strings = Vec::new();
    facts::strings(analysis, &mut strings);
    let measures = measures(analysis);
    let active = facts::active_hours(analysis);
    let complete_night = facts::nights(analysis)
        .iter()
        .enumerate()
        .find(|(_, n)| facts::is_complete_night(n))
        .map(|(i, n)| format!("sleep.nights[{i}] ({} {})", n["date"], n["method"]))
        .or_else(|| {
            let days = analysis["heart"]["days"].as_array()?;
            days.iter().enumerate().find_map(|(i, d)| {
                (!d["asleep_mean_bpm"].is_null()).then(|| {
                    format!(
                        "heart.days[{i}].asleep_mean_bpm = {} (heart rate while asleep, {})",
                        d["asleep_mean_bpm"], d["date"]
                    )
                })
            })
        });
    let coverage = facts::coverage(analysis);
    let counts = analysis["activity"]["kind"] != "step_count";
    for text in texts(insight) {
        for sentence in sentences(&text) {
            let mut bad = |rule: &'static str, detail: String| {
                out.push(Violation {
                    rule,
                    sentence: sentence.clone(),
                    detail,
                })
            };
            let (said, dates) = numbers(&sentence);
            for n in &said {
                if n.signed {
                    bad(
                        "a change is said as a change",
                        format!("signed number {} reads as a value", n.text),
                    );
                } else if let Err(e) = trace(n, &known) {
                    bad("every number traces to the analysis", e);
                }
            }
            for d in dates {
                if !strings.iter().any(|s| s.starts_with(&d)) {
                    bad(
                        "every number traces to the analysis",
                        format!("date {d} is in no field of the analysis"),
                    );
                }
            }
            if NO_NIGHT.is_match(&sentence)
                && let Some(night) = &complete_night
            {
                bad(
                    "no 'no night' when a night exists",
                    format!("the analysis has {night}"),
                );
            }
            for c in PEAK.captures_iter(&sentence) {
                let hour: u32 = c[1].parse().unwrap();
                if let Some(hours) = active.as_ref().filter(|h| !h.contains(&hour)) {
                    bad(
                        "no activity peak outside the hours with activity",
                        format!(
                            "{}:{} is in clock hour {hour}, without activity in activity.hourly (active hours {hours:?})",
                            &c[1], &c[2]
                        ),
                    );
                }
            }
            if WEAR.is_match(&sentence) && !counts {
                bad("coverage claims only when coverage is low", "activity.kind is step_count: a minute without steps is no minute without the device".into());
            }
            if (WEAR.is_match(&sentence) || LOW_COVERAGE.is_match(&sentence))
                && let Some(c) = coverage.filter(|c| *c >= 0.8)
            {
                bad(
                    "coverage claims only when coverage is low",
                    format!("minutes_present / window span = {c:.3}, not low"),
                );
            }
            if TOO_SHORT.is_match(&sentence)
                && let Some(m) = facts::span_minutes(analysis).filter(|m| *m >= RHYTHM_MIN_MINUTES)
            {
                bad(
                    "no 'too short' for a window long enough",
                    format!(
                        "the window spans {:.1} days (window.from to window.to), enough for day-to-day measures",
                        m / 1440.0
                    ),
                );
            }
            if !UNAVAILABLE.is_match(&sentence) {
                let named = APART.replace_all(&sentence, "");
                for (pattern, name, missing) in &measures {
                    if let Some(why) = missing.as_ref().filter(|_| pattern.is_match(&named)) {
                        bad(
                            "no sentence about a measure the data cannot support",
                            format!("names {name}: {why}"),
                        );
                    }
                }
            }
        }
    }
    out
}

/// Panics listing every violation, with the whole insight text, when there is any.
pub fn assert_truthful(label: &str, insight: &Value, analysis: &Value, previous: Option<&Value>) {
    let v = check(insight, analysis, previous);
    assert!(
        v.is_empty(),
        "{label}: {} claim(s) the analysis does not support:\n{}\n--- insight text:\n{}",
        v.len(),
        v.iter()
            .map(|v| format!("  {v}"))
            .collect::<Vec<_>>()
            .join("\n"),
        texts(insight).join("\n")
    );
}
