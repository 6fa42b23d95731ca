//! The write cost of candidate SQLite layouts for samples, on SQLite alone (no server): the
//! evidence behind the choice of the store's layout (issue 20, BENCHMARKS.md "Sample layouts
//! on SQLite alone").
//!
//! Rules:
//! - Every layout takes the same writes: 100 users, batches of 60 samples (two kinds, one
//!   sample of each per minute, ids like the load generator's or random UUIDs like a phone's),
//!   one savepoint per batch, 67 batches per transaction (~4,000 samples, a group commit), the
//!   server's pragmas (`WAL`, `synchronous=FULL`, `temp_store=MEMORY`, 64 MiB cache). No
//!   checkpoint runs (the server checkpoints on another thread), so the WAL's frame count is
//!   the pages each commit wrote.
//! - Each layout writes what it needs to keep the store's guarantees: find a sample by id
//!   (idempotency, versions), list by kind and time, list by change seq (the feed). Only
//!   the two floors do not: `id-only` is the id index alone (rows keyed by id, nothing else),
//!   `time-only` the rows in time order alone (what an id index touched only in bulk would
//!   leave); neither is a layout.
//! - Rounds alternate the layouts; the median of the rounds is printed.
//!
//! Run: `cargo bench --bench sqlite_layouts` (`LAYOUT_ROUNDS=3`, `LAYOUT_IDS=counter|uuid`).

use std::time::Instant;

use rusqlite::{Connection, Transaction, params};

const USERS: usize = 100;
const BATCH: usize = 60;
const BATCHES_PER_COMMIT: usize = 67;
const COMMITS: usize = 150;
const HOUR_MS: i64 = 3_600_000;

const ROW: &str = "id TEXT NOT NULL, kind INTEGER NOT NULL, start_ms INTEGER NOT NULL,
    start_off INTEGER NOT NULL, end_ms INTEGER, end_off INTEGER, value REAL NOT NULL,
    source TEXT, extra TEXT, version INTEGER, seq INTEGER NOT NULL";

/// A candidate: its tables and what each write adds beyond the sample rows.
struct Layout {
    name: &'static str,
    schema: String,
    /// The user key is an integer (a per-user number) instead of the 16-byte id.
    int_user: bool,
    extra: Extra,
}

#[derive(Clone, Copy, PartialEq)]
enum Extra {
    None,
    /// One row per write listing its `(seq, id)`s (the feed without a per-sample index).
    Log,
    /// Per write: a row per (kind, hour) listing its `(start, id)`s, and the `Log` row.
    HintsAndLog,
    /// Per write: a row per (kind, hour) with the write's seq range, no ids.
    SeqRanges,
}

fn layouts() -> Vec<Layout> {
    vec![
        Layout {
            name: "v8 (today)",
            schema: format!(
                "CREATE TABLE samples (user_id BLOB NOT NULL, {ROW}, PRIMARY KEY (user_id, id))
                   WITHOUT ROWID;
                 CREATE INDEX by_kind_time ON samples (user_id, kind, start_ms, id);
                 CREATE INDEX by_seq ON samples (user_id, seq);"
            ),
            int_user: false,
            extra: Extra::None,
        },
        Layout {
            name: "v8, integer user key",
            schema: format!(
                "CREATE TABLE samples (user_id INTEGER NOT NULL, {ROW}, PRIMARY KEY (user_id, id))
                   WITHOUT ROWID;
                 CREATE INDEX by_kind_time ON samples (user_id, kind, start_ms, id);
                 CREATE INDEX by_seq ON samples (user_id, seq);"
            ),
            int_user: true,
            extra: Extra::None,
        },
        Layout {
            name: "time-clustered + id index + write log",
            schema: format!(
                "CREATE TABLE samples (user_id BLOB NOT NULL, {ROW},
                   PRIMARY KEY (user_id, kind, start_ms, id)) WITHOUT ROWID;
                 CREATE UNIQUE INDEX by_id ON samples (user_id, id);
                 CREATE TABLE log (user_id BLOB NOT NULL, seq INTEGER NOT NULL, ids BLOB NOT NULL,
                   PRIMARY KEY (user_id, seq)) WITHOUT ROWID;"
            ),
            int_user: false,
            extra: Extra::Log,
        },
        Layout {
            name: "id rows + hour hints + write log",
            schema: format!(
                "CREATE TABLE samples (user_id BLOB NOT NULL, {ROW}, PRIMARY KEY (user_id, id))
                   WITHOUT ROWID;
                 CREATE TABLE hints (user_id BLOB NOT NULL, hour INTEGER NOT NULL,
                   kind INTEGER NOT NULL, seq INTEGER NOT NULL, entries BLOB NOT NULL,
                   PRIMARY KEY (user_id, hour, kind, seq)) WITHOUT ROWID;
                 CREATE TABLE log (user_id BLOB NOT NULL, seq INTEGER NOT NULL, ids BLOB NOT NULL,
                   PRIMARY KEY (user_id, seq)) WITHOUT ROWID;"
            ),
            int_user: false,
            extra: Extra::HintsAndLog,
        },
        Layout {
            name: "seq-clustered + id index + seq ranges",
            schema: format!(
                "CREATE TABLE samples (user_id BLOB NOT NULL, {ROW}, PRIMARY KEY (user_id, seq))
                   WITHOUT ROWID;
                 CREATE UNIQUE INDEX by_id ON samples (user_id, id);
                 CREATE TABLE ranges (user_id BLOB NOT NULL, kind INTEGER NOT NULL,
                   hour INTEGER NOT NULL, seq_lo INTEGER NOT NULL, seq_hi INTEGER NOT NULL,
                   PRIMARY KEY (user_id, kind, hour, seq_lo)) WITHOUT ROWID;"
            ),
            int_user: false,
            extra: Extra::SeqRanges,
        },
        Layout {
            name: "time-only (floor, not a layout)",
            schema: format!(
                "CREATE TABLE samples (user_id BLOB NOT NULL, {ROW},
                   PRIMARY KEY (user_id, kind, start_ms, id)) WITHOUT ROWID;"
            ),
            int_user: false,
            extra: Extra::None,
        },
        Layout {
            name: "id-only (floor, not a layout)",
            schema: format!(
                "CREATE TABLE samples (user_id BLOB NOT NULL, {ROW}, PRIMARY KEY (user_id, id))
                   WITHOUT ROWID;"
            ),
            int_user: false,
            extra: Extra::None,
        },
    ]
}

struct Run {
    per_sec: f64,
    pages_per_commit: f64,
    cpu_us_per_sample: f64,
}

fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// One sample's id: the load generator's shape (`<run>-<session>-<counter>`) or a UUID.
fn sample_id(uuid_ids: bool, user: usize, n: usize, rng: &mut u64) -> String {
    if uuid_ids {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let a = *rng;
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        uuid::Uuid::from_u64_pair(a, *rng).to_string()
    } else {
        format!("lt-8f3a9c-{user}-{n}")
    }
}

/// `(kind, start_ms, id)` of a sample a batch wrote.
type Written = (i64, i64, String);

fn write_extra(
    tx: &Transaction,
    layout: &Layout,
    user: &[u8],
    head: i64,
    written: &[Written],
) -> rusqlite::Result<()> {
    let log = || {
        let ids: Vec<u8> = written
            .iter()
            .enumerate()
            .flat_map(|(i, (_, _, id))| {
                let mut e = (head - (written.len() - 1 - i) as i64)
                    .to_le_bytes()
                    .to_vec();
                e.extend(id.as_bytes());
                e.push(0);
                e
            })
            .collect();
        tx.prepare_cached("INSERT INTO log VALUES (?1, ?2, ?3)")?
            .execute(params![user, head, ids])
            .map(drop)
    };
    let mut groups: Vec<((i64, i64), Vec<&Written>)> = Vec::new();
    for w in written {
        let key = (w.0, w.1.div_euclid(HOUR_MS));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(w),
            None => groups.push((key, vec![w])),
        }
    }
    match layout.extra {
        Extra::None => Ok(()),
        Extra::Log => log(),
        Extra::HintsAndLog => {
            for ((kind, hour), entries) in &groups {
                let blob: Vec<u8> = entries
                    .iter()
                    .flat_map(|(_, start, id)| {
                        let mut e = start.to_le_bytes().to_vec();
                        e.extend(id.as_bytes());
                        e.push(0);
                        e
                    })
                    .collect();
                tx.prepare_cached("INSERT INTO hints VALUES (?1, ?2, ?3, ?4, ?5)")?
                    .execute(params![user, hour, kind, head, blob])?;
            }
            log()
        }
        Extra::SeqRanges => {
            for ((kind, hour), _) in &groups {
                tx.prepare_cached("INSERT INTO ranges VALUES (?1, ?2, ?3, ?4, ?5)")?
                    .execute(params![
                        user,
                        kind,
                        hour,
                        head - written.len() as i64 + 1,
                        head
                    ])?;
            }
            Ok(())
        }
    }
}

fn run(layout: &Layout, uuid_ids: bool) -> rusqlite::Result<Run> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut c = Connection::open(dir.path().join("layout.db"))?;
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 0;",
    )?;
    c.execute_batch(&layout.schema)?;
    let insert = "INSERT INTO samples (user_id, id, kind, start_ms, start_off, end_ms, end_off,
          value, source, extra, version, seq)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, NULL, ?9)
        ON CONFLICT DO NOTHING";
    let users: Vec<[u8; 16]> = (0..USERS)
        .map(|i| {
            *uuid::Uuid::from_u64_pair(0x0190_0000_0000_7000 + i as u64, 0x8000 + i as u64)
                .as_bytes()
        })
        .collect();
    let mut counters = vec![0usize; USERS];
    let mut minute = vec![1_700_000_000_000i64; USERS];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let (mut u, mut n) = (0usize, 0usize);
    let (t0, cpu0) = (Instant::now(), cpu_seconds());
    for _ in 0..COMMITS {
        let tx = c.transaction()?;
        for _ in 0..BATCHES_PER_COMMIT {
            u = (u + 37) % USERS;
            tx.execute_batch("SAVEPOINT batch")?;
            let mut written = Vec::with_capacity(BATCH);
            {
                let mut st = tx.prepare_cached(insert)?;
                for j in 0..BATCH {
                    counters[u] += 1;
                    let kind = (j % 2) as i64;
                    if kind == 0 {
                        minute[u] += 60_000;
                    }
                    let (start, seq) = (minute[u], counters[u] as i64);
                    let id = sample_id(uuid_ids, u, counters[u], &mut rng);
                    if layout.int_user {
                        st.execute(params![
                            u as i64 + 1,
                            id,
                            kind,
                            start,
                            3600,
                            start + 60_000,
                            3600,
                            42.0,
                            seq
                        ])?;
                    } else {
                        st.execute(params![
                            &users[u][..],
                            id,
                            kind,
                            start,
                            3600,
                            start + 60_000,
                            3600,
                            42.0,
                            seq
                        ])?;
                    }
                    written.push((kind, start, id));
                    n += 1;
                }
            }
            write_extra(&tx, layout, &users[u], counters[u] as i64, &written)?;
            tx.execute_batch("RELEASE batch")?;
        }
        tx.commit()?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let frames: i64 = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    Ok(Run {
        per_sec: n as f64 / secs,
        pages_per_commit: frames as f64 / COMMITS as f64,
        cpu_us_per_sample: cpu * 1e6 / n as f64,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> rusqlite::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let rounds: usize = std::env::var("LAYOUT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let uuid_ids = std::env::var("LAYOUT_IDS").is_ok_and(|v| v == "uuid");
    let layouts = layouts();
    let mut results: Vec<Vec<Run>> = layouts.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (i, layout) in layouts.iter().enumerate() {
            let r = run(layout, uuid_ids)?;
            eprintln!(
                "round {round} {:<40} {:>9.0} samples/s {:>7.0} WAL pages/commit {:>5.2} µs CPU/sample",
                layout.name, r.per_sec, r.pages_per_commit, r.cpu_us_per_sample
            );
            results[i].push(r);
        }
    }
    let ids = if uuid_ids { "uuid" } else { "counter" };
    println!(
        "| layout ({ids} ids) | samples/s, median of {rounds} | WAL pages per commit | CPU µs per sample |"
    );
    println!("|---|---|---|---|");
    for (layout, runs) in layouts.iter().zip(&results) {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} |",
            layout.name,
            median(runs.iter().map(|r| r.per_sec).collect()),
            median(runs.iter().map(|r| r.pages_per_commit).collect()),
            median(runs.iter().map(|r| r.cpu_us_per_sample).collect()),
        );
    }
    Ok(())
}
