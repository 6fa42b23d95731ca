//! Reading the numbers of a sentence: each with its unit, the precision it is shown at, its
//! sign and the direction word after it; and tracing one to the facts it may come from.
//!
//! Rules: reference phrases ([`REFERENCE`]) are blanked first; then dates, clock times and
//! "7h 05m" durations; then every other number with the unit word after it ("45 minutes",
//! "58 bpm", "89%", "3 recent days", "8,400 steps"), or none (a plain ratio). A number glued to
//! a word (L5, M10, SpO2, PHQ-9) is a name. A number followed by lower/higher/less/more traces
//! only to a difference of that sign; a difference said without one is refused.

use std::sync::LazyLock;

use regex::Regex;

use super::facts::{Fact, Unit};
use super::re;

/// Published reference values and names with numbers in them: not findings.
const REFERENCE: &[&str] = &[
    r"7-9 hours",
    r"at least 7 hours",
    r"usual 85%",
    r"(?:most|least) active (?:5|10) hours",
    r"quietest 5 hours",
    r"24-hour",
    r"30-minute",
    r"under 1%",
];

static REFS: LazyLock<Vec<Regex>> =
    LazyLock::new(|| REFERENCE.iter().map(|r| re(&format!("(?i){r}"))).collect());
pub static CLOCK: LazyLock<Regex> = LazyLock::new(|| re(r"\b([01]?\d|2[0-3]):([0-5]\d)\b"));
static DATE: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{4}-\d{2}-\d{2}\b"));
static HM: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(\d+)\s?h(?:ours?)?\s?(\d{1,2})\s?m(?:in(?:utes?)?)?\b"));
static NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?"));
static UNIT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:\s|-)?(?:(?:recent|earlier|previous|complete|full|counted)\s)?(%|bpm\b|beats per minute|ms\b|minutes?\b|mins?\b|hours?\b|h\b|days?\b|nights?\b|steps?\b|breaths\b|awakenings?\b|kcal\b|times\b)",
    )
});
static DIRECTION: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s+(lower|higher|less|more|fewer|shorter|longer|earlier|later)\b"));

/// A number said in a sentence.
#[derive(Debug, Clone)]
pub struct Said {
    pub text: String,
    pub value: f64,
    /// Half the last shown digit: what the text's rounding allows.
    pub tol: f64,
    pub unit: Unit,
    pub signed: bool,
    /// `Some(true)` for higher/more/longer/later, `Some(false)` for lower/less/...
    pub up: Option<bool>,
}

fn blank(s: &mut String, range: std::ops::Range<usize>) {
    s.replace_range(range.clone(), &" ".repeat(range.len()));
}

fn direction(after: &str) -> Option<bool> {
    DIRECTION
        .captures(after)
        .map(|c| matches!(&c[1], "higher" | "more" | "longer" | "later"))
}

/// Every number of `sentence` with its unit, and the dates it names.
pub fn numbers(sentence: &str) -> (Vec<Said>, Vec<String>) {
    let mut s = sentence.to_owned();
    for r in REFS.iter() {
        for m in r.find_iter(sentence).collect::<Vec<_>>() {
            blank(&mut s, m.range());
        }
    }
    let mut out = Vec::new();
    let dates: Vec<String> = DATE
        .find_iter(&s.clone())
        .map(|m| m.as_str().to_owned())
        .collect();
    for m in DATE.find_iter(&s.clone()) {
        blank(&mut s, m.range());
    }
    for c in CLOCK.captures_iter(&s.clone()) {
        let m = c.get(0).unwrap();
        let h: f64 = c[1].parse().unwrap();
        let min: f64 = c[2].parse().unwrap();
        out.push(Said {
            text: m.as_str().to_owned(),
            value: h + min / 60.0,
            tol: 1.0 / 60.0,
            unit: Unit::Clock,
            signed: false,
            up: direction(&s[m.end()..]),
        });
        blank(&mut s, m.range());
    }
    for c in HM.captures_iter(&s.clone()) {
        let m = c.get(0).unwrap();
        let (h, min): (f64, f64) = (c[1].parse().unwrap(), c[2].parse().unwrap());
        out.push(Said {
            text: m.as_str().to_owned(),
            value: h * 60.0 + min,
            tol: 0.5,
            unit: Unit::Minutes,
            signed: false,
            up: direction(&s[m.end()..]),
        });
        blank(&mut s, m.range());
    }
    for m in NUMBER.find_iter(&s.clone()) {
        let before: Vec<char> = s[..m.start()].chars().rev().take(2).collect();
        let glued = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '.');
        if glued(before.first()) || (before.first() == Some(&'-') && glued(before.get(1))) {
            continue; // part of a name: L5, M10, SpO2, PHQ-9
        }
        let signed = matches!(before.first(), Some('-' | '+' | '−'));
        let raw = m.as_str().replace(',', "");
        let value: f64 = raw.parse().unwrap();
        let decimals = raw.split('.').nth(1).map_or(0, str::len) as i32;
        let tol = 0.5 * 10f64.powi(-decimals);
        let rest = &s[m.end()..];
        let (unit, value, tol, unit_len) = match UNIT.captures(rest) {
            Some(c) => {
                let len = c.get(0).unwrap().end();
                match c[1].to_ascii_lowercase().as_str() {
                    "%" => (Unit::Percent, value, tol, len),
                    "bpm" | "beats per minute" => (Unit::Bpm, value, tol, len),
                    "ms" => (Unit::Ms, value, tol, len),
                    "hour" | "hours" | "h" => (Unit::Minutes, value * 60.0, tol * 60.0, len),
                    "day" | "days" => (Unit::Days, value, tol, len),
                    "step" | "steps" => (Unit::Steps, value, tol, len),
                    "breaths" => (Unit::Breaths, value, tol, len),
                    "kcal" => (Unit::Kcal, value, tol, len),
                    "night" | "nights" | "awakening" | "awakenings" | "times" => {
                        (Unit::Count, value, tol, len)
                    }
                    _ => (Unit::Minutes, value, tol, len),
                }
            }
            None => (Unit::Plain, value, tol, 0),
        };
        out.push(Said {
            text: m.as_str().to_owned(),
            value,
            tol: tol + 1e-9,
            unit,
            signed,
            up: direction(&rest[unit_len..]),
        });
    }
    (out, dates)
}

/// `fact`'s value in the unit of `said`, when the two can be compared.
fn in_unit(said: Unit, f: &Fact) -> Option<f64> {
    use Unit::*;
    match (said, f.unit) {
        (Percent, Share) => Some(f.value * 100.0),
        (Days, Count) | (Count, Days) => Some(f.value),
        (Plain, Count) => Some(f.value),
        (a, b) if a == b => Some(f.value),
        _ => None,
    }
}

fn close(said: &Said, v: f64) -> bool {
    if said.unit == Unit::Clock {
        let d = (said.value - v).rem_euclid(24.0);
        d.min(24.0 - d) <= said.tol + 1e-9
    } else {
        (said.value - v).abs() <= said.tol
    }
}

/// Where `said` comes from, or why it does not trace.
pub fn trace<'f>(said: &Said, facts: &'f [Fact]) -> Result<&'f Fact, String> {
    let candidates = facts
        .iter()
        .filter_map(|f| in_unit(said.unit, f).map(|v| (f, v)));
    if let Some(up) = said.up {
        return candidates
            .filter(|(f, v)| f.delta && (*v > 0.0) == up && close(said, v.abs()))
            .map(|(f, _)| f)
            .next()
            .ok_or_else(|| {
                format!(
                    "{} ({:?}) is said as a change ({}) but is no difference field of that sign",
                    said.text,
                    said.unit,
                    if up { "higher" } else { "lower" }
                )
            });
    }
    let matching: Vec<&Fact> = candidates
        .filter(|(f, v)| close(said, if f.delta { v.abs() } else { *v }))
        .map(|(f, _)| f)
        .collect();
    match matching.iter().find(|f| !f.delta) {
        Some(f) => Ok(f),
        None if !matching.is_empty() => Err(format!(
            "{} is the difference {} but is said without lower/higher, as if it were a value",
            said.text, matching[0].path
        )),
        None => Err(format!(
            "{} ({:?}) is in no field of the analysis or its features",
            said.text, said.unit
        )),
    }
}
