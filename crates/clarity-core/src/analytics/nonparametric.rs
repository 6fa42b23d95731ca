//! Non-parametric rest-activity rhythm measures: IS, IV (GGIR `g.IVIS`), L5, M10, RA
//! (pyActigraphy `_lmx` / `RA` on raw counts).
//!
//! Rules:
//! - IS/IV: hourly bins from the first sample (not from the clock); a bin's value is the mean
//!   of its present minutes and a bin with none is missing, not zero. Hour of day h = bin
//!   index mod 24. Xm is the mean of the hour-of-day means; p (24 in CONVENTIONS.md) is the
//!   number of hours of day with data, which is what GGIR's `length(Xh)` is when a whole hour
//!   of day is absent. IV only sums pairs of adjacent bins that are both present.
//! - IS/IV are `None` with fewer than two present bins, a zero denominator, or (IV) no pair
//!   of adjacent present bins.
//! - Two IS values: `is_ggir` is the formula above, which is the reference's and can exceed 1
//!   once hours are missing (the hours of day are then unevenly weighted: a field trial with
//!   a few missing hours gave 1.016 and 1.058). `is` is the one-way ANOVA form of the same
//!   ratio, Σh nh·(X̄h − X̄)² / Σi (Xi − X̄)² with X̄ the mean of the bins used and nh the bins
//!   of hour of day h, over the hours of day present on at least two days (an hour seen once
//!   has no day-to-day variation to measure and would count only as "stable"). Between-hour
//!   plus within-hour sums of squares make the total, so `is` lies in [0, 1] by construction,
//!   and it equals `is_ggir` whenever every hour of day is present on the same number of days
//!   (complete whole days, as every reference case). `None` with fewer than two such hours of
//!   day or no variance among them.
//! - L5/M10: the average day per local clock minute (mean over days of the present minutes),
//!   windows wrap past midnight, start = first minute of the window, ties go to the earliest
//!   start from 00:00, except that M10 never starts on a minute without activity: its start
//!   moves on past leading zero minutes while the minute entering at the end is zero too
//!   (same sum). Otherwise a short active day (all steps 07:00-15:00) puts the "most active
//!   10 hours" at 05:00, two hours before the first step; the reference cases have no such
//!   tie, so their starts are unchanged. The average day must cover all 1440 clock minutes; otherwise L5, M10
//!   and RA are `None`. Leaving a hole out (or filling it with zero, as pandas' rolling sum
//!   would) changes what "the lowest 5 hours" means, and with full coverage
//!   L5 <= daily mean <= M10, so RA stays in [0, 1].
//! - Window sums slide in O(1440); the float drift of sliding is far below the tie
//!   tolerance (1e-11 of the whole day's sum), so exact ties still go to the earliest start.

use super::series::{ClockOffset, DAY_MINUTES, MinuteSeries, PhaseSums};

const HOUR: usize = 60;
const HOURS_PER_DAY: usize = 24;

/// IS and IV with the number of present hourly bins they were computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IsIv {
    /// Bounded IS: within [0, 1] or `None` (see the module rules).
    pub is: Option<f64>,
    /// GGIR `g.IVIS` IS: the reference value, above 1 possible with missing hours.
    pub is_ggir: Option<f64>,
    pub iv: Option<f64>,
    pub n_hours: usize,
}

/// Interdaily stability and intradaily variability, as GGIR `g.IVIS` (Witting 1990).
pub fn is_iv(series: &MinuteSeries) -> IsIv {
    let counts = series.counts();
    let present = series.present();
    let hourly: Vec<Option<f64>> = counts
        .chunks(HOUR)
        .zip(present.chunks(HOUR))
        .map(|(c, p)| {
            let (sum, n) = c
                .iter()
                .zip(p)
                .filter(|(_, p)| **p)
                .fold((0.0, 0usize), |(s, n), (c, _)| (s + c, n + 1));
            (n > 0).then(|| sum / n as f64)
        })
        .collect();
    let n_hours = hourly.iter().flatten().count();
    let none = IsIv {
        is: None,
        is_ggir: None,
        iv: None,
        n_hours,
    };
    if n_hours < 2 {
        return none;
    }

    let mut hod_sum = [0.0f64; HOURS_PER_DAY];
    let mut hod_n = [0usize; HOURS_PER_DAY];
    for (k, x) in hourly.iter().enumerate() {
        if let Some(x) = x {
            hod_sum[k % HOURS_PER_DAY] += x;
            hod_n[k % HOURS_PER_DAY] += 1;
        }
    }
    let hod_means: Vec<f64> = hod_sum
        .iter()
        .zip(&hod_n)
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| s / *n as f64)
        .collect();
    let p = hod_means.len() as f64;
    let xm = hod_means.iter().sum::<f64>() / p;
    let between: f64 = hod_means.iter().map(|x| (x - xm).powi(2)).sum();
    let total: f64 = hourly.iter().flatten().map(|x| (x - xm).powi(2)).sum();
    if !(total > 0.0 && total.is_finite()) {
        return none;
    }
    let n = n_hours as f64;
    let is_ggir = finite(n * between / (p * total));
    let is = bounded_is(&hourly, &hod_n);

    let (diff_sq, pairs) = hourly
        .windows(2)
        .filter_map(|w| match w {
            [Some(a), Some(b)] => Some((b - a).powi(2)),
            _ => None,
        })
        .fold((0.0, 0usize), |(s, k), d| (s + d, k + 1));
    let iv = if pairs > 0 {
        finite(n * diff_sq / ((n - 1.0) * total))
    } else {
        None
    };
    IsIv {
        is,
        is_ggir,
        iv,
        n_hours,
    }
}

/// The ANOVA form of IS over the hours of day with at least two present bins (module rules).
fn bounded_is(hourly: &[Option<f64>], hod_n: &[usize; HOURS_PER_DAY]) -> Option<f64> {
    let used = |k: usize| hod_n[k % HOURS_PER_DAY] >= 2;
    let bins = || {
        hourly
            .iter()
            .enumerate()
            .filter_map(|(k, x)| x.filter(|_| used(k)).map(|x| (k % HOURS_PER_DAY, x)))
    };
    let mut sum = [0.0f64; HOURS_PER_DAY];
    let (mut grand, mut n) = (0.0, 0usize);
    for (h, x) in bins() {
        sum[h] += x;
        grand += x;
        n += 1;
    }
    let hours = hod_n.iter().filter(|&&c| c >= 2).count();
    if hours < 2 || n == 0 {
        return None;
    }
    let mean = grand / n as f64;
    let total: f64 = bins().map(|(_, x)| (x - mean).powi(2)).sum();
    if !(total > 0.0 && total.is_finite()) {
        return None;
    }
    let between: f64 = (0..HOURS_PER_DAY)
        .filter(|&h| hod_n[h] >= 2)
        .map(|h| {
            let nh = hod_n[h] as f64;
            nh * (sum[h] / nh - mean).powi(2)
        })
        .sum();
    // In [0, 1] in exact arithmetic; the clamp only absorbs rounding (an ulp above 1).
    finite(between / total).map(|is| is.clamp(0.0, 1.0))
}

/// The lowest or highest mean window of the average day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivityWindow {
    pub mean: f64,
    /// Local clock minute of the window's first minute, 0..1440.
    pub start_minute: usize,
}

/// L5, M10 and RA; all `None` unless the average day covers every clock minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LowHigh {
    pub l5: Option<ActivityWindow>,
    pub m10: Option<ActivityWindow>,
    pub ra: Option<f64>,
}

/// The average day: mean count per local clock minute, `None` if any clock minute has no data.
pub fn average_day(series: &MinuteSeries, clock: ClockOffset) -> Option<Vec<f64>> {
    average_day_from(&series.phase_sums(), series.first_clock_minute(clock))
}

/// The average day from per-phase sums; phase 0 is at clock minute `first_clock_minute`.
pub fn average_day_from(sums: &PhaseSums, first_clock_minute: usize) -> Option<Vec<f64>> {
    let mut day = vec![0.0; DAY_MINUTES];
    let mut clock_minute = first_clock_minute % DAY_MINUTES;
    for (s, &n) in sums.sum.iter().zip(&sums.n) {
        if n == 0 {
            return None;
        }
        *day.get_mut(clock_minute)? = s / f64::from(n);
        clock_minute += 1;
        if clock_minute == DAY_MINUTES {
            clock_minute = 0;
        }
    }
    Some(day)
}

/// L5 (lowest 5 h), M10 (highest 10 h) and RA = (M10 − L5) / (M10 + L5).
pub fn l5_m10(series: &MinuteSeries, clock: ClockOffset) -> LowHigh {
    l5_m10_from(&series.phase_sums(), series.first_clock_minute(clock))
}

/// [`l5_m10`] from per-phase sums (see [`average_day_from`]).
pub fn l5_m10_from(sums: &PhaseSums, first_clock_minute: usize) -> LowHigh {
    let Some(day) = average_day_from(sums, first_clock_minute) else {
        return LowHigh {
            l5: None,
            m10: None,
            ra: None,
        };
    };
    let l5 = extreme_window(&day, 5 * HOUR, false);
    let m10 = extreme_window(&day, 10 * HOUR, true);
    let ra = match (l5, m10) {
        (Some(l), Some(m)) if m.mean + l.mean > 0.0 => {
            finite((m.mean - l.mean) / (m.mean + l.mean))
        }
        _ => None,
    };
    LowHigh { l5, m10, ra }
}

/// The window of `len` minutes (wrapping) with the lowest or highest sum; earliest start on ties.
fn extreme_window(day: &[f64], len: usize, highest: bool) -> Option<ActivityWindow> {
    let n = day.len();
    if n == 0 || len == 0 || len > n {
        return None;
    }
    let whole: f64 = day.iter().sum();
    // Counts are non-negative: a finite whole day bounds every window and keeps sliding exact
    // enough; an overflowed one would turn the sliding sum into NaN.
    if !whole.is_finite() {
        return None;
    }
    let tol = whole.abs() * 1e-11;
    let mut sum: f64 = day.iter().take(len).sum();
    let mut best = (sum, 0usize);
    // Index of the minute entering the window, wrapped by hand (a `%` a step costs more
    // than the rest of the loop).
    let mut entering_at = len;
    for (start, &leaving) in (1..n).zip(day) {
        if entering_at == n {
            entering_at = 0;
        }
        let entering = day.get(entering_at).copied().unwrap_or(0.0);
        entering_at += 1;
        sum += entering - leaving;
        let better = if highest {
            sum > best.0 + tol
        } else {
            sum < best.0 - tol
        };
        if better {
            best = (sum, start);
        }
    }
    let mut start = best.1;
    if highest {
        // Sliding on past a zero leading minute while a zero enters keeps the sum exactly.
        for _ in 0..n {
            let leading = day.get(start).copied().unwrap_or(0.0);
            let entering = day.get((start + len) % n).copied().unwrap_or(0.0);
            if leading != 0.0 || entering != 0.0 {
                break;
            }
            start = (start + 1) % n;
        }
    }
    finite(best.0 / len as f64).map(|mean| ActivityWindow {
        mean,
        start_minute: start,
    })
}

pub(crate) fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[Option<f64>]) -> MinuteSeries {
        MinuteSeries::from_options(0, values).unwrap()
    }

    #[test]
    fn is_iv_of_a_perfect_square_wave() {
        // Two identical days, active 12 h then at rest 12 h: IS = 1.
        let day: Vec<Option<f64>> = (0..DAY_MINUTES)
            .map(|m| Some(if m < 720 { 100.0 } else { 0.0 }))
            .collect();
        let two = series(&[day.clone(), day].concat());
        let r = is_iv(&two);
        assert_eq!(r.n_hours, 48);
        assert!((r.is.unwrap() - 1.0).abs() < 1e-12);
        // Three transitions of 100² over total Σ(x−50)² = 48·2500.
        let expected_iv = 48.0 * 3.0 * 10_000.0 / (47.0 * 48.0 * 2500.0);
        assert!((r.iv.unwrap() - expected_iv).abs() < 1e-12);
    }

    #[test]
    fn missing_hours_are_left_out_not_zero() {
        let mut v: Vec<Option<f64>> = (0..3 * HOUR).map(|m| Some((m / HOUR) as f64)).collect();
        // Hour 1 missing entirely: bins are 0, missing, 2; no adjacent pair survives.
        for x in v.iter_mut().skip(HOUR).take(HOUR) {
            *x = None;
        }
        let r = is_iv(&series(&v));
        assert_eq!(r.n_hours, 2);
        assert_eq!(r.iv, None);
        assert!(r.is_ggir.is_some());
        // Every hour of day seen once: no day-to-day variation to measure.
        assert_eq!(r.is, None);
    }

    #[test]
    fn constant_series_is_undefined() {
        let r = is_iv(&series(&vec![Some(3.0); 5 * HOUR]));
        assert_eq!((r.is, r.iv), (None, None));
        let lh = l5_m10(&series(&vec![Some(0.0); DAY_MINUTES]), ClockOffset::UTC);
        assert_eq!(lh.l5.unwrap().start_minute, 0);
        assert_eq!(lh.m10.unwrap().start_minute, 0);
        assert_eq!(lh.ra, None);
    }

    #[test]
    fn windows_wrap_and_follow_the_clock() {
        // Rest from 22:00 to 03:00 UTC.
        let v: Vec<Option<f64>> = (0..DAY_MINUTES)
            .map(|m| Some(if !(180..1320).contains(&m) { 0.0 } else { 50.0 }))
            .collect();
        let s = series(&v);
        let lh = l5_m10(&s, ClockOffset::UTC);
        assert_eq!(lh.l5.unwrap().start_minute, 1320);
        assert_eq!(lh.l5.unwrap().mean, 0.0);
        assert_eq!(lh.ra, Some(1.0));
        // The same data seen from UTC+2: rest starts at 00:00 local.
        let local = l5_m10(&s, ClockOffset::from_minutes(120).unwrap());
        assert_eq!(local.l5.unwrap().start_minute, 0);
        // M10 ties everywhere inside the active block: the earliest start wins.
        assert_eq!(lh.m10.unwrap().start_minute, 180);
    }

    #[test]
    fn m10_of_a_short_active_day_starts_with_the_first_activity() {
        // Steps from 07:00 to 15:00 only: every 10 h window holding them ties. The earliest
        // (05:00) would claim the most active hours began two hours before the first step.
        let v: Vec<Option<f64>> = (0..2 * DAY_MINUTES)
            .map(|m| {
                Some(if (420..900).contains(&(m % DAY_MINUTES)) {
                    80.0
                } else {
                    0.0
                })
            })
            .collect();
        let lh = l5_m10(&series(&v), ClockOffset::UTC);
        assert_eq!(lh.m10.unwrap().start_minute, 420);
        assert_eq!(lh.m10.unwrap().mean, 80.0 * 480.0 / 600.0);
        // L5 keeps the reference's tie rule: the earliest quiet start from 00:00.
        assert_eq!(lh.l5.unwrap().start_minute, 0);
    }

    #[test]
    fn incomplete_average_day_gives_no_l5() {
        let s = series(&vec![Some(1.0); DAY_MINUTES - 1]);
        assert_eq!(l5_m10(&s, ClockOffset::UTC).l5, None);
    }
}
