//! Apple Health import (docs/import.md) through the real interfaces: an export written by
//! scripts/apple-health-export (fixed seed) is imported through `POST /api/v1/imports` and
//! through `clarity import`, and what `GET /api/v1/health-data` then lists is compared, kind
//! by kind and day by day, with the generator's truth. Re-importing adds nothing; a malformed
//! file fails naming its line; an oversize upload is 413; an independent reader
//! (healthkit-to-sqlite, PyPI) counts the same records per type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestApp, spawn_app, spawn_app_with, validate_server_frame};

/// Runs the generator into `dir`; returns the export's path and the truth.
pub(crate) fn generate(dir: &Path, days: u32, xml: bool) -> (PathBuf, Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/apple-health-export");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script)
        .arg("--out")
        .arg(dir)
        .arg("--days")
        .arg(days.to_string())
        .arg("--seed")
        .arg("7");
    if xml {
        cmd.arg("--xml");
    }
    let out = cmd.output().expect("python3 runs the generator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let file = dir.join(truth["file"].as_str().unwrap());
    (file, truth)
}

pub(crate) async fn upload(app: &TestApp, token: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let resp = app
        .http
        .post(app.url("/api/v1/imports"))
        .bearer_auth(token)
        .header("content-type", "application/zip")
        .body(body)
        .send()
        .await
        .unwrap();
    crate::common::into_json(resp).await
}

/// Polls the job until it is no longer running.
pub(crate) async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let (status, job) = app.get(&format!("/api/v1/imports/{id}"), Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if job["state"] != "running" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("import {id} still running after 30 s");
}

/// Samples per kind per local day (the date of `start`, in its own offset).
async fn counts(app: &TestApp, token: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut days: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for s in app.all_samples(token, "&from=2024-01-01T00:00:00Z").await {
        let day = s["start"].as_str().unwrap()[..10].to_owned();
        let kind = s["kind"].as_str().unwrap().to_owned();
        *days.entry(day).or_default().entry(kind).or_default() += 1;
    }
    days
}

fn truth_days(truth: &Value) -> BTreeMap<String, BTreeMap<String, u64>> {
    serde_json::from_value(truth["days"].clone()).unwrap()
}

fn check_report(job: &Value, truth: &Value, stored: u64, duplicates: u64) {
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["records_read"], truth["records"], "{job}");
    assert_eq!(job["records_by_type"], truth["records_by_type"], "{job}");
    assert_eq!(job["rejected"], truth["rejected"], "{job}");
    assert_eq!(job["unmapped"], truth["unmapped"], "{job}");
    assert_eq!(job["samples_stored"], stored, "{job}");
    assert_eq!(job["duplicates"], duplicates, "{job}");
    assert_eq!(job["bytes_done"], job["bytes_total"], "{job}");
}

#[tokio::test]
async fn rest_import_matches_the_generator_and_a_reimport_adds_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (file, truth) = generate(work.path(), 3, false);
    // Uploads are not bound by the JSON body limit, only by --max-import-bytes.
    let app = spawn_app_with(|c| c.limits.max_body_bytes = 4096).await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 4096);

    let (status, job) = upload(&app, &user.access, bytes.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["import_id"].as_str().unwrap().to_owned();
    // Progress (if the import lasts over 500 ms), then the end; each valid by its schema.
    let done = loop {
        let frame = ws.recv().await;
        validate_server_frame(&frame);
        match frame["type"].as_str() {
            Some("import_progress") => assert_eq!(frame["state"], "running"),
            Some("import_done") => break frame,
            _ => panic!("unexpected frame: {frame}"),
        }
    };
    assert_eq!(done["import_id"], id.as_str());
    let job = finished(&app, &user.access, &id).await;
    let samples = truth["samples"].as_u64().unwrap();
    let dups = truth["duplicates"].as_u64().unwrap();
    check_report(&job, &truth, samples, dups);
    assert_eq!(done["samples_stored"], samples);
    assert_eq!(counts(&app, &user.access).await, truth_days(&truth));

    // Provenance and the offsets of both time zones survive.
    let all = app
        .all_samples(&user.access, "&from=2024-01-01T00:00:00Z")
        .await;
    assert!(
        all.iter()
            .any(|s| s["start"].as_str().unwrap().ends_with("-05:00"))
    );
    assert!(
        all.iter()
            .any(|s| s["start"].as_str().unwrap().ends_with("+01:00"))
    );
    assert!(
        all.iter()
            .any(|s| s["source"] == "Dr. Müller’s \"Scale\" & Co")
    );

    // The same file again (an interrupted import re-run, or a later export): nothing new.
    let (status, job) = upload(&app, &user.access, bytes).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = finished(&app, &user.access, job["import_id"].as_str().unwrap()).await;
    check_report(&job, &truth, 0, samples + dups);
    assert_eq!(counts(&app, &user.access).await, truth_days(&truth));
    // Another user cannot see the job.
    let other = app.user().await;
    let (status, _) = app
        .get(&format!("/api/v1/imports/{id}"), Some(&other.access))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cli_import_matches_the_generator_and_shares_ids_with_rest() {
    let work = tempfile::tempdir().unwrap();
    let (file, truth) = generate(work.path(), 3, true);
    let app = spawn_app().await;
    let user = app.user().await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
            .arg("import")
            .arg("--apple-health")
            .arg(&file)
            .arg("--user")
            .arg(&user.email)
            .arg("--data-dir")
            .arg(app.dir.path())
            .output()
            .expect("clarity runs")
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report as JSON");
    let samples = truth["samples"].as_u64().unwrap();
    let dups = truth["duplicates"].as_u64().unwrap();
    report_matches(&report, &truth, samples, dups);
    assert_eq!(counts(&app, &user.access).await, truth_days(&truth));
    // The bare XML through REST after the CLI: the same ids, so all duplicates.
    let (status, job) = upload(&app, &user.access, std::fs::read(&file).unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = finished(&app, &user.access, job["import_id"].as_str().unwrap()).await;
    check_report(&job, &truth, 0, samples + dups);
    let out = run();
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["samples_stored"], 0, "{again}");
}

#[tokio::test]
async fn cli_check_counts_what_an_import_would_and_stores_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (file, truth) = generate(work.path(), 3, false);
    let app = spawn_app().await;
    let user = app.user().await;
    let check = |file: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
            .args(["import", "--check", "--apple-health"])
            .arg(file)
            .output()
            .expect("clarity runs")
    };
    let out = check(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("records/s"),
        "the time taken is reported: {stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report as JSON");
    assert_eq!(report["records_read"], truth["records"], "{report}");
    assert_eq!(
        report["records_by_type"], truth["records_by_type"],
        "{report}"
    );
    assert_eq!(report["rejected"], truth["rejected"], "{report}");
    assert_eq!(report["unmapped"], truth["unmapped"], "{report}");
    // Every mapped element, the file's own repeats included (an import stores those once).
    let mapped = truth["samples"].as_u64().unwrap() + truth["duplicates"].as_u64().unwrap();
    assert_eq!(report["samples"], mapped, "{report}");
    assert!(report["earliest"].as_str().unwrap() < report["latest"].as_str().unwrap());
    // Nothing was stored anywhere.
    assert!(counts(&app, &user.access).await.is_empty());

    // A malformed export: exit code 2 naming the line, as an import.
    let xml = work.path().join("broken.xml");
    std::fs::write(&xml, "<HealthData>\n<Record type=\"x\"></Recod>\n").unwrap();
    let out = check(&xml);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
}

fn report_matches(report: &Value, truth: &Value, stored: u64, duplicates: u64) {
    let mut job = report.clone();
    job["state"] = "done".into();
    check_report(&job, truth, stored, duplicates);
}

#[tokio::test]
async fn malformed_xml_fails_naming_the_line_and_keeps_what_came_before() {
    let work = tempfile::tempdir().unwrap();
    let (file, _) = generate(work.path(), 2, true);
    let text = std::fs::read_to_string(&file).unwrap();
    // Break the 300th line: an element that never closes properly.
    let mut lines: Vec<&str> = text.lines().collect();
    let broken = 300;
    lines[broken - 1] = " <Record type=\"HKQuantityTypeIdentifierHeartRate\" value=\"60\"></Recod>";
    let body = lines.join("\n");
    let app = spawn_app().await;
    let user = app.user().await;
    let (status, job) = upload(&app, &user.access, body.into_bytes()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = finished(&app, &user.access, job["import_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "malformed_xml", "{job}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("line {broken}")), "{message}");
    assert!(message.contains("byte offset"), "{message}");
    assert!(job["records_read"].as_u64().unwrap() > 0, "{job}");

    // Not an export at all: refused at once.
    let (status, body) = upload(&app, &user.access, b"hello, world".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "not_an_export");
}

#[tokio::test]
async fn oversize_uploads_are_413_with_a_json_error() {
    let work = tempfile::tempdir().unwrap();
    let (file, _) = generate(work.path(), 2, false);
    let bytes = std::fs::read(&file).unwrap();
    let app = spawn_app_with(|c| c.limits.max_import_bytes = (bytes.len() / 2) as u64).await;
    let user = app.user().await;
    // Announced (Content-Length): refused before the body is read.
    let (status, body) = upload(&app, &user.access, bytes.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-import-bytes")
    );
    // Streamed (chunked, no length): refused once the limit is crossed; nothing is kept.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let resp = app
        .http
        .post(app.url("/api/v1/imports"))
        .bearer_auth(&user.access)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::common::into_json(resp).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-import-bytes")
    );
    // Files, in the account folders too (an empty folder is no upload; the sweep removes it).
    fn files(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| {
            d.map(|e| e.unwrap().path())
                .map(|p| if p.is_dir() { files(&p) } else { 1 })
                .sum()
        })
    }
    assert_eq!(
        files(&app.dir.path().join("imports")),
        0,
        "the partial upload is removed"
    );
}

/// A zip whose export.xml inflates far beyond its size is refused as a zip bomb.
#[tokio::test]
async fn zip_bombs_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("bomb.zip");
    // 200 MB of spaces inside a valid HealthData document compresses to about 200 KB.
    let script = format!(
        "import zipfile\nz=zipfile.ZipFile({:?},'w',zipfile.ZIP_DEFLATED)\nf=z.open('apple_health_export/export.xml','w',force_zip64=True)\nf.write(b'<HealthData>')\nfor _ in range(200):\n    f.write(b' '*1000000)\nf.write(b'</HealthData>')\nf.close(); z.close()\n",
        path.to_str().unwrap()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = spawn_app().await;
    let user = app.user().await;
    let (status, job) = upload(&app, &user.access, std::fs::read(&path).unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = finished(&app, &user.access, job["import_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "zip_bomb", "{job}");
}

/// healthkit-to-sqlite (PyPI, pinned by scripts/healthkit-env) reads the same export.zip:
/// its per-type row counts equal the import report's records read per type.
#[tokio::test]
async fn healthkit_to_sqlite_counts_the_same_records() {
    let Some(tool) = std::env::var_os("CLARITY_TEST_HEALTHKIT_TO_SQLITE") else {
        eprintln!(
            "skipped: CLARITY_TEST_HEALTHKIT_TO_SQLITE is not set (scripts/test sets it from \
             scripts/healthkit-env, which installs healthkit-to-sqlite into target/healthkit-venv)"
        );
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (file, truth) = generate(work.path(), 3, false);
    let db = work.path().join("hk.db");
    let out = std::process::Command::new(&tool)
        .arg(&file)
        .arg(&db)
        .output()
        .expect("healthkit-to-sqlite runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Row counts per table, read with Python's sqlite3 (the venv's interpreter).
    let python = Path::new(&tool).with_file_name("python");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg("import json,sqlite3,sys;c=sqlite3.connect(sys.argv[1]);print(json.dumps({t:c.execute(f'select count(*) from [{t}]').fetchone()[0] for (t,) in c.execute(\"select name from sqlite_master where type='table'\")}))")
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables: BTreeMap<String, u64> = serde_json::from_slice(&out.stdout).unwrap();

    let app = spawn_app().await;
    let user = app.user().await;
    let (status, job) = upload(&app, &user.access, std::fs::read(&file).unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = finished(&app, &user.access, job["import_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");
    let ours: BTreeMap<String, u64> =
        serde_json::from_value(job["records_by_type"].clone()).unwrap();
    // healthkit-to-sqlite: one table per Record type (`r` + the type without its HealthKit
    // prefix), `workouts`, `activity_summary`; it does not count Correlations.
    let mut theirs: BTreeMap<String, u64> = BTreeMap::new();
    for (table, n) in &tables {
        let key = match table.as_str() {
            "workouts" => "Workout".to_owned(),
            "activity_summary" => "ActivitySummary".to_owned(),
            t if t.starts_with('r') => ours
                .keys()
                .find(|k| {
                    k.strip_prefix("HKQuantityTypeIdentifier")
                        .or_else(|| k.strip_prefix("HKCategoryTypeIdentifier"))
                        == Some(&t[1..])
                })
                .cloned()
                .unwrap_or_else(|| {
                    panic!("healthkit-to-sqlite has {t}, the import has no such type: {ours:?}")
                }),
            _ => continue,
        };
        theirs.insert(key, *n);
    }
    let mut ours_comparable = ours.clone();
    ours_comparable.retain(|k, _| !k.starts_with("HKCorrelationTypeIdentifier"));
    assert_eq!(theirs, ours_comparable);
    assert_eq!(job["records_by_type"], truth["records_by_type"]);
}

/// `kill -9` of `clarity import` once part of the export is stored, then the same import
/// again: the account ends with exactly the generator's samples, none twice.
#[tokio::test]
async fn an_import_killed_midway_is_completed_by_running_it_again() {
    use clarity::store::SampleQuery;
    let work = tempfile::tempdir().unwrap();
    let (file, truth) = generate(work.path(), 60, false);
    let samples = truth["samples"].as_u64().unwrap();
    assert!(samples > 3 * 5_000, "several batches: {samples}");
    let app = spawn_app().await;
    let user = app.user().await;
    let command = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_clarity"));
        c.arg("import")
            .arg("--apple-health")
            .arg(&file)
            .arg("--user")
            .arg(&user.email)
            .arg("--data-dir")
            .arg(app.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let mut child = command().spawn().unwrap();
    let stored = |app: &TestApp| {
        let store = app.app.store.clone();
        let id = user.user_id;
        async move {
            let q = SampleQuery {
                kind: None,
                from_ms: None,
                to_ms: None,
                after: None,
                limit: 1,
            };
            !store.query_samples(id, q).await.unwrap().samples.is_empty()
        }
    };
    // The first batch is committed: kill it there, before it can finish.
    let mut waited = 0;
    while !stored(&app).await {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before the kill"
        );
        assert!(waited < 6_000, "nothing stored after 60 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the import ended before the kill"
    );
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    let partial: u64 = counts(&app, &user.access)
        .await
        .values()
        .flat_map(|k| k.values())
        .sum();
    assert!(
        partial > 0 && partial < samples,
        "{partial} of {samples} stored before the kill"
    );

    let out = command()
        .stdout(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dups = truth["duplicates"].as_u64().unwrap();
    assert_eq!(report["samples_stored"], samples - partial, "{report}");
    assert_eq!(report["duplicates"], partial + dups, "{report}");
    assert_eq!(counts(&app, &user.access).await, truth_days(&truth));
}
