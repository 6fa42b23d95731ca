//! Tests of [`super`]: a series is the samples it stands for, ids are derived as documented,
//! gaps are skipped, and the shape rules name what is wrong.

use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::*;
use crate::samples::parse_batch;

const NOW: i64 = 1_790_000_000_000;

fn series(v: Value) -> Series {
    let start = Timestamp::parse(v["start"].as_str().unwrap()).unwrap();
    let strings = |k: &str| {
        v.get(k).map(|a| {
            a.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
    };
    Series {
        kind: v["kind"].as_str().unwrap().into(),
        unit: v.get("unit").and_then(Value::as_str).map(str::to_owned),
        source: v.get("source").cloned(),
        start,
        interval_ms: v["interval_ms"].as_i64().unwrap(),
        intervals: v.get("intervals").and_then(Value::as_bool).unwrap_or(false),
        values: v["values"].as_array().unwrap().clone(),
        ids: strings("ids"),
        versions: v.get("versions").map(|a| a.as_array().unwrap().clone()),
    }
}

fn batch(samples: &[Value]) -> (Vec<(usize, Sample)>, Vec<Rejection>) {
    let raw: Vec<Box<RawValue>> = samples
        .iter()
        .map(|s| RawValue::from_string(s.to_string()).unwrap())
        .collect();
    let refs: Vec<&RawValue> = raw.iter().map(AsRef::as_ref).collect();
    parse_batch(&refs, NOW)
}

#[test]
fn a_series_is_the_samples_it_stands_for() {
    let s = series(json!({
        "kind": "heart_rate", "unit": "bpm", "source": "watch",
        "start": "2026-01-01T10:00:00+01:00", "interval_ms": 60000,
        "values": [61, 400, 63.5], "versions": [1, null, 2]
    }));
    let id = |ms: i64| derived_id("heart_rate", ms, Some("watch"));
    let t0 = 1_767_258_000_000;
    let same = batch(&[
        json!({"id": id(t0), "kind": "heart_rate", "unit": "bpm", "source": "watch",
               "start": "2026-01-01T10:00:00+01:00", "value": 61, "version": 1}),
        json!({"id": id(t0 + 60_000), "kind": "heart_rate", "unit": "bpm", "source": "watch",
               "start": "2026-01-01T10:01:00+01:00", "value": 400}),
        json!({"id": id(t0 + 120_000), "kind": "heart_rate", "unit": "bpm", "source": "watch",
               "start": "2026-01-01T10:02:00+01:00", "value": 63.5, "version": 2}),
    ]);
    assert_eq!(parse_series(&s, NOW), same);
    assert_eq!(
        same.1.len(),
        1,
        "the out-of-range value is rejected at its index"
    );
    assert_eq!((same.1[0].index, same.1[0].code), (1, "out_of_range"));
    assert_eq!(
        same.0[0].1.start.offset_secs, 3600,
        "start's offset is kept"
    );
}

#[test]
fn intervals_give_each_value_its_span_and_sleep_stages_work() {
    let s = series(json!({
        "kind": "sleep_stage", "start": "2026-01-01T00:00:00Z", "interval_ms": 30000,
        "intervals": true, "values": ["light", "deep", null, "rem"], "ids": ["a", null, "c", "d"]
    }));
    let (valid, rejected) = parse_series(&s, NOW);
    assert!(rejected.is_empty(), "{rejected:?}");
    let got: Vec<(usize, &str, i64, i64)> = valid
        .iter()
        .map(|(i, s)| (*i, s.id.as_str(), s.start.utc_ms, s.end.unwrap().utc_ms))
        .collect();
    let t0 = 1_767_225_600_000;
    let derived = derived_id("sleep_stage", t0 + 30_000, None);
    assert_eq!(
        got,
        vec![
            (0, "a", t0, t0 + 30_000),
            (1, derived.as_str(), t0 + 30_000, t0 + 60_000),
            (3, "d", t0 + 90_000, t0 + 120_000),
        ],
        "the gap at index 2 is skipped, its id ignored, and the time advances past it"
    );
    assert_eq!(s.samples(), 3);
    // Without `intervals` a sleep stage has no end, and the rule says so per value.
    let s = series(json!({
        "kind": "sleep_stage", "start": "2026-01-01T00:00:00Z", "interval_ms": 30000,
        "values": ["light"]
    }));
    let (_, rejected) = parse_series(&s, NOW);
    assert_eq!(rejected[0].message, "sleep_stage requires end");
}

#[test]
fn derived_ids_follow_the_documented_rule() {
    assert_eq!(
        derived_id("heart_rate", 1_767_225_600_000, None),
        "s:heart_rate:1767225600000:e3b0c44298fc1c14"
    );
    assert_eq!(
        derived_id("heart_rate", 1, Some("")),
        derived_id("heart_rate", 1, None)
    );
    assert_ne!(
        derived_id("heart_rate", 1, Some("watch")),
        derived_id("heart_rate", 1, Some("ring"))
    );
    assert_ne!(
        derived_id("heart_rate", 1, Some("watch")),
        derived_id("step_count", 1, Some("watch"))
    );
    assert!(derived_id(&"x".repeat(500), 1, None).starts_with("s:unknown:1:"));
    // A source object derives from its stored name.
    let s = series(json!({
        "kind": "step_count", "start": "2026-01-01T00:00:00Z", "interval_ms": 60000,
        "source": {"device": {"name": "Pixel Watch"}, "method": "automatic"},
        "values": [10]
    }));
    let (valid, _) = parse_series(&s, NOW);
    assert_eq!(valid[0].1.source.as_deref(), Some("Pixel Watch"));
    assert_eq!(
        valid[0].1.id,
        derived_id("step_count", 1_767_225_600_000, Some("Pixel Watch"))
    );
}

#[test]
fn a_bad_source_or_kind_rejects_every_value_like_the_samples_would() {
    let s = series(json!({
        "kind": "heart_rate", "start": "2026-01-01T00:00:00Z", "interval_ms": 1000,
        "source": {"colour": "red"}, "values": [60, 61]
    }));
    let (valid, rejected) = parse_series(&s, NOW);
    assert!(valid.is_empty());
    assert_eq!(rejected.len(), 2);
    let s = series(json!({
        "kind": "weather", "start": "2026-01-01T00:00:00Z", "interval_ms": 1000, "values": [1]
    }));
    assert_eq!(parse_series(&s, NOW).1[0].code, "unknown_kind");
}

#[test]
fn the_shape_rules_name_what_is_wrong() {
    let base = json!({"kind": "heart_rate", "start": "2026-01-01T00:00:00Z",
                      "interval_ms": 1000, "values": [60, 61]});
    assert_eq!(series(base.clone()).check(), Ok(()));
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        series(b).check().unwrap_err()
    };
    assert_eq!(
        with("ids", json!(["a"])),
        "`ids` must have one entry per value: 1 ids for 2 values"
    );
    assert_eq!(
        with("versions", json!([1, 2, 3])),
        "`versions` must have one entry per value: 3 versions for 2 values"
    );
    assert!(
        with("interval_ms", json!(0))
            .starts_with("`interval_ms` must be an integer within 1..=86400000")
    );
    assert!(with("interval_ms", json!(MAX_INTERVAL_MS + 1)).starts_with("`interval_ms`"));
    assert_eq!(
        with("values", json!([])),
        "`values` must hold at least one value"
    );
}

/// protocol/schemas/client/series.json accepts the frames the parser reads and refuses the
/// shapes it refuses (those a schema can express), and lists the same kinds.
#[test]
fn the_series_schema_matches_the_code() {
    let schema: Value = serde_json::from_str(include_str!(
        "../../../../protocol/schemas/client/series.json"
    ))
    .unwrap();
    let v = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let ok = json!({"type": "series", "seq": 1, "kind": "heart_rate", "unit": "bpm",
        "source": {"name": "w", "device": {"model": "x"}}, "start": "2026-01-01T00:00:00+01:00",
        "interval_ms": 1000, "intervals": false, "values": [60, null, 61.5],
        "ids": ["a", null, "c"], "versions": [1, null, 2]});
    assert!(v.is_valid(&ok));
    for (k, bad) in [
        ("interval_ms", json!(0)),
        ("values", json!([])),
        ("kind", json!("weather")),
        ("start", json!("2026-01-01T00:00:00")),
        ("ids", json!([""])),
    ] {
        let mut f = ok.clone();
        f[k] = bad;
        assert!(!v.is_valid(&f), "{k}: {f}");
    }
    let kinds: Vec<&str> = schema["$defs"]["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(kinds, Kind::ALL.map(Kind::as_str));
    assert_eq!(
        schema["properties"]["interval_ms"]["maximum"],
        json!(MAX_INTERVAL_MS)
    );
}
