//! Phone data through the real interfaces: every kind a phone sends, in the units HealthKit
//! and Health Connect hold it in, sent over REST and over the WebSocket, read back from the
//! REST history converted to the canonical unit (with `diastolic` / `activity` at the top of
//! the sample), on SQLite and on DynamoDB. Bad units, ranges and kinds are refused with
//! messages that name the rule, in the ack and in the REST report alike. Every sample sent is
//! also checked against protocol/schemas/client/samples.json: accepted ones match it, ones
//! refused for their unit or range do not.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, TestApp, spawn_on};

/// `(sample as sent, value read back, unit read back, extra fields read back)`.
fn phone_samples(prefix: &str) -> Vec<(Value, Value)> {
    let s = |id: &str, kind: &str, rest: Value| {
        let mut v = json!({"id": format!("{prefix}-{id}"), "kind": kind,
            "start": "2026-03-01T07:00:00-05:00", "source": "Apple Watch"});
        v.as_object_mut()
            .unwrap()
            .extend(rest.as_object().unwrap().clone());
        v
    };
    let back = |sent: &Value, value: Value, unit: Option<&str>, extra: Value| {
        let mut v = sent.clone();
        let o = v.as_object_mut().unwrap();
        o.insert("value".into(), value);
        match unit {
            Some(u) => o.insert("unit".into(), u.into()),
            None => o.remove("unit"),
        };
        o.extend(extra.as_object().unwrap().clone());
        v
    };
    let end = "2026-03-01T07:42:00-05:00";
    let cases = [
        (
            s(
                "temp",
                "body_temperature",
                json!({"value": 98.6, "unit": "degF"}),
            ),
            json!(37),
            Some("degC"),
            json!({}),
        ),
        (
            s(
                "spo2",
                "oxygen_saturation",
                json!({"value": 0.96, "unit": "1"}),
            ),
            json!(96),
            Some("%"),
            json!({}),
        ),
        (
            s("spo2-bare", "oxygen_saturation", json!({"value": 0.935})),
            json!(93.5),
            Some("%"),
            json!({}),
        ),
        (
            s(
                "spo2-hc",
                "oxygen_saturation",
                json!({"value": 97, "unit": "%"}),
            ),
            json!(97),
            Some("%"),
            json!({}),
        ),
        (
            s(
                "sdnn",
                "heart_rate_variability",
                json!({"value": 48.2, "unit": "ms"}),
            ),
            json!(48.2),
            Some("ms"),
            json!({}),
        ),
        (
            s(
                "rmssd",
                "heart_rate_variability_rmssd",
                json!({"value": 0.0351, "unit": "s"}),
            ),
            json!(35.1),
            Some("ms"),
            json!({}),
        ),
        (
            s(
                "rhr",
                "resting_heart_rate",
                json!({"value": 54, "unit": "count/min", "end": "2026-03-01T23:59:00-05:00"}),
            ),
            json!(54),
            Some("count/min"),
            json!({}),
        ),
        (
            s(
                "resp",
                "respiratory_rate",
                json!({"value": 14.5, "unit": "count/min"}),
            ),
            json!(14.5),
            Some("count/min"),
            json!({}),
        ),
        (
            s(
                "bp",
                "blood_pressure",
                json!({"value": 118, "diastolic": 76, "unit": "mmHg"}),
            ),
            json!(118),
            Some("mmHg"),
            json!({"diastolic": 76}),
        ),
        (
            s(
                "bp-kpa",
                "blood_pressure",
                json!({"value": 16, "diastolic": 10.5, "unit": "kPa"}),
            ),
            json!(120.009852),
            Some("mmHg"),
            json!({"diastolic": 78.756465}),
        ),
        (
            s(
                "glucose",
                "blood_glucose",
                json!({"value": 5.5, "unit": "mmol/L"}),
            ),
            json!(99.0858),
            Some("mg/dL"),
            json!({}),
        ),
        (
            s(
                "energy",
                "active_energy",
                json!({"value": 418.4, "unit": "kJ", "end": end}),
            ),
            json!(100),
            Some("kcal"),
            json!({}),
        ),
        (
            s(
                "dist",
                "distance",
                json!({"value": 3.1, "unit": "mi", "end": end}),
            ),
            json!(4988.9664),
            Some("m"),
            json!({}),
        ),
        (
            s("mass", "body_mass", json!({"value": 154, "unit": "lb"})),
            json!(69.853225),
            Some("kg"),
            json!({}),
        ),
        (
            s(
                "workout",
                "workout",
                json!({"value": 1250, "unit": "kJ", "end": end, "activity": "HKWorkoutActivityTypeTraditionalStrengthTraining"}),
            ),
            json!(298.75717),
            Some("kcal"),
            json!({"activity": "traditional_strength_training"}),
        ),
        (
            s(
                "workout-hc",
                "workout",
                json!({"value": 310, "unit": "kcal", "end": end, "activity": "EXERCISE_TYPE_RUNNING"}),
            ),
            json!(310),
            Some("kcal"),
            json!({"activity": "running"}),
        ),
        (
            s(
                "mindful",
                "mindful_session",
                json!({"value": 600, "unit": "s", "end": "2026-03-01T07:10:00-05:00"}),
            ),
            json!(10),
            Some("min"),
            json!({}),
        ),
        (
            s("mood", "mood", json!({"value": -0.35})),
            json!(-0.35),
            Some("1"),
            json!({}),
        ),
        (
            s("phq9", "phq9", json!({"value": 7})),
            json!(7),
            Some("{score}"),
            json!({}),
        ),
        (
            s("gad7", "gad7", json!({"value": 4, "unit": "score"})),
            json!(4),
            Some("{score}"),
            json!({}),
        ),
        (
            s(
                "stage-hk",
                "sleep_stage",
                json!({"value": "asleepCore", "start": "2026-03-01T01:00:00-05:00", "end": "2026-03-01T01:30:00-05:00"}),
            ),
            json!("light"),
            None,
            json!({}),
        ),
        (
            s(
                "stage-hc",
                "sleep_stage",
                json!({"value": "STAGE_TYPE_DEEP", "start": "2026-03-01T01:30:00-05:00", "end": "2026-03-01T02:00:00-05:00"}),
            ),
            json!("deep"),
            None,
            json!({}),
        ),
    ];
    cases
        .into_iter()
        .map(|(sent, value, unit, extra)| {
            let b = back(&sent, value, unit, extra);
            (sent, b)
        })
        .collect()
}

/// A validator of the client `samples` frame schema.
fn client_schema() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(include_str!("../../protocol/schemas/client/samples.json")).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn frame(seq: u64, samples: &[Value]) -> Value {
    json!({"type": "samples", "seq": seq, "samples": samples})
}

/// The caller's samples whose id starts with `prefix`, by id.
async fn read_back(app: &TestApp, token: &str, prefix: &str) -> Vec<Value> {
    let mut got: Vec<Value> = app
        .all_samples(token, "")
        .await
        .into_iter()
        .filter(|s| s["id"].as_str().unwrap().starts_with(prefix))
        .collect();
    got.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    got
}

fn by_id(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    v
}

async fn phone_kinds_round_trip(backend: Backend) {
    let app = spawn_on(&backend, |_| {}).await;
    let u = app.user().await;
    let schema = client_schema();

    // REST upload.
    let rest = phone_samples("rest");
    let sent: Vec<Value> = rest.iter().map(|(s, _)| s.clone()).collect();
    assert!(
        schema.is_valid(&frame(1, &sent)),
        "{:?}",
        schema
            .iter_errors(&frame(1, &sent))
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let (status, report) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": sent}),
            Some(&u.access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rejected"], json!([]), "{report}");
    assert_eq!(report["accepted"], rest.len());
    let want = by_id(rest.iter().map(|(_, b)| b.clone()).collect());
    assert_eq!(read_back(&app, &u.access, "rest-").await, want);

    // WebSocket ingest: the same samples, the same canonical form.
    let ws_samples = phone_samples("ws");
    let sent: Vec<Value> = ws_samples.iter().map(|(s, _)| s.clone()).collect();
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    ws.send(&frame(7, &sent)).await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(
        (&ack["accepted"], &ack["rejected"]),
        (&json!(ws_samples.len()), &json!([])),
        "{ack}"
    );
    let want = by_id(ws_samples.iter().map(|(_, b)| b.clone()).collect());
    assert_eq!(read_back(&app, &u.access, "ws-").await, want);

    // Filtered by kind, the extra fields come too.
    let workouts = app.all_samples(&u.access, "&kind=workout").await;
    assert_eq!(workouts.len(), 4);
    assert!(
        workouts.iter().all(|w| w["activity"].is_string()),
        "{workouts:?}"
    );
}

#[tokio::test]
async fn phone_kinds_round_trip_on_sqlite() {
    phone_kinds_round_trip(Backend::Sqlite).await;
}

#[tokio::test]
async fn phone_kinds_round_trip_on_dynamodb() {
    if let Some(b) = Backend::dynamodb() {
        phone_kinds_round_trip(b).await;
    }
}

/// `(sample, code, message)` for samples refused for their unit, range, kind or extra fields.
fn bad_samples() -> Vec<(Value, &'static str, String)> {
    let at = "2026-03-01T07:00:00-05:00";
    let kinds = "activity_count, step_count, heart_rate, heart_rate_variability, \
        respiratory_rate, oxygen_saturation, body_temperature, sleep_stage, \
        heart_rate_variability_rmssd, resting_heart_rate, blood_pressure, blood_glucose, \
        active_energy, distance, body_mass, workout, mindful_session, mood, phq9, gad7";
    vec![
        (
            json!({"id": "b0", "kind": "body_temperature", "start": at, "value": 98.6, "unit": "fahrenheit"}),
            "unit_mismatch",
            "unknown unit `fahrenheit` for body_temperature; accepted units: `degC`, `°C`, `Cel`, `C`, `degF`, `°F`, `[degF]`, `F`, `K`".into(),
        ),
        (
            json!({"id": "b1", "kind": "blood_glucose", "start": at, "value": 5.5, "unit": "mmol"}),
            "unit_mismatch",
            "unknown unit `mmol` for blood_glucose; accepted units: `mg/dL`, `mg/dl`, `mmol/L`, `mmol/l`".into(),
        ),
        (
            json!({"id": "b2", "kind": "body_temperature", "start": at, "value": 120, "unit": "degF"}),
            "out_of_range",
            "body_temperature must be within 25..=45 degC; got 120 degF, which is 48.888889 degC".into(),
        ),
        (
            json!({"id": "b3", "kind": "heart_rate", "start": at, "value": 900}),
            "out_of_range",
            "heart_rate must be within 20..=300 count/min; got 900".into(),
        ),
        (
            json!({"id": "b4", "kind": "oxygen_saturation", "start": at, "value": 0.3}),
            "out_of_range",
            "oxygen_saturation must be within 50..=100 %; got 0.3 as a fraction, which is 30 %".into(),
        ),
        (
            json!({"id": "b5", "kind": "blood_pressure", "start": at, "value": 120, "diastolic": 9, "unit": "kPa"}),
            "out_of_range",
            "blood_pressure must be within 40..=300 mmHg; got 120 kPa, which is 900.073891 mmHg".into(),
        ),
        (
            json!({"id": "b6", "kind": "heartrate", "start": at, "value": 60}),
            "unknown_kind",
            format!("unknown kind `heartrate`; kind must be one of {kinds}"),
        ),
    ]
}

#[tokio::test]
async fn bad_units_ranges_and_kinds_name_the_rule_over_ws_and_rest() {
    let app = spawn_on(&Backend::Sqlite, |_| {}).await;
    let u = app.user().await;
    let schema = client_schema();
    let bad = bad_samples();
    for (sample, _, _) in &bad {
        assert!(
            !schema.is_valid(&frame(0, std::slice::from_ref(sample))),
            "the schema accepts {sample}"
        );
    }
    let sent: Vec<Value> = bad.iter().map(|(s, _, _)| s.clone()).collect();
    let want: Vec<Value> = bad
        .iter()
        .enumerate()
        .map(|(i, (_, code, message))| json!({"index": i, "code": code, "message": message}))
        .collect();

    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    ws.send(&frame(3, &sent)).await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(ack["accepted"], 0, "{ack}");
    assert_eq!(ack["rejected"], json!(want));

    let (status, report) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": sent}),
            Some(&u.access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rejected"], json!(want));
    assert!(app.all_samples(&u.access, "").await.is_empty());

    // The history's `kind` filter names the kinds too.
    let (status, body) = app
        .get("/api/v1/health-data?kind=heartrate", Some(&u.access))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with(&bad[6].2["unknown kind `heartrate`; ".len()..]),
        "{message}"
    );
}
