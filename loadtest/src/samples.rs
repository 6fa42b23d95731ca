//! Realistic wearable samples: per-minute `activity_count` and `heart_rate`
//! for consecutive minutes of one device, with a day/night rhythm.

use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, SecondsFormat, Timelike, Utc};
use serde::Serialize;

/// Small, fast, deterministic PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [lo, hi].
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next_u64() % u64::from(hi - lo + 1)) as u32
    }
}

#[derive(Serialize)]
struct Sample {
    id: String,
    kind: &'static str,
    start: String,
    end: String,
    value: u32,
    unit: &'static str,
}

#[derive(Serialize)]
struct SamplesFrame<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    seq: u64,
    samples: &'a [Sample],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Sedentary,
    Light,
    Active,
}

/// Generates consecutive minutes of data for one device/session. Each minute
/// yields an `activity_count` sample followed by a `heart_rate` sample.
pub struct SampleGen {
    id_prefix: String,
    counter: u64,
    minute: DateTime<FixedOffset>,
    hr_pending: Option<u32>,
    level: Level,
    rng: Rng,
}

/// Time-zone offsets (seconds east of UTC) cycled over sessions.
const OFFSETS: [i32; 5] = [3600, 0, -5 * 3600, 9 * 3600, 5 * 3600 + 1800];

impl SampleGen {
    /// `start`: first minute (UTC, truncated to the minute); the session's local
    /// offset is picked from `session`.
    pub fn new(id_prefix: String, session: usize, start: DateTime<Utc>, seed: u64) -> Self {
        let offset = FixedOffset::east_opt(OFFSETS[session % OFFSETS.len()]).expect("valid offset");
        let start = start
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(start);
        Self {
            id_prefix,
            counter: 0,
            minute: start.with_timezone(&offset),
            hr_pending: None,
            level: Level::Sedentary,
            rng: Rng::new(seed),
        }
    }

    fn is_night(&self) -> bool {
        let h = self.minute.hour();
        !(6..23).contains(&h)
    }

    /// Activity count for the current minute (and the matching heart rate).
    fn step_minute(&mut self) -> (u32, u32) {
        if self.is_night() {
            let activity = if self.rng.f64() < 0.75 {
                0
            } else {
                self.rng.range(1, 60)
            };
            let hr = self.rng.range(50, 62) + activity / 20;
            return (activity, hr.min(120));
        }
        // Markov chain over activity levels during the day.
        let r = self.rng.f64();
        self.level = match (self.level, r) {
            (Level::Sedentary, r) if r < 0.08 => Level::Light,
            (Level::Sedentary, r) if r < 0.10 => Level::Active,
            (Level::Light, r) if r < 0.10 => Level::Sedentary,
            (Level::Light, r) if r < 0.15 => Level::Active,
            (Level::Active, r) if r < 0.12 => Level::Light,
            (Level::Active, r) if r < 0.15 => Level::Sedentary,
            (l, _) => l,
        };
        let activity = match self.level {
            Level::Sedentary => self.rng.range(0, 150),
            Level::Light => self.rng.range(100, 700),
            Level::Active => self.rng.range(600, 2000),
        };
        let hr = 60 + activity * 55 / 2000 + self.rng.range(0, 10);
        (activity, hr.clamp(50, 120))
    }

    fn sample(&mut self, kind: &'static str, value: u32) -> Sample {
        self.counter += 1;
        let end = self.minute + ChronoDuration::minutes(1);
        Sample {
            id: format!("{}-{}", self.id_prefix, self.counter),
            kind,
            start: self.minute.to_rfc3339_opts(SecondsFormat::Secs, false),
            end: end.to_rfc3339_opts(SecondsFormat::Secs, false),
            value,
            unit: "count/min",
        }
    }

    /// Build a `samples` frame with `n` samples (JSON text).
    pub fn frame(&mut self, seq: u64, n: usize) -> String {
        let mut samples = Vec::with_capacity(n);
        while samples.len() < n {
            if let Some(hr) = self.hr_pending.take() {
                samples.push(self.sample("heart_rate", hr));
                self.minute += ChronoDuration::minutes(1);
            } else {
                let (activity, hr) = self.step_minute();
                samples.push(self.sample("activity_count", activity));
                self.hr_pending = Some(hr);
            }
        }
        serde_json::to_string(&SamplesFrame {
            ty: "samples",
            seq,
            samples: &samples,
        })
        .expect("samples serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_consecutive_unique_and_in_range() {
        let start = DateTime::parse_from_rfc3339("2026-11-29T09:00:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut g = SampleGen::new("lt-x-0".into(), 0, start, 42);
        let mut ids = std::collections::HashSet::new();
        let mut prev_end: Option<String> = None;
        for seq in 1..=50 {
            let v: serde_json::Value = serde_json::from_str(&g.frame(seq, 61)).unwrap();
            assert_eq!(v["type"], "samples");
            assert_eq!(v["seq"], seq);
            for s in v["samples"].as_array().unwrap() {
                assert!(ids.insert(s["id"].as_str().unwrap().to_string()));
                let val = s["value"].as_u64().unwrap();
                match s["kind"].as_str().unwrap() {
                    "activity_count" => {
                        assert!(val <= 2000);
                        if let Some(p) = &prev_end {
                            assert_eq!(p, s["start"].as_str().unwrap());
                        }
                    }
                    "heart_rate" => {
                        assert!((50..=120).contains(&val));
                        prev_end = Some(s["end"].as_str().unwrap().to_string());
                    }
                    k => panic!("unexpected kind {k}"),
                }
                assert_eq!(s["unit"], "count/min");
            }
        }
        // First sample is minute-aligned, in the session's offset (+01:00).
        let mut g = SampleGen::new("p".into(), 0, start, 1);
        let v: serde_json::Value = serde_json::from_str(&g.frame(1, 1)).unwrap();
        assert_eq!(v["samples"][0]["start"], "2026-11-29T10:00:00+01:00");
        assert_eq!(v["samples"][0]["end"], "2026-11-29T10:01:00+01:00");
    }
}
