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
    let value = value.max(0.0);
    let start = start_ms;
    let first = start.div_euclid(MINUTE_MS);
    let end = match end_ms {
        Some(e) if e > start => e,
        _ => return vec![(first, value.round().min(f64::from(u32::MAX)) as u32)],
    };
    let total = (end - start) as f64;
    let mut out = Vec::new();
    let mut done_ms = start;
    let mut given = 0u64;
    let mut minute = first;
    while done_ms < end {
        let stop = ((minute + 1) * MINUTE_MS).min(end);
        let cumulative = (value * ((stop - start) as f64 / total)).round() as u64;
        out.push((
            minute,
            u32::try_from(cumulative - given).unwrap_or(u32::MAX),
        ));
        given = cumulative;
        done_ms = stop;
        minute += 1;
        if out.len() > MAX_SPREAD_MINUTES {
            break;
        }
    }
    out
}
