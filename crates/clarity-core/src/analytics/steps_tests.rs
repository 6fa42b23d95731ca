use super::*;
use crate::samples::Timestamp;

const ALL: (i64, i64) = (i64::MIN / 4, i64::MAX / 4);

/// A step interval from two RFC 3339 instants (each with its own offset; the start's dates it).
fn walk<'a>(start: &str, end: &str, steps: f64, source: Option<&'a str>) -> StepSample<'a> {
    let (s, e) = (
        Timestamp::parse(start).unwrap(),
        Timestamp::parse(end).unwrap(),
    );
    StepSample {
        start_ms: s.utc_ms,
        end_ms: Some(e.utc_ms),
        offset_secs: s.offset_secs,
        value: steps,
        source,
        manual: false,
    }
}

fn day<'d>(days: &'d [StepDay], date: &str) -> &'d StepDay {
    days.iter()
        .find(|d| d.date.to_string() == date)
        .unwrap_or_else(|| panic!("no day {date} in {days:?}"))
}

fn won(d: &StepDay) -> Vec<(&str, usize)> {
    d.sources
        .iter()
        .map(|s| (s.source.as_str(), s.minutes))
        .collect()
}

#[test]
fn each_sample_is_dated_by_its_own_offset_across_a_dst_change() {
    // New York, 2026: daylight time ends 2026-11-01 02:00 EDT. The walk home at 00:00 EDT on
    // Oct 31 is 04:00Z, i.e. 23:00 on Oct 30 at the later -05:00: it must stay on Oct 31.
    let samples = [
        walk(
            "2026-10-30T18:00:00-04:00",
            "2026-10-30T18:10:00-04:00",
            1000.0,
            Some("iPhone"),
        ),
        walk(
            "2026-10-31T00:00:00-04:00",
            "2026-10-31T00:12:00-04:00",
            1200.0,
            Some("iPhone"),
        ),
        // The clock hour 01:00-02:00 happens twice on Nov 1: both are Nov 1, 60 minutes apart.
        walk(
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:35:00-04:00",
            500.0,
            Some("Apple Watch"),
        ),
        walk(
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T01:35:00-05:00",
            400.0,
            Some("Apple Watch"),
        ),
    ];
    let days = step_days(&samples, ALL);
    let dates: Vec<String> = days.iter().map(|d| d.date.to_string()).collect();
    assert_eq!(dates, ["2026-10-30", "2026-10-31", "2026-11-01"]);
    assert_eq!(day(&days, "2026-10-30").steps, Some(1000));
    assert_eq!(day(&days, "2026-10-31").steps, Some(1200));
    assert_eq!(day(&days, "2026-10-31").step_minutes, Some(12));
    assert_eq!(day(&days, "2026-11-01").steps, Some(900));
    assert_eq!(day(&days, "2026-11-01").step_minutes, Some(10));
}

#[test]
fn two_overlapping_sources_are_never_summed_and_the_watch_wins_in_any_order() {
    // Watch 08:00-08:10 (100 steps), phone 08:05-08:15 (90): 08:05-08:09 are the watch's.
    let watch = walk(
        "2026-03-02T08:00:00+01:00",
        "2026-03-02T08:10:00+01:00",
        100.0,
        Some("Pixel Watch 3"),
    );
    let phone = walk(
        "2026-03-02T08:05:00+01:00",
        "2026-03-02T08:15:00+01:00",
        90.0,
        Some("Pixel 9 phone"),
    );
    for samples in [[watch, phone], [phone, watch]] {
        let days = step_days(&samples, ALL);
        assert_eq!(days.len(), 1);
        let d = &days[0];
        assert_eq!(d.steps, Some(100 + 45), "{samples:?}");
        assert_eq!(d.step_minutes, Some(15));
        assert_eq!(won(d), [("Pixel Watch 3", 10), ("Pixel 9 phone", 5)]);
        assert_eq!(d.sources[0].rank, 3);
    }
    // Same rank: the smaller name wins the shared minutes (the window's order).
    let a = walk(
        "2026-03-02T09:00:00Z",
        "2026-03-02T09:02:00Z",
        20.0,
        Some("b-app"),
    );
    let b = walk(
        "2026-03-02T09:00:00Z",
        "2026-03-02T09:02:00Z",
        50.0,
        Some("a-app"),
    );
    for samples in [[a, b], [b, a]] {
        let days = step_days(&samples, ALL);
        assert_eq!(days[0].steps, Some(50));
        assert_eq!(won(&days[0]), [("a-app", 2)]);
    }
    // One source's samples in one minute add up.
    let one = walk("2026-03-02T10:00:00Z", "2026-03-02T10:01:00Z", 7.0, None);
    let days = step_days(&[one, one], ALL);
    assert_eq!(days[0].steps, Some(14));
    assert_eq!(won(&days[0]), [("unspecified", 1)]);
}

#[test]
fn a_walk_across_midnight_is_split_by_minute_over_both_days() {
    // 23:55-00:05 local, 100 steps spread evenly: 50 on each date, 5 minutes each.
    let samples = [walk(
        "2026-03-01T23:55:00+05:30",
        "2026-03-02T00:05:00+05:30",
        100.0,
        Some("Pixel Watch 3"),
    )];
    let days = step_days(&samples, ALL);
    assert_eq!(days.len(), 2, "{days:?}");
    assert_eq!(day(&days, "2026-03-01").steps, Some(50));
    assert_eq!(day(&days, "2026-03-01").step_minutes, Some(5));
    assert_eq!(day(&days, "2026-03-02").steps, Some(50));
    // Uneven spread keeps the total: 00:00:30-00:03:30 is 17 + 33 + 33 + 17.
    let odd = [walk(
        "2026-03-02T00:00:30Z",
        "2026-03-02T00:03:30Z",
        100.0,
        None,
    )];
    assert_eq!(step_days(&odd, ALL)[0].steps, Some(100));
    assert_eq!(step_days(&odd, ALL)[0].step_minutes, Some(4));
}

#[test]
fn a_day_without_steps_is_null_not_zero_and_the_range_cuts_minutes_and_completeness() {
    let t = |s: &str| Timestamp::parse(s).unwrap().utc_ms;
    let samples = [
        walk("2026-03-01T20:00:00Z", "2026-03-01T20:10:00Z", 100.0, None),
        walk("2026-03-03T09:00:00Z", "2026-03-03T09:10:00Z", 100.0, None),
        walk("2026-03-04T09:00:00Z", "2026-03-04T09:10:00Z", 100.0, None),
    ];
    let range = (t("2026-03-01T19:00:00Z"), t("2026-03-04T09:05:00Z"));
    let days = step_days(&samples, range);
    let got: Vec<(String, Option<u64>, bool)> = days
        .iter()
        .map(|d| (d.date.to_string(), d.steps, d.complete))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-03-01".into(), Some(100), false),
            ("2026-03-02".into(), None, true),
            ("2026-03-03".into(), Some(100), true),
            // Cut at 09:05: half the walk.
            ("2026-03-04".into(), Some(50), false),
        ]
    );
    assert_eq!(days[1].step_minutes, None);
    assert!(days[1].sources.is_empty());
    assert!(step_days(&[], ALL).is_empty());
    // A point sample counts whole in its minute; a minute won with 0 steps is no step minute.
    let point = StepSample {
        start_ms: t("2026-03-05T12:00:10Z"),
        end_ms: None,
        offset_secs: 0,
        value: 30.0,
        source: None,
        manual: false,
    };
    let zero = StepSample {
        value: 0.0,
        start_ms: t("2026-03-05T12:01:00Z"),
        ..point
    };
    let d = &step_days(&[point, zero], ALL)[0];
    assert_eq!((d.steps, d.step_minutes), (Some(30), Some(1)));
    assert_eq!(won(d), [("unspecified", 2)]);
}

#[test]
fn a_manual_entry_wins_its_minutes_and_is_listed_as_manual() {
    // The watch counted 10 steps a minute over 10:00-10:10; the user typed in 600 steps over
    // 10:05-10:11 (the watch was off the wrist): those minutes are the entry's, the rest the
    // watch's, whatever the order.
    let watch = walk(
        "2026-03-05T10:00:00Z",
        "2026-03-05T10:10:00Z",
        100.0,
        Some("Watch"),
    );
    let typed = StepSample {
        manual: true,
        ..walk(
            "2026-03-05T10:05:00Z",
            "2026-03-05T10:11:00Z",
            600.0,
            Some("Health"),
        )
    };
    for samples in [[watch, typed], [typed, watch]] {
        let d = &step_days(&samples, ALL)[0];
        assert_eq!(d.steps, Some(5 * 10 + 600));
        let listed: Vec<(&str, usize, bool)> = d
            .sources
            .iter()
            .map(|s| (s.source.as_str(), s.minutes, s.manual))
            .collect();
        assert_eq!(listed, [("Health", 6, true), ("Watch", 5, false)]);
    }
}
