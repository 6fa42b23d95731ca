//! Model test of the window repair: after any sequence of upserts (new values, moved
//! times), deletions and inserts from two sources, a repaired window reads exactly like a
//! window built afresh from the store (the rebuild), minute by minute and hour by hour.

use chrono::Utc;
use uuid::Uuid;

use super::{WINDOW_MINUTES, Windows, read_series};
use crate::samples::{Kind, Sample, Timestamp};
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use crate::store::{OpOutcome, SampleOp, Store};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const SOURCES: [&str; 2] = ["Apple Watch", "iPhone"];

/// xorshift64*: a seeded generator, so a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

fn at(ms: i64) -> Timestamp {
    Timestamp {
        utc_ms: ms,
        offset_secs: 0,
    }
}

/// A phone-shaped sample: step intervals (some across an hour boundary), heart-rate
/// instants, sleep-stage intervals (which only mark hours), from either source.
fn random_sample(rng: &mut Rng, id: String, day0: i64) -> Sample {
    let start = day0 + rng.below(2 * 1440) * MINUTE_MS + rng.below(60) * 1000;
    let source = Some(SOURCES[rng.below(2) as usize].to_owned());
    let (kind, end, value) = match rng.below(10) {
        0..=4 => (
            Kind::StepCount,
            Some(at(start + (1 + rng.below(25)) * MINUTE_MS)),
            rng.below(600) as f64,
        ),
        5..=8 => (Kind::HeartRate, None, 50.0 + rng.below(100) as f64),
        _ => (
            Kind::SleepStage,
            Some(at(start + (10 + rng.below(80)) * MINUTE_MS)),
            rng.below(4) as f64,
        ),
    };
    Sample::new(id, kind, at(start), end, value, source)
}

/// What the window shows over its week, and what a rebuild from the store shows.
async fn compare(windows: &Windows, store: &dyn Store, user: Uuid, what: &str) {
    let (end, live) = windows.get(user).unwrap().with(|s, _| {
        let end = s.end_minute().unwrap();
        let from = end - WINDOW_MINUTES as i64;
        (
            end,
            (
                s.activity(from, end).collect::<Vec<_>>(),
                s.heart_rate(from, end).collect::<Vec<_>>(),
                s.coverage(from, end),
            ),
        )
    });
    let from = end - WINDOW_MINUTES as i64;
    let fresh = read_series(store, user, (from * MINUTE_MS, end * MINUTE_MS))
        .await
        .unwrap();
    assert_eq!(fresh.end_minute(), Some(end), "{what}: window end");
    let activity: Vec<_> = fresh.activity(from, end).collect();
    let first_difference = (0..activity.len()).find(|&i| activity[i] != live.0[i]);
    assert!(
        first_difference.is_none(),
        "{what}: activity differs first at minute {:?}: live {:?}, rebuilt {:?}",
        first_difference,
        first_difference.map(|i| live.0[i]),
        first_difference.map(|i| activity[i]),
    );
    assert!(
        fresh.heart_rate(from, end).eq(live.1.iter().copied()),
        "{what}: heart rate differs"
    );
    assert_eq!(fresh.coverage(from, end), live.2, "{what}: coverage");
}

#[tokio::test]
async fn a_repaired_window_reads_like_a_rebuilt_one_after_random_edits() {
    let now = Utc::now().timestamp_millis();
    let day0 = now - now.rem_euclid(DAY_MS) - 3 * DAY_MS;
    for seed in 1..=12u64 {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
        let windows = Windows::default();
        let user = Uuid::new_v4();
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        // Never edited: each source stays a step counter, and the window's end stays put.
        let mut anchors: Vec<Sample> = SOURCES
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let t = day0 + i as i64 * MINUTE_MS;
                Sample::new(
                    format!("anchor-{s}"),
                    Kind::StepCount,
                    at(t),
                    Some(at(t + MINUTE_MS)),
                    5.0,
                    Some((*s).to_owned()),
                )
            })
            .collect();
        anchors.push(Sample::new(
            "anchor-end",
            Kind::HeartRate,
            at(day0 + 2 * DAY_MS + HOUR_MS),
            None,
            60.0,
            Some(SOURCES[0].to_owned()),
        ));
        let mut live: Vec<Sample> = (0..400)
            .map(|i| random_sample(&mut rng, format!("s{i}"), day0))
            .collect();
        let mut all = anchors.clone();
        all.extend(live.iter().cloned());
        store.insert_samples(user, all.clone()).await.unwrap();
        windows.apply(user, &all);
        windows.ensure(&store, user).await.unwrap();
        compare(&windows, &store, user, &format!("seed {seed}, start")).await;

        let mut next_id = live.len();
        for round in 0..25 {
            let mut ops = Vec::new();
            for _ in 0..1 + rng.below(4) {
                let pick = rng.below(live.len() as u64) as usize;
                match rng.below(4) {
                    // Upsert: a higher version with a new value, sometimes at a new time.
                    0 | 1 => {
                        let old = &live[pick];
                        let mut new = random_sample(&mut rng, old.id.clone(), day0);
                        if rng.below(2) == 0 {
                            new.kind = old.kind;
                            new.start = old.start;
                            new.end = old.end;
                        }
                        new.version = Some(old.version.unwrap_or(0) + 1);
                        live[pick] = new.clone();
                        ops.push(SampleOp::Put(new));
                    }
                    2 => {
                        let gone = live.swap_remove(pick);
                        ops.push(SampleOp::Delete(gone.id));
                    }
                    _ => {
                        let s = random_sample(&mut rng, format!("s{next_id}"), day0);
                        next_id += 1;
                        live.push(s.clone());
                        ops.push(SampleOp::Put(s));
                    }
                }
            }
            let kept: Vec<Option<Sample>> = ops
                .iter()
                .map(|op| match op {
                    SampleOp::Put(s) => Some(s.clone()),
                    SampleOp::Delete(_) => None,
                })
                .collect();
            let written = store.write_samples(user, ops).await.unwrap();
            // What ingest hands the window service (ingest.rs).
            let mut spans: Vec<(i64, i64)> = written.removed.iter().map(Sample::span).collect();
            let mut inserted = Vec::new();
            for (outcome, put) in written.outcomes.iter().zip(kept) {
                match outcome {
                    OpOutcome::Inserted => inserted.extend(put),
                    OpOutcome::Updated => spans.extend(put.as_ref().map(Sample::span)),
                    _ => {}
                }
            }
            let repaired = windows.repaired();
            windows
                .repair(&store, user, &inserted, &spans)
                .await
                .unwrap();
            if !spans.is_empty() {
                assert_eq!(
                    windows.repaired(),
                    repaired + 1,
                    "seed {seed}, round {round}: repaired in place, not rebuilt"
                );
            }
            compare(
                &windows,
                &store,
                user,
                &format!("seed {seed}, round {round}"),
            )
            .await;
        }
    }
}
