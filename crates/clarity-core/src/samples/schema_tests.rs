//! protocol/schemas/client/samples.json says what the code accepts: the kinds, each kind's
//! units, the range of `value` (and `diastolic`) in every unit, the required extra fields and
//! the sleep stage names. A change on one side without the other fails here.

use serde_json::Value;

use super::units::{self, Unit};
use super::{DIASTOLIC_RANGE, Kind, mapping};

fn schema() -> Value {
    serde_json::from_str(include_str!(
        "../../../../protocol/schemas/client/samples.json"
    ))
    .expect("the client schema is JSON")
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|a| (a - b).abs() <= 1e-6 * b.abs().max(1.0))
}

/// The `then` of the per-kind block of `kind`.
fn block(schema: &Value, kind: Kind) -> Value {
    schema["$defs"]["sample"]["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["if"]["properties"]["kind"]["const"] == kind.as_str())
        .unwrap_or_else(|| panic!("no block for {}", kind.as_str()))["then"]
        .clone()
}

/// The range block of `unit` (or of no unit) inside a kind's block.
fn range_block<'a>(then: &'a Value, unit: Option<&Unit>) -> &'a Value {
    then["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            let sel = &b["if"]["properties"]["unit"];
            match unit {
                None => b["if"]["not"]["required"][0] == "unit",
                Some(u) => {
                    sel["const"] == u.name
                        || sel["enum"]
                            .as_array()
                            .is_some_and(|e| e.contains(&Value::from(u.name)))
                }
            }
        })
        .unwrap_or_else(|| panic!("no range block for {:?}", unit.map(|u| u.name)))
}

fn check_range(what: &str, got: &Value, unit: &Unit, (lo, hi): (f64, f64)) {
    let (a, b) = (unit.from_canonical(lo), unit.from_canonical(hi));
    let (lo, hi) = (a.min(b), a.max(b));
    assert!(
        close(&got["minimum"], lo) && close(&got["maximum"], hi),
        "{what} in {}: schema {got}, code {lo}..={hi}",
        unit.name
    );
}

#[test]
fn the_client_schema_matches_the_code() {
    let schema = schema();
    let kinds: Vec<Value> = Kind::ALL.map(|k| Value::from(k.as_str())).to_vec();
    assert_eq!(schema["$defs"]["kind"]["enum"], Value::Array(kinds));
    for kind in Kind::ALL {
        let then = block(&schema, kind);
        let required: Vec<&str> = then["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(required.contains(&"end"), kind.needs_end(), "{kind:?}");
        assert_eq!(
            required.contains(&"diastolic"),
            kind == Kind::BloodPressure,
            "{kind:?}"
        );
        assert_eq!(
            required.contains(&"activity"),
            kind == Kind::Workout,
            "{kind:?}"
        );
        if kind == Kind::SleepStage {
            let values = then["properties"]["value"]["enum"].as_array().unwrap();
            for v in values {
                assert!(
                    mapping::sleep_stage(v.as_str().unwrap()).is_some(),
                    "the schema accepts stage {v}, the server does not"
                );
            }
            for m in mapping::STAGES {
                assert!(values.contains(&Value::from(m.name)), "{}", m.name);
            }
            continue;
        }
        let names: Vec<Value> = units::units(kind)
            .iter()
            .map(|u| Value::from(u.name))
            .collect();
        assert_eq!(then["properties"]["unit"]["enum"], Value::Array(names));
        let ty = if kind.is_whole() { "integer" } else { "number" };
        assert_eq!(then["properties"]["value"]["type"], ty, "{kind:?}");
        for unit in units::units(kind) {
            let r = &range_block(&then, Some(unit))["then"]["properties"];
            if kind == Kind::OxygenSaturation && unit.name == "%" {
                // `%` takes HealthKit's fractions as well (see units.rs).
                let fraction = &units::units(kind)[1];
                check_range("fraction", &r["value"]["anyOf"][0], fraction, kind.range());
                check_range("percent", &r["value"]["anyOf"][1], unit, kind.range());
                continue;
            }
            check_range(kind.as_str(), &r["value"], unit, kind.range());
            if kind == Kind::BloodPressure {
                check_range("diastolic", &r["diastolic"], unit, DIASTOLIC_RANGE);
            }
        }
        let r = &range_block(&then, None)["then"]["properties"]["value"];
        if kind == Kind::OxygenSaturation {
            let fraction = &units::units(kind)[1];
            check_range("fraction", &r["anyOf"][0], fraction, kind.range());
            check_range(
                "percent",
                &r["anyOf"][1],
                &units::units(kind)[0],
                kind.range(),
            );
        } else {
            check_range(kind.as_str(), r, &units::units(kind)[0], kind.range());
        }
    }
}

/// The names of an object schema's properties, sorted.
fn fields(object: &Value) -> Vec<&str> {
    object["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// The fields a message lists (`a, b, c`), sorted.
fn listed(message_list: &str) -> Vec<&str> {
    let mut names: Vec<&str> = message_list.split(", ").collect();
    names.sort_unstable();
    names
}

#[test]
fn the_schema_has_the_codes_provenance_and_version() {
    use super::provenance::{
        DEVICE_FIELDS, MAX_VERSION, PROVENANCE_FIELDS, RecordingMethod, SOURCE_FIELDS,
    };
    let schema = schema();
    let defs = &schema["$defs"];
    assert_eq!(fields(&defs["provenance"]), listed(PROVENANCE_FIELDS));
    assert_eq!(fields(&defs["device"]), listed(DEVICE_FIELDS));
    let source = &defs["sample"]["properties"]["source"]["oneOf"];
    assert_eq!(fields(&source[1]), listed(SOURCE_FIELDS));
    let methods: Vec<Value> = RecordingMethod::ALL
        .map(|m| Value::from(m.as_str()))
        .to_vec();
    assert_eq!(
        defs["provenance"]["properties"]["method"]["enum"],
        Value::Array(methods)
    );
    let version = &defs["sample"]["properties"]["version"];
    assert_eq!(version["maximum"], MAX_VERSION);
    assert_eq!(version["minimum"], 0);
}

/// Samples with provenance, a structured source and a version: the schema accepts exactly
/// those the parser stores.
#[test]
fn the_schema_and_the_parser_agree_on_provenance() {
    let validator = jsonschema::options()
        .build(&schema())
        .expect("the client schema compiles");
    let cases = [
        r#""version":0"#,
        r#""version":9007199254740991"#,
        r#""version":9007199254740992"#,
        r#""version":-1"#,
        r#""version":1.5"#,
        r#""version":"1""#,
        r#""source":"Apple Watch""#,
        r#""source":{"name":"Apple Watch"}"#,
        r#""source":{"device":{"name":"W","model":"Watch7,1"},"app":"com.apple.health","method":"manual"}"#,
        r#""source":{"name":""}"#,
        r#""source":{"name":"a","serial":"1"}"#,
        r#""source":7"#,
        r#""provenance":{}"#,
        r#""provenance":{"device":{"name":"a","manufacturer":"b","model":"c","hardware_version":"d","software_version":"e"},"app":"f","method":"active"}"#,
        r#""provenance":{"method":"typed"}"#,
        r#""provenance":{"app":""}"#,
        r#""provenance":{"app":"a\u0001"}"#,
        r#""provenance":{"device":{"serial":"1"}}"#,
        r#""provenance":{"devices":{}}"#,
        r#""provenance":"watch""#,
        r#""provenance":{"device":{"model":3}}"#,
    ];
    let now = chrono::Utc::now().timestamp_millis();
    for rest in cases {
        let sample = format!(
            r#"{{"id":"a","kind":"heart_rate","start":"2026-01-01T00:00:00Z","value":60,{rest}}}"#
        );
        let frame: Value = serde_json::from_str(&format!(
            r#"{{"type":"samples","seq":1,"samples":[{sample}]}}"#
        ))
        .unwrap();
        let raw: Box<serde_json::value::RawValue> = serde_json::from_str(&sample).unwrap();
        let parsed = super::parse_sample(&raw, now);
        assert_eq!(
            validator.is_valid(&frame),
            parsed.is_ok(),
            "{rest}: the parser says {parsed:?}"
        );
    }
}
