//! Validation of samples as clients send them (REST body or WebSocket frame).
//!
//! Rules:
//! - A batch is validated sample by sample; one bad sample never rejects the others.
//! - Every rejection carries a stable machine-readable `code` (documented in protocol/README.md)
//!   and a message naming the rule broken: the accepted kinds, the accepted units, the range
//!   with its canonical unit (and what a converted value became).
//! - Values are converted to the kind's canonical unit here, before any range check, so that
//!   nothing downstream ever sees another unit.
//! - Client text quoted in a message is cut to a bounded length.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::kind::DIASTOLIC_RANGE;
use super::units::{self, Unit};
use super::{Extra, Kind, Sample, SleepStage, Timestamp, mapping, provenance};

/// Longest accepted client sample id, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest accepted `source` string, in bytes.
pub const MAX_SOURCE_LEN: usize = 256;
/// How far ahead of the server clock a sample may start (clock skew, time zones gone wrong).
pub(super) const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;
/// 2000-01-01T00:00:00Z: older data is certainly a broken clock.
pub(super) const MIN_START_MS: i64 = 946_684_800_000;
/// Rounding slack of a mindful session's minutes against its span.
const MINDFUL_SLACK_MIN: f64 = 1.0;

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
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    // Any JSON type, so that a number (epoch seconds) gets the time rule, not a type error.
    #[serde(borrow)]
    start: Option<&'a RawValue>,
    #[serde(borrow)]
    end: Option<&'a RawValue>,
    value: Option<serde_json::Value>,
    #[serde(borrow)]
    unit: Option<Cow<'a, str>>,
    // A string (v1) or an object with `name` and provenance: see [`provenance`].
    source: Option<serde_json::Value>,
    provenance: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
    diastolic: Option<serde_json::Value>,
    #[serde(borrow)]
    activity: Option<Cow<'a, str>>,
}

pub(super) type Invalid = (&'static str, String);

/// The rule every time field follows, with an example, for rejection messages.
pub const TIME_RULE: &str =
    "an RFC 3339 date-time string with offset, e.g. 2026-11-29T08:00:00+01:00";

/// A time field (`start`/`end`), or a rejection naming the rule and what was wrong.
fn parse_time_field(field: &str, raw: &RawValue) -> Result<Timestamp, Invalid> {
    let text: Option<Cow<'_, str>> = serde_json::from_str(raw.get()).ok();
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
pub(super) fn truncated(s: &str) -> &str {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn invalid(code: &'static str, message: impl Into<String>) -> Invalid {
    (code, message.into())
}

/// A number for a message: at most 6 decimals, no trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// The unit of a numeric sample: the one named, or the one implied by the value.
fn unit_of(kind: Kind, unit: Option<&str>, value: f64) -> Result<&'static Unit, Invalid> {
    match unit {
        None => Ok(units::implied(kind, value)),
        // HealthKit's percent unit holds SpO2 as 0-1 (HKUnit.percent(): 0.95 is 95 %), and
        // apps pass it on with unit "%"; 0-1 % is no SpO2, so such a value is a fraction.
        Some("%") if kind == Kind::OxygenSaturation => Ok(units::implied(kind, value)),
        Some(name) => units::find(kind, name).ok_or_else(|| {
            invalid(
                "unit_mismatch",
                format!(
                    "unknown unit `{}` for {}; accepted units: {}",
                    truncated(name),
                    kind.as_str(),
                    units::names(kind)
                ),
            )
        }),
    }
}

/// `value` (named `field`, sent in `unit`) in the canonical unit, within `range`.
fn canonical_in_range(
    kind: Kind,
    field: &str,
    unit: &Unit,
    value: f64,
    (lo, hi): (f64, f64),
) -> Result<f64, Invalid> {
    let v = unit.to_canonical(value);
    if (lo..=hi).contains(&v) {
        return Ok(v);
    }
    // A dimensionless canonical unit (`1`) is not written after numbers.
    let canonical = match kind.unit().unwrap_or_default() {
        "1" => String::new(),
        u => format!(" {u}"),
    };
    let what = if field == "value" {
        kind.as_str().to_owned()
    } else {
        format!("{} {field}", kind.as_str())
    };
    let got = if unit.is_identity() {
        format!("got {}", num(value))
    } else {
        let sent = match unit.name {
            "1" | "fraction" => " as a fraction".to_owned(),
            u => format!(" {u}"),
        };
        format!("got {}{sent}, which is {}{canonical}", num(value), num(v))
    };
    Err(invalid(
        "out_of_range",
        format!(
            "{what} must be within {}..={}{canonical}; {got}",
            num(lo),
            num(hi)
        ),
    ))
}

fn number(field: &str, v: &serde_json::Value) -> Result<f64, Invalid> {
    v.as_f64()
        .ok_or_else(|| invalid("invalid_value", format!("{field} must be a number")))
}

/// A time field: as sent (a sample object's `start`/`end`) or already known (a series slot).
pub(super) enum Time<'a> {
    Raw(&'a RawValue),
    At(Timestamp),
}

/// The parsed `source` and `provenance` of a sample (what [`provenance::parse_source`] gives).
pub(super) type SourceResult = Result<(Option<String>, Option<provenance::Provenance>), Invalid>;

/// `source` and `provenance` as sent, or parsed once for every sample of a series.
pub(super) enum Source<'a> {
    Raw {
        source: Option<&'a serde_json::Value>,
        provenance: Option<&'a serde_json::Value>,
    },
    Parsed(&'a SourceResult),
}

/// The fields of one sample, however they arrived (a sample object, a series slot): the
/// one validation below checks them in one order, so both shapes get the same rejections.
pub(super) struct Fields<'a> {
    pub id: Option<Cow<'a, str>>,
    pub kind: Option<&'a str>,
    pub start: Option<Time<'a>>,
    pub end: Option<Time<'a>>,
    pub value: Option<&'a serde_json::Value>,
    pub unit: Option<&'a str>,
    pub source: Source<'a>,
    pub version: Option<&'a serde_json::Value>,
    pub diastolic: Option<&'a serde_json::Value>,
    pub activity: Option<&'a str>,
}

fn time_of(field: &str, t: Time<'_>) -> Result<Timestamp, Invalid> {
    match t {
        Time::Raw(raw) => parse_time_field(field, raw),
        Time::At(t) => Ok(t),
    }
}

/// Parses and validates one sample. `now_ms` is the server clock, for plausibility of times.
pub fn parse_sample(raw: &RawValue, now_ms: i64) -> Result<Sample, Invalid> {
    let raw: RawSample<'_> = serde_json::from_str(raw.get())
        .map_err(|e| invalid("invalid_sample", format!("not a valid sample object: {e}")))?;
    validate(
        Fields {
            id: raw.id,
            kind: raw.kind.as_deref(),
            start: raw.start.map(Time::Raw),
            end: raw.end.map(Time::Raw),
            value: raw.value.as_ref(),
            unit: raw.unit.as_deref(),
            source: Source::Raw {
                source: raw.source.as_ref(),
                provenance: raw.provenance.as_ref(),
            },
            version: raw.version.as_ref(),
            diastolic: raw.diastolic.as_ref(),
            activity: raw.activity.as_deref(),
        },
        now_ms,
    )
}

/// Validates one sample's fields (the rules of the module).
pub(super) fn validate(raw: Fields<'_>, now_ms: i64) -> Result<Sample, Invalid> {
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
    let kind = Kind::parse(kind_str).ok_or_else(|| {
        invalid(
            "unknown_kind",
            format!(
                "unknown kind `{}`; kind must be one of {}",
                truncated(kind_str),
                Kind::names()
            ),
        )
    })?;
    let start_str = raw
        .start
        .ok_or_else(|| invalid("invalid_sample", "missing field `start`"))?;
    let start = time_of("start", start_str)?;
    let end = match raw.end {
        None => None,
        Some(s) => Some(time_of("end", s)?),
    };
    if let Some(end) = end {
        if end.utc_ms < start.utc_ms {
            return Err(invalid("invalid_time", "end is before start"));
        }
    } else if kind.needs_end() {
        return Err(invalid(
            "invalid_time",
            format!("{} requires end", kind.as_str()),
        ));
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
    if raw.diastolic.is_some() && kind != Kind::BloodPressure {
        return Err(invalid(
            "invalid_sample",
            "`diastolic` belongs to blood_pressure samples only",
        ));
    }
    if raw.activity.is_some() && kind != Kind::Workout {
        return Err(invalid(
            "invalid_sample",
            "`activity` belongs to workout samples only",
        ));
    }
    let value = raw
        .value
        .ok_or_else(|| invalid("invalid_sample", "missing field `value`"))?;
    let mut extra = None;
    let value = if kind == Kind::SleepStage {
        if raw.unit.is_some_and(|u| !u.is_empty()) {
            return Err(invalid(
                "unit_mismatch",
                "sleep_stage has no unit: omit `unit`",
            ));
        }
        let stage = value
            .as_str()
            .and_then(mapping::sleep_stage)
            .ok_or_else(|| {
                invalid(
                    "invalid_value",
                    format!(
                        "sleep_stage value must be one of {} (or a HealthKit / Health Connect stage name, e.g. asleepCore, STAGE_TYPE_LIGHT)",
                        SleepStage::ALL.map(SleepStage::as_str).join(", ")
                    ),
                )
            })?;
        f64::from(stage as u8)
    } else {
        let sent = number("value", value)?;
        let unit = unit_of(kind, raw.unit, sent)?;
        if kind.is_whole() && sent.fract() != 0.0 {
            return Err(invalid(
                "invalid_value",
                format!("{} is a questionnaire total: a whole number", kind.as_str()),
            ));
        }
        let v = canonical_in_range(kind, "value", unit, sent, kind.range())?;
        match kind {
            Kind::BloodPressure => {
                let d = raw.diastolic.ok_or_else(|| {
                    invalid(
                        "invalid_sample",
                        "blood_pressure requires `diastolic` (in the same unit as value)",
                    )
                })?;
                let d = canonical_in_range(
                    kind,
                    "diastolic",
                    unit,
                    number("diastolic", d)?,
                    DIASTOLIC_RANGE,
                )?;
                if d >= v {
                    return Err(invalid(
                        "invalid_value",
                        format!(
                            "blood_pressure diastolic ({} mmHg) must be below the systolic value ({} mmHg)",
                            num(d),
                            num(v)
                        ),
                    ));
                }
                extra = Some(Box::new(Extra {
                    provenance: None,
                    diastolic: Some(d),
                    activity: None,
                }));
            }
            Kind::Workout => {
                let a = raw.activity.ok_or_else(|| {
                    invalid(
                        "invalid_sample",
                        "workout requires `activity` (e.g. running, or HealthKit's / Health Connect's workout type name)",
                    )
                })?;
                let a = mapping::normalise_activity(a).ok_or_else(|| {
                    invalid(
                        "invalid_value",
                        format!(
                            "activity must be 1-{} ASCII letters, digits, spaces, `-` or `_`",
                            mapping::MAX_ACTIVITY_LEN
                        ),
                    )
                })?;
                extra = Some(Box::new(Extra {
                    provenance: None,
                    diastolic: None,
                    activity: Some(a),
                }));
            }
            Kind::MindfulSession => {
                // `end` is required for this kind (checked above).
                let span_min = end.map_or(0.0, |e| (e.utc_ms - start.utc_ms) as f64 / 60_000.0);
                if v > span_min + MINDFUL_SLACK_MIN {
                    return Err(invalid(
                        "invalid_value",
                        format!(
                            "mindful_session value ({} min) must not exceed the span from start to end ({} min)",
                            num(v),
                            num(span_min)
                        ),
                    ));
                }
            }
            _ => {}
        }
        v
    };
    let (source, provenance) = match raw.source {
        Source::Raw { source, provenance } => provenance::parse_source(source, provenance)?,
        Source::Parsed(parsed) => parsed.clone()?,
    };
    if provenance.is_some() {
        extra.get_or_insert_with(Box::default).provenance = provenance;
    }
    let version = raw.version.map(provenance::parse_version).transpose()?;
    Ok(Sample {
        version,
        id: id.into_owned(),
        kind,
        start,
        end,
        value,
        source,
        extra,
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
#[path = "parse_tests.rs"]
mod tests;
