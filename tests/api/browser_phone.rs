//! The dashboard of a phone user in headless Chromium (`tests/browser/phone.mjs`): steps only
//! while walking, heart rate every 5 minutes, three nights of HealthKit-style sleep stages from
//! a watch (and, on the last night, a phone that stages it less finely), on a clock that moves
//! from UTC-5 to UTC-4 at 02:00 of the second night (a DST change), while the browser runs in
//! Tokyo. The page must draw one hypnogram per night, every heart-rate reading with the resting
//! rate per day (or say it is not available) and the steps per local hour, all on the data's
//! clock and readable at 1280 and 390 px. What it must show is computed here from the fixture.
//! Screenshots: `target/test-artifacts/dashboard-phone-1280.png` and `dashboard-phone-390.png`.
//! Needs Chromium and tests/browser/node_modules, like `browser.rs` (skipped without them).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, TimeZone, Timelike, Utc};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::browser::{browser_env, root};
use crate::common::{PASSWORD, spawn_app};

const BEFORE: i32 = -5 * 3600;
const AFTER: i32 = -4 * 3600;
const WATCH: &str = "Apple Watch";
const PHONE: &str = "iPhone";
const VIEWER_TIME_ZONE: &str = "Asia/Tokyo";
const NIGHTS: u64 = 3;
/// The watch's stages of a night after its sleep onset (stage, minutes): 7 h 40 min, with
/// the `awake` before sleep onset first.
const STAGES: [(&str, i64); 17] = [
    ("awake", 15),
    ("light", 40),
    ("deep", 30),
    ("light", 25),
    ("rem", 20),
    ("light", 35),
    ("deep", 25),
    ("light", 30),
    ("rem", 30),
    ("awake", 5),
    ("light", 40),
    ("rem", 35),
    ("light", 30),
    ("awake", 10),
    ("light", 45),
    ("rem", 25),
    ("light", 20),
];
/// Walks of every day (local hour, minute, minutes), counted in 5-minute step samples.
const WALKS: [(u32, u32, i64); 4] = [(7, 40, 25), (12, 15, 30), (17, 50, 30), (20, 0, 10)];

/// The phone fixture and what the dashboard must show of it.
struct Fixture {
    samples: Vec<Value>,
    expect: Value,
}

/// The clock of the data: UTC-5 before `change`, UTC-4 from it.
struct Clock {
    change: DateTime<Utc>,
}

impl Clock {
    fn at(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        let secs = if t < self.change { BEFORE } else { AFTER };
        t.with_timezone(&FixedOffset::east_opt(secs).unwrap())
    }

    /// The instant of a wall-clock time (one that exists on this clock).
    fn wall(&self, date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
        let naive = date.and_hms_opt(h, m, 0).unwrap();
        let before = FixedOffset::east_opt(BEFORE).unwrap();
        let t = before.from_local_datetime(&naive).unwrap().to_utc();
        if t < self.change {
            return t;
        }
        let after = FixedOffset::east_opt(AFTER).unwrap();
        after.from_local_datetime(&naive).unwrap().to_utc()
    }

    fn hhmm(&self, t: DateTime<Utc>) -> String {
        self.at(t).format("%H:%M").to_string()
    }
}

/// A fixed-seed generator for the small scatter of the values (no dependency for this).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n) as i64
    }
}

fn sample(
    clock: &Clock,
    id: String,
    kind: &str,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
    value: Value,
    source: &str,
) -> Value {
    let mut s = json!({"id": id, "kind": kind, "start": clock.at(from).to_rfc3339(),
        "value": value, "source": source});
    if let Some(to) = to {
        s["end"] = json!(clock.at(to).to_rfc3339());
    }
    s
}

/// Three nights ending on the mornings of `last - 2`, `last - 1` and `last`, data from 07:00
/// of the day before the first night to 12:00 of `last`; the clock changes at 02:00 of the
/// second night.
fn phone_fixture(last: NaiveDate) -> Fixture {
    let day = |back: u64| last.checked_sub_days(Days::new(back)).unwrap();
    let change = FixedOffset::east_opt(BEFORE)
        .unwrap()
        .from_local_datetime(&day(1).and_hms_opt(2, 0, 0).unwrap())
        .unwrap()
        .to_utc();
    let clock = Clock { change };
    let (start, end) = (clock.wall(day(NIGHTS), 7, 0), clock.wall(last, 12, 0));
    let mut rng = Lcg(18);
    let mut samples = Vec::new();
    let mut nights = Vec::new();
    let mut asleep = Vec::new();
    for k in 0..NIGHTS {
        let evening = day(NIGHTS - k);
        let onset_shift = [0, 15, -15][k as usize];
        let first = clock.wall(evening, 23, 10) + chrono::Duration::minutes(onset_shift);
        let mut t = first;
        let mut bars = 1;
        for (i, (stage, mins)) in STAGES.iter().enumerate() {
            let to = t + chrono::Duration::minutes(*mins);
            samples.push(sample(
                &clock,
                format!("n{k}-s{i}"),
                "sleep_stage",
                t,
                Some(to),
                json!(stage),
                WATCH,
            ));
            if *stage != "awake" {
                asleep.push((t, to));
            }
            t = to;
            bars += 1;
        }
        let (bed, out) = (
            first - chrono::Duration::minutes(20),
            t + chrono::Duration::minutes(15),
        );
        samples.push(sample(
            &clock,
            format!("n{k}-bed"),
            "sleep_stage",
            bed,
            Some(out),
            json!("in_bed"),
            WATCH,
        ));
        let over = (k == NIGHTS - 1).then(|| {
            // The phone stages the last night too, without light/deep/REM: the watch wins.
            for (i, (stage, from, to)) in [
                ("in_bed", bed - chrono::Duration::minutes(10), out),
                (
                    "asleep",
                    first + chrono::Duration::minutes(20),
                    t - chrono::Duration::minutes(20),
                ),
            ]
            .into_iter()
            .enumerate()
            {
                samples.push(sample(
                    &clock,
                    format!("n{k}-phone{i}"),
                    "sleep_stage",
                    from,
                    Some(to),
                    json!(stage),
                    PHONE,
                ));
            }
            PHONE
        });
        let shift = (clock.at(bed).offset() != clock.at(out).offset()).then_some("UTC-5 → UTC-4");
        nights.push(json!({
            "date": clock.at(out).date_naive().to_string(),
            "source": WATCH,
            "start": clock.hhmm(bed),
            "end": clock.hhmm(out),
            "first_stage": format!("Awake {}", clock.hhmm(first)),
            "bars": bars,
            "shift": shift,
            "over": over,
        }));
    }

    // Heart rate every 5 minutes: lower while asleep.
    let mut hr_readings = 0;
    let mut t = start;
    while t < end {
        let sleeping = asleep.iter().any(|(a, b)| *a <= t && t < *b);
        let bpm = if sleeping {
            50 + rng.below(8)
        } else {
            64 + rng.below(24)
        };
        let mut reading = sample(
            &clock,
            format!("hr-{hr_readings}"),
            "heart_rate",
            t,
            None,
            json!(bpm),
            WATCH,
        );
        reading["provenance"] = json!({"device": {"name": WATCH, "manufacturer": "Apple Inc.",
            "model": "Watch7,1", "software_version": "11.0"},
            "app": "com.apple.health", "method": "automatic"});
        samples.push(reading);
        hr_readings += 1;
        t += chrono::Duration::minutes(5);
    }

    // Steps only while walking, as the phone counts them: 5-minute intervals.
    let mut per_hour: BTreeMap<DateTime<Utc>, i64> = BTreeMap::new();
    let mut total = 0;
    for back in (0..=NIGHTS).rev() {
        for (h, m, mins) in WALKS {
            let walk = clock.wall(day(back), h, m);
            for i in 0..mins / 5 {
                let from = walk + chrono::Duration::minutes(5 * i);
                let to = from + chrono::Duration::minutes(5);
                if from < start || to > end {
                    continue;
                }
                let steps = 95 + rng.below(30);
                samples.push(sample(
                    &clock,
                    format!("steps-{back}-{h}-{i}"),
                    "step_count",
                    from,
                    Some(to),
                    json!(steps),
                    PHONE,
                ));
                // Walks never cross an hour's end inside a sample: the hour of the start.
                let hour = from - chrono::Duration::minutes(i64::from(clock.at(from).minute()));
                *per_hour.entry(hour).or_default() += steps;
                total += steps;
            }
        }
    }
    let (first_hour, first_steps) = per_hour.iter().next().map(|(h, s)| (*h, *s)).unwrap();
    let first_step_bar = format!(
        "{}–{}: {first_steps} steps",
        clock.at(first_hour).format("%a %-d %b %H:%M"),
        clock.hhmm(first_hour + chrono::Duration::hours(1)),
    );
    // Local midnights inside the data: the date labels under both time charts.
    let day_labels: Vec<String> = (0..NIGHTS)
        .rev()
        .map(|back| {
            clock
                .at(clock.wall(day(back), 0, 0))
                .format("%a %-d")
                .to_string()
        })
        .collect();
    let zone = format!(
        "times in UTC-5, then UTC-4 from {}",
        clock.at(change).format("%a %-d %b %H:%M")
    );
    Fixture {
        samples,
        expect: json!({
            "zone": zone,
            "hr_readings": hr_readings,
            "step_hours": per_hour.len(),
            "steps_total": total,
            "first_step_bar": first_step_bar,
            "day_labels": day_labels,
            "nights": nights,
            // The heart-rate readings' provenance, as the sources table shows it.
            "source_row": {"source": WATCH, "cells": [WATCH,
                "Apple Watch (Apple Inc. Watch7,1) software 11.0", "com.apple.health",
                "recorded automatically", hr_readings.to_string()]},
        }),
    }
}

/// The resting heart rate the page must show per day, as "Resting heart rate Sat 5 Dec: 54
/// bpm": from the analysis' `heart.days[]` where it has them (none before that part of issue
/// 18 lands, and then the page must say "not available").
fn resting_titles(analysis: &Value) -> Vec<String> {
    let days = analysis["heart"]["days"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    days.iter()
        .filter_map(|d| {
            let bpm = d["resting_bpm"].as_f64()?;
            let date = NaiveDate::parse_from_str(d["date"].as_str()?, "%Y-%m-%d").ok()?;
            // As JavaScript prints a number: no ".0" on a whole one.
            let bpm = if bpm.fract() == 0.0 {
                format!("{}", bpm as i64)
            } else {
                format!("{bpm}")
            };
            Some(format!(
                "Resting heart rate {}: {bpm} bpm",
                date.format("%a %-d %b")
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_draws_a_phone_users_hypnogram_and_heart_rate_on_their_clock() {
    let Some(script) = browser_env("phone.mjs") else {
        return;
    };
    let app = spawn_app().await;
    let user = app.user().await;
    // The last night ends on the latest morning at least 13 hours ago on the data's clock,
    // so all of the data (to 12:00 that day) is in the past.
    let after = FixedOffset::east_opt(AFTER).unwrap();
    let last = (Utc::now() - chrono::Duration::hours(13))
        .with_timezone(&after)
        .date_naive();
    let mut fixture = phone_fixture(last);

    // Streamed as a phone app would, then analysed on request.
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    for (seq, chunk) in fixture.samples.chunks(1000).enumerate() {
        ws.send(&json!({"type": "samples", "seq": seq, "samples": chunk}))
            .await;
        loop {
            let v = ws.recv_within(Duration::from_secs(30)).await;
            if v["type"] == "ack" {
                assert_eq!(v["accepted"].as_u64(), Some(chunk.len() as u64), "{v}");
                break;
            }
            assert!(
                ["analysis", "insight", "insight_delta", "insight_failed"]
                    .contains(&v["type"].as_str().unwrap()),
                "unexpected frame {v}"
            );
        }
    }
    ws.send(&json!({"type": "analyze"})).await;
    let analysis = loop {
        let v = ws.recv_within(Duration::from_secs(60)).await;
        if v["type"] == "analysis" && v["trigger"] == "request" {
            break v;
        }
        assert!(
            ["analysis", "insight", "insight_delta", "insight_failed"]
                .contains(&v["type"].as_str().unwrap()),
            "unexpected frame {v}"
        );
    };
    drop(ws);
    fixture.expect["analysis_id"] = analysis["analysis_id"].clone();
    fixture.expect["resting"] = json!(resting_titles(&analysis));

    let shots = root().join("target/test-artifacts");
    std::fs::create_dir_all(&shots).unwrap();
    let (wide, narrow) = (
        shots.join("dashboard-phone-1280.png"),
        shots.join("dashboard-phone-390.png"),
    );
    for shot in [&wide, &narrow] {
        let _ = std::fs::remove_file(shot);
    }
    let run = Command::new("node")
        .arg(&script)
        .current_dir(script.parent().unwrap())
        .env("BASE_URL", format!("http://{}", app.addr))
        .env("EMAIL", &user.email)
        .env("PASSWORD", PASSWORD)
        .env("USER_ID", user.user_id.to_string())
        .env("TIME_ZONE", VIEWER_TIME_ZONE)
        .env("SCREENSHOT", &wide)
        .env("SCREENSHOT_NARROW", &narrow)
        .env("EXPECT", fixture.expect.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("phone.mjs did not finish within 180 s")
        .expect("start node");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("DONE"),
        "phone.mjs failed ({}); expected {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status,
        fixture.expect
    );
    for shot in [&wide, &narrow] {
        let png = std::fs::read(shot).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        assert!(png.len() > 10 * 1024, "screenshot of {} bytes", png.len());
    }
}
