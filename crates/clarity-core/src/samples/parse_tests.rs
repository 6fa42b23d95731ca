//! Tests of [`super`]: rejection codes and messages, unit conversion on input, the extra
//! fields of blood_pressure and workout, and platform stage names.

use super::*;
use proptest::prelude::*;

const NOW: i64 = 1_790_000_000_000;

fn parse(json: &str) -> Result<Sample, Invalid> {
    let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
    parse_sample(&raw, NOW)
}

#[test]
fn keeps_offset_and_round_trips() {
    let s = parse(
        r#"{"id":"a","kind":"heart_rate","start":"2026-01-02T03:04:05.250+05:30","value":61}"#,
    )
    .unwrap();
    assert_eq!(s.start.offset_secs, 19800);
    assert_eq!(s.start.to_rfc3339(), "2026-01-02T03:04:05.250+05:30");
    assert_eq!(s.to_wire().unit, Some("count/min"));
}

#[test]
fn rejection_codes() {
    let cases = [
        (
            r#"{"kind":"heart_rate","start":"2026-01-01T00:00:00Z","value":60}"#,
            "invalid_sample",
        ),
        (
            r#"{"id":"","kind":"heart_rate","start":"2026-01-01T00:00:00Z","value":60}"#,
            "invalid_id",
        ),
        (
            r#"{"id":"a","kind":"weather","start":"2026-01-01T00:00:00Z","value":60}"#,
            "unknown_kind",
        ),
        (
            r#"{"id":"a","kind":"heart_rate","start":"2026-01-01 00:00","value":60}"#,
            "invalid_time",
        ),
        (
            r#"{"id":"a","kind":"heart_rate","start":"2026-01-01T00:00:00","value":60}"#,
            "invalid_time",
        ),
        (
            r#"{"id":"a","kind":"heart_rate","start":"2026-01-01T00:01:00Z","end":"2026-01-01T00:00:00Z","value":60}"#,
            "invalid_time",
        ),
        (
            r#"{"id":"a","kind":"heart_rate","start":"1999-01-01T00:00:00Z","value":60}"#,
            "time_out_of_range",
        ),
        (
            r#"{"id":"a","kind":"heart_rate","start":"2099-01-01T00:00:00Z","value":60}"#,
            "time_out_of_range",
        ),
        (
            r#"{"id":"a","kind":"activity_count","start":"2026-01-01T00:00:00Z","end":"9999-12-31T00:00:00Z","value":6}"#,
            "time_out_of_range",
        ),
        (
            r#"{"id":"a","kind":"activity_count","start":"2026-01-01T00:00:00Z","end":"2026-01-01T01:00:01Z","value":6}"#,
            "time_out_of_range",
        ),
        (
            r#"{"id":"a","kind":"step_count","start":"2026-01-01T00:00:00Z","end":"2026-01-02T00:00:01Z","value":6}"#,
            "time_out_of_range",
        ),
        (
            r#"{"id":"a","kind":"heart_rate","start":"2026-01-01T00:00:00Z","value":900}"#,
            "out_of_range",
        ),
        (
            r#"{"id":"a","kind":"heart_rate","start":"2026-01-01T00:00:00Z","value":"60"}"#,
            "invalid_value",
        ),
        (
            r#"{"id":"a","kind":"heart_rate","start":"2026-01-01T00:00:00Z","value":60,"unit":"ms"}"#,
            "unit_mismatch",
        ),
        (
            r#"{"id":"a","kind":"sleep_stage","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:30:00Z","value":"nap"}"#,
            "invalid_value",
        ),
        (
            r#"{"id":"a","kind":"sleep_stage","start":"2026-01-01T00:00:00Z","value":"rem"}"#,
            "invalid_time",
        ),
        (
            r#"{"id":"a","kind":"heart_rate","start":1764400000,"value":60}"#,
            "invalid_time",
        ),
        (r#"[1,2]"#, "invalid_sample"),
        (
            r#"{"id":7,"kind":"heart_rate","start":"2026-01-01T00:00:00Z","value":60}"#,
            "invalid_sample",
        ),
    ];
    for (json, code) in cases {
        assert_eq!(parse(json).unwrap_err().0, code, "{json}");
    }
}

#[test]
fn each_kind_spans_up_to_its_maximum() {
    for kind in Kind::ALL {
        let value = if kind == Kind::SleepStage {
            "\"light\"".to_owned()
        } else {
            let extra = match kind {
                Kind::BloodPressure => r#","diastolic":30"#,
                Kind::Workout => r#","activity":"running""#,
                _ => "",
            };
            format!("{}{extra}", kind.range().0)
        };
        let start = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let at = |ms: i64| {
            Timestamp {
                utc_ms: start.utc_ms + ms,
                offset_secs: 0,
            }
            .to_rfc3339()
        };
        let json = |ms: i64| {
            format!(
                r#"{{"id":"a","kind":"{}","start":"2026-01-01T00:00:00Z","end":"{}","value":{value}}}"#,
                kind.as_str(),
                at(ms)
            )
        };
        let max = kind.max_duration_ms();
        assert!(parse(&json(max)).is_ok(), "{kind:?}");
        let err = parse(&json(max + 1)).unwrap_err();
        assert_eq!(err.0, "time_out_of_range", "{kind:?}");
        assert!(err.1.contains(kind.as_str()), "{}", err.1);
    }
}

#[test]
fn end_may_not_lie_more_than_a_day_ahead() {
    let now = Timestamp {
        utc_ms: NOW,
        offset_secs: 0,
    };
    let end = Timestamp {
        utc_ms: NOW + MAX_FUTURE_MS + 1,
        ..now
    };
    let json = format!(
        r#"{{"id":"a","kind":"step_count","start":"{}","end":"{}","value":1}}"#,
        Timestamp {
            utc_ms: NOW + MAX_FUTURE_MS - 60_000,
            ..now
        }
        .to_rfc3339(),
        end.to_rfc3339()
    );
    let err = parse(&json).unwrap_err();
    assert_eq!(
        err,
        (
            "time_out_of_range",
            "end must be at most 24 h in the future".into()
        )
    );
}

#[test]
fn messages_name_the_rule() {
    let msg = |json: &str| parse(json).unwrap_err().1;
    let m = msg(r#"{"id":"a","kind":"weather","start":"2026-01-01T00:00:00Z","value":1}"#);
    assert!(
        m.contains("activity_count") && m.contains("sleep_stage"),
        "{m}"
    );
    let m = msg(r#"{"id":"a","kind":"heart_rate","start":1764400000,"value":60}"#);
    assert!(
        m.contains("e.g. 2026-11-29T08:00:00+01:00") && m.contains("number"),
        "{m}"
    );
    let m = msg(r#"{"id":"a","kind":"heart_rate","start":"2026-01-01T00:00:00","value":60}"#);
    assert!(
        m.contains("e.g. 2026-11-29T08:00:00+01:00") && m.contains("offset is missing"),
        "{m}"
    );
    let long = "k".repeat(10_000);
    let m = msg(&format!(
        r#"{{"id":"a","kind":"{long}","start":"2026-01-01T00:00:00Z","value":1}}"#
    ));
    assert!(
        m.len() < 400,
        "client text is not echoed at length: {} bytes",
        m.len()
    );
}

#[test]
fn sleep_stage_round_trip() {
    let s = parse(r#"{"id":"a","kind":"sleep_stage","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:30:00Z","value":"in_bed"}"#).unwrap();
    assert_eq!(s.to_wire().value, serde_json::json!("in_bed"));
    assert_eq!(s.to_wire().unit, None);
}

proptest! {
    // The parser must never panic, whatever the bytes.
    #[test]
    fn never_panics(json in "\\PC{0,200}") {
        if let Ok(raw) = serde_json::from_str::<Box<RawValue>>(&json) {
            let _ = parse_sample(&raw, NOW);
        }
    }

    #[test]
    fn any_offset_round_trips(ms in MIN_START_MS..NOW, off_min in -(14*60)..=(14*60i32)) {
        let t = Timestamp { utc_ms: ms, offset_secs: off_min * 60 };
        let back = Timestamp::parse(&t.to_rfc3339()).unwrap();
        prop_assert_eq!(back, t);
    }

    #[test]
    fn numeric_range_is_enforced(v in -1e6f64..1e6) {
        let json = format!(r#"{{"id":"x","kind":"heart_rate","start":"2026-01-01T00:00:00Z","value":{v}}}"#);
        let res = parse(&json);
        prop_assert_eq!(res.is_ok(), (20.0..=300.0).contains(&v));
    }
}

fn ok(json: &str) -> Sample {
    parse(json).unwrap_or_else(|e| panic!("{json}: {e:?}"))
}

fn err(json: &str) -> Invalid {
    parse(json).expect_err(json)
}

/// One sample of `kind` with the given fields after `kind` and `start`.
fn with(kind: &str, rest: &str) -> String {
    format!(
        r#"{{"id":"a","kind":"{kind}","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:30:00Z",{rest}}}"#
    )
}

#[test]
fn units_convert_to_the_canonical_one() {
    for (kind, rest, value) in [
        ("body_temperature", r#""value":98.6,"unit":"degF""#, 37.0),
        ("body_temperature", r#""value":37.2,"unit":"°C""#, 37.2),
        ("oxygen_saturation", r#""value":0.97"#, 97.0),
        ("oxygen_saturation", r#""value":0.95,"unit":"1""#, 95.0),
        ("oxygen_saturation", r#""value":1,"unit":"fraction""#, 100.0),
        ("oxygen_saturation", r#""value":96"#, 96.0),
        ("oxygen_saturation", r#""value":1"#, 100.0),
        ("blood_glucose", r#""value":5.5,"unit":"mmol/L""#, 99.0858),
        ("blood_glucose", r#""value":99,"unit":"mg/dL""#, 99.0),
        ("active_energy", r#""value":418.4,"unit":"kJ""#, 100.0),
        ("distance", r#""value":1.5,"unit":"km""#, 1500.0),
        ("distance", r#""value":1,"unit":"mi""#, 1609.344),
        ("distance", r#""value":10,"unit":"ft""#, 3.048),
        ("body_mass", r#""value":154,"unit":"lb""#, 69.853225),
        ("body_mass", r#""value":70000,"unit":"g""#, 70.0),
        (
            "heart_rate_variability",
            r#""value":0.042,"unit":"s""#,
            42.0,
        ),
        ("mindful_session", r#""value":600,"unit":"s""#, 10.0),
        ("heart_rate", r#""value":61,"unit":"count/min""#, 61.0),
        ("resting_heart_rate", r#""value":52,"unit":"bpm""#, 52.0),
        ("mood", r#""value":-0.4"#, -0.4),
        ("phq9", r#""value":12"#, 12.0),
        ("gad7", r#""value":3,"unit":"score""#, 3.0),
    ] {
        let s = ok(&with(kind, rest));
        assert_eq!(s.value, value, "{kind} {rest}");
    }
}

#[test]
fn blood_pressure_carries_a_converted_checked_diastolic() {
    let s = ok(&with(
        "blood_pressure",
        r#""value":16,"diastolic":10.5,"unit":"kPa""#,
    ));
    assert_eq!((s.value, s.diastolic()), (120.009852, Some(78.756465)));
    let w = s.to_wire();
    assert_eq!(w.diastolic, Some(serde_json::json!(78.756465)));
    assert_eq!(w.unit, Some("mmHg"));

    let e = err(&with("blood_pressure", r#""value":120"#));
    assert_eq!(e.0, "invalid_sample");
    assert!(e.1.contains("diastolic"), "{}", e.1);
    let e = err(&with("blood_pressure", r#""value":80,"diastolic":120"#));
    assert_eq!(e.0, "invalid_value");
    assert!(e.1.contains("below the systolic"), "{}", e.1);
    let e = err(&with("blood_pressure", r#""value":120,"diastolic":5"#));
    assert_eq!(
        e,
        (
            "out_of_range",
            "blood_pressure diastolic must be within 20..=200 mmHg; got 5".into()
        )
    );
    let e = err(&with("heart_rate", r#""value":60,"diastolic":50"#));
    assert_eq!(e.0, "invalid_sample");
}

#[test]
fn workout_carries_a_normalised_activity() {
    let s = ok(&with(
        "workout",
        r#""value":250,"activity":"HKWorkoutActivityTypeTraditionalStrengthTraining""#,
    ));
    assert_eq!(s.activity(), Some("traditional_strength_training"));
    assert_eq!(s.to_wire().activity, Some("traditional_strength_training"));
    let s = ok(&with(
        "workout",
        r#""value":1000,"unit":"kJ","activity":"EXERCISE_TYPE_RUNNING""#,
    ));
    assert_eq!((s.value, s.activity()), (239.005736, Some("running")));
    assert_eq!(err(&with("workout", r#""value":250"#)).0, "invalid_sample");
    assert_eq!(
        err(&with("workout", r#""value":250,"activity":"<script>""#)).0,
        "invalid_value"
    );
    assert_eq!(
        err(&with("step_count", r#""value":250,"activity":"running""#)).0,
        "invalid_sample"
    );
    let e = err(
        r#"{"id":"a","kind":"workout","start":"2026-01-01T00:00:00Z","value":1,"activity":"run"}"#,
    );
    assert_eq!(e, ("invalid_time", "workout requires end".into()));
}

#[test]
fn unknown_units_name_the_accepted_ones() {
    let e = err(&with(
        "body_temperature",
        r#""value":98.6,"unit":"fahrenheit""#,
    ));
    assert_eq!(
        e,
        (
            "unit_mismatch",
            "unknown unit `fahrenheit` for body_temperature; accepted units: `degC`, `°C`, `Cel`, `C`, `degF`, `°F`, `[degF]`, `F`, `K`".into()
        )
    );
    let e = err(&with("blood_glucose", r#""value":5,"unit":"mmol""#));
    assert!(
        e.1.contains("`mg/dL`") && e.1.contains("`mmol/L`"),
        "{}",
        e.1
    );
    let e = err(&with("sleep_stage", r#""value":"rem","unit":"min""#));
    assert_eq!(e.0, "unit_mismatch");
    // An empty unit is still tolerated on sleep_stage, as before.
    ok(&with("sleep_stage", r#""value":"rem","unit":"""#));
}

#[test]
fn out_of_range_names_range_unit_and_conversion() {
    let e = err(&with("body_temperature", r#""value":120,"unit":"degF""#));
    assert_eq!(
        e,
        (
            "out_of_range",
            "body_temperature must be within 25..=45 degC; got 120 degF, which is 48.888889 degC"
                .into()
        )
    );
    let e = err(&with("heart_rate", r#""value":900"#));
    assert_eq!(e.1, "heart_rate must be within 20..=300 count/min; got 900");
    // HealthKit's percent unit holds 0-1: 0.4 with `%` is read as 40 %, and named so.
    let e = err(&with("oxygen_saturation", r#""value":0.4,"unit":"%""#));
    assert_eq!(
        e.1,
        "oxygen_saturation must be within 50..=100 %; got 0.4 as a fraction, which is 40 %"
    );
    let e = err(&with("mood", r#""value":3"#));
    assert_eq!(e.1, "mood must be within -1..=1; got 3");
    assert_eq!(err(&with("phq9", r#""value":28"#)).0, "out_of_range");
    assert_eq!(err(&with("gad7", r#""value":2.5"#)).0, "invalid_value");
    let e = err(&with("mindful_session", r#""value":45"#));
    assert_eq!(e.0, "invalid_value");
    assert!(e.1.contains("30 min"), "{}", e.1);
}

#[test]
fn platform_stage_names_are_stored_as_clarity_stages() {
    for (name, stage) in [
        ("asleepCore", "light"),
        ("HKCategoryValueSleepAnalysisAsleepDeep", "deep"),
        ("STAGE_TYPE_REM", "rem"),
        ("STAGE_TYPE_SLEEPING", "asleep"),
        ("inBed", "in_bed"),
    ] {
        let s = ok(&with("sleep_stage", &format!(r#""value":"{name}""#)));
        assert_eq!(s.to_wire().value, serde_json::json!(stage), "{name}");
    }
}

proptest! {
    // Whatever a temperature in °F, it is stored in °C or refused naming both.
    #[test]
    fn fahrenheit_is_stored_as_celsius(f in 0.0f64..200.0) {
        let res = parse(&with("body_temperature", &format!(r#""value":{f},"unit":"degF""#)));
        let c = (f - 32.0) * 5.0 / 9.0;
        match res {
            Ok(s) => {
                prop_assert!((s.value - c).abs() < 1e-6);
                prop_assert!((25.0..=45.0).contains(&s.value));
            }
            Err((code, msg)) => {
                prop_assert_eq!(code, "out_of_range");
                prop_assert!(msg.contains("degF") && msg.contains("degC"), "{}", msg);
                prop_assert!(!(25.0 + 1e-6..=45.0 - 1e-6).contains(&c));
            }
        }
    }

    // SpO2 as a fraction and as a percentage store the same reading.
    #[test]
    fn spo2_fraction_equals_percent(p in 50u32..=100) {
        let pct = ok(&with("oxygen_saturation", &format!(r#""value":{p}"#)));
        let frac = ok(&with("oxygen_saturation", &format!(r#""value":{}"#, f64::from(p) / 100.0)));
        prop_assert_eq!(pct.value, frac.value);
        // HealthKit's way: the fraction with unit `%`.
        let hk = ok(&with(
            "oxygen_saturation",
            &format!(r#""value":{},"unit":"%""#, f64::from(p) / 100.0),
        ));
        prop_assert_eq!(pct.value, hk.value);
    }
}

/// A heart_rate sample with the given fields after `value`.
fn hr(rest: &str) -> String {
    format!(r#"{{"id":"p","kind":"heart_rate","start":"2026-01-01T00:00:00Z","value":60{rest}}}"#)
}

#[test]
fn version_is_an_integer_within_0_to_2_pow_53() {
    assert_eq!(ok(&hr(r#","version":0"#)).version, Some(0));
    assert_eq!(
        ok(&hr(r#","version":9007199254740991"#)).version,
        Some(9_007_199_254_740_991)
    );
    // JSON Schema's integer: a number with no fraction.
    assert_eq!(ok(&hr(r#","version":5.0"#)).version, Some(5));
    assert_eq!(ok(&hr("")).version, None);
    for bad in ["-1", "9007199254740992", "1.5", r#""3""#, "true", "1e300"] {
        let (code, m) = err(&hr(&format!(r#","version":{bad}"#)));
        assert_eq!(code, "invalid_sample", "{bad}");
        assert!(
            m.starts_with("version must be an integer within 0..=9007199254740991; got "),
            "{bad}: {m}"
        );
    }
}

#[test]
fn provenance_is_stored_in_extra_and_returned() {
    let s = ok(&hr(
        r#","source":"Apple Watch","provenance":{"device":{"name":"Apple Watch","manufacturer":"Apple Inc.","model":"Watch7,1","hardware_version":"Watch7,1","software_version":"10.1"},"app":"com.apple.health","method":"automatic"}"#,
    ));
    let p = s.provenance().unwrap();
    assert_eq!(
        p.device.as_ref().unwrap().model.as_deref(),
        Some("Watch7,1")
    );
    assert_eq!(p.app.as_deref(), Some("com.apple.health"));
    assert_eq!(p.method, Some(provenance::RecordingMethod::Automatic));
    assert!(!s.is_manual());
    let wire = serde_json::to_value(s.to_wire()).unwrap();
    assert_eq!(wire["source"], "Apple Watch");
    assert_eq!(wire["provenance"]["device"]["manufacturer"], "Apple Inc.");
    assert_eq!(wire["provenance"]["method"], "automatic");
    // Blood pressure keeps its diastolic next to the provenance.
    let bp = ok(&with(
        "blood_pressure",
        r#""value":120,"diastolic":80,"provenance":{"method":"manual"}"#,
    ));
    assert_eq!(bp.diastolic(), Some(80.0));
    assert!(bp.is_manual());
}

#[test]
fn output_is_the_same_sample_as_input() {
    for json in [
        hr(
            r#","version":7,"source":{"name":"Pixel Watch","device":{"model":"GWT9R"},"app":"com.google.android.apps.fitness","method":"active"}"#,
        ),
        hr(r#","source":{"device":{"name":"Oura","manufacturer":"Oura"}}"#),
        hr(r#","source":{"app":"com.example.log","method":"manual"}"#),
        hr(r#","source":"v1 name","provenance":{}"#),
        with(
            "workout",
            r#""value":200,"activity":"running","version":3,"provenance":{"method":"active"}"#,
        ),
    ] {
        let s = ok(&json);
        let out = serde_json::to_string(&s.to_wire()).unwrap();
        assert_eq!(ok(&out), s, "{json} -> {out}");
    }
}

#[test]
fn a_source_object_is_normalised() {
    let s = ok(&hr(
        r#","source":{"name":"My Watch","device":{"name":"Watch"},"app":"a.b"}"#,
    ));
    assert_eq!(s.source.as_deref(), Some("My Watch"));
    let d = s.provenance().unwrap().device.as_ref().unwrap();
    assert_eq!(d.name.as_deref(), Some("Watch"));
    let s = ok(&hr(r#","source":{"device":{"name":"Watch"},"app":"a.b"}"#));
    assert_eq!(s.source.as_deref(), Some("Watch"));
    let s = ok(&hr(r#","source":{"app":"a.b","method":"manual"}"#));
    assert_eq!(s.source.as_deref(), Some("a.b"));
    assert!(s.is_manual());
    // A name alone is the v1 string.
    let s = ok(&hr(r#","source":{"name":"n"}"#));
    assert_eq!((s.source.as_deref(), s.extra), (Some("n"), None));
    // Empty objects are no provenance.
    let s = ok(&hr(r#","provenance":{"device":{}}"#));
    assert_eq!(s.extra, None);
    // The v1 string keeps its v1 rule (at most 256 bytes, nothing else).
    assert_eq!(ok(&hr(r#","source":"""#)).source.as_deref(), Some(""));
}

#[test]
fn provenance_rejections_name_the_rule() {
    let cases: [(&str, &str); 14] = [
        (
            r#","provenance":{"devise":{}}"#,
            "unknown field `devise` in provenance; accepted fields: device, app, method",
        ),
        (
            r#","provenance":{"device":{"serial":"1"}}"#,
            "unknown field `serial` in provenance.device; accepted fields: name, manufacturer, model, hardware_version, software_version",
        ),
        (
            r#","source":{"name":"a","id":"b"}"#,
            "unknown field `id` in source; accepted fields: name, device, app, method",
        ),
        (
            r#","source":{"device":{"colour":"red"}}"#,
            "unknown field `colour` in source.device; accepted fields: name, manufacturer, model, hardware_version, software_version",
        ),
        (
            r#","provenance":{"app":""}"#,
            "provenance.app must be a string of 1-256 bytes without control characters",
        ),
        (
            r#","provenance":{"app":"a\u0007b"}"#,
            "provenance.app must be a string of 1-256 bytes without control characters",
        ),
        (
            r#","provenance":{"device":{"model":5}}"#,
            "provenance.device.model must be a string of 1-256 bytes without control characters",
        ),
        (
            r#","source":{"name":""}"#,
            "source.name must be a string of 1-256 bytes without control characters",
        ),
        (
            r#","provenance":{"method":"typed"}"#,
            "provenance.method must be one of automatic, active, manual; got `typed`",
        ),
        (
            r#","source":{"method":1}"#,
            "source.method must be one of automatic, active, manual; got not a string",
        ),
        (
            r#","provenance":"watch""#,
            "provenance must be an object with the fields device, app, method",
        ),
        (
            r#","provenance":{"device":"watch"}"#,
            "provenance.device must be an object with the fields name, manufacturer, model, hardware_version, software_version",
        ),
        (
            r#","source":7"#,
            "source must be a string (at most 256 bytes) or an object with the fields name, device, app, method",
        ),
        (
            r#","source":{"app":"a"},"provenance":{"method":"manual"}"#,
            "provenance given twice, in `source` and in `provenance`: send it in one of them",
        ),
    ];
    for (rest, message) in cases {
        assert_eq!(
            err(&hr(rest)),
            ("invalid_sample", message.to_owned()),
            "{rest}"
        );
    }
    let long = "m".repeat(257);
    let (_, m) = err(&hr(&format!(
        r#","provenance":{{"device":{{"model":"{long}"}}}}"#
    )));
    assert!(m.contains("1-256 bytes"), "{m}");
    let (_, m) = err(&hr(&format!(r#","provenance":{{"{long}":1}}"#)));
    assert!(m.len() < 200, "client text is not echoed at length: {m}");
    let (_, m) = err(&hr(&format!(r#","source":"{}""#, "s".repeat(257))));
    assert_eq!(m, "source must be at most 256 bytes");
}
