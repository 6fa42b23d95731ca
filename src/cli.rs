//! Commands that run and exit instead of serving (`analyze`, `score`).
//!
//! Rules: results go to stdout, diagnostics to stderr; a malformed input is exit code 2 with
//! a message naming the line, any other failure exit code 1.

use std::io::Write;
use std::process::ExitCode;

use crate::analytics::{self, AnalysisOptions, ClockOffset};
use crate::config::{AnalyzeArgs, ScoreArgs};
use crate::scoring;

/// `clarity analyze`: the same analytics code path the server runs on a window.
pub fn analyze(args: &AnalyzeArgs) -> ExitCode {
    let name = args.input.display();
    let text = match std::fs::read_to_string(&args.input) {
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
    let mut out = std::io::stdout().lock();
    let printed = serde_json::to_writer_pretty(&mut out, &result)
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
