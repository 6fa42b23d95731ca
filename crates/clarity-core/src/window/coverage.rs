//! Which sources sent anything in which UTC hour: the evidence for the step coverage rule
//! (see [`super::series`]: a minute without steps in an hour its step source was recording is
//! 0 steps, not missing).
//!
//! Rules:
//! - One slot per absolute hour, 169 slots: one more than the window's 168 hours, so the slot
//!   an hour reuses always belongs to an hour wholly outside the window.
//! - A slot holds its hour number: a mark for an older hour than the slot's is ignored, a mark
//!   for a newer one replaces it. The marks therefore do not depend on arrival order.
//! - An interval marks every hour it overlaps (end exclusive); an instant marks its hour.
//! - 1,352 bytes, allocated with the first mark.

const HOUR_MS: i64 = 3_600_000;
/// A week of hours (the window's span) plus one.
const HOUR_SLOTS: usize = 7 * 24 + 1;
/// A slot nobody has marked.
const NO_HOUR: (i32, u16) = (i32::MIN, 0);

/// Per slot: the hour since the epoch and a bit per source slot (1..=15).
#[derive(Default)]
pub struct HourMarks {
    slots: Box<[(i32, u16)]>,
}

impl HourMarks {
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<(i32, u16)>()
    }

    /// Marks the hours of `[start_ms, end_ms)` (the hour of `start_ms` for an instant) as
    /// recorded by source slot `slot` (1..=15).
    pub fn mark(&mut self, start_ms: i64, end_ms: i64, slot: u8) {
        let Some(bit) = 1u16.checked_shl(u32::from(slot)) else {
            return;
        };
        let first = start_ms.div_euclid(HOUR_MS);
        let last = if end_ms > start_ms {
            (end_ms - 1).div_euclid(HOUR_MS)
        } else {
            first
        };
        if self.slots.is_empty() {
            self.slots = vec![NO_HOUR; HOUR_SLOTS].into_boxed_slice();
        }
        // Validation bounds a span to a day; more than the slots could hold is pointless.
        for hour in first..=last.min(first + HOUR_SLOTS as i64 - 1) {
            let Ok(h) = i32::try_from(hour) else {
                continue;
            };
            let entry = &mut self.slots[slot_of(hour)];
            if entry.0 == h {
                entry.1 |= bit;
            } else if entry.0 < h {
                *entry = (h, bit);
            }
        }
    }

    /// Forgets every mark of the hours `[first, end)` (a window repair marks them again).
    pub fn clear(&mut self, first: i64, end: i64) {
        if self.slots.is_empty() {
            return;
        }
        for hour in first..end.min(first + HOUR_SLOTS as i64) {
            let entry = &mut self.slots[slot_of(hour)];
            if i64::from(entry.0) == hour {
                entry.1 = 0;
            }
        }
    }

    /// The source bits that marked UTC hour `hour` (hours since the epoch).
    pub fn sources(&self, hour: i64) -> u16 {
        match self.slots.get(slot_of(hour)) {
            Some(&(h, bits)) if i64::from(h) == hour => bits,
            _ => 0,
        }
    }
}

fn slot_of(hour: i64) -> usize {
    hour.rem_euclid(HOUR_SLOTS as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;

    #[test]
    fn intervals_mark_every_hour_they_overlap_and_instants_their_own() {
        let mut m = HourMarks::default();
        assert_eq!(m.sources(10), 0);
        m.mark(10 * H + 5, 12 * H, 1); // ends exactly at 12:00: hour 12 not touched
        m.mark(14 * H + 59 * 60_000, 14 * H + 59 * 60_000, 2);
        assert_eq!(
            (9..=15).map(|h| m.sources(h)).collect::<Vec<_>>(),
            [0, 0b10, 0b10, 0, 0, 0b100, 0]
        );
        m.mark(11 * H, 11 * H, 2);
        assert_eq!(m.sources(11), 0b110);
    }

    #[test]
    fn a_newer_hour_takes_the_slot_and_an_older_mark_never_does() {
        for newer_first in [false, true] {
            let mut m = HourMarks::default();
            let old = 5;
            let new = old + HOUR_SLOTS as i64;
            let marks = [(old, 1u8), (new, 2u8)];
            let order: Vec<_> = if newer_first {
                marks.iter().rev().collect()
            } else {
                marks.iter().collect()
            };
            for (h, slot) in order {
                m.mark(h * H, h * H, *slot);
            }
            assert_eq!(m.sources(new), 0b100, "newer first: {newer_first}");
            assert_eq!(m.sources(old), 0, "newer first: {newer_first}");
        }
    }

    #[test]
    fn bad_slots_and_far_times_do_not_panic() {
        let mut m = HourMarks::default();
        m.mark(0, 0, 16);
        m.mark(i64::MIN, i64::MAX, 3);
        m.mark(i64::MAX - 1, i64::MAX, 3);
        assert_eq!(m.sources(0), 0);
        assert!(m.memory_bytes() <= 169 * 8);
    }
}
