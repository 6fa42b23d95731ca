//! Derived features: the only thing an insight is built from.
//!
//! Rules: features are computed from a stored analysis document, never from sample rows, and
//! carry no identity (no user id, email or name): this struct is exactly what goes into the
//! prompt sent to an external API, and what is stored with the insight.
//! A measure the data cannot support is left out (`None`), never passed on for the text to
//! hedge: an IS or RA outside [0, 1] (documents from before the bounded IS), and an activity
//! peak (M10 start, acrophase) in a clock hour without activity in `activity.hourly`.
//! Steps a day are the mean of `activity.days[].steps` over the complete days with steps only:
//! a window's first and last day are usually partial, and their totals are no daily figure.

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
    /// Local clock hours (0-23) with activity above zero on some day of the window; `None`
    /// for documents without hourly means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_hours: Option<Vec<u8>>,
    /// Nights with enough data to count: every night built from sleep stages, and the
    /// actigraphy nights with at least 80 % of their minutes.
    pub nights: usize,
    /// Of those, nights built from the user's sleep stages (their sleep, efficiency and
    /// awakenings are the stages', see `analytics::stages`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stage_nights: usize,
    /// Mean sleep per counted night, minutes: asleep minutes of a stage night, Sadeh sleep of
    /// an actigraphy night.
    pub sleep_minutes_mean: Option<f64>,
    /// Standard deviation of that, minutes: night-to-night regularity.
    pub sleep_minutes_sd: Option<f64>,
    /// Mean efficiency, percent: of the stage nights when there are any, else of the
    /// Tudor-Locke periods.
    pub sleep_efficiency_mean: Option<f64>,
    /// Mean awakenings per stage night, else per Tudor-Locke period.
    pub awakenings_mean: Option<f64>,
    /// Mean deep and REM sleep per stage night that has light/deep/REM stages, minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deep_minutes_mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rem_minutes_mean: Option<f64>,
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
    /// Mean of `activity.days[].steps` over the complete days with steps, whole steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_per_day_mean: Option<f64>,
    /// The number of days that mean is over.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub step_days: usize,
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

fn is_zero(n: &usize) -> bool {
    *n == 0
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
        let all_nights = a["sleep"]["nights"].as_array().cloned().unwrap_or_default();
        let staged: Vec<&Value> = all_nights
            .iter()
            .filter(|n| n["method"] == "stages")
            .collect();
        let nights: Vec<f64> = all_nights
            .iter()
            .filter_map(|n| {
                if n["method"] == "stages" {
                    f(&n["asleep_minutes"])
                } else if n["minutes_present"].as_f64().unwrap_or(0.0) >= FULL_NIGHT_SHARE * 1440.0
                {
                    f(&n["sadeh_sleep_minutes"])
                } else {
                    None
                }
            })
            .collect();
        let (sleep_mean, sleep_sd) = mean_sd(&nights);
        // Stage nights say efficiency and awakenings directly; the Tudor-Locke periods are
        // actigraphy's estimate, used only without them.
        let periods = if staged.is_empty() {
            a["sleep"]["periods"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        } else {
            staged.iter().map(|n| (*n).clone()).collect()
        };
        let eff: Vec<f64> = periods
            .iter()
            .filter_map(|p| f(&p["efficiency_pct"]))
            .collect();
        let awak: Vec<f64> = periods.iter().filter_map(|p| f(&p["awakenings"])).collect();
        let detailed: Vec<&&Value> = staged
            .iter()
            .filter(|n| {
                ["light_minutes", "deep_minutes", "rem_minutes"]
                    .iter()
                    .any(|k| f(&n[*k]).is_some_and(|m| m > 0.0))
            })
            .collect();
        let stage_mean = |key: &str| {
            let xs: Vec<f64> = detailed.iter().filter_map(|n| f(&n[key])).collect();
            mean_sd(&xs).0.map(|x| round(x, 1))
        };
        let np = &a["nonparametric"];
        let active_hours = active_hours(&a["activity"]["hourly"]);
        // A peak is only a peak where there was activity (module rules).
        let in_active = |hour: Option<u8>| match (&active_hours, hour) {
            (Some(hours), Some(h)) => hours.contains(&h),
            (None, Some(_)) => true,
            (_, None) => false,
        };
        let m10_start = np["m10"]["start"]
            .as_str()
            .filter(|t| in_active(t.get(..2).and_then(|h| h.parse().ok())))
            .map(str::to_owned);
        let acrophase = f(&a["cosinor"]["acrophase_hours"])
            .filter(|h| in_active(Some((*h as u8).min(23))))
            .map(|x| round(x, 2));
        let unit = |x: Option<f64>| x.filter(|x| (0.0..=1.0).contains(x));
        let step_totals: Vec<f64> = a["activity"]["days"]
            .as_array()
            .map(|days| {
                days.iter()
                    .filter(|d| d["complete"] == true)
                    .filter_map(|d| f(&d["steps"]))
                    .collect()
            })
            .unwrap_or_default();
        Features {
            days: round(span_minutes / 1440.0, 2),
            span_minutes: span_minutes.max(0.0).round() as u64,
            coverage: if span_minutes > 0.0 {
                round(minutes_present / span_minutes, 3)
            } else {
                0.0
            },
            activity_kind: a["activity"]["kind"].as_str().map(str::to_owned),
            active_hours,
            nights: nights.len(),
            stage_nights: staged.len(),
            sleep_minutes_mean: sleep_mean.map(|x| round(x, 1)),
            sleep_minutes_sd: sleep_sd.map(|x| round(x, 1)),
            sleep_efficiency_mean: mean_sd(&eff).0.map(|x| round(x, 1)),
            awakenings_mean: mean_sd(&awak).0.map(|x| round(x, 1)),
            deep_minutes_mean: stage_mean("deep_minutes"),
            rem_minutes_mean: stage_mean("rem_minutes"),
            l5_start: np["l5"]["start"].as_str().map(str::to_owned),
            m10_start,
            interdaily_stability: unit(f(&np["is"])).map(|x| round(x, 3)),
            intradaily_variability: f(&np["iv"]).map(|x| round(x, 3)),
            relative_amplitude: unit(f(&np["ra"])).map(|x| round(x, 3)),
            acrophase_hours: acrophase,
            mean_heart_rate_bpm: f(&a["heart_rate"]["mean_bpm"]).map(|x| round(x, 1)),
            steps_per_day_mean: mean_sd(&step_totals).0.map(|x| round(x, 0)),
            step_days: step_totals.len(),
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

/// Local clock hours whose hourly mean is above zero, from `activity.hourly` (its `start`
/// carries the analysis clock).
fn active_hours(hourly: &Value) -> Option<Vec<u8>> {
    let start = chrono::DateTime::parse_from_rfc3339(hourly["start"].as_str()?).ok()?;
    let first = chrono::Timelike::hour(&start) as usize;
    let mut active = [false; 24];
    for (i, m) in hourly["means"].as_array()?.iter().enumerate() {
        if m.as_f64().is_some_and(|x| x > 0.0) {
            active[(first + i) % 24] = true;
        }
    }
    Some((0..24u8).filter(|h| active[usize::from(*h)]).collect())
}

impl Features {
    /// Whether the window's activity is step counts (phone or watch step intervals).
    pub fn is_steps(&self) -> bool {
        self.activity_kind.as_deref() == Some("step_count")
    }
}

fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}
