//! Realistic wearable samples: per-minute `activity_count` and `heart_rate`
//! for consecutive minutes of one device, with a day/night rhythm.

use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, SecondsFormat, Timelike, Utc};
use std::collections::VecDeque;
use std::fmt::Write as _;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Sedentary,
    Light,
    Active,
}

/// Generates consecutive minutes of data for one device/session. Each minute
/// yields an `activity_count` sample followed by a `heart_rate` sample.
///
/// Samples are written straight into the JSON text (no intermediate values):
/// at 1.5M samples/s the generator shares two cores with the server.
pub struct SampleGen {
    /// JSON string literal of the id prefix, without the closing quote.
    id_open: String,
    /// `Some(key)`: ids are UUID-shaped instead (see [`SampleGen::with_uuid_ids`]).
    uuid_key: Option<u64>,
    counter: u64,
    first: DateTime<FixedOffset>,
    minute: DateTime<FixedOffset>,
    /// Start over at `first` once the minute reaches this (keeps times plausible
    /// however long the run; ids stay unique because the counter keeps going).
    wrap_at: Option<DateTime<FixedOffset>>,
    /// `"start":"…","end":"…"` for the current minute.
    times: Option<String>,
    hr_pending: Option<u32>,
    /// Series mode: the heart_rate values of the minutes whose activity_count went last.
    series_pending: Option<(DateTime<FixedOffset>, Vec<u32>)>,
    level: Level,
    rng: Rng,
    edits: Edits,
}

/// Sync-v2 edits mixed into the stream (`--upsert-pct`, `--delete-pct`): a share of the
/// sample slots re-sends a recent id with a higher `version` and a new value, and deletes of
/// recent ids go out as `delete` frames of [`DELETE_FRAME`] ids each.
#[derive(Debug, Default)]
struct Edits {
    upsert: f64,
    delete: f64,
    /// Samples sent lately that may be edited or deleted: (id counter, kind, times).
    recent: VecDeque<(u64, &'static str, String)>,
    version: u64,
    delete_credit: f64,
}

/// A sample id as an opened JSON string (see [`SampleGen::id`]).
struct IdText<'a> {
    open: &'a str,
    uuid_key: Option<u64>,
    counter: u64,
}

impl std::fmt::Display for IdText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(key) = self.uuid_key else {
            return write!(f, "{}{}", self.open, self.counter);
        };
        // splitmix64's finaliser: a bijection of u64, so distinct counters give distinct ids.
        let mix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let hi = mix(key.wrapping_add(self.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        let lo = mix(self.counter ^ key);
        let hi = (hi & !0xf000) | 0x4000; // version 4
        write!(
            f,
            "\"{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }
}

/// Ids per `delete` frame.
pub const DELETE_FRAME: usize = 10;
const RECENT: usize = 2048;

/// Time-zone offsets (seconds east of UTC) cycled over sessions.
const OFFSETS: [i32; 5] = [3600, 0, -5 * 3600, 9 * 3600, 5 * 3600 + 1800];

/// The UTC offset [`SampleGen::new`] gives session `session`'s samples.
pub fn utc_offset(session: usize) -> FixedOffset {
    FixedOffset::east_opt(OFFSETS[session % OFFSETS.len()]).expect("valid offset")
}

impl SampleGen {
    /// `start`: first minute (UTC, truncated to the minute); the session's local
    /// offset is picked from `session`.
    pub fn new(id_prefix: String, session: usize, start: DateTime<Utc>, seed: u64) -> Self {
        let offset = utc_offset(session);
        let start = start
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(start);
        let mut id_open = serde_json::to_string(&format!("{id_prefix}-")).expect("string");
        id_open.pop();
        let first = start.with_timezone(&offset);
        Self {
            id_open,
            uuid_key: None,
            counter: 0,
            first,
            minute: first,
            wrap_at: None,
            times: None,
            hr_pending: None,
            series_pending: None,
            level: Level::Sedentary,
            rng: Rng::new(seed),
            edits: Edits::default(),
        }
    }

    /// Mixes edits into the stream: `upsert` and `delete` are fractions (0..1) of the
    /// samples sent.
    pub fn with_edits(mut self, upsert: f64, delete: f64) -> Self {
        self.edits.upsert = upsert;
        self.edits.delete = delete;
        self
    }

    /// Ids shaped like a phone's (HealthKit and Health Connect send random UUIDs) instead of
    /// `<prefix>-<counter>`: still one per counter and unique (the low half is the counter
    /// scrambled by a bijection, the high half random-looking), but in no order, so the
    /// store's id index sees the scattered inserts a phone fleet gives it.
    pub fn with_uuid_ids(mut self, key: u64) -> Self {
        self.uuid_key = Some(key);
        self
    }

    /// The id of sample `counter` as an opened JSON string (no closing quote).
    fn id(&self, counter: u64) -> IdText<'_> {
        IdText {
            open: &self.id_open,
            uuid_key: self.uuid_key,
            counter,
        }
    }

    /// Start over at the first minute whenever the next minute would start at or
    /// after `at`.
    pub fn wrap_at(mut self, at: DateTime<Utc>) -> Self {
        self.wrap_at = Some(at.with_timezone(&self.first.timezone()));
        self
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

    fn next_minute(&mut self) {
        self.minute += ChronoDuration::minutes(1);
        if self.wrap_at.is_some_and(|w| self.minute >= w) {
            self.minute = self.first;
        }
        self.times = None;
    }

    /// One sample object, `{"id":…,"kind":…,"start":…,"end":…,"value":…,"unit":…}`.
    fn write_sample(&mut self, out: &mut String, kind: &'static str, value: u32) {
        self.counter += 1;
        let minute = self.minute;
        let times = self.times.get_or_insert_with(|| {
            let end = minute + ChronoDuration::minutes(1);
            format!(
                r#""start":"{}","end":"{}""#,
                minute.to_rfc3339_opts(SecondsFormat::Secs, false),
                end.to_rfc3339_opts(SecondsFormat::Secs, false)
            )
        });
        let id = IdText {
            open: &self.id_open,
            uuid_key: self.uuid_key,
            counter: self.counter,
        };
        let _ = write!(
            out,
            r#"{{"id":{id}","kind":"{kind}",{times},"value":{value},"unit":"count/min"}}"#
        );
        if self.edits.upsert > 0.0 || self.edits.delete > 0.0 {
            if self.edits.recent.len() == RECENT {
                self.edits.recent.pop_front();
            }
            self.edits
                .recent
                .push_back((self.counter, kind, times.clone()));
        }
    }

    /// A recent sample again, with a higher version and another value (an edit).
    fn write_upsert(&mut self, out: &mut String) -> bool {
        let n = self.edits.recent.len();
        if n == 0 {
            return false;
        }
        let pick = (self.rng.next_u64() % n as u64) as usize;
        let (counter, kind, times) = &self.edits.recent[pick];
        let id = self.id(*counter).to_string();
        self.edits.version += 1;
        let value = if *kind == "heart_rate" {
            self.rng.range(50, 120)
        } else {
            self.rng.range(0, 2000)
        };
        let _ = write!(
            out,
            r#"{{"id":{id}","kind":"{kind}",{times},"value":{value},"unit":"count/min","version":{}}}"#,
            self.edits.version
        );
        true
    }

    /// Append `n` comma-separated sample objects to `out`.
    fn write_samples(&mut self, out: &mut String, n: usize) {
        for k in 0..n {
            if k > 0 {
                out.push(',');
            }
            if self.edits.upsert > 0.0
                && self.rng.f64() < self.edits.upsert
                && self.write_upsert(out)
            {
                continue;
            }
            if let Some(hr) = self.hr_pending.take() {
                self.write_sample(out, "heart_rate", hr);
                self.next_minute();
            } else {
                let (activity, hr) = self.step_minute();
                self.write_sample(out, "activity_count", activity);
                self.hr_pending = Some(hr);
            }
        }
    }

    /// Build the next WebSocket frame: a `samples` frame with `n` samples (JSON text), or,
    /// once enough deletes are due, a `delete` frame of [`DELETE_FRAME`] recent ids.
    pub fn frame(&mut self, seq: u64, n: usize) -> String {
        self.edits.delete_credit += n as f64 * self.edits.delete;
        if self.edits.delete_credit >= DELETE_FRAME as f64
            && self.edits.recent.len() >= DELETE_FRAME
        {
            self.edits.delete_credit -= DELETE_FRAME as f64;
            let mut out = String::with_capacity(48 + DELETE_FRAME * 40);
            let _ = write!(out, r#"{{"type":"delete","seq":{seq},"ids":["#);
            for k in 0..DELETE_FRAME {
                // The oldest recent ids: never edited again once deleted.
                let (counter, _, _) = self.edits.recent.pop_front().expect("enough recent ids");
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, r#"{}""#, self.id(counter));
            }
            out.push_str("]}");
            return out;
        }
        let mut out = String::with_capacity(48 + n * 160);
        let _ = write!(out, r#"{{"type":"samples","seq":{seq},"samples":["#);
        self.write_samples(&mut out, n);
        out.push_str("]}");
        out
    }

    /// Build a `series` frame of `n` values (the same data as `frame`, shaped as series):
    /// calls alternate between the activity_count series of `n` new minutes and the
    /// heart_rate series of the same minutes. Ids are derived by the server from kind,
    /// minute and `source` (one source per session keeps sessions of one user apart).
    pub fn series_frame(&mut self, seq: u64, n: usize, source: &str) -> String {
        let (kind, start, values) = match self.series_pending.take() {
            Some((start, hr)) => ("heart_rate", start, hr),
            None => {
                let wraps = self
                    .wrap_at
                    .is_some_and(|w| self.minute + ChronoDuration::minutes(n as i64) > w);
                if wraps {
                    self.minute = self.first;
                }
                let start = self.minute;
                let mut activity = Vec::with_capacity(n);
                let mut hr = Vec::with_capacity(n);
                for _ in 0..n {
                    let (a, h) = self.step_minute();
                    activity.push(a);
                    hr.push(h);
                    self.minute += ChronoDuration::minutes(1);
                }
                self.times = None;
                self.series_pending = Some((start, hr));
                ("activity_count", start, activity)
            }
        };
        self.counter += values.len() as u64;
        let mut out = String::with_capacity(200 + n * 5);
        let _ = write!(
            out,
            r#"{{"type":"series","seq":{seq},"kind":"{kind}","unit":"count/min","source":{},"start":"{}","interval_ms":60000,"intervals":true,"values":["#,
            serde_json::to_string(source).expect("string"),
            start.to_rfc3339_opts(SecondsFormat::Secs, false)
        );
        for (k, v) in values.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            let _ = write!(out, "{v}");
        }
        out.push_str("]}");
        out
    }

    /// Build a REST upload body `{"samples":[…]}` with `n` samples.
    pub fn rest_body(&mut self, n: usize) -> String {
        let mut out = String::with_capacity(16 + n * 160);
        out.push_str(r#"{"samples":["#);
        self.write_samples(&mut out, n);
        out.push_str("]}");
        out
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

    #[test]
    fn edits_replay_recent_ids_with_rising_versions_and_delete_in_frames() {
        let start = DateTime::parse_from_rfc3339("2026-11-29T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for uuid in [false, true] {
            edits_with(start, uuid);
        }
    }

    fn edits_with(start: DateTime<Utc>, uuid: bool) {
        let mut g = SampleGen::new("e".into(), 0, start, 3).with_edits(0.1, 0.01);
        if uuid {
            g = g.with_uuid_ids(0x5eed);
        }
        let mut order = Vec::new();
        let (mut new, mut upserts, mut deletes) = (0, 0, 0);
        let mut seen = std::collections::HashSet::new();
        let mut last_version = 0;
        for seq in 1..=200 {
            let v: serde_json::Value = serde_json::from_str(&g.frame(seq, 60)).unwrap();
            if v["type"] == "delete" {
                let ids = v["ids"].as_array().unwrap();
                assert_eq!(ids.len(), DELETE_FRAME);
                for id in ids {
                    assert!(seen.contains(id.as_str().unwrap()), "deletes a sent id");
                }
                deletes += ids.len();
                continue;
            }
            for s in v["samples"].as_array().unwrap() {
                let id = s["id"].as_str().unwrap().to_string();
                match s["version"].as_u64() {
                    Some(ver) => {
                        assert!(seen.contains(&id), "an edit re-sends a sent id");
                        assert!(ver > last_version, "versions rise");
                        last_version = ver;
                        upserts += 1;
                    }
                    None => {
                        if uuid {
                            let dashes: Vec<usize> = id.match_indices('-').map(|m| m.0).collect();
                            assert_eq!((id.len(), dashes), (36, vec![8, 13, 18, 23]), "{id}");
                            assert_eq!(&id[14..15], "4", "a version-4 UUID's shape: {id}");
                        }
                        order.push(id.clone());
                        assert!(seen.insert(id), "new ids are unique");
                        new += 1;
                    }
                }
            }
        }
        let total = (new + upserts + deletes) as f64;
        assert!(
            (0.07..0.13).contains(&(upserts as f64 / total)),
            "{upserts}/{total}"
        );
        assert!(
            (0.005..0.02).contains(&(deletes as f64 / total)),
            "{deletes}/{total}"
        );
        // Counter ids come in no lexical order either ("-10" < "-9"), but in long sorted runs;
        // UUIDs are scattered: about half of the neighbours are out of order.
        let descents = order.windows(2).filter(|w| w[0] > w[1]).count();
        let share = descents as f64 / (order.len() - 1) as f64;
        if uuid {
            assert!((0.4..0.6).contains(&share), "{share}");
        } else {
            assert!(share < 0.05, "{share}");
        }
    }

    #[test]
    fn rest_body_and_wrap_around() {
        let start = DateTime::parse_from_rfc3339("2026-11-29T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // Two minutes of room: the third minute starts over at the first.
        let mut g = SampleGen::new("we\"ird".into(), 1, start, 7)
            .wrap_at(start + ChronoDuration::minutes(2));
        let v: serde_json::Value = serde_json::from_str(&g.rest_body(6)).unwrap();
        let s = v["samples"].as_array().unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1);
        assert_eq!(s.len(), 6);
        let starts: Vec<&str> = s.iter().map(|x| x["start"].as_str().unwrap()).collect();
        assert_eq!(
            starts,
            [
                "2026-11-29T09:00:00+00:00",
                "2026-11-29T09:00:00+00:00",
                "2026-11-29T09:01:00+00:00",
                "2026-11-29T09:01:00+00:00",
                "2026-11-29T09:00:00+00:00",
                "2026-11-29T09:00:00+00:00",
            ]
        );
        assert_eq!(s[0]["id"], "we\"ird-1");
        assert_eq!(s[5]["id"], "we\"ird-6");
        assert_eq!(s[4]["kind"], "activity_count");
    }

    #[test]
    fn series_frames_carry_both_kinds_of_the_same_minutes() {
        let start = DateTime::parse_from_rfc3339("2026-11-29T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut g = SampleGen::new("x".into(), 0, start, 7);
        let a: serde_json::Value = serde_json::from_str(&g.series_frame(1, 30, "dev")).unwrap();
        let h: serde_json::Value = serde_json::from_str(&g.series_frame(2, 30, "dev")).unwrap();
        let next: serde_json::Value = serde_json::from_str(&g.series_frame(3, 30, "dev")).unwrap();
        assert_eq!(
            (a["kind"].as_str(), h["kind"].as_str()),
            (Some("activity_count"), Some("heart_rate"))
        );
        assert_eq!(a["start"], h["start"]);
        assert_eq!(a["start"], "2026-11-29T10:00:00+01:00");
        assert_eq!(next["start"], "2026-11-29T10:30:00+01:00");
        assert_eq!(a["values"].as_array().unwrap().len(), 30);
        assert_eq!(
            (a["source"].as_str(), a["intervals"].as_bool()),
            (Some("dev"), Some(true))
        );
    }
}
