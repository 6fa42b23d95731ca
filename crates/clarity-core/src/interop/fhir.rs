//! FHIR R4 Observations of samples and analyses, and the framing of a Bundle (type
//! `collection`) or of Bulk-Data NDJSON around them.
//!
//! Rules:
//! - One Observation per sample: the kind's code and category from [`super::table`], the value
//!   in the kind's UCUM unit (the stored canonical value, never rescaled), the sample's own
//!   times with their original UTC offsets (`effectiveDateTime` for a reading,
//!   `effectivePeriod` for an interval), the subject `Patient/<user id>`.
//! - Resource ids are derived from (user, sample id) (a UUID v8 of their SHA-256), so the same
//!   sample always exports as the same resource; the sample id itself is the Observation's
//!   `identifier` (system [`super::table::CLARITY_SAMPLE_IDS`]), since FHIR ids cannot hold
//!   every Clarity id.
//! - Where the sample says where it came from (`source`, `provenance.device`), the device is a
//!   contained Device referenced from `Observation.device`.
//! - An analysis is one Observation (Clarity code `circadian-analysis`) whose components are its
//!   headline numbers; numbers the analysis could not compute (null) are left out.
//! - FHIR JSON has no empty arrays and no nulls: optional parts are omitted, never empty.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::table::{self, CLARITY_CODES, Code, OBSERVATION_CATEGORY, UCUM};
use crate::samples::{Kind, Sample, SleepStage, provenance::Device};

/// The FHIR id of `user`'s sample (or analysis) `id`: stable across exports.
pub fn resource_id(user: Uuid, id: &str) -> Uuid {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes)
}

fn coding(c: &Code) -> Value {
    json!({"system": c.system, "code": c.code, "display": c.display})
}

fn quantity(value: f64, unit: table::Ucum) -> Value {
    json!({"value": number(value), "unit": unit.unit, "system": UCUM, "code": unit.code})
}

/// A JSON number: whole values as integers.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn category(c: table::Category) -> Value {
    json!([{"coding": [{"system": OBSERVATION_CATEGORY, "code": c.code(), "display": c.display()}]}])
}

/// The contained Device of a sample, if it names one.
fn device(sample: &Sample) -> Option<Value> {
    let dev: Option<&Device> = sample
        .extra
        .as_ref()
        .and_then(|e| e.provenance.as_ref())
        .and_then(|p| p.device.as_ref());
    let name = dev
        .and_then(|d| d.name.as_deref())
        .or(sample.source.as_deref());
    if name.is_none() && dev.is_none() {
        return None;
    }
    let mut d = Map::new();
    d.insert("resourceType".into(), json!("Device"));
    d.insert("id".into(), json!("device"));
    if let Some(m) = dev.and_then(|d| d.manufacturer.as_deref()) {
        d.insert("manufacturer".into(), json!(m));
    }
    if let Some(m) = dev.and_then(|d| d.model.as_deref()) {
        d.insert("modelNumber".into(), json!(m));
    }
    if let Some(n) = name {
        d.insert(
            "deviceName".into(),
            json!([{"name": n, "type": "user-friendly-name"}]),
        );
    }
    let mut versions = Vec::new();
    for (text, v) in [
        ("software", dev.and_then(|d| d.software_version.as_deref())),
        ("hardware", dev.and_then(|d| d.hardware_version.as_deref())),
    ] {
        if let Some(v) = v {
            versions.push(json!({"type": {"text": text}, "value": v}));
        }
    }
    if !versions.is_empty() {
        d.insert("version".into(), Value::Array(versions));
    }
    if d.len() == 2 {
        return None;
    }
    Some(Value::Object(d))
}

/// The FHIR Observation of one of `user`'s samples.
pub fn observation(user: Uuid, sample: &Sample) -> Value {
    let m = table::mapping(sample.kind);
    let mut codings = vec![coding(&m.fhir.code)];
    codings.extend(m.fhir.also.iter().map(coding));
    let mut o = Map::new();
    o.insert("resourceType".into(), json!("Observation"));
    o.insert(
        "id".into(),
        json!(resource_id(user, &sample.id).to_string()),
    );
    let dev = device(sample);
    if let Some(d) = &dev {
        o.insert("contained".into(), json!([d]));
    }
    o.insert(
        "identifier".into(),
        json!([{"system": table::CLARITY_SAMPLE_IDS, "value": sample.id}]),
    );
    o.insert("status".into(), json!("final"));
    o.insert("category".into(), category(m.fhir.category));
    o.insert(
        "code".into(),
        json!({"coding": codings, "text": sample.kind.as_str()}),
    );
    o.insert(
        "subject".into(),
        json!({"reference": format!("Patient/{user}")}),
    );
    match sample.end {
        Some(end) => o.insert(
            "effectivePeriod".into(),
            json!({"start": sample.start.to_rfc3339(), "end": end.to_rfc3339()}),
        ),
        None => o.insert("effectiveDateTime".into(), json!(sample.start.to_rfc3339())),
    };
    match (sample.kind, m.fhir.unit) {
        (Kind::BloodPressure, Some(unit)) => {
            let mut components = vec![json!({
                "code": {"coding": [coding(&table::SYSTOLIC)]},
                "valueQuantity": quantity(sample.value, unit),
            })];
            if let Some(d) = sample.diastolic() {
                components.push(json!({
                    "code": {"coding": [coding(&table::DIASTOLIC)]},
                    "valueQuantity": quantity(d, unit),
                }));
            }
            o.insert("component".into(), Value::Array(components));
        }
        (Kind::SleepStage, _) => {
            let stage = SleepStage::from_code(sample.value).unwrap_or(SleepStage::Asleep);
            o.insert(
                "valueCodeableConcept".into(),
                json!({"coding": [{"system": table::CLARITY_SLEEP_STAGES, "code": stage.as_str()}], "text": stage.as_str()}),
            );
        }
        (_, Some(unit)) => {
            o.insert("valueQuantity".into(), quantity(sample.value, unit));
            if let Some(a) = sample.activity() {
                o.insert(
                    "component".into(),
                    json!([{"code": {"coding": [coding(&table::WORKOUT_ACTIVITY)]}, "valueString": a}]),
                );
            }
        }
        (_, None) => {}
    }
    if dev.is_some() {
        o.insert("device".into(), json!({"reference": "#device"}));
    }
    Value::Object(o)
}

/// An analysis' headline numbers: (JSON pointer in the analysis, Clarity code, display, UCUM).
const ANALYSIS_COMPONENTS: [(&str, &str, &str, &str); 8] = [
    (
        "/minutes_present",
        "minutes-present",
        "Minutes with activity data",
        "min",
    ),
    (
        "/nonparametric/is",
        "interdaily-stability",
        "Interdaily stability (IS)",
        "1",
    ),
    (
        "/nonparametric/iv",
        "intradaily-variability",
        "Intradaily variability (IV)",
        "1",
    ),
    (
        "/nonparametric/ra",
        "relative-amplitude",
        "Relative amplitude (RA)",
        "1",
    ),
    (
        "/cosinor/mesor",
        "cosinor-mesor",
        "Cosinor MESOR (counts/minute)",
        "/min",
    ),
    (
        "/cosinor/amplitude",
        "cosinor-amplitude",
        "Cosinor amplitude (counts/minute)",
        "/min",
    ),
    (
        "/cosinor/acrophase_hours",
        "cosinor-acrophase",
        "Cosinor acrophase (hours after local midnight)",
        "h",
    ),
    (
        "/heart_rate/mean_bpm",
        "mean-heart-rate",
        "Mean heart rate over the window",
        "/min",
    ),
];

/// The FHIR Observation of one of `user`'s stored analyses (its JSON document), or `None`
/// when the document lacks an id or window (never the case for documents this server wrote).
pub fn analysis_observation(user: Uuid, analysis: &Value) -> Option<Value> {
    let id = analysis.get("analysis_id")?.as_str()?;
    let from = analysis.pointer("/window/from")?.as_str()?;
    let to = analysis.pointer("/window/to")?.as_str()?;
    let components: Vec<Value> = ANALYSIS_COMPONENTS
        .iter()
        .filter_map(|(pointer, code, display, unit)| {
            let v = analysis.pointer(pointer)?.as_f64()?;
            Some(json!({
                "code": {"coding": [{"system": CLARITY_CODES, "code": code, "display": display}]},
                "valueQuantity": {"value": number(v), "unit": unit, "system": UCUM, "code": unit},
            }))
        })
        .collect();
    let mut o = json!({
        "resourceType": "Observation",
        "id": resource_id(user, &format!("analysis:{id}")).to_string(),
        "identifier": [{"system": table::CLARITY_ANALYSIS_IDS, "value": id}],
        "status": "final",
        "category": category(table::Category::Activity),
        "code": {
            "coding": [{"system": CLARITY_CODES, "code": "circadian-analysis", "display": "Clarity rest-activity analysis of a window of up to 7 days"}],
            "text": "analysis",
        },
        "subject": {"reference": format!("Patient/{user}")},
        "effectivePeriod": {"start": from, "end": to},
    });
    if let Some(issued) = analysis.get("created_at").and_then(Value::as_str) {
        o["issued"] = json!(issued);
    }
    if components.is_empty() {
        o["dataAbsentReason"] = json!({"text": "no number could be computed for this window"});
    } else {
        o["component"] = Value::Array(components);
    }
    Some(o)
}

/// Writes a Bundle of type `collection` piece by piece: [`BundleWriter::head`], one
/// [`BundleWriter::entry`] per resource, then [`BundleWriter::tail`]. The `entry` array is
/// opened with the first entry (FHIR JSON has no empty arrays).
pub struct BundleWriter {
    entries: usize,
}

impl BundleWriter {
    pub fn new() -> BundleWriter {
        BundleWriter { entries: 0 }
    }

    pub fn head(&self, bundle_id: Uuid, timestamp: &str) -> String {
        format!(
            "{{\"resourceType\":\"Bundle\",\"id\":\"{bundle_id}\",\"type\":\"collection\",\"timestamp\":\"{timestamp}\""
        )
    }

    /// One entry (`fullUrl` `urn:uuid:<resource id>`), with the separator it needs.
    pub fn entry(&mut self, resource: &Value) -> String {
        let sep = if self.entries == 0 {
            ",\"entry\":["
        } else {
            ","
        };
        self.entries += 1;
        let full_url = resource
            .get("id")
            .and_then(Value::as_str)
            .map(|id| format!("urn:uuid:{id}"))
            .unwrap_or_default();
        format!(
            "{sep}{}",
            json!({"fullUrl": full_url, "resource": resource})
        )
    }

    pub fn tail(&self) -> &'static str {
        if self.entries == 0 { "}" } else { "]}" }
    }
}

impl Default for BundleWriter {
    fn default() -> Self {
        BundleWriter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{Extra, Timestamp, provenance::Provenance};

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn blood_pressure_is_a_panel_with_its_offset_and_device() {
        let user = Uuid::nil();
        let mut s = Sample::new(
            "bp-1",
            Kind::BloodPressure,
            ts("2026-11-29T08:00:00.250+01:00"),
            None,
            120.0,
            Some("Omron".into()),
        );
        s.extra = Some(Box::new(Extra {
            diastolic: Some(80.5),
            activity: None,
            provenance: Some(Provenance {
                device: Some(Device {
                    manufacturer: Some("Omron".into()),
                    model: Some("HEM-7600T".into()),
                    software_version: Some("1.2".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }));
        let o = observation(user, &s);
        assert_eq!(o["code"]["coding"][0]["code"], "85354-9");
        assert_eq!(o["effectiveDateTime"], "2026-11-29T08:00:00.250+01:00");
        assert_eq!(o["component"][0]["code"]["coding"][0]["code"], "8480-6");
        assert_eq!(o["component"][1]["valueQuantity"]["value"], 80.5);
        assert_eq!(o["component"][1]["valueQuantity"]["code"], "mm[Hg]");
        assert_eq!(o["contained"][0]["modelNumber"], "HEM-7600T");
        assert_eq!(o["contained"][0]["deviceName"][0]["name"], "Omron");
        assert_eq!(o["device"]["reference"], "#device");
        assert_eq!(o["subject"]["reference"], format!("Patient/{user}"));
        assert!(o.get("valueQuantity").is_none());
        assert_eq!(o["id"], resource_id(user, "bp-1").to_string());
    }

    #[test]
    fn a_bundle_without_entries_has_no_entry_array() {
        let w = BundleWriter::new();
        let text = format!(
            "{}{}",
            w.head(Uuid::nil(), "2026-01-01T00:00:00Z"),
            w.tail()
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v.get("entry").is_none());
        let mut w = BundleWriter::new();
        let mut text = w.head(Uuid::nil(), "2026-01-01T00:00:00Z");
        text.push_str(&w.entry(&json!({"id": "a"})));
        text.push_str(&w.entry(&json!({"id": "b"})));
        text.push_str(w.tail());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["entry"][1]["fullUrl"], "urn:uuid:b");
    }
}
