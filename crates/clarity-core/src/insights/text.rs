//! Wording shared by the local generator and the prompt: durations, shares and changes.
//!
//! Rules:
//! - A positive quantity never reads as zero: what rounds to nothing says "under a minute" or
//!   "under 1%".
//! - Durations under an hour are in minutes ("45 minutes"); from an hour on, "7h 05m".
//! - A change is phrased as a change against the previous report ("0.18 lower than in your
//!   previous report"), never as a signed number next to the measure's name, which reads as the
//!   measure's value.

/// A duration given in minutes: "under a minute", "1 minute", "45 minutes", "7h 05m".
pub fn duration(minutes: f64) -> String {
    let m = minutes.max(0.0).round() as i64;
    match m {
        0 if minutes > 0.0 => "under a minute".into(),
        1 => "1 minute".into(),
        0..60 => format!("{m} minutes"),
        _ => format!("{}h {:02}m", m / 60, m % 60),
    }
}

/// How long a stretch of data is: as a [`duration`] below two days, in days from there.
pub fn span(minutes: f64) -> String {
    if minutes >= 2.0 * 1440.0 {
        format!("{:.1} days", minutes / 1440.0)
    } else {
        duration(minutes)
    }
}

/// A share (0-1) as a whole percentage; a positive share that rounds to 0 is "under 1%".
pub fn percent(share: f64) -> String {
    let p = (share * 100.0).round();
    if p < 1.0 && share > 0.0 {
        "under 1%".into()
    } else {
        format!("{p:.0}%")
    }
}

/// A difference of a unitless measure against the previous report, as words:
/// "0.18 lower than", "0.05 higher than", or "the same as" when it rounds to nothing at
/// `places` decimals; the caller adds the object ("... your previous report").
pub fn difference(delta: f64, places: usize) -> String {
    let shown = format!("{:.places$}", delta.abs());
    if shown.trim_start_matches(['0', '.']).is_empty() {
        "the same as".into()
    } else if delta > 0.0 {
        format!("{shown} higher than")
    } else {
        format!("{shown} lower than")
    }
}

/// A difference in minutes of sleep a night: "25 minutes more", "1h 10m less", "no more".
pub fn minutes_difference(delta: f64) -> String {
    let dir = if delta > 0.0 { "more" } else { "less" };
    format!("{} {dir}", duration(delta.abs()))
}

/// A whole count with thousands separators: "8,412", "950", "12,030".
pub fn thousands(n: f64) -> String {
    let digits = (n.max(0.0).round() as u64).to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(950.4), "950");
        assert_eq!(thousands(8412.0), "8,412");
        assert_eq!(thousands(12030.0), "12,030");
        assert_eq!(thousands(1234567.0), "1,234,567");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        for (m, text) in [
            (0.2, "under a minute"),
            (0.6, "1 minute"),
            (3.0, "3 minutes"),
            (59.4, "59 minutes"),
            (59.6, "1h 00m"),
            (425.0, "7h 05m"),
            (1656.0, "27h 36m"),
        ] {
            assert_eq!(duration(m), text, "{m}");
        }
        assert_eq!(span(3.0), "3 minutes");
        assert_eq!(span(3.0 * 1440.0), "3.0 days");
        assert_eq!(percent(0.004), "under 1%");
        assert_eq!(percent(0.8), "80%");
        assert_eq!(percent(0.0), "0%");
    }

    #[test]
    fn differences_say_which_way() {
        assert_eq!(difference(-0.18, 2), "0.18 lower than");
        assert_eq!(difference(0.054, 2), "0.05 higher than");
        assert_eq!(difference(-0.004, 2), "the same as");
        assert_eq!(minutes_difference(-25.0), "25 minutes less");
        assert_eq!(minutes_difference(70.0), "1h 10m more");
    }

    fn reads_as_zero(s: &str) -> bool {
        s.starts_with("0 ") || s.starts_with("0h 00m") || s.starts_with("0%") || s == "0.0 days"
    }

    proptest! {
        #[test]
        fn no_positive_duration_reads_as_zero(m in 1e-9f64..20_000.0) {
            let d = duration(m);
            prop_assert!(!reads_as_zero(&d), "{} -> {}", m, d);
            prop_assert!(!reads_as_zero(&span(m)), "{} -> {}", m, span(m));
            prop_assert!(!reads_as_zero(&minutes_difference(m)));
            prop_assert!(!reads_as_zero(&minutes_difference(-m)));
            // Under an hour (as rounded) is always in minutes.
            if m < 59.5 {
                prop_assert!(d.contains("minute"), "{} -> {}", m, d);
            }
        }

        #[test]
        fn no_positive_share_reads_as_zero(p in 1e-12f64..=1.0) {
            prop_assert!(!reads_as_zero(&percent(p)), "{} -> {}", p, percent(p));
        }

        #[test]
        fn a_difference_never_carries_a_sign(d in -2.0f64..2.0) {
            let t = difference(d, 2);
            prop_assert!(!t.contains('-') && !t.contains('+'), "{}", t);
            let way = if d > 0.0 { "higher" } else { "lower" };
            prop_assert!(t == "the same as" || t.contains(way), "{} -> {}", d, t);
        }
    }
}
