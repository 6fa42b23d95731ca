//! Single-component 24 h cosinor by ordinary least squares (as CosinorPy `fit_cosinor`).
//!
//! Rules:
//! - y = M + β·cos(2πt/24) + γ·sin(2πt/24), t = hours since the first sample; missing minutes
//!   are left out of the fit (not zero).
//! - MESOR = M, amplitude = √(β² + γ²). The peak is at t = atan2(γ, β)·24/2π (mod 24) hours
//!   after the first sample; `acrophase_clock_hours` adds the first sample's local clock time,
//!   so it is a clock time in [0, 24). The reference inputs start at 00:00 UTC, where the two
//!   coincide; CosinorPy's own `acrophase` (radians, y = M + A·cos(ωt + φ)) is −atan2(γ, β).
//! - cos and sin depend only on t mod 24 h, so present minutes are first summed per minute
//!   of phase ([`PhaseSums`], shared with the average day): 1440 trigonometric evaluations
//!   (cached) whatever the length of the series.
//! - `None` when the normal equations are singular (fewer than three distinct phases) or the
//!   result is not finite; acrophase `None` when the amplitude is zero or below 1e-9 of the
//!   MESOR: a flat series leaves only rounding noise, whose phase means nothing.

use std::f64::consts::PI;
use std::sync::OnceLock;

use super::nonparametric::finite;
use super::series::{ClockOffset, DAY_MINUTES, MinuteSeries, PhaseSums};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosinorFit {
    pub mesor: f64,
    pub amplitude: f64,
    pub acrophase_clock_hours: Option<f64>,
}

/// (cos, sin) of 2πt/24 for t = k/60 hours, k = 0..1440.
fn phase_table() -> &'static [(f64, f64)] {
    static TABLE: OnceLock<Vec<(f64, f64)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..DAY_MINUTES)
            .map(|k| {
                let hours = k as f64 / 60.0;
                let angle = 2.0 * PI * hours / 24.0;
                (angle.cos(), angle.sin())
            })
            .collect()
    })
}

pub fn cosinor(series: &MinuteSeries, clock: ClockOffset) -> Option<CosinorFit> {
    cosinor_from(&series.phase_sums(), series.first_clock_minute(clock))
}

/// [`cosinor`] from per-phase sums; phase 0 (the first sample) is at `first_clock_minute`.
pub fn cosinor_from(sums: &PhaseSums, first_clock_minute: usize) -> Option<CosinorFit> {
    // Normal equations X'X·b = X'y for the columns (1, cos, sin).
    let mut xtx = [[0.0f64; 3]; 3];
    let mut xty = [0.0f64; 3];
    for ((&(c, s), &n), &sy) in phase_table().iter().zip(&sums.n).zip(&sums.sum) {
        if n == 0 {
            continue;
        }
        let n = f64::from(n);
        let row = [1.0, c, s];
        for (i, ri) in row.iter().enumerate() {
            for (j, rj) in row.iter().enumerate() {
                xtx[i][j] += n * ri * rj;
            }
            xty[i] += ri * sy;
        }
    }
    let [mesor, beta, gamma] = solve3(xtx, xty)?;
    let amplitude = finite(beta.hypot(gamma))?;
    let mesor = finite(mesor)?;

    let acrophase_clock_hours = (amplitude > 0.0 && amplitude > 1e-9 * mesor.abs()).then(|| {
        let since_first = gamma.atan2(beta) * 24.0 / (2.0 * PI);
        let first_clock = first_clock_minute as f64 / 60.0;
        let h = (since_first + first_clock).rem_euclid(24.0);
        // rem_euclid can round a tiny negative up to exactly 24.0.
        if h >= 24.0 { 0.0 } else { h }
    });
    Some(CosinorFit {
        mesor,
        amplitude,
        acrophase_clock_hours,
    })
}

/// Gaussian elimination with partial pivoting; `None` if (numerically) singular.
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    let scale = a
        .iter()
        .enumerate()
        .map(|(i, r)| r[i].abs())
        .fold(0.0, f64::max);
    if !(scale > 0.0 && scale.is_finite()) {
        return None;
    }
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= scale * 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..3 {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0f64; 3];
    for row in (0..3).rev() {
        let tail: f64 = (row + 1..3).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(
        start_ms: i64,
        mesor: f64,
        amp: f64,
        peak_since_first_h: f64,
        days: usize,
    ) -> MinuteSeries {
        let v: Vec<Option<f64>> = (0..days * DAY_MINUTES)
            .map(|m| {
                let t = m as f64 / 60.0;
                Some(mesor + amp * (2.0 * PI * (t - peak_since_first_h) / 24.0).cos())
            })
            .collect();
        MinuteSeries::from_options(start_ms, &v).unwrap()
    }

    #[test]
    fn recovers_an_exact_cosine() {
        let f = cosinor(&wave(0, 200.0, 150.0, 15.0, 3), ClockOffset::UTC).unwrap();
        assert!((f.mesor - 200.0).abs() < 1e-9);
        assert!((f.amplitude - 150.0).abs() < 1e-9);
        assert!((f.acrophase_clock_hours.unwrap() - 15.0).abs() < 1e-9);
    }

    #[test]
    fn acrophase_is_a_clock_time() {
        // First sample at 06:00 UTC, peak 9 h later: 15:00 UTC, 17:00 at UTC+2.
        let s = wave(6 * 3_600_000, 200.0, 150.0, 9.0, 2);
        let utc = cosinor(&s, ClockOffset::UTC).unwrap();
        assert!((utc.acrophase_clock_hours.unwrap() - 15.0).abs() < 1e-9);
        let local = cosinor(&s, ClockOffset::from_minutes(120).unwrap()).unwrap();
        assert!((local.acrophase_clock_hours.unwrap() - 17.0).abs() < 1e-9);
    }

    #[test]
    fn degenerate_inputs() {
        let flat = MinuteSeries::from_options(0, &vec![Some(5.0); 2 * DAY_MINUTES]).unwrap();
        let f = cosinor(&flat, ClockOffset::UTC).unwrap();
        assert!((f.mesor - 5.0).abs() < 1e-12);
        assert!(f.amplitude < 1e-12);
        assert_eq!(f.acrophase_clock_hours, None);
        let two = MinuteSeries::from_options(0, &[Some(1.0), Some(2.0)]).unwrap();
        assert_eq!(cosinor(&two, ClockOffset::UTC), None);
        let empty = MinuteSeries::from_options(0, &[]).unwrap();
        assert_eq!(cosinor(&empty, ClockOffset::UTC), None);
    }
}
