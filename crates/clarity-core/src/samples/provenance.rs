//! Where a sample came from, as structured as the client knows it: the device (name,
//! manufacturer, model, hardware and software version), the app that wrote it (bundle id or
//! package name) and how it was recorded (automatic, active, manual entry).
//!
//! Rules:
//! - Every field is optional; the flat `source` name of protocol v1 stays the key that source
//!   priority ranks by (it is the device name when the client sends only a device).
//! - Stored inside [`super::Extra`], so both stores keep it without a schema of their own.
//! - Strings are 1..=[`super::MAX_SOURCE_LEN`] bytes, no control characters; an unknown field
//!   in these objects is refused by name (a typo would otherwise lose the field silently).
//! - `source` is the flat string of protocol v1, or an object: `name` plus the provenance
//!   fields. Normalised on input: the source name is `name`, else the device's name, else the
//!   app; the rest is the provenance. Provenance given both there and in `provenance` is
//!   refused (which one would win is a guess). Empty objects are no provenance, so the output
//!   (flat `source` plus `provenance`) is the same sample when sent back.
//! - `version` is an integer within 0..=[`MAX_VERSION`] (2^53 - 1: exact in every JSON client).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::parse::{Invalid, MAX_SOURCE_LEN, truncated};

/// Largest accepted `version`: 2^53 - 1, the largest integer every JSON client holds exactly.
pub const MAX_VERSION: i64 = 9_007_199_254_740_991;

/// How a sample was recorded (HealthKit's `HKWasUserEntered`, Health Connect's
/// `Metadata.recordingMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingMethod {
    /// Passively measured by a sensor (a watch's background heart rate).
    Automatic,
    /// Measured during a session the user started (a workout, a spot check).
    Active,
    /// Typed in by the user.
    Manual,
}

impl RecordingMethod {
    pub const ALL: [RecordingMethod; 3] = [
        RecordingMethod::Automatic,
        RecordingMethod::Active,
        RecordingMethod::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordingMethod::Automatic => "automatic",
            RecordingMethod::Active => "active",
            RecordingMethod::Manual => "manual",
        }
    }
}

/// The device that measured a sample.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Device {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
}

/// Structured provenance beyond the flat source name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Provenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// The app that wrote the sample: an iOS bundle id or an Android package name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<RecordingMethod>,
}

impl Provenance {
    /// Whether the user typed this sample in (source priority puts such entries first).
    pub fn is_manual(&self) -> bool {
        self.method == Some(RecordingMethod::Manual)
    }

    fn is_empty(&self) -> bool {
        self.device.is_none() && self.app.is_none() && self.method.is_none()
    }
}

pub(super) const PROVENANCE_FIELDS: &str = "device, app, method";
pub(super) const SOURCE_FIELDS: &str = "name, device, app, method";
pub(super) const DEVICE_FIELDS: &str =
    "name, manufacturer, model, hardware_version, software_version";

fn rejected(message: String) -> Invalid {
    ("invalid_sample", message)
}

/// `version`: an integer within 0..=MAX_VERSION (`1.0` is an integer, as in JSON Schema).
pub(super) fn parse_version(v: &Value) -> Result<i64, Invalid> {
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e16)
                .map(|f| f as i64)
        }),
        _ => None,
    };
    match n {
        Some(n) if (0..=MAX_VERSION).contains(&n) => Ok(n),
        _ => {
            let got = match v {
                Value::Number(n) => n.to_string(),
                Value::String(_) => "a string".into(),
                _ => "not a number".into(),
            };
            Err(rejected(format!(
                "version must be an integer within 0..={MAX_VERSION}; got {}",
                truncated(&got)
            )))
        }
    }
}

/// A provenance string: 1..=MAX_SOURCE_LEN bytes, no control characters.
fn text(field: &str, v: &Value) -> Result<String, Invalid> {
    match v.as_str() {
        Some(s)
            if !s.is_empty() && s.len() <= MAX_SOURCE_LEN && !s.chars().any(char::is_control) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(rejected(format!(
            "{field} must be a string of 1-{MAX_SOURCE_LEN} bytes without control characters"
        ))),
    }
}

fn object<'a>(field: &str, fields: &str, v: &'a Value) -> Result<&'a Map<String, Value>, Invalid> {
    v.as_object().ok_or_else(|| {
        rejected(format!(
            "{field} must be an object with the fields {fields}"
        ))
    })
}

fn unknown(field: &str, key: &str, fields: &str) -> Invalid {
    rejected(format!(
        "unknown field `{}` in {field}; accepted fields: {fields}",
        truncated(key)
    ))
}

fn device(at: &str, v: &Value) -> Result<Option<Device>, Invalid> {
    let at = format!("{at}.device");
    let mut d = Device::default();
    for (key, v) in object(&at, DEVICE_FIELDS, v)? {
        let slot = match key.as_str() {
            "name" => &mut d.name,
            "manufacturer" => &mut d.manufacturer,
            "model" => &mut d.model,
            "hardware_version" => &mut d.hardware_version,
            "software_version" => &mut d.software_version,
            _ => return Err(unknown(&at, key, DEVICE_FIELDS)),
        };
        *slot = Some(text(&format!("{at}.{key}"), v)?);
    }
    Ok((d != Device::default()).then_some(d))
}

fn method(at: &str, v: &Value) -> Result<RecordingMethod, Invalid> {
    match v.as_str() {
        Some("automatic") => Ok(RecordingMethod::Automatic),
        Some("active") => Ok(RecordingMethod::Active),
        Some("manual") => Ok(RecordingMethod::Manual),
        other => Err(rejected(format!(
            "{at}.method must be one of automatic, active, manual; got {}",
            other.map_or_else(|| "not a string".into(), |s| format!("`{}`", truncated(s)))
        ))),
    }
}

/// One provenance field of the object `at` (`provenance` or `source`) into `p`; false for a
/// key that is not a provenance field.
fn provenance_field(p: &mut Provenance, at: &str, key: &str, v: &Value) -> Result<bool, Invalid> {
    match key {
        "device" => p.device = device(at, v)?,
        "app" => p.app = Some(text(&format!("{at}.app"), v)?),
        "method" => p.method = Some(method(at, v)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `source` (string or object) and `provenance` as sent: the flat source name and the
/// structured provenance, normalised as the module's rules say.
pub(super) fn parse_source(
    source: Option<&Value>,
    provenance: Option<&Value>,
) -> Result<(Option<String>, Option<Provenance>), Invalid> {
    let mut p = Provenance::default();
    if let Some(v) = provenance {
        for (key, v) in object("provenance", PROVENANCE_FIELDS, v)? {
            if !provenance_field(&mut p, "provenance", key, v)? {
                return Err(unknown("provenance", key, PROVENANCE_FIELDS));
            }
        }
    }
    let name = match source {
        None => None,
        Some(Value::String(s)) if s.len() <= MAX_SOURCE_LEN => Some(s.clone()),
        Some(Value::String(_)) => {
            return Err(rejected(format!(
                "source must be at most {MAX_SOURCE_LEN} bytes"
            )));
        }
        Some(Value::Object(fields)) => {
            let mut from_source = Provenance::default();
            let mut name = None;
            for (key, v) in fields {
                if key == "name" {
                    name = Some(text("source.name", v)?);
                } else if !provenance_field(&mut from_source, "source", key, v)? {
                    return Err(unknown("source", key, SOURCE_FIELDS));
                }
            }
            if !from_source.is_empty() {
                if !p.is_empty() {
                    return Err(rejected(
                        "provenance given twice, in `source` and in `provenance`: send it in one of them".into(),
                    ));
                }
                p = from_source;
            }
            name.or_else(|| p.device.as_ref().and_then(|d| d.name.clone()))
                .or_else(|| p.app.clone())
        }
        Some(_) => {
            return Err(rejected(format!(
                "source must be a string (at most {MAX_SOURCE_LEN} bytes) or an object with the fields {SOURCE_FIELDS}"
            )));
        }
    };
    Ok((name, (!p.is_empty()).then_some(p)))
}
