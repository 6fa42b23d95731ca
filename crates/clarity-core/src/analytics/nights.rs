//! Total sleep per night: minutes scored sleep in [D 12:00, D+1 12:00) local clock time.
//!
//! Rules:
//! - The night is named by D, the date of the noon that opens it (the evening's date), in
//!   the analysis clock offset; with offset 0 this is the reference's
//!   `per_night_noon_to_noon` window starting at D 12:00Z.
//! - Partial windows at the ends of the recording are reported as they are; `minutes_present`
//!   (1440 for a complete night) says how much of the window was observed.
//! - A window with no present minute is left out: it has nothing to report, and a 0 there
//!   would read as "slept 0 minutes".
//! - Each night says how it was made (`method`): these are `actigraphy`; nights built from
//!   sleep stages are `stages` ([`super::stages`]). The analysis document dates every night by
//!   its morning (D + 1 here) so that both kinds share one date per night.

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};

use super::series::{ClockOffset, DAY_MINUTES, MinuteSeries};
use super::sleep::SleepWake;

const NOON: i64 = 720;

/// What produced a night.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NightMethod {
    /// Cole-Kripke / Sadeh scoring of minute activity counts.
    #[default]
    Actigraphy,
    /// The user's `sleep_stage` samples.
    Stages,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Night {
    /// YYYY-MM-DD of the noon that starts the window.
    pub date: NaiveDate,
    /// Always [`NightMethod::Actigraphy`] here.
    #[serde(default)]
    pub method: NightMethod,
    pub sadeh_sleep_minutes: usize,
    pub cole_kripke_sleep_minutes: usize,
    pub minutes_present: usize,
}

/// Per-night totals; `sadeh` and `cole_kripke` hold one score per minute of `series`.
pub fn nights(
    series: &MinuteSeries,
    sadeh: &[SleepWake],
    cole_kripke: &[SleepWake],
    clock: ClockOffset,
) -> Vec<Night> {
    let mut out = Vec::new();
    if series.is_empty() {
        return out;
    }
    let since_noon = clock.local_minute(series.start_epoch_minute()) - NOON;
    let day_minutes = DAY_MINUTES as i64;
    let mut day = since_noon.div_euclid(day_minutes);
    let mut minute = since_noon.rem_euclid(day_minutes);
    let mut current = empty_night(day);
    for (s, ck) in sadeh.iter().zip(cole_kripke).take(series.len()) {
        if *s != SleepWake::Missing || *ck != SleepWake::Missing {
            current.minutes_present += 1;
        }
        current.sadeh_sleep_minutes += usize::from(s.is_sleep());
        current.cole_kripke_sleep_minutes += usize::from(ck.is_sleep());
        minute += 1;
        if minute == day_minutes {
            minute = 0;
            day += 1;
            push_if_observed(&mut out, std::mem::replace(&mut current, empty_night(day)));
        }
    }
    push_if_observed(&mut out, current);
    out
}

fn empty_night(epoch_day: i64) -> Night {
    Night {
        date: epoch_date(epoch_day),
        method: NightMethod::Actigraphy,
        sadeh_sleep_minutes: 0,
        cole_kripke_sleep_minutes: 0,
        minutes_present: 0,
    }
}

fn push_if_observed(out: &mut Vec<Night>, night: Night) {
    if night.minutes_present > 0 {
        out.push(night);
    }
}

/// The series constructor keeps every minute a valid chrono instant, so this never falls back.
fn epoch_date(epoch_day: i64) -> NaiveDate {
    epoch_day
        .checked_mul(86_400)
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::sleep::{cole_kripke, sadeh};
    use super::*;

    fn dates(n: &[Night]) -> Vec<String> {
        n.iter().map(|n| n.date.to_string()).collect()
    }

    #[test]
    fn noon_to_noon_windows() {
        // 2024-03-04T00:00Z, 36 h of zero counts (all sleep), 2 h missing in the middle.
        let start = 1_709_510_400_000;
        let mut v = vec![Some(0.0); 36 * 60];
        for x in v.iter_mut().skip(13 * 60).take(120) {
            *x = None;
        }
        let s = MinuteSeries::from_options(start, &v).unwrap();
        let (sd, ck) = (sadeh(&s), cole_kripke(&s));
        let utc = nights(&s, &sd, &ck, ClockOffset::UTC);
        assert_eq!(dates(&utc), ["2024-03-03", "2024-03-04"]);
        assert_eq!(utc[0].minutes_present, 720);
        assert_eq!(utc[0].sadeh_sleep_minutes, 720);
        assert_eq!(utc[1].minutes_present, 1440 - 120);
        // At UTC−5 the first sample is 19:00 on the 3rd: the first night holds 17 h.
        let west = nights(&s, &sd, &ck, ClockOffset::from_minutes(-300).unwrap());
        assert_eq!(dates(&west), ["2024-03-03", "2024-03-04"]);
        assert_eq!(west[0].minutes_present, 17 * 60 - 120);
        assert_eq!(west[0].cole_kripke_sleep_minutes, 17 * 60 - 120);
    }

    #[test]
    fn unobserved_windows_are_left_out() {
        let mut v = vec![None; 3 * DAY_MINUTES];
        v[0] = Some(0.0);
        v[3 * DAY_MINUTES - 1] = Some(0.0);
        let s = MinuteSeries::from_options(0, &v).unwrap();
        let n = nights(&s, &sadeh(&s), &cole_kripke(&s), ClockOffset::UTC);
        assert_eq!(dates(&n), ["1969-12-31", "1970-01-03"]);
    }
}
