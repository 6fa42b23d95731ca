//! `GET /api/v1/export/fhir`: every exported resource validates with fhir.resources' R4B
//! models (the pinned venv of scripts/fhir-env; skipped with a message where it is absent,
//! required under scripts/test), carries the LOINC code and UCUM unit of its kind, the
//! original offsets, the device and the patient; a shared read holds analyses only and is
//! audited.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Session, TestApp, spawn_app, yesterday};

/// A time `minutes` after 08:00 UTC yesterday, written in +05:30 with milliseconds.
pub fn at(minutes: i64) -> String {
    let t = yesterday() + chrono::Duration::hours(8) + chrono::Duration::minutes(minutes);
    t.with_timezone(&chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// One sample of every kind (and two hours of activity counts), as uploaded.
pub fn every_kind() -> Vec<Value> {
    let omron = "Omron \"Connect\", Inc";
    let watch = "Apple Watch";
    let mut v = vec![
        json!({"id": "steps-1", "kind": "step_count", "start": at(0), "end": at(10), "value": 500, "source": "iPhone"}),
        // Version and provenance (sync v2): kept through every format where the server
        // stores them.
        json!({"id": "hr-1", "kind": "heart_rate", "start": at(1), "value": 72, "source": watch, "version": 3,
               "provenance": {"device": {"name": watch, "manufacturer": "Apple Inc.", "model": "Watch7,2", "hardware_version": "Watch7,2", "software_version": "11.1"}, "app": "com.apple.health", "method": "automatic"}}),
        json!({"id": "hrv-1", "kind": "heart_rate_variability", "start": at(2), "value": 45.5, "source": watch}),
        json!({"id": "rr-1", "kind": "respiratory_rate", "start": at(3), "value": 14, "source": watch}),
        json!({"id": "spo2-1", "kind": "oxygen_saturation", "start": at(4), "value": 97, "source": watch}),
        json!({"id": "temp-1", "kind": "body_temperature", "start": at(5), "value": 36.6}),
        json!({"id": "sleep-1", "kind": "sleep_stage", "start": at(-300), "end": at(-270), "value": "deep", "source": watch}),
        json!({"id": "rmssd-1", "kind": "heart_rate_variability_rmssd", "start": at(6), "value": 30, "source": "Pixel Watch"}),
        json!({"id": "rhr-1", "kind": "resting_heart_rate", "start": at(7), "value": 55, "source": watch}),
        json!({"id": "bp-1", "kind": "blood_pressure", "start": at(8), "value": 120, "diastolic": 80.5, "source": omron,
               "provenance": {"device": {"name": omron, "manufacturer": "Omron", "model": "HEM-7600T"}, "method": "manual"}}),
        json!({"id": "bg-1", "kind": "blood_glucose", "start": at(9), "value": 95, "source": "Dexcom G7"}),
        json!({"id": "kcal-1", "kind": "active_energy", "start": at(10), "end": at(20), "value": 12.5, "source": watch}),
        json!({"id": "dist-1", "kind": "distance", "start": at(10), "end": at(20), "value": 800, "source": watch}),
        json!({"id": "mass-1", "kind": "body_mass", "start": at(11), "value": 70.2, "source": "Withings Body+"}),
        json!({"id": "run-1", "kind": "workout", "start": at(30), "end": at(60), "value": 250, "activity": "running", "source": watch}),
        json!({"id": "calm-1", "kind": "mindful_session", "start": at(61), "end": at(71), "value": 10, "source": watch}),
        json!({"id": "mood-1", "kind": "mood", "start": at(72), "value": 0.5}),
        json!({"id": "phq-1", "kind": "phq9", "start": at(73), "value": 5}),
        json!({"id": "gad-1", "kind": "gad7", "start": at(74), "value": 3}),
    ];
    for m in 0..120 {
        v.push(json!({"id": format!("ac-{m}"), "kind": "activity_count", "start": at(m), "value": (m * 7) % 50, "source": watch}));
    }
    v
}

/// LOINC where LOINC has a code (checked by hand against loinc.org, not read from the table
/// under test); `None`: Clarity's own code.
fn expected_loinc(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "heart_rate" => "8867-4",
        "step_count" => "55423-8",
        "oxygen_saturation" => "59408-5",
        "respiratory_rate" => "9279-1",
        "body_temperature" => "8310-5",
        "blood_pressure" => "85354-9",
        "heart_rate_variability" => "80404-7",
        "body_mass" => "29463-7",
        "resting_heart_rate" => "40443-4",
        "blood_glucose" => "2339-0",
        "active_energy" => "41981-2",
        "phq9" => "44261-6",
        "gad7" => "70274-6",
        _ => return None,
    })
}

pub async fn upload(app: &TestApp, token: &str, samples: &[Value]) {
    for chunk in samples.chunks(100) {
        let (status, body) = app
            .post(
                "/api/v1/health-data",
                &json!({"samples": chunk}),
                Some(token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["rejected"], json!([]), "{body}");
    }
}

/// GET with a bearer token: status, content type, body text.
pub async fn get_text(
    app: &TestApp,
    path: &str,
    token: &str,
    accept: Option<&str>,
) -> (StatusCode, String, String) {
    let mut req = app.http.get(app.url(path)).bearer_auth(token);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, resp.text().await.unwrap())
}

/// The pinned fhir.resources environment, or `None` (with a message) where it is absent.
fn fhir_python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("CLARITY_TEST_FHIR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/fhir-venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import fhir.resources.R4B"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var_os("CLARITY_TEST_REQUIRE_FHIR").is_none(),
        "CLARITY_TEST_REQUIRE_FHIR is set but {} cannot import fhir.resources (run scripts/fhir-env)",
        python.display()
    );
    eprintln!(
        "skipping the fhir.resources validation: no pinned venv (run scripts/fhir-env, as scripts/test does)"
    );
    None
}

/// Validates NDJSON resources (a Bundle is one line) with fhir.resources' R4B models.
pub fn validate_fhir(ndjson: &str) {
    let Some(python) = fhir_python() else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fhir_validate.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ndjson.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "invalid FHIR:\n{text}");
    assert!(text.contains("valid resources"), "{text}");
}

async fn analysed_user(app: &TestApp) -> (Session, Vec<Value>) {
    let user = app.user().await;
    let samples = every_kind();
    upload(app, &user.access, &samples).await;
    let (status, body) = app
        .post("/api/v1/analyses", &json!({}), Some(&user.access))
        .await;
    assert!(status.is_success(), "{status} {body}");
    (user, samples)
}

#[tokio::test]
async fn every_kind_exports_as_a_valid_observation_with_its_code_offset_and_device() {
    let app = spawn_app().await;
    let (user, samples) = analysed_user(&app).await;
    let (status, ctype, text) = get_text(&app, "/api/v1/export/fhir", &user.access, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(ctype, "application/fhir+json");
    let bundle: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        samples.len() + 1,
        "every sample and the analysis"
    );
    let patient = format!("Patient/{}", user.user_id);
    // What the server kept of each sample (provenance once the server stores it).
    let stored = app.all_samples(&user.access, "").await;
    for s in &samples {
        let id = s["id"].as_str().unwrap();
        let kind = s["kind"].as_str().unwrap();
        let e = entries
            .iter()
            .find(|e| e["resource"]["identifier"][0]["value"] == id)
            .unwrap_or_else(|| panic!("{id} exported"));
        let o = &e["resource"];
        assert_eq!(
            e["fullUrl"],
            format!("urn:uuid:{}", o["id"].as_str().unwrap())
        );
        assert_eq!(o["resourceType"], "Observation");
        assert_eq!(o["subject"]["reference"], patient);
        let coding = &o["code"]["coding"][0];
        match expected_loinc(kind) {
            Some(code) => {
                assert_eq!(coding["system"], "http://loinc.org", "{kind}");
                assert_eq!(coding["code"], code, "{kind}");
            }
            None => assert_eq!(coding["system"], "urn:clarity:fhir:code", "{kind}"),
        }
        // The original offset and instant, as sent.
        match s.get("end") {
            Some(end) => {
                assert_eq!(o["effectivePeriod"]["start"], s["start"], "{kind}");
                assert_eq!(o["effectivePeriod"]["end"], *end, "{kind}");
            }
            None => assert_eq!(o["effectiveDateTime"], s["start"], "{kind}"),
        }
        match kind {
            "blood_pressure" => {
                let c = o["component"].as_array().unwrap();
                assert_eq!(c[0]["code"]["coding"][0]["code"], "8480-6");
                assert_eq!(c[0]["valueQuantity"]["value"], 120);
                assert_eq!(c[1]["code"]["coding"][0]["code"], "8462-4");
                assert_eq!(c[1]["valueQuantity"]["value"], 80.5);
                assert_eq!(c[1]["valueQuantity"]["code"], "mm[Hg]");
            }
            "sleep_stage" => assert_eq!(o["valueCodeableConcept"]["coding"][0]["code"], "deep"),
            _ => {
                let q = &o["valueQuantity"];
                assert_eq!(q["value"], s["value"], "{kind}");
                assert_eq!(q["system"], "http://unitsofmeasure.org", "{kind}");
            }
        }
        let ucum = o["valueQuantity"]["code"].clone();
        match kind {
            "heart_rate" | "respiratory_rate" | "resting_heart_rate" => assert_eq!(ucum, "/min"),
            "oxygen_saturation" => assert_eq!(ucum, "%"),
            "body_temperature" => assert_eq!(ucum, "Cel"),
            "body_mass" => assert_eq!(ucum, "kg"),
            _ => {}
        }
        let category = &o["category"][0]["coding"][0]["code"];
        match kind {
            "heart_rate" | "blood_pressure" | "oxygen_saturation" | "body_temperature" => {
                assert_eq!(category, "vital-signs", "{kind}")
            }
            "step_count" | "workout" => assert_eq!(category, "activity", "{kind}"),
            _ => {}
        }
        match s.get("source") {
            Some(source) => {
                assert_eq!(o["device"]["reference"], "#device", "{kind}");
                assert_eq!(o["contained"][0]["resourceType"], "Device");
                assert_eq!(o["contained"][0]["deviceName"][0]["name"], *source);
            }
            None => assert!(
                o.get("device").is_none() && o.get("contained").is_none(),
                "{kind}"
            ),
        }
        let kept = stored.iter().find(|x| x["id"] == id).unwrap();
        if let Some(device) = kept.pointer("/provenance/device") {
            let d = &o["contained"][0];
            assert_eq!(d["manufacturer"], device["manufacturer"], "{kind}");
            assert_eq!(d["modelNumber"], device["model"], "{kind}");
        }
    }
    let analysis = entries
        .iter()
        .find(|e| e["resource"]["code"]["coding"][0]["code"] == "circadian-analysis")
        .expect("the analysis");
    assert!(
        analysis["resource"]["component"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    validate_fhir(&format!("{text}\n"));

    // Bulk Data NDJSON: the same resources, one a line, by parameter or by Accept.
    for (path, accept) in [
        ("/api/v1/export/fhir?format=ndjson", None),
        ("/api/v1/export/fhir", Some("application/fhir+ndjson")),
    ] {
        let (status, ctype, nd) = get_text(&app, path, &user.access, accept).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype, "application/fhir+ndjson");
        let lines: Vec<Value> = nd
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let from_bundle: Vec<&Value> = entries.iter().map(|e| &e["resource"]).collect();
        assert_eq!(lines.iter().collect::<Vec<_>>(), from_bundle);
        validate_fhir(&nd);
    }

    // Filters: one kind, a time range.
    let q = format!(
        "/api/v1/export/fhir?kind=heart_rate&from={}&to={}",
        urlencode(&at(0)),
        urlencode(&at(2))
    );
    let (status, _, text) = get_text(&app, &q, &user.access, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let b: Value = serde_json::from_str(&text).unwrap();
    let e = b["entry"].as_array().unwrap();
    assert_eq!(e.len(), 1, "{b}");
    assert_eq!(e[0]["resource"]["identifier"][0]["value"], "hr-1");
    // Nothing selected: a valid Bundle without entries (FHIR JSON has no empty arrays).
    let (_, _, text) = get_text(
        &app,
        "/api/v1/export/fhir?kind=gad7&to=2001-01-01T00:00:00Z",
        &user.access,
        None,
    )
    .await;
    let b: Value = serde_json::from_str(&text).unwrap();
    assert!(b.get("entry").is_none(), "{b}");
    validate_fhir(&format!("{text}\n"));
}

pub fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn a_shared_export_holds_the_analyses_only_and_is_audited() {
    let app = spawn_app().await;
    let (owner, _) = analysed_user(&app).await;
    let viewer = app.user().await;
    let stranger = app.user().await;
    let (status, body) = app
        .post(
            "/api/v1/shares",
            &json!({"grantee_email": viewer.email, "scope": "analyses"}),
            Some(&owner.access),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let path = format!("/api/v1/export/fhir?user_id={}", owner.user_id);
    let (status, _, text) = get_text(&app, &path, &viewer.access, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let b: Value = serde_json::from_str(&text).unwrap();
    let entries = b["entry"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        1,
        "the analysis only, never a raw sample: {b}"
    );
    assert_eq!(
        entries[0]["resource"]["code"]["coding"][0]["code"],
        "circadian-analysis"
    );
    assert_eq!(
        entries[0]["resource"]["subject"]["reference"],
        format!("Patient/{}", owner.user_id)
    );
    validate_fhir(&format!("{text}\n"));

    let (status, body) = app
        .get(&format!("{path}&kind=heart_rate"), Some(&viewer.access))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("never shared")
    );
    let (status, body) = app.get(&path, Some(&stranger.access)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, log) = app
        .get("/api/v1/audit?limit=100", Some(&owner.access))
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries = log["entries"].as_array().unwrap();
    let by = |action: &str, actor: uuid::Uuid| {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["actor_id"] == json!(actor))
            .map(|e| e["target"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(by("data_read", viewer.user_id), [json!("fhir:analyses")]);
    assert_eq!(
        by("access_denied", stranger.user_id),
        [json!("fhir:analyses")]
    );
}

#[tokio::test]
async fn export_parameters_outside_their_rules_are_refused_naming_the_rule() {
    let app = spawn_app().await;
    let user = app.user().await;
    let t = Some(user.access.as_str());
    for (path, needle) in [
        ("/api/v1/export/fhir?kind=pulse", "kind must be one of"),
        ("/api/v1/export/fhir?format=xml", "format must be"),
        ("/api/v1/export/fhir?user_id=nope", "UUID"),
        ("/api/v1/export/fhir?from=yesterday", "RFC 3339"),
        (
            "/api/v1/export/openmhealth?kind=heart_rate_variability",
            "no Open mHealth schema",
        ),
        ("/api/v1/export/openmhealth?user_id=x", "user_id"),
        (
            "/api/v1/export/csv?kind=heart_rate&format=minutes",
            "activity_count",
        ),
        ("/api/v1/export/csv?format=wide", "format must be"),
    ] {
        let (status, body) = app.get(path, t).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{path}: {message}");
    }
    let (status, _) = app.get("/api/v1/export/fhir", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
