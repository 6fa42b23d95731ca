//! The phone platforms' vocabulary: HealthKit identifiers and Health Connect record types ->
//! Clarity kinds (with the unit to send), both platforms' sleep stage values -> [`SleepStage`],
//! and workout activity types -> Clarity's `activity` strings.
//!
//! Rules:
//! - This is the one place in code where the mapping lives; docs/phone-data.md shows it (a
//!   test checks that every identifier and stage value here appears there).
//! - A platform type without a Clarity kind is not in the table (never mapped to a near one).
//! - Stage values are accepted on input under both platforms' names as well as Clarity's, so
//!   an app can send what it holds; they are stored and sent back as Clarity's names.

use super::{Kind, SleepStage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    HealthKit,
    HealthConnect,
}

/// One platform type and the Clarity kind it becomes.
#[derive(Debug, Clone, Copy)]
pub struct KindMapping {
    pub platform: Platform,
    /// HealthKit type identifier or Health Connect record class.
    pub identifier: &'static str,
    pub kind: Kind,
    /// The unit to send the platform's value in (one Clarity accepts for `kind`).
    pub unit: Option<&'static str>,
    /// What to send as `value` (and the extra fields), where it is not plain.
    pub note: &'static str,
}

const fn hk(identifier: &'static str, kind: Kind, unit: &'static str) -> KindMapping {
    KindMapping {
        platform: Platform::HealthKit,
        identifier,
        kind,
        unit: Some(unit),
        note: "",
    }
}

const fn hc(identifier: &'static str, kind: Kind, unit: &'static str) -> KindMapping {
    KindMapping {
        platform: Platform::HealthConnect,
        identifier,
        kind,
        unit: Some(unit),
        note: "",
    }
}

const fn noted(m: KindMapping, note: &'static str) -> KindMapping {
    KindMapping { note, ..m }
}

pub const KINDS: &[KindMapping] = &[
    hk(
        "HKQuantityTypeIdentifierStepCount",
        Kind::StepCount,
        "count",
    ),
    hk(
        "HKQuantityTypeIdentifierHeartRate",
        Kind::HeartRate,
        "count/min",
    ),
    hk(
        "HKQuantityTypeIdentifierHeartRateVariabilitySDNN",
        Kind::HeartRateVariability,
        "ms",
    ),
    hk(
        "HKQuantityTypeIdentifierRestingHeartRate",
        Kind::RestingHeartRate,
        "count/min",
    ),
    hk(
        "HKQuantityTypeIdentifierRespiratoryRate",
        Kind::RespiratoryRate,
        "count/min",
    ),
    noted(
        hk(
            "HKQuantityTypeIdentifierOxygenSaturation",
            Kind::OxygenSaturation,
            "1",
        ),
        "HealthKit's percent unit gives a fraction (0.97); it is stored as 97 %",
    ),
    noted(
        hk(
            "HKQuantityTypeIdentifierBodyTemperature",
            Kind::BodyTemperature,
            "degC",
        ),
        "or `degF`, converted to degC",
    ),
    noted(
        hk(
            "HKCorrelationTypeIdentifierBloodPressure",
            Kind::BloodPressure,
            "mmHg",
        ),
        "value = HKQuantityTypeIdentifierBloodPressureSystolic, diastolic = HKQuantityTypeIdentifierBloodPressureDiastolic",
    ),
    noted(
        hk(
            "HKQuantityTypeIdentifierBloodGlucose",
            Kind::BloodGlucose,
            "mg/dL",
        ),
        "or `mmol/L`, converted to mg/dL",
    ),
    noted(
        hk(
            "HKQuantityTypeIdentifierActiveEnergyBurned",
            Kind::ActiveEnergy,
            "kcal",
        ),
        "or `kJ`, converted to kcal",
    ),
    noted(
        hk(
            "HKQuantityTypeIdentifierDistanceWalkingRunning",
            Kind::Distance,
            "m",
        ),
        "or `km`, `mi`, `ft`, `yd`, converted to m",
    ),
    noted(
        hk("HKQuantityTypeIdentifierBodyMass", Kind::BodyMass, "kg"),
        "or `lb`, `g`, `st`, converted to kg",
    ),
    noted(
        hk("HKWorkoutTypeIdentifier", Kind::Workout, "kcal"),
        "value = totalEnergyBurned, activity = the HKWorkoutActivityType case name",
    ),
    noted(
        hk(
            "HKCategoryTypeIdentifierMindfulSession",
            Kind::MindfulSession,
            "min",
        ),
        "value = the session's minutes (end - start)",
    ),
    KindMapping {
        platform: Platform::HealthKit,
        identifier: "HKCategoryTypeIdentifierSleepAnalysis",
        kind: Kind::SleepStage,
        unit: None,
        note: "value = the HKCategoryValueSleepAnalysis case (table below)",
    },
    noted(
        hk("HKStateOfMindTypeIdentifier", Kind::Mood, "1"),
        "value = HKStateOfMind.valence (-1..1)",
    ),
    noted(
        hk(
            "HKScoredAssessmentTypeIdentifierPHQ9",
            Kind::Phq9,
            "{score}",
        ),
        "value = HKPHQ9Assessment.score",
    ),
    noted(
        hk(
            "HKScoredAssessmentTypeIdentifierGAD7",
            Kind::Gad7,
            "{score}",
        ),
        "value = HKGAD7Assessment.score",
    ),
    hc("StepsRecord", Kind::StepCount, "count"),
    noted(
        hc("HeartRateRecord", Kind::HeartRate, "count/min"),
        "one sample per entry of `samples`",
    ),
    hc(
        "HeartRateVariabilityRmssdRecord",
        Kind::HeartRateVariabilityRmssd,
        "ms",
    ),
    hc(
        "RestingHeartRateRecord",
        Kind::RestingHeartRate,
        "count/min",
    ),
    hc("RespiratoryRateRecord", Kind::RespiratoryRate, "count/min"),
    noted(
        hc("OxygenSaturationRecord", Kind::OxygenSaturation, "%"),
        "Percentage is 0-100",
    ),
    hc("BodyTemperatureRecord", Kind::BodyTemperature, "degC"),
    noted(
        hc("BloodPressureRecord", Kind::BloodPressure, "mmHg"),
        "value = systolic, diastolic = diastolic",
    ),
    noted(
        hc("BloodGlucoseRecord", Kind::BloodGlucose, "mmol/L"),
        "level.inMillimolesPerLiter, converted to mg/dL",
    ),
    hc("ActiveCaloriesBurnedRecord", Kind::ActiveEnergy, "kcal"),
    hc("DistanceRecord", Kind::Distance, "m"),
    hc("WeightRecord", Kind::BodyMass, "kg"),
    noted(
        hc("ExerciseSessionRecord", Kind::Workout, "kcal"),
        "value = the session's ActiveCaloriesBurnedRecord total, activity = the EXERCISE_TYPE_ constant's name",
    ),
    noted(
        hc("MindfulnessSessionRecord", Kind::MindfulSession, "min"),
        "value = the session's minutes (end - start)",
    ),
    KindMapping {
        platform: Platform::HealthConnect,
        identifier: "SleepSessionRecord",
        kind: Kind::SleepStage,
        unit: None,
        note: "one sample per entry of `stages`, value = its STAGE_TYPE_ (table below)",
    },
];

/// One platform sleep stage value and the stage it becomes.
#[derive(Debug, Clone, Copy)]
pub struct StageMapping {
    pub platform: Platform,
    /// The platform's name: HealthKit's HKCategoryValueSleepAnalysis case, Health Connect's
    /// SleepSessionRecord constant.
    pub name: &'static str,
    pub stage: SleepStage,
}

const fn hk_stage(name: &'static str, stage: SleepStage) -> StageMapping {
    StageMapping {
        platform: Platform::HealthKit,
        name,
        stage,
    }
}

const fn hc_stage(name: &'static str, stage: SleepStage) -> StageMapping {
    StageMapping {
        platform: Platform::HealthConnect,
        name,
        stage,
    }
}

pub const STAGES: &[StageMapping] = &[
    hk_stage("inBed", SleepStage::InBed),
    hk_stage("asleepUnspecified", SleepStage::Asleep),
    // The pre-iOS 16 name of asleepUnspecified (same raw value).
    hk_stage("asleep", SleepStage::Asleep),
    hk_stage("awake", SleepStage::Awake),
    hk_stage("asleepCore", SleepStage::Light),
    hk_stage("asleepDeep", SleepStage::Deep),
    hk_stage("asleepREM", SleepStage::Rem),
    // In a session, yet nothing known of the state: in bed, not asleep.
    hc_stage("STAGE_TYPE_UNKNOWN", SleepStage::InBed),
    hc_stage("STAGE_TYPE_AWAKE", SleepStage::Awake),
    hc_stage("STAGE_TYPE_SLEEPING", SleepStage::Asleep),
    hc_stage("STAGE_TYPE_OUT_OF_BED", SleepStage::OutOfBed),
    hc_stage("STAGE_TYPE_LIGHT", SleepStage::Light),
    hc_stage("STAGE_TYPE_DEEP", SleepStage::Deep),
    hc_stage("STAGE_TYPE_REM", SleepStage::Rem),
    hc_stage("STAGE_TYPE_AWAKE_IN_BED", SleepStage::Awake),
];

/// HealthKit's full enum prefix (`HKCategoryValueSleepAnalysisAsleepCore`).
const HK_STAGE_PREFIX: &str = "HKCategoryValueSleepAnalysis";

/// The Clarity kind (and unit to send) of a platform type.
pub fn kind_for(identifier: &str) -> Option<&'static KindMapping> {
    KINDS.iter().find(|m| m.identifier == identifier)
}

/// A sleep stage value under Clarity's name, HealthKit's (`asleepCore`, or the full
/// `HKCategoryValueSleepAnalysisAsleepCore`) or Health Connect's (`STAGE_TYPE_LIGHT`).
pub fn sleep_stage(name: &str) -> Option<SleepStage> {
    if let Some(stage) = SleepStage::parse(name) {
        return Some(stage);
    }
    if let Some(case) = name.strip_prefix(HK_STAGE_PREFIX) {
        // `AsleepCore` -> `asleepCore`.
        let mut chars = case.chars();
        let first = chars.next()?.to_ascii_lowercase();
        let case: String = std::iter::once(first).chain(chars).collect();
        return STAGES
            .iter()
            .find(|m| m.platform == Platform::HealthKit && m.name == case)
            .map(|m| m.stage);
    }
    STAGES.iter().find(|m| m.name == name).map(|m| m.stage)
}

/// Longest `activity`, in bytes, after normalising.
pub const MAX_ACTIVITY_LEN: usize = 64;

/// A workout's activity type as Clarity stores it: snake_case ASCII, without the platform's
/// prefix. `HKWorkoutActivityTypeTraditionalStrengthTraining`,
/// `traditionalStrengthTraining` and `Traditional strength training` all become
/// `traditional_strength_training`; `EXERCISE_TYPE_RUNNING` becomes `running`. `None` when
/// the text has other characters than ASCII letters, digits, spaces, `-` and `_`, or is empty
/// or longer than [`MAX_ACTIVITY_LEN`] once normalised.
pub fn normalise_activity(raw: &str) -> Option<String> {
    let s = raw.trim();
    let s = s
        .strip_prefix("HKWorkoutActivityType")
        .or_else(|| s.strip_prefix("EXERCISE_TYPE_"))
        .unwrap_or(s);
    let mut out = String::with_capacity(s.len() + 4);
    let mut prev_lower_or_digit = false;
    for c in s.chars() {
        match c {
            'A'..='Z' => {
                if prev_lower_or_digit {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
                prev_lower_or_digit = false;
            }
            'a'..='z' | '0'..='9' => {
                out.push(c);
                prev_lower_or_digit = true;
            }
            ' ' | '-' | '_' => {
                if !out.is_empty() && !out.ends_with('_') {
                    out.push('_');
                }
                prev_lower_or_digit = false;
            }
            _ => return None,
        }
    }
    let out = out.trim_end_matches('_').to_owned();
    (!out.is_empty() && out.len() <= MAX_ACTIVITY_LEN).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_stage_vocabularies_map() {
        for (name, stage) in [
            ("asleepCore", SleepStage::Light),
            ("HKCategoryValueSleepAnalysisAsleepCore", SleepStage::Light),
            ("HKCategoryValueSleepAnalysisAsleepREM", SleepStage::Rem),
            ("asleepUnspecified", SleepStage::Asleep),
            ("inBed", SleepStage::InBed),
            ("STAGE_TYPE_LIGHT", SleepStage::Light),
            ("STAGE_TYPE_SLEEPING", SleepStage::Asleep),
            ("STAGE_TYPE_AWAKE_IN_BED", SleepStage::Awake),
            ("STAGE_TYPE_OUT_OF_BED", SleepStage::OutOfBed),
            ("deep", SleepStage::Deep),
        ] {
            assert_eq!(sleep_stage(name), Some(stage), "{name}");
        }
        for bad in [
            "",
            "nap",
            "HKCategoryValueSleepAnalysis",
            "STAGE_TYPE_",
            "Light",
        ] {
            assert_eq!(sleep_stage(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_mapped_unit_is_accepted_for_its_kind() {
        for m in KINDS {
            match m.unit {
                Some(u) => assert!(
                    super::super::units::find(m.kind, u).is_some(),
                    "{}: `{u}` is not a unit of {}",
                    m.identifier,
                    m.kind.as_str()
                ),
                None => assert_eq!(m.kind, Kind::SleepStage),
            }
            assert_eq!(kind_for(m.identifier).map(|k| k.kind), Some(m.kind));
        }
    }

    #[test]
    fn activities_normalise_to_snake_case() {
        for (raw, want) in [
            ("HKWorkoutActivityTypeRunning", Some("running")),
            (
                "HKWorkoutActivityTypeTraditionalStrengthTraining",
                Some("traditional_strength_training"),
            ),
            (
                "traditionalStrengthTraining",
                Some("traditional_strength_training"),
            ),
            (
                "EXERCISE_TYPE_HIGH_INTENSITY_INTERVAL_TRAINING",
                Some("high_intensity_interval_training"),
            ),
            ("Stair climbing", Some("stair_climbing")),
            ("cycling", Some("cycling")),
            ("  yoga  ", Some("yoga")),
            ("", None),
            ("run;drop", None),
            ("É", None),
        ] {
            assert_eq!(normalise_activity(raw).as_deref(), want, "{raw}");
        }
        assert_eq!(normalise_activity(&"a".repeat(65)), None);
    }

    #[test]
    fn docs_show_the_whole_table() {
        let doc = include_str!("../../../../docs/phone-data.md");
        for m in KINDS {
            assert!(
                doc.contains(&format!("`{}`", m.identifier)),
                "docs/phone-data.md lacks {}",
                m.identifier
            );
        }
        for m in STAGES {
            assert!(
                doc.contains(&format!("`{}`", m.name)),
                "docs/phone-data.md lacks {}",
                m.name
            );
        }
    }
}
