//! Imports: how long the uploaded exports are kept (and, with `--archive`, where).
//!
//! Rules: serve-only (`clarity import` reads the file it is given and keeps nothing).

use clap::Args;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Imports")]
pub struct ImportsConfig {
    /// Days an uploaded export (`POST /api/v1/imports`) is kept so that its import can be
    /// re-run; then it is deleted (at start and hourly). At least 1. Erasing the account
    /// deletes its uploads at once.
    #[arg(long, env = "CLARITY_IMPORT_RETENTION_DAYS", default_value_t = 30)]
    pub import_retention_days: u32,
}
