//! Actigraphy analytics over a minute series of activity counts: pure functions that
//! reproduce public reference implementations (GGIR, pyActigraphy, CosinorPy, ActiLife via
//! actigraph.sleepr) to the tolerances in `shared/golden/CONVENTIONS.md`.
//!
//! Rules:
//! - Input is a [`MinuteSeries`]: counts plus a presence mask. Missing minutes stay missing:
//!   never read as zero activity, never scored as sleep, left out of every mean and fit.
//! - Anything undefined (too little data, zero variance, a singular fit) is `None`, which
//!   serialises as `null`; no output is NaN or infinite and no input panics.
//! - Clock-based results (L5/M10 starts, acrophase, nights, period times) use
//!   [`AnalysisOptions::clock`], a fixed offset east of UTC (default UTC, as the references).
//! - One pass per analytic, no allocation per minute: a week analyses in well under 1 ms.
//! - [`heart`] is separate: it reads heart-rate, HRV, respiratory and SpO2 readings and the
//!   nights' asleep intervals, not the minute series.
//! - [`AnalysisOptions::signal`] names what the minutes hold. The rhythm measures (IS, IV,
//!   RA, L5/M10, cosinor) run on either signal and name it; the actigraphy sleep scorers
//!   (Cole-Kripke, Sadeh, Tudor-Locke, nights) are defined on minute activity counts only, so
//!   on steps they are not run: their totals are `null`, periods and nights empty, and
//!   `sleep.actigraphy_reason` says why. A minute without steps is not a minute of sleep.
//! - The cosinor is fitted only when the present minutes span at least a day (a whole cycle);
//!   a shorter series has `null` MESOR, amplitude and acrophase.
//! - The cosinor's peak is reported only inside a clock hour with activity (a minute above 0
//!   on some day): a 24 h cosine fitted to part of the day can peak where nothing was
//!   measured, and a clock time there would claim activity the data does not have.

pub mod clock;
pub mod cosinor;
pub mod csv;
pub mod heart;
pub mod nights;
pub mod nonparametric;
pub mod periods;
pub mod series;
pub mod sleep;
pub mod stages;
pub mod steps;

use serde::{Deserialize, Serialize};

pub use csv::{CsvError, parse_minute_csv};
pub use nights::{Night, NightMethod};
pub use periods::{SleepPeriod, TudorLockeParams, tudor_locke};
pub use series::{ClockOffset, MinuteSeries, SeriesError};
pub use sleep::{PerMinute, SleepWake, per_minute, write_per_minute_csv};
pub use stages::{StageNight, StageSpan, stage_nights};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnalysisOptions {
    /// Local clock for clock times and nights.
    pub clock: ClockOffset,
    /// What the minutes hold (activity counts unless told otherwise).
    pub signal: Signal,
}

/// The activity signal a series holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Minute activity counts from an accelerometer (actigraphy).
    #[default]
    ActivityCount,
    /// Steps per minute from a phone or watch step counter.
    StepCount,
}

/// Why actigraphy sleep is not scored on steps (`sleep.actigraphy_reason`).
pub const STEP_SLEEP_REASON: &str = "step data: Cole-Kripke, Sadeh and Tudor-Locke score minute \
activity counts; a minute without steps is not a minute of sleep, so no sleep is scored from steps";

/// Everything `clarity analyze` prints; field names are part of the interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub nonparametric: Nonparametric,
    pub cosinor: Cosinor,
    pub sleep: Sleep,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nonparametric {
    /// The signal the measures ran on.
    #[serde(default)]
    pub signal: Signal,
    /// Interdaily stability within [0, 1], `None` when undefined (see `nonparametric`).
    pub is: Option<f64>,
    /// GGIR `g.IVIS` IS: equal to `is` on complete days, above 1 possible with gaps.
    #[serde(default)]
    pub is_ggir: Option<f64>,
    pub iv: Option<f64>,
    pub ra: Option<f64>,
    pub l5: Option<Window>,
    pub m10: Option<Window>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub mean: f64,
    /// Local clock time of the window's first minute, "HH:MM".
    pub start: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cosinor {
    /// The signal the fit ran on.
    #[serde(default)]
    pub signal: Signal,
    pub mesor: Option<f64>,
    pub amplitude: Option<f64>,
    /// Local clock time of the fitted peak, hours in [0, 24); `None` when it falls in a clock
    /// hour without activity.
    pub acrophase_hours: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sleep {
    /// `None` when the signal is not activity counts.
    pub cole_kripke: Option<SleepTotal>,
    pub sadeh: Option<SleepTotal>,
    /// Tudor-Locke periods on the Sadeh scores.
    pub periods: Vec<Period>,
    pub nights: Vec<Night>,
    /// Why actigraphy sleep was not scored; `None` when it was.
    #[serde(default)]
    pub actigraphy_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SleepTotal {
    pub sleep_minutes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Period {
    /// RFC 3339 in the analysis clock.
    pub in_bed: String,
    /// RFC 3339, exclusive: the first minute out of bed.
    pub out_bed: String,
    pub total_sleep_minutes: usize,
    pub waso_minutes: usize,
    pub efficiency_pct: f64,
    pub awakenings: usize,
}

/// Runs every analytic on `series`.
pub fn analyze(series: &MinuteSeries, options: &AnalysisOptions) -> Analysis {
    let clock = options.clock;
    let isiv = nonparametric::is_iv(series);
    let phase = series.phase_sums();
    let first_clock_minute = series.first_clock_minute(clock);
    let lh = nonparametric::l5_m10_from(&phase, first_clock_minute);
    let window = |w: Option<nonparametric::ActivityWindow>| {
        w.map(|w| Window {
            mean: w.mean,
            start: series::hhmm(w.start_minute),
        })
    };
    // A 24 h cosine fitted to less than a day of data extrapolates over hours never seen (50
    // minutes of steps gave an amplitude four times the MESOR, a curve far below zero): the
    // fit needs present data spanning a whole cycle.
    let present = series.present();
    let span = match (
        present.iter().position(|&p| p),
        present.iter().rposition(|&p| p),
    ) {
        (Some(first), Some(last)) => last - first + 1,
        _ => 0,
    };
    let fit = (span >= series::DAY_MINUTES)
        .then(|| cosinor::cosinor_from(&phase, first_clock_minute))
        .flatten();
    let active = phase.active_clock_hours(first_clock_minute);
    let acrophase = fit
        .and_then(|f| f.acrophase_clock_hours)
        .filter(|h| active[(*h as usize).min(23)]);

    Analysis {
        nonparametric: Nonparametric {
            signal: options.signal,
            is: isiv.is,
            is_ggir: isiv.is_ggir,
            iv: isiv.iv,
            ra: lh.ra,
            l5: window(lh.l5),
            m10: window(lh.m10),
        },
        cosinor: Cosinor {
            signal: options.signal,
            mesor: fit.map(|f| f.mesor),
            amplitude: fit.map(|f| f.amplitude),
            acrophase_hours: acrophase,
        },
        sleep: match options.signal {
            Signal::ActivityCount => actigraphy_sleep(series, clock),
            Signal::StepCount => Sleep {
                cole_kripke: None,
                sadeh: None,
                periods: Vec::new(),
                nights: Vec::new(),
                actigraphy_reason: Some(STEP_SLEEP_REASON.to_owned()),
            },
        },
    }
}

/// Cole-Kripke and Sadeh per minute, Tudor-Locke periods and nights: activity counts only.
fn actigraphy_sleep(series: &MinuteSeries, clock: ClockOffset) -> Sleep {
    let scores = per_minute(series);
    let periods = tudor_locke(series, &scores.sadeh, &TudorLockeParams::default())
        .iter()
        .map(|p| Period {
            in_bed: series.format_minute(p.in_bed, clock),
            out_bed: series.format_minute(p.out_bed, clock),
            total_sleep_minutes: p.total_sleep_minutes,
            waso_minutes: p.wake_after_onset_minutes(),
            efficiency_pct: p.efficiency_pct(),
            awakenings: p.awakenings,
        })
        .collect();
    let nights = nights::nights(series, &scores.sadeh, &scores.cole_kripke, clock);
    Sleep {
        cole_kripke: Some(SleepTotal {
            sleep_minutes: sleep::sleep_minutes(&scores.cole_kripke),
        }),
        sadeh: Some(SleepTotal {
            sleep_minutes: sleep::sleep_minutes(&scores.sadeh),
        }),
        periods,
        nights,
        actigraphy_reason: None,
    }
}

#[cfg(test)]
mod props;
