//! Open mHealth: `GET /api/v1/export/openmhealth` validates against the official schemas
//! (vendored in protocol/openmhealth/), and export → `POST /api/v1/import/openmhealth` into
//! another account → export is lossless for every mapped kind; rejections are per point and
//! name the rule.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::spawn_app;
use crate::export_fhir::{at, every_kind, get_text, upload};

/// Kinds without an Open mHealth schema (docs/interop.md says why).
const UNMAPPED: [&str; 8] = [
    "activity_count",
    "heart_rate_variability",
    "heart_rate_variability_rmssd",
    "distance",
    "mindful_session",
    "mood",
    "phq9",
    "gad7",
];

const BASE: &str = "https://w3id.org/openmhealth/schemas/omh/";

/// A validator of `name` (e.g. `heart-rate-2.0`) with every vendored schema registered.
fn validator(name: &str) -> jsonschema::Validator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/openmhealth/schemas");
    let mut options = jsonschema::options().should_validate_formats(true);
    let mut root = None;
    for entry in std::fs::read_dir(&dir).expect("protocol/openmhealth/schemas") {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if file == format!("{name}.json") {
            root = Some(schema.clone());
        }
        let resource = jsonschema::Resource::from_contents(schema).unwrap();
        options = options.with_resource(format!("{BASE}{file}"), resource);
    }
    let root = root.unwrap_or_else(|| panic!("{name} is vendored"));
    options
        .with_base_uri(format!("{BASE}{name}.json"))
        .build(&root)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_valid(point: &Value) {
    let errors = |v: &jsonschema::Validator, x: &Value| {
        v.iter_errors(x)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect::<Vec<_>>()
    };
    let e = errors(&validator("data-point-1.0"), point);
    assert!(e.is_empty(), "{e:#?}\n{point}");
    let id = &point["header"]["schema_id"];
    assert_eq!(id["namespace"], "omh");
    let name = format!(
        "{}-{}",
        id["name"].as_str().unwrap(),
        id["version"].as_str().unwrap()
    );
    let e = errors(&validator(&name), &point["body"]);
    assert!(e.is_empty(), "{name}: {e:#?}\n{point}");
}

/// The data points without what an export stamps (creation time).
fn comparable(points: &[Value]) -> Vec<Value> {
    points
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p["header"]
                .as_object_mut()
                .unwrap()
                .remove("creation_date_time");
            p
        })
        .collect()
}

#[test]
fn the_validator_refuses_what_the_schemas_refuse() {
    // A check that can fail: a heart rate in a unit the schema does not list.
    let v = validator("heart-rate-2.0");
    let bad = json!({"heart_rate": {"value": 60, "unit": "Hz"}, "effective_time_frame": {"date_time": "2026-01-01T00:00:00Z"}});
    assert!(!v.is_valid(&bad));
    let v = validator("step-count-2.0");
    let bad = json!({"step_count": {"value": 6, "unit": "steps"}, "effective_time_frame": {"date_time": "2026-01-01T00:00:00Z"}});
    assert!(!v.is_valid(&bad), "step-count needs an interval");
}

#[tokio::test]
async fn export_validates_and_a_round_trip_through_another_account_is_lossless() {
    let app = spawn_app().await;
    let a = app.user().await;
    let samples = every_kind();
    upload(&app, &a.access, &samples).await;
    let mapped: Vec<&Value> = samples
        .iter()
        .filter(|s| !UNMAPPED.contains(&s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(mapped.len(), 12, "every mapped kind is in the fixture");

    let (status, ctype, text) = get_text(&app, "/api/v1/export/openmhealth", &a.access, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(ctype, "application/json");
    let points: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(points.len(), mapped.len());
    for p in &points {
        assert_valid(p);
    }
    let bp = points.iter().find(|p| p["header"]["id"] == "bp-1").unwrap();
    assert_eq!(
        bp["body"]["diastolic_blood_pressure"],
        json!({"value": 80.5, "unit": "mmHg"})
    );
    assert_eq!(
        bp["header"]["acquisition_provenance"]["source_name"],
        "Omron \"Connect\", Inc"
    );
    assert_eq!(
        bp["body"]["effective_time_frame"]["date_time"],
        at(8),
        "original offset"
    );
    let rhr = points
        .iter()
        .find(|p| p["header"]["id"] == "rhr-1")
        .unwrap();
    assert_eq!(
        rhr["body"]["temporal_relationship_to_physical_activity"],
        "at rest"
    );

    // Into another account, as NDJSON.
    let b = app.user().await;
    let ndjson: String = points.iter().map(|p| format!("{p}\n")).collect();
    let import = |body: String, ctype: &'static str| {
        let req = app
            .http
            .post(app.url("/api/v1/import/openmhealth"))
            .bearer_auth(&b.access)
            .header("content-type", ctype)
            .body(body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, report) = import(ndjson.clone(), "application/x-ndjson").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["accepted"], mapped.len(), "{report}");
    assert_eq!(report["rejected"], json!([]));
    // Again, as a JSON array: the ids come from header.id, so nothing is stored twice.
    let (status, report) = import(text.clone(), "application/json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (report["accepted"].as_u64(), report["duplicates"].as_u64()),
        (Some(0), Some(mapped.len() as u64))
    );

    let (_, ctype, text_b) = get_text(
        &app,
        "/api/v1/export/openmhealth?format=ndjson",
        &b.access,
        None,
    )
    .await;
    assert_eq!(ctype, "application/x-ndjson");
    let points_b: Vec<Value> = text_b
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        comparable(&points_b),
        comparable(&points),
        "export → import → export"
    );
    // And the samples themselves, as the REST history shows them.
    let mut samples_a = app.all_samples(&a.access, "").await;
    samples_a.retain(|s| !UNMAPPED.contains(&s["kind"].as_str().unwrap()));
    assert_eq!(app.all_samples(&b.access, "").await, samples_a);
}

#[tokio::test]
async fn import_rejects_point_by_point_naming_the_rule() {
    let app = spawn_app().await;
    let user = app.user().await;
    let hr = |id: &str, unit: &str, value: f64| {
        json!({"header": {"id": id, "creation_date_time": at(0), "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"}},
               "body": {"heart_rate": {"value": value, "unit": unit}, "effective_time_frame": {"date_time": at(1)}}})
    };
    let temp_f = json!({"header": {"id": "t", "creation_date_time": at(0), "schema_id": {"namespace": "omh", "name": "body-temperature", "version": "3.0"}},
        "body": {"body_temperature": {"value": 98.6, "unit": "F"}, "effective_time_frame": {"date_time": at(2)}}});
    let rr_interval = json!({"header": {"id": "rr", "creation_date_time": at(0), "schema_id": {"namespace": "omh", "name": "rr-interval", "version": "1.0"}}, "body": {}});
    let points = json!([hr("ok", "beats/min", 61.0), rr_interval, hr("hz", "Hz", 1.0), temp_f, hr("fast", "beats/min", 400.0), {"body": {}}]);
    let (status, report) = app
        .post("/api/v1/import/openmhealth", &points, Some(&user.access))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["accepted"], 2, "{report}");
    let rejected: Vec<(u64, &str)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        [
            (1, "unmapped_schema"),
            (2, "unit_mismatch"),
            (4, "out_of_range"),
            (5, "invalid_data_point")
        ]
    );
    let messages: Vec<&str> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert!(
        messages[0].contains("heart-rate"),
        "lists the mapped schemas: {}",
        messages[0]
    );
    assert!(messages[1].contains("accepted units"), "{}", messages[1]);
    let temps = app
        .all_samples(&user.access, "&kind=body_temperature")
        .await;
    assert_eq!(temps[0]["value"], 37, "98.6 F stored as °C: {temps:?}");

    // Not NDJSON at all: the line is named.
    let resp = app
        .http
        .post(app.url("/api/v1/import/openmhealth"))
        .bearer_auth(&user.access)
        .header("content-type", "application/x-ndjson")
        .body(format!("{}\nnot json\n", hr("x", "beats/min", 60.0)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2"),
        "{body}"
    );
    let resp = app
        .http
        .post(app.url("/api/v1/import/openmhealth"))
        .bearer_auth(&user.access)
        .header("content-type", "text/csv")
        .body("a,b")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
