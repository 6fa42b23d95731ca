//! Minute-by-minute sleep/wake scoring as ActiLife 6 does it (reproduced by actigraph.sleepr
//! 0.2.0): Cole-Kripke 1-min and Sadeh 1-min, both without rescoring.
//!
//! Rules:
//! - Cole-Kripke: c = min(count/100, 300);
//!   D = 0.001·(106c₋₄ + 54c₋₃ + 58c₋₂ + 76c₋₁ + 230c₀ + 74c₊₁ + 67c₊₂); sleep if D < 1.
//! - Sadeh: c = min(count, 300); over the centred 11 minutes the mean and NAT (50 ≤ c < 100),
//!   SD = sample SD (n − 1) of c[t−5..=t], LG = ln(c_t + 1);
//!   PS = 7.601 − 0.065·mean − 1.08·NAT − 0.056·SD − 0.703·LG; sleep if PS > −4.
//! - Both indices are evaluated in the reference's operation order (the Sadeh SD exactly, see
//!   `sample_sd6`), so integer counts give the reference's indices to the last bit or so and
//!   the thresholds fall the same way: the golden cases agree on every minute.
//! - Missing minutes are scored `Missing`, never sleep. The reference pads the recording with
//!   zeros at both ends; it has no notion of a gap (the reference inputs have no missing
//!   minute at all). Here every run of consecutive present minutes is scored exactly as the
//!   reference scores a whole recording: zero padding at the run's edges. So no count from
//!   across a gap enters a window, a gap is treated like the end and start of a recording,
//!   and a series without gaps is scored exactly as the reference scores it.

use std::io::{self, Write};
use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, Utc};

use super::series::MinuteSeries;

/// The score of one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SleepWake {
    Missing,
    Wake,
    Sleep,
}

impl SleepWake {
    pub fn is_sleep(self) -> bool {
        self == SleepWake::Sleep
    }

    /// 1 = sleep, 0 = wake, empty = missing (the reference CSV coding).
    pub fn csv_cell(self) -> &'static str {
        match self {
            SleepWake::Sleep => "1",
            SleepWake::Wake => "0",
            SleepWake::Missing => "",
        }
    }

    fn from_sleep(sleep: bool) -> SleepWake {
        if sleep {
            SleepWake::Sleep
        } else {
            SleepWake::Wake
        }
    }
}

/// Number of minutes scored sleep.
pub fn sleep_minutes(scores: &[SleepWake]) -> usize {
    scores.iter().filter(|s| s.is_sleep()).count()
}

const CK_BEFORE: usize = 4;
const CK_AFTER: usize = 2;
const SADEH_HALF: usize = 5;

/// Cole-Kripke 1-min (ActiLife), one score per minute of the series.
pub fn cole_kripke(series: &MinuteSeries) -> Vec<SleepWake> {
    let mut out = vec![SleepWake::Missing; series.len()];
    let mut buf = Vec::new();
    for run in series.present_runs() {
        let (Some(counts), Some(dst)) = (series.counts().get(run.clone()), out.get_mut(run)) else {
            continue;
        };
        buf.clear();
        buf.extend([0.0; CK_BEFORE]);
        buf.extend(counts.iter().map(|&x| (x / 100.0).min(300.0)));
        buf.extend([0.0; CK_AFTER]);
        for (w, o) in buf.windows(CK_BEFORE + 1 + CK_AFTER).zip(dst) {
            if let &[m4, m3, m2, m1, c0, p1, p2] = w {
                let d = 0.001
                    * (106.0 * m4
                        + 54.0 * m3
                        + 58.0 * m2
                        + 76.0 * m1
                        + 230.0 * c0
                        + 74.0 * p1
                        + 67.0 * p2);
                *o = SleepWake::from_sleep(d < 1.0);
            }
        }
    }
    out
}

/// Sadeh 1-min (ActiLife), one score per minute of the series.
pub fn sadeh(series: &MinuteSeries) -> Vec<SleepWake> {
    const WINDOW: usize = 2 * SADEH_HALF + 1;
    let nat = |c: f64| usize::from((50.0..100.0).contains(&c));
    let ln_table = ln_1p_table();
    let mut out = vec![SleepWake::Missing; series.len()];
    let mut buf = Vec::new();
    for run in series.present_runs() {
        let (Some(counts), Some(dst)) = (series.counts().get(run.clone()), out.get_mut(run)) else {
            continue;
        };
        buf.clear();
        buf.extend([0.0; SADEH_HALF]);
        buf.extend(counts.iter().map(|&x| x.min(300.0)));
        buf.extend([0.0; SADEH_HALF]);
        // Capped counts are at most 300, so sliding sums of integer counts stay exact.
        let mut sum: f64 = buf.iter().take(WINDOW - 1).sum();
        let mut nats: usize = buf.iter().take(WINDOW - 1).map(|&c| nat(c)).sum();
        for (w, o) in buf.windows(WINDOW).zip(dst) {
            let &[w0, w1, w2, w3, w4, c, _, _, _, _, w10] = w else {
                break;
            };
            sum += w10;
            nats += nat(w10);
            let mean = sum / WINDOW as f64;
            let partial = 7.601 - 0.065 * mean - 1.08 * nats as f64;
            // Subtracting the non-negative SD and LG terms can only lower PS (rounding is
            // monotone), so an already low PS is wake without the sqrt and ln.
            let sleep = partial > -4.0 && {
                let sd = sample_sd6([w0, w1, w2, w3, w4, c]);
                let whole = c as usize;
                let lg = match ln_table.get(whole) {
                    Some(&v) if whole as f64 == c => v,
                    _ => (c + 1.0).ln(),
                };
                partial - 0.056 * sd - 0.703 * lg > -4.0
            };
            *o = SleepWake::from_sleep(sleep);
            sum -= w0;
            nats -= nat(w0);
        }
    }
    out
}

/// Sample SD of six values as √((6Σx² − (Σx)²)/30): for integer counts up to 300 every
/// intermediate before the division is an exact integer, so the variance is correctly
/// rounded; the reference's two-pass formula can only differ from it in the last bits.
fn sample_sd6(x: [f64; 6]) -> f64 {
    let s: f64 = x.iter().sum();
    let q: f64 = x.iter().map(|v| v * v).sum();
    ((6.0 * q - s * s) / 30.0).max(0.0).sqrt()
}

/// ln(c + 1) for the integer capped counts 0..=300: the same `ln` calls, made once.
fn ln_1p_table() -> &'static [f64] {
    static TABLE: OnceLock<Vec<f64>> = OnceLock::new();
    TABLE.get_or_init(|| (0..=300).map(|c| (f64::from(c) + 1.0).ln()).collect())
}

/// Both scorings, one entry per minute of the series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerMinute {
    pub cole_kripke: Vec<SleepWake>,
    pub sadeh: Vec<SleepWake>,
}

pub fn per_minute(series: &MinuteSeries) -> PerMinute {
    PerMinute {
        cole_kripke: cole_kripke(series),
        sadeh: sadeh(series),
    }
}

/// `timestamp_utc_iso8601,cole_kripke,sadeh`, one row for every minute of the series
/// (1 = sleep, 0 = wake, empty = missing).
pub fn write_per_minute_csv<W: Write>(series: &MinuteSeries, mut out: W) -> io::Result<()> {
    let scores = per_minute(series);
    writeln!(out, "timestamp_utc_iso8601,cole_kripke,sadeh")?;
    for (i, (ck, sd)) in scores.cole_kripke.iter().zip(&scores.sadeh).enumerate() {
        let t = DateTime::<Utc>::from_timestamp_millis(series.minute_utc_ms(i))
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default();
        writeln!(out, "{t},{},{}", ck.csv_cell(), sd.csv_cell())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::SleepWake::{Missing as M, Sleep as S, Wake as W};
    use super::*;

    fn series(values: &[Option<f64>]) -> MinuteSeries {
        MinuteSeries::from_options(0, values).unwrap()
    }

    #[test]
    fn cole_kripke_window_and_padding() {
        // 230·c₀ alone: c = 434/100 → D = 0.99820 (sleep); 435 → D = 1.0005 (wake).
        assert_eq!(cole_kripke(&series(&[Some(434.0)])), vec![S]);
        assert_eq!(cole_kripke(&series(&[Some(435.0)])), vec![W]);
        let v = [
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(2000.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
        ];
        // Weights seen by minute t for c at t+k: k=+2→67, +1→74, 0→230, −1→76, −2→58, −3→54.
        // 20·weight·0.001 ≥ 1 for every weight ≥ 50: minutes 1..=6 wake, minute 0 (k=+3) sleeps.
        assert_eq!(cole_kripke(&series(&v)), vec![S, W, W, W, W, W, W]);
    }

    #[test]
    fn gaps_split_windows_and_stay_missing() {
        let v = [Some(2000.0), None, Some(0.0), Some(0.0)];
        // Without the gap split minute 2 would see 20·58·0.001 = 1.16 → wake.
        assert_eq!(cole_kripke(&series(&v)), vec![W, M, S, S]);
        assert_eq!(sadeh(&series(&[None, None])), vec![M, M]);
        assert_eq!(sleep_minutes(&[S, M, W, S]), 2);
    }

    #[test]
    fn sadeh_index() {
        // All zero: PS = 7.601 > −4 → sleep; a single huge minute: LG = ln 301 and its
        // neighbours see the mean and SD.
        assert_eq!(sadeh(&series(&[Some(0.0); 3])), vec![S, S, S]);
        let s = sadeh(&series(&[Some(0.0), Some(10_000.0), Some(0.0)]));
        // Minute 1: mean 300/11, SD of (0,0,0,0,0,300) = 122.47, LG 5.707:
        // 7.601 − 1.773 − 0 − 6.859 − 4.012 = −5.04 → wake. Minute 2: SD of (0,0,0,0,300,0)
        // = 122.47, LG 0: PS = −1.03 → sleep.
        assert_eq!(s, vec![S, W, S]);
    }

    #[test]
    fn per_minute_csv() {
        let s = MinuteSeries::from_options(60_000, &[Some(0.0), None]).unwrap();
        let mut out = Vec::new();
        write_per_minute_csv(&s, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "timestamp_utc_iso8601,cole_kripke,sadeh\n\
             1970-01-01T00:01:00Z,1,1\n\
             1970-01-01T00:02:00Z,,\n"
        );
    }
}
