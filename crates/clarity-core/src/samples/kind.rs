//! Sample kinds and sleep stages: names, stored codes, canonical units, plausible ranges and
//! longest spans.
//!
//! Rules:
//! - A kind's numeric discriminant is its stored code (SQLite column, DynamoDB sort key):
//!   kinds are only ever appended, never reordered or renumbered. The same holds for
//!   [`SleepStage`], stored as the value of a `sleep_stage` sample.
//! - Every numeric kind has exactly one canonical unit; values are stored and sent back in
//!   it. Ranges and spans are in canonical units; what else is accepted on input is
//!   [`super::units`]' business.

use serde::{Deserialize, Serialize};

/// Sample kinds. The numeric discriminant is the stored code: never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Kind {
    ActivityCount = 0,
    StepCount = 1,
    HeartRate = 2,
    /// SDNN (HealthKit's heartRateVariabilitySDNN).
    HeartRateVariability = 3,
    RespiratoryRate = 4,
    OxygenSaturation = 5,
    BodyTemperature = 6,
    SleepStage = 7,
    /// RMSSD (Health Connect's HeartRateVariabilityRmssdRecord); never mixed with SDNN.
    HeartRateVariabilityRmssd = 8,
    RestingHeartRate = 9,
    /// `value` is the systolic pressure; the sample carries `diastolic` too.
    BloodPressure = 10,
    BloodGlucose = 11,
    ActiveEnergy = 12,
    Distance = 13,
    BodyMass = 14,
    /// An interval; `value` is its active energy, and the sample carries `activity`.
    Workout = 15,
    /// An interval; `value` is its length in minutes.
    MindfulSession = 16,
    /// A self-report; `value` is the valence, -1 (very unpleasant) to 1 (very pleasant).
    Mood = 17,
    Phq9 = 18,
    Gad7 = 19,
}

const HOUR: i64 = 3_600_000;

impl Kind {
    pub const ALL: [Kind; 20] = [
        Kind::ActivityCount,
        Kind::StepCount,
        Kind::HeartRate,
        Kind::HeartRateVariability,
        Kind::RespiratoryRate,
        Kind::OxygenSaturation,
        Kind::BodyTemperature,
        Kind::SleepStage,
        Kind::HeartRateVariabilityRmssd,
        Kind::RestingHeartRate,
        Kind::BloodPressure,
        Kind::BloodGlucose,
        Kind::ActiveEnergy,
        Kind::Distance,
        Kind::BodyMass,
        Kind::Workout,
        Kind::MindfulSession,
        Kind::Mood,
        Kind::Phq9,
        Kind::Gad7,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ActivityCount => "activity_count",
            Kind::StepCount => "step_count",
            Kind::HeartRate => "heart_rate",
            Kind::HeartRateVariability => "heart_rate_variability",
            Kind::RespiratoryRate => "respiratory_rate",
            Kind::OxygenSaturation => "oxygen_saturation",
            Kind::BodyTemperature => "body_temperature",
            Kind::SleepStage => "sleep_stage",
            Kind::HeartRateVariabilityRmssd => "heart_rate_variability_rmssd",
            Kind::RestingHeartRate => "resting_heart_rate",
            Kind::BloodPressure => "blood_pressure",
            Kind::BloodGlucose => "blood_glucose",
            Kind::ActiveEnergy => "active_energy",
            Kind::Distance => "distance",
            Kind::BodyMass => "body_mass",
            Kind::Workout => "workout",
            Kind::MindfulSession => "mindful_session",
            Kind::Mood => "mood",
            Kind::Phq9 => "phq9",
            Kind::Gad7 => "gad7",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Every kind's name, comma separated, for messages about an unknown kind.
    pub fn names() -> String {
        Kind::ALL.map(Kind::as_str).join(", ")
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: i64) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| i64::from(k.code()) == code)
    }

    /// Canonical unit (UCUM-like) that responses carry; `None` for categorical kinds.
    pub fn unit(self) -> Option<&'static str> {
        Some(match self {
            Kind::ActivityCount
            | Kind::HeartRate
            | Kind::RespiratoryRate
            | Kind::RestingHeartRate => "count/min",
            Kind::StepCount => "count",
            Kind::HeartRateVariability | Kind::HeartRateVariabilityRmssd => "ms",
            Kind::OxygenSaturation => "%",
            Kind::BodyTemperature => "degC",
            Kind::BloodPressure => "mmHg",
            Kind::BloodGlucose => "mg/dL",
            Kind::ActiveEnergy | Kind::Workout => "kcal",
            Kind::Distance => "m",
            Kind::BodyMass => "kg",
            Kind::MindfulSession => "min",
            Kind::Mood => "1",
            Kind::Phq9 | Kind::Gad7 => "{score}",
            Kind::SleepStage => return None,
        })
    }

    /// Whether a sample of this kind is an interval: `end` is required.
    pub fn needs_end(self) -> bool {
        matches!(
            self,
            Kind::SleepStage | Kind::Workout | Kind::MindfulSession
        )
    }

    /// Whether the value is a whole number (questionnaire totals).
    pub fn is_whole(self) -> bool {
        matches!(self, Kind::Phq9 | Kind::Gad7)
    }

    /// Longest interval (`end` - `start`) a sample of this kind may span. Readings are
    /// momentary or averaged over minutes; a count covers at most an hour's epoch; totals
    /// (steps, energy, distance), a day's resting heart rate, a sleep stage, a workout or a
    /// session at most a day. Longer spans are broken clocks, and would stretch a user's
    /// window far beyond the data (see protocol/README.md, "Rejection codes").
    pub fn max_duration_ms(self) -> i64 {
        match self {
            Kind::StepCount
            | Kind::SleepStage
            | Kind::RestingHeartRate
            | Kind::ActiveEnergy
            | Kind::Distance
            | Kind::Workout
            | Kind::MindfulSession
            | Kind::Mood
            | Kind::Phq9
            | Kind::Gad7 => 24 * HOUR,
            Kind::ActivityCount
            | Kind::HeartRate
            | Kind::HeartRateVariability
            | Kind::HeartRateVariabilityRmssd
            | Kind::RespiratoryRate
            | Kind::OxygenSaturation
            | Kind::BodyTemperature
            | Kind::BloodPressure
            | Kind::BloodGlucose
            | Kind::BodyMass => HOUR,
        }
    }

    /// Physiologically plausible range of `value` in the canonical unit, inclusive.
    pub fn range(self) -> (f64, f64) {
        match self {
            Kind::ActivityCount => (0.0, 100_000.0),
            Kind::StepCount => (0.0, 100_000.0),
            Kind::HeartRate => (20.0, 300.0),
            Kind::HeartRateVariability | Kind::HeartRateVariabilityRmssd => (0.0, 1_000.0),
            Kind::RespiratoryRate => (1.0, 100.0),
            Kind::OxygenSaturation => (50.0, 100.0),
            Kind::BodyTemperature => (25.0, 45.0),
            Kind::SleepStage => (0.0, 6.0),
            Kind::RestingHeartRate => (20.0, 250.0),
            // Systolic.
            Kind::BloodPressure => (40.0, 300.0),
            Kind::BloodGlucose => (10.0, 1_000.0),
            Kind::ActiveEnergy | Kind::Workout => (0.0, 20_000.0),
            Kind::Distance => (0.0, 1_000_000.0),
            Kind::BodyMass => (0.5, 650.0),
            Kind::MindfulSession => (0.0, 1_440.0),
            Kind::Mood => (-1.0, 1.0),
            Kind::Phq9 => (0.0, 27.0),
            Kind::Gad7 => (0.0, 21.0),
        }
    }
}

/// Range of a blood pressure sample's `diastolic`, mmHg, inclusive (it must also be below the
/// systolic `value`).
pub const DIASTOLIC_RANGE: (f64, f64) = (20.0, 200.0);

/// Sleep stages, stored by their discriminant (never renumber). `Asleep` is sleep whose stage
/// the source did not tell (HealthKit's asleepUnspecified, Health Connect's SLEEPING);
/// `OutOfBed` is Health Connect's OUT_OF_BED inside a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SleepStage {
    Awake = 0,
    Light = 1,
    Deep = 2,
    Rem = 3,
    InBed = 4,
    Asleep = 5,
    OutOfBed = 6,
}

impl SleepStage {
    pub const ALL: [SleepStage; 7] = [
        SleepStage::Awake,
        SleepStage::Light,
        SleepStage::Deep,
        SleepStage::Rem,
        SleepStage::InBed,
        SleepStage::Asleep,
        SleepStage::OutOfBed,
    ];

    /// Light, deep, REM or unspecified sleep.
    pub fn is_asleep(self) -> bool {
        matches!(
            self,
            SleepStage::Light | SleepStage::Deep | SleepStage::Rem | SleepStage::Asleep
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SleepStage::Awake => "awake",
            SleepStage::Light => "light",
            SleepStage::Deep => "deep",
            SleepStage::Rem => "rem",
            SleepStage::InBed => "in_bed",
            SleepStage::Asleep => "asleep",
            SleepStage::OutOfBed => "out_of_bed",
        }
    }

    /// Clarity's own stage names only; [`super::mapping::sleep_stage`] also takes the
    /// HealthKit and Health Connect names.
    pub fn parse(s: &str) -> Option<SleepStage> {
        SleepStage::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn from_code(code: f64) -> Option<SleepStage> {
        SleepStage::ALL
            .into_iter()
            .find(|s| f64::from(*s as u8) == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_positions_and_names_round_trip() {
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(k.code()), i, "{k:?}: codes are never reordered");
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(Kind::from_code(i as i64), Some(k));
            let (lo, hi) = k.range();
            assert!(lo < hi, "{k:?}");
            assert_eq!(k.unit().is_none(), k == Kind::SleepStage, "{k:?}");
        }
        for (i, s) in SleepStage::ALL.into_iter().enumerate() {
            assert_eq!(s as usize, i);
            assert_eq!(SleepStage::parse(s.as_str()), Some(s));
        }
    }
}
