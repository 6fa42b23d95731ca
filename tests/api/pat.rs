//! PAT scoring: the converter's bundle through the Rust runtime against TensorFlow's recorded
//! output, `clarity score`, and a streamed week end to end (with and without a bundle).
//!
//! The runtime tests need ONNX Runtime and the converter's Python environment, which
//! `scripts/test` prepares and announces in `CLARITY_TEST_ONNXRUNTIME_LIB`; without it they
//! skip with a message. The fixture is `../shared/pat` (never copied into the project).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use clarity::scoring::{Bundle, EMBED_DIM, INPUT_LENGTH, Model, runtime};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::analysis::{analyze, stream};
use crate::common::{spawn_app, spawn_app_with};

const TOL: f32 = 1e-4;

fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pat");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/pat not found (the PAT fixture is not part of the project)");
        None
    }
}

/// The ONNX Runtime library, or `None` (with a message) when the tests should skip.
fn ort_lib() -> Option<PathBuf> {
    match std::env::var_os("CLARITY_TEST_ONNXRUNTIME_LIB").filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!(
                "skipping: CLARITY_TEST_ONNXRUNTIME_LIB not set (scripts/test installs ONNX Runtime and sets it)"
            );
            None
        }
    }
}

fn pat_export(args: &[&std::ffi::OsStr]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pat-export");
    let out = Command::new(script)
        .args(args)
        .output()
        .expect("pat-export runs");
    assert!(
        out.status.success(),
        "pat-export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `random_PAT-S.h5` converted once per test run with the identity scaler and a random head.
fn bundle_s() -> Option<(PathBuf, PathBuf)> {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    let (shared, lib) = (shared()?, ort_lib()?);
    let dir = BUNDLE.get_or_init(|| {
        let tmp =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pat-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let head = tmp.join("head.onnx");
        pat_export(&["--random-head".as_ref(), head.as_os_str()]);
        let out = tmp.join("PAT-S");
        pat_export(&[
            "--weights".as_ref(),
            shared.join("random_PAT-S.h5").as_os_str(),
            "--size".as_ref(),
            "S".as_ref(),
            "--head".as_ref(),
            head.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        out
    });
    Some((dir.clone(), lib))
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= TOL, "{what}: max abs error {worst:e} > {TOL:e}");
}

fn model(dir: &Path, lib: &Path) -> (Bundle, Model) {
    let bundle = Bundle::open(dir).expect("bundle verifies");
    let env = runtime::environment(lib).expect("ONNX Runtime loads");
    let model = Model::open(env, &bundle, 0).expect("sessions open");
    (bundle, model)
}

#[test]
fn converted_random_pat_s_matches_tensorflow() {
    let Some((dir, lib)) = bundle_s() else { return };
    let shared = shared().unwrap();
    let read = |n: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(shared.join(n)).unwrap()).unwrap()
    };
    let input = floats(&read("fixed_input.json")["input_standardized"]);
    let want = read("expected_random_PAT-S.json");
    let (bundle, mut model) = model(&dir, &lib);
    assert_eq!(bundle.manifest.licence, "CC BY 4.0");
    // Three copies in one batch: every row of a batch is the same computation.
    let batch: Vec<f32> = input
        .iter()
        .copied()
        .cycle()
        .take(3 * INPUT_LENGTH)
        .collect();
    let outs = model.run(&batch, true).unwrap();
    assert_eq!(outs.len(), 3);
    for (i, out) in outs.iter().enumerate() {
        assert_close(
            &format!("embedding {i}"),
            &out.embedding,
            &floats(&want["embedding"]),
        );
        let tokens = out.tokens.as_ref().unwrap();
        assert_eq!(tokens.len(), 560 * EMBED_DIM);
        assert_close(
            "first token",
            &tokens[..EMBED_DIM],
            &floats(&want["tokens_first_row"]),
        );
        assert_close(
            "last token",
            &tokens[tokens.len() - EMBED_DIM..],
            &floats(&want["tokens_last_row"]),
        );
        assert_eq!(out.scores.len(), 1, "the random head's one score");
    }
}

#[test]
fn a_bundle_with_a_changed_file_is_refused() {
    let Some((dir, _)) = bundle_s() else { return };
    let copy = tempfile::tempdir().unwrap();
    for f in ["bundle.json", "encoder.onnx", "head.onnx", "scaler.json"] {
        std::fs::copy(dir.join(f), copy.path().join(f)).unwrap();
    }
    std::fs::write(copy.path().join("scaler.json"), r#"{"mean": 1, "std": 1}"#).unwrap();
    let e = Bundle::open(copy.path()).unwrap_err().to_string();
    assert!(e.contains("scaler.json does not match its checksum"), "{e}");
    std::fs::remove_file(copy.path().join("head.onnx")).unwrap();
    let e = Bundle::open(copy.path()).unwrap_err().to_string();
    assert!(e.contains("head.onnx"), "{e}");
}

/// A week of plausible counts from 2026-01-05 (Monday) UTC, with `gaps` missing minutes inside.
fn week_rows(gaps: usize) -> Vec<(String, Option<f64>)> {
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z").unwrap();
    (0..INPUT_LENGTH)
        .map(|i| {
            let t = start + chrono::Duration::minutes(i as i64);
            let hour = (i / 60) % 24;
            let v = if (7..23).contains(&hour) {
                200.0 + ((i * 37) % 300) as f64
            } else {
                (i % 5) as f64
            };
            let missing = i > 1000 && i <= 1000 + gaps;
            (
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                (!missing).then_some(v),
            )
        })
        .collect()
}

#[test]
fn clarity_score_prints_the_embedding_of_a_csv_week() {
    let Some((dir, lib)) = bundle_s() else { return };
    let rows = week_rows(30);
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("week.csv");
    let mut text = String::from("timestamp_utc_iso8601,activity_count\n");
    for (t, v) in &rows {
        text += &format!("{t},{}\n", v.map(|v| v.to_string()).unwrap_or_default());
    }
    std::fs::write(&csv, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_clarity"))
        .args(["score", "--model"])
        .arg(&dir)
        .arg("--input")
        .arg(&csv)
        .arg("--onnxruntime-lib")
        .arg(&lib)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (bundle, mut model) = model(&dir, &lib);
    let week: Vec<Option<f64>> = rows.iter().map(|r| r.1).collect();
    let mut input = Vec::new();
    bundle.scaler.apply(&week, &mut input);
    let want = model.run(&input, false).unwrap().remove(0);
    assert_close("embedding", &floats(&doc["embedding"]), &want.embedding);
    assert!(doc["scores"]["example_score"].is_number(), "{doc}");
    assert!((doc["missing_fraction"].as_f64().unwrap() - 30.0 / 10080.0).abs() < 1e-12);

    // A short CSV is refused with exit code 2.
    std::fs::write(
        &csv,
        "timestamp_utc_iso8601,activity_count\n2026-01-05T00:00:00Z,1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_clarity"))
        .args(["score", "--model"])
        .arg(&dir)
        .arg("--input")
        .arg(&csv)
        .arg("--onnxruntime-lib")
        .arg(&lib)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_week_gets_a_pat_embedding() {
    let Some((dir, lib)) = bundle_s() else { return };
    let app = spawn_app_with(|c| {
        c.scoring.model = Some(dir.clone());
        c.scoring.onnxruntime_lib = Some(lib.clone());
    })
    .await;
    let (s, ready) = app.get("/api/ready", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        ready["details"]["pat"],
        json!({"available": true, "model": "PAT-S"})
    );

    let rows = week_rows(60);
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let pushed = stream(&mut ws, &rows, "p", None).await;
    // Days completed before the week was full: analytics, but no PAT yet.
    assert!(
        pushed
            .iter()
            .all(|p| p["pat"]["code"] == "insufficient_data"),
        "{pushed:?}"
    );
    let a = analyze(&mut ws).await;
    let pat = &a["pat"];
    assert_eq!(pat["available"], true, "{pat}");
    assert_eq!(pat["model"], "PAT-S");
    assert!((pat["missing_fraction"].as_f64().unwrap() - 60.0 / 10080.0).abs() < 1e-12);
    assert!(pat["scores"]["example_score"].is_number());

    // The server's embedding is the runtime's for the same week.
    let (bundle, mut model) = model(&dir, &lib);
    let week: Vec<Option<f64>> = rows.iter().map(|r| r.1).collect();
    let mut input = Vec::new();
    bundle.scaler.apply(&week, &mut input);
    let want = model.run(&input, false).unwrap().remove(0);
    assert_close(
        "streamed embedding",
        &floats(&pat["embedding"]),
        &want.embedding,
    );

    // Stored as pushed.
    let id = a["analysis_id"].as_str().unwrap();
    let (s, stored) = app
        .get(&format!("/api/v1/analyses/{id}"), Some(&user.access))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(stored["pat"], a["pat"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_bundle_analyses_say_pat_is_unavailable() {
    let app = spawn_app().await;
    let (s, ready) = app.get("/api/ready", None).await;
    assert_eq!(s, StatusCode::OK, "PAT is optional: {ready}");
    assert_eq!(ready["details"]["pat"]["available"], false);
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    stream(&mut ws, &week_rows(0), "n", None).await;
    let a = analyze(&mut ws).await;
    assert_eq!(a["pat"]["available"], false, "{}", a["pat"]);
    assert_eq!(a["pat"]["code"], "not_configured");
    assert!(a["pat"]["reason"].as_str().unwrap().contains("--pat-model"));
    assert!(
        a["nonparametric"]["is"].is_number(),
        "the analytics are still there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_bundle_leaves_the_server_running() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bundle.json"), "{}").unwrap();
    let path = dir.path().to_path_buf();
    let app = spawn_app_with(|c| {
        c.scoring.model = Some(path);
        c.scoring.onnxruntime_lib = Some("/nonexistent/libonnxruntime.so".into());
    })
    .await;
    let (s, ready) = app.get("/api/ready", None).await;
    assert_eq!(s, StatusCode::OK);
    let reason = ready["details"]["pat"]["reason"].as_str().unwrap();
    assert!(reason.contains("bundle.json"), "{reason}");
}
