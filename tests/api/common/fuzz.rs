//! Generators shared by the fuzz tests (WebSocket frames, REST bodies), and how long they run.
//!
//! Short form (CI): a few hundred inputs per test. Long form: `CLARITY_FUZZ_CASES=100000
//! cargo test --release --test api fuzz -- --nocapture` (each test prints how many inputs it
//! tried). The generator is deterministic per run (proptest's deterministic runner), so a
//! failure reproduces with the same case count.

use proptest::prelude::*;
use serde_json::Value;

/// Inputs per fuzz test: `CLARITY_FUZZ_CASES`, else `default`.
pub fn cases(default: usize) -> usize {
    std::env::var("CLARITY_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// JSON that looks like ours: sample-ish keys and values mixed with anything.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        // Values that look right for samples, shares, streams and accounts.
        prop_oneof![
            Just("heart_rate"),
            Just("sleep_stage"),
            Just("step_count"),
            Just("blood_pressure"),
            Just("workout"),
            Just("oxygen_saturation"),
            Just("rem"),
            Just("asleepCore"),
            Just("degF"),
            Just("kPa"),
            Just("HKWorkoutActivityTypeRunning"),
            Just("2026-11-01T00:00:00+01:00"),
            Just("2026-11-01T00:30:00Z"),
            Just("count/min"),
            Just("insights"),
            Just("analyses"),
            Just("someone@example.com"),
            Just("00000000-0000-0000-0000-000000000000"),
            Just("correct horse battery"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("kind".to_owned()),
                    Just("start".to_owned()),
                    Just("end".to_owned()),
                    Just("value".to_owned()),
                    Just("unit".to_owned()),
                    Just("diastolic".to_owned()),
                    Just("activity".to_owned()),
                    Just("samples".to_owned()),
                    Just("email".to_owned()),
                    Just("password".to_owned()),
                    Just("display_name".to_owned()),
                    Just("grantee_email".to_owned()),
                    Just("scope".to_owned()),
                    Just("refresh_token".to_owned()),
                    Just("stream".to_owned()),
                    Just("user_id".to_owned()),
                    Just("since".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..7,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
