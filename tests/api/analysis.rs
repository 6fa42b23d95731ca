//! Windows and analytics through the server: the golden recordings streamed over the
//! WebSocket give the reference values; sources are never summed; REST and WebSocket agree.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, Ws, spawn_app};

pub fn golden_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: ../shared/golden not found (reference recordings are not part of the project)"
        );
        None
    }
}

/// `(timestamp, count)` rows of a golden input; `None` counts are missing minutes.
fn read_input(path: &Path) -> Vec<(String, Option<f64>)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (t, c) = l.split_once(',').unwrap();
            (t.to_owned(), (!c.is_empty()).then(|| c.parse().unwrap()))
        })
        .collect()
}

/// Streams activity counts in frames of 1000 and waits for every ack; analyses pushed
/// meanwhile (completed days) are returned.
pub async fn stream(
    ws: &mut Ws,
    rows: &[(String, Option<f64>)],
    prefix: &str,
    source: Option<&str>,
) -> Vec<Value> {
    let mut pushed = Vec::new();
    let present: Vec<(usize, &(String, Option<f64>))> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.1.is_some())
        .collect();
    for (seq, chunk) in present.chunks(1000).enumerate() {
        let samples: Vec<Value> = chunk
            .iter()
            .map(|(i, (t, c))| {
                let mut s = json!({"id": format!("{prefix}{i}"), "kind": "activity_count", "start": t, "value": c.unwrap()});
                if let Some(src) = source {
                    s["source"] = json!(src);
                }
                s
            })
            .collect();
        ws.send(&json!({"type": "samples", "seq": seq, "samples": samples}))
            .await;
        loop {
            let v = ws.recv().await;
            match v["type"].as_str() {
                Some("ack") => {
                    assert_eq!(v["accepted"].as_u64(), Some(chunk.len() as u64), "{v}");
                    break;
                }
                Some("analysis") => pushed.push(v),
                // Each new analysis is followed by its insight.
                Some("insight" | "insight_delta") => {}
                _ => panic!("unexpected frame {v}"),
            }
        }
    }
    pushed
}

/// Sends `analyze` and returns the `analysis` answering it.
pub async fn analyze(ws: &mut Ws) -> Value {
    ws.send(&json!({"type": "analyze"})).await;
    loop {
        let v = ws.recv_within(std::time::Duration::from_secs(30)).await;
        if v["type"] == "analysis" && v["trigger"] == "request" {
            return v;
        }
        assert!(
            ["analysis", "insight", "insight_delta"].contains(&v["type"].as_str().unwrap_or("")),
            "unexpected frame {v}"
        );
    }
}

fn close(case: &str, what: &str, got: &Value, want: f64, tol: f64) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("{case} {what}: missing ({got})"));
    let err = (got - want).abs() / want.abs().max(1e-300);
    assert!(
        err <= tol,
        "{case} {what}: got {got}, want {want} (rel err {err:e})"
    );
}

fn instant(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

pub fn check_golden(case: &str, dir: &Path, a: &Value) {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let np = &a["nonparametric"];
    if let Some(ggir) = expected["nonparametric"].get("GGIR_g.IVIS") {
        close(case, "IS", &np["is"], ggir["IS"].as_f64().unwrap(), 1e-9);
        close(case, "IV", &np["iv"], ggir["IV"].as_f64().unwrap(), 1e-9);
        let py = &expected["nonparametric"]["pyActigraphy"]["raw_counts"];
        close(case, "RA", &np["ra"], py["RA"].as_f64().unwrap(), 1e-9);
        close(
            case,
            "L5",
            &np["l5"]["mean"],
            py["L5"].as_f64().unwrap(),
            1e-9,
        );
        close(
            case,
            "M10",
            &np["m10"]["mean"],
            py["M10"].as_f64().unwrap(),
            1e-9,
        );
        assert_eq!(np["l5"]["start"], py["L5_start"], "{case} L5 start");
        assert_eq!(np["m10"]["start"], py["M10_start"], "{case} M10 start");
    }
    if let Some(cp) = expected.get("cosinor").map(|c| &c["CosinorPy"]) {
        close(
            case,
            "MESOR",
            &a["cosinor"]["mesor"],
            cp["MESOR"].as_f64().unwrap(),
            1e-6,
        );
        close(
            case,
            "amplitude",
            &a["cosinor"]["amplitude"],
            cp["amplitude"].as_f64().unwrap(),
            1e-6,
        );
        close(
            case,
            "acrophase",
            &a["cosinor"]["acrophase_hours"],
            cp["acrophase_clock_hours"].as_f64().unwrap(),
            1e-6,
        );
    }
    // Sleep totals equal the reference columns summed.
    let per_minute = std::fs::read_to_string(dir.join("sleep_wake_per_minute.csv")).unwrap();
    let mut lines = per_minute.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (ck, sadeh) = (col("ck_actilife"), col("sadeh_actilife"));
    let (mut ck_sum, mut sadeh_sum) = (0, 0);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        ck_sum += u64::from(f[ck] == "1");
        sadeh_sum += u64::from(f[sadeh] == "1");
    }
    assert_eq!(
        a["sleep"]["cole_kripke"]["sleep_minutes"], ck_sum,
        "{case} CK total"
    );
    assert_eq!(
        a["sleep"]["sadeh"]["sleep_minutes"], sadeh_sum,
        "{case} Sadeh total"
    );

    let periods = std::fs::read_to_string(dir.join("sleep_periods_tudor_locke.csv")).unwrap();
    let mut lines = periods.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let rows: Vec<Vec<&str>> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[col("scoring")] == "sadeh_actilife")
        .collect();
    let got = a["sleep"]["periods"].as_array().unwrap();
    assert_eq!(got.len(), rows.len(), "{case} period count");
    for (p, r) in got.iter().zip(&rows) {
        assert_eq!(
            instant(p["in_bed"].as_str().unwrap()),
            instant(r[col("in_bed_time")]),
            "{case} in bed"
        );
        // Both exclusive: duration = out - in (257 min for 01:11-05:28).
        assert_eq!(
            instant(p["out_bed"].as_str().unwrap()),
            instant(r[col("out_bed_time")]),
            "{case} out of bed"
        );
        assert_eq!(
            p["total_sleep_minutes"].to_string(),
            r[col("total_sleep_time")],
            "{case} TST"
        );
        assert_eq!(
            p["waso_minutes"].to_string(),
            r[col("wake_after_onset")],
            "{case} WASO"
        );
        assert_eq!(
            p["awakenings"].to_string(),
            r[col("nb_awakenings")],
            "{case} awakenings"
        );
        close(
            case,
            "efficiency",
            &p["efficiency_pct"],
            r[col("efficiency")].parse().unwrap(),
            1e-9,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_recordings_streamed_over_the_websocket_match_the_references() {
    let Some(golden) = golden_dir() else { return };
    let app = spawn_app().await;
    for case in [
        "synth_clean_7d",
        "real_pyact_test_sample",
        "real_actilife_gt3xplus_day01",
    ] {
        let dir = golden.join(case);
        let rows = read_input(&dir.join("input.csv"));
        let user = app.user().await;
        let mut ws = app.ws(&user.access).await;
        ws.welcome().await;
        let pushed = stream(&mut ws, &rows, "g", None).await;
        if rows.len() >= 2 * 1440 {
            assert!(!pushed.is_empty(), "{case}: completed days pushed analyses");
            assert!(pushed.iter().all(|p| p["trigger"] == "day_complete"));
        }
        let a = analyze(&mut ws).await;
        assert_eq!(a["minutes_present"], rows.len(), "{case}");
        assert_eq!(a["activity"]["kind"], "activity_count");
        check_golden(case, &dir, &a);

        // REST gives the same stored document, and asking again changes nothing.
        let (s, again) = app
            .post("/api/v1/analyses", &json!({}), Some(&user.access))
            .await;
        assert_eq!(s, StatusCode::OK, "same data, same analysis: {again}");
        assert_eq!(again["analysis_id"], a["analysis_id"]);
        let id = a["analysis_id"].as_str().unwrap();
        let (s, one) = app
            .get(&format!("/api/v1/analyses/{id}"), Some(&user.access))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(one["nonparametric"], a["nonparametric"]);
        eprintln!(
            "{case}: matches the references; {} day analyses pushed",
            pushed.len()
        );
    }
}

async fn user_ws(app: &TestApp) -> (crate::common::Session, Ws) {
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    (user, ws)
}

#[tokio::test]
async fn a_wearable_wins_over_a_phone_minute_by_minute_and_sources_are_never_summed() {
    let app = spawn_app().await;
    let (_user, mut ws) = user_ws(&app).await;
    let minute = |m: i64| {
        (chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z").unwrap()
            + chrono::Duration::minutes(m))
        .to_rfc3339()
    };
    // The phone reports minutes 0..120, the watch 60..180: 60 minutes overlap.
    let phone: Vec<(String, Option<f64>)> = (0..120).map(|m| (minute(m), Some(1000.0))).collect();
    let watch: Vec<(String, Option<f64>)> = (60..180).map(|m| (minute(m), Some(10.0))).collect();
    stream(&mut ws, &watch, "w", Some("Apple Watch")).await;
    stream(&mut ws, &phone, "p", Some("iPhone")).await;
    let a = analyze(&mut ws).await;
    assert_eq!(a["minutes_present"], 180);
    let sources = a["activity"]["sources"].as_array().unwrap();
    let minutes = |name: &str| {
        sources
            .iter()
            .find(|s| s["source"] == name)
            .map(|s| s["minutes"].as_u64().unwrap())
    };
    assert_eq!(minutes("Apple Watch"), Some(120));
    assert_eq!(
        minutes("iPhone"),
        Some(60),
        "the phone keeps only minutes the watch lacks"
    );
    assert_eq!(sources.len(), 2);
}

#[tokio::test]
async fn steps_spread_over_their_interval_stand_in_until_activity_counts_arrive() {
    let app = spawn_app().await;
    let (user, mut ws) = user_ws(&app).await;
    // 150 steps over 08:00:00-08:15:00: ten a minute for 15 minutes.
    ws.send(&json!({"type": "samples", "seq": 1, "samples": [
        {"id": "s1", "kind": "step_count", "start": "2026-11-20T08:00:00Z", "end": "2026-11-20T08:15:00Z", "value": 150},
        {"id": "s2", "kind": "step_count", "start": "2026-11-20T09:00:00Z", "value": 30}
    ]})).await;
    assert_eq!(ws.recv_type("ack").await["accepted"], 2);
    let a = analyze(&mut ws).await;
    assert_eq!(a["activity"]["kind"], "step_count");
    // 15 spread minutes and one single; the other 45 minutes of 08:00-08:59, an hour the
    // step source was recording, are 0 steps (the coverage rule), and the window ends at 09:00.
    assert_eq!(a["minutes_present"], 61);
    assert_eq!(a["activity"]["coverage"]["recording_hours"], 2);
    assert_eq!(a["activity"]["coverage"]["filled_minutes"], 45);

    ws.send(&json!({"type": "samples", "seq": 2, "samples": [
        {"id": "a1", "kind": "activity_count", "start": "2026-11-20T10:00:00Z", "value": 400}
    ]}))
    .await;
    assert_eq!(ws.recv_type("ack").await["accepted"], 1);
    let a = analyze(&mut ws).await;
    assert_eq!(a["activity"]["kind"], "activity_count");
    assert_eq!(
        a["minutes_present"], 1,
        "step minutes are dropped once activity counts exist"
    );

    // REST uploads fill the same window; a duplicate does not count twice.
    for _ in 0..2 {
        let (s, b) = app.post("/api/v1/health-data", &json!({"samples": [
            {"id": "a2", "kind": "activity_count", "start": "2026-11-20T10:01:00Z", "value": 600}
        ]}), Some(&user.access)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, a) = app
        .post("/api/v1/analyses", &json!({}), Some(&user.access))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["minutes_present"], 2);
}

#[tokio::test]
async fn analyses_are_listed_private_and_no_data_is_a_clear_error() {
    let app = spawn_app().await;
    let (user, mut ws) = user_ws(&app).await;
    ws.send(&json!({"type": "analyze"})).await;
    let e = ws.recv_type("error").await;
    assert_eq!(e["code"], "no_data");
    let (s, b) = app
        .post("/api/v1/analyses", &json!({}), Some(&user.access))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_data"))
    );

    ws.send(&json!({"type": "samples", "seq": 1, "samples": [
        {"id": "a1", "kind": "activity_count", "start": "2026-11-20T10:00:00Z", "value": 400}
    ]}))
    .await;
    ws.recv_type("ack").await;
    let a = analyze(&mut ws).await;
    let id = a["analysis_id"].as_str().unwrap();
    let (s, list) = app.get("/api/v1/analyses", Some(&user.access)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["analyses"][0]["analysis_id"], id);
    assert!(list["next_cursor"].is_null());

    let other = app.user().await;
    let (s, _) = app
        .get(&format!("/api/v1/analyses/{id}"), Some(&other.access))
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another user's analysis is invisible"
    );
    let (s, list) = app.get("/api/v1/analyses", Some(&other.access)).await;
    assert_eq!(
        (s, list["analyses"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (s, _) = app.get("/api/v1/analyses", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_rebuilds_the_window_from_the_store() {
    let app = spawn_app().await;
    let (user, mut ws) = user_ws(&app).await;
    let now = chrono::Utc::now();
    let samples: Vec<Value> = (1..=90)
        .map(|m| {
            json!({"id": format!("r{m}"), "kind": "activity_count",
            "start": (now - chrono::Duration::minutes(m)).to_rfc3339(), "value": m})
        })
        .collect();
    ws.send(&json!({"type": "samples", "seq": 1, "samples": samples}))
        .await;
    ws.recv_type("ack").await;
    let before = analyze(&mut ws).await;
    drop(ws);
    let dir = app.stop().await;

    let app = crate::common::spawn_in(dir, |_| {}).await;
    let (s, after) = app
        .post("/api/v1/analyses", &json!({}), Some(&user.access))
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the rebuilt window gives the stored analysis: {after}"
    );
    assert_eq!(after["analysis_id"], before["analysis_id"]);
    assert_eq!(after["minutes_present"], 90);
}
