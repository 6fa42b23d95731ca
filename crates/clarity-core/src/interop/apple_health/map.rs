//! One export element -> at most one Clarity sample, through the same validation as samples
//! sent live ([`crate::samples::parse_sample`]), with the kind table of
//! [`crate::samples::mapping`].
//!
//! Rules:
//! - Ids are derived, never random, so re-importing the same (or a later) export stores
//!   nothing twice: `ah1-` + the first 16 bytes, in hex, of SHA-256 over the element's type
//!   (`Workout:` + workoutActivityType for a workout), sourceName, startDate, endDate and value
//!   (`systolic/diastolic` for blood pressure, totalEnergyBurned for a workout), exactly as
//!   the export writes them (attribute values decoded), each followed by a 0x1F byte.
//!   Another app can compute the same id from the same HealthKit sample.
//! - `creationDate` becomes the sample's `version` (milliseconds since the epoch), so a later
//!   export whose sample was re-created replaces it, and the same export never does.
//! - `sourceName` is the sample's `source`; the `device` string
//!   (`<<HKDevice: 0x...>, name:..., manufacturer:..., model:..., hardware:..., software:...>`)
//!   becomes `provenance.device`; `HKWasUserEntered` makes the recording method `manual`.
//! - A type without a Clarity kind is `Unmapped` (counted by type by the caller), never
//!   mapped to a near one.

use chrono::DateTime;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::reader::Element;
use crate::samples::provenance::{Device, Provenance, RecordingMethod};
use crate::samples::{Extra, Kind, Sample, mapping, parse_sample};

/// What one element became.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    Sample(Box<Sample>),
    /// Not stored: the rejection code (as for live samples, plus `invalid_date`,
    /// `unknown_sleep_value` and `incomplete_correlation`).
    Rejected(&'static str),
    /// A type Clarity has no kind for (or an element that holds no sample).
    Unmapped,
}

const SYSTOLIC: &str = "HKQuantityTypeIdentifierBloodPressureSystolic";
const DIASTOLIC: &str = "HKQuantityTypeIdentifierBloodPressureDiastolic";
const ACTIVE_ENERGY: &str = "HKQuantityTypeIdentifierActiveEnergyBurned";

/// The type an element is counted under in the report: a Record's or Correlation's `type`,
/// else the element's name (`Workout`, `ActivitySummary`, ...).
pub fn type_of(el: &Element) -> &str {
    match el.name.as_str() {
        "Record" | "Correlation" => el.get("type").unwrap_or(&el.name),
        other => other,
    }
}

/// Health's date format, `2024-03-10 08:00:00 -0500`, as RFC 3339 with the same offset.
pub fn rfc3339(date: &str) -> Option<String> {
    let t = DateTime::parse_from_str(date, "%Y-%m-%d %H:%M:%S %z").ok()?;
    Some(t.to_rfc3339())
}

/// The derived id (see the module's rules).
pub fn derived_id(ty: &str, source: &str, start: &str, end: &str, value: &str) -> String {
    let mut h = Sha256::new();
    for part in [ty, source, start, end, value] {
        h.update(part.as_bytes());
        h.update([0x1F]);
    }
    let d = h.finalize();
    let mut id = String::with_capacity(36);
    id.push_str("ah1-");
    for b in &d[..16] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Health's device description: `<<HKDevice: 0x283f0c8c0>, name:Apple Watch, manufacturer:
/// Apple Inc., model:Watch, hardware:Watch6,2, software:10.1>`. Values may hold commas
/// (`Watch6,2`), so fields are cut at the next known `, key:`.
pub fn parse_device(s: &str) -> Option<Device> {
    const KEYS: [&str; 8] = [
        "name",
        "manufacturer",
        "model",
        "hardware",
        "software",
        "localIdentifier",
        "UDIDeviceIdentifier",
        "creation date",
    ];
    let body = s.strip_prefix('<').unwrap_or(s);
    let body = body.strip_suffix('>').unwrap_or(body);
    let mut marks: Vec<(usize, &str)> = KEYS
        .iter()
        .flat_map(|k| {
            let pat = format!(", {k}:");
            body.match_indices(&pat)
                .map(move |(i, _)| (i, *k))
                .collect::<Vec<_>>()
        })
        .collect();
    marks.sort();
    let mut device = Device::default();
    for (n, &(at, key)) in marks.iter().enumerate() {
        let from = at + key.len() + 3;
        let to = marks.get(n + 1).map_or(body.len(), |m| m.0);
        let value = body.get(from..to).map(str::trim).filter(|v| !v.is_empty());
        let value = value.map(|v| cut(v, crate::samples::MAX_SOURCE_LEN).to_owned());
        match key {
            "name" => device.name = value,
            "manufacturer" => device.manufacturer = value,
            "model" => device.model = value,
            "hardware" => device.hardware_version = value,
            "software" => device.software_version = value,
            _ => {}
        }
    }
    (device != Device::default()).then_some(device)
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Maps one top-level element (`now_ms`: the server clock, for the future-time rule).
pub fn map(el: &Element, now_ms: i64) -> Mapped {
    let ty = type_of(el);
    let source = el.get("sourceName").unwrap_or("");
    let (Some(start_raw), Some(end_raw)) = (el.get("startDate"), el.get("endDate")) else {
        return match el.name.as_str() {
            "Record" | "Correlation" | "Workout" => Mapped::Rejected("invalid_date"),
            _ => Mapped::Unmapped,
        };
    };
    let (Some(start), Some(end)) = (rfc3339(start_raw), rfc3339(end_raw)) else {
        return Mapped::Rejected("invalid_date");
    };
    let mut input = json!({ "kind": "", "start": start, "source": cut(source, crate::samples::MAX_SOURCE_LEN) });
    if end != start {
        input["end"] = json!(end);
    }
    let id_value: String;
    let id_type: String;
    match el.name.as_str() {
        "Workout" => {
            let activity = el.get("workoutActivityType").unwrap_or("");
            let (value, unit) = match (el.get("totalEnergyBurned"), el.get("totalEnergyBurnedUnit"))
            {
                (Some(v), u) => (v, u.unwrap_or("kcal")),
                (None, _) => el
                    .children
                    .iter()
                    .find(|c| c.name == "WorkoutStatistics" && c.get("type") == Some(ACTIVE_ENERGY))
                    .and_then(|c| Some((c.get("sum")?, c.get("unit").unwrap_or("kcal"))))
                    .unwrap_or(("0", "kcal")),
            };
            let Ok(v) = value.parse::<f64>() else {
                return Mapped::Rejected("invalid_value");
            };
            input["kind"] = json!(Kind::Workout.as_str());
            input["value"] = json!(v);
            input["unit"] = json!(unit);
            input["activity"] = json!(activity);
            input["end"] = json!(end);
            id_type = format!("Workout:{activity}");
            id_value = value.to_owned();
        }
        "Correlation" if ty == "HKCorrelationTypeIdentifierBloodPressure" => {
            let part = |t: &str| el.children.iter().find(|c| c.get("type") == Some(t));
            let (Some(s), Some(d)) = (part(SYSTOLIC), part(DIASTOLIC)) else {
                return Mapped::Rejected("incomplete_correlation");
            };
            let (Some(sv), Some(dv)) = (s.get("value"), d.get("value")) else {
                return Mapped::Rejected("incomplete_correlation");
            };
            let (Ok(sn), Ok(dn)) = (sv.parse::<f64>(), dv.parse::<f64>()) else {
                return Mapped::Rejected("invalid_value");
            };
            input["kind"] = json!(Kind::BloodPressure.as_str());
            input["value"] = json!(sn);
            input["diastolic"] = json!(dn);
            input["unit"] = json!(s.get("unit").unwrap_or("mmHg"));
            id_type = ty.to_owned();
            id_value = format!("{sv}/{dv}");
        }
        "Record" => {
            let Some(m) = mapping::kind_for(ty) else {
                return Mapped::Unmapped;
            };
            let raw_value = el.get("value").unwrap_or("");
            input["kind"] = json!(m.kind.as_str());
            match m.kind {
                Kind::SleepStage => {
                    let Some(stage) = mapping::sleep_stage(raw_value) else {
                        return Mapped::Rejected("unknown_sleep_value");
                    };
                    input["value"] = json!(stage.as_str());
                    input["end"] = json!(end);
                }
                Kind::MindfulSession => {
                    let (Some(s), Some(e)) = (rfc3339_ms(start_raw), rfc3339_ms(end_raw)) else {
                        return Mapped::Rejected("invalid_date");
                    };
                    input["value"] = json!((e - s) as f64 / 60_000.0);
                    input["unit"] = json!("min");
                    input["end"] = json!(end);
                }
                _ => {
                    let Ok(v) = raw_value.parse::<f64>() else {
                        return Mapped::Rejected("invalid_value");
                    };
                    input["value"] = json!(v);
                    if let Some(u) = el.get("unit").or(m.unit) {
                        input["unit"] = json!(u);
                    }
                }
            }
            id_type = ty.to_owned();
            id_value = raw_value.to_owned();
        }
        _ => return Mapped::Unmapped,
    }
    input["id"] = json!(derived_id(&id_type, source, start_raw, end_raw, &id_value));
    let raw = match serde_json::value::to_raw_value(&input) {
        Ok(r) => r,
        Err(_) => return Mapped::Rejected("invalid_value"),
    };
    let mut sample = match parse_sample(&raw, now_ms) {
        Ok(s) => s,
        Err((code, _)) => return Mapped::Rejected(code),
    };
    sample.version = el
        .get("creationDate")
        .and_then(rfc3339_ms)
        .filter(|v| *v >= 0);
    let provenance = Provenance {
        device: el.get("device").and_then(parse_device),
        app: None,
        method: el.user_entered.then_some(RecordingMethod::Manual),
    };
    if provenance != Provenance::default() {
        let extra = sample
            .extra
            .get_or_insert_with(|| Box::new(Extra::default()));
        extra.provenance = Some(provenance);
    }
    Mapped::Sample(Box::new(sample))
}

fn rfc3339_ms(date: &str) -> Option<i64> {
    DateTime::parse_from_str(date, "%Y-%m-%d %H:%M:%S %z")
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::SleepStage;

    fn el(name: &str, attrs: &[(&str, &str)]) -> Element {
        Element {
            name: name.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..Element::default()
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    fn record(ty: &str, unit: Option<&str>, value: &str) -> Element {
        let mut e = el(
            "Record",
            &[
                ("type", ty),
                ("sourceName", "Anna’s Apple Watch"),
                (
                    "device",
                    "<<HKDevice: 0x283f0c8c0>, name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,2, software:10.1>",
                ),
                ("creationDate", "2024-03-10 08:01:00 -0500"),
                ("startDate", "2024-03-10 08:00:00 -0500"),
                ("endDate", "2024-03-10 08:00:00 -0500"),
                ("value", value),
            ],
        );
        if let Some(u) = unit {
            e.attrs.push(("unit".into(), u.into()));
        }
        e
    }

    fn sample(m: Mapped) -> Sample {
        match m {
            Mapped::Sample(s) => *s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn device_strings_split_at_known_keys() {
        let d = parse_device("<<HKDevice: 0x283f0c8c0>, name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,2, software:10.1, creation date:2023-11-02 09:12:44 +0000>").unwrap();
        assert_eq!(d.name.as_deref(), Some("Apple Watch"));
        assert_eq!(d.manufacturer.as_deref(), Some("Apple Inc."));
        assert_eq!(d.model.as_deref(), Some("Watch"));
        assert_eq!(d.hardware_version.as_deref(), Some("Watch6,2"));
        assert_eq!(d.software_version.as_deref(), Some("10.1"));
        assert_eq!(parse_device("garbage"), None);
    }

    #[test]
    fn records_become_samples_with_provenance_and_version() {
        let s = sample(map(
            &record(
                "HKQuantityTypeIdentifierOxygenSaturation",
                Some("%"),
                "0.97",
            ),
            NOW,
        ));
        assert_eq!(s.kind, Kind::OxygenSaturation);
        assert_eq!(s.value, 97.0);
        assert_eq!(s.source.as_deref(), Some("Anna’s Apple Watch"));
        assert_eq!(s.start.offset_secs, -5 * 3600);
        assert_eq!(s.end, None);
        assert_eq!(s.version, Some(1_710_075_660_000));
        let p = s.extra.unwrap().provenance.unwrap();
        assert_eq!(
            p.device.unwrap().hardware_version.as_deref(),
            Some("Watch6,2")
        );
        assert!(s.id.starts_with("ah1-") && s.id.len() == 36);
        let t = sample(map(
            &record(
                "HKQuantityTypeIdentifierBodyTemperature",
                Some("degF"),
                "98.6",
            ),
            NOW,
        ));
        assert!((t.value - 37.0).abs() < 1e-9);
        // Same reading, same id; another value, another id.
        let a = sample(map(
            &record("HKQuantityTypeIdentifierHeartRate", Some("count/min"), "61"),
            NOW,
        ));
        let b = sample(map(
            &record("HKQuantityTypeIdentifierHeartRate", Some("count/min"), "61"),
            NOW,
        ));
        let c = sample(map(
            &record("HKQuantityTypeIdentifierHeartRate", Some("count/min"), "62"),
            NOW,
        ));
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn sleep_correlations_workouts_and_rejections() {
        let mut sleep = record(
            "HKCategoryTypeIdentifierSleepAnalysis",
            None,
            "HKCategoryValueSleepAnalysisAsleepDeep",
        );
        sleep.attrs.retain(|(k, _)| k != "endDate");
        sleep
            .attrs
            .push(("endDate".into(), "2024-03-10 08:30:00 -0500".into()));
        let s = sample(map(&sleep, NOW));
        assert_eq!(
            (s.kind, s.value),
            (Kind::SleepStage, f64::from(SleepStage::Deep as u8))
        );

        let mut bp = el(
            "Correlation",
            &[
                ("type", "HKCorrelationTypeIdentifierBloodPressure"),
                ("sourceName", "OMRON connect"),
                ("startDate", "2024-03-10 07:15:00 +0100"),
                ("endDate", "2024-03-10 07:15:00 +0100"),
            ],
        );
        bp.children = vec![
            el(
                "Record",
                &[("type", SYSTOLIC), ("unit", "mmHg"), ("value", "121")],
            ),
            el(
                "Record",
                &[("type", DIASTOLIC), ("unit", "mmHg"), ("value", "79")],
            ),
        ];
        let s = sample(map(&bp, NOW));
        assert_eq!((s.value, s.diastolic()), (121.0, Some(79.0)));
        bp.children.pop();
        assert_eq!(map(&bp, NOW), Mapped::Rejected("incomplete_correlation"));

        let w = el(
            "Workout",
            &[
                ("workoutActivityType", "HKWorkoutActivityTypeRunning"),
                ("totalEnergyBurned", "300.5"),
                ("totalEnergyBurnedUnit", "Cal"),
                ("sourceName", "Watch"),
                ("startDate", "2024-03-10 18:00:00 +0100"),
                ("endDate", "2024-03-10 18:40:00 +0100"),
            ],
        );
        let s = sample(map(&w, NOW));
        assert_eq!(
            (s.kind, s.value, s.activity()),
            (Kind::Workout, 300.5, Some("running"))
        );

        assert_eq!(
            map(
                &record(
                    "HKQuantityTypeIdentifierHeartRate",
                    Some("count/min"),
                    "400"
                ),
                NOW
            ),
            Mapped::Rejected("out_of_range")
        );
        assert_eq!(
            map(
                &record(
                    "HKQuantityTypeIdentifierBasalEnergyBurned",
                    Some("Cal"),
                    "1"
                ),
                NOW
            ),
            Mapped::Unmapped
        );
        let mut bad = record("HKQuantityTypeIdentifierHeartRate", None, "60");
        bad.attrs.retain(|(k, _)| k != "startDate");
        bad.attrs.push(("startDate".into(), "10/03/2024".into()));
        assert_eq!(map(&bad, NOW), Mapped::Rejected("invalid_date"));
    }
}
