//! The field report of issue 18 through the real server: three days of phone data (steps only
//! while walking, 07:00-23:00 local; heart rate every 5 minutes and sleep stages every night
//! from a watch), streamed over the WebSocket, analysed and explained. The server used to put
//! the activity peak at 05:30, score walking minutes as sleep, report interdaily stability
//! above 1 with a few missing hours, and tell a phone user to wear the device day and night.

use chrono::{Duration, FixedOffset, TimeZone};
use serde_json::{Value, json};

use crate::analysis::analyze;
use crate::common::{Ws, spawn_app};

/// `minute` minutes after local midnight of the first day, on a clock `hours` east of UTC.
fn local_at(minute: i64, hours: i32) -> String {
    let tz = FixedOffset::east_opt(hours * 3600).unwrap();
    (tz.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap() + Duration::minutes(minute)).to_rfc3339()
}

/// One walk per hour from 07:00 to 22:xx, all ending before 23:00: (start, end, steps) in
/// local minutes since the first midnight; `skip` drops walks (hours the phone sent nothing).
fn walks(skip: impl Fn(i64, i64) -> bool) -> Vec<(i64, i64, i64)> {
    let mut out = Vec::new();
    for d in 0..3i64 {
        for h in 7..23i64 {
            if skip(d, h) {
                continue;
            }
            let start = d * 1440 + h * 60 + (d * 17 + h * 29) % 40;
            let len = 5 + (d * 7 + h * 3) % 15;
            let rate = 60 + (h * 13 + d * 5) % 60 + if h < 9 { 40 } else { 0 };
            out.push((start, start + len, len * rate));
        }
    }
    out
}

fn field_report(step_source: &str, skip: impl Fn(i64, i64) -> bool) -> Vec<Value> {
    field_report_in(step_source, skip, |_| 1)
}

/// [`field_report`] with day `d` (and the night before it) on a clock `zone(d)` hours east of
/// UTC: the same local times every day, wherever the phone is.
fn field_report_in(
    step_source: &str,
    skip: impl Fn(i64, i64) -> bool,
    zone: impl Fn(i64) -> i32,
) -> Vec<Value> {
    let local = |minute: i64, day: i64| local_at(minute, zone(day));
    let mut out: Vec<Value> = walks(skip)
        .into_iter()
        .map(|(a, b, steps)| {
            json!({"id": format!("steps-{a}"), "kind": "step_count", "start": local(a, a / 1440),
                   "end": local(b, a / 1440), "value": steps, "unit": "count", "source": step_source})
        })
        .collect();
    for m in (0..3 * 1440).step_by(5) {
        out.push(
            json!({"id": format!("hr-{m}"), "kind": "heart_rate", "start": local(m, m / 1440),
                        "value": 60 + m % 7, "source": "Apple Watch"}),
        );
    }
    let stages = ["light", "deep", "light", "rem"];
    for night in 0..3i64 {
        for (i, k) in (-30..390).step_by(30).enumerate() {
            let from = night * 1440 + k;
            if from < 0 {
                continue;
            }
            out.push(json!({"id": format!("stage-{from}"), "kind": "sleep_stage",
                            "start": local(from, night), "end": local(from + 30, night),
                            "value": stages[i % stages.len()], "source": "Apple Watch"}));
        }
    }
    out
}

/// Sends the samples, waits for the ack, asks for an analysis and returns it with the text of
/// the insight that follows it.
async fn analyse(ws: &mut Ws, samples: Vec<Value>) -> (Value, Vec<String>) {
    let n = samples.len();
    ws.send(&json!({"type": "samples", "seq": 1, "samples": samples}))
        .await;
    loop {
        let v = ws.recv_within(std::time::Duration::from_secs(30)).await;
        if v["type"] == "ack" {
            assert_eq!(v["accepted"].as_u64(), Some(n as u64), "{v}");
            break;
        }
    }
    let a = analyze(ws).await;
    let insight = loop {
        let v = ws.recv_within(std::time::Duration::from_secs(30)).await;
        if v["type"] == "insight" && v["analysis_id"] == a["analysis_id"] {
            break v;
        }
    };
    let mut texts = vec![insight["summary"].as_str().unwrap().to_owned()];
    for list in ["key_points", "recommendations"] {
        for t in insight[list].as_array().unwrap() {
            texts.push(t.as_str().unwrap().to_owned());
        }
    }
    (a, texts)
}

fn hour_of(hhmm: &str) -> i64 {
    hhmm[..2].parse().unwrap()
}

/// What holds for every step-only analysis, whoever counted the steps.
fn assert_truthful_for_steps(a: &Value, texts: &[String]) {
    assert_eq!(a["activity"]["kind"], "step_count");
    assert_eq!(a["activity"]["coverage"]["rule"], "step_source_hours");
    let np = &a["nonparametric"];
    assert_eq!(np["signal"], "step_count");
    assert_eq!(a["cosinor"]["signal"], "step_count");
    match np["is"].as_f64() {
        Some(is) => assert!((0.0..=1.0).contains(&is), "IS {is}"),
        None => assert!(np["is"].is_null()),
    }
    if let Some(m10) = np["m10"]["start"].as_str() {
        assert!((7..23).contains(&hour_of(m10)), "M10 starts at {m10}");
    }
    if let Some(peak) = a["cosinor"]["acrophase_hours"].as_f64() {
        assert!((7.0..23.0).contains(&peak), "acrophase {peak}");
    }
    // No actigraphy sleep on steps, and the document says why.
    let sleep = &a["sleep"];
    assert!(
        sleep["cole_kripke"].is_null() && sleep["sadeh"].is_null(),
        "{sleep}"
    );
    assert_eq!(sleep["periods"], json!([]));
    assert!(
        sleep["nights"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["method"] == "stages"),
        "no actigraphy night from steps: {}",
        sleep["nights"]
    );
    assert!(
        sleep["actigraphy_reason"]
            .as_str()
            .unwrap()
            .starts_with("step data")
    );
    // PAT does not score steps, and says so.
    assert_eq!(a["pat"]["available"], false);
    assert_eq!(a["pat"]["code"], "unsupported_signal");
    assert!(
        a["pat"]["reason"]
            .as_str()
            .unwrap()
            .contains("PAT was trained on minute activity counts")
    );

    // The insight states nothing the analysis contradicts.
    let all = texts.join("\n");
    for banned in ["Wear the device", "wear the device", "No complete night"] {
        assert!(!all.contains(banned), "{banned:?} in {all}");
    }
    let stability_mentioned = all.contains("interdaily stability");
    assert_eq!(
        stability_mentioned,
        np["is"].is_number(),
        "an IS sentence exactly when IS is defined: {all}"
    );
    assert!(!all.contains("stability -"), "{all}");
    // Every clock time said about a peak or the most active hours lies in the walking hours.
    for t in texts {
        for marker in ["peaked around ", "most active 10 hours at "] {
            if let Some(at) = t.find(marker) {
                let time = &t[at + marker.len()..at + marker.len() + 5];
                assert!((7..23).contains(&hour_of(time)), "{time} in {t:?}");
            }
        }
    }
}

#[tokio::test]
async fn phone_steps_with_missing_hours_give_a_truthful_analysis_and_insight() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    // The phone sent nothing at 12:00-13:59 on the second day: a few missing hours.
    let samples = field_report("iPhone", |d, h| d == 1 && (12..14).contains(&h));
    let (a, texts) = analyse(&mut ws, samples).await;
    assert_truthful_for_steps(&a, &texts);
    // The phone sent steps in 16 hours a day, less the two it skipped; nights stay missing
    // (the watch's heart rate does not make the phone a recorder), walking hours are full.
    assert_eq!(a["activity"]["coverage"]["recording_hours"], 3 * 16 - 2);
    assert_eq!(a["minutes_present"], (3 * 16 - 2) * 60);
    let steps: i64 = walks(|d, h| d == 1 && (12..14).contains(&h))
        .iter()
        .map(|w| w.2)
        .sum();
    let walked: i64 = walks(|d, h| d == 1 && (12..14).contains(&h))
        .iter()
        .map(|w| w.1 - w.0)
        .sum();
    assert_eq!(
        a["activity"]["coverage"]["filled_minutes"],
        (3 * 16 - 2) * 60 - walked,
        "{steps} steps"
    );
    // The GGIR formula is kept under its own name.
    assert!(a["nonparametric"]["is_ggir"].is_number() || a["nonparametric"]["is_ggir"].is_null());
}

#[tokio::test]
async fn watch_steps_place_the_peak_inside_the_walking_hours() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let (a, texts) = analyse(&mut ws, field_report("Apple Watch", |_, _| false)).await;
    assert_truthful_for_steps(&a, &texts);
    // The watch sent heart rate day and night: every hour recording, the average day is
    // complete, so the peak measures exist and are checked, not skipped.
    let np = &a["nonparametric"];
    assert!(np["m10"]["start"].is_string(), "{np}");
    assert!(
        a["cosinor"]["acrophase_hours"].is_number(),
        "{}",
        a["cosinor"]
    );
    assert!(np["is"].is_number(), "{np}");
    assert_eq!(
        np["l5"]["mean"], 0.0,
        "the quietest five hours are at night: {np}"
    );
    let all = texts.join("\n");
    assert!(all.contains("most active 10 hours at"), "{all}");
}

#[tokio::test]
async fn a_trip_across_time_zones_keeps_the_rhythm_on_the_local_clock() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    // Two days in Berlin (UTC+1), then a flight to New York (UTC-5): the same habits on the
    // local clock, walking 07:00-23:00 and asleep at night. On one clock (the latest) the
    // Berlin days walk from 01:00 and sleep from 17:00: the rhythm measures used to mix them.
    let samples = field_report_in("Apple Watch", |_, _| false, |d| if d < 2 { 1 } else { -5 });
    let (a, texts) = analyse(&mut ws, samples).await;
    assert_eq!(a["window"]["utc_offset_minutes"], -300, "{}", a["window"]);
    assert_truthful_for_steps(&a, &texts);
    let np = &a["nonparametric"];
    assert!(np["m10"]["start"].is_string(), "{np}");
    assert_eq!(
        np["l5"]["mean"], 0.0,
        "the quietest five hours are the nights, on every day's clock: {np}"
    );
    let l5 = hour_of(np["l5"]["start"].as_str().unwrap());
    assert!(l5 == 23 || l5 < 3, "L5 starts at {l5}h: {np}");
    // The hourly chart is on the local clock too: no steps between 23:00 and 07:00.
    let hourly = &a["activity"]["hourly"];
    let first = hour_of(&hourly["start"].as_str().unwrap()[11..16]);
    for (i, m) in hourly["means"].as_array().unwrap().iter().enumerate() {
        let hour = (first + i as i64) % 24;
        if !(7..23).contains(&hour) {
            assert!(
                m.is_null() || m.as_f64() == Some(0.0),
                "steps at {hour}:00 on the chart: {hourly}"
            );
        }
    }
}
