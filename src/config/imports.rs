//! Imports: where the uploaded exports are kept (`--archive`) and for how long.
//!
//! Rules: serve-only (`clarity import` reads the file it is given and keeps nothing).

use clap::Args;

use crate::interop::archive::S3Location;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Imports")]
pub struct ImportsConfig {
    /// Days an uploaded export (`POST /api/v1/imports`) is kept so that its import can be
    /// re-run; then it is deleted (at start and hourly). At least 1. Erasing the account
    /// deletes its uploads at once.
    #[arg(long, env = "CLARITY_IMPORT_RETENTION_DAYS", default_value_t = 30)]
    pub import_retention_days: u32,

    /// Where uploaded exports are kept: `s3://BUCKET[/PREFIX]` (objects
    /// `PREFIX/<user_id>/<import_id>.export`; credentials and region from the standard AWS
    /// chain). Unset: the data dir's `imports/`. The bucket is checked at start.
    #[arg(long, env = "CLARITY_ARCHIVE")]
    pub archive: Option<S3Location>,

    /// S3 endpoint override for `--archive`, e.g. `http://127.0.0.1:5000` for moto or MinIO
    /// (path-style addressing).
    #[arg(long, env = "CLARITY_ARCHIVE_ENDPOINT")]
    pub archive_endpoint: Option<String>,
}
