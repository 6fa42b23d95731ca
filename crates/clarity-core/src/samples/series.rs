//! Regular series: values of one kind, unit and source at a fixed interval from `start` (the
//! WebSocket `series` frame), expanded into the samples a `samples` frame would carry.
//!
//! Rules:
//! - Value `i` is the sample a client would have sent as an object: `start` + i x
//!   `interval_ms` (keeping `start`'s UTC offset), an `end` `interval_ms` later when
//!   `intervals` is set (none otherwise), the frame's `kind`, `unit` and `source`, `ids[i]` or
//!   the derived id, `versions[i]`. It goes through the one validation of [`super::parse`], so
//!   it is stored, or rejected with the same code and message at the same index, exactly as
//!   that sample in a `samples` frame would be.
//! - `null` values are gaps: no sample and no rejection; they only advance the time. An ack
//!   counts the values that are not gaps.
//! - A sample's id, when `ids` or its entry is absent or `null`, is [`derived_id`]: the same
//!   series sent again derives the same ids (its samples are duplicates), and two sources
//!   never derive the same id.
//! - The shape (lengths, interval, at least one value) is checked before any value, by
//!   [`Series::check`]; a series of the wrong shape is refused whole.
//! - The source is parsed once per series (it is the same for every value).

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::parse::{Fields, Source, SourceResult, Time, validate};
use super::{Kind, Rejection, Sample, Timestamp, provenance};

/// Longest `interval_ms`: a day (no kind spans more).
pub const MAX_INTERVAL_MS: i64 = 24 * 3600 * 1000;

/// A `series` frame's body, as sent (values not validated yet).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub kind: String,
    pub unit: Option<String>,
    /// A string or a source object, as a sample's `source`.
    pub source: Option<Value>,
    pub start: Timestamp,
    pub interval_ms: i64,
    /// Each value covers its interval (`end` = its start + `interval_ms`).
    pub intervals: bool,
    /// Numbers (strings for sleep stages); `null` is a gap.
    pub values: Vec<Value>,
    pub ids: Option<Vec<Option<String>>>,
    pub versions: Option<Vec<Value>>,
}

impl Series {
    /// The shape rules; the message names the one broken.
    pub fn check(&self) -> Result<(), String> {
        if self.values.is_empty() {
            return Err("`values` must hold at least one value".into());
        }
        if !(1..=MAX_INTERVAL_MS).contains(&self.interval_ms) {
            return Err(format!(
                "`interval_ms` must be an integer within 1..={MAX_INTERVAL_MS} (milliseconds between values)"
            ));
        }
        let n = self.values.len();
        if let Some(ids) = &self.ids
            && ids.len() != n
        {
            return Err(format!(
                "`ids` must have one entry per value: {} ids for {n} values",
                ids.len()
            ));
        }
        if let Some(versions) = &self.versions
            && versions.len() != n
        {
            return Err(format!(
                "`versions` must have one entry per value: {} versions for {n} values",
                versions.len()
            ));
        }
        Ok(())
    }

    /// Samples the series carries: its values that are not gaps.
    pub fn samples(&self) -> usize {
        self.values.iter().filter(|v| !v.is_null()).count()
    }

    /// Value `i`'s start.
    fn start_of(&self, i: usize) -> Timestamp {
        Timestamp {
            utc_ms: self.start.utc_ms + i as i64 * self.interval_ms,
            offset_secs: self.start.offset_secs,
        }
    }
}

/// The id of a series sample sent without one: `s:` + the kind + `:` + its start in UTC
/// milliseconds since the epoch + `:` + the first 16 hex digits of the SHA-256 of its source
/// name (UTF-8; the empty string without a source). E.g. `s:heart_rate:1767225600000:` +
/// `e3b0c44298fc1c14` for a heart rate at 2026-01-01T00:00:00Z without a source.
///
/// The source name is the one stored: the `source` string, or an object's `name` (else
/// `device.name`, else `app`). An unknown kind derives `unknown` (the sample is rejected as
/// `unknown_kind` anyway). Always under 128 bytes, so always a valid id.
pub fn derived_id(kind: &str, start_ms: i64, source: Option<&str>) -> String {
    let kind = Kind::parse(kind).map_or("unknown", Kind::as_str);
    let digest = Sha256::digest(source.unwrap_or("").as_bytes());
    let mut hex = String::with_capacity(16);
    for b in &digest[..8] {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("s:{kind}:{start_ms}:{hex}")
}

/// Validates a series (already of the right shape) like [`super::parse_batch`] a batch: the
/// valid samples with their value index, and the rejections by value index.
pub fn parse_series(series: &Series, now_ms: i64) -> (Vec<(usize, Sample)>, Vec<Rejection>) {
    let source: SourceResult = provenance::parse_source(series.source.as_ref(), None);
    let source_name = source.as_ref().ok().and_then(|(name, _)| name.as_deref());
    let mut valid = Vec::with_capacity(series.values.len());
    let mut rejected = Vec::new();
    for (index, value) in series.values.iter().enumerate() {
        if value.is_null() {
            continue;
        }
        let start = series.start_of(index);
        let end = series.intervals.then(|| Timestamp {
            utc_ms: start.utc_ms + series.interval_ms,
            offset_secs: start.offset_secs,
        });
        let id = match series
            .ids
            .as_ref()
            .and_then(|ids| ids.get(index))
            .and_then(Option::as_deref)
        {
            Some(id) => id.into(),
            None => derived_id(&series.kind, start.utc_ms, source_name).into(),
        };
        let fields = Fields {
            id: Some(id),
            kind: Some(&series.kind),
            start: Some(Time::At(start)),
            end: end.map(Time::At),
            value: Some(value),
            unit: series.unit.as_deref(),
            source: Source::Parsed(&source),
            version: series
                .versions
                .as_ref()
                .and_then(|v| v.get(index))
                .filter(|v| !v.is_null()),
            diastolic: None,
            activity: None,
        };
        match validate(fields, now_ms) {
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
#[path = "series_tests.rs"]
mod tests;
