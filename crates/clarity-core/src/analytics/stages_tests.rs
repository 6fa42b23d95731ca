//! Hand-computed nights for [`super::stage_nights`], and properties every night keeps.

use proptest::prelude::*;

use super::*;
use crate::samples::SleepStage::{Asleep, Awake, Deep, InBed, Light, OutOfBed, Rem};

/// The device ranks the pipeline uses: a watch over an unnamed source over a phone.
fn rank(source: &str) -> u8 {
    crate::samples::sources::rank(source)
}

fn span(start: &str, end: &str, stage: SleepStage, source: &str) -> StageSpan {
    let (s, e) = (
        Timestamp::parse(start).unwrap(),
        Timestamp::parse(end).unwrap(),
    );
    StageSpan {
        start_ms: s.utc_ms,
        end_ms: e.utc_ms,
        offset_secs: s.offset_secs,
        end_offset_secs: e.offset_secs,
        stage,
        source: source.into(),
    }
}

/// Spans back to back from `start` (local time with `offset`), `(stage, minutes)` each.
fn run(start: &str, offset: &str, parts: &[(SleepStage, i64)], source: &str) -> Vec<StageSpan> {
    let mut t = Timestamp::parse(&format!("{start}{offset}")).unwrap();
    parts
        .iter()
        .map(|&(stage, minutes)| {
            let end = Timestamp {
                utc_ms: t.utc_ms + minutes * MINUTE_MS,
                ..t
            };
            let s = span(&t.to_rfc3339(), &end.to_rfc3339(), stage, source);
            t = end;
            s
        })
        .collect()
}

/// The minute fields, in the contract's order.
fn minutes(n: &StageNight) -> [u32; 10] {
    [
        n.in_bed_minutes,
        n.asleep_minutes,
        n.awake_minutes,
        n.light_minutes,
        n.deep_minutes,
        n.rem_minutes,
        n.unspecified_minutes,
        n.onset_latency_minutes,
        n.waso_minutes,
        n.awakenings,
    ]
}

#[test]
fn healthkit_watch_stages_inside_the_phones_in_bed_across_midnight() {
    let mut spans = vec![span(
        "2026-03-01T22:30:00+01:00",
        "2026-03-02T06:45:00+01:00",
        InBed,
        "iPhone",
    )];
    spans.extend(run(
        "2026-03-01T22:50:00",
        "+01:00",
        &[
            (Awake, 15),
            (Light, 90),
            (Deep, 45),
            (Rem, 30),
            (Awake, 10),
            (Light, 120),
            (Rem, 40),
            (Awake, 5),
            (Light, 105),
            (Awake, 10),
        ],
        "Apple Watch",
    ));
    let nights = stage_nights(&spans, rank);
    assert_eq!(nights.len(), 1, "{nights:#?}");
    let n = &nights[0];
    assert_eq!(n.date.to_string(), "2026-03-02", "dated by the morning");
    assert_eq!(n.method, NightMethod::Stages);
    assert_eq!(n.source, "Apple Watch");
    assert_eq!(n.sources, ["Apple Watch", "iPhone"]);
    assert_eq!(
        n.bed_start, "2026-03-01T22:30:00+01:00",
        "the phone's in_bed"
    );
    assert_eq!(n.sleep_onset, "2026-03-01T23:05:00+01:00");
    assert_eq!(n.final_wake, "2026-03-02T06:30:00+01:00");
    assert_eq!(n.bed_end, "2026-03-02T06:45:00+01:00");
    // 23:05 to 06:30 is 445 minutes: halfway is 222.5 minutes after onset.
    assert_eq!(n.midpoint, "2026-03-02T02:47:30+01:00");
    // Asleep: light 90+120+105, deep 45, REM 30+40. Awake: 20 in bed before the watch
    // starts, 15 + 10 + 5 + 10 staged awake, 5 in bed after the watch ends. Latency 20 + 15;
    // WASO 10 + 5 in two awakenings.
    assert_eq!(minutes(n), [495, 430, 65, 315, 45, 70, 0, 35, 15, 2]);
    assert_eq!(n.efficiency_pct, 86.9, "430 / 495");
}

#[test]
fn health_connect_session_with_out_of_bed_and_unspecified_sleep() {
    let spans = run(
        "2026-06-10T23:00:00",
        "-04:00",
        &[
            (Awake, 20),
            (Asleep, 100),
            (OutOfBed, 10),
            (Awake, 5),
            (Asleep, 105),
            (Awake, 5),
            (Light, 115),
            (Deep, 30),
            (Rem, 60),
            (OutOfBed, 15),
        ],
        "com.google.android.apps.fitness",
    );
    let n = &stage_nights(&spans, rank)[0];
    assert_eq!(n.date.to_string(), "2026-06-11");
    assert_eq!(n.bed_start, "2026-06-10T23:00:00-04:00");
    assert_eq!(n.sleep_onset, "2026-06-10T23:20:00-04:00");
    assert_eq!(n.final_wake, "2026-06-11T06:30:00-04:00");
    assert_eq!(
        n.bed_end, "2026-06-11T06:30:00-04:00",
        "out of bed is not in bed"
    );
    assert_eq!(
        n.midpoint, "2026-06-11T02:55:00-04:00",
        "430 minutes / 2 after 23:20"
    );
    // Asleep 100 + 105 unspecified + 115 + 30 + 60; awake 20 before, 5 + 5 after onset; the
    // 10 minutes out of bed are not in bed but are wake after sleep onset (WASO 10 + 5 + 5)
    // and start an awakening (the awake 5 after them does not start another); the awake 5 at
    // 03:00 is the second. The 15 minutes out of bed after the final wake count nowhere.
    assert_eq!(minutes(n), [440, 410, 30, 115, 30, 60, 205, 20, 20, 2]);
    assert_eq!(n.efficiency_pct, 93.2, "410 / 440");
}

#[test]
fn one_source_overlapping_itself_the_specific_statement_wins() {
    // An unspecified night with an awake piece inside, under an in_bed of the same source.
    let spans = vec![
        span(
            "2026-01-05T22:45:00Z",
            "2026-01-06T07:10:00Z",
            InBed,
            "Oura",
        ),
        span(
            "2026-01-05T23:00:00Z",
            "2026-01-06T07:00:00Z",
            Asleep,
            "Oura",
        ),
        span(
            "2026-01-06T02:00:00Z",
            "2026-01-06T02:20:00Z",
            Awake,
            "Oura",
        ),
        span("2026-01-06T03:00:00Z", "2026-01-06T03:30:00Z", Deep, "Oura"),
    ];
    let n = &stage_nights(&spans, rank)[0];
    // 480 asleep minus 20 awake; 30 of the rest deep. Awake: 15 + 20 + 10 in bed.
    assert_eq!(minutes(n), [505, 460, 45, 0, 30, 0, 430, 15, 20, 1]);
    assert_eq!(n.sources, ["Oura"]);
}

#[test]
fn two_sources_stage_one_night_and_the_priority_says_who_won() {
    let night = |source: &str, stage: SleepStage, from: &str, to: &str| {
        span(
            &format!("2026-02-01T{from}:00Z"),
            &format!("2026-02-02T{to}:00Z"),
            stage,
            source,
        )
    };
    let won = |spans: &[StageSpan]| {
        let n = &stage_nights(spans, rank)[0];
        (n.source.clone(), n.asleep_minutes, n.sources.len())
    };
    // Detail first: staged light over a watch's unspecified sleep, whatever the rank.
    let spans = [
        night("Galaxy Watch", Asleep, "23:00", "07:00"),
        night("Sleep app", Light, "23:30", "06:30"),
    ];
    assert_eq!(won(&spans), ("Sleep app".into(), 420, 2));
    // Same detail: a watch over a phone even with less data.
    let spans = [
        night("Pixel phone", Light, "23:00", "06:00"),
        night("Apple Watch", Light, "23:30", "04:30"),
    ];
    assert_eq!(won(&spans), ("Apple Watch".into(), 300, 2));
    // Same detail and rank: more data, then the smaller name.
    let spans = [
        night("Garmin watch", Deep, "23:00", "06:00"),
        night("Apple Watch", Deep, "23:00", "05:40"),
    ];
    assert_eq!(won(&spans), ("Garmin watch".into(), 420, 2));
    let spans = [
        night("b watch", Rem, "23:00", "06:00"),
        night("a watch", Rem, "23:10", "06:10"),
    ];
    assert_eq!(won(&spans), ("a watch".into(), 420, 2));
    // Sources are never mixed: the loser's extra sleep is not added.
    let spans = [
        night("Apple Watch", Light, "23:00", "05:00"),
        night("iPhone", Asleep, "22:00", "08:00"),
    ];
    assert_eq!(won(&spans), ("Apple Watch".into(), 360, 2));
}

#[test]
fn nights_follow_a_dst_change_and_a_trip() {
    // Berlin: 2026-03-29 02:00 CET becomes 03:00 CEST. Each sample carries its own offset.
    let mut spans = run("2026-03-27T23:00:00", "+01:00", &[(Light, 480)], "w");
    spans.push(span(
        "2026-03-28T23:00:00+01:00",
        "2026-03-29T02:00:00+01:00",
        Light,
        "w",
    ));
    spans.push(span(
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T07:00:00+02:00",
        Deep,
        "w",
    ));
    spans.extend(run("2026-03-29T23:00:00", "+02:00", &[(Rem, 480)], "w"));
    // Then a flight to Tokyo: 22:00-06:00 local is 13:00-21:00 UTC on the 4th.
    spans.extend(run("2026-04-04T22:00:00", "+09:00", &[(Light, 480)], "w"));
    let nights = stage_nights(&spans, rank);
    let dates: Vec<String> = nights.iter().map(|n| n.date.to_string()).collect();
    assert_eq!(
        dates,
        ["2026-03-28", "2026-03-29", "2026-03-30", "2026-04-05"]
    );
    let n = &nights[1];
    assert_eq!(n.asleep_minutes, 420, "23:00 CET to 07:00 CEST is 7 h");
    // Each time on the clock of its own sample: to bed at 23:00 CET, up at 07:00 CEST.
    assert_eq!(n.bed_start, "2026-03-28T23:00:00+01:00");
    assert_eq!(n.sleep_onset, "2026-03-28T23:00:00+01:00");
    assert_eq!(n.final_wake, "2026-03-29T07:00:00+02:00");
    assert_eq!(n.bed_end, "2026-03-29T07:00:00+02:00");
    assert_eq!(
        n.midpoint, "2026-03-29T03:30:00+02:00",
        "01:30Z, in the CEST sample"
    );
    assert_eq!(nights[0].final_wake, "2026-03-28T07:00:00+01:00");
    assert_eq!(nights[3].final_wake, "2026-04-05T06:00:00+09:00");
}

#[test]
fn gaps_split_nights_naps_do_not_replace_them_and_in_bed_alone_is_no_night() {
    let mut spans = vec![
        // Exactly 4 h apart: one night, the unrecorded 4 h count nowhere.
        span("2026-05-01T22:00:00Z", "2026-05-01T23:00:00Z", Light, "w"),
        span("2026-05-02T03:00:00Z", "2026-05-02T04:00:00Z", Light, "w"),
        // More than 4 h later: a nap the same day, shorter than the night.
        span("2026-05-02T14:00:00Z", "2026-05-02T15:00:00Z", Light, "w"),
        // Only in bed: no night.
        span("2026-05-02T22:00:00Z", "2026-05-03T06:00:00Z", InBed, "w"),
    ];
    let nights = stage_nights(&spans, rank);
    assert_eq!(nights.len(), 1, "{nights:#?}");
    assert_eq!(minutes(&nights[0]), [120, 120, 0, 120, 0, 0, 0, 0, 0, 0]);
    assert_eq!(nights[0].final_wake, "2026-05-02T04:00:00Z");
    spans[2].end_ms += 90 * MINUTE_MS;
    let nights = stage_nights(&spans, rank);
    assert_eq!(
        nights[0].asleep_minutes, 150,
        "the longer sleep of the date"
    );
}

#[test]
fn minutes_are_whole_minutes_of_the_grid() {
    let spans = [
        // Covers the starts of 23:01..=23:10: ten minutes.
        span("2026-05-01T23:00:30Z", "2026-05-01T23:10:30Z", Light, "w"),
        // Covers no minute start.
        span("2026-05-01T23:20:10Z", "2026-05-01T23:20:50Z", Deep, "w"),
    ];
    let n = &stage_nights(&spans, rank)[0];
    assert_eq!((n.light_minutes, n.deep_minutes), (10, 0));
    assert_eq!(n.sleep_onset, "2026-05-01T23:01:00Z");
    assert_eq!(n.final_wake, "2026-05-01T23:11:00Z");
    assert!(stage_nights(&[], rank).is_empty());
}

#[test]
fn each_time_of_a_dst_night_has_the_offset_of_the_sample_holding_it() {
    // New York, DST ends 2026-11-01 at 02:00 EDT (06:00Z): an in_bed envelope and stages,
    // one light stage crossing the change (01:46 EDT to 01:01 EST).
    let mut spans = vec![span(
        "2026-10-31T23:20:00-04:00",
        "2026-11-01T06:06:00-05:00",
        InBed,
        "Apple Watch",
    )];
    spans.extend(run(
        "2026-10-31T23:20:00",
        "-04:00",
        &[(Awake, 12), (Light, 134)],
        "Apple Watch",
    ));
    spans.push(span(
        "2026-11-01T01:46:00-04:00",
        "2026-11-01T01:01:00-05:00",
        Light,
        "Apple Watch",
    ));
    spans.extend(run(
        "2026-11-01T01:01:00",
        "-05:00",
        &[(Deep, 120), (Rem, 180), (Awake, 5)],
        "Apple Watch",
    ));
    let nights = stage_nights(&spans, rank);
    assert_eq!(nights.len(), 1, "{nights:#?}");
    let n = &nights[0];
    assert_eq!(n.date.to_string(), "2026-11-01");
    assert_eq!(n.bed_start, "2026-10-31T23:20:00-04:00");
    assert_eq!(n.sleep_onset, "2026-10-31T23:32:00-04:00");
    assert_eq!(n.final_wake, "2026-11-01T06:01:00-05:00");
    assert_eq!(n.bed_end, "2026-11-01T06:06:00-05:00");
    // Onset 03:32Z, wake 11:01Z: midpoint 07:16:30Z, in the deep sample (EST).
    assert_eq!(n.midpoint, "2026-11-01T02:16:30-05:00");
    // The crossing sample's end ends a night too: its end offset.
    let crossing = &spans[..4];
    let n = &stage_nights(crossing, rank)[0];
    assert_eq!(n.final_wake, "2026-11-01T01:01:00-05:00");
    assert_eq!(n.bed_end, "2026-11-01T06:06:00-05:00");
}

#[test]
fn asleep_intervals_are_the_winners_asleep_minutes() {
    let spans = [
        span("2026-05-01T22:00:00Z", "2026-05-01T23:00:00Z", Light, "w"),
        span("2026-05-01T23:00:00Z", "2026-05-01T23:10:00Z", Awake, "w"),
        span(
            "2026-05-01T23:10:00Z",
            "2026-05-01T23:20:00Z",
            OutOfBed,
            "w",
        ),
        span("2026-05-01T23:20:00Z", "2026-05-02T01:00:00Z", Deep, "w"),
        span("2026-05-02T01:00:00Z", "2026-05-02T06:00:00Z", Rem, "w"),
        // A phone app says asleep over the watch's awakening: the watch wins, it is not sleep.
        span(
            "2026-05-01T21:00:00Z",
            "2026-05-02T07:00:00Z",
            Asleep,
            "app",
        ),
    ];
    let n = &stage_nights(&spans, rank)[0];
    assert_eq!(n.source, "w");
    let m = |s: &str| Timestamp::parse(s).unwrap().utc_ms / MINUTE_MS;
    assert_eq!(
        n.asleep_intervals,
        [
            (m("2026-05-01T22:00:00Z"), m("2026-05-01T23:00:00Z")),
            (m("2026-05-01T23:20:00Z"), m("2026-05-02T06:00:00Z")),
        ]
    );
    // WASO: 10 awake + 10 out of bed.
    assert_eq!(minutes(n), [470, 460, 10, 60, 100, 300, 0, 0, 20, 1]);
}

fn arb_span() -> impl Strategy<Value = StageSpan> {
    let stage = prop::sample::select(SleepStage::ALL.to_vec());
    let source = prop::sample::select(vec!["Apple Watch", "iPhone", "app"]);
    let offset = prop::sample::select(vec![-5 * 3600, 0, 3600, 7200, 9 * 3600 + 1800]);
    (0i64..4 * 1440 * 60, 0i64..600 * 60, stage, source, offset).prop_map(
        |(start_s, len_s, stage, source, offset_secs)| {
            let start_ms = 1_780_000_000_000 + start_s * 1000;
            StageSpan {
                start_ms,
                end_ms: start_ms + len_s * 1000,
                offset_secs,
                end_offset_secs: offset_secs,
                stage,
                source: source.into(),
            }
        },
    )
}

proptest! {
    #[test]
    fn nights_add_up(spans in prop::collection::vec(arb_span(), 0..40)) {
        let nights = stage_nights(&spans, rank);
        let mut dates = std::collections::BTreeSet::new();
        for n in &nights {
            prop_assert!(dates.insert(n.date), "one night a date");
            prop_assert_eq!(n.in_bed_minutes, n.asleep_minutes + n.awake_minutes);
            prop_assert_eq!(
                n.asleep_minutes,
                n.light_minutes + n.deep_minutes + n.rem_minutes + n.unspecified_minutes
            );
            prop_assert!(n.asleep_minutes > 0);
            prop_assert!(n.onset_latency_minutes <= n.awake_minutes);
            prop_assert!((0.0..=100.0).contains(&n.efficiency_pct));
            let t = |s: &str| Timestamp::parse(s).unwrap().utc_ms;
            let sleep_span = (t(&n.final_wake) - t(&n.sleep_onset)) / MINUTE_MS;
            prop_assert!(i64::from(n.awakenings) < sleep_span);
            prop_assert!(i64::from(n.waso_minutes + n.asleep_minutes) <= sleep_span);
            let onset = t(&n.sleep_onset) / MINUTE_MS;
            let wake = t(&n.final_wake) / MINUTE_MS;
            let mut asleep = 0;
            let mut prev = onset;
            for &(a, b) in &n.asleep_intervals {
                prop_assert!(prev <= a && a < b && b <= wake);
                asleep += b - a;
                prev = b;
            }
            prop_assert_eq!(asleep, i64::from(n.asleep_minutes));
            prop_assert!(t(&n.bed_start) <= t(&n.sleep_onset));
            prop_assert!(t(&n.sleep_onset) < t(&n.midpoint));
            prop_assert!(t(&n.midpoint) < t(&n.final_wake));
            prop_assert!(t(&n.final_wake) <= t(&n.bed_end));
            let span_minutes = (t(&n.bed_end) - t(&n.bed_start)) / MINUTE_MS;
            prop_assert!(i64::from(n.in_bed_minutes) <= span_minutes);
            prop_assert!(n.sources.contains(&n.source));
        }
    }
}
