//! Sleep periods by Tudor-Locke (ActiLife "Tudor-Locke Default", as actigraph.sleepr 0.2.0
//! `apply_tudor_locke`) on minute scores.
//!
//! Rules:
//! - Runs of equal scores: a W run shorter than `n_wake_time_end` or an S run shorter than
//!   `n_bedtime_start` takes the state of the run before it (after filling); a leading short
//!   run becomes W. Consecutive runs of the same resulting state form one block; S blocks
//!   shorter than `min_sleep_period`, longer than `max_sleep_period` or with fewer than
//!   `min_nonzero_epochs` minutes of non-zero activity are dropped. The rest are periods.
//! - Per period: in_bed = first minute, out_bed = first minute after it (exclusive),
//!   TST = minutes scored S inside, WASO = duration − TST, awakenings = number of W runs
//!   inside (each run of consecutive W minutes is one awakening, whatever its length),
//!   efficiency = 100·TST/duration, ave_awakening = WASO/awakenings (0 without any),
//!   movement index = 100·non-zero minutes/duration, fragmentation index = 100·(1-minute S
//!   runs)/(S runs), sleep fragmentation index = their sum. Activity uses the raw counts.
//! - Missing minutes (score `Missing`) split the scores into independent recordings: a period
//!   never spans a gap, so its TST, WASO and efficiency only count observed minutes.
//!   Without gaps this is exactly the reference.

use super::series::MinuteSeries;
use super::sleep::SleepWake;

/// The reference's parameters; `Default` is ActiLife's "Tudor-Locke Default".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TudorLockeParams {
    pub n_bedtime_start: usize,
    pub n_wake_time_end: usize,
    pub min_sleep_period: usize,
    pub max_sleep_period: usize,
    pub min_nonzero_epochs: usize,
}

impl Default for TudorLockeParams {
    fn default() -> Self {
        TudorLockeParams {
            n_bedtime_start: 5,
            n_wake_time_end: 10,
            min_sleep_period: 160,
            max_sleep_period: 1440,
            min_nonzero_epochs: 0,
        }
    }
}

/// One sleep period; minute indices into the series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SleepPeriod {
    pub in_bed: usize,
    /// Exclusive.
    pub out_bed: usize,
    pub total_sleep_minutes: usize,
    pub awakenings: usize,
    pub activity_counts: f64,
    pub nonzero_epochs: usize,
    pub sleep_bouts: usize,
    pub one_minute_sleep_bouts: usize,
}

impl SleepPeriod {
    pub fn duration_minutes(&self) -> usize {
        self.out_bed.saturating_sub(self.in_bed)
    }

    pub fn wake_after_onset_minutes(&self) -> usize {
        self.duration_minutes()
            .saturating_sub(self.total_sleep_minutes)
    }

    pub fn efficiency_pct(&self) -> f64 {
        pct(self.total_sleep_minutes as f64, self.duration_minutes())
    }

    pub fn ave_awakening_minutes(&self) -> f64 {
        if self.awakenings > 0 {
            self.wake_after_onset_minutes() as f64 / self.awakenings as f64
        } else {
            0.0
        }
    }

    pub fn movement_index(&self) -> f64 {
        pct(self.nonzero_epochs as f64, self.duration_minutes())
    }

    pub fn fragmentation_index(&self) -> f64 {
        pct(self.one_minute_sleep_bouts as f64, self.sleep_bouts)
    }

    pub fn sleep_fragmentation_index(&self) -> f64 {
        self.movement_index() + self.fragmentation_index()
    }
}

/// 100·part/whole, 0 for an empty whole (as the reference's `if_else(dozings > 0, …, 0)`).
fn pct(part: f64, whole: usize) -> f64 {
    if whole > 0 {
        100.0 * part / whole as f64
    } else {
        0.0
    }
}

/// A block of runs with the same filled state, accumulated as runs arrive.
struct Block {
    sleep: bool,
    period: SleepPeriod,
}

/// Tudor-Locke sleep periods on `scores` (one per minute of `series`), in time order.
pub fn tudor_locke(
    series: &MinuteSeries,
    scores: &[SleepWake],
    params: &TudorLockeParams,
) -> Vec<SleepPeriod> {
    let counts = series.counts();
    let mut periods = Vec::new();
    let mut block: Option<Block> = None;
    // Filled state of the previous run of this recording; `None` at a recording's start.
    let mut previous: Option<bool> = None;
    let mut i = 0;
    while let Some(&score) = scores.get(i) {
        let end = i + scores
            .get(i..)
            .unwrap_or_default()
            .iter()
            .position(|&s| s != score)
            .unwrap_or(scores.len() - i);
        if score == SleepWake::Missing {
            flush(block.take(), params, &mut periods);
            previous = None;
            i = end;
            continue;
        }
        let sleep = score == SleepWake::Sleep;
        let len = end - i;
        let run_counts = counts.get(i..end).unwrap_or_default();
        let nonzero = run_counts.iter().filter(|&&c| c > 0.0).count();
        let activity: f64 = run_counts.iter().sum();

        let short = if sleep {
            len < params.n_bedtime_start
        } else {
            len < params.n_wake_time_end
        };
        let state = if short {
            previous.unwrap_or(false)
        } else {
            sleep
        };
        previous = Some(state);
        // The reference counts a long W run as sleep time too, but such a run is never
        // inside an S block, so inside a period this is "minutes scored S".
        let tst = if !sleep && len < params.n_wake_time_end {
            0
        } else {
            len
        };

        if block.as_ref().is_some_and(|b| b.sleep != state) {
            flush(block.take(), params, &mut periods);
        }
        let b = block.get_or_insert(Block {
            sleep: state,
            period: SleepPeriod {
                in_bed: i,
                out_bed: i,
                total_sleep_minutes: 0,
                awakenings: 0,
                activity_counts: 0.0,
                nonzero_epochs: 0,
                sleep_bouts: 0,
                one_minute_sleep_bouts: 0,
            },
        });
        let p = &mut b.period;
        p.out_bed = end;
        p.total_sleep_minutes += tst;
        p.awakenings += usize::from(!sleep);
        p.activity_counts += activity;
        p.nonzero_epochs += nonzero;
        p.sleep_bouts += usize::from(sleep);
        p.one_minute_sleep_bouts += usize::from(sleep && len == 1);
        i = end;
    }
    flush(block, params, &mut periods);
    periods
}

fn flush(block: Option<Block>, params: &TudorLockeParams, periods: &mut Vec<SleepPeriod>) {
    let Some(Block {
        sleep: true,
        period,
    }) = block
    else {
        return;
    };
    let d = period.duration_minutes();
    if d >= params.min_sleep_period
        && d <= params.max_sleep_period
        && period.nonzero_epochs >= params.min_nonzero_epochs
    {
        periods.push(period);
    }
}

#[cfg(test)]
mod tests {
    use super::SleepWake::{Missing, Sleep, Wake};
    use super::*;

    fn scores(spec: &[(SleepWake, usize)]) -> Vec<SleepWake> {
        spec.iter()
            .flat_map(|&(s, n)| std::iter::repeat_n(s, n))
            .collect()
    }

    fn run(spec: &[(SleepWake, usize)], params: &TudorLockeParams) -> Vec<SleepPeriod> {
        let sc = scores(spec);
        let values: Vec<Option<f64>> = sc
            .iter()
            .map(|s| (*s != Missing).then_some(if *s == Wake { 10.0 } else { 0.0 }))
            .collect();
        let series = MinuteSeries::from_options(0, &values).unwrap();
        tudor_locke(&series, &sc, params)
    }

    #[test]
    fn short_runs_take_the_previous_state() {
        let p = TudorLockeParams {
            min_sleep_period: 20,
            ..Default::default()
        };
        // W30 S3 W12 S20 W2 S1 W3 S10 W10: S3 is short → W; the block starts at S20, absorbs
        // W2 S1 W3 S10 and ends at the long W10.
        let got = run(
            &[
                (Wake, 30),
                (Sleep, 3),
                (Wake, 12),
                (Sleep, 20),
                (Wake, 2),
                (Sleep, 1),
                (Wake, 3),
                (Sleep, 10),
                (Wake, 10),
            ],
            &p,
        );
        assert_eq!(got.len(), 1);
        let g = got[0];
        assert_eq!((g.in_bed, g.out_bed), (45, 81));
        assert_eq!(g.total_sleep_minutes, 31);
        assert_eq!(g.wake_after_onset_minutes(), 5);
        assert_eq!(g.awakenings, 2);
        assert_eq!((g.sleep_bouts, g.one_minute_sleep_bouts), (3, 1));
        assert_eq!(g.nonzero_epochs, 5);
        assert!((g.efficiency_pct() - 100.0 * 31.0 / 36.0).abs() < 1e-12);
        assert!((g.ave_awakening_minutes() - 2.5).abs() < 1e-12);
    }

    #[test]
    fn leading_short_sleep_is_wake_and_length_limits_apply() {
        let p = TudorLockeParams::default();
        // S4 is a short leading run → W, so W3 after it fills with W: the period starts at 7.
        let got = run(&[(Sleep, 4), (Wake, 3), (Sleep, 200)], &p);
        assert_eq!((got[0].in_bed, got[0].out_bed), (7, 207));
        assert_eq!(got[0].awakenings, 0);
        assert!(run(&[(Sleep, 159)], &p).is_empty());
        assert_eq!(run(&[(Sleep, 160)], &p).len(), 1);
        assert!(run(&[(Sleep, 1441)], &p).is_empty());
        // A trailing short W run stays inside the period.
        let got = run(&[(Sleep, 200), (Wake, 9)], &p);
        assert_eq!(got[0].out_bed, 209);
    }

    #[test]
    fn gaps_end_periods() {
        let p = TudorLockeParams::default();
        let got = run(&[(Sleep, 170), (Missing, 1), (Sleep, 170)], &p);
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].in_bed, got[1].out_bed), (171, 341));
        // After a gap a short S run is a leading run again: it becomes W.
        let after_gap = run(&[(Sleep, 170), (Missing, 1), (Sleep, 3), (Wake, 1)], &p);
        assert_eq!(after_gap.len(), 1);
    }
}
