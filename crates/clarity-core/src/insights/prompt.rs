//! The prompt sent to a model and the shape its answer must have.
//!
//! Rules: the prompt holds only derived [`Features`] (no email, name, user id or sample rows);
//! any change to its wording or to the features bumps [`PROMPT_VERSION`], which is stored with
//! every insight so that old and new texts can be told apart. Changes against the previous
//! report are not in the feature values: they follow in words, labelled as differences, so
//! that a model cannot read an IS change of -0.18 as an IS of -0.18.

use serde_json::{Value, json};

use super::features::Features;
use super::text::{difference, minutes_difference};

/// v2: changes as labelled differences in words; `span_minutes`; windows shorter than a week.
/// v3: nights from the device's sleep stages (`stage_nights`, deep and REM minutes); heart
/// trends (resting heart rate, HRV as SDNN and as RMSSD) in words; step data
/// (`activity_kind` step_count, `active_hours`): what steps can and cannot say.
/// v4: steps a day (`steps_per_day_mean` over `step_days` complete days).
pub const PROMPT_VERSION: &str = "insight-v5";

const MAX_SUMMARY: usize = 600;
const MAX_ITEM: usize = 400;
const MAX_ITEMS: usize = 8;

pub struct Prompt {
    pub system: &'static str,
    pub user: String,
}

const SYSTEM: &str = "You are a careful sleep and circadian-rhythm coach writing for the wearer of \
an activity tracker. You receive features computed from up to one week of minute-level \
actigraphy and, where the device records them, its sleep stages. Write in plain, kind, non-alarming English for a lay reader. Use only the numbers \
given; do not invent values, diagnoses or medical advice; say when data coverage is too low or \
the window too short to be sure. Give durations under an hour in minutes. A change against the \
previous report is a difference, not a value: say it as 'higher' or 'lower than before'. \
Answer with JSON matching the response schema: a one- or two-sentence summary, 2 to 6 key \
points, and 1 to 4 concrete recommendations.";

pub fn build(features: &Features) -> Prompt {
    let values = Features {
        change: None,
        // The heart trends follow in words, their changes labelled as differences.
        heart: None,
        ..features.clone()
    };
    let values = serde_json::to_string_pretty(&values).unwrap_or_else(|_| "{}".into());
    let mut user = format!(
        "Features of the analysed window, up to the last week (days and span_minutes: its \
         length; sleep in minutes per night, from the device's sleep stages on stage_nights \
         of the nights and from the Sadeh algorithm on the others, so nights counts every \
         night recorded either way; efficiency and awakenings from the stages when there are \
         any; deep and REM minutes only from stages; interdaily_stability 0-1, higher = more regular days; intradaily_variability, higher = more fragmented (with activity_kind step_count: \
         steps come in bursts of walking, and an hour without steps is not rest); \
         relative_amplitude 0-1, higher = stronger day-night contrast; clock times are \
         local; a measure that is absent or null is not supported by the data: say nothing \
         about it):\n{values}"
    );
    let heart = features
        .heart
        .as_ref()
        .map(super::heart::prompt_lines)
        .unwrap_or_default();
    if !heart.is_empty() {
        user.push_str(
            "\n\nHeart trends within this window, recent days against earlier days (the numbers \
             after 'lower' or 'higher' are differences, not values; SDNN and RMSSD are different \
             measures of heart rate variability and must never be compared with each other):",
        );
        for line in heart {
            user.push_str("\n- ");
            user.push_str(&line);
        }
    }
    if features.is_steps() {
        user.push_str(
            "\n\nThe activity is step counts from a phone or watch, not actigraphy counts: the \
             rhythm measures ran on steps; no sleep is estimated from steps (sleep comes only from the device's sleep \
             stages, when there are any; do not say that no night was recorded, and do not ask \
             to wear a device day and night); coverage is \
             the share of minutes in hours when the phone or watch was recording. \
             active_hours are the local clock hours with any steps: never place a peak of \
             activity outside them.",
        );
    }
    if features.steps_per_day_mean.is_some() {
        user.push_str(
            "\n\nsteps_per_day_mean is the mean of the daily step totals over step_days \
             complete local days (partial first and last days are left out): say it as steps a \
             day over that many days.",
        );
    }
    let changes = features
        .change
        .as_ref()
        .map(change_lines)
        .unwrap_or_default();
    if !changes.is_empty() {
        user.push_str(
            "\n\nChanges since the previous report. These are differences (this window minus the \
             previous report), not values of the measures; the current values are above:",
        );
        for line in changes {
            user.push_str("\n- ");
            user.push_str(&line);
        }
    }
    Prompt {
        system: SYSTEM,
        user,
    }
}

/// One line per known difference, in words with the signed number labelled as a difference.
fn change_lines(c: &super::features::Change) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(d) = c.sleep_minutes_mean_delta {
        lines.push(format!(
            "sleep per night: {} than in the previous report (sleep_minutes_mean_delta {d:+.1} minutes)",
            minutes_difference(d)
        ));
    }
    if let Some(d) = c.interdaily_stability_delta {
        lines.push(format!(
            "interdaily stability: {} in the previous report (interdaily_stability_delta {d:+.3})",
            difference(d, 2)
        ));
    }
    if let Some(d) = c.relative_amplitude_delta {
        lines.push(format!(
            "relative amplitude: {} in the previous report (relative_amplitude_delta {d:+.3})",
            difference(d, 2)
        ));
    }
    lines
}

/// The `responseSchema` (OpenAPI subset Gemini accepts).
pub fn response_schema() -> Value {
    json!({
        "type": "OBJECT",
        "properties": {
            "summary": {"type": "STRING"},
            "key_points": {"type": "ARRAY", "items": {"type": "STRING"}},
            "recommendations": {"type": "ARRAY", "items": {"type": "STRING"}},
        },
        "required": ["summary", "key_points", "recommendations"],
        "propertyOrdering": ["summary", "key_points", "recommendations"],
    })
}

/// Checks a model answer against our insight shape.
pub fn validate(v: &Value) -> Result<(String, Vec<String>, Vec<String>), String> {
    let text = |x: &Value, what: &str| -> Result<String, String> {
        let s = x
            .as_str()
            .ok_or_else(|| format!("{what} is not a string"))?
            .trim();
        if s.is_empty() {
            return Err(format!("{what} is empty"));
        }
        if s.chars().count() > MAX_ITEM.max(MAX_SUMMARY) {
            return Err(format!("{what} is too long"));
        }
        Ok(s.to_owned())
    };
    let list = |x: &Value, what: &str, min: usize| -> Result<Vec<String>, String> {
        let items = x
            .as_array()
            .ok_or_else(|| format!("{what} is not an array"))?;
        if items.len() < min || items.len() > MAX_ITEMS {
            return Err(format!("{what} must have {min}-{MAX_ITEMS} items"));
        }
        items
            .iter()
            .map(|i| text(i, what))
            .collect::<Result<Vec<_>, _>>()
    };
    let summary = text(&v["summary"], "summary")?;
    if summary.chars().count() > MAX_SUMMARY {
        return Err("summary is too long".into());
    }
    Ok((
        summary,
        list(&v["key_points"], "key_points", 1)?,
        list(&v["recommendations"], "recommendations", 0)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_nights_reach_the_prompt_with_what_they_mean() {
        let f = Features {
            nights: 3,
            stage_nights: 3,
            sleep_minutes_mean: Some(416.7),
            deep_minutes_mean: Some(45.0),
            rem_minutes_mean: Some(63.3),
            ..Features::default()
        };
        let p = build(&f);
        for needle in [
            "\"stage_nights\": 3",
            "\"deep_minutes_mean\": 45.0",
            "\"rem_minutes_mean\": 63.3",
            "from the device's sleep stages on stage_nights",
        ] {
            assert!(p.user.contains(needle), "{needle}: {}", p.user);
        }
        // Without stages the features read as before: no stage field at all.
        let p = build(&Features::default());
        assert!(!p.user.contains("stage_nights\":"), "{}", p.user);
        assert!(!p.user.contains("deep_minutes_mean"), "{}", p.user);
    }
}
