//! `heart.days` through the server: phone-shaped data (heart rate every 5 minutes from a watch,
//! the phone's readings in the same minutes, sleep stages, HRV, respiratory rate and SpO2 at
//! night, step intervals from the phone) streamed over the WebSocket, analysed on request,
//! against values computed by hand below. Europe/Berlin around the DST change of 30 March
//! 2025 (02:00 CET -> 03:00 CEST), with a day without the watch (29 March).

use serde_json::{Value, json};

use crate::analysis::analyze;
use crate::common::{Ws, spawn_app};

const MIN_MS: i64 = 60_000;

fn at(utc_ms: i64, offset_h: i64) -> String {
    let offset = chrono::FixedOffset::east_opt((offset_h * 3600) as i32).unwrap();
    chrono::DateTime::from_timestamp_millis(utc_ms)
        .unwrap()
        .with_timezone(&offset)
        .to_rfc3339()
}

fn utc(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

/// Berlin's offset at a UTC instant, hours (the change is at 01:00 UTC on 30 March).
fn berlin(utc_ms: i64) -> i64 {
    if utc_ms < utc("2025-03-30T01:00:00Z") {
        1
    } else {
        2
    }
}

fn sample(id: String, kind: &str, start_ms: i64, value: Value, source: &str) -> Value {
    json!({"id": id, "kind": kind, "start": at(start_ms, berlin(start_ms)), "value": value, "source": source})
}

fn stage(id: &str, from: &str, to: &str, value: &str) -> Value {
    json!({"id": id, "kind": "sleep_stage", "start": from, "end": to, "value": value, "source": "Apple Watch"})
}

/// Heart rate every 5 minutes from `from` (UTC ms), `n` readings, value by index.
fn every5(prefix: &str, from: i64, n: i64, source: &str, value: impl Fn(i64) -> f64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let t = from + i * 5 * MIN_MS;
            sample(
                format!("{prefix}{i}"),
                "heart_rate",
                t,
                json!(value(i)),
                source,
            )
        })
        .collect()
}

fn phone_week() -> Vec<Value> {
    let mut s = Vec::new();
    // Night dated 28 March: 27 March 22:00 to 28 March 07:55 (+01:00), asleep 23:00-07:00
    // except 04:00-04:10 awake. Index i is 22:00 + 5i minutes: asleep i 12..108 less 72, 73.
    let n1 = utc("2025-03-27T22:00:00+01:00");
    s.extend(every5("w1-", n1, 120, "Apple Watch", |i| match i {
        12..=107 if (48..=53).contains(&i) => 48.0,
        12..=107 => 55.0,
        _ => 70.0,
    }));
    // The phone in the same minutes (30 s later), higher: it never wins a minute.
    s.extend(every5("p1-", n1 + 30_000, 24, "iPhone", |_| 90.0));
    s.push(stage(
        "s1a",
        "2025-03-27T23:00:00+01:00",
        "2025-03-28T02:00:00+01:00",
        "light",
    ));
    s.push(stage(
        "s1b",
        "2025-03-28T02:00:00+01:00",
        "2025-03-28T04:00:00+01:00",
        "deep",
    ));
    s.push(stage(
        "s1c",
        "2025-03-28T04:00:00+01:00",
        "2025-03-28T04:10:00+01:00",
        "awake",
    ));
    s.push(stage(
        "s1d",
        "2025-03-28T04:10:00+01:00",
        "2025-03-28T07:00:00+01:00",
        "rem",
    ));
    let t = |x: &str| utc(x);
    s.push(sample(
        "v1".into(),
        "heart_rate_variability",
        t("2025-03-28T03:00:00+01:00"),
        json!(45),
        "Apple Watch",
    ));
    s.push(sample(
        "r1".into(),
        "respiratory_rate",
        t("2025-03-28T01:00:00+01:00"),
        json!(14),
        "Apple Watch",
    ));
    s.push(sample(
        "r2".into(),
        "respiratory_rate",
        t("2025-03-28T05:00:00+01:00"),
        json!(16),
        "Apple Watch",
    ));
    // Awake: not a nightly value.
    s.push(sample(
        "r3".into(),
        "respiratory_rate",
        t("2025-03-28T12:00:00+01:00"),
        json!(20),
        "Apple Watch",
    ));
    // 29 March: the watch is on its charger all day (no heart data at all).
    // Night dated 30 March, across the DST change: 00:00 CET (UTC 23:00) to 08:25 CEST
    // (UTC 06:25), 90 readings; asleep 00:30 CET (i 6) to 08:00 CEST (i 84); the low half
    // hour is 04:00-04:25 CEST (UTC 02:00, i 36..=41).
    let n2 = t("2025-03-29T23:00:00Z");
    s.extend(every5("w2-", n2, 90, "Apple Watch", |i| match i {
        36..=41 => 50.0,
        6..=83 => 58.0,
        _ => 70.0,
    }));
    s.push(stage(
        "s2a",
        "2025-03-30T00:15:00+01:00",
        "2025-03-30T00:30:00+01:00",
        "in_bed",
    ));
    s.push(stage(
        "s2b",
        "2025-03-30T00:30:00+01:00",
        "2025-03-30T03:00:00+02:00",
        "light",
    ));
    s.push(stage(
        "s2c",
        "2025-03-30T03:00:00+02:00",
        "2025-03-30T05:00:00+02:00",
        "deep",
    ));
    s.push(stage(
        "s2d",
        "2025-03-30T05:00:00+02:00",
        "2025-03-30T08:00:00+02:00",
        "rem",
    ));
    s.push(sample(
        "v2".into(),
        "heart_rate_variability",
        t("2025-03-30T04:00:00+02:00"),
        json!(40),
        "Apple Watch",
    ));
    s.push(sample(
        "o1".into(),
        "oxygen_saturation",
        t("2025-03-30T03:30:00+02:00"),
        json!(95),
        "Apple Watch",
    ));
    s.push(sample(
        "o2".into(),
        "oxygen_saturation",
        t("2025-03-30T05:00:00+02:00"),
        json!(97),
        "Apple Watch",
    ));
    // Steps from the phone while walking: 10 minutes at the top of each hour 08:00-20:00 on
    // 27-29 March, 08:00-11:00 on 30 March.
    for (day, hours) in [("27", 8..21), ("28", 8..21), ("29", 8..21), ("30", 8..12)] {
        for h in hours {
            let off = if day == "30" { "+02:00" } else { "+01:00" };
            let start = format!("2025-03-{day}T{h:02}:00:00{off}");
            let end = format!("2025-03-{day}T{h:02}:10:00{off}");
            s.push(json!({"id": format!("st{day}{h}"), "kind": "step_count", "start": start, "end": end, "value": 300, "source": "iPhone"}));
        }
    }
    s
}

/// Sends `samples` in frames of 200 (`seq` from `seq0`), waiting for each ack.
async fn send_all(ws: &mut Ws, samples: &[Value], seq0: usize) {
    for (i, chunk) in samples.chunks(200).enumerate() {
        let seq = seq0 + i;
        ws.send(&json!({"type": "samples", "seq": seq, "samples": chunk}))
            .await;
        loop {
            let v = ws.recv().await;
            match v["type"].as_str() {
                Some("ack") => {
                    assert_eq!(v["accepted"].as_u64(), Some(chunk.len() as u64), "{v}");
                    break;
                }
                Some("analysis" | "insight" | "insight_delta") => {}
                _ => panic!("unexpected frame {v}"),
            }
        }
    }
}

fn day<'a>(a: &'a Value, date: &str) -> &'a Value {
    a["heart"]["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == date)
        .unwrap_or_else(|| panic!("no heart day {date}: {}", a["heart"]))
}

#[tokio::test]
async fn heart_days_of_a_phone_week_match_the_hand_computed_values() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    send_all(&mut ws, &phone_week(), 0).await;
    let a = analyze(&mut ws).await;
    let heart = &a["heart"];
    let dates: Vec<&str> = heart["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        ["2025-03-27", "2025-03-28", "2025-03-29", "2025-03-30"]
    );

    // 27 March: 22:00-23:55, no night dated 27 March: the day's lowest half hour is
    // 23:00-23:25 (6 x 55); the phone's 90s never count.
    let d = day(&a, "2025-03-27");
    assert_eq!(d["resting_bpm"], json!(55.0), "{d}");
    assert_eq!(d["resting_method"], "day_lowest_30min");
    assert_eq!(d["hr_minutes"], 24);
    assert!(d["asleep_mean_bpm"].is_null(), "{d}");

    // 28 March: lowest asleep half hour 02:00-02:25 (6 x 48). Asleep minutes: 96 less the
    // two awake ones = 94: (88 x 55 + 6 x 48) / 94 = 54.55.. -> 54.6.
    let d = day(&a, "2025-03-28");
    assert_eq!(d["resting_bpm"], json!(48.0), "{d}");
    assert_eq!(d["resting_method"], "asleep_lowest_30min");
    assert_eq!(d["asleep_mean_bpm"], json!(54.6));
    assert_eq!(d["hr_minutes"], 96);
    assert_eq!(d["hrv_sdnn_ms"], json!(45.0));
    assert_eq!(d["respiratory_rate"], json!(15.0));
    assert!(
        d["spo2_pct"].is_null() && d["hrv_rmssd_ms"].is_null(),
        "{d}"
    );

    // 29 March: no watch: listed, every value null, never 0.
    let d = day(&a, "2025-03-29");
    for k in [
        "resting_bpm",
        "resting_method",
        "asleep_mean_bpm",
        "hrv_sdnn_ms",
        "hrv_rmssd_ms",
        "respiratory_rate",
        "spo2_pct",
    ] {
        assert!(d[k].is_null(), "{k}: {d}");
    }
    assert_eq!(d["hr_minutes"], 0);

    // 30 March (DST): asleep UTC 23:30-06:00, 78 minutes: (72 x 58 + 6 x 50) / 78 = 57.38..
    let d = day(&a, "2025-03-30");
    assert_eq!(d["resting_bpm"], json!(50.0), "{d}");
    assert_eq!(d["resting_method"], "asleep_lowest_30min");
    assert_eq!(d["asleep_mean_bpm"], json!(57.4));
    assert_eq!(d["hr_minutes"], 90);
    assert_eq!(d["hrv_sdnn_ms"], json!(40.0));
    assert_eq!(d["spo2_pct"], json!(96.0));
    assert!(d["respiratory_rate"].is_null(), "{d}");

    // Trends: resting 28 and 30 March recent (48, 50), 27 March alone before: no change.
    let r = &heart["resting"];
    assert_eq!(
        (&r["recent_from"], &r["recent_to"]),
        (&json!("2025-03-28"), &json!("2025-03-30"))
    );
    assert_eq!(
        (&r["recent_days"], &r["recent_mean"]),
        (&json!(2), &json!(49.0))
    );
    assert_eq!(r["previous_days"], 1);
    assert!(r["previous_mean"].is_null() && r["change"].is_null(), "{r}");
    let s = &heart["hrv"]["sdnn"];
    assert_eq!(
        (&s["recent_days"], &s["recent_mean"]),
        (&json!(2), &json!(42.5))
    );
    assert!(heart["hrv"]["rmssd"].is_null(), "no RMSSD was sent");
    // Every heart-rate minute is the watch's: 120 + 90.
    assert_eq!(
        heart["sources"],
        json!([{"source": "Apple Watch", "minutes": 210, "rank": 3}])
    );

    // The insight written for this analysis says the trends with the analysis' numbers.
    let id = a["analysis_id"].clone();
    let insight = loop {
        let v = ws.recv_within(std::time::Duration::from_secs(30)).await;
        if v["type"] == "insight" && v["analysis_id"] == id {
            break v;
        }
    };
    let points: Vec<&str> = insight["key_points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        points.contains(
            &"Resting heart rate (lowest 30-minute average while asleep) averaged 49 bpm over 2 recent days."
        ),
        "{points:#?}"
    );
    assert!(
        points.contains(&"Heart rate variability (SDNN) averaged 42.5 ms over 2 recent days."),
        "{points:#?}"
    );
    assert!(points.iter().all(|p| !p.contains("RMSSD")), "{points:#?}");
}

#[tokio::test]
async fn new_heart_data_gives_a_new_analysis() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let week = phone_week();
    let (hrv, rest): (Vec<Value>, Vec<Value>) = week.into_iter().partition(|s| s["id"] == "v2");
    send_all(&mut ws, &rest, 0).await;
    let first = analyze(&mut ws).await;
    assert_eq!(day(&first, "2025-03-30")["hrv_sdnn_ms"], Value::Null);
    send_all(&mut ws, &hrv, 100).await;
    let second = analyze(&mut ws).await;
    assert_ne!(first["analysis_id"], second["analysis_id"]);
    assert_eq!(day(&second, "2025-03-30")["hrv_sdnn_ms"], json!(40.0));
}
