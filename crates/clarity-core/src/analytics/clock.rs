//! The user's local clock across a change of UTC offset (a trip, a DST change).
//!
//! Rules:
//! - The rhythm measures (IS, L5/M10, cosinor) fold minutes onto a 24-hour clock with one
//!   fixed offset. A week that crosses an offset change is moved onto the local clock first:
//!   each minute goes to the instant that reads, at the analysis' offset (the latest), the
//!   clock time it had at its own offset. Otherwise someone who walks from 08:00 to 21:00
//!   every day, four days in Berlin and then in New York, was told that their most active
//!   10 hours began at 05:39.
//! - A westward change repeats clock times: where two minutes land on one, the later one (the
//!   new zone's) is kept when it is present. An eastward change skips clock times: those
//!   minutes are missing.
//! - Offsets are whole minutes, one per minute of the input; a series with one offset is
//!   returned unchanged.

/// Activity by minute from `start_minute` (UTC minutes since the epoch), `None` = missing.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSeries {
    pub start_minute: i64,
    pub values: Vec<Option<f64>>,
}

/// Moves `values` (one a minute from `start_minute`, each at `offsets[i]` minutes east of
/// UTC) onto the clock of `target` (minutes east of UTC). `None` when every offset is
/// `target` already (nothing to move) or the lengths differ.
pub fn to_local_clock(
    start_minute: i64,
    values: &[Option<f64>],
    offsets: &[i32],
    target: i32,
) -> Option<LocalSeries> {
    if values.len() != offsets.len() || offsets.iter().all(|&o| o == target) {
        return None;
    }
    let shifted = |i: usize| start_minute + i as i64 + i64::from(offsets[i] - target);
    let first = (0..values.len()).map(shifted).min()?;
    let last = (0..values.len()).map(shifted).max()?;
    let mut out = vec![None; usize::try_from(last - first + 1).ok()?];
    // In time order, so that where clock times repeat the later minute wins when present.
    for (i, v) in values.iter().enumerate() {
        if v.is_some() {
            out[(shifted(i) - first) as usize] = *v;
        }
    }
    Some(LocalSeries {
        start_minute: first,
        values: out,
    })
}

/// One offset per minute of `[from, from + len)` from `changes` (start minute, offset; in
/// any order): a minute takes the offset of the latest change at or before it, the minutes
/// before the first change that change's, and `fallback` when there are none.
pub fn offsets_per_minute(
    from: i64,
    len: usize,
    changes: &[(i64, i32)],
    fallback: i32,
) -> Vec<i32> {
    let mut changes = changes.to_vec();
    changes.sort_unstable();
    let mut current = changes.first().map_or(fallback, |c| c.1);
    let mut next = 0;
    (0..len)
        .map(|i| {
            let minute = from + i as i64;
            while next < changes.len() && changes[next].0 <= minute {
                current = changes[next].1;
                next += 1;
            }
            current
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_offset_is_left_as_it_is() {
        assert_eq!(to_local_clock(0, &[Some(1.0); 3], &[60; 3], 60), None);
        assert_eq!(to_local_clock(0, &[Some(1.0); 3], &[60; 2], 0), None);
    }

    #[test]
    fn a_westward_trip_keeps_each_minute_at_its_clock_time() {
        // Minutes 0-3 at +01:00, 4-7 at -05:00; the analysis clock is -05:00.
        let values: Vec<Option<f64>> = (0..8).map(|i| Some(f64::from(i))).collect();
        let offsets = [60, 60, 60, 60, -300, -300, -300, -300];
        let local = to_local_clock(1000, &values, &offsets, -300).unwrap();
        // The first four move 360 minutes later (clock time at -05:00 = clock time at
        // +01:00), past the last four, which stay: 1004..=1007, then 1360..=1363.
        assert_eq!(local.start_minute, 1004);
        assert_eq!(local.values.len(), 360);
        assert_eq!(local.values[0], Some(4.0));
        assert_eq!(local.values[4], None);
        assert_eq!(local.values[356], Some(0.0));
        assert_eq!(*local.values.last().unwrap(), Some(3.0));
        let present: f64 = local.values.iter().flatten().sum();
        assert_eq!(present, (0..8).sum::<i32>() as f64);
    }

    #[test]
    fn repeated_clock_times_keep_the_later_minute_when_present() {
        // DST ends: minute 1 at -04:00 and minute 61 at -05:00 read the same clock time.
        let mut values = vec![None; 62];
        let mut offsets = vec![-240; 62];
        values[1] = Some(5.0);
        values[61] = Some(7.0);
        for o in &mut offsets[2..] {
            *o = -300;
        }
        let local = to_local_clock(0, &values, &offsets, -300).unwrap();
        assert_eq!(
            local.values[(1 + 60 - local.start_minute) as usize],
            Some(7.0)
        );
        values[61] = None;
        let local = to_local_clock(0, &values, &offsets, -300).unwrap();
        assert_eq!(
            local.values[(1 + 60 - local.start_minute) as usize],
            Some(5.0)
        );
    }

    #[test]
    fn an_eastward_change_leaves_the_skipped_clock_times_missing() {
        let values = vec![Some(1.0); 4];
        let offsets = [0, 0, 120, 120];
        let local = to_local_clock(0, &values, &offsets, 120).unwrap();
        assert_eq!(local.start_minute, -120);
        assert_eq!(local.values.iter().flatten().count(), 4);
        assert_eq!(local.values.len(), 124);
        assert!(local.values[2..122].iter().all(Option::is_none));
    }

    #[test]
    fn offsets_follow_the_latest_change_and_the_first_covers_the_start() {
        let changes = [(15, -300), (10, 60)];
        assert_eq!(
            offsets_per_minute(8, 10, &changes, 0),
            [60, 60, 60, 60, 60, 60, 60, -300, -300, -300]
        );
        assert_eq!(offsets_per_minute(0, 2, &[], 30), [30, 30]);
    }
}
