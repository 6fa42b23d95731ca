//! Nights built from `sleep_stage` samples (HealthKit, Health Connect, a watch): pure.
//!
//! Rules:
//! - Minute grid: every count is in whole UTC minutes. A minute belongs to a span when the
//!   span covers the minute's first instant (`start <= minute < end`), so back-to-back spans
//!   never share a minute, a span of whole minutes counts exactly its length, and a span that
//!   covers no minute start (shorter than a minute, inside one) counts nothing. Every time of
//!   a night (bed start, onset, wake...) is a minute boundary.
//! - Nights: the spans of all sources, in time order, form one group while each span starts
//!   at most [`NIGHT_GAP_MINUTES`] (4 h) after the latest end so far; a longer gap starts a new
//!   group. A group with no asleep minute (only `in_bed` / `awake`) tells no sleep and is not
//!   a night. Two groups whose final wakes fall on the same local date (a nap and the night
//!   before it) give the one with more asleep minutes (the earlier on a tie): one night a date.
//! - Source priority: one source stages a night, never a mix. Per group the source that gives
//!   more detail wins: light/deep/REM over only unspecified `asleep`, then the higher device
//!   rank (the caller's `rank`: a watch over an unnamed source over a phone), then more staged
//!   minutes, then the smaller name. `source` names the winner, `sources` every source that
//!   had a span in the group. The only thing taken from the others: their `in_bed` spans mark
//!   time in bed where the winner has no span (an iPhone's bedtime around a watch's stages).
//! - Overlapping spans of one source (HealthKit's `inBed` under the stages, an unspecified
//!   `asleep` with `awake` pieces in it): per minute the more specific statement wins, in this
//!   order: out_of_bed > awake > deep > REM > light > asleep > in_bed.
//! - Per minute of the night, after that: light/deep/REM/asleep are asleep (asleep counts as
//!   `unspecified`); awake, and in bed with no stage, are awake in bed; out_of_bed is neither
//!   (not in bed); a minute no span covers is not recorded and counts nowhere.
//!   in_bed = asleep + awake; asleep = light + deep + rem + unspecified.
//! - sleep_onset = the first asleep minute, final_wake = the end of the last one; bed_start /
//!   bed_end = the first / end of the last minute in bed (asleep or awake); midpoint = halfway
//!   between onset and final wake. Onset latency = awake minutes before onset. WASO (wake
//!   after sleep onset) = the recorded minutes between onset and final wake that are not
//!   asleep: awake in bed *and out of bed* (a bathroom trip is wakefulness, the clinical
//!   convention), so with contiguous stages WASO = final_wake - sleep_onset - asleep; minutes
//!   no span covers count nowhere, WASO included. Awake (in bed) = latency + WASO's in-bed
//!   part + awake after the final wake. Efficiency = asleep / in_bed in percent (one decimal).
//!   An awakening is each change from asleep to awake or out of bed between onset and final
//!   wake (unrecorded minutes are skipped, neither starting nor ending one).
//! - Dates and times: every time is RFC 3339 with the UTC offset of the sample that holds it,
//!   so each reads as the user's clock said then (to bed at 23:20 EDT, up at 06:01 EST on the
//!   night DST ends): bed_start and sleep_onset take the offset of the span holding their
//!   minute (its start offset); final_wake and bed_end, instants that end a minute, take the
//!   end offset of the span holding that last minute when the span ends there, else its start
//!   offset (an instant inside one sample that changes offset takes the sample's start
//!   offset). The midpoint takes the offset of the span holding the minute it falls in, else
//!   (an unrecorded minute) the final wake's. The night's date is the local date of its final
//!   wake (the morning), so nights follow a DST change or a trip.
//! - Asleep intervals: each night also keeps the winner's asleep minutes as runs of UTC
//!   minutes (`asleep_intervals`, not in the document), so heart rate while asleep is measured
//!   over exactly the sleep these nights report.
//!
//! Cost: linear in the minutes the spans cover (a week of nights is ~10^4 minutes a source).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::nights::NightMethod;
use crate::samples::{SleepStage, Timestamp};

/// A longer gap between spans starts a new night.
pub const NIGHT_GAP_MINUTES: i64 = 4 * 60;
const MINUTE_MS: i64 = 60_000;

/// One `sleep_stage` sample.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpan {
    pub start_ms: i64,
    /// Exclusive.
    pub end_ms: i64,
    /// The UTC offset of the sample's start (its local clock then).
    pub offset_secs: i32,
    /// The UTC offset of the sample's end (differs across a DST change inside the sample).
    pub end_offset_secs: i32,
    pub stage: SleepStage,
    /// The sample's source ("unspecified" when it had none).
    pub source: String,
}

/// A night built from stages; field names are part of the analysis document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageNight {
    /// Local date of the final wake.
    pub date: NaiveDate,
    pub method: NightMethod,
    /// The source whose stages the night is built from.
    pub source: String,
    /// Every source with a span in the night, sorted.
    pub sources: Vec<String>,
    pub bed_start: String,
    pub bed_end: String,
    pub sleep_onset: String,
    pub final_wake: String,
    pub midpoint: String,
    pub in_bed_minutes: u32,
    pub asleep_minutes: u32,
    pub awake_minutes: u32,
    pub light_minutes: u32,
    pub deep_minutes: u32,
    pub rem_minutes: u32,
    pub unspecified_minutes: u32,
    pub onset_latency_minutes: u32,
    pub waso_minutes: u32,
    pub efficiency_pct: f64,
    pub awakenings: u32,
    /// The winner's asleep minutes as UTC minute ranges `[first, end)`, in time order; not
    /// part of the document (the heart analytics read it).
    #[serde(skip)]
    pub asleep_intervals: Vec<(i64, i64)>,
}

/// A span on the minute grid: minutes `[first, end)`.
struct GridSpan<'a> {
    first: i64,
    end: i64,
    span: &'a StageSpan,
}

fn ceil_minute(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS) + i64::from(ms.rem_euclid(MINUTE_MS) != 0)
}

/// Which statement wins a minute two spans of one source both cover.
fn precedence(stage: SleepStage) -> u8 {
    match stage {
        SleepStage::InBed => 0,
        SleepStage::Asleep => 1,
        SleepStage::Light => 2,
        SleepStage::Rem => 3,
        SleepStage::Deep => 4,
        SleepStage::Awake => 5,
        SleepStage::OutOfBed => 6,
    }
}

/// The nights in `spans`, in date order. `rank` orders devices (higher wins).
pub fn stage_nights(spans: &[StageSpan], rank: impl Fn(&str) -> u8) -> Vec<StageNight> {
    let mut grid: Vec<GridSpan<'_>> = spans
        .iter()
        .map(|span| GridSpan {
            first: ceil_minute(span.start_ms),
            end: ceil_minute(span.end_ms),
            span,
        })
        .filter(|g| g.end > g.first)
        .collect();
    grid.sort_by_key(|g| (g.first, g.end));
    let mut by_date: BTreeMap<NaiveDate, StageNight> = BTreeMap::new();
    let mut rest = grid.as_slice();
    while let Some(first) = rest.first() {
        let mut end = first.end;
        let mut n = 1;
        while let Some(g) = rest.get(n) {
            if g.first - end > NIGHT_GAP_MINUTES {
                break;
            }
            end = end.max(g.end);
            n += 1;
        }
        let (group, tail) = rest.split_at(n);
        rest = tail;
        if let Some(night) = build(group, first.first, end, &rank) {
            match by_date.get(&night.date) {
                Some(kept) if kept.asleep_minutes >= night.asleep_minutes => {}
                _ => {
                    by_date.insert(night.date, night);
                }
            }
        }
    }
    by_date.into_values().collect()
}

/// One source's minutes of a group: the winning stage and the index (in the group) of the
/// span it comes from, for its offsets.
type Painted = Vec<Option<(SleepStage, usize)>>;

fn paint(group: &[GridSpan<'_>], source: &str, from: i64, len: usize) -> Painted {
    let mut out: Painted = vec![None; len];
    for (k, g) in group
        .iter()
        .enumerate()
        .filter(|(_, g)| g.span.source == source)
    {
        let (a, b) = ((g.first - from) as usize, (g.end - from) as usize);
        for slot in &mut out[a..b] {
            let wins = slot.is_none_or(|(s, _)| precedence(g.span.stage) >= precedence(s));
            if wins {
                *slot = Some((g.span.stage, k));
            }
        }
    }
    out
}

/// Detail level: 2 with light/deep/REM, 1 with unspecified sleep only, 0 without sleep.
fn detail(p: &Painted) -> u8 {
    let mut level = 0;
    for (s, _) in p.iter().flatten() {
        match s {
            SleepStage::Light | SleepStage::Deep | SleepStage::Rem => return 2,
            SleepStage::Asleep => level = 1,
            _ => {}
        }
    }
    level
}

fn build(
    group: &[GridSpan<'_>],
    from: i64,
    to: i64,
    rank: &impl Fn(&str) -> u8,
) -> Option<StageNight> {
    let len = usize::try_from(to - from).ok()?;
    let mut sources: Vec<String> = group.iter().map(|g| g.span.source.clone()).collect();
    sources.sort();
    sources.dedup();
    let (source, mut minutes) = sources
        .iter()
        .map(|s| (s, paint(group, s, from, len)))
        .max_by(|(a, pa), (b, pb)| {
            let key = |p: &Painted| (detail(p), p.iter().flatten().count());
            let (da, na) = key(pa);
            let (db, nb) = key(pb);
            (da, rank(a.as_str()), na)
                .cmp(&(db, rank(b.as_str()), nb))
                .then_with(|| b.cmp(a))
        })?;
    let source = source.clone();
    for (k, g) in group.iter().enumerate() {
        if g.span.source != source && g.span.stage == SleepStage::InBed {
            let (a, b) = ((g.first - from) as usize, (g.end - from) as usize);
            for slot in minutes[a..b].iter_mut().filter(|m| m.is_none()) {
                *slot = Some((SleepStage::InBed, k));
            }
        }
    }
    let asleep_at = |m: &Option<(SleepStage, usize)>| m.is_some_and(|(s, _)| s.is_asleep());
    let onset = minutes.iter().position(asleep_at)?;
    let last = minutes.iter().rposition(asleep_at)?;
    let wake = last + 1;
    let in_bed_at =
        |m: &Option<(SleepStage, usize)>| m.is_some_and(|(s, _)| s != SleepStage::OutOfBed);
    let bed_start = minutes.iter().position(in_bed_at)?;
    let bed_end = minutes.iter().rposition(in_bed_at)? + 1;
    // The offset at the start of minute `i` (recorded), and at the end of minute `i`.
    let start_offset = |i: usize| minutes[i].map(|(_, k)| group[k].span.offset_secs);
    let end_offset = |i: usize| {
        minutes[i].map(|(_, k)| {
            let g = &group[k];
            if g.end == from + i as i64 + 1 {
                g.span.end_offset_secs
            } else {
                g.span.offset_secs
            }
        })
    };

    let mut n = Counts::default();
    let mut was_asleep = false;
    for (i, (stage, _)) in minutes
        .iter()
        .enumerate()
        .filter_map(|(i, m)| Some((i, (*m)?)))
    {
        match stage {
            SleepStage::Light => n.light += 1,
            SleepStage::Deep => n.deep += 1,
            SleepStage::Rem => n.rem += 1,
            SleepStage::Asleep => n.unspecified += 1,
            SleepStage::Awake | SleepStage::InBed => {
                n.awake += 1;
                if i < onset {
                    n.latency += 1;
                } else if i < wake {
                    n.waso += 1;
                }
            }
            SleepStage::OutOfBed => {
                if (onset..wake).contains(&i) {
                    n.waso += 1;
                }
            }
        }
        if (onset..wake).contains(&i) {
            if !stage.is_asleep() && was_asleep {
                n.awakenings += 1;
            }
            was_asleep = stage.is_asleep();
        }
    }
    let asleep = n.light + n.deep + n.rem + n.unspecified;
    let in_bed = asleep + n.awake;
    let at = |i: usize, offset: Option<i32>| Timestamp {
        utc_ms: (from + i as i64) * MINUTE_MS,
        offset_secs: offset.unwrap_or(0),
    };
    let final_wake = at(wake, end_offset(last));
    let (onset_min, wake_min) = (from + onset as i64, from + wake as i64);
    let mid_ms = (onset_min * MINUTE_MS + wake_min * MINUTE_MS) / 2;
    let mid_index = (mid_ms.div_euclid(MINUTE_MS) - from) as usize;
    let midpoint = Timestamp {
        utc_ms: mid_ms,
        offset_secs: start_offset(mid_index).unwrap_or(final_wake.offset_secs),
    };
    let mut asleep_intervals: Vec<(i64, i64)> = Vec::new();
    for i in (onset..wake).filter(|&i| asleep_at(&minutes[i])) {
        let minute = from + i as i64;
        match asleep_intervals.last_mut() {
            Some(run) if run.1 == minute => run.1 += 1,
            _ => asleep_intervals.push((minute, minute + 1)),
        }
    }
    Some(StageNight {
        date: final_wake.to_datetime()?.date_naive(),
        method: NightMethod::Stages,
        source,
        sources,
        bed_start: at(bed_start, start_offset(bed_start)).to_rfc3339(),
        bed_end: at(bed_end, end_offset(bed_end - 1)).to_rfc3339(),
        sleep_onset: at(onset, start_offset(onset)).to_rfc3339(),
        final_wake: final_wake.to_rfc3339(),
        midpoint: midpoint.to_rfc3339(),
        in_bed_minutes: in_bed,
        asleep_minutes: asleep,
        awake_minutes: n.awake,
        light_minutes: n.light,
        deep_minutes: n.deep,
        rem_minutes: n.rem,
        unspecified_minutes: n.unspecified,
        onset_latency_minutes: n.latency,
        waso_minutes: n.waso,
        efficiency_pct: (f64::from(asleep) * 1000.0 / f64::from(in_bed)).round() / 10.0,
        awakenings: n.awakenings,
        asleep_intervals,
    })
}

#[derive(Default)]
struct Counts {
    light: u32,
    deep: u32,
    rem: u32,
    unspecified: u32,
    awake: u32,
    latency: u32,
    waso: u32,
    awakenings: u32,
}

#[cfg(test)]
#[path = "stages_tests.rs"]
mod tests;
