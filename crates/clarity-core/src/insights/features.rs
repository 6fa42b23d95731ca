//! Derived features: the only thing an insight is built from.
//!
//! Rules: features are computed from a stored analysis document, never from sample rows, and
//! carry no identity (no user id, email or name): this struct is exactly what goes into the
//! prompt sent to an external API, and what is stored with the insight.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A night counts for sleep averages when at least this share of its minutes has data.
const FULL_NIGHT_SHARE: f64 = 0.8;
/// Day-to-day rhythm measures (IS, IV, RA, acrophase) need at least this many days.
pub const RHYTHM_MIN_DAYS: f64 = 2.0;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// Days of the analysed window (fractional, two decimals: too coarse for short windows).
    pub days: f64,
    /// Minutes the analysed window spans: what text about its length is made from.
    #[serde(default)]
    pub span_minutes: u64,
    /// Share of the window's minutes with activity data, 0-1.
    pub coverage: f64,
    /// `activity_count` or `step_count`.
    pub activity_kind: Option<String>,
    /// Nights with enough data to count.
    pub nights: usize,
    /// Mean Sadeh sleep per counted night, minutes.
    pub sleep_minutes_mean: Option<f64>,
    /// Standard deviation of that, minutes: night-to-night regularity.
    pub sleep_minutes_sd: Option<f64>,
    /// Mean Tudor-Locke efficiency, percent.
    pub sleep_efficiency_mean: Option<f64>,
    /// Mean awakenings per sleep period.
    pub awakenings_mean: Option<f64>,
    /// Local clock time of the least active 5 hours ("HH:MM").
    pub l5_start: Option<String>,
    /// Local clock time of the most active 10 hours.
    pub m10_start: Option<String>,
    pub interdaily_stability: Option<f64>,
    pub intradaily_variability: Option<f64>,
    pub relative_amplitude: Option<f64>,
    /// Fitted daily peak of activity, local clock hours.
    pub acrophase_hours: Option<f64>,
    pub mean_heart_rate_bpm: Option<f64>,
    /// Resting heart rate and HRV trends (analysis `heart`), when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heart: Option<super::heart::HeartFeatures>,
    /// Named scores of the PAT model's head, when a head is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pat_scores: Option<serde_json::Map<String, Value>>,
    /// Changes against the user's previous insight, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

/// Differences against the previous report: this window's value minus that report's. Named
/// `_delta` so that neither a reader of the stored features nor a model takes one for the
/// measure's value (an IS change of -0.18 is not an IS of -0.18).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Minutes of sleep a night.
    pub sleep_minutes_mean_delta: Option<f64>,
    pub interdaily_stability_delta: Option<f64>,
    pub relative_amplitude_delta: Option<f64>,
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

fn mean_sd(xs: &[f64]) -> (Option<f64>, Option<f64>) {
    if xs.is_empty() {
        return (None, None);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.len() > 1)
        .then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (Some(mean), sd)
}

impl Features {
    /// Reads the features out of an analysis document (the `analysis` frame's body).
    pub fn from_analysis(a: &Value) -> Features {
        let minutes_present = a["minutes_present"].as_f64().unwrap_or(0.0);
        let span_minutes = match (
            a["window"]["from"].as_str().and_then(parse_time),
            a["window"]["to"].as_str().and_then(parse_time),
        ) {
            (Some(from), Some(to)) if to > from => ((to - from) / 60) as f64,
            _ => minutes_present,
        };
        let nights: Vec<f64> = a["sleep"]["nights"]
            .as_array()
            .map(|ns| {
                ns.iter()
                    .filter(|n| {
                        n["minutes_present"].as_f64().unwrap_or(0.0) >= FULL_NIGHT_SHARE * 1440.0
                    })
                    .filter_map(|n| f(&n["sadeh_sleep_minutes"]))
                    .collect()
            })
            .unwrap_or_default();
        let (sleep_mean, sleep_sd) = mean_sd(&nights);
        let periods = a["sleep"]["periods"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let eff: Vec<f64> = periods
            .iter()
            .filter_map(|p| f(&p["efficiency_pct"]))
            .collect();
        let awak: Vec<f64> = periods.iter().filter_map(|p| f(&p["awakenings"])).collect();
        let np = &a["nonparametric"];
        Features {
            days: round(span_minutes / 1440.0, 2),
            span_minutes: span_minutes.max(0.0).round() as u64,
            coverage: if span_minutes > 0.0 {
                round(minutes_present / span_minutes, 3)
            } else {
                0.0
            },
            activity_kind: a["activity"]["kind"].as_str().map(str::to_owned),
            nights: nights.len(),
            sleep_minutes_mean: sleep_mean.map(|x| round(x, 1)),
            sleep_minutes_sd: sleep_sd.map(|x| round(x, 1)),
            sleep_efficiency_mean: mean_sd(&eff).0.map(|x| round(x, 1)),
            awakenings_mean: mean_sd(&awak).0.map(|x| round(x, 1)),
            l5_start: np["l5"]["start"].as_str().map(str::to_owned),
            m10_start: np["m10"]["start"].as_str().map(str::to_owned),
            interdaily_stability: f(&np["is"]).map(|x| round(x, 3)),
            intradaily_variability: f(&np["iv"]).map(|x| round(x, 3)),
            relative_amplitude: f(&np["ra"]).map(|x| round(x, 3)),
            acrophase_hours: f(&a["cosinor"]["acrophase_hours"]).map(|x| round(x, 2)),
            mean_heart_rate_bpm: f(&a["heart_rate"]["mean_bpm"]).map(|x| round(x, 1)),
            heart: super::heart::HeartFeatures::from_analysis(a),
            pat_scores: a["pat"]["scores"]
                .as_object()
                .filter(|m| !m.is_empty())
                .cloned(),
            change: None,
        }
    }

    /// Adds the change against an earlier week's features. Rhythm measures are compared only
    /// when both windows are long enough for them to mean something.
    pub fn compare_with(&mut self, previous: &Features) {
        let d = |now: Option<f64>, before: Option<f64>, places| match (now, before) {
            (Some(a), Some(b)) => Some(round(a - b, places)),
            _ => None,
        };
        let rhythm = self.days >= RHYTHM_MIN_DAYS && previous.days >= RHYTHM_MIN_DAYS;
        let r = |x: Option<f64>| x.filter(|_| rhythm);
        let change = Change {
            sleep_minutes_mean_delta: d(self.sleep_minutes_mean, previous.sleep_minutes_mean, 1),
            interdaily_stability_delta: r(d(
                self.interdaily_stability,
                previous.interdaily_stability,
                3,
            )),
            relative_amplitude_delta: r(d(self.relative_amplitude, previous.relative_amplitude, 3)),
        };
        if change != Change::default() {
            self.change = Some(change);
        }
    }
}

fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}
