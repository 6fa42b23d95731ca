//! Commands that run and exit instead of serving.
//!
//! Rules: results go to stdout, diagnostics to stderr; a malformed input is exit code 2 with
//! a message naming the line, any other failure exit code 1.

use std::io::Write;
use std::process::ExitCode;

use crate::analytics::{self, AnalysisOptions, ClockOffset};
use crate::config::AnalyzeArgs;

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
    let result = analytics::analyze(&series, &AnalysisOptions { clock });
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
