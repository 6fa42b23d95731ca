//! Units accepted on input and their conversion to the kind's canonical unit.
//!
//! Rules:
//! - Each kind has one table; its first entry is the canonical unit ([`Kind::unit`]). An
//!   entry is an alias (same scale) or a conversion `canonical = (value + offset) * scale`.
//! - A converted value is rounded to 6 decimals (no float noise such as 36.99999999999999
//!   for 98.6 °F is stored); a value in the canonical unit or an alias is kept as sent.
//! - `oxygen_saturation` without a unit, or with unit `%`, is a fraction when it is at most 1
//!   (HealthKit holds SpO2 as 0-1 even in its percent unit, and apps pass `0.95` on with
//!   `%`), a percentage otherwise: the two ranges (0.5-1, 50-100 %) do not overlap, so the
//!   reading is never ambiguous.
//! - An unknown unit is refused with the list of the kind's units, never guessed.

use super::Kind;

/// One accepted unit of a kind: `canonical = (value + offset) * scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    pub name: &'static str,
    pub scale: f64,
    pub offset: f64,
}

impl Unit {
    const fn same(name: &'static str) -> Unit {
        Unit {
            name,
            scale: 1.0,
            offset: 0.0,
        }
    }

    const fn times(name: &'static str, scale: f64) -> Unit {
        Unit {
            name,
            scale,
            offset: 0.0,
        }
    }

    /// Whether this unit is the canonical one or an alias of it (nothing to convert).
    pub fn is_identity(&self) -> bool {
        self.scale == 1.0 && self.offset == 0.0
    }

    pub fn to_canonical(&self, value: f64) -> f64 {
        if self.is_identity() {
            value
        } else {
            round6((value + self.offset) * self.scale)
        }
    }

    /// The value in this unit of a canonical value (for ranges in messages and schemas).
    pub fn from_canonical(&self, canonical: f64) -> f64 {
        canonical / self.scale - self.offset
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// A `&'static [Unit]` built in a const context (a plain `&[...]` of const fn calls in a
/// function body would be a temporary).
macro_rules! table {
    ($($u:expr),* $(,)?) => {{
        const T: &[Unit] = &[$($u),*];
        T
    }};
}

const fn affine(name: &'static str, scale: f64, offset: f64) -> Unit {
    Unit {
        name,
        scale,
        offset,
    }
}

/// °F to °C: `(v - 32) * 5/9`.
const fn fahrenheit(name: &'static str) -> Unit {
    affine(name, 5.0 / 9.0, -32.0)
}

/// The units `kind` accepts, canonical first; empty for `sleep_stage`.
pub fn units(kind: Kind) -> &'static [Unit] {
    match kind {
        Kind::ActivityCount => table![
            Unit::same("count/min"),
            Unit::same("counts/min"),
            Unit::same("cpm"),
        ],
        Kind::StepCount => table![Unit::same("count"), Unit::same("steps")],
        Kind::HeartRate | Kind::RestingHeartRate => table![
            Unit::same("count/min"),
            Unit::same("bpm"),
            Unit::same("beats/min"),
            Unit::same("/min"),
            Unit::same("1/min"),
        ],
        Kind::HeartRateVariability | Kind::HeartRateVariabilityRmssd => {
            table![Unit::same("ms"), Unit::times("s", 1000.0)]
        }
        Kind::RespiratoryRate => table![
            Unit::same("count/min"),
            Unit::same("breaths/min"),
            Unit::same("brpm"),
            Unit::same("/min"),
            Unit::same("1/min"),
        ],
        Kind::OxygenSaturation => table![
            Unit::same("%"),
            Unit::times("1", 100.0),
            Unit::times("fraction", 100.0),
        ],
        Kind::BodyTemperature => table![
            Unit::same("degC"),
            Unit::same("°C"),
            Unit::same("Cel"),
            Unit::same("C"),
            fahrenheit("degF"),
            fahrenheit("°F"),
            fahrenheit("[degF]"),
            fahrenheit("F"),
            affine("K", 1.0, -273.15),
        ],
        Kind::BloodPressure => table![
            Unit::same("mmHg"),
            Unit::same("mm[Hg]"),
            // 1 mmHg = 133.322387415 Pa.
            Unit::times("kPa", 1000.0 / 133.322_387_415),
        ],
        Kind::BloodGlucose => table![
            Unit::same("mg/dL"),
            Unit::same("mg/dl"),
            // Glucose, 180.156 g/mol: 1 mmol/L = 18.0156 mg/dL.
            Unit::times("mmol/L", 18.0156),
            Unit::times("mmol/l", 18.0156),
        ],
        Kind::ActiveEnergy | Kind::Workout => table![
            Unit::same("kcal"),
            Unit::same("Cal"),
            Unit::times("kJ", 1.0 / 4.184),
        ],
        Kind::Distance => table![
            Unit::same("m"),
            Unit::times("km", 1000.0),
            Unit::times("mi", 1609.344),
            Unit::times("ft", 0.3048),
            Unit::times("yd", 0.9144),
        ],
        Kind::BodyMass => table![
            Unit::same("kg"),
            Unit::times("g", 0.001),
            Unit::times("lb", 0.453_592_37),
            Unit::times("lbs", 0.453_592_37),
            Unit::times("st", 6.350_293_18),
        ],
        Kind::MindfulSession => table![
            Unit::same("min"),
            Unit::times("s", 1.0 / 60.0),
            Unit::times("h", 60.0),
        ],
        Kind::Mood => table![Unit::same("1")],
        Kind::Phq9 | Kind::Gad7 => table![Unit::same("{score}"), Unit::same("score")],
        Kind::SleepStage => &[],
    }
}

/// The unit named `name` for `kind`.
pub fn find(kind: Kind, name: &str) -> Option<&'static Unit> {
    units(kind).iter().find(|u| u.name == name)
}

/// The accepted unit names of `kind`, for messages.
pub fn names(kind: Kind) -> String {
    units(kind)
        .iter()
        .map(|u| format!("`{}`", u.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The unit a value was sent in when no unit was given: the canonical one, except for a
/// fractional SpO2.
pub fn implied(kind: Kind, value: f64) -> &'static Unit {
    let units = units(kind);
    if kind == Kind::OxygenSaturation && value <= 1.0 {
        &units[1]
    } else {
        &units[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn conv(kind: Kind, unit: &str, v: f64) -> f64 {
        find(kind, unit).unwrap().to_canonical(v)
    }

    #[test]
    fn known_conversions() {
        assert_eq!(conv(Kind::BodyTemperature, "degF", 98.6), 37.0);
        assert_eq!(conv(Kind::BodyTemperature, "°F", 212.0), 100.0);
        assert_eq!(conv(Kind::BodyTemperature, "K", 310.15), 37.0);
        assert_eq!(conv(Kind::OxygenSaturation, "1", 0.97), 97.0);
        assert_eq!(conv(Kind::BloodGlucose, "mmol/L", 5.5), 99.0858);
        assert_eq!(conv(Kind::ActiveEnergy, "kJ", 418.4), 100.0);
        assert_eq!(conv(Kind::Distance, "mi", 1.0), 1609.344);
        assert_eq!(conv(Kind::Distance, "km", 5.2), 5200.0);
        assert_eq!(conv(Kind::BodyMass, "lb", 154.0), 69.853225);
        assert_eq!(conv(Kind::BloodPressure, "kPa", 16.0), 120.009852);
        assert_eq!(conv(Kind::MindfulSession, "s", 600.0), 10.0);
        assert_eq!(implied(Kind::OxygenSaturation, 0.95).name, "1");
        assert_eq!(implied(Kind::OxygenSaturation, 95.0).name, "%");
    }

    #[test]
    fn every_kind_but_stages_lists_its_canonical_unit_first() {
        for kind in Kind::ALL {
            match kind.unit() {
                Some(c) => {
                    assert_eq!(units(kind)[0].name, c, "{kind:?}");
                    assert!(units(kind)[0].is_identity());
                }
                None => assert!(units(kind).is_empty()),
            }
            let mut seen: Vec<&str> = units(kind).iter().map(|u| u.name).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), units(kind).len(), "{kind:?}: a unit twice");
        }
    }

    proptest! {
        // Converting into a unit and back lands within the rounding step.
        #[test]
        fn conversions_invert(k in 0usize..20, u in 0usize..9, v in -1e5f64..1e5) {
            let kind = Kind::ALL[k];
            let units = units(kind);
            prop_assume!(!units.is_empty());
            let unit = units[u % units.len()];
            let there = unit.from_canonical(v);
            let back = unit.to_canonical(there);
            prop_assert!((back - v).abs() <= 1e-5 * v.abs().max(1.0), "{} {v} -> {there} -> {back}", unit.name);
        }
    }
}
