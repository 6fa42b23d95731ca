//! Sources and minutes: which source owns a minute, and how an interval sample's value is
//! spread over the minutes it overlaps. One place for the rules the window
//! (`window::series`) and the analytics (`analytics::heart`, `analytics::steps`) share.
//!
//! Rules:
//! - Manual entries first: a sample the user typed in (`provenance.method` = manual) owns the
//!   minutes it covers over every automatically recorded one (the user entered it to correct
//!   or complete what the devices recorded), and the analysis lists it as `manual: true`, so
//!   it is never outranked without saying so. A source's manual entries and its recorded
//!   samples are two sources here.
//! - Rank: then a wearable beats an unnamed source beats a phone; a minute's owner is the
//!   higher rank, then the smaller name (a total order: arrival order never matters).
//! - Spread: in proportion to the overlap, with cumulative rounding so the integer parts add up
//!   to the rounded value.

const MINUTE_MS: i64 = 60_000;
/// Longest spread, minutes (a week): bounds the work one sample can cause.
const MAX_SPREAD_MINUTES: usize = 7 * 1440;

/// Priority of a source for wrist-worn actigraphy: a wearable beats an unnamed source beats a
/// phone (a phone in a pocket or on a desk misses much of the wearer's movement).
pub fn rank(source: &str) -> u8 {
    const WEARABLE: [&str; 12] = [
        "watch",
        "band",
        "wrist",
        "fitbit",
        "garmin",
        "whoop",
        "oura",
        "ring",
        "actigraph",
        "actiwatch",
        "geneactiv",
        "axivity",
    ];
    const PHONE: [&str; 5] = ["phone", "android", "pixel", "galaxy", "mobile"];
    // Case-insensitive substring tests without a lowercased copy: analyses rank sources once
    // per minute of a week, so this runs hundreds of thousands of times a second.
    let has = |needle: &str| {
        source
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    if WEARABLE.iter().any(|w| has(w)) {
        3
    } else if PHONE.iter().any(|p| has(p)) {
        1
    } else {
        2
    }
}

/// Which of two sources owns a minute: the higher is the winner, manual entries first, then
/// by [`rank`], then the smaller name. A total order on (name, manual), so the winner never
/// depends on arrival order. The window's minutes and `analytics::steps` use it.
pub fn minute_priority(source: &str, manual: bool) -> (bool, u8, std::cmp::Reverse<&str>) {
    (manual, rank(source), std::cmp::Reverse(source))
}

/// The source a sample is ranked under: its name (or [`UNNAMED_SOURCE`]) and whether the
/// user typed it in.
pub fn source_of(sample: &crate::samples::Sample) -> (&str, bool) {
    (
        sample.source.as_deref().unwrap_or(UNNAMED_SOURCE),
        sample.is_manual(),
    )
}

/// The name a sample without a `source` is kept under.
pub const UNNAMED_SOURCE: &str = "unspecified";

/// The integer parts of a sample's value per UTC minute it overlaps (`start_ms`, exclusive
/// `end_ms`; a point sample or an empty interval puts it all in its start minute), with
/// cumulative rounding so the parts add up to the rounded value. The window and
/// `analytics::steps` spread step intervals with it.
pub fn spread(start_ms: i64, end_ms: Option<i64>, value: f64) -> Vec<(i64, u32)> {
    spread_iter(start_ms, end_ms, value).collect()
}

/// [`spread`] without the vector: the analytics spread every step sample of a week.
pub fn spread_iter(start_ms: i64, end_ms: Option<i64>, value: f64) -> Spread {
    let value = value.max(0.0);
    let first = start_ms.div_euclid(MINUTE_MS);
    let (end, point) = match end_ms {
        Some(e) if e > start_ms => (e, None),
        _ => (
            start_ms,
            Some((first, value.round().min(f64::from(u32::MAX)) as u32)),
        ),
    };
    Spread {
        start: start_ms,
        end,
        value,
        total: (end - start_ms) as f64,
        done_ms: start_ms,
        given: 0,
        minute: first,
        yielded: 0,
        point,
    }
}

/// The iterator of [`spread_iter`].
pub struct Spread {
    start: i64,
    end: i64,
    value: f64,
    total: f64,
    done_ms: i64,
    given: u64,
    minute: i64,
    yielded: usize,
    /// A point sample (or an empty interval): its one part.
    point: Option<(i64, u32)>,
}

impl Iterator for Spread {
    type Item = (i64, u32);

    fn next(&mut self) -> Option<(i64, u32)> {
        if let Some(p) = self.point.take() {
            self.yielded = usize::MAX;
            return Some(p);
        }
        if self.done_ms >= self.end || self.yielded > MAX_SPREAD_MINUTES {
            return None;
        }
        let stop = ((self.minute + 1) * MINUTE_MS).min(self.end);
        let cumulative = (self.value * ((stop - self.start) as f64 / self.total)).round() as u64;
        let part = (
            self.minute,
            u32::try_from(cumulative - self.given).unwrap_or(u32::MAX),
        );
        self.given = cumulative;
        self.done_ms = stop;
        self.minute += 1;
        self.yielded += 1;
        Some(part)
    }
}
