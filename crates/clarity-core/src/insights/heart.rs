//! Heart features and their words: resting heart rate and HRV as trends (recent days against
//! the days before), from the analysis' `heart` section.
//!
//! Rules:
//! - Every number said is a field of the analysis' `heart.resting`, `heart.hrv.sdnn` or
//!   `heart.hrv.rmssd` (`recent_mean`, `previous_mean`, `change`, the day counts), written
//!   with the field's one decimal (a whole number without it). "Recent" days are those of the
//!   last 3 calendar days with a value, "earlier" the days before them.
//! - SDNN and RMSSD are named and never combined: each has its own sentence.
//! - A change is said as a change ("3 bpm lower than over 4 earlier days"), never as a signed
//!   number; no data, no sentence.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A measure's recent days against the days before them (analysis `heart` trend).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrendFeature {
    pub recent_days: u64,
    pub recent_mean: f64,
    pub previous_days: u64,
    #[serde(default)]
    pub previous_mean: Option<f64>,
    /// recent_mean - previous_mean: a difference, not a value of the measure.
    #[serde(default)]
    pub change: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeartFeatures {
    /// Resting heart rate, bpm.
    #[serde(default)]
    pub resting_bpm: Option<TrendFeature>,
    /// How the resting rates of the recent days were measured (analysis `resting_method`).
    #[serde(default)]
    pub resting_methods: Vec<String>,
    /// HRV as SDNN, ms.
    #[serde(default)]
    pub hrv_sdnn_ms: Option<TrendFeature>,
    /// HRV as RMSSD, ms: a different measure from SDNN, never compared with it.
    #[serde(default)]
    pub hrv_rmssd_ms: Option<TrendFeature>,
}

fn trend(v: &Value) -> Option<TrendFeature> {
    let mean = v["recent_mean"].as_f64().filter(|x| x.is_finite())?;
    let f = |k: &str| v[k].as_f64().filter(|x| x.is_finite());
    Some(TrendFeature {
        recent_days: v["recent_days"].as_u64().unwrap_or(0),
        recent_mean: mean,
        previous_days: v["previous_days"].as_u64().unwrap_or(0),
        previous_mean: f("previous_mean"),
        change: f("change"),
    })
}

impl HeartFeatures {
    /// From an analysis document; `None` when it has no heart trend.
    pub fn from_analysis(a: &Value) -> Option<HeartFeatures> {
        let h = &a["heart"];
        let resting = trend(&h["resting"]);
        let mut methods: Vec<String> = Vec::new();
        if let (Some(days), Some(from)) =
            (h["days"].as_array(), h["resting"]["recent_from"].as_str())
        {
            for d in days {
                if d["date"].as_str().is_some_and(|x| x >= from)
                    && let Some(m) = d["resting_method"].as_str()
                    && !methods.iter().any(|x| x == m)
                {
                    methods.push(m.to_owned());
                }
            }
        }
        let out = HeartFeatures {
            resting_bpm: resting,
            resting_methods: methods,
            hrv_sdnn_ms: trend(&h["hrv"]["sdnn"]),
            hrv_rmssd_ms: trend(&h["hrv"]["rmssd"]),
        };
        (out.resting_bpm.is_some() || out.hrv_sdnn_ms.is_some() || out.hrv_rmssd_ms.is_some())
            .then_some(out)
    }
}

/// A field's value as written: one decimal, none for a whole number.
pub fn num(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

fn days(n: u64, which: &str) -> String {
    format!("{n} {which} day{}", if n == 1 { "" } else { "s" })
}

/// "averaged 58 bpm over 3 recent days, 3 bpm lower than over 4 earlier days (61 bpm)".
fn trend_words(t: &TrendFeature, unit: &str) -> String {
    let mut s = format!(
        "averaged {} {unit} over {}",
        num(t.recent_mean),
        days(t.recent_days, "recent")
    );
    if let (Some(c), Some(p)) = (t.change, t.previous_mean) {
        let shown = num(c.abs());
        if shown == "0" {
            s.push_str(&format!(
                ", the same as over {}",
                days(t.previous_days, "earlier")
            ));
        } else {
            let way = if c > 0.0 { "higher" } else { "lower" };
            s.push_str(&format!(
                ", {shown} {unit} {way} than over {} ({} {unit})",
                days(t.previous_days, "earlier"),
                num(p)
            ));
        }
    }
    s
}

/// The local generator's sentences.
pub fn points(h: &HeartFeatures) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = &h.resting_bpm {
        let how = match h.resting_methods.as_slice() {
            [m] if m == "asleep_lowest_30min" => " (lowest 30-minute average while asleep)",
            [m] if m == "day_lowest_30min" => " (lowest 30-minute average of the day)",
            [m] if m == "device" => " (as reported by your device)",
            _ => "",
        };
        out.push(format!(
            "Resting heart rate{how} {}.",
            trend_words(t, "bpm")
        ));
    }
    for (name, t) in [("SDNN", &h.hrv_sdnn_ms), ("RMSSD", &h.hrv_rmssd_ms)] {
        if let Some(t) = t {
            out.push(format!(
                "Heart rate variability ({name}) {}.",
                trend_words(t, "ms")
            ));
        }
    }
    out
}

/// The prompt's lines: the trends in words, each change labelled as a difference.
pub fn prompt_lines(h: &HeartFeatures) -> Vec<String> {
    let mut out = Vec::new();
    for (name, unit, t) in [
        ("resting heart rate", "bpm", &h.resting_bpm),
        (
            "HRV as SDNN (not comparable with RMSSD)",
            "ms",
            &h.hrv_sdnn_ms,
        ),
        (
            "HRV as RMSSD (not comparable with SDNN)",
            "ms",
            &h.hrv_rmssd_ms,
        ),
    ] {
        if let Some(t) = t {
            out.push(format!("{name}: {}", trend_words(t, unit)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn analysis() -> Value {
        json!({"heart": {
            "days": [
                {"date": "2026-03-05", "resting_method": "asleep_lowest_30min"},
                {"date": "2026-03-06", "resting_method": "asleep_lowest_30min"},
                {"date": "2026-03-07", "resting_method": "asleep_lowest_30min"}
            ],
            "resting": {"unit": "bpm", "recent_from": "2026-03-05", "recent_to": "2026-03-07",
                "recent_days": 3, "recent_mean": 58.0, "previous_days": 4,
                "previous_mean": 61.0, "change": -3.0},
            "hrv": {
                "sdnn": null,
                "rmssd": {"unit": "ms", "recent_from": "2026-03-05", "recent_to": "2026-03-07",
                    "recent_days": 3, "recent_mean": 38.5, "previous_days": 4,
                    "previous_mean": 44.5, "change": -6.0}
            }
        }})
    }

    #[test]
    fn trends_are_said_as_changes_with_the_analysis_numbers() {
        let h = HeartFeatures::from_analysis(&analysis()).unwrap();
        let p = points(&h);
        assert_eq!(
            p,
            vec![
                "Resting heart rate (lowest 30-minute average while asleep) averaged 58 bpm over 3 recent days, 3 bpm lower than over 4 earlier days (61 bpm).",
                "Heart rate variability (RMSSD) averaged 38.5 ms over 3 recent days, 6 ms lower than over 4 earlier days (44.5 ms).",
            ]
        );
        let signed = |s: &str| {
            s.contains('+')
                || s.as_bytes()
                    .windows(2)
                    .any(|w| w[0] == b'-' && w[1].is_ascii_digit())
        };
        assert!(
            p.iter().all(|s| !s.contains("SDNN") && !signed(s)),
            "{p:#?}"
        );
    }

    #[test]
    fn no_heart_data_no_features_and_no_sentence() {
        assert_eq!(HeartFeatures::from_analysis(&json!({})), None);
        let none = json!({"heart": {"days": [], "resting": null,
            "hrv": {"sdnn": null, "rmssd": null}, "sources": []}});
        assert_eq!(HeartFeatures::from_analysis(&none), None);
        assert!(points(&HeartFeatures::default()).is_empty());
    }

    #[test]
    fn a_single_side_is_an_average_without_a_trend() {
        let t = TrendFeature {
            recent_days: 1,
            recent_mean: 45.0,
            previous_days: 0,
            previous_mean: None,
            change: None,
        };
        let h = HeartFeatures {
            hrv_sdnn_ms: Some(t),
            ..HeartFeatures::default()
        };
        assert_eq!(
            points(&h),
            vec!["Heart rate variability (SDNN) averaged 45 ms over 1 recent day."]
        );
    }
}
