//! The input of every analytic: one value a minute plus a mask of the minutes present.
//!
//! Rules:
//! - Missing is the mask, never a sentinel value: a missing minute's stored count is 0.0 and
//!   no analytic reads it without checking the mask first.
//! - Present counts are finite and non-negative (activity counts cannot be negative), so the
//!   analytics never meet NaN from their input.
//! - The start is on a whole UTC minute and every minute of the series is a valid chrono
//!   instant, so formatting a minute's time cannot fail later.
//! - Clock times ("clock minute", nights) use a fixed offset east of UTC, default 0: the
//!   reference data is in UTC, the server passes the wearer's local offset.

use std::ops::Range;

use chrono::{DateTime, FixedOffset, Offset, SecondsFormat, Utc};

pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MINUTES: usize = 1440;

/// Why a series was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    #[error("start {0} ms is not on a whole minute")]
    UnalignedStart(i64),
    #[error("counts ({counts}) and present mask ({present}) differ in length")]
    LengthMismatch { counts: usize, present: usize },
    #[error("minute {index}: count {value} is not a finite non-negative number")]
    BadCount { index: usize, value: f64 },
    #[error("the series does not fit the supported time range")]
    OutOfRange,
}

/// Activity counts, one a minute from `start_utc_ms`, with the minutes present.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteSeries {
    start_utc_ms: i64,
    counts: Vec<f64>,
    present: Vec<bool>,
}

impl MinuteSeries {
    /// `counts[i]` is read only where `present[i]`; the others are stored as 0.0.
    pub fn new(
        start_utc_ms: i64,
        mut counts: Vec<f64>,
        present: Vec<bool>,
    ) -> Result<Self, SeriesError> {
        if start_utc_ms.rem_euclid(MINUTE_MS) != 0 {
            return Err(SeriesError::UnalignedStart(start_utc_ms));
        }
        if counts.len() != present.len() {
            return Err(SeriesError::LengthMismatch {
                counts: counts.len(),
                present: present.len(),
            });
        }
        let last_ms = i64::try_from(counts.len())
            .ok()
            .and_then(|n| n.checked_mul(MINUTE_MS))
            .and_then(|span| start_utc_ms.checked_add(span))
            .ok_or(SeriesError::OutOfRange)?;
        if DateTime::from_timestamp_millis(start_utc_ms).is_none()
            || DateTime::from_timestamp_millis(last_ms).is_none()
        {
            return Err(SeriesError::OutOfRange);
        }
        for (index, (c, &p)) in counts.iter_mut().zip(&present).enumerate() {
            if !p {
                *c = 0.0;
            } else if !(c.is_finite() && *c >= 0.0) {
                return Err(SeriesError::BadCount { index, value: *c });
            }
        }
        Ok(MinuteSeries {
            start_utc_ms,
            counts,
            present,
        })
    }

    /// `None` marks a missing minute.
    pub fn from_options(start_utc_ms: i64, values: &[Option<f64>]) -> Result<Self, SeriesError> {
        let counts = values.iter().map(|v| v.unwrap_or(0.0)).collect();
        let present = values.iter().map(Option::is_some).collect();
        Self::new(start_utc_ms, counts, present)
    }

    pub fn start_utc_ms(&self) -> i64 {
        self.start_utc_ms
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Counts with 0.0 at the missing minutes; pair with [`present`](Self::present).
    pub fn counts(&self) -> &[f64] {
        &self.counts
    }

    pub fn present(&self) -> &[bool] {
        &self.present
    }

    pub fn get(&self, minute: usize) -> Option<f64> {
        match self.present.get(minute) {
            Some(true) => self.counts.get(minute).copied(),
            _ => None,
        }
    }

    pub fn n_present(&self) -> usize {
        self.present.iter().filter(|&&p| p).count()
    }

    /// UTC instant of minute `i` (valid for `i <= len()`, checked by the constructor).
    pub fn minute_utc_ms(&self, i: usize) -> i64 {
        let i = i64::try_from(i.min(self.len())).unwrap_or(0);
        self.start_utc_ms + i * MINUTE_MS
    }

    /// Index of the first minute since the Unix epoch, as a signed minute number.
    pub(crate) fn start_epoch_minute(&self) -> i64 {
        self.start_utc_ms.div_euclid(MINUTE_MS)
    }

    /// Maximal runs of consecutive present minutes, in order.
    pub fn present_runs(&self) -> PresentRuns<'_> {
        PresentRuns {
            present: &self.present,
            next: 0,
        }
    }

    /// Sum and number of present counts per minute of phase, i.e. per minute index mod 1440
    /// from the first sample. Missing minutes are stored as 0.0, so the sums need no branch.
    pub fn phase_sums(&self) -> PhaseSums {
        let mut sums = PhaseSums {
            sum: vec![0.0; DAY_MINUTES],
            n: vec![0; DAY_MINUTES],
        };
        for (counts, present) in self
            .counts
            .chunks(DAY_MINUTES)
            .zip(self.present.chunks(DAY_MINUTES))
        {
            let bins = sums.sum.iter_mut().zip(sums.n.iter_mut());
            for ((s, n), (c, p)) in bins.zip(counts.iter().zip(present)) {
                *s += c;
                *n += u32::from(*p);
            }
        }
        sums
    }

    /// Local clock minute of the day of the first sample.
    pub fn first_clock_minute(&self, clock: ClockOffset) -> usize {
        clock.minute_of_day(self.start_epoch_minute())
    }

    /// RFC 3339 time of minute `i` in the given clock (`Z` when the offset is 0).
    pub fn format_minute(&self, i: usize, clock: ClockOffset) -> String {
        let Some(t) = DateTime::<Utc>::from_timestamp_millis(self.minute_utc_ms(i)) else {
            return String::new();
        };
        t.with_timezone(&clock.fixed())
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

/// Per minute of phase (index mod 1440 from the first sample): the sum of the present counts
/// and how many there were. Shared by the average day and the cosinor fit.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSums {
    // Private: always 1440 entries, as built by `MinuteSeries::phase_sums`.
    pub(crate) sum: Vec<f64>,
    pub(crate) n: Vec<u32>,
}

impl PhaseSums {
    /// Per local clock hour (0..24): whether some present minute in it is above 0 on some day.
    /// Phase 0 is at clock minute `first_clock_minute`.
    pub fn active_clock_hours(&self, first_clock_minute: usize) -> [bool; 24] {
        let mut active = [false; 24];
        for (phase, s) in self.sum.iter().enumerate() {
            // Counts are non-negative: a positive sum means a positive minute.
            if *s > 0.0 {
                active[(first_clock_minute + phase) % DAY_MINUTES / 60] = true;
            }
        }
        active
    }
}

/// Iterator over the present runs of a mask.
pub struct PresentRuns<'a> {
    present: &'a [bool],
    next: usize,
}

impl Iterator for PresentRuns<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let rest = self.present.get(self.next..)?;
        let start = self.next + rest.iter().position(|&p| p)?;
        let tail = self.present.get(start..).unwrap_or_default();
        let end = start + tail.iter().position(|&p| !p).unwrap_or(tail.len());
        self.next = end;
        Some(start..end)
    }
}

/// A fixed clock offset, minutes east of UTC, strictly within ±24 h.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ClockOffset(i16);

impl ClockOffset {
    pub const UTC: ClockOffset = ClockOffset(0);

    pub fn from_minutes(minutes: i32) -> Option<ClockOffset> {
        if minutes.abs() < DAY_MINUTES as i32 {
            i16::try_from(minutes).ok().map(ClockOffset)
        } else {
            None
        }
    }

    /// Rounds a client's offset in seconds down to whole minutes (all real offsets are).
    pub fn from_seconds(seconds: i32) -> Option<ClockOffset> {
        Self::from_minutes(seconds.div_euclid(60))
    }

    pub fn minutes(self) -> i32 {
        i32::from(self.0)
    }

    pub(crate) fn fixed(self) -> FixedOffset {
        // In range by construction (|minutes| < 1440); UTC is only a type-level fallback.
        FixedOffset::east_opt(self.minutes() * 60).unwrap_or_else(|| Utc.fix())
    }

    /// Minutes since the epoch in local clock time for a UTC epoch minute.
    pub(crate) fn local_minute(self, utc_epoch_minute: i64) -> i64 {
        utc_epoch_minute + i64::from(self.0)
    }

    /// Minute of the local day, 0..1440.
    pub(crate) fn minute_of_day(self, utc_epoch_minute: i64) -> usize {
        // rem_euclid of a positive modulus is in 0..1440.
        self.local_minute(utc_epoch_minute)
            .rem_euclid(DAY_MINUTES as i64) as usize
    }
}

/// "HH:MM" for a minute of the day.
pub fn hhmm(minute_of_day: usize) -> String {
    let m = minute_of_day % DAY_MINUTES;
    format!("{:02}:{:02}", m / 60, m % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_input() {
        assert_eq!(
            MinuteSeries::new(1, vec![], vec![]),
            Err(SeriesError::UnalignedStart(1))
        );
        assert!(matches!(
            MinuteSeries::new(0, vec![1.0], vec![]),
            Err(SeriesError::LengthMismatch { .. })
        ));
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            assert!(matches!(
                MinuteSeries::new(0, vec![0.0, bad], vec![true, true]),
                Err(SeriesError::BadCount { index: 1, .. })
            ));
        }
        assert_eq!(
            MinuteSeries::new(i64::MAX - i64::MAX % MINUTE_MS, vec![0.0], vec![true]),
            Err(SeriesError::OutOfRange)
        );
    }

    #[test]
    fn missing_values_are_masked_not_read() {
        let s = MinuteSeries::new(0, vec![5.0, f64::NAN, 7.0], vec![true, false, true]).unwrap();
        assert_eq!(s.counts(), &[5.0, 0.0, 7.0]);
        assert_eq!(s.get(1), None);
        assert_eq!(s.get(2), Some(7.0));
        assert_eq!(s.get(3), None);
        assert_eq!(s.n_present(), 2);
    }

    #[test]
    fn runs_of_present_minutes() {
        let s = MinuteSeries::from_options(0, &[None, Some(1.0), Some(2.0), None, None, Some(3.0)])
            .unwrap();
        let runs: Vec<_> = s.present_runs().collect();
        assert_eq!(runs, vec![1..3, 5..6]);
        let none = MinuteSeries::from_options(0, &[None, None]).unwrap();
        assert_eq!(none.present_runs().count(), 0);
    }

    #[test]
    fn clock_offsets() {
        assert_eq!(ClockOffset::from_minutes(1440), None);
        assert_eq!(
            ClockOffset::from_minutes(-1439).map(|c| c.minutes()),
            Some(-1439)
        );
        let c = ClockOffset::from_minutes(120).unwrap();
        assert_eq!(c.minute_of_day(1439), 119);
        assert_eq!(
            ClockOffset::from_minutes(-60).unwrap().minute_of_day(0),
            1380
        );
        let s = MinuteSeries::new(0, vec![0.0], vec![true]).unwrap();
        assert_eq!(s.format_minute(0, c), "1970-01-01T02:00:00+02:00");
        assert_eq!(s.format_minute(1, ClockOffset::UTC), "1970-01-01T00:01:00Z");
        assert_eq!(hhmm(23 * 60 + 54), "23:54");
    }
}
