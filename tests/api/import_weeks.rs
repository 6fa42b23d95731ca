//! Analyses of imported history (docs/import.md, "Analyses of the imported weeks"): an
//! import of about two weeks and a half analyses each of its 3 weeks once (trigger `import`,
//! weeks ending at the local midnight after the latest sample), and only the latest week's
//! analysis gets an insight.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestApp, spawn_app};
use crate::import_apple::{finished, generate, upload};

const WEEK_MS: i64 = 7 * 86_400_000;

async fn list(app: &TestApp, token: &str, what: &str) -> Vec<Value> {
    let path = format!("/api/v1/{what}?from=2024-01-01T00:00:00Z&limit=500");
    let (status, page) = app.get(&path, Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page[what].as_array().unwrap().clone()
}

fn ms(t: &Value) -> i64 {
    DateTime::parse_from_rfc3339(t.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn an_import_of_three_weeks_is_analysed_once_per_week() {
    let work = tempfile::tempdir().unwrap();
    let (file, truth) = generate(work.path(), 14, false);
    // The generator's last day is in Berlin (+01:00) after a flight from New York (-05:00).
    let days: Vec<&String> = truth["days"].as_object().unwrap().keys().collect();
    let (first, last) = (days[0], days[days.len() - 1]);
    let berlin = FixedOffset::east_opt(3600).unwrap();
    let new_york = FixedOffset::west_opt(5 * 3600).unwrap();
    let midnight = |day: &str, off: FixedOffset, plus_days: u64| {
        let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap() + chrono::Days::new(plus_days);
        d.and_hms_opt(0, 0, 0)
            .unwrap()
            .and_local_timezone(off)
            .unwrap()
            .timestamp_millis()
    };
    let until = midnight(last, berlin, 1);
    let earliest = midnight(first, new_york, 0);
    // Three weeks: the oldest holds the first day.
    assert!(until - 3 * WEEK_MS <= earliest && earliest < until - 2 * WEEK_MS);

    let app = spawn_app().await;
    let user = app.user().await;
    let (status, job) = upload(&app, &user.access, std::fs::read(&file).unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = finished(&app, &user.access, job["import_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");

    // Weeks run two at a time, so the latest may be stored before the one before it: wait
    // for three (a fourth, or a second analysis of a week, still fails the count below).
    for _ in 0..400 {
        if list(&app, &user.access, "analyses").await.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything that would come after the third has had time to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let analyses = list(&app, &user.access, "analyses").await;
    assert_eq!(analyses.len(), 3, "{analyses:#?}");
    for (k, a) in analyses.iter().enumerate() {
        assert_eq!(a["trigger"], "import", "{a}");
        let (from, to) = (ms(&a["window"]["from"]), ms(&a["window"]["to"]));
        let week_end = until - (2 - k as i64) * WEEK_MS;
        assert!(
            week_end - WEEK_MS <= from && from < to && to <= week_end,
            "analysis {k} {from}..{to} is not within its week ending {week_end}: {a}"
        );
    }
    // The oldest week starts on the first day with steps, the latest ends on the last (the
    // last imported day holds only the end of a night).
    let step_days: Vec<&String> = truth["days"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, kinds)| kinds.get("step_count").is_some())
        .map(|(day, _)| day)
        .collect();
    let first_steps = midnight(step_days[0], new_york, 0);
    let last_steps = midnight(step_days[step_days.len() - 1], berlin, 0);
    let from = ms(&analyses[0]["window"]["from"]);
    assert!(
        first_steps <= from && from < first_steps + 86_400_000,
        "{}",
        analyses[0]
    );
    let to = ms(&analyses[2]["window"]["to"]);
    assert!(
        last_steps < to && to <= last_steps + 86_400_000,
        "{}",
        analyses[2]
    );

    // One insight: of the latest week.
    let latest_id = analyses[2]["analysis_id"].clone();
    let mut insights = Vec::new();
    for _ in 0..400 {
        insights = list(&app, &user.access, "insights").await;
        if insights.iter().any(|i| i["analysis_id"] == latest_id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(insights.len(), 1, "{insights:#?}");
    assert_eq!(insights[0]["analysis_id"], latest_id);
}
