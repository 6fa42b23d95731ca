//! CSV for researchers: the activity minute series in exactly the `clarity analyze --input`
//! format ([`crate::analytics::csv`]), and a long format (one row per sample) for every kind.
//!
//! Rules:
//! - Minute series: one row per UTC minute that has an activity_count sample, times in UTC
//!   (`...Z`, whole minutes), strictly increasing; minutes without a sample are left out (the
//!   reader takes a gap as missing minutes). A sample counts in the minute it starts in; where
//!   several sources have one in the same minute, the one the window would take wins (the
//!   order of [`crate::samples::sources::minute_priority`]: a manual entry, then the source's
//!   [`rank`], then the smaller name), so the file describes what the server analyses. Samples must arrive in start order (the store's listing order).
//! - Long format: RFC 4180 quoting (a field with a comma, quote or line break is quoted, quotes
//!   doubled); values in the kind's canonical unit, sleep stages by name, empty for absent.

use chrono::{SecondsFormat, TimeZone, Utc};

use crate::analytics::csv::HEADER as MINUTE_HEADER;
use crate::samples::provenance::RecordingMethod;
use crate::samples::sources::{UNNAMED_SOURCE, rank};
use crate::samples::{Sample, SleepStage};

const MINUTE_MS: i64 = 60_000;

/// The long format's header line.
pub const LONG_HEADER: &str = "id,kind,start,end,value,unit,source,diastolic,activity,version,\
app,method,device_name,device_manufacturer,device_model,device_hardware_version,device_software_version";

/// A field, quoted where it needs to be.
fn field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// One sample as a long-format line (with its line break).
pub fn long_row(s: &Sample) -> String {
    let value = if s.kind == crate::samples::Kind::SleepStage {
        SleepStage::from_code(s.value)
            .map(|st| st.as_str().to_owned())
            .unwrap_or_default()
    } else {
        number(s.value)
    };
    let p = s.extra.as_ref().and_then(|e| e.provenance.as_ref());
    let d = p.and_then(|p| p.device.as_ref());
    let fields: [String; 17] = [
        s.id.clone(),
        s.kind.as_str().to_owned(),
        s.start.to_rfc3339(),
        s.end.map(|e| e.to_rfc3339()).unwrap_or_default(),
        value,
        s.kind.unit().unwrap_or_default().to_owned(),
        s.source.clone().unwrap_or_default(),
        s.diastolic().map(number).unwrap_or_default(),
        s.activity().unwrap_or_default().to_owned(),
        s.version.map(|v| v.to_string()).unwrap_or_default(),
        p.and_then(|p| p.app.clone()).unwrap_or_default(),
        p.and_then(|p| p.method)
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        d.and_then(|d| d.name.clone()).unwrap_or_default(),
        d.and_then(|d| d.manufacturer.clone()).unwrap_or_default(),
        d.and_then(|d| d.model.clone()).unwrap_or_default(),
        d.and_then(|d| d.hardware_version.clone())
            .unwrap_or_default(),
        d.and_then(|d| d.software_version.clone())
            .unwrap_or_default(),
    ];
    let mut out = String::with_capacity(128);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(&mut out, f);
    }
    out.push('\n');
    out
}

/// The owner order of a minute: a manual entry first, then the source's rank, then the
/// smaller name (a total order, as the window's).
type Priority = (bool, u8, std::cmp::Reverse<String>);

fn priority(s: &Sample) -> Priority {
    let manual = s
        .extra
        .as_ref()
        .and_then(|e| e.provenance.as_ref())
        .is_some_and(|p| p.method == Some(RecordingMethod::Manual));
    let source = s.source.as_deref().unwrap_or(UNNAMED_SOURCE);
    (manual, rank(source), std::cmp::Reverse(source.to_owned()))
}

/// Builds the minute series from activity_count samples in start order.
#[derive(Default)]
pub struct MinuteWriter {
    /// The minute being collected: (UTC minute, count, owner priority).
    current: Option<(i64, f64, Priority)>,
}

impl MinuteWriter {
    pub fn new() -> MinuteWriter {
        MinuteWriter::default()
    }

    /// The header line (with its line break).
    pub fn header() -> String {
        format!("{MINUTE_HEADER}\n")
    }

    /// Takes the next sample; returns the finished row of the previous minute, if any.
    pub fn push(&mut self, s: &Sample) -> Option<String> {
        let minute = s.start.utc_ms.div_euclid(MINUTE_MS);
        let p = priority(s);
        match &mut self.current {
            Some((m, value, owner)) if *m == minute => {
                if p > *owner {
                    *value = s.value;
                    *owner = p;
                }
                None
            }
            _ => self
                .current
                .replace((minute, s.value, p))
                .map(|(m, v, _)| row(m, v)),
        }
    }

    /// The last row, if any.
    pub fn finish(&mut self) -> Option<String> {
        self.current.take().map(|(m, v, _)| row(m, v))
    }
}

fn row(minute: i64, value: f64) -> String {
    let t = Utc
        .timestamp_millis_opt(minute * MINUTE_MS)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default();
    format!("{t},{}\n", number(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{Kind, Timestamp};

    fn count(id: &str, t: &str, v: f64, source: &str) -> Sample {
        Sample::new(
            id,
            Kind::ActivityCount,
            Timestamp::parse(t).unwrap(),
            None,
            v,
            Some(source.into()),
        )
    }

    #[test]
    fn minutes_parse_back_with_the_wearable_winning_a_shared_minute() {
        let mut w = MinuteWriter::new();
        let mut text = MinuteWriter::header();
        for s in [
            count("a", "2026-11-29T09:00:10+01:00", 5.0, "Pixel"),
            count("b", "2026-11-29T09:00:20+01:00", 7.5, "Watch"),
            count("c", "2026-11-29T09:03:00+01:00", 2.0, "Pixel"),
        ] {
            text.extend(w.push(&s));
        }
        text.extend(w.finish());
        assert_eq!(
            text,
            "timestamp_utc_iso8601,activity_count\n2026-11-29T08:00:00Z,7.5\n2026-11-29T08:03:00Z,2\n"
        );
        let series = crate::analytics::parse_minute_csv(&text).unwrap();
        assert_eq!(series.present(), &[true, false, false, true]);
    }

    #[test]
    fn long_rows_quote_what_needs_quoting() {
        let s = count("x,1", "2026-11-29T09:00:00+01:00", 3.0, "My \"Watch\"");
        assert_eq!(
            long_row(&s),
            "\"x,1\",activity_count,2026-11-29T09:00:00+01:00,,3,count/min,\"My \"\"Watch\"\"\",,,,,,,,,,\n"
        );
    }
}
