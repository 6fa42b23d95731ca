//! Open mHealth data points (header + body) of samples, and samples of data points, both
//! through [`super::table`].
//!
//! Rules:
//! - Export: the header's `id` is the sample id, `schema_id` the kind's schema, the
//!   `acquisition_provenance.source_name` the sample's source; times keep their offsets
//!   (`date_time` for a reading, `time_interval` with start and end for an interval; a schema
//!   that requires an interval gets start = end for a reading).
//! - Clarity fields no Open mHealth schema has travel as extensions the schemas allow
//!   (they do not forbid further properties): `header.clarity` holds the sample's `version`
//!   and `provenance`; a sleep-episode's body holds `sleep_stage` (Clarity's stage name).
//! - Import turns a data point into the sample input REST and WebSocket take, so the same
//!   validation (units, ranges, times) applies; what cannot be mapped is refused per point
//!   with a code and a message naming the rule. The sample id is the header's `id` when it
//!   is a valid Clarity id, else `omh-` + the first 32 hex digits of its SHA-256: importing
//!   the same points twice stores nothing twice.
//! - A heart-rate point `at rest` (temporal_relationship_to_physical_activity) is a
//!   resting_heart_rate; a zero-length interval is a reading (no end), unless the kind is an
//!   interval kind.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::table::{self, Omh};
use crate::samples::provenance::RecordingMethod;
use crate::samples::{Kind, MAX_ID_LEN, Sample, SleepStage};

/// Why a data point was refused: (code, message).
pub type Refusal = (&'static str, String);

/// Schemas whose `effective_time_frame` must be an interval.
fn needs_interval(schema: &str) -> bool {
    matches!(schema, "step-count" | "calories-burned" | "sleep-episode")
}

fn unit_value(value: f64, unit: &str) -> Value {
    json!({"value": number(value), "unit": unit})
}

fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// The Open mHealth data point of a sample; `None` for a kind without a schema.
/// `created` is the header's `creation_date_time` (RFC 3339).
pub fn data_point(sample: &Sample, created: &str) -> Option<Value> {
    let o: Omh = table::mapping(sample.kind).omh?;
    let start = sample.start.to_rfc3339();
    let frame = match (sample.end, needs_interval(o.schema)) {
        (Some(end), _) => {
            json!({"time_interval": {"start_date_time": start, "end_date_time": end.to_rfc3339()}})
        }
        (None, true) => {
            json!({"time_interval": {"start_date_time": start, "end_date_time": start}})
        }
        (None, false) => json!({"date_time": start}),
    };
    let mut body = Map::new();
    match sample.kind {
        Kind::BloodPressure => {
            body.insert(o.property.into(), unit_value(sample.value, o.unit));
            if let Some(d) = sample.diastolic() {
                body.insert("diastolic_blood_pressure".into(), unit_value(d, o.unit));
            }
        }
        Kind::SleepStage => {
            let stage = SleepStage::from_code(sample.value).unwrap_or(SleepStage::Asleep);
            body.insert("sleep_stage".into(), json!(stage.as_str()));
        }
        Kind::Workout => {
            body.insert(
                "activity_name".into(),
                json!(sample.activity().unwrap_or("other")),
            );
            body.insert(o.property.into(), unit_value(sample.value, o.unit));
        }
        Kind::RestingHeartRate => {
            body.insert(o.property.into(), unit_value(sample.value, o.unit));
            body.insert(
                "temporal_relationship_to_physical_activity".into(),
                json!("at rest"),
            );
        }
        // step-count 2.0 holds a plain number (3.0, deprecated, a unit-value).
        Kind::StepCount => {
            body.insert(o.property.into(), number(sample.value));
        }
        _ => {
            body.insert(o.property.into(), unit_value(sample.value, o.unit));
        }
    }
    body.insert("effective_time_frame".into(), frame);
    let mut header = Map::new();
    header.insert("id".into(), json!(sample.id));
    header.insert("creation_date_time".into(), json!(created));
    header.insert(
        "schema_id".into(),
        json!({"namespace": "omh", "name": o.schema, "version": o.version}),
    );
    let provenance = sample.extra.as_ref().and_then(|e| e.provenance.as_ref());
    if let Some(source) = &sample.source {
        let mut ap = Map::new();
        ap.insert("source_name".into(), json!(source));
        if let Some(m) = provenance.and_then(|p| p.method) {
            let modality = match m {
                RecordingMethod::Manual => "self-reported",
                RecordingMethod::Automatic | RecordingMethod::Active => "sensed",
            };
            ap.insert("modality".into(), json!(modality));
        }
        header.insert("acquisition_provenance".into(), Value::Object(ap));
    }
    let mut clarity = Map::new();
    if let Some(v) = sample.version {
        clarity.insert("version".into(), json!(v));
    }
    if let Some(p) = provenance {
        clarity.insert("provenance".into(), json!(p));
    }
    if !clarity.is_empty() {
        header.insert("clarity".into(), Value::Object(clarity));
    }
    Some(json!({"header": header, "body": body}))
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    (code, message.into())
}

/// The Clarity sample id of a data point's header id.
pub fn sample_id(header_id: &str) -> String {
    if !header_id.is_empty()
        && header_id.len() <= MAX_ID_LEN
        && !header_id.chars().any(char::is_control)
    {
        return header_id.to_owned();
    }
    let digest = Sha256::digest(header_id.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("omh-{hex}")
}

/// Seconds in an Open mHealth duration unit (the ones a time interval uses).
fn duration_ms(d: &Value) -> Result<i64, Refusal> {
    let bad = || {
        refuse(
            "invalid_time",
            "duration must be {\"value\": number >= 0, \"unit\": one of ms, sec, min, h, d}",
        )
    };
    let v = d.get("value").and_then(Value::as_f64).ok_or_else(bad)?;
    let scale = match d.get("unit").and_then(Value::as_str).ok_or_else(bad)? {
        "ms" => 1.0,
        "sec" => 1_000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(bad()),
    };
    if !(0.0..=1.0e13).contains(&(v * scale)) {
        return Err(bad());
    }
    Ok((v * scale).round() as i64)
}

/// `start`/`end` strings of an effective time frame.
fn times(frame: Option<&Value>) -> Result<(String, Option<String>), Refusal> {
    let rule = "effective_time_frame must hold `date_time`, or `time_interval` with two of \
                start_date_time, end_date_time and duration";
    let frame = frame.ok_or_else(|| refuse("invalid_time", rule))?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    if let Some(t) = text(frame.get("date_time")) {
        return Ok((t, None));
    }
    let i = frame
        .get("time_interval")
        .ok_or_else(|| refuse("invalid_time", rule))?;
    let start = text(i.get("start_date_time"));
    let end = text(i.get("end_date_time"));
    let shift = |t: &str, ms: i64| -> Result<String, Refusal> {
        let t = chrono::DateTime::parse_from_rfc3339(t).map_err(|_| {
            refuse(
                "invalid_time",
                format!("time_interval times must be {}", crate::samples::TIME_RULE),
            )
        })?;
        Ok((t + chrono::Duration::milliseconds(ms))
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    };
    match (start, end, i.get("duration")) {
        (Some(s), Some(e), _) => Ok((s, Some(e))),
        (Some(s), None, Some(d)) => {
            let e = shift(&s, duration_ms(d)?)?;
            Ok((s, Some(e)))
        }
        (None, Some(e), Some(d)) => Ok((shift(&e, -duration_ms(d)?)?, Some(e))),
        _ => Err(refuse("invalid_time", rule)),
    }
}

/// The kind of a schema name, given the body (heart-rate at rest is resting heart rate).
fn kind_of(name: &str, body: &Value) -> Option<Kind> {
    if name == "heart-rate"
        && body
            .get("temporal_relationship_to_physical_activity")
            .and_then(Value::as_str)
            == Some("at rest")
    {
        return Some(Kind::RestingHeartRate);
    }
    table::TABLE
        .iter()
        .filter(|m| m.kind != Kind::RestingHeartRate)
        .find(|m| m.omh.is_some_and(|o| o.schema == name))
        .map(|m| m.kind)
}

/// Accepted schema names, for messages.
fn schema_names() -> String {
    let mut names: Vec<&str> = table::TABLE
        .iter()
        .filter_map(|m| m.omh.map(|o| o.schema))
        .collect();
    names.dedup();
    names.join(", ")
}

/// `{value, unit}` of a body property; a plain number (step-count 2.0) has no unit, so the
/// kind's canonical one applies.
fn read_unit_value(body: &Value, property: &str) -> Result<(Value, Option<Value>), Refusal> {
    let uv = body.get(property).ok_or_else(|| {
        refuse(
            "invalid_value",
            format!("body.{property} is required: {{\"value\": number, \"unit\": string}}"),
        )
    })?;
    if uv.is_number() {
        return Ok((uv.clone(), None));
    }
    match (uv.get("value"), uv.get("unit")) {
        (Some(v), Some(u)) if v.is_number() && u.is_string() => Ok((v.clone(), Some(u.clone()))),
        _ => Err(refuse(
            "invalid_value",
            format!("body.{property} must be {{\"value\": number, \"unit\": string}}"),
        )),
    }
}

/// The sample input (the REST / WebSocket sample shape) of one data point, or why it cannot
/// become one. Validation of the result is the ingest path's (`samples::parse_sample`).
pub fn to_sample_input(point: &Value) -> Result<Value, Refusal> {
    let header = point
        .get("header")
        .filter(|h| h.is_object())
        .ok_or_else(|| {
            refuse(
                "invalid_data_point",
                "a data point is an object with `header` and `body` objects",
            )
        })?;
    let body = point.get("body").filter(|b| b.is_object()).ok_or_else(|| {
        refuse(
            "invalid_data_point",
            "a data point is an object with `header` and `body` objects",
        )
    })?;
    let id = header
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("invalid_data_point", "header.id (a string) is required"))?;
    let schema = header.get("schema_id");
    let namespace = schema
        .and_then(|s| s.get("namespace"))
        .and_then(Value::as_str);
    let name = schema.and_then(|s| s.get("name")).and_then(Value::as_str);
    let (Some("omh"), Some(name)) = (namespace, name) else {
        return Err(refuse(
            "unmapped_schema",
            format!(
                "header.schema_id must name an `omh` schema Clarity maps: {}",
                schema_names()
            ),
        ));
    };
    let kind = kind_of(name, body).ok_or_else(|| {
        refuse(
            "unmapped_schema",
            format!(
                "schema `omh:{}` has no Clarity kind; mapped schemas: {}",
                name.chars().take(64).collect::<String>(),
                schema_names()
            ),
        )
    })?;
    let o = table::mapping(kind)
        .omh
        .expect("kind_of only finds mapped kinds");
    let (start, end) = times(body.get("effective_time_frame"))?;
    let end = end.filter(|e| kind.needs_end() || *e != start);
    let mut s = Map::new();
    s.insert("id".into(), json!(sample_id(id)));
    s.insert("kind".into(), json!(kind.as_str()));
    s.insert("start".into(), json!(start));
    if let Some(e) = end {
        s.insert("end".into(), json!(e));
    }
    match kind {
        Kind::SleepStage => {
            let stage = body
                .get("sleep_stage")
                .and_then(Value::as_str)
                .unwrap_or(SleepStage::Asleep.as_str());
            s.insert("value".into(), json!(stage));
        }
        Kind::BloodPressure => {
            let (v, u) = read_unit_value(body, o.property)?;
            let (d, du) = read_unit_value(body, "diastolic_blood_pressure")?;
            if u != du {
                return Err(refuse(
                    "unit_mismatch",
                    "systolic and diastolic blood pressure must be in the same unit",
                ));
            }
            s.insert("value".into(), v);
            s.extend(u.map(|u| ("unit".to_owned(), u)));
            s.insert("diastolic".into(), d);
        }
        Kind::Workout => {
            let activity = body
                .get("activity_name")
                .and_then(Value::as_str)
                .ok_or_else(|| refuse("invalid_value", "body.activity_name is required"))?;
            let (v, u) = read_unit_value(body, o.property).map_err(|_| {
                refuse(
                    "invalid_value",
                    "physical-activity needs body.kcal_burned {\"value\", \"unit\"}: a Clarity \
                     workout's value is its active energy",
                )
            })?;
            s.insert("value".into(), v);
            s.extend(u.map(|u| ("unit".to_owned(), u)));
            s.insert("activity".into(), json!(activity));
        }
        _ => {
            let (v, u) = read_unit_value(body, o.property)?;
            s.insert("value".into(), v);
            s.extend(u.map(|u| ("unit".to_owned(), u)));
        }
    }
    if let Some(source) = header
        .pointer("/acquisition_provenance/source_name")
        .and_then(Value::as_str)
    {
        s.insert("source".into(), json!(source));
    }
    if let Some(c) = header.get("clarity") {
        if let Some(v) = c.get("version") {
            s.insert("version".into(), v.clone());
        }
        if let Some(p) = c.get("provenance") {
            s.insert("provenance".into(), p.clone());
        }
    }
    Ok(Value::Object(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::Timestamp;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn every_mapped_kind_comes_back_as_the_same_sample() {
        let now = chrono::Utc::now().timestamp_millis();
        let start = ts("2026-11-29T08:00:00.125+05:30");
        let end = ts("2026-11-29T08:30:00+05:30");
        for m in table::TABLE.iter().filter(|m| m.omh.is_some()) {
            let (lo, hi) = m.kind.range();
            let value = if m.kind == Kind::SleepStage {
                f64::from(SleepStage::Deep as u8)
            } else {
                ((lo + hi) / 2.0).round()
            };
            let mut s = Sample::new(
                format!("id-{}", m.kind.as_str()),
                m.kind,
                start,
                m.kind.needs_end().then_some(end),
                value,
                Some("Watch \"7\"".into()),
            );
            if m.kind == Kind::BloodPressure {
                s.value = 120.0;
                s.extra = Some(Box::new(crate::samples::Extra {
                    diastolic: Some(79.5),
                    ..Default::default()
                }));
            }
            if m.kind == Kind::Workout {
                s.extra = Some(Box::new(crate::samples::Extra {
                    activity: Some("running".into()),
                    ..Default::default()
                }));
            }
            let point = data_point(&s, "2026-12-01T00:00:00Z").unwrap();
            let input = to_sample_input(&point).unwrap();
            let raw = serde_json::value::to_raw_value(&input).unwrap();
            let back = crate::samples::parse_sample(&raw, now)
                .unwrap_or_else(|e| panic!("{:?}: {e:?} {input}", m.kind));
            assert_eq!(back, s, "{:?}", m.kind);
        }
    }

    #[test]
    fn refusals_name_the_rule() {
        let cases = [
            (json!([]), "invalid_data_point"),
            (
                json!({"header": {"id": "a"}, "body": {}}),
                "unmapped_schema",
            ),
            (
                json!({"header": {"id": "a", "schema_id": {"namespace": "omh", "name": "rr-interval", "version": "1.0"}}, "body": {}}),
                "unmapped_schema",
            ),
            (
                json!({"header": {"id": "a", "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"}}, "body": {"heart_rate": {"value": 60, "unit": "beats/min"}, "effective_time_frame": {"date": "2026-01-01", "part_of_day": "morning"}}}),
                "invalid_time",
            ),
            (
                json!({"header": {"id": "a", "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"}}, "body": {"heart_rate": "60", "effective_time_frame": {"date_time": "2026-01-01T00:00:00Z"}}}),
                "invalid_value",
            ),
        ];
        for (point, code) in cases {
            assert_eq!(to_sample_input(&point).unwrap_err().0, code, "{point}");
        }
    }

    #[test]
    fn long_header_ids_become_digests_and_durations_become_ends() {
        let long = "x".repeat(200);
        let id = sample_id(&long);
        assert!(id.starts_with("omh-") && id.len() == 36, "{id}");
        assert_eq!(sample_id(&long), id);
        let point = json!({"header": {"id": long, "schema_id": {"namespace": "omh", "name": "step-count", "version": "2.0"}},
            "body": {"step_count": 10, "effective_time_frame": {"time_interval": {"start_date_time": "2026-01-01T00:00:00+01:00", "duration": {"value": 15, "unit": "min"}}}}});
        let s = to_sample_input(&point).unwrap();
        assert_eq!(s["end"], "2026-01-01T00:15:00+01:00");
        assert_eq!(s["id"], id);
    }
}
