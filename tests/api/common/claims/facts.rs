//! What an insight may cite: the numbers of an analysis document (every numeric leaf, plus the
//! few derived values the insight features are documented to take from it), each with the
//! unit its field name or its `unit` sibling gives; and the check that every insight feature
//! is one of them.
//!
//! Rules:
//! - A unit comes from the nearest path segment that names one (`*_minutes`, `*bpm*`, `*_ms`,
//!   `*pct*`, `coverage`, `*hours*`, `*days*`, `*steps*`, ...) or from a `unit` string next to
//!   the value; a segment with `delta` or `change` marks a difference, which text may only say
//!   as "lower/higher than".
//! - Derived values are the features' documented definitions, written again here and not
//!   taken from the server: the window's span and coverage, the nights that count (stage
//!   nights, and actigraphy nights with at least 80 % of their minutes), their sleep, spread,
//!   efficiency, awakenings and deep/REM means, the clock hours with activity, and the mean
//!   steps a day over the complete days of `activity.days` (partial days left out).

use serde_json::Value;

/// A night counts for sleep averages when at least this share of its minutes has data
/// (insights::features, FULL_NIGHT_SHARE).
const FULL_NIGHT_MINUTES: f64 = 0.8 * 1440.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Minutes,
    Bpm,
    Ms,
    /// Percentage points (0-100).
    Percent,
    /// A share 0-1, said as a percentage.
    Share,
    /// Local clock, in hours.
    Clock,
    Days,
    Count,
    Steps,
    Breaths,
    Kcal,
    /// No unit (IS, IV, RA, mesor...).
    Plain,
}

#[derive(Debug, Clone)]
pub struct Fact {
    pub path: String,
    pub value: f64,
    pub unit: Unit,
    /// A difference (this window minus an earlier one), not a value.
    pub delta: bool,
}

fn unit_of_segment(s: &str) -> Option<Unit> {
    let s = s.to_ascii_lowercase();
    let unit = if s.contains("minutes") {
        Unit::Minutes
    } else if s.contains("bpm") {
        Unit::Bpm
    } else if s.ends_with("_ms") || s == "ms" {
        Unit::Ms
    } else if s.contains("pct") || s.contains("efficiency") {
        Unit::Percent
    } else if s == "coverage" || s.contains("share") {
        Unit::Share
    } else if s.contains("hours") {
        Unit::Clock
    } else if s.contains("days") {
        Unit::Days
    } else if s.contains("steps") {
        Unit::Steps
    } else if s.contains("respiratory") {
        Unit::Breaths
    } else if s.contains("kcal") || s.contains("energy") {
        Unit::Kcal
    } else if s.contains("awakenings") || s == "nights" || s.ends_with("_nights") {
        Unit::Count
    } else {
        return None;
    };
    Some(unit)
}

fn unit_of_string(u: &str) -> Option<Unit> {
    Some(match u {
        "bpm" | "count/min" => Unit::Bpm,
        "ms" => Unit::Ms,
        "%" => Unit::Percent,
        "min" | "minutes" => Unit::Minutes,
        "breaths/min" => Unit::Breaths,
        "kcal" => Unit::Kcal,
        _ => return None,
    })
}

/// Every numeric leaf under `v`, its path starting with `root`.
pub fn leaves(v: &Value, root: &str) -> Vec<Fact> {
    let mut out = Vec::new();
    walk(v, &mut vec![root.to_owned()], None, &mut out);
    out
}

fn walk(v: &Value, path: &mut Vec<String>, sibling_unit: Option<Unit>, out: &mut Vec<Fact>) {
    match v {
        Value::Number(n) => {
            let Some(x) = n.as_f64() else { return };
            let unit = path
                .iter()
                .rev()
                .find_map(|s| unit_of_segment(s))
                .or(sibling_unit)
                .unwrap_or(Unit::Plain);
            let delta = path
                .iter()
                .any(|s| s.contains("delta") || s == "change" || s.ends_with("_change"));
            out.push(Fact {
                path: path.join("."),
                value: x,
                unit,
                delta,
            });
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                walk(item, path, sibling_unit, out);
                path.pop();
            }
        }
        Value::Object(map) => {
            let unit = map
                .get("unit")
                .and_then(Value::as_str)
                .and_then(unit_of_string)
                .or(sibling_unit);
            for (k, item) in map {
                path.push(k.clone());
                walk(item, path, unit, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn fact(path: &str, value: f64, unit: Unit) -> Fact {
    Fact {
        path: path.to_owned(),
        value,
        unit,
        delta: false,
    }
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

fn sd(xs: &[f64]) -> Option<f64> {
    let m = mean(xs)?;
    (xs.len() > 1)
        .then(|| (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt())
}

fn time(v: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()
}

/// Minutes the analysed window spans.
pub fn span_minutes(a: &Value) -> Option<f64> {
    let (from, to) = (time(&a["window"]["from"])?, time(&a["window"]["to"])?);
    Some((to - from).num_minutes() as f64).filter(|m| *m > 0.0)
}

/// Share of the window's minutes with activity data.
pub fn coverage(a: &Value) -> Option<f64> {
    Some(a["minutes_present"].as_f64()? / span_minutes(a)?)
}

pub fn nights(a: &Value) -> Vec<Value> {
    a["sleep"]["nights"].as_array().cloned().unwrap_or_default()
}

pub fn is_stage_night(n: &Value) -> bool {
    n["method"] == "stages"
}

/// A night whose whole length is known: built from stages, or an actigraphy night with at
/// least 80 % of its minutes.
pub fn is_complete_night(n: &Value) -> bool {
    is_stage_night(n) || n["minutes_present"].as_f64().unwrap_or(0.0) >= FULL_NIGHT_MINUTES
}

/// Local clock hours (0-23) whose hourly activity mean is above zero on some day.
pub fn active_hours(a: &Value) -> Option<Vec<u32>> {
    let hourly = &a["activity"]["hourly"];
    let first = chrono::Timelike::hour(&time(&hourly["start"])?);
    let means = hourly["means"].as_array()?;
    let mut hours: Vec<u32> = means
        .iter()
        .enumerate()
        .filter(|(_, m)| m.as_f64().is_some_and(|x| x > 0.0))
        .map(|(i, _)| (first + i as u32) % 24)
        .collect();
    hours.sort_unstable();
    hours.dedup();
    Some(hours)
}

/// Every number of the analysis an insight may cite, derived values included.
pub fn of_analysis(a: &Value) -> Vec<Fact> {
    let mut out = leaves(a, "analysis");
    // Chart data and clock offsets are no findings: a number that matches one by chance must
    // not count as traced.
    out.retain(|f| !f.path.ends_with("utc_offset_minutes") && !f.path.contains("hourly"));
    if let Some(m) = span_minutes(a) {
        out.push(fact("window span", m, Unit::Minutes));
        out.push(fact("window span in days", m / 1440.0, Unit::Days));
    }
    if let Some(c) = coverage(a) {
        out.push(fact("minutes_present / window span", c, Unit::Share));
    }
    let all = nights(a);
    let counted: Vec<&Value> = all.iter().filter(|n| is_complete_night(n)).collect();
    let staged: Vec<&Value> = all.iter().filter(|n| is_stage_night(n)).collect();
    let sleep: Vec<f64> = counted
        .iter()
        .filter_map(|n| {
            if is_stage_night(n) {
                n["asleep_minutes"].as_f64()
            } else {
                n["sadeh_sleep_minutes"].as_f64()
            }
        })
        .collect();
    out.push(fact(
        "count of complete nights",
        sleep.len() as f64,
        Unit::Count,
    ));
    out.push(fact(
        "count of stage nights",
        staged.len() as f64,
        Unit::Count,
    ));
    let mut push = |path: &str, v: Option<f64>, unit| {
        if let Some(v) = v {
            out.push(fact(path, v, unit));
        }
    };
    push("mean sleep of complete nights", mean(&sleep), Unit::Minutes);
    push("sd of sleep of complete nights", sd(&sleep), Unit::Minutes);
    // Efficiency and awakenings: the stage nights' when there are any, else the periods'.
    let periods = a["sleep"]["periods"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let source: Vec<&Value> = if staged.is_empty() {
        periods.iter().collect()
    } else {
        staged.clone()
    };
    let of = |k: &str| -> Vec<f64> { source.iter().filter_map(|n| n[k].as_f64()).collect() };
    push(
        "mean efficiency",
        mean(&of("efficiency_pct")),
        Unit::Percent,
    );
    push("mean awakenings", mean(&of("awakenings")), Unit::Count);
    let detailed: Vec<&&Value> = staged
        .iter()
        .filter(|n| {
            ["light_minutes", "deep_minutes", "rem_minutes"]
                .iter()
                .any(|k| n[*k].as_f64().is_some_and(|m| m > 0.0))
        })
        .collect();
    for k in ["deep_minutes", "rem_minutes"] {
        let xs: Vec<f64> = detailed.iter().filter_map(|n| n[k].as_f64()).collect();
        push(
            &format!("mean {k} of stage nights"),
            mean(&xs),
            Unit::Minutes,
        );
    }
    // Steps a day: the complete days with steps only (insights::features).
    let step_totals: Vec<f64> = a["activity"]["days"]
        .as_array()
        .map(|days| {
            days.iter()
                .filter(|d| d["complete"] == true)
                .filter_map(|d| d["steps"].as_f64())
                .collect()
        })
        .unwrap_or_default();
    push(
        "mean steps of the complete days with steps",
        mean(&step_totals),
        Unit::Steps,
    );
    if !step_totals.is_empty() {
        push(
            "count of complete days with steps",
            Some(step_totals.len() as f64),
            Unit::Days,
        );
    }
    for h in active_hours(a).unwrap_or_default() {
        push(
            "a clock hour with activity",
            Some(f64::from(h)),
            Unit::Clock,
        );
    }
    for (k, list) in [
        ("sleep.nights", &a["sleep"]["nights"]),
        ("heart.days", &a["heart"]["days"]),
        ("activity.days", &a["activity"]["days"]),
    ] {
        if let Some(l) = list.as_array() {
            push(&format!("count of {k}"), Some(l.len() as f64), Unit::Count);
        }
    }
    out
}

/// Every string of the analysis (dates, clock times, methods, sources, kinds).
pub fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.values().for_each(|i| strings(i, out)),
        _ => {}
    }
}

/// How close a feature must be to its source: the feature's documented rounding.
fn feature_tolerance(unit: Unit) -> f64 {
    match unit {
        Unit::Plain | Unit::Share => 0.0005,
        Unit::Days | Unit::Clock => 0.005,
        Unit::Steps => 0.5,
        _ => 0.05,
    }
}

fn compatible(a: Unit, b: Unit) -> bool {
    a == b
        || matches!(
            (a, b),
            (Unit::Days, Unit::Count) | (Unit::Count, Unit::Days)
        )
}

/// Each feature traced to the analysis; `previous` (the earlier insight's features) checks
/// `features.change`. Returns what does not trace.
pub fn untraced_features(
    features: &Value,
    analysis: &Value,
    previous: Option<&Value>,
) -> Vec<String> {
    let facts = of_analysis(analysis);
    let mut texts = Vec::new();
    strings(analysis, &mut texts);
    let mut bad = Vec::new();
    let mut values = features.clone();
    let change = values
        .as_object_mut()
        .and_then(|m| m.remove("change"))
        .filter(|c| !c.is_null());
    for f in leaves(&values, "features") {
        let tol = feature_tolerance(f.unit) + 1e-9;
        let traced = facts
            .iter()
            .any(|a| compatible(a.unit, f.unit) && (a.value - f.value).abs() <= tol);
        if !traced {
            bad.push(format!(
                "{} = {} ({:?}) is no field of the analysis",
                f.path, f.value, f.unit
            ));
        }
    }
    let mut feature_strings = Vec::new();
    strings(&values, &mut feature_strings);
    for s in feature_strings {
        if !texts.contains(&s) {
            bad.push(format!(
                "features string {s:?} is in no field of the analysis"
            ));
        }
    }
    if let Some(change) = change {
        let Some(prev) = previous else {
            bad.push(format!(
                "features.change {change} without the previous features to check it against"
            ));
            return bad;
        };
        for d in leaves(&change, "features.change") {
            let name = d.path.rsplit('.').next().unwrap_or("");
            let measure = name.trim_end_matches("_delta");
            let (now, before) = (features[measure].as_f64(), prev[measure].as_f64());
            let ok = match (now, before) {
                (Some(n), Some(b)) => (n - b - d.value).abs() <= 0.0005 + 1e-9,
                _ => false,
            };
            if !ok {
                bad.push(format!(
                    "{} = {} is not {measure} now ({now:?}) minus before ({before:?})",
                    d.path, d.value
                ));
            }
        }
    }
    bad
}

/// Facts of the insight's features (already traced by [`untraced_features`]).
pub fn of_features(features: &Value) -> Vec<Fact> {
    leaves(features, "features")
}
