//! Reader for the reference input format: `timestamp_utc_iso8601,activity_count`.
//!
//! Rules:
//! - The first line is exactly that header (a UTF-8 BOM and surrounding spaces are tolerated).
//! - One row a minute: an RFC 3339 time on a whole minute, strictly increasing; a jump of more
//!   than a minute leaves the minutes in between missing.
//! - An empty count is a missing minute; anything else must be a finite number >= 0.
//! - Blank lines are skipped; CRLF line ends are accepted.
//! - Every refusal names the 1-based line; nothing panics on any input. A series may span at
//!   most [`MAX_MINUTES`], so a wild timestamp cannot make the reader allocate gigabytes.

use std::fmt;

use chrono::DateTime;

use super::series::{MINUTE_MS, MinuteSeries};

pub const HEADER: &str = "timestamp_utc_iso8601,activity_count";
/// Two years of minutes.
pub const MAX_MINUTES: usize = 2 * 366 * 1440;

/// A refused input: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for CsvError {}

fn err(line: usize, reason: impl Into<String>) -> CsvError {
    CsvError {
        line,
        reason: reason.into(),
    }
}

/// Parses the whole text into a minute series.
pub fn parse_minute_csv(text: &str) -> Result<MinuteSeries, CsvError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let header = lines.next().map(|(_, l)| l).unwrap_or_default();
    let header = header.strip_prefix('\u{feff}').unwrap_or(header).trim();
    if header != HEADER {
        return Err(err(1, format!("expected the header `{HEADER}`")));
    }

    let mut start_ms: Option<i64> = None;
    let mut counts: Vec<f64> = Vec::new();
    let mut present: Vec<bool> = Vec::new();
    for (n, line) in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split(',');
        let (Some(ts), Some(count), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(err(n, "expected two fields: timestamp,count"));
        };
        let ts = ts.trim();
        let t = DateTime::parse_from_rfc3339(ts)
            .map_err(|e| err(n, format!("timestamp `{ts}` is not RFC 3339: {e}")))?;
        let ms = t.timestamp_millis();
        if ms.rem_euclid(MINUTE_MS) != 0 {
            return Err(err(n, format!("timestamp `{ts}` is not on a whole minute")));
        }
        let value = parse_count(count.trim()).map_err(|reason| err(n, reason))?;

        let index = match start_ms {
            None => {
                start_ms = Some(ms);
                0
            }
            Some(start) => {
                let minutes = (ms - start) / MINUTE_MS;
                let index = usize::try_from(minutes).unwrap_or(0);
                if minutes < 0 || index < counts.len() {
                    return Err(err(n, format!("timestamp `{ts}` does not increase")));
                }
                index
            }
        };
        if index >= MAX_MINUTES {
            return Err(err(
                n,
                format!("the series would exceed {MAX_MINUTES} minutes"),
            ));
        }
        counts.resize(index, 0.0);
        present.resize(index, false);
        counts.push(value.unwrap_or(0.0));
        present.push(value.is_some());
    }

    let Some(start) = start_ms else {
        return Err(err(2, "no data rows after the header"));
    };
    MinuteSeries::new(start, counts, present)
        .map_err(|e| err(1, format!("the series is not valid: {e}")))
}

/// `Ok(None)` for an empty (missing) count.
fn parse_count(s: &str) -> Result<Option<f64>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        _ => Err(format!(
            "activity_count `{s}` is not a finite number >= 0 (empty means missing)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<MinuteSeries, CsvError> {
        parse_minute_csv(&format!("{HEADER}\n{body}"))
    }

    #[test]
    fn gaps_and_empty_counts_are_missing() {
        let s =
            parse("2024-03-04T00:00:00Z,5\r\n2024-03-04T00:01:00Z,\n\n2024-03-04T00:04:00Z,7.5\n")
                .unwrap();
        assert_eq!(s.start_utc_ms(), 1_709_510_400_000);
        assert_eq!(s.present(), &[true, false, false, false, true]);
        assert_eq!(s.counts(), &[5.0, 0.0, 0.0, 0.0, 7.5]);
    }

    #[test]
    fn offsets_are_instants() {
        let s = parse("2024-03-04T01:00:00+01:00,1\n2024-03-04T00:01:00Z,2\n").unwrap();
        assert_eq!(s.start_utc_ms(), 1_709_510_400_000);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            (
                "2024-03-04T00:00:00Z,1\n2024-03-04T00:00:00Z,2\n",
                3,
                "does not increase",
            ),
            (
                "2024-03-04T00:01:00Z,1\n2024-03-04T00:00:00Z,2\n",
                3,
                "does not increase",
            ),
            ("2024-03-04T00:00:30Z,1\n", 2, "whole minute"),
            ("2024-03-04 00:00,1\n", 2, "RFC 3339"),
            ("2024-03-04T00:00:00Z\n", 2, "two fields"),
            ("2024-03-04T00:00:00Z,1,2\n", 2, "two fields"),
            ("2024-03-04T00:00:00Z,NaN\n", 2, "finite"),
            ("2024-03-04T00:00:00Z,-3\n", 2, "finite"),
            ("2024-03-04T00:00:00Z,inf\n", 2, "finite"),
            (
                "2024-03-04T00:00:00Z,1\n2124-03-04T00:00:00Z,2\n",
                3,
                "exceed",
            ),
            ("", 2, "no data rows"),
        ];
        for (body, line, text) in cases {
            let e = parse(body).unwrap_err();
            assert_eq!(e.line, line, "{body:?}: {e}");
            assert!(e.to_string().contains(text), "{body:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")));
        }
        assert_eq!(parse_minute_csv("").unwrap_err().line, 1);
        assert_eq!(parse_minute_csv("time,count\n").unwrap_err().line, 1);
        assert!(parse_minute_csv(&format!("\u{feff}{HEADER}\n2024-03-04T00:00:00Z,1")).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}", body in "[0-9TZ:,.\\-\n+e]{0,200}") {
            let _ = parse_minute_csv(&text);
            let _ = parse(&body);
        }
    }
}
