//! The one mapping table between Clarity kinds and the interchange vocabularies: FHIR
//! (LOINC code, display, UCUM unit, Observation category) and Open mHealth (schema, version,
//! body property, unit). Both directions of every format read this table; docs/interop.md
//! shows it (a test checks that every code here appears there).
//!
//! Rules:
//! - A kind with a LOINC code uses it; a kind without one (no LOINC code
//!   names a wearable's activity count, an RMSSD, a sleep stage interval, a workout as one
//!   reading, a mindfulness session or a mood valence) gets a code in Clarity's own code
//!   system, [`CLARITY_CODES`], never a near LOINC code that means something else.
//! - A kind without an Open mHealth schema that keeps its meaning has `omh: None`: the Open
//!   mHealth export leaves it out and says so in docs/interop.md; it is never squeezed into
//!   a schema that means something else.
//! - Values are the stored canonical values ([`crate::samples::Kind::unit`]); every UCUM and
//!   Open mHealth unit here is that same unit under its standard name (no scaling), so that
//!   export then import gives back the very number.

use crate::samples::Kind;

pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
/// Clarity's own codes, for kinds LOINC has no code for.
pub const CLARITY_CODES: &str = "urn:clarity:fhir:code";
/// Sleep stages as a FHIR coding system (Clarity's stage names).
pub const CLARITY_SLEEP_STAGES: &str = "urn:clarity:fhir:sleep-stage";
/// The system of an Observation's identifier: the sample's own id.
pub const CLARITY_SAMPLE_IDS: &str = "urn:clarity:sample-id";
/// The system of an analysis Observation's identifier: the analysis id.
pub const CLARITY_ANALYSIS_IDS: &str = "urn:clarity:analysis-id";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// FHIR Observation category (the HL7 observation-category code system).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    VitalSigns,
    Activity,
    Laboratory,
    Survey,
}

impl Category {
    pub fn code(self) -> &'static str {
        match self {
            Category::VitalSigns => "vital-signs",
            Category::Activity => "activity",
            Category::Laboratory => "laboratory",
            Category::Survey => "survey",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Category::VitalSigns => "Vital Signs",
            Category::Activity => "Activity",
            Category::Laboratory => "Laboratory",
            Category::Survey => "Survey",
        }
    }
}

/// A code in a code system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub system: &'static str,
    pub code: &'static str,
    pub display: &'static str,
}

const fn loinc(code: &'static str, display: &'static str) -> Code {
    Code {
        system: LOINC,
        code,
        display,
    }
}

const fn clarity(code: &'static str, display: &'static str) -> Code {
    Code {
        system: CLARITY_CODES,
        code,
        display,
    }
}

/// A UCUM unit: the code, and the human-readable `unit` FHIR shows beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ucum {
    pub code: &'static str,
    pub unit: &'static str,
}

const fn ucum(code: &'static str, unit: &'static str) -> Option<Ucum> {
    Some(Ucum { code, unit })
}

/// How a kind is written as a FHIR Observation.
#[derive(Debug, Clone, Copy)]
pub struct Fhir {
    pub code: Code,
    /// Further codings of the same concept (the vital-signs profile's SpO2 code).
    pub also: &'static [Code],
    /// `None`: the value is a coded concept (sleep stages).
    pub unit: Option<Ucum>,
    pub category: Category,
}

/// How a kind is written as an Open mHealth data point.
#[derive(Debug, Clone, Copy)]
pub struct Omh {
    /// Schema name in the `omh` namespace.
    pub schema: &'static str,
    pub version: &'static str,
    /// The body property holding the value (a unit-value object).
    pub property: &'static str,
    /// The unit written on export (Clarity's canonical unit under Open mHealth's name; for
    /// step-count 2.0, whose value is a plain number, the canonical unit itself).
    pub unit: &'static str,
}

const fn omh(
    schema: &'static str,
    version: &'static str,
    property: &'static str,
    unit: &'static str,
) -> Option<Omh> {
    Some(Omh {
        schema,
        version,
        property,
        unit,
    })
}

/// One row: a kind and its FHIR and Open mHealth forms.
#[derive(Debug, Clone, Copy)]
pub struct Mapping {
    pub kind: Kind,
    pub fhir: Fhir,
    pub omh: Option<Omh>,
}

const fn row(
    kind: Kind,
    code: Code,
    unit: Option<Ucum>,
    category: Category,
    omh: Option<Omh>,
) -> Mapping {
    Mapping {
        kind,
        fhir: Fhir {
            code,
            also: &[],
            unit,
            category,
        },
        omh,
    }
}

use Category::{Activity, Laboratory, Survey, VitalSigns};

/// Every kind, in [`Kind::ALL`] order.
pub const TABLE: [Mapping; 20] = [
    row(
        Kind::ActivityCount,
        clarity(
            "activity-count",
            "Activity count (actigraphy counts per minute)",
        ),
        ucum("/min", "counts/minute"),
        Activity,
        None,
    ),
    row(
        Kind::StepCount,
        loinc("55423-8", "Number of steps in unspecified time Pedometer"),
        ucum("{steps}", "steps"),
        Activity,
        omh("step-count", "2.0", "step_count", "count"),
    ),
    row(
        Kind::HeartRate,
        loinc("8867-4", "Heart rate"),
        ucum("/min", "beats/minute"),
        VitalSigns,
        omh("heart-rate", "2.0", "heart_rate", "beats/min"),
    ),
    row(
        Kind::HeartRateVariability,
        loinc(
            "80404-7",
            "R-R interval.standard deviation (Heart rate variability)",
        ),
        ucum("ms", "ms"),
        VitalSigns,
        None,
    ),
    row(
        Kind::RespiratoryRate,
        loinc("9279-1", "Respiratory rate"),
        ucum("/min", "breaths/minute"),
        VitalSigns,
        omh("respiratory-rate", "2.0", "respiratory_rate", "breaths/min"),
    ),
    Mapping {
        kind: Kind::OxygenSaturation,
        fhir: Fhir {
            code: loinc(
                "59408-5",
                "Oxygen saturation in Arterial blood by Pulse oximetry",
            ),
            // The FHIR vital-signs profile's code for SpO2 sits beside the pulse-oximetry one.
            also: &[loinc("2708-6", "Oxygen saturation in Arterial blood")],
            unit: ucum("%", "%"),
            category: VitalSigns,
        },
        omh: omh("oxygen-saturation", "2.0", "oxygen_saturation", "%"),
    },
    row(
        Kind::BodyTemperature,
        loinc("8310-5", "Body temperature"),
        ucum("Cel", "C"),
        VitalSigns,
        omh("body-temperature", "3.0", "body_temperature", "C"),
    ),
    row(
        Kind::SleepStage,
        clarity("sleep-stage", "Sleep stage interval"),
        None,
        Activity,
        omh("sleep-episode", "1.1", "", ""),
    ),
    row(
        Kind::HeartRateVariabilityRmssd,
        clarity(
            "heart-rate-variability-rmssd",
            "Heart rate variability (RMSSD)",
        ),
        ucum("ms", "ms"),
        VitalSigns,
        None,
    ),
    row(
        Kind::RestingHeartRate,
        loinc("40443-4", "Heart rate --resting"),
        ucum("/min", "beats/minute"),
        VitalSigns,
        omh("heart-rate", "2.0", "heart_rate", "beats/min"),
    ),
    Mapping {
        kind: Kind::BloodPressure,
        fhir: Fhir {
            code: loinc("85354-9", "Blood pressure panel with all children optional"),
            also: &[],
            unit: ucum("mm[Hg]", "mmHg"),
            category: VitalSigns,
        },
        omh: omh("blood-pressure", "3.1", "systolic_blood_pressure", "mmHg"),
    },
    row(
        Kind::BloodGlucose,
        loinc("2339-0", "Glucose [Mass/volume] in Blood"),
        ucum("mg/dL", "mg/dL"),
        Laboratory,
        omh("blood-glucose", "3.0", "blood_glucose", "mg/dL"),
    ),
    row(
        Kind::ActiveEnergy,
        loinc("41981-2", "Calories burned"),
        ucum("kcal", "kcal"),
        Activity,
        omh("calories-burned", "2.0", "kcal_burned", "kcal"),
    ),
    row(
        Kind::Distance,
        clarity("distance", "Distance walked, run or cycled"),
        ucum("m", "m"),
        Activity,
        None,
    ),
    row(
        Kind::BodyMass,
        loinc("29463-7", "Body weight"),
        ucum("kg", "kg"),
        VitalSigns,
        omh("body-weight", "2.0", "body_weight", "kg"),
    ),
    row(
        Kind::Workout,
        clarity("workout", "Workout (active energy over the session)"),
        ucum("kcal", "kcal"),
        Activity,
        omh("physical-activity", "1.2", "kcal_burned", "kcal"),
    ),
    row(
        Kind::MindfulSession,
        clarity("mindful-session", "Mindfulness session length"),
        ucum("min", "min"),
        Activity,
        None,
    ),
    row(
        Kind::Mood,
        clarity(
            "mood-valence",
            "Mood valence, -1 very unpleasant to 1 very pleasant",
        ),
        ucum("1", "1"),
        Survey,
        None,
    ),
    row(
        Kind::Phq9,
        loinc(
            "44261-6",
            "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
        ),
        ucum("{score}", "{score}"),
        Survey,
        None,
    ),
    row(
        Kind::Gad7,
        loinc(
            "70274-6",
            "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]",
        ),
        ucum("{score}", "{score}"),
        Survey,
        None,
    ),
];

/// The row of `kind`.
pub fn mapping(kind: Kind) -> &'static Mapping {
    &TABLE[usize::from(kind.code())]
}

/// The blood pressure panel's components.
pub const SYSTOLIC: Code = loinc("8480-6", "Systolic blood pressure");
pub const DIASTOLIC: Code = loinc("8462-4", "Diastolic blood pressure");
/// A workout's activity type, as a component of its Observation.
pub const WORKOUT_ACTIVITY: Code = clarity("workout-activity", "Workout activity type");

/// The kinds with an Open mHealth schema, comma separated (for messages).
pub fn omh_kinds() -> String {
    TABLE
        .iter()
        .filter(|m| m.omh.is_some())
        .map(|m| m.kind.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_kind_order_and_units_are_canonical() {
        for (i, m) in TABLE.iter().enumerate() {
            assert_eq!(m.kind, Kind::ALL[i], "row {i}");
            assert_eq!(
                m.fhir.unit.is_none(),
                m.kind.unit().is_none(),
                "{:?}",
                m.kind
            );
            // The Open mHealth unit is one Clarity accepts for the kind, at the canonical
            // scale: export then import gives back the same number.
            if let Some(o) = m.omh.filter(|o| !o.unit.is_empty()) {
                let u = crate::samples::units::find(m.kind, o.unit)
                    .unwrap_or_else(|| panic!("{:?}: {}", m.kind, o.unit));
                assert!(u.is_identity(), "{:?}: {}", m.kind, o.unit);
            }
            if let Some(u) = m.fhir.unit {
                let canonical = crate::samples::units::find(m.kind, u.code)
                    .map(|u| u.is_identity())
                    .unwrap_or(true);
                assert!(canonical, "{:?}: {}", m.kind, u.code);
            }
        }
    }

    #[test]
    fn docs_show_the_whole_table() {
        let doc = include_str!("../../../../docs/interop.md");
        for m in TABLE {
            let f = m.fhir;
            for code in std::iter::once(f.code).chain(f.also.iter().copied()) {
                assert!(
                    doc.contains(&format!("`{}`", code.code)),
                    "docs/interop.md lacks {}",
                    code.code
                );
            }
            if let Some(u) = f.unit {
                assert!(
                    doc.contains(&format!("`{}`", u.code)),
                    "docs/interop.md lacks {}",
                    u.code
                );
            }
            assert!(
                doc.contains(&format!("| `{}` |", m.kind.as_str())),
                "docs/interop.md lacks {:?}",
                m.kind
            );
            if let Some(o) = m.omh {
                let id = format!("`omh:{}:{}`", o.schema, o.version);
                assert!(doc.contains(&id), "docs/interop.md lacks {id}");
            }
        }
    }
}
