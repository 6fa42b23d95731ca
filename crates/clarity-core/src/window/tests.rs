//! Unit tests of `Windows` through its public API: minute bins, day completion, late data,
//! implausible samples, sweeping idle windows.
//!
//! Declared from lib.rs rather than window/mod.rs while that module is being reworked on
//! another branch (narrow handles); move the declaration there once it lands.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::samples::{Kind, Sample, Timestamp};
use crate::window::Windows;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Midnight UTC three days ago: recent enough for every sample to be plausible.
fn day0() -> i64 {
    let now = Utc::now().timestamp_millis();
    now - now.rem_euclid(DAY_MS) - 3 * DAY_MS
}

fn date(ms: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap()
        .date_naive()
}

fn sample(kind: Kind, at_ms: i64, value: f64) -> Sample {
    Sample {
        version: None,
        id: format!("{kind:?}-{at_ms}"),
        kind,
        start: Timestamp {
            utc_ms: at_ms,
            offset_secs: 0,
        },
        end: None,
        value,
        source: None,
        extra: None,
    }
}

fn activity_at(windows: &Windows, user: Uuid, at_ms: i64) -> Option<f64> {
    let minute = at_ms.div_euclid(MINUTE_MS);
    windows
        .get(user)
        .expect("window exists")
        .with(|s, _| s.activity(minute, minute + 1).next().flatten())
}

#[test]
fn samples_land_in_their_minute_bins_and_other_kinds_make_no_window() {
    let windows = Windows::default();
    let user = Uuid::new_v4();
    let t = day0() + 10 * 3_600_000;
    assert_eq!(
        windows.apply(user, &[sample(Kind::BodyTemperature, t, 36.6)]),
        Default::default()
    );
    assert!(
        windows.get(user).is_none(),
        "no window for kinds it does not keep"
    );
    windows.apply(
        user,
        &[
            sample(Kind::ActivityCount, t, 12.0),
            sample(Kind::ActivityCount, t + MINUTE_MS, 30.0),
        ],
    );
    assert_eq!(activity_at(&windows, user, t), Some(12.0));
    assert_eq!(activity_at(&windows, user, t + MINUTE_MS), Some(30.0));
    assert_eq!(activity_at(&windows, user, t + 2 * MINUTE_MS), None);
    assert_eq!(windows.len(), 1);
}

#[test]
fn passing_local_midnight_completes_the_day_once() {
    let windows = Windows::default();
    let user = Uuid::new_v4();
    let midnight = day0() + DAY_MS;
    let before = windows.apply(
        user,
        &[sample(Kind::ActivityCount, midnight - MINUTE_MS, 5.0)],
    );
    assert!(before.completed_days.is_empty());
    let after = windows.apply(
        user,
        &[sample(Kind::ActivityCount, midnight + MINUTE_MS, 5.0)],
    );
    assert_eq!(after.completed_days, [date(midnight)]);
    assert_eq!(after.due_days(), [date(midnight)]);
    let again = windows.apply(
        user,
        &[sample(Kind::ActivityCount, midnight + 2 * MINUTE_MS, 5.0)],
    );
    assert!(
        again.completed_days.is_empty(),
        "the same day completes once"
    );
}

#[test]
fn activity_for_a_complete_day_makes_it_due_again() {
    let windows = Windows::default();
    let user = Uuid::new_v4();
    let midnight = day0() + DAY_MS;
    windows.apply(
        user,
        &[sample(Kind::ActivityCount, midnight + MINUTE_MS, 5.0)],
    );
    let late = windows.apply(
        user,
        &[sample(Kind::ActivityCount, midnight - 3_600_000, 7.0)],
    );
    assert_eq!(late.late_days, [date(midnight - DAY_MS)]);
    // Due is the end of that day: its local midnight.
    assert_eq!(late.due_days(), [date(midnight)]);
    assert_eq!(activity_at(&windows, user, midnight - 3_600_000), Some(7.0));
}

#[test]
fn a_sample_far_in_the_future_never_moves_the_window() {
    let windows = Windows::default();
    let user = Uuid::new_v4();
    let t = day0() + 3_600_000;
    windows.apply(user, &[sample(Kind::ActivityCount, t, 1.0)]);
    let end = windows.get(user).unwrap().with(|s, _| s.end_minute());
    let future = Utc::now().timestamp_millis() + 2 * DAY_MS;
    let applied = windows.apply(user, &[sample(Kind::ActivityCount, future, 1.0)]);
    assert!(applied.completed_days.is_empty(), "no day completes");
    assert_eq!(windows.get(user).unwrap().with(|s, _| s.end_minute()), end);
    // The week is still in reach: later normal data lands as before.
    windows.apply(user, &[sample(Kind::ActivityCount, t + MINUTE_MS, 2.0)]);
    assert_eq!(activity_at(&windows, user, t + MINUTE_MS), Some(2.0));
}

#[test]
fn sweep_drops_only_idle_windows_of_users_without_sessions() {
    let windows = Windows::default();
    let (online, offline) = (Uuid::new_v4(), Uuid::new_v4());
    let t = day0();
    for user in [online, offline] {
        windows.apply(user, &[sample(Kind::HeartRate, t, 60.0)]);
    }
    assert_eq!(
        windows.sweep(Duration::from_secs(3600), |_| false),
        0,
        "recently touched"
    );
    assert_eq!(windows.sweep(Duration::ZERO, |u| u == online), 1);
    assert!(windows.get(online).is_some());
    assert!(windows.get(offline).is_none());
}
