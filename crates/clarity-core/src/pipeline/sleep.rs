//! The analysis document's `sleep` part: actigraphy totals and periods, and one night a date,
//! from the user's sleep stages where they have them.
//!
//! Rules:
//! - The nights of an analysis are those whose final wake falls in the analysed week: after
//!   `to - 7 days` and at or before `to`, the window's end (the local midnight that completed
//!   the day, or the latest minute of data for a request). Stage samples are read from a day
//!   before that week to a day after it, so a night that straddles either end is seen whole
//!   (and one still going on at `to` belongs to a later analysis).
//! - Every night is dated by its morning (the local date of its final wake), so one date is one
//!   night whatever made it. An actigraphy night (noon to noon) is the night of the morning
//!   inside its window: `clarity analyze` names it by the noon that opens it (the evening, as
//!   the reference does), the document by the next date. Where a stage night has that date it
//!   replaces the actigraphy one. Entries are in date order.
//! - Device ranks for source priority are the window's ([`crate::window::series::rank`]).

use chrono::{Days, NaiveDate};
use serde::Serialize;
use uuid::Uuid;

use crate::analytics::{self, Night, NightMethod, StageNight, StageSpan};
use crate::samples::sources::UNNAMED_SOURCE;
use crate::samples::{Kind, SleepStage, Timestamp};
use crate::store::{SampleQuery, Store, StoreResult, all_samples};

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;
/// Page size of the stage read.
const PAGE: usize = 10_000;

/// `sleep` as stored and pushed.
#[derive(Serialize)]
pub struct SleepDoc<'a> {
    /// `null` when the activity is not minute counts (see `actigraphy_reason`).
    pub cole_kripke: Option<&'a analytics::SleepTotal>,
    pub sadeh: Option<&'a analytics::SleepTotal>,
    pub periods: &'a [analytics::Period],
    pub nights: Vec<NightDoc<'a>>,
    /// Why actigraphy sleep was not scored; `null` when it was.
    pub actigraphy_reason: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum NightDoc<'a> {
    Actigraphy(ActigraphyNight),
    Stages(&'a StageNight),
}

/// An actigraphy [`Night`] dated by its morning.
#[derive(Serialize)]
pub struct ActigraphyNight {
    /// The day after the noon that opens the window.
    pub date: NaiveDate,
    pub method: NightMethod,
    pub sadeh_sleep_minutes: usize,
    pub cole_kripke_sleep_minutes: usize,
    pub minutes_present: usize,
}

impl ActigraphyNight {
    fn of(n: &Night) -> ActigraphyNight {
        ActigraphyNight {
            date: n.date.checked_add_days(Days::new(1)).unwrap_or(n.date),
            method: n.method,
            sadeh_sleep_minutes: n.sadeh_sleep_minutes,
            cole_kripke_sleep_minutes: n.cole_kripke_sleep_minutes,
            minutes_present: n.minutes_present,
        }
    }
}

/// The user's `sleep_stage` samples that can make a night ending in `(to - 7 days, to]`
/// (UTC ms): those starting from a day before that week to a day after it.
pub async fn read_stage_spans(
    store: &dyn Store,
    user: Uuid,
    to_ms: i64,
) -> StoreResult<Vec<StageSpan>> {
    let query = SampleQuery {
        kind: Some(Kind::SleepStage),
        from_ms: Some(to_ms - WEEK_MS - DAY_MS),
        to_ms: Some(to_ms + DAY_MS),
        after: None,
        limit: PAGE,
    };
    let samples = all_samples(store, user, query).await?;
    Ok(samples
        .iter()
        .filter_map(|s| {
            Some(StageSpan {
                start_ms: s.start.utc_ms,
                end_ms: s.end?.utc_ms,
                offset_secs: s.start.offset_secs,
                end_offset_secs: s.end?.offset_secs,
                stage: SleepStage::from_code(s.value)?,
                source: s.source.clone().unwrap_or_else(|| UNNAMED_SOURCE.into()),
            })
        })
        .collect())
}

/// The nights of `spans` whose final wake is in `(to - 7 days, to]` (UTC ms). Linear in the
/// minutes the spans cover: callers run it off the async runtime, like the analytics.
pub fn nights_in_week(spans: &[StageSpan], to_ms: i64) -> Vec<StageNight> {
    let mut nights = analytics::stage_nights(spans, crate::window::series::rank);
    nights.retain(|n| {
        Timestamp::parse(&n.final_wake)
            .is_some_and(|t| t.utc_ms > to_ms - WEEK_MS && t.utc_ms <= to_ms)
    });
    nights
}

/// `sleep` with the stage nights merged into the actigraphy nights.
pub fn doc<'a>(sleep: &'a analytics::Sleep, stages: &'a [StageNight]) -> SleepDoc<'a> {
    let mut nights: Vec<(NaiveDate, NightDoc<'a>)> = sleep
        .nights
        .iter()
        .map(ActigraphyNight::of)
        .filter(|n| !stages.iter().any(|s| s.date == n.date))
        .map(|n| (n.date, NightDoc::Actigraphy(n)))
        .chain(stages.iter().map(|s| (s.date, NightDoc::Stages(s))))
        .collect();
    nights.sort_by_key(|(date, _)| *date);
    SleepDoc {
        cole_kripke: sleep.cole_kripke.as_ref(),
        sadeh: sleep.sadeh.as_ref(),
        periods: &sleep.periods,
        nights: nights.into_iter().map(|(_, n)| n).collect(),
        actigraphy_reason: sleep.actigraphy_reason.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actigraphy(date: &str) -> Night {
        Night {
            date: date.parse().unwrap(),
            method: NightMethod::Actigraphy,
            sadeh_sleep_minutes: 400,
            cole_kripke_sleep_minutes: 410,
            minutes_present: 1440,
        }
    }

    #[test]
    fn the_week_holds_nights_ending_after_its_start_and_at_or_before_its_end() {
        let to = Timestamp::parse("2026-03-10T00:00:00Z").unwrap().utc_ms;
        let night = |end_ms: i64| StageSpan {
            start_ms: end_ms - 8 * 3_600_000,
            end_ms,
            offset_secs: 0,
            end_offset_secs: 0,
            stage: SleepStage::Deep,
            source: "w".into(),
        };
        let kept = |end_ms: i64| !nights_in_week(&[night(end_ms)], to).is_empty();
        assert!(
            !kept(to - WEEK_MS),
            "a week before the end belongs to the week before"
        );
        assert!(kept(to - WEEK_MS + 60_000));
        assert!(kept(to));
        assert!(!kept(to + 60_000), "still going on at the end");
    }

    #[test]
    fn a_stage_night_replaces_the_actigraphy_night_of_the_same_morning() {
        let spans = [StageSpan {
            start_ms: Timestamp::parse("2026-03-02T23:00:00+01:00")
                .unwrap()
                .utc_ms,
            end_ms: Timestamp::parse("2026-03-03T07:00:00+01:00")
                .unwrap()
                .utc_ms,
            offset_secs: 3600,
            end_offset_secs: 3600,
            stage: SleepStage::Light,
            source: "w".into(),
        }];
        let stages = analytics::stage_nights(&spans, crate::window::series::rank);
        let sleep = analytics::Sleep {
            cole_kripke: Some(analytics::SleepTotal { sleep_minutes: 0 }),
            sadeh: Some(analytics::SleepTotal { sleep_minutes: 0 }),
            actigraphy_reason: None,
            periods: Vec::new(),
            nights: vec![
                actigraphy("2026-03-01"),
                actigraphy("2026-03-02"),
                actigraphy("2026-03-03"),
            ],
        };
        let v = serde_json::to_value(doc(&sleep, &stages)).unwrap();
        let got: Vec<(String, String)> = v["nights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["date"].as_str().unwrap().into(),
                    n["method"].as_str().unwrap().into(),
                )
            })
            .collect();
        // Evenings 03-01, 03-02 and 03-03 are the mornings 03-02, 03-03 (staged) and 03-04.
        let want = [
            ("2026-03-02", "actigraphy"),
            ("2026-03-03", "stages"),
            ("2026-03-04", "actigraphy"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(v["nights"][1]["asleep_minutes"], 480);
    }
}
