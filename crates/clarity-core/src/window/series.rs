//! One user's last week of minute bins, in a fixed ring of 10,080 slots.
//!
//! Rules:
//! - Bins are indexed by event time (UTC minute), never arrival time; the ring's end is the
//!   latest minute seen, and a minute older than a week before it is not kept (it is still in
//!   the store).
//! - Two sources are never summed in one minute: the minute belongs to the source with the
//!   higher [`minute_priority`] (manual entries, then [`rank`]; a tie goes to the smaller
//!   name, so arrival order does not matter); a source's own samples in that minute add up. A
//!   source's manual entries are a source of their own (slot key: name and manual).
//! - Activity comes from `activity_count`; `step_count` fills in only while the window has no
//!   activity counts, and is dropped the moment the first activity count arrives.
//! - Interval samples are spread over the minutes they overlap, in proportion to the overlap,
//!   with cumulative rounding so the integer bins add up to the sample's value.
//! - Coverage of steps: a step counter records only while its wearer moves, so a minute
//!   without steps inside an hour the source was recording is 0 steps, not missing. Rule: a
//!   UTC clock hour (the local clock hour for whole-hour offsets) is *recording* when a step
//!   source (a source that sent `step_count` in this window) sent any sample of any kind that
//!   overlaps it: steps, heart rate, sleep stages, anything. In those hours a minute without
//!   steps reads 0; in the other hours it stays missing (the phone may have been off, or left
//!   nowhere near the wearer). Activity counts are continuous: there no minute is filled.
//!   The marks are [`HourMarks`], which do not depend on arrival order.
//! - Compact: 6 bytes a minute (activity u16, heart-rate sum u16 and count u8, sources u8):
//!   60,480 bytes for a week, allocated with the first sample; 1,352 bytes of hour marks.

use super::coverage::HourMarks;
use crate::samples::{Kind, Sample};
// The source order and the spread live with the samples, so that the analytics use them
// without depending on the window.
pub use crate::samples::sources::{UNNAMED_SOURCE, minute_priority, rank, source_of, spread};

pub const WINDOW_MINUTES: usize = 7 * 1440;
const MINUTE_MS: i64 = 60_000;
/// Source slots 1..=15 fit in a nibble; 0 means "no data".
const MAX_SOURCES: usize = 15;
/// Heart-rate samples averaged per minute at most (keeps the u16 sum from overflowing).
const MAX_HR_PER_MINUTE: u8 = 200;

/// Where the activity series comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    ActivityCount,
    StepCount,
}

pub struct Series {
    /// Exclusive end of the window in UTC minutes since the epoch; `None` while empty.
    end: Option<i64>,
    act: Box<[u16]>,
    hr_sum: Box<[u16]>,
    hr_n: Box<[u8]>,
    /// Low nibble: activity source slot; high nibble: heart-rate source slot.
    src: Box<[u8]>,
    /// Per slot: the source's name and whether these are its manual entries.
    sources: Vec<(String, bool)>,
    activity_kind: Option<ActivityKind>,
    /// UTC offset of the latest sample: the user's local clock.
    offset_secs: i32,
    /// Per UTC hour: which source slots sent a sample overlapping it.
    hours: HourMarks,
    /// A bit per source slot that sent `step_count`.
    step_sources: u16,
}

/// What the coverage rule did over a range of minutes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Clock hours (whole or partly in the range) counted as recording by a step source.
    pub recording_hours: usize,
    /// Minutes without a step sample read as 0 because their hour was recording.
    pub filled_minutes: usize,
}

impl Default for Series {
    fn default() -> Self {
        Series::new()
    }
}

impl Series {
    pub fn new() -> Series {
        Series {
            end: None,
            // Allocated with the first sample: a user who connects without sending activity
            // or heart rate costs a few bytes, not a week of bins.
            act: Box::default(),
            hr_sum: Box::default(),
            hr_n: Box::default(),
            src: Box::default(),
            sources: Vec::new(),
            activity_kind: None,
            offset_secs: 0,
            hours: HourMarks::default(),
            step_sources: 0,
        }
    }

    /// Heap and inline bytes this window holds.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Series>()
            + self.act.len() * 2
            + self.hr_sum.len() * 2
            + self.hr_n.len()
            + self.src.len()
            + self.hours.memory_bytes()
            + self
                .sources
                .iter()
                .map(|(s, _)| s.capacity() + 32)
                .sum::<usize>()
    }

    pub fn end_minute(&self) -> Option<i64> {
        self.end
    }

    pub fn offset_secs(&self) -> i32 {
        self.offset_secs
    }

    pub fn activity_kind(&self) -> Option<ActivityKind> {
        self.activity_kind
    }

    pub fn sources(&self) -> &[(String, bool)] {
        &self.sources
    }

    /// Adds one stored sample. Activity and heart rate fill minutes; every sample, of any
    /// kind, marks its source's hours as recording.
    pub fn add(&mut self, sample: &Sample) {
        self.add_within(sample, None);
    }

    /// [`Series::add`] of only what falls in the minutes `[from, to)` (UTC, whole hours):
    /// how a repair refills a range that [`Series::clear`] emptied, from every stored sample
    /// overlapping it, without counting their minutes outside it a second time.
    pub fn add_clipped(&mut self, sample: &Sample, from: i64, to: i64) {
        self.add_within(sample, Some((from, to)));
    }

    /// Empties the minutes `[from, to)` (UTC, whole hours) and the recording marks of their
    /// hours. The source list, the step sources and the activity kind stay as they are.
    pub fn clear(&mut self, from: i64, to: i64) {
        for m in from..to {
            if self.in_window(m) {
                let i = index(m);
                self.act[i] = 0;
                self.hr_sum[i] = 0;
                self.hr_n[i] = 0;
                self.src[i] = 0;
            }
        }
        self.hours.clear(from.div_euclid(60), to.div_euclid(60));
    }

    fn add_within(&mut self, sample: &Sample, clip: Option<(i64, i64)>) {
        let inside = |minute: i64| clip.is_none_or(|(from, to)| (from..to).contains(&minute));
        if let Some(slot) = self.source_slot(source_of(sample)) {
            let (start, end) = (
                sample.start.utc_ms,
                sample.end.map_or(sample.start.utc_ms, |e| e.utc_ms),
            );
            match clip {
                None => self.hours.mark(start, end, slot),
                // An interval marks the hours of its part inside; an instant its own hour.
                Some((from, to)) if end > start => {
                    let (start, end) = (start.max(from * MINUTE_MS), end.min(to * MINUTE_MS));
                    if start < end {
                        self.hours.mark(start, end, slot);
                    }
                }
                Some(_) if inside(start.div_euclid(MINUTE_MS)) => {
                    self.hours.mark(start, end, slot);
                }
                Some(_) => {}
            }
        }
        let activity = match sample.kind {
            Kind::ActivityCount => {
                if self.activity_kind == Some(ActivityKind::StepCount) {
                    self.act.fill(0);
                    for s in self.src.iter_mut() {
                        *s &= 0xF0;
                    }
                }
                self.activity_kind = Some(ActivityKind::ActivityCount);
                true
            }
            Kind::StepCount => {
                if self.activity_kind == Some(ActivityKind::ActivityCount) {
                    return;
                }
                self.activity_kind = Some(ActivityKind::StepCount);
                if let Some(slot) = self.source_slot(source_of(sample)) {
                    self.step_sources |= 1 << slot;
                }
                true
            }
            Kind::HeartRate => false,
            _ => return,
        };
        let first = sample.start.utc_ms.div_euclid(MINUTE_MS);
        // An interval's end is exclusive: 08:00-08:15 covers minutes up to 08:14.
        let last_ms = match sample.end {
            Some(e) if e.utc_ms > sample.start.utc_ms => e.utc_ms - 1,
            _ => sample.start.utc_ms,
        };
        self.advance(last_ms.div_euclid(MINUTE_MS) + 1, sample.start.offset_secs);
        let Some(slot) = self.source_slot(source_of(sample)) else {
            return;
        };
        if activity {
            let end = sample.end.map(|e| e.utc_ms);
            for (minute, part) in spread(sample.start.utc_ms, end, sample.value) {
                if inside(minute) {
                    self.put_activity(minute, part, slot);
                }
            }
        } else if inside(first) {
            self.put_hr(first, sample.value, slot);
        }
    }

    fn advance(&mut self, new_end: i64, offset_secs: i32) {
        let Some(end) = self.end else {
            // Every bin access is behind `in_window`, which needs `end`: allocate with it.
            self.act = vec![0; WINDOW_MINUTES].into_boxed_slice();
            self.hr_sum = vec![0; WINDOW_MINUTES].into_boxed_slice();
            self.hr_n = vec![0; WINDOW_MINUTES].into_boxed_slice();
            self.src = vec![0; WINDOW_MINUTES].into_boxed_slice();
            self.end = Some(new_end);
            self.offset_secs = offset_secs;
            return;
        };
        if new_end <= end {
            return;
        }
        self.offset_secs = offset_secs;
        let gap = new_end - end;
        if gap >= WINDOW_MINUTES as i64 {
            self.act.fill(0);
            self.hr_sum.fill(0);
            self.hr_n.fill(0);
            self.src.fill(0);
        } else {
            for m in end..new_end {
                let i = index(m);
                self.act[i] = 0;
                self.hr_sum[i] = 0;
                self.hr_n[i] = 0;
                self.src[i] = 0;
            }
        }
        self.end = Some(new_end);
    }

    /// Whether a step source was recording in UTC hour `hour` (coverage rule).
    fn recording(&self, hour: i64) -> bool {
        self.hours.sources(hour) & self.step_sources != 0
    }

    /// The value of a minute in the window: its activity, 0 for a step minute without
    /// steps in a recording hour, else missing.
    fn activity_at(&self, m: i64) -> Option<f64> {
        if !self.in_window(m) {
            return None;
        }
        let i = index(m);
        if self.src[i] & 0x0F != 0 {
            Some(f64::from(self.act[i]))
        } else if self.activity_kind == Some(ActivityKind::StepCount)
            && self.recording(m.div_euclid(60))
        {
            Some(0.0)
        } else {
            None
        }
    }

    /// What the coverage rule counted over `[from, to)` (UTC minutes).
    pub fn coverage(&self, from: i64, to: i64) -> Coverage {
        let mut c = Coverage::default();
        if self.activity_kind != Some(ActivityKind::StepCount) || from >= to {
            return c;
        }
        for hour in from.div_euclid(60)..=(to - 1).div_euclid(60) {
            if self.recording(hour) {
                c.recording_hours += 1;
            }
        }
        for m in from..to {
            if self.in_window(m)
                && self.src[index(m)] & 0x0F == 0
                && self.recording(m.div_euclid(60))
            {
                c.filled_minutes += 1;
            }
        }
        c
    }

    fn in_window(&self, minute: i64) -> bool {
        self.end
            .is_some_and(|end| minute < end && minute >= end - WINDOW_MINUTES as i64)
    }

    fn source_slot(&mut self, (name, manual): (&str, bool)) -> Option<u8> {
        if let Some(i) = self
            .sources
            .iter()
            .position(|(s, m)| s == name && *m == manual)
        {
            return Some(i as u8 + 1);
        }
        if self.sources.len() >= MAX_SOURCES {
            return None;
        }
        self.sources.push((name.to_owned(), manual));
        Some(self.sources.len() as u8)
    }

    /// Whether `incoming` may write a minute now held by `current` (0 = nobody).
    fn wins(&self, incoming: u8, current: u8) -> bool {
        if current == 0 || current == incoming {
            return true;
        }
        let key = |slot: u8| {
            let (name, manual) = &self.sources[usize::from(slot) - 1];
            minute_priority(name, *manual)
        };
        key(incoming) > key(current)
    }

    fn put_activity(&mut self, minute: i64, value: u32, slot: u8) {
        if !self.in_window(minute) {
            return;
        }
        let i = index(minute);
        let current = self.src[i] & 0x0F;
        if !self.wins(slot, current) {
            return;
        }
        let base = if current == slot { self.act[i] } else { 0 };
        self.act[i] = u16::try_from(u32::from(base) + value).unwrap_or(u16::MAX);
        self.src[i] = (self.src[i] & 0xF0) | slot;
    }

    fn put_hr(&mut self, minute: i64, bpm: f64, slot: u8) {
        if !self.in_window(minute) || !(0.0..=300.0).contains(&bpm) {
            return;
        }
        let i = index(minute);
        let current = self.src[i] >> 4;
        if !self.wins(slot, current) {
            return;
        }
        if current != slot {
            self.hr_sum[i] = 0;
            self.hr_n[i] = 0;
        }
        if self.hr_n[i] >= MAX_HR_PER_MINUTE {
            return;
        }
        self.hr_sum[i] += bpm.round() as u16;
        self.hr_n[i] += 1;
        self.src[i] = (self.src[i] & 0x0F) | (slot << 4);
    }

    /// Activity per minute over `[from, to)` (UTC minutes), `None` where missing; step minutes
    /// follow the coverage rule (module rules).
    pub fn activity(&self, from: i64, to: i64) -> impl Iterator<Item = Option<f64>> + '_ {
        (from..to).map(move |m| self.activity_at(m))
    }

    /// Mean heart rate per minute over `[from, to)`, `None` where missing.
    pub fn heart_rate(&self, from: i64, to: i64) -> impl Iterator<Item = Option<f64>> + '_ {
        (from..to).map(move |m| {
            let i = index(m);
            (self.in_window(m) && self.hr_n[i] > 0)
                .then(|| f64::from(self.hr_sum[i]) / f64::from(self.hr_n[i]))
        })
    }

    /// Minutes of activity per source slot name over `[from, to)`.
    pub fn activity_minutes_by_source(&self, from: i64, to: i64) -> Vec<(String, bool, usize)> {
        let mut counts = vec![0usize; self.sources.len() + 1];
        for m in from..to {
            if self.in_window(m) {
                counts[usize::from(self.src[index(m)] & 0x0F)] += 1;
            }
        }
        self.sources
            .iter()
            .zip(&counts[1..])
            .filter(|(_, n)| **n > 0)
            .map(|((s, manual), n)| (s.clone(), *manual, *n))
            .collect()
    }
}

fn index(minute: i64) -> usize {
    minute.rem_euclid(WINDOW_MINUTES as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::Timestamp;

    const T0: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z

    fn s(kind: Kind, minute: i64, value: f64, source: Option<&str>) -> Sample {
        Sample {
            version: None,
            id: format!("{minute}"),
            kind,
            start: Timestamp {
                utc_ms: T0 + minute * MINUTE_MS,
                offset_secs: 0,
            },
            end: None,
            value,
            source: source.map(str::to_owned),
            extra: None,
        }
    }

    fn activity(w: &Series, from: i64, to: i64) -> Vec<Option<f64>> {
        let base = T0 / MINUTE_MS;
        w.activity(base + from, base + to).collect()
    }

    #[test]
    fn sources_are_never_summed_and_the_wearable_wins_in_any_order() {
        for watch_first in [true, false] {
            let mut w = Series::new();
            let watch = s(Kind::ActivityCount, 1, 10.0, Some("Pixel Watch"));
            let phone = s(Kind::ActivityCount, 1, 1000.0, Some("Pixel 9 phone"));
            let (a, b) = if watch_first {
                (&watch, &phone)
            } else {
                (&phone, &watch)
            };
            w.add(a);
            w.add(b);
            assert_eq!(
                activity(&w, 1, 2),
                [Some(10.0)],
                "watch first: {watch_first}"
            );
        }
        // One source's samples in the same minute add up.
        let mut w = Series::new();
        w.add(&s(Kind::ActivityCount, 1, 10.0, Some("band")));
        w.add(&s(Kind::ActivityCount, 1, 5.0, Some("band")));
        assert_eq!(activity(&w, 1, 2), [Some(15.0)]);
    }

    #[test]
    fn a_manual_entry_wins_its_minutes_over_recorded_sources_in_any_order() {
        use crate::samples::provenance::{Provenance, RecordingMethod};
        for manual_first in [true, false] {
            let mut w = Series::new();
            let watch = s(Kind::ActivityCount, 1, 10.0, Some("Pixel Watch"));
            let mut typed = s(Kind::ActivityCount, 1, 500.0, Some("Pixel Watch"));
            typed.extra = Some(Box::new(crate::samples::Extra {
                provenance: Some(Provenance {
                    method: Some(RecordingMethod::Manual),
                    ..Provenance::default()
                }),
                ..Default::default()
            }));
            let (a, b) = if manual_first {
                (&typed, &watch)
            } else {
                (&watch, &typed)
            };
            w.add(a);
            w.add(b);
            assert_eq!(activity(&w, 1, 2), vec![Some(500.0)], "{manual_first}");
            let base = T0 / MINUTE_MS;
            assert_eq!(
                w.activity_minutes_by_source(base, base + 2),
                vec![("Pixel Watch".to_owned(), true, 1)],
                "{manual_first}"
            );
        }
    }

    #[test]
    fn intervals_spread_in_proportion_and_keep_their_total() {
        let mut w = Series::new();
        let mut steps = s(Kind::StepCount, 0, 100.0, None);
        // 00:00:30 to 00:03:30: half, full, full, half minutes.
        steps.start.utc_ms += 30_000;
        steps.end = Some(Timestamp {
            utc_ms: T0 + 3 * MINUTE_MS + 30_000,
            offset_secs: 0,
        });
        w.add(&steps);
        let got: Vec<f64> = activity(&w, 0, 4).into_iter().map(|v| v.unwrap()).collect();
        assert_eq!(got.iter().sum::<f64>(), 100.0);
        assert_eq!(got, [17.0, 33.0, 33.0, 17.0]);
        assert_eq!(w.end_minute(), Some(T0 / MINUTE_MS + 4));
    }

    #[test]
    fn late_samples_land_in_their_minute_and_old_ones_fall_off() {
        let mut w = Series::new();
        w.add(&s(Kind::ActivityCount, 5000, 1.0, None));
        w.add(&s(Kind::ActivityCount, 10, 2.0, None));
        assert_eq!(activity(&w, 10, 11), [Some(2.0)]);
        assert_eq!(activity(&w, 11, 12), [None], "missing stays missing");
        // A week later minute 10 is out of the window, and its slot is reused cleanly.
        w.add(&s(
            Kind::ActivityCount,
            10 + WINDOW_MINUTES as i64 + 5,
            3.0,
            None,
        ));
        assert_eq!(activity(&w, 10, 11), [None]);
        assert_eq!(activity(&w, 5000, 5001), [Some(1.0)]);
        w.add(&s(Kind::ActivityCount, 9, 7.0, None));
        assert_eq!(
            activity(&w, 9, 10),
            [None],
            "older than the window: store only"
        );
    }

    #[test]
    fn heart_rate_is_a_mean_per_minute() {
        let mut w = Series::new();
        for v in [60.0, 70.0, 80.0] {
            w.add(&s(Kind::HeartRate, 3, v, Some("watch")));
        }
        let base = T0 / MINUTE_MS;
        let hr: Vec<Option<f64>> = w.heart_rate(base + 3, base + 4).collect();
        assert_eq!(hr, [Some(70.0)]);
    }

    #[test]
    fn a_full_week_fits_in_64_kb_and_an_empty_window_costs_almost_nothing() {
        let mut w = Series::new();
        assert!(w.memory_bytes() < 256, "{}", w.memory_bytes());
        assert_eq!(w.activity(0, 1).collect::<Vec<_>>(), [None]);
        w.add(&s(Kind::ActivityCount, 0, 1.0, Some("watch")));
        let full = w.memory_bytes();
        assert!((60_480..=64 * 1024).contains(&full), "{full}");
    }
}
