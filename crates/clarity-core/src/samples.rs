//! Health samples: the one shape shared by REST and WebSocket, and its validation.
//!
//! Rules:
//! - A batch is validated sample by sample; one bad sample never rejects the others.
//! - Every rejection carries a stable machine-readable `code` (documented in protocol/README.md).
//! - Times keep the client's UTC offset and are stored at millisecond precision.
//! - Units are normalised to one canonical unit per kind; aliases are accepted on input only.

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Longest accepted client sample id, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest accepted `source` string, in bytes.
pub const MAX_SOURCE_LEN: usize = 256;
/// How far ahead of the server clock a sample may start (clock skew, time zones gone wrong).
const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;
/// 2000-01-01T00:00:00Z: older data is certainly a broken clock.
const MIN_START_MS: i64 = 946_684_800_000;

/// Sample kinds. The numeric discriminant is the stored code: never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Kind {
    ActivityCount = 0,
    StepCount = 1,
    HeartRate = 2,
    HeartRateVariability = 3,
    RespiratoryRate = 4,
    OxygenSaturation = 5,
    BodyTemperature = 6,
    SleepStage = 7,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::ActivityCount,
        Kind::StepCount,
        Kind::HeartRate,
        Kind::HeartRateVariability,
        Kind::RespiratoryRate,
        Kind::OxygenSaturation,
        Kind::BodyTemperature,
        Kind::SleepStage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ActivityCount => "activity_count",
            Kind::StepCount => "step_count",
            Kind::HeartRate => "heart_rate",
            Kind::HeartRateVariability => "heart_rate_variability",
            Kind::RespiratoryRate => "respiratory_rate",
            Kind::OxygenSaturation => "oxygen_saturation",
            Kind::BodyTemperature => "body_temperature",
            Kind::SleepStage => "sleep_stage",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: i64) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| i64::from(k.code()) == code)
    }

    /// Canonical unit (UCUM-like) that responses carry; `None` for categorical kinds.
    pub fn unit(self) -> Option<&'static str> {
        match self {
            Kind::ActivityCount | Kind::HeartRate | Kind::RespiratoryRate => Some("count/min"),
            Kind::StepCount => Some("count"),
            Kind::HeartRateVariability => Some("ms"),
            Kind::OxygenSaturation => Some("%"),
            Kind::BodyTemperature => Some("degC"),
            Kind::SleepStage => None,
        }
    }

    fn unit_aliases(self) -> &'static [&'static str] {
        match self {
            Kind::ActivityCount => &["counts/min", "cpm"],
            Kind::StepCount => &["steps"],
            Kind::HeartRate => &["bpm", "beats/min"],
            Kind::RespiratoryRate => &["breaths/min", "brpm"],
            Kind::BodyTemperature => &["°C", "Cel", "C"],
            Kind::HeartRateVariability | Kind::OxygenSaturation | Kind::SleepStage => &[],
        }
    }

    /// Longest interval (`end` - `start`) a sample of this kind may span. Readings are
    /// momentary or averaged over minutes; a count covers at most an hour's epoch, steps or a
    /// sleep stage at most a day. Longer spans are broken clocks, and would stretch a user's
    /// window far beyond the data (see protocol/README.md, "Rejection codes").
    pub fn max_duration_ms(self) -> i64 {
        const HOUR: i64 = 3_600_000;
        match self {
            Kind::StepCount | Kind::SleepStage => 24 * HOUR,
            Kind::ActivityCount
            | Kind::HeartRate
            | Kind::HeartRateVariability
            | Kind::RespiratoryRate
            | Kind::OxygenSaturation
            | Kind::BodyTemperature => HOUR,
        }
    }

    /// Physiologically plausible range, inclusive.
    pub fn range(self) -> (f64, f64) {
        match self {
            Kind::ActivityCount => (0.0, 100_000.0),
            Kind::StepCount => (0.0, 100_000.0),
            Kind::HeartRate => (20.0, 300.0),
            Kind::HeartRateVariability => (0.0, 1_000.0),
            Kind::RespiratoryRate => (1.0, 100.0),
            Kind::OxygenSaturation => (50.0, 100.0),
            Kind::BodyTemperature => (25.0, 45.0),
            Kind::SleepStage => (0.0, 6.0),
        }
    }
}

/// Sleep stages, stored by their discriminant (never renumber). `Asleep` is sleep whose stage
/// the source did not tell (HealthKit's asleepUnspecified, Health Connect's SLEEPING);
/// `OutOfBed` is Health Connect's OUT_OF_BED inside a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SleepStage {
    Awake = 0,
    Light = 1,
    Deep = 2,
    Rem = 3,
    InBed = 4,
    Asleep = 5,
    OutOfBed = 6,
}

impl SleepStage {
    pub const ALL: [SleepStage; 7] = [
        SleepStage::Awake,
        SleepStage::Light,
        SleepStage::Deep,
        SleepStage::Rem,
        SleepStage::InBed,
        SleepStage::Asleep,
        SleepStage::OutOfBed,
    ];

    /// Light, deep, REM or unspecified sleep.
    pub fn is_asleep(self) -> bool {
        matches!(
            self,
            SleepStage::Light | SleepStage::Deep | SleepStage::Rem | SleepStage::Asleep
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SleepStage::Awake => "awake",
            SleepStage::Light => "light",
            SleepStage::Deep => "deep",
            SleepStage::Rem => "rem",
            SleepStage::InBed => "in_bed",
            SleepStage::Asleep => "asleep",
            SleepStage::OutOfBed => "out_of_bed",
        }
    }

    pub fn parse(s: &str) -> Option<SleepStage> {
        SleepStage::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn from_code(code: f64) -> Option<SleepStage> {
        SleepStage::ALL
            .into_iter()
            .find(|s| f64::from(*s as u8) == code)
    }
}

/// A point in time as the client sent it: UTC milliseconds plus the original offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    pub utc_ms: i64,
    pub offset_secs: i32,
}

impl Timestamp {
    pub fn parse(s: &str) -> Option<Timestamp> {
        let t = DateTime::parse_from_rfc3339(s).ok()?;
        Some(Timestamp {
            utc_ms: t.timestamp_millis(),
            offset_secs: t.offset().local_minus_utc(),
        })
    }

    pub fn to_datetime(self) -> Option<DateTime<FixedOffset>> {
        let offset = FixedOffset::east_opt(self.offset_secs)?;
        offset.timestamp_millis_opt(self.utc_ms).single()
    }

    pub fn to_rfc3339(self) -> String {
        match self.to_datetime() {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            // Unreachable for values we parsed ourselves; keep the instant, lose the offset.
            None => Utc
                .timestamp_millis_opt(self.utc_ms)
                .single()
                .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                .unwrap_or_default(),
        }
    }
}

/// A validated sample, ready to store (and to forward to another node).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub id: String,
    pub kind: Kind,
    pub start: Timestamp,
    pub end: Option<Timestamp>,
    /// Numeric value; for `sleep_stage` the [`SleepStage`] discriminant.
    pub value: f64,
    pub source: Option<String>,
}

/// The wire shape of a sample in responses. (Clients send the same shape, with unit aliases
/// allowed; the API documents take that schema from protocol/schemas/client/samples.json.)
#[derive(Debug, Serialize)]
pub struct SampleOut<'a> {
    /// The client's idempotency key, unique per user: 1-128 bytes, no control characters.
    pub id: &'a str,
    pub kind: &'static str,
    /// RFC 3339 with offset; kept at millisecond precision with its offset. After
    /// 2000-01-01, at most 24 h ahead of the server's clock.
    pub start: String,
    /// At or after `start`; required for `sleep_stage`. At most 24 h ahead of the server's
    /// clock, and at most 24 h after `start` for `step_count` and `sleep_stage`, 1 h for the
    /// other kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    pub value: serde_json::Value,
    /// The kind's canonical unit (aliases are accepted on input); none for `sleep_stage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    /// Where the sample came from (at most 256 bytes), e.g. a device name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'a str>,
}

impl Sample {
    pub fn to_wire(&self) -> SampleOut<'_> {
        let value = if self.kind == Kind::SleepStage {
            SleepStage::from_code(self.value)
                .map(|s| serde_json::Value::from(s.as_str()))
                .unwrap_or(serde_json::Value::Null)
        } else if self.value.fract() == 0.0 && self.value.abs() < 9.0e15 {
            // Counts and whole readings go back out as integers, as clients sent them.
            serde_json::Value::from(self.value as i64)
        } else {
            serde_json::Number::from_f64(self.value)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null)
        };
        SampleOut {
            id: &self.id,
            kind: self.kind.as_str(),
            start: self.start.to_rfc3339(),
            end: self.end.map(Timestamp::to_rfc3339),
            value,
            unit: self.kind.unit(),
            source: self.source.as_deref(),
        }
    }
}

/// Why one sample of a batch was not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Position in the batch.
    pub index: usize,
    pub code: &'static str,
    pub message: String,
}

/// Lenient first pass: every field optional so that type errors become per-sample rejections.
#[derive(Deserialize)]
struct RawSample<'a> {
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    // Any JSON type, so that a number (epoch seconds) gets the time rule, not a type error.
    #[serde(borrow)]
    start: Option<&'a RawValue>,
    #[serde(borrow)]
    end: Option<&'a RawValue>,
    value: Option<serde_json::Value>,
    #[serde(borrow)]
    unit: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<std::borrow::Cow<'a, str>>,
}

type Invalid = (&'static str, String);

/// The rule every time field follows, with an example, for rejection messages.
pub const TIME_RULE: &str =
    "an RFC 3339 date-time string with offset, e.g. 2026-11-29T08:00:00+01:00";

/// A time field (`start`/`end`), or a rejection naming the rule and what was wrong.
fn parse_time_field(field: &str, raw: &RawValue) -> Result<Timestamp, Invalid> {
    let text: Option<std::borrow::Cow<'_, str>> = serde_json::from_str(raw.get()).ok();
    let Some(text) = text else {
        let got = if raw
            .get()
            .starts_with(|c: char| c == '-' || c.is_ascii_digit())
        {
            "a number"
        } else {
            "not a string"
        };
        return Err(invalid(
            "invalid_time",
            format!("{field} must be {TIME_RULE}; got {got}"),
        ));
    };
    Timestamp::parse(&text).ok_or_else(|| {
        let hint = if chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f").is_ok() {
            " (the UTC offset is missing: add Z or +HH:MM)"
        } else {
            ""
        };
        invalid("invalid_time", format!("{field} must be {TIME_RULE}{hint}"))
    })
}

/// Client text quoted in a message, cut to a bounded length (never echoed at length).
fn truncated(s: &str) -> &str {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The accepted kinds, for the `unknown_kind` message.
fn kind_list() -> String {
    Kind::ALL.map(Kind::as_str).join(", ")
}

fn invalid(code: &'static str, message: impl Into<String>) -> Invalid {
    (code, message.into())
}

/// Parses and validates one sample. `now_ms` is the server clock, for plausibility of times.
pub fn parse_sample(raw: &RawValue, now_ms: i64) -> Result<Sample, Invalid> {
    let raw: RawSample<'_> = serde_json::from_str(raw.get())
        .map_err(|e| invalid("invalid_sample", format!("not a valid sample object: {e}")))?;
    let id = raw
        .id
        .ok_or_else(|| invalid("invalid_sample", "missing field `id`"))?;
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(invalid(
            "invalid_id",
            format!("id must be 1-{MAX_ID_LEN} bytes without control characters"),
        ));
    }
    let kind_str = raw
        .kind
        .ok_or_else(|| invalid("invalid_sample", "missing field `kind`"))?;
    let kind = Kind::parse(&kind_str).ok_or_else(|| {
        invalid(
            "unknown_kind",
            format!(
                "unknown kind `{}`; kind must be one of {}",
                truncated(&kind_str),
                kind_list()
            ),
        )
    })?;
    let start_str = raw
        .start
        .ok_or_else(|| invalid("invalid_sample", "missing field `start`"))?;
    let start = parse_time_field("start", start_str)?;
    let end = match raw.end {
        None => None,
        Some(s) => Some(parse_time_field("end", s)?),
    };
    if let Some(end) = end {
        if end.utc_ms < start.utc_ms {
            return Err(invalid("invalid_time", "end is before start"));
        }
    } else if kind == Kind::SleepStage {
        return Err(invalid("invalid_time", "sleep_stage requires end"));
    }
    if start.utc_ms < MIN_START_MS || start.utc_ms > now_ms + MAX_FUTURE_MS {
        return Err(invalid(
            "time_out_of_range",
            "start must be after 2000-01-01 and at most 24 h in the future",
        ));
    }
    if let Some(end) = end {
        if end.utc_ms > now_ms + MAX_FUTURE_MS {
            return Err(invalid(
                "time_out_of_range",
                "end must be at most 24 h in the future",
            ));
        }
        let max = kind.max_duration_ms();
        if end.utc_ms - start.utc_ms > max {
            return Err(invalid(
                "time_out_of_range",
                format!(
                    "{} samples span at most {} h from start to end",
                    kind.as_str(),
                    max / 3_600_000
                ),
            ));
        }
    }
    if let Some(unit) = raw.unit {
        let canonical = kind.unit();
        let ok = match canonical {
            Some(c) => unit == c || kind.unit_aliases().contains(&unit.as_ref()),
            None => unit.is_empty(),
        };
        if !ok {
            return Err(invalid(
                "unit_mismatch",
                match canonical {
                    Some(c) => format!("{} is measured in `{c}`", kind.as_str()),
                    None => format!("{} has no unit", kind.as_str()),
                },
            ));
        }
    }
    let value = raw
        .value
        .ok_or_else(|| invalid("invalid_sample", "missing field `value`"))?;
    let value = if kind == Kind::SleepStage {
        let stage = value.as_str().and_then(SleepStage::parse).ok_or_else(|| {
            invalid(
                "invalid_value",
                "sleep_stage value must be one of awake, light, deep, rem, in_bed, asleep, out_of_bed",
            )
        })?;
        f64::from(stage as u8)
    } else {
        let v = value
            .as_f64()
            .ok_or_else(|| invalid("invalid_value", "value must be a number"))?;
        let (lo, hi) = kind.range();
        if !(lo..=hi).contains(&v) {
            return Err(invalid(
                "out_of_range",
                format!("{} must be within {lo}..={hi}", kind.as_str()),
            ));
        }
        v
    };
    let source = match raw.source {
        None => None,
        Some(s) if s.len() <= MAX_SOURCE_LEN => Some(s.into_owned()),
        Some(_) => {
            return Err(invalid(
                "invalid_sample",
                format!("source must be at most {MAX_SOURCE_LEN} bytes"),
            ));
        }
    };
    Ok(Sample {
        id: id.into_owned(),
        kind,
        start,
        end,
        value,
        source,
    })
}

/// Validates a batch: the valid samples (with their batch index) and the rejections.
pub fn parse_batch(raw: &[&RawValue], now_ms: i64) -> (Vec<(usize, Sample)>, Vec<Rejection>) {
    let mut valid = Vec::with_capacity(raw.len());
    let mut rejected = Vec::new();
    for (index, r) in raw.iter().enumerate() {
        match parse_sample(r, now_ms) {
            Ok(s) => valid.push((index, s)),
            Err((code, message)) => rejected.push(Rejection {
                index,
                code,
                message,
            }),
        }
    }
    (valid, rejected)
}

#[cfg(test)]
mod tests {
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
                r#"{"id":"a","kind":"mood","start":"2026-01-01T00:00:00Z","value":60}"#,
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
                kind.range().0.to_string()
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
        let m = msg(r#"{"id":"a","kind":"mood","start":"2026-01-01T00:00:00Z","value":1}"#);
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
}
