//! Heart: resting heart rate per day, heart rate while asleep, HRV trends, nightly respiratory
//! rate and SpO2, from phone-shaped samples (a reading every few minutes, every second in a
//! workout, several sources at once). Pure: no store, no clock.
//!
//! Definitions (docs/analytics.md repeats them for users):
//! - **Dates** are local: each reading is dated by its own UTC offset, so dates follow a DST
//!   change or a trip. A night is dated by the caller (the local date of its final wake).
//! - **Heart-rate minutes.** Readings are grouped by UTC minute. When several sources have
//!   readings in one minute, one source wins the whole minute (never mixed): the higher
//!   [`rank`] (3 wearable, 2 unnamed, 1 phone), then the source with more readings in the
//!   input, then the smaller name. The minute's value is the mean of the winner's readings in
//!   it, so a second-by-second workout weighs one minute like a reading every five minutes.
//!   `sources` says how many minutes each source won.
//! - **A 30-minute mean** is the mean of the minute values in `[m, m + 30 min)` for a minute
//!   `m` that has a value; it counts only with at least [`MIN_READINGS`] minutes with values
//!   in it (3: with a reading every 5 minutes a full window has 6).
//! - **Resting heart rate** of date D (`resting_method`):
//!   1. `asleep_lowest_30min`: the lowest 30-minute mean over the minutes asleep in the night
//!      dated D (a minute is asleep when its start lies in one of the night's asleep
//!      intervals; other minutes inside the 30 minutes are left out);
//!   2. else `device`: the mean of the device-reported `resting_heart_rate` readings of date D
//!      from the winning source (same priority as above, "more readings" counted that day).
//!      Before the waking day's lowest half hour: a phone records heart rate through the day
//!      without knowing rest from sitting at a desk, while the watch's own resting rate is
//!      measured at rest (HealthKit, Health Connect); a user shown 67 while the watch says 58
//!      is shown a claim the data contradicts;
//!   3. else `day_lowest_30min`: the lowest 30-minute mean over the minutes of local date D
//!      outside workouts (a workout's interval, start inclusive, end exclusive);
//!   4. else null.
//! - **asleep_mean_bpm**: the mean of the minute values asleep in the night dated D, null
//!   with fewer than [`MIN_READINGS`] minutes.
//! - **HRV**: SDNN (`heart_rate_variability`) and RMSSD (`heart_rate_variability_rmssd`) are
//!   separate inputs and separate outputs; nothing ever averages one with the other. A day's
//!   value is the mean of that date's readings from the winning source.
//! - **respiratory_rate, spo2_pct**: nightly: the mean of the readings (winning source) taken
//!   while asleep in the night dated D; null without a night or without a reading asleep.
//! - **Trends** (`resting`, `hrv.sdnn`, `hrv.rmssd`): over the days with a value of that
//!   measure, "recent" is the [`RECENT_DAYS`] calendar days ending at the last such day and
//!   "previous" the earlier ones; each mean weighs days equally (the days' values as listed). `previous_mean` needs
//!   [`MIN_TREND_DAYS`] previous days; `change` (recent minus previous) needs that many on both
//!   sides.
//! - **Days** run from the first to the last date with any heart input, one entry a date, so a
//!   day without the watch is there with nulls (never 0). Inputs spanning more than
//!   [`MAX_FILLED_DAYS`] dates list only the dates with data.
//! - Readings outside physiological ranges or not finite are ignored (validation refuses them
//!   already; this keeps the module total). Values are rounded to one decimal.

mod minutes;
mod trend;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::samples::sources::rank;
use minutes::{Minute, asleep_minutes, dedupe, lowest_window_mean, merged, source_mean};
pub use trend::Trend;

/// Fewest minutes with values a 30-minute mean (and an asleep mean) needs.
pub const MIN_READINGS: usize = 3;
/// The window of the resting heart rate, minutes.
pub const WINDOW_MINUTES: i64 = 30;
/// Calendar days counted as "recent" in a trend.
pub const RECENT_DAYS: u64 = 3;
/// Fewest days on a side of a trend for its mean (previous) or its change.
pub const MIN_TREND_DAYS: usize = 2;
/// Longest run of dates filled with empty days.
pub const MAX_FILLED_DAYS: i64 = 366;

const HR_RANGE: (f64, f64) = (20.0, 300.0);
const HRV_RANGE: (f64, f64) = (0.0, 1000.0);
const RR_RANGE: (f64, f64) = (1.0, 100.0);
const SPO2_RANGE: (f64, f64) = (50.0, 100.0);

/// One reading: its instant, the offset it was sent with, value, source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading<'a> {
    pub utc_ms: i64,
    pub offset_secs: i32,
    pub value: f64,
    pub source: Option<&'a str>,
    /// Typed in by the user: wins its minutes over recorded sources.
    pub manual: bool,
}

impl Reading<'_> {
    fn source(&self) -> &str {
        self.source.unwrap_or("unspecified")
    }

    fn date(&self) -> Option<NaiveDate> {
        local_date(self.utc_ms, self.offset_secs)
    }
}

/// The asleep intervals (UTC ms, `[start, end)`) of the night dated `date`.
#[derive(Debug, Clone, PartialEq)]
pub struct AsleepNight {
    pub date: NaiveDate,
    pub intervals: Vec<(i64, i64)>,
}

/// Everything the heart analytics read; any slice may be empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeartInput<'a> {
    pub heart_rate: &'a [Reading<'a>],
    pub nights: &'a [AsleepNight],
    /// Workout intervals (UTC ms, `[start, end)`), left out of the daytime resting rate.
    pub workouts: &'a [(i64, i64)],
    /// `heart_rate_variability` (SDNN), ms.
    pub hrv_sdnn: &'a [Reading<'a>],
    /// `heart_rate_variability_rmssd`, ms.
    pub hrv_rmssd: &'a [Reading<'a>],
    pub respiratory_rate: &'a [Reading<'a>],
    /// `oxygen_saturation`, %.
    pub spo2: &'a [Reading<'a>],
    /// `resting_heart_rate` as the device reported it.
    pub resting_device: &'a [Reading<'a>],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestingMethod {
    #[serde(rename = "asleep_lowest_30min")]
    AsleepLowest30Min,
    #[serde(rename = "day_lowest_30min")]
    DayLowest30Min,
    #[serde(rename = "device")]
    Device,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartDay {
    pub date: NaiveDate,
    pub resting_bpm: Option<f64>,
    pub resting_method: Option<RestingMethod>,
    pub asleep_mean_bpm: Option<f64>,
    pub hrv_sdnn_ms: Option<f64>,
    pub hrv_rmssd_ms: Option<f64>,
    /// Breaths a minute, while asleep.
    pub respiratory_rate: Option<f64>,
    /// While asleep.
    pub spo2_pct: Option<f64>,
    /// Minutes of the date with a heart-rate value (after choosing one source a minute).
    pub hr_minutes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hrv {
    pub sdnn: Option<Trend>,
    pub rmssd: Option<Trend>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMinutes {
    pub source: String,
    pub minutes: usize,
    pub rank: u8,
    /// The user's manual entries of this source, which win their minutes over recorded data
    /// (`samples::sources`); absent for recorded sources.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heart {
    pub days: Vec<HeartDay>,
    /// Trend of `resting_bpm`, bpm.
    pub resting: Option<Trend>,
    /// Trends of `hrv_sdnn_ms` and `hrv_rmssd_ms`, ms, each on its own.
    pub hrv: Hrv,
    /// Heart-rate minutes won by each source, most first.
    pub sources: Vec<SourceMinutes>,
}

pub fn local_date(utc_ms: i64, offset_secs: i32) -> Option<NaiveDate> {
    let local = utc_ms.checked_add(i64::from(offset_secs) * 1000)?;
    let day = local.div_euclid(86_400_000);
    // Thousands of readings a week fall on a handful of dates: the last one is remembered.
    thread_local! {
        static LAST: std::cell::Cell<Option<(i64, NaiveDate)>> = const { std::cell::Cell::new(None) };
    }
    if let Some((d, date)) = LAST.get()
        && d == day
    {
        return Some(date);
    }
    let date = chrono::DateTime::from_timestamp_millis(local).map(|t| t.date_naive())?;
    LAST.set(Some((day, date)));
    Some(date)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn in_range(r: &Reading<'_>, (lo, hi): (f64, f64)) -> bool {
    r.value.is_finite() && (lo..=hi).contains(&r.value)
}

fn valid<'r, 'a>(rs: &'r [Reading<'a>], range: (f64, f64)) -> Vec<&'r Reading<'a>> {
    rs.iter().filter(|r| in_range(r, range)).collect()
}

fn by_date<'r, 'a>(rs: &[&'r Reading<'a>]) -> BTreeMap<NaiveDate, Vec<&'r Reading<'a>>> {
    let mut out: BTreeMap<NaiveDate, Vec<&Reading<'_>>> = BTreeMap::new();
    for r in rs {
        if let Some(d) = r.date() {
            out.entry(d).or_default().push(r);
        }
    }
    out
}

/// Per night date, the merged asleep intervals of every night with that date.
fn nights_by_date(nights: &[AsleepNight]) -> BTreeMap<NaiveDate, Vec<(i64, i64)>> {
    let mut out: BTreeMap<NaiveDate, Vec<(i64, i64)>> = BTreeMap::new();
    for n in nights {
        out.entry(n.date)
            .or_default()
            .extend(n.intervals.iter().copied());
    }
    out.into_iter().map(|(d, iv)| (d, merged(iv))).collect()
}

fn asleep(intervals: &[(i64, i64)], t: i64) -> bool {
    let i = intervals.partition_point(|iv| iv.1 <= t);
    intervals.get(i).is_some_and(|iv| iv.0 <= t)
}

/// The dates listed: first to last with any input, or only those with data when too far apart.
pub(crate) fn dates(with_data: BTreeSet<NaiveDate>) -> Vec<NaiveDate> {
    let (Some(&first), Some(&last)) = (with_data.first(), with_data.last()) else {
        return Vec::new();
    };
    if (last - first).num_days() >= MAX_FILLED_DAYS {
        return with_data.into_iter().collect();
    }
    first.iter_days().take_while(|d| *d <= last).collect()
}

/// Runs the heart analytics (see the module's rules).
pub fn heart(input: &HeartInput<'_>) -> Heart {
    let hr = valid(input.heart_rate, HR_RANGE);
    let (minutes, sources) = dedupe(&hr);
    let nights = nights_by_date(input.nights);
    let workouts = merged(input.workouts.to_vec());
    let sdnn = by_date(&valid(input.hrv_sdnn, HRV_RANGE));
    let rmssd = by_date(&valid(input.hrv_rmssd, HRV_RANGE));
    let device = by_date(&valid(input.resting_device, HR_RANGE));
    let rr = valid(input.respiratory_rate, RR_RANGE);
    let spo2 = valid(input.spo2, SPO2_RANGE);

    let mut day_minutes: BTreeMap<NaiveDate, Vec<&Minute>> = BTreeMap::new();
    for m in &minutes {
        if let Some(d) = local_date(m.minute * 60_000, m.offset_secs) {
            day_minutes.entry(d).or_default().push(m);
        }
    }
    let mut with_data: BTreeSet<NaiveDate> = day_minutes.keys().copied().collect();
    with_data.extend(nights.keys());
    for map in [&sdnn, &rmssd, &device] {
        with_data.extend(map.keys());
    }
    with_data.extend(rr.iter().chain(&spo2).filter_map(|r| r.date()));

    let empty = Vec::new();
    let days: Vec<HeartDay> = dates(with_data)
        .into_iter()
        .map(|date| {
            let night = nights.get(&date).unwrap_or(&empty);
            let asleep_vals = asleep_minutes(&minutes, night);
            let today = day_minutes.get(&date).map_or(&[][..], Vec::as_slice);
            let awake_vals: Vec<(i64, f64)> = today
                .iter()
                .filter(|m| !asleep(&workouts, m.minute * 60_000))
                .map(|m| (m.minute, m.value))
                .collect();
            let device_mean = device.get(&date).and_then(|rs| source_mean(rs));
            let (resting_bpm, resting_method) = if let Some(v) = lowest_window_mean(&asleep_vals) {
                (Some(v), Some(RestingMethod::AsleepLowest30Min))
            } else if let Some(v) = device_mean {
                (Some(v), Some(RestingMethod::Device))
            } else if let Some(v) = lowest_window_mean(&awake_vals) {
                (Some(v), Some(RestingMethod::DayLowest30Min))
            } else {
                (None, None)
            };
            let asleep_mean = (asleep_vals.len() >= MIN_READINGS)
                .then(|| asleep_vals.iter().map(|m| m.1).sum::<f64>() / asleep_vals.len() as f64);
            let nightly = |rs: &[&Reading<'_>]| {
                let during: Vec<&Reading<'_>> = rs
                    .iter()
                    .copied()
                    .filter(|r| asleep(night, r.utc_ms))
                    .collect();
                source_mean(&during)
            };
            HeartDay {
                date,
                resting_bpm: resting_bpm.map(round1),
                resting_method,
                asleep_mean_bpm: asleep_mean.map(round1),
                hrv_sdnn_ms: sdnn.get(&date).and_then(|rs| source_mean(rs)).map(round1),
                hrv_rmssd_ms: rmssd.get(&date).and_then(|rs| source_mean(rs)).map(round1),
                respiratory_rate: nightly(&rr).map(round1),
                spo2_pct: nightly(&spo2).map(round1),
                hr_minutes: today.len(),
            }
        })
        .collect();

    let series = |f: fn(&HeartDay) -> Option<f64>| -> Vec<(NaiveDate, f64)> {
        days.iter()
            .filter_map(|d| f(d).map(|v| (d.date, v)))
            .collect()
    };
    Heart {
        resting: trend::trend(&series(|d| d.resting_bpm), "bpm"),
        hrv: Hrv {
            sdnn: trend::trend(&series(|d| d.hrv_sdnn_ms), "ms"),
            rmssd: trend::trend(&series(|d| d.hrv_rmssd_ms), "ms"),
        },
        days,
        sources,
    }
}
