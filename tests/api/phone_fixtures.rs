//! Phone-shaped fixtures end to end (issue 18): the HealthKit week and the Health Connect days
//! in tests/fixtures/phone (written by scripts/phone-fixtures, whose docstring and README.md
//! give the ground-truth rules) streamed over the WebSocket as a phone app would, analysed,
//! and every derived number compared with the fixture's `.truth.json`; then the same file
//! through `clarity analyze --samples`.
//!
//! Tolerances: minute counts, step totals, awakenings, sources and methods exact; instants to
//! the second (midpoint: 30 s, half a minute); efficiency ±0.1 percentage points; heart rates
//! ±0.5 bpm; HRV ±0.5 ms; respiratory rate ±0.05 /min; SpO2 ±0.05 %; body temperature
//! ±0.01 °C; the window's `heart_rate.mean_bpm` ±0.05 (it has one decimal).
//!
//! Every mismatch is collected with the slice of issue 18 that owns the field ([A kinds],
//! [B sleep], [H heart], [C steps]) and reported together, so one run lists all of them.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::analysis::analyze;
use crate::common::{PUSHED, Ws, spawn_app};

pub(crate) const FIXTURES: [&str; 2] = ["healthkit_week", "health_connect_days"];
/// Samples per `samples` frame: what a phone app sends per HealthKit / Health Connect page.
const FRAME: usize = 400;

pub(crate) fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/phone/{name}.json"))
}

pub(crate) fn load(name: &str) -> (Vec<Value>, Value) {
    let read = |p: PathBuf| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("{}: {e} (run scripts/phone-fixtures)", p.display())),
        )
        .unwrap()
    };
    let samples = read(fixture_path(name)).as_array().unwrap().clone();
    let truth = read(fixture_path(&format!("{name}.truth")));
    assert_eq!(
        truth["samples"],
        samples.len(),
        "{name}: truth and samples match"
    );
    (samples, truth)
}

/// Mismatches, with their owner, reported together at the end.
pub(crate) struct Check {
    case: String,
    pub(crate) failures: Vec<String>,
}

impl Check {
    pub(crate) fn new(case: &str) -> Check {
        Check {
            case: case.to_owned(),
            failures: Vec::new(),
        }
    }

    fn fail(&mut self, owner: &str, msg: String) {
        self.failures.push(format!("{owner} {}: {msg}", self.case));
    }

    fn exact(&mut self, owner: &str, what: &str, got: &Value, want: &Value) {
        if got != want {
            self.fail(owner, format!("{what}: got {got}, want {want}"));
        }
    }

    /// Numbers within `tol`; `null` only where the truth is `null`.
    fn near(&mut self, owner: &str, what: &str, got: &Value, want: &Value, tol: f64) {
        let ok = match (got.as_f64(), want.as_f64()) {
            (Some(g), Some(w)) => (g - w).abs() <= tol + 1e-9,
            (None, None) => got.is_null() || got == want,
            _ => false,
        };
        if !ok {
            self.fail(owner, format!("{what}: got {got}, want {want} (±{tol})"));
        }
    }

    /// The same instant within `tol_s` seconds, written with the same UTC offset.
    fn instant(&mut self, owner: &str, what: &str, got: &Value, want: &Value, tol_s: i64) {
        let parse = |v: &Value| {
            v.as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        };
        match (parse(got), parse(want)) {
            (Some(g), Some(w))
                if (g.timestamp() - w.timestamp()).abs() <= tol_s && g.offset() == w.offset() => {}
            _ => self.fail(owner, format!("{what}: got {got}, want {want}")),
        }
    }

    pub(crate) fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} mismatch(es) with the ground truth:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

fn by_date<'a>(list: &'a Value, date: &Value) -> Option<&'a Value> {
    list.as_array()?.iter().find(|e| e["date"] == *date)
}

/// `[{source, minutes}, ...]` as `{source: minutes}` (the truth's form).
fn minutes_by_source(list: &Value) -> Value {
    let map: serde_json::Map<String, Value> = list
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    (
                        s["source"].as_str().unwrap_or("").to_owned(),
                        s["minutes"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Value::Object(map)
}

/// Every derived number of `a` (an analysis document) against the truth.
fn check_analysis(c: &mut Check, truth: &Value, a: &Value) {
    let totals = &truth["totals"];
    // What the server derives today already.
    c.exact(
        "[C steps]",
        "activity.kind",
        &a["activity"]["kind"],
        &json!("step_count"),
    );
    c.exact(
        "[C steps]",
        "activity.sources (minutes won per source)",
        &minutes_by_source(&a["activity"]["sources"]),
        &totals["step_minutes_by_source"],
    );
    c.exact(
        "[H heart]",
        "heart_rate.minutes",
        &a["heart_rate"]["minutes"],
        &totals["heart_rate_minutes"],
    );
    c.near(
        "[H heart]",
        "heart_rate.mean_bpm",
        &a["heart_rate"]["mean_bpm"],
        &totals["heart_rate_mean_bpm"],
        0.05,
    );
    // Step data: PAT was trained on counts, so no silent score.
    let explained = a["pat"]["reason"].as_str().is_some_and(|r| !r.is_empty());
    if a["pat"]["available"] != false || !explained {
        c.fail(
            "[C steps]",
            format!("pat must say why there is no score: {}", a["pat"]),
        );
    }
    match a["nonparametric"]["is"].as_f64() {
        Some(is) if !(0.0..=1.0).contains(&is) => {
            c.fail("[C steps]", format!("nonparametric.is {is} outside [0, 1]"))
        }
        _ => {}
    }

    check_nights(c, truth, a);
    check_days(c, truth, a);
}

fn check_nights(c: &mut Check, truth: &Value, a: &Value) {
    let nights = &a["sleep"]["nights"];
    let all = nights.as_array().cloned().unwrap_or_default();
    // Step data is never scored as sleep: every night comes from the stages.
    for n in all.iter().filter(|n| n["method"] != "stages") {
        c.fail(
            "[B sleep]",
            format!("a night not from stages on step data: {n}"),
        );
    }
    let staged = all.iter().filter(|n| n["method"] == "stages").count();
    let want = truth["nights"].as_array().unwrap();
    if staged != want.len() {
        c.fail(
            "[B sleep]",
            format!("{staged} stage nights, want {}", want.len()),
        );
    }
    for w in want {
        let date = &w["date"];
        let Some(g) = all
            .iter()
            .find(|n| n["date"] == *date && n["method"] == "stages")
        else {
            c.fail("[B sleep]", format!("no stage night dated {date}"));
            continue;
        };
        for f in [
            "source",
            "in_bed_minutes",
            "asleep_minutes",
            "awake_minutes",
            "light_minutes",
            "deep_minutes",
            "rem_minutes",
            "unspecified_minutes",
            "onset_latency_minutes",
            "waso_minutes",
            "awakenings",
        ] {
            c.exact("[B sleep]", &format!("night {date} {f}"), &g[f], &w[f]);
        }
        let mut sources: Vec<Value> = g["sources"].as_array().cloned().unwrap_or_default();
        sources.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
        c.exact(
            "[B sleep]",
            &format!("night {date} sources"),
            &Value::Array(sources),
            &w["sources"],
        );
        for f in ["bed_start", "bed_end", "sleep_onset", "final_wake"] {
            c.instant("[B sleep]", &format!("night {date} {f}"), &g[f], &w[f], 0);
        }
        c.instant(
            "[B sleep]",
            &format!("night {date} midpoint"),
            &g["midpoint"],
            &w["midpoint"],
            30,
        );
        c.near(
            "[B sleep]",
            &format!("night {date} efficiency_pct"),
            &g["efficiency_pct"],
            &w["efficiency_pct"],
            0.1,
        );
    }
}

fn check_days(c: &mut Check, truth: &Value, a: &Value) {
    const HEART: [(&str, f64); 6] = [
        ("resting_bpm", 0.5),
        ("asleep_mean_bpm", 0.5),
        ("hrv_sdnn_ms", 0.5),
        ("hrv_rmssd_ms", 0.5),
        ("respiratory_rate", 0.05),
        ("spo2_pct", 0.05),
    ];
    for w in truth["days"].as_array().unwrap() {
        let date = &w["date"];
        match by_date(&a["activity"]["days"], date) {
            Some(g) => {
                for f in ["steps", "step_minutes"] {
                    c.exact("[C steps]", &format!("day {date} {f}"), &g[f], &w[f]);
                }
                c.exact(
                    "[C steps]",
                    &format!("day {date} sources (minutes won per source)"),
                    &minutes_by_source(&g["sources"]),
                    &w["step_minutes_by_source"],
                );
            }
            None => c.fail("[C steps]", format!("no activity.days entry for {date}")),
        }
        let measured = HEART.iter().any(|(f, _)| !w[*f].is_null());
        match by_date(&a["heart"]["days"], date) {
            Some(g) => {
                for (f, tol) in HEART {
                    c.near("[H heart]", &format!("day {date} {f}"), &g[f], &w[f], tol);
                }
                c.exact(
                    "[H heart]",
                    &format!("day {date} resting_method"),
                    &g["resting_method"],
                    &w["resting_method"],
                );
            }
            None if measured => c.fail("[H heart]", format!("no heart.days entry for {date}")),
            None => {}
        }
    }
}

/// Streams `samples` in frames of [`FRAME`], each acknowledged before the next (as a phone
/// pages through its store); analyses and insights pushed meanwhile are skipped.
pub(crate) async fn stream(c: &mut Check, ws: &mut Ws, samples: &[Value]) {
    for (seq, chunk) in samples.chunks(FRAME).enumerate() {
        ws.send(&json!({"type": "samples", "seq": seq, "samples": chunk}))
            .await;
        let ack = loop {
            let v = ws.recv_within(std::time::Duration::from_secs(30)).await;
            if v["type"] == "ack" {
                break v;
            }
            assert!(
                PUSHED.contains(&v["type"].as_str().unwrap_or("")),
                "unexpected frame {v}"
            );
        };
        assert_eq!(ack["seq"], seq, "{ack}");
        assert_eq!(ack["duplicates"], 0, "{ack}");
        let (accepted, rejected) = (
            ack["accepted"].as_u64().unwrap() as usize,
            ack["rejected"].as_array().unwrap(),
        );
        for r in rejected {
            let i = seq * FRAME + r["index"].as_u64().unwrap() as usize;
            let s = &samples[i];
            c.fail(
                "[A kinds]",
                format!(
                    "sample {i} ({} {} {}) rejected: {} {}",
                    s["kind"], s["value"], s["unit"], r["code"], r["message"]
                ),
            );
        }
        assert_eq!(
            accepted + rejected.len() + ack["rejected_omitted"].as_u64().unwrap() as usize,
            chunk.len(),
            "{ack}"
        );
    }
}

/// Unit conversion on input, read back over REST: body temperature in degC, SpO2 in %.
async fn check_readback(c: &mut Check, app: &crate::common::TestApp, token: &str, truth: &Value) {
    for (kind, unit, field, tol) in [
        ("body_temperature", "degC", "body_temperature_degc", 0.01),
        ("oxygen_saturation", "%", "spo2_pct", 0.05),
    ] {
        let stored = app.all_samples(token, &format!("&kind={kind}")).await;
        for w in truth["days"].as_array().unwrap() {
            let date = w["date"].as_str().unwrap();
            let values: Vec<f64> = stored
                .iter()
                .filter(|s| s["start"].as_str().is_some_and(|t| t.starts_with(date)))
                .inspect(|s| {
                    c.exact(
                        "[A kinds]",
                        &format!("{kind} unit"),
                        &s["unit"],
                        &json!(unit),
                    )
                })
                .filter_map(|s| s["value"].as_f64())
                .collect();
            let got = if values.is_empty() {
                Value::Null
            } else {
                json!(values.iter().sum::<f64>() / values.len() as f64)
            };
            c.near(
                "[A kinds]",
                &format!("{date} {kind} read back"),
                &got,
                &w[field],
                tol,
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_fixtures_streamed_over_the_websocket_match_their_ground_truth() {
    let app = spawn_app().await;
    let mut failures = Vec::new();
    for name in FIXTURES {
        let (samples, truth) = load(name);
        let mut c = Check::new(&format!("{name} (WebSocket)"));
        let user = app.user().await;
        let mut ws = app.ws(&user.access).await;
        ws.welcome().await;
        stream(&mut c, &mut ws, &samples).await;
        let a = analyze(&mut ws).await;
        check_analysis(&mut c, &truth, &a);
        check_readback(&mut c, &app, &user.access, &truth).await;
        failures.extend(c.failures);
    }
    Check {
        case: String::new(),
        failures,
    }
    .finish();
}

fn clarity_analyze(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
        .arg("analyze")
        .args(args)
        // The CLI must not depend on the environment's deployment settings.
        .env("CLARITY_STORE", "dynamodb")
        .env("CLARITY_BUS", "redis://127.0.0.1:1")
        .output()
        .expect("clarity runs")
}

#[test]
fn clarity_analyze_samples_matches_the_ground_truth_of_each_phone_fixture() {
    let mut failures = Vec::new();
    for name in FIXTURES {
        let (_, truth) = load(name);
        let mut c = Check::new(&format!("{name} (clarity analyze --samples)"));
        let out = clarity_analyze(&["--samples".as_ref(), fixture_path(name).as_os_str()]);
        if !out.status.success() {
            c.fail(
                "[A kinds]",
                format!(
                    "exit {:?}: {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ),
            );
        } else {
            let a: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
            assert_eq!(a["trigger"], "request", "the server's own document");
            check_analysis(&mut c, &truth, &a);
        }
        failures.extend(c.failures);
    }
    Check {
        case: String::new(),
        failures,
    }
    .finish();
}

#[test]
fn clarity_analyze_samples_refuses_a_file_with_an_invalid_sample_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    let samples = json!([
        {"id": "a", "kind": "step_count", "start": "2026-11-02T08:00:00-05:00",
         "end": "2026-11-02T08:10:00-05:00", "value": 900, "unit": "count", "source": "iPhone"},
        {"id": "b", "kind": "heart_rate", "start": "2026-11-02T08:01:00-05:00", "value": 900}
    ]);
    std::fs::write(&path, samples.to_string()).unwrap();
    let out = clarity_analyze(&["--samples".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sample 1") && err.contains("out_of_range"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    std::fs::write(&path, "{\"not\": \"an array\"}").unwrap();
    let out = clarity_analyze(&["--samples".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a JSON array of samples"), "{err}");
}

#[test]
fn the_committed_fixtures_are_what_the_generator_writes() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/phone-fixtures");
    match std::process::Command::new("python3")
        .arg(&script)
        .arg("--check")
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "scripts/phone-fixtures --check: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("skipping: python3 not available ({e})"),
    }
}
