//! Commands that run and exit instead of serving (`analyze`, `score`).
//!
//! Rules: results go to stdout, diagnostics to stderr; a malformed input is exit code 2 with
//! a message naming the line (the sample, for `--samples`), any other failure exit code 1.
//! `analyze --samples` runs the server itself (ingest, window, analysis) on a throwaway
//! SQLite store and an in-process bus, whatever the environment configures: what it prints
//! is what the server computes, never a second implementation of it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use serde_json::value::RawValue;

use crate::analytics::{self, AnalysisOptions, ClockOffset};
use crate::app::App;
use crate::config::{AnalyzeArgs, AuthMode, Config, ScoreArgs, StoreKind};
use crate::pipeline::analysis::{self, AnalysisError, Trigger};
use crate::{ingest, samples, scoring};

/// Samples committed per batch, as a WebSocket frame at the default limit.
const BATCH: usize = 5000;

/// `clarity analyze`: the same analytics code path the server runs on a window.
pub fn analyze(args: &AnalyzeArgs) -> ExitCode {
    if let Some(batch) = &args.batch {
        return crate::analyze_batch::ndjson(batch, args.jobs);
    }
    let input = match (&args.samples, &args.input) {
        (Some(path), _) => return analyze_samples(path),
        (None, Some(dir)) if dir.is_dir() => {
            if args.per_minute.is_some() {
                eprintln!("clarity analyze: --per-minute takes one input file, not a directory");
                return ExitCode::from(2);
            }
            return crate::analyze_batch::directory(dir, args.jobs, args.utc_offset_minutes);
        }
        (None, Some(input)) => input,
        // clap requires one of them.
        (None, None) => return ExitCode::from(2),
    };
    let name = input.display();
    let text = match std::fs::read_to_string(input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("clarity analyze: cannot read {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let series = match analytics::parse_minute_csv(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("clarity analyze: {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(clock) = ClockOffset::from_minutes(args.utc_offset_minutes) else {
        eprintln!("clarity analyze: --utc-offset-minutes must be less than a day (|m| < 1440)");
        return ExitCode::from(2);
    };
    let result = analytics::analyze(
        &series,
        &AnalysisOptions {
            clock,
            ..Default::default()
        },
    );
    if let Some(path) = &args.per_minute {
        let written = std::fs::File::create(path)
            .and_then(|f| analytics::write_per_minute_csv(&series, std::io::BufWriter::new(f)));
        if let Err(e) = written {
            eprintln!("clarity analyze: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    print_json(&result)
}

/// `clarity analyze --samples FILE.json`: the samples through the server's ingest into a
/// window, then the analysis a client's `analyze` gets, printed as that document.
fn analyze_samples(path: &Path) -> ExitCode {
    let name = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("clarity analyze: cannot read {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let raw: Vec<&RawValue> = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clarity analyze: {name}: not a JSON array of samples: {e}");
            return ExitCode::from(2);
        }
    };
    // The server would store the valid ones and reject the rest; an offline analysis of a
    // file with bad samples would silently describe less than the file holds.
    let (_, rejected) = samples::parse_batch(&raw, chrono::Utc::now().timestamp_millis());
    if let Some(first) = rejected.first() {
        eprintln!(
            "clarity analyze: {name}: {} invalid sample(s); the first is sample {} ({}): {}",
            rejected.len(),
            first.index,
            first.code,
            first.message
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("clarity analyze: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let document = match runtime.block_on(run_server_analysis(&raw)) {
        Ok(Some(d)) => d,
        Ok(None) => {
            eprintln!("clarity analyze: {name}: no activity or step samples to analyse");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("clarity analyze: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    print_json(&document)
}

/// A one-node server on a temporary SQLite store: ingest in frame-sized batches (in order, as
/// one session would), then a requested analysis; its stored document is the result (`None`:
/// nothing to analyse).
async fn run_server_analysis(raw: &[&RawValue]) -> anyhow::Result<Option<serde_json::Value>> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_tests(dir.path());
    // Nothing of the environment's deployment is touched or needed.
    config.store.kind = StoreKind::Sqlite;
    config.bus.url = "memory".into();
    config.auth.mode = AuthMode::Local;
    config.insights.api_key = None;
    config.imports.archive = None;
    let app = App::new(config).await?;
    // A fixed user: the analysis id is a digest of user and data, so the same file always
    // gets the same id.
    let user = uuid::Uuid::nil();
    for batch in raw.chunks(BATCH) {
        let prepared = ingest::prepare(batch);
        app.ingest.commit(user, prepared, "cli").await?;
    }
    let result = analysis::run(&app.pipeline, user, Trigger::Request, None).await;
    // Analyses of completed days started during ingest are not waited for beyond this.
    app.sessions.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), app.sessions.wait()).await;
    let (record, _new) = match result {
        Ok(r) => r,
        Err(AnalysisError::NoData) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(serde_json::from_str(&record.body)?))
}

/// `clarity score`: one week through a PAT bundle, on this thread (no server, no pool).
pub fn score(args: &ScoreArgs) -> ExitCode {
    // Configuration first: no point reading a week of data that cannot be scored.
    let Some(lib) = scoring::runtime::library_path(args.onnxruntime_lib.as_deref()) else {
        eprintln!(
            "clarity score: ONNX Runtime library not configured: pass --onnxruntime-lib or set \
             CLARITY_ONNXRUNTIME_LIB (or ORT_DYLIB_PATH) to libonnxruntime.so.1.31.1 from the \
             onnxruntime==1.31.1 wheel (`scripts/pat-env lib` prints it)"
        );
        return ExitCode::FAILURE;
    };
    let name = args.input.display();
    let text = match std::fs::read_to_string(&args.input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("clarity score: cannot read {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let series = match analytics::parse_minute_csv(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("clarity score: {name}: {e}");
            return ExitCode::from(2);
        }
    };
    if series.len() != scoring::INPUT_LENGTH {
        eprintln!(
            "clarity score: {name}: {} minutes from first to last row; PAT needs exactly {} (one week)",
            series.len(),
            scoring::INPUT_LENGTH
        );
        return ExitCode::from(2);
    }
    let week: Vec<Option<f64>> = (0..series.len()).map(|i| series.get(i)).collect();
    let bundle = match scoring::Bundle::open(&args.model) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("clarity score: {e}");
            return ExitCode::from(2);
        }
    };
    let run = || -> Result<(scoring::Output, f64), String> {
        let env = scoring::runtime::environment(&lib)?;
        let mut model = scoring::Model::open(env, &bundle, 0)?;
        let mut input = Vec::with_capacity(scoring::INPUT_LENGTH);
        let missing = bundle.scaler.apply(&week, &mut input);
        let out = model.run(&input, args.tokens)?.pop().ok_or("no output")?;
        Ok((out, missing))
    };
    let (out, missing) = match run() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clarity score: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scores: serde_json::Map<String, serde_json::Value> = out
        .scores
        .into_iter()
        .map(|(k, v)| (k, serde_json::json!(v)))
        .collect();
    let mut doc = serde_json::json!({
        "model": bundle.manifest.model,
        "embedding": out.embedding,
        "scores": scores,
        "missing_fraction": missing,
    });
    if let Some(tokens) = out.tokens {
        let rows: Vec<&[f32]> = tokens.chunks(scoring::EMBED_DIM).collect();
        doc["tokens"] = serde_json::json!(rows);
    }
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{doc}") {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clarity score: cannot write the result: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `value` as pretty JSON on stdout: what both forms of `clarity analyze` answer.
fn print_json(value: &impl serde::Serialize) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let printed = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out));
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clarity analyze: cannot write the result: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `clarity import --apple-health FILE --check`: the export parsed and mapped as an import
/// would, nothing stored; the counts as JSON on stdout, the time taken on stderr (the parse
/// cost alone: BENCHMARKS.md compares it with a real import of the same file). A malformed
/// export is exit code 2, as for an import.
async fn check_export(
    path: std::path::PathBuf,
    limits: crate::interop::apple_health::Limits,
) -> ExitCode {
    let started = std::time::Instant::now();
    let result = crate::interop::apple_health::check(path, limits).await;
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(report) => {
            eprintln!(
                "clarity import --check: {} records read, {} samples in {secs:.1} s ({:.0} records/s)",
                report.records_read,
                report.samples,
                report.records_read as f64 / secs.max(1e-9)
            );
            print_json(&report)
        }
        Err((report, e)) => {
            eprintln!("clarity import --check: {e}");
            let _ = print_json(&report);
            ExitCode::from(2)
        }
    }
}

/// `clarity import --apple-health FILE --user EMAIL`: the export through the same core import
/// the server runs (`POST /api/v1/imports`), straight into the configured store. Prints the
/// report as JSON; a malformed export is exit code 2 with the error (line, offset) on stderr.
/// Analyses are not computed here: the server computes the latest week's when the user's
/// window is next read.
pub fn import(args: &crate::config::ImportArgs) -> ExitCode {
    use crate::interop::apple_health::{self, ImportError, Limits};
    let config = args.config();
    crate::telemetry::init(&config.telemetry);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("clarity import: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let limits = Limits {
        max_inflated_bytes: config.limits.max_import_inflated_bytes,
        ..Limits::default()
    };
    let Some(user) = args.user.as_deref().filter(|_| !args.check) else {
        return runtime.block_on(check_export(args.apple_health.clone(), limits));
    };
    runtime.block_on(async {
        let store = match crate::app::open_store(&config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("clarity import: cannot open the store: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let email = match crate::auth::normalise_email(user) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("clarity import: --user: {e}");
                return ExitCode::from(2);
            }
        };
        let user = match store.user_by_email(&email).await {
            Ok(Some(u)) => u.id,
            Ok(None) => {
                eprintln!("clarity import: no account with that email in this store");
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("clarity import: {e}");
                return ExitCode::FAILURE;
            }
        };
        let result = apple_health::run(
            store.clone(),
            user,
            args.apple_health.clone(),
            limits,
            |r: &apple_health::ImportReport| {
                eprintln!(
                    "clarity import: {} of {} bytes, {} records read, {} samples stored",
                    r.bytes_done, r.bytes_total, r.records_read, r.samples_stored
                );
            },
        )
        .await;
        store.close().await;
        match result {
            Ok(report) => print_json(&report),
            Err((report, e)) => {
                eprintln!("clarity import: {e}");
                let _ = print_json(&report);
                match e {
                    ImportError::Store(_) | ImportError::Io(_) => ExitCode::FAILURE,
                    _ => ExitCode::from(2),
                }
            }
        }
    })
}
