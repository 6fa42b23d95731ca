//! A measure's recent days against its previous days (rules in the parent module's doc).

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use super::{MIN_TREND_DAYS, RECENT_DAYS, round1};

/// Recent days against the days before them, for one measure in one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// `bpm` or `ms`.
    pub unit: String,
    /// First and last date of the recent days (the last is the last day with a value).
    pub recent_from: NaiveDate,
    pub recent_to: NaiveDate,
    /// Days with a value among the recent days, and their mean.
    pub recent_days: usize,
    pub recent_mean: f64,
    /// Days with a value before `recent_from`, and their mean (null under 2 days).
    pub previous_days: usize,
    pub previous_mean: Option<f64>,
    /// `recent_mean - previous_mean` from the unrounded means; null unless both sides have
    /// at least 2 days.
    pub change: Option<f64>,
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The trend of `(date, value)` points sorted by date; `None` without points.
pub(super) fn trend(points: &[(NaiveDate, f64)], unit: &str) -> Option<Trend> {
    let recent_to = points.last()?.0;
    let recent_from = recent_to
        .checked_sub_days(Days::new(RECENT_DAYS - 1))
        .unwrap_or(NaiveDate::MIN);
    let side = |recent: bool| -> Vec<f64> {
        points
            .iter()
            .filter(|p| (p.0 >= recent_from) == recent)
            .map(|p| p.1)
            .collect()
    };
    let (recent, previous) = (side(true), side(false));
    let previous_mean = (previous.len() >= MIN_TREND_DAYS).then(|| mean(&previous));
    let change = previous_mean
        .filter(|_| recent.len() >= MIN_TREND_DAYS)
        .map(|p| round1(mean(&recent) - p));
    Some(Trend {
        unit: unit.to_owned(),
        recent_from,
        recent_to,
        recent_days: recent.len(),
        recent_mean: round1(mean(&recent)),
        previous_days: previous.len(),
        previous_mean: previous_mean.map(round1),
        change,
    })
}
