//! Sleep stages from a phone, end to end: three nights as HealthKit and Health Connect hold
//! them (a watch's stages inside the phone's in_bed; a session with out_of_bed and unstaged
//! sleep across the spring DST change; two sources staging one night) streamed over the
//! WebSocket with a few step intervals a day, analysed on request: every number of every
//! night is the hand-computed truth, and the insight speaks of those nights.

use chrono::{DateTime, Duration};
use serde_json::{Value, json};

use crate::analysis::analyze;
use crate::common::{Ws, spawn_app};

/// Back-to-back `sleep_stage` samples from `start` (RFC 3339, its offset kept), `(stage,
/// minutes)` each.
fn run(prefix: &str, start: &str, parts: &[(&str, i64)], source: &str) -> Vec<Value> {
    let mut t = DateTime::parse_from_rfc3339(start).unwrap();
    parts
        .iter()
        .enumerate()
        .map(|(i, &(stage, minutes))| {
            let end = t + Duration::minutes(minutes);
            let s = json!({"id": format!("{prefix}{i}"), "kind": "sleep_stage",
                "start": t.to_rfc3339(), "end": end.to_rfc3339(), "value": stage, "source": source});
            t = end;
            s
        })
        .collect()
}

fn samples() -> Vec<Value> {
    // Night to 2026-03-28 (CET): the iPhone's in_bed around the watch's stages.
    let mut s = run(
        "n1p",
        "2026-03-27T22:30:00+01:00",
        &[("in_bed", 495)],
        "iPhone",
    );
    s.extend(run(
        "n1w",
        "2026-03-27T22:50:00+01:00",
        &[
            ("awake", 15),
            ("light", 90),
            ("deep", 45),
            ("rem", 30),
            ("awake", 10),
            ("light", 120),
            ("rem", 40),
            ("awake", 5),
            ("light", 105),
            ("awake", 10),
        ],
        "Apple Watch",
    ));
    // Night to 2026-03-29: a Health Connect session; clocks go from 02:00 CET to 03:00 CEST
    // and the samples after the change carry +02:00.
    s.extend(run(
        "n2a",
        "2026-03-28T23:00:00+01:00",
        &[
            ("awake", 20),
            ("asleep", 100),
            ("out_of_bed", 10),
            ("awake", 5),
            ("asleep", 45),
        ],
        "Pixel Watch",
    ));
    s.extend(run(
        "n2b",
        "2026-03-29T03:00:00+02:00",
        &[
            ("asleep", 60),
            ("awake", 5),
            ("light", 115),
            ("deep", 30),
            ("rem", 60),
            ("out_of_bed", 15),
        ],
        "Pixel Watch",
    ));
    // Night to 2026-03-30 (CEST): a bedside sensor stages more minutes, the watch wins.
    s.extend(run(
        "n3s",
        "2026-03-29T23:00:00+02:00",
        &[("light", 480)],
        "Withings Sleep Analyzer",
    ));
    s.extend(run(
        "n3w",
        "2026-03-29T23:30:00+02:00",
        &[
            ("light", 210),
            ("deep", 60),
            ("rem", 60),
            ("awake", 10),
            ("light", 80),
        ],
        "Apple Watch",
    ));
    // Steps while walking, three times a day, on the local clock of the day.
    for (day, offset) in [
        (27, "+01:00"),
        (28, "+01:00"),
        (29, "+02:00"),
        (30, "+02:00"),
    ] {
        for hour in [9, 12, 18] {
            s.extend(run(
                &format!("steps-{day}-{hour}-"),
                &format!("2026-03-{day}T{hour:02}:00:00{offset}"),
                &[("", 10)],
                "iPhone",
            ));
        }
    }
    for x in s.iter_mut().filter(|x| x["value"] == "") {
        x["kind"] = json!("step_count");
        x["value"] = json!(500);
    }
    s
}

/// The fields the issue names, hand-computed from the samples above.
fn truth() -> Vec<Value> {
    vec![
        json!({"date": "2026-03-28", "method": "stages", "source": "Apple Watch",
            "sources": ["Apple Watch", "iPhone"],
            "bed_start": "2026-03-27T22:30:00+01:00", "bed_end": "2026-03-28T06:45:00+01:00",
            "sleep_onset": "2026-03-27T23:05:00+01:00", "final_wake": "2026-03-28T06:30:00+01:00",
            "midpoint": "2026-03-28T02:47:30+01:00",
            // Awake: 20 in the phone's bed before the watch, 15+10+5+10 staged, 5 after it.
            "in_bed_minutes": 495, "asleep_minutes": 430, "awake_minutes": 65,
            "light_minutes": 315, "deep_minutes": 45, "rem_minutes": 70, "unspecified_minutes": 0,
            "onset_latency_minutes": 35, "waso_minutes": 15, "efficiency_pct": 86.9,
            "awakenings": 2}),
        json!({"date": "2026-03-29", "method": "stages", "source": "Pixel Watch",
            "sources": ["Pixel Watch"],
            // Each time on the clock of the sample holding it: to bed at 23:00 CET, up at
            // 07:30 CEST; the midpoint (01:55Z) falls in a CEST sample.
            "bed_start": "2026-03-28T23:00:00+01:00", "bed_end": "2026-03-29T07:30:00+02:00",
            "sleep_onset": "2026-03-28T23:20:00+01:00", "final_wake": "2026-03-29T07:30:00+02:00",
            "midpoint": "2026-03-29T03:55:00+02:00",
            // Out of bed is not in bed (10 + 15 count in no bed minute), but the 10 inside
            // the sleep period are wake after sleep onset: WASO 10 + 5 + 5; they start an
            // awakening.
            "in_bed_minutes": 440, "asleep_minutes": 410, "awake_minutes": 30,
            "light_minutes": 115, "deep_minutes": 30, "rem_minutes": 60,
            "unspecified_minutes": 205, "onset_latency_minutes": 20, "waso_minutes": 20,
            "efficiency_pct": 93.2, "awakenings": 2}),
        json!({"date": "2026-03-30", "method": "stages", "source": "Apple Watch",
            "sources": ["Apple Watch", "Withings Sleep Analyzer"],
            "bed_start": "2026-03-29T23:30:00+02:00", "bed_end": "2026-03-30T06:30:00+02:00",
            "sleep_onset": "2026-03-29T23:30:00+02:00", "final_wake": "2026-03-30T06:30:00+02:00",
            "midpoint": "2026-03-30T03:00:00+02:00",
            "in_bed_minutes": 420, "asleep_minutes": 410, "awake_minutes": 10,
            "light_minutes": 290, "deep_minutes": 60, "rem_minutes": 60, "unspecified_minutes": 0,
            "onset_latency_minutes": 0, "waso_minutes": 10, "efficiency_pct": 97.6,
            "awakenings": 1}),
    ]
}

async fn insight_for(ws: &mut Ws, analysis_id: &Value) -> Value {
    loop {
        let v = ws.recv_within(std::time::Duration::from_secs(30)).await;
        if v["type"] == "insight" && v["analysis_id"] == *analysis_id {
            return v;
        }
    }
}

#[tokio::test]
async fn phone_sleep_stages_make_the_nights_and_the_insight_reports_them() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let samples = samples();
    let n = samples.len();
    ws.send(&json!({"type": "samples", "seq": 1, "samples": samples}))
        .await;
    assert_eq!(ws.recv_type("ack").await["accepted"], n);

    let a = analyze(&mut ws).await;
    let nights = a["sleep"]["nights"].as_array().unwrap();
    let mut dates: Vec<&str> = nights.iter().map(|n| n["date"].as_str().unwrap()).collect();
    dates.dedup();
    assert_eq!(dates.len(), nights.len(), "one entry per date: {nights:#?}");
    let staged: Vec<&Value> = nights.iter().filter(|n| n["method"] == "stages").collect();
    assert_eq!(staged.len(), 3, "{nights:#?}");
    for (got, want) in staged.iter().zip(truth()) {
        for (key, value) in want.as_object().unwrap() {
            assert_eq!(&got[key], value, "{} {key}", want["date"]);
        }
    }

    let insight = insight_for(&mut ws, &a["analysis_id"]).await;
    let f = &insight["features"];
    assert_eq!(f["stage_nights"], 3, "{f}");
    // (430 + 410 + 410) / 3 = 416.7 minutes; deep (45 + 30 + 60) / 3; REM (70 + 60 + 60) / 3.
    assert_eq!(f["sleep_minutes_mean"], 416.7, "{f}");
    assert_eq!(f["deep_minutes_mean"], 45.0, "{f}");
    assert_eq!(f["rem_minutes_mean"], 63.3, "{f}");
    let mut texts = vec![insight["summary"].as_str().unwrap().to_owned()];
    for key in ["key_points", "recommendations"] {
        texts.extend(
            insight[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned()),
        );
    }
    assert!(
        texts.iter().all(|t| !t.contains("No complete night")),
        "{texts:#?}"
    );
    assert!(
        texts[0].contains("You slept 6h 57m a night on average"),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("45 minutes of deep sleep and 1h 03m of REM sleep")),
        "{texts:#?}"
    );
}
