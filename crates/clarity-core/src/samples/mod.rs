//! Health samples: the one shape shared by REST and WebSocket.
//!
//! Rules:
//! - Times keep the client's UTC offset and are stored at millisecond precision.
//! - Values are held in one canonical unit per kind ([`kind`]); other units are converted on
//!   input ([`units`], in [`parse`]), and responses always carry the canonical unit.
//! - Fields beyond `value` that only some kinds have (`diastolic` of blood_pressure, `activity`
//!   of workout) and the structured [`provenance`] live in [`Extra`], boxed so that the samples
//!   without them stay small; both stores keep them, and the wire shape puts them at the top
//!   level of the sample. Output is valid input: sent back, it is the same sample.
//!
//! Files: [`kind`] (kinds, codes, canonical units, ranges, spans), [`units`] (conversion on
//! input), [`parse`] (validation), [`mapping`] (HealthKit / Health Connect vocabulary),
//! [`provenance`] (device, app, recording method; `source` objects and `version`), [`series`]
//! (the compact `series` frame: expansion into samples, derived ids), [`sources`]
//! (which source owns a minute; spreading intervals over minutes).

pub mod ids;
pub mod kind;
pub mod mapping;
pub mod parse;
pub mod provenance;
pub mod series;
pub mod sources;
pub mod units;

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

pub use kind::{DIASTOLIC_RANGE, Kind, SleepStage};
pub use parse::{MAX_ID_LEN, MAX_SOURCE_LEN, Rejection, TIME_RULE, parse_batch, parse_sample};
pub use series::{Series, derived_id, parse_series};

/// What a sample carries beyond `value`, for the kinds that have more.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Extra {
    /// blood_pressure: diastolic pressure, mmHg (below the systolic `value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diastolic: Option<f64>,
    /// workout: the activity type, snake_case (see [`mapping::normalise_activity`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<String>,
    /// Structured provenance (device, app, recording method), when the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<provenance::Provenance>,
}

impl Extra {
    /// The stored form (SQLite column, DynamoDB chunk record): a small JSON object, so that
    /// fields can be added without a new format.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("Extra serialises")
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Extra> {
        serde_json::from_slice(bytes).ok()
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
    /// The client's version of this sample (Health Connect's clientRecordVersion, a
    /// HealthKit modification counter): a re-sent id with a higher version replaces the
    /// stored sample; `None` never replaces anything (protocol v1 behaviour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// `diastolic` / `activity` / `provenance`; `None` for samples that have none of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<Extra>>,
}

/// The wire shape of a sample in responses. (Clients send the same shape, with other units
/// allowed; the API documents take that schema from protocol/schemas/client/samples.json.)
#[derive(Debug, Serialize)]
pub struct SampleOut<'a> {
    /// The client's idempotency key, unique per user: 1-128 bytes, no control characters.
    pub id: &'a str,
    pub kind: &'static str,
    /// RFC 3339 with offset; kept at millisecond precision with its offset. After
    /// 2000-01-01, at most 24 h ahead of the server's clock.
    pub start: String,
    /// At or after `start`; required for `sleep_stage`, `workout` and `mindful_session`. At
    /// most 24 h ahead of the server's clock, and at most the kind's span after `start` (1 h
    /// for readings, 24 h for totals, stages and sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// In the kind's canonical unit (`unit`); for `sleep_stage` the stage.
    pub value: serde_json::Value,
    /// The kind's canonical unit (other units are converted on input); none for
    /// `sleep_stage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    /// Where the sample came from (at most 256 bytes), e.g. a device name; the rest of what
    /// the client knows is in `provenance`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'a str>,
    /// `blood_pressure` only: the diastolic pressure, in `unit` (mmHg).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diastolic: Option<serde_json::Value>,
    /// `workout` only: the activity type, snake_case (e.g. `running`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<&'a str>,
    /// The client's version of the sample, when it sent one (0..=2^53 - 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Device, app and recording method, when the client sent them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<&'a provenance::Provenance>,
}

/// A number as JSON: whole values as integers, as clients sent them.
fn json_number(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        serde_json::Value::from(v as i64)
    } else {
        serde_json::Number::from_f64(v)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Time spans (UTC ms `[start, end]`) sorted, with overlapping ones joined.
pub fn merge_spans(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

impl Sample {
    /// The times the sample covers, UTC ms `[start, end]` (an instant: `[start, start]`).
    pub fn span(&self) -> (i64, i64) {
        (
            self.start.utc_ms,
            self.end.map_or(self.start.utc_ms, |e| e.utc_ms),
        )
    }

    /// A sample of a kind without extra fields.
    pub fn new(
        id: impl Into<String>,
        kind: Kind,
        start: Timestamp,
        end: Option<Timestamp>,
        value: f64,
        source: Option<String>,
    ) -> Sample {
        Sample {
            id: id.into(),
            kind,
            start,
            end,
            value,
            source,
            version: None,
            extra: None,
        }
    }

    /// blood_pressure's diastolic pressure, mmHg.
    pub fn diastolic(&self) -> Option<f64> {
        self.extra.as_ref().and_then(|e| e.diastolic)
    }

    /// workout's activity type.
    pub fn activity(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.activity.as_deref())
    }

    /// Device, app and recording method, when the client sent them.
    pub fn provenance(&self) -> Option<&provenance::Provenance> {
        self.extra.as_ref().and_then(|e| e.provenance.as_ref())
    }

    /// Whether the user typed this sample in (`provenance.method` = manual).
    pub fn is_manual(&self) -> bool {
        self.provenance()
            .is_some_and(provenance::Provenance::is_manual)
    }

    pub fn to_wire(&self) -> SampleOut<'_> {
        let value = if self.kind == Kind::SleepStage {
            SleepStage::from_code(self.value)
                .map(|s| serde_json::Value::from(s.as_str()))
                .unwrap_or(serde_json::Value::Null)
        } else {
            json_number(self.value)
        };
        SampleOut {
            id: &self.id,
            kind: self.kind.as_str(),
            start: self.start.to_rfc3339(),
            end: self.end.map(Timestamp::to_rfc3339),
            value,
            unit: self.kind.unit(),
            source: self.source.as_deref(),
            diastolic: self.diastolic().map(json_number),
            activity: self.activity(),
            version: self.version,
            provenance: self.provenance(),
        }
    }
}

#[cfg(test)]
mod schema_tests;
