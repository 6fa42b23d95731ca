//! `clarity analyze` on many inputs at once: every `*.csv` of a directory (`--input DIR`), or
//! an NDJSON file of user-weeks (`--batch FILE`), one result per line on stdout, analysed on
//! all cores (`--jobs`).
//!
//! Rules:
//! - Results come out in input order (directory: by file name; NDJSON: by line), one JSON
//!   object a line: `{"id", "result"}`, or `{"id", "error"}` for an input that could not be
//!   read (naming the line), which never stops the others. The exit code is 2 when any input
//!   was malformed, else 0 (1 when stdout cannot be written).
//! - Memory stays bounded whatever the file's size: a reader hands inputs to the workers
//!   through a bounded queue, and a writer prints results as soon as their turn comes.
//! - Each input gets exactly the analysis `clarity analyze --input FILE` prints for it.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, mpsc};

use serde::Deserialize;
use serde_json::json;

use crate::analytics::{self, AnalysisOptions, ClockOffset, MinuteSeries};

/// One user-week of the NDJSON input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserWeek {
    /// Echoed on the result line.
    id: String,
    /// The first minute, RFC 3339 on a whole minute.
    start: String,
    /// One count a minute from `start`; `null` is a missing minute.
    counts: Vec<Option<f64>>,
    /// Local clock for clock times and nights, minutes east of UTC (default 0).
    #[serde(default)]
    utc_offset_minutes: i32,
}

enum Input {
    Line { line: usize, text: String },
    File(PathBuf),
}

/// The result line of one input, and whether the input was malformed.
fn analyse(input: Input, default_offset: i32) -> (String, bool) {
    let (id, outcome) = match input {
        Input::File(path) => {
            let id = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let outcome = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|t| analytics::parse_minute_csv(&t).map_err(|e| e.to_string()))
                .and_then(|s| run(&s, default_offset));
            (json!(id), outcome)
        }
        Input::Line { line, text } => match serde_json::from_str::<UserWeek>(&text) {
            Ok(w) => {
                let outcome = week(&w).and_then(|s| run(&s, w.utc_offset_minutes));
                (
                    json!(w.id),
                    outcome.map_err(|e| format!("line {line}: {e}")),
                )
            }
            Err(e) => (
                serde_json::Value::Null,
                Err(format!(
                    "line {line}: not a user-week {{\"id\", \"start\", \"counts\", \"utc_offset_minutes\"?}}: {e}"
                )),
            ),
        },
    };
    match outcome {
        Ok(result) => (json!({"id": id, "result": result}).to_string(), false),
        Err(error) => (json!({"id": id, "error": error}).to_string(), true),
    }
}

fn week(w: &UserWeek) -> Result<MinuteSeries, String> {
    let start = chrono::DateTime::parse_from_rfc3339(&w.start)
        .map_err(|e| format!("start `{}` is not RFC 3339: {e}", w.start))?;
    if w.counts.len() > analytics::csv::MAX_MINUTES {
        return Err(format!("at most {} counts", analytics::csv::MAX_MINUTES));
    }
    MinuteSeries::from_options(start.timestamp_millis(), &w.counts)
        .map_err(|e| format!("not a valid series: {e}"))
}

fn run(series: &MinuteSeries, offset_minutes: i32) -> Result<serde_json::Value, String> {
    let clock = ClockOffset::from_minutes(offset_minutes)
        .ok_or("utc_offset_minutes must be less than a day (|m| < 1440)")?;
    let result = analytics::analyze(
        series,
        &AnalysisOptions {
            clock,
            ..Default::default()
        },
    );
    serde_json::to_value(&result).map_err(|e| e.to_string())
}

/// Workers: `jobs`, or every core when 0.
fn workers(jobs: usize) -> usize {
    if jobs > 0 {
        jobs
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Runs `feed` (which sends the inputs, numbered from 0) through the pool and prints the
/// results in order.
fn pool(
    jobs: usize,
    default_offset: i32,
    feed: impl FnOnce(&mpsc::SyncSender<(usize, Input)>) -> Result<(), String>,
) -> ExitCode {
    let n = workers(jobs);
    let (in_tx, in_rx) = mpsc::sync_channel::<(usize, Input)>(2 * n);
    // Each worker owns a handle: once they have all stopped, the queue closes and the feeder
    // stops too.
    let in_rx = Arc::new(Mutex::new(in_rx));
    let (out_tx, out_rx) = mpsc::channel::<(usize, String, bool)>();
    let outcome = std::thread::scope(|scope| {
        for _ in 0..n {
            let out_tx = out_tx.clone();
            let in_rx = Arc::clone(&in_rx);
            scope.spawn(move || {
                loop {
                    // The lock is held only to take the next input.
                    let next = in_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok((i, input))) = next else { return };
                    let (line, bad) = analyse(input, default_offset);
                    if out_tx.send((i, line, bad)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(out_tx);
        drop(in_rx);
        let writer = scope.spawn(move || -> (bool, std::io::Result<()>) {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut waiting = BTreeMap::new();
            let mut next = 0usize;
            let mut malformed = false;
            for (i, line, bad) in out_rx {
                malformed |= bad;
                waiting.insert(i, line);
                while let Some(line) = waiting.remove(&next) {
                    if let Err(e) = writeln!(out, "{line}") {
                        return (malformed, Err(e));
                    }
                    next += 1;
                }
            }
            (malformed, out.flush())
        });
        let fed = feed(&in_tx);
        drop(in_tx);
        (fed, writer.join())
    });
    match outcome {
        (Err(e), _) => {
            eprintln!("clarity analyze: {e}");
            ExitCode::from(2)
        }
        (Ok(()), Ok((_, Err(e)))) => {
            eprintln!("clarity analyze: cannot write the results: {e}");
            ExitCode::FAILURE
        }
        (Ok(()), Ok((true, Ok(())))) => ExitCode::from(2),
        (Ok(()), Ok((false, Ok(())))) => ExitCode::SUCCESS,
        (Ok(()), Err(_)) => ExitCode::FAILURE,
    }
}

/// `clarity analyze --input DIR`: every `*.csv` in it, by name.
pub fn directory(dir: &Path, jobs: usize, utc_offset_minutes: i32) -> ExitCode {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "csv"))
            .collect(),
        Err(e) => {
            eprintln!("clarity analyze: cannot read {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    files.sort();
    pool(jobs, utc_offset_minutes, |tx| {
        for (i, f) in files.into_iter().enumerate() {
            if tx.send((i, Input::File(f))).is_err() {
                return Err("the workers stopped".into());
            }
        }
        Ok(())
    })
}

/// `clarity analyze --batch FILE`: one user-week a line (blank lines skipped).
pub fn ndjson(path: &Path, jobs: usize) -> ExitCode {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("clarity analyze: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let name = path.display().to_string();
    pool(jobs, 0, move |tx| {
        let mut i = 0;
        for (n, text) in std::io::BufReader::new(file).lines().enumerate() {
            let text = text.map_err(|e| format!("{name}: line {}: {e}", n + 1))?;
            if text.trim().is_empty() {
                continue;
            }
            if tx.send((i, Input::Line { line: n + 1, text })).is_err() {
                return Err("the workers stopped".into());
            }
            i += 1;
        }
        Ok(())
    })
}
