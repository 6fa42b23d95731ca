//! Command line and environment configuration, grouped by the subsystem each setting
//! configures (one `#[command(flatten)]` struct per group, one help heading each).
//!
//! Rules: every setting is a flag with an `env = "CLARITY_..."` twin and a default that works
//! on a laptop (exceptions, with reasons, are listed in `tests/api/cli_flags.rs`); secrets are
//! `SecretString` and never printed (`Debug` redacts them). A subsystem is built from its own
//! group, not from the whole [`Config`]. The flags, their environment variables and defaults
//! are pinned by `tests/fixtures/cli-flags.txt`: moving a setting between groups must not
//! change them.

mod auth;
mod cluster;
mod imports;
mod insights;
mod limits;
mod scoring;
mod server;
mod store;
mod telemetry;
mod tls;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use auth::{AuthConfig, AuthMode, CognitoConfig};
pub use cluster::{BusConfig, WindowsConfig};
pub use imports::ImportsConfig;
pub use insights::InsightsConfig;
pub use limits::LimitsConfig;
pub use scoring::ScoringConfig;
pub use server::ServerConfig;
pub use store::{DataKeyConfig, DynamoConfig, SqliteConfig, StoreConfig, StoreKind, WritesConfig};
pub use telemetry::{AuditConfig, LogFormat, TelemetryConfig, TracingConfig};
pub use tls::TlsConfig;

#[derive(Debug, Parser)]
#[command(
    name = "clarity",
    version,
    about = "Real-time server for wearable health data"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(Box<Config>),
    /// Create the store's tables (idempotent) and exit. Production DynamoDB tables come from
    /// the deploy template instead.
    Migrate(MigrateArgs),
    /// Analyse an actigraphy CSV (`timestamp_utc_iso8601,activity_count`, one row a minute,
    /// `--input`) or a JSON array of samples as a phone sends them (`--samples`) with the
    /// server's own analytics and print one JSON document.
    Analyze(AnalyzeArgs),
    /// Score one week of activity (a 10080-row CSV in the `analyze` format) with a PAT model
    /// bundle and print `{"embedding":[96 floats],"scores":{...}}`.
    Score(ScoreArgs),
    /// Copy the embedded SQLite store to one file while the server runs (SQLite's online
    /// backup: a consistent snapshot of every committed write). With `--store dynamodb`,
    /// export the table to a folder in the format of DynamoDB's export to S3 (a parallel
    /// Scan; the table's point-in-time recovery stays the primary backup: deploy/README.md).
    Backup(BackupArgs),
    /// Put a `clarity backup` file in place as a data folder's store; stop the server that
    /// uses the folder first. With `--store dynamodb`, load a backup folder (ours, or an AWS
    /// export downloaded from S3) into a new, empty table.
    Restore(RestoreArgs),
    /// Re-encrypt the embedded store under a new data key (`PRAGMA rekey`), or encrypt a
    /// plain store for the first time (no current key given); stop the server first.
    Rekey(RekeyArgs),
    /// Import an Apple Health export (export.zip or export.xml) into an account's samples,
    /// writing straight to the configured store, and print the import report as JSON.
    Import(ImportArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The data folder of the store to copy (the server's `--data-dir`).
    #[arg(long, env = "CLARITY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Where to write the backup; refused if it exists. With `--store dynamodb`, a folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Which store to back up: `sqlite` (the data folder's file) or `dynamodb` (the table
    /// named by the DynamoDB flags).
    #[arg(
        long = "store",
        env = "CLARITY_STORE",
        value_enum,
        default_value = "sqlite"
    )]
    pub store: StoreKind,
    #[command(flatten)]
    pub dynamodb: DynamoConfig,
    /// With `--store dynamodb`: parallel Scan segments, one data file each.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub segments: u32,
    /// The store's data key, if it is encrypted; the backup is encrypted with it too.
    #[command(flatten)]
    pub key: DataKeyConfig,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// A file written by `clarity backup` (with `--store dynamodb`, its folder).
    #[arg(long)]
    pub from: PathBuf,
    /// The data folder to restore into; refused unless it is missing or empty.
    #[arg(long, env = "CLARITY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Replace the store of a data folder that is not empty (other files, such as the
    /// generated signing key, are kept). Not with `--store dynamodb`: a table restore never
    /// overwrites.
    #[arg(long)]
    pub force: bool,
    /// Which store to restore into: `sqlite` (a data folder) or `dynamodb` (a new table named
    /// by the DynamoDB flags; `--from` is a backup folder).
    #[arg(
        long = "store",
        env = "CLARITY_STORE",
        value_enum,
        default_value = "sqlite"
    )]
    pub store: StoreKind,
    #[command(flatten)]
    pub dynamodb: DynamoConfig,
    /// The data key the backup was encrypted with (that of the store it was taken from).
    #[command(flatten)]
    pub key: DataKeyConfig,
}

#[derive(Debug, Clone, Args)]
pub struct RekeyArgs {
    /// The data folder of the store (the server's `--data-dir`), with its server stopped.
    #[arg(long, env = "CLARITY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The store's current key; none for a plain store, which is then encrypted.
    #[command(flatten)]
    pub key: DataKeyConfig,
    /// File holding the new data key (64 hex digits, `openssl rand -hex 32`).
    #[arg(long)]
    pub new_key_file: PathBuf,
}

/// `clarity import`: the store settings of serve, the file and the account.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The export: export.zip as Health writes it, or its export.xml.
    #[arg(long)]
    pub apple_health: PathBuf,
    /// The account (email) whose samples the export becomes.
    #[arg(long, required_unless_present = "check")]
    pub user: Option<String>,
    /// Only read and map the export (no store is opened, nothing is written) and print what
    /// an import would read, map, reject and leave unmapped, and how long parsing took.
    #[arg(long, conflicts_with = "user")]
    pub check: bool,
    #[command(flatten)]
    pub store: StoreConfig,
    #[command(flatten)]
    pub sqlite: SqliteConfig,
    #[command(flatten)]
    pub dynamodb: DynamoConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

impl ImportArgs {
    /// The serve defaults with these settings (what opening the store takes).
    pub fn config(&self) -> Config {
        let mut c = Cli::parse_from(["clarity"]).into_config();
        c.store = self.store.clone();
        c.sqlite = self.sqlite.clone();
        c.dynamodb = self.dynamodb.clone();
        c.telemetry = self.telemetry.clone();
        c
    }
}

#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// Model bundle folder (written by `scripts/pat-export`).
    #[arg(long)]
    pub model: PathBuf,
    /// Input CSV, `timestamp_utc_iso8601,activity_count`, 10080 minutes; an empty count is a
    /// missing minute (filled with the scaler's mean).
    #[arg(long)]
    pub input: PathBuf,
    /// ONNX Runtime shared library (`libonnxruntime.so.1.31.1` from the onnxruntime wheel);
    /// falls back to `ORT_DYLIB_PATH`.
    #[arg(long, env = "CLARITY_ONNXRUNTIME_LIB")]
    pub onnxruntime_lib: Option<PathBuf>,
    /// Also print the token rows (`tokens`, tokens × 96).
    #[arg(long)]
    pub tokens: bool,
}

/// `clarity migrate` takes only the settings that creating the store's tables uses: the
/// groups it shares with serve.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub store: StoreConfig,
    #[command(flatten)]
    pub sqlite: SqliteConfig,
    #[command(flatten)]
    pub dynamodb: DynamoConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

impl MigrateArgs {
    /// The serve defaults with these settings: what `app::migrate` takes.
    pub fn into_config(self) -> Config {
        let mut c = Cli::parse_from(["clarity"]).into_config();
        c.store = self.store;
        c.sqlite = self.sqlite;
        c.dynamodb = self.dynamodb;
        c.telemetry = self.telemetry;
        c
    }
}

#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// Input CSV; an empty count is a missing minute. A directory: every `*.csv` in it, by
    /// name, one result a line (`{"id": file name, "result"|"error"}`), on all cores.
    #[arg(
        long,
        required_unless_present_any = ["samples", "batch"],
        conflicts_with_all = ["samples", "batch"]
    )]
    pub input: Option<PathBuf>,
    /// Input NDJSON of user-weeks, one a line: `{"id", "start" (RFC 3339, whole minute),
    /// "counts": [number|null, ...], "utc_offset_minutes"?}`; one result a line
    /// (`{"id", "result"|"error"}`) in input order, on all cores.
    #[arg(long, conflicts_with_all = ["samples", "per_minute"])]
    pub batch: Option<PathBuf>,
    /// Worker threads for a directory or `--batch` (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Input JSON: an array of sample objects as clients send them (protocol/README.md).
    /// They go through the server's own ingest and analysis (validation, unit conversion,
    /// window, analysis document) on a throwaway store, and the analysis document is printed
    /// exactly as the server would push it (`trigger` `request`). Clock and dates come from
    /// the samples' offsets.
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// Also write `timestamp_utc_iso8601,cole_kripke,sadeh` per minute (1 sleep, 0 wake,
    /// empty missing) to this file.
    #[arg(long, conflicts_with = "samples")]
    pub per_minute: Option<PathBuf>,
    /// Local clock for clock times and nights, minutes east of UTC.
    #[arg(
        long,
        default_value_t = 0,
        allow_negative_numbers = true,
        conflicts_with = "samples"
    )]
    pub utc_offset_minutes: i32,
}

impl Cli {
    /// The serve settings, whether given after `serve` or bare.
    pub fn into_config(self) -> Config {
        match self.command {
            Some(Command::Serve(c)) => *c,
            Some(Command::Migrate(m)) => m.into_config(),
            Some(
                Command::Analyze(_)
                | Command::Score(_)
                | Command::Backup(_)
                | Command::Restore(_)
                | Command::Rekey(_)
                | Command::Import(_),
            )
            | None => self.serve,
        }
    }
}

/// Every serve setting, by subsystem.
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerConfig,
    #[command(flatten)]
    pub tls: TlsConfig,
    #[command(flatten)]
    pub store: StoreConfig,
    #[command(flatten)]
    pub writes: WritesConfig,
    #[command(flatten)]
    pub sqlite: SqliteConfig,
    #[command(flatten)]
    pub dynamodb: DynamoConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub cognito: CognitoConfig,
    #[command(flatten)]
    pub bus: BusConfig,
    #[command(flatten)]
    pub windows: WindowsConfig,
    #[command(flatten)]
    pub limits: LimitsConfig,
    #[command(flatten)]
    pub insights: InsightsConfig,
    #[command(flatten)]
    pub scoring: ScoringConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
    #[command(flatten)]
    pub tracing: TracingConfig,
    #[command(flatten)]
    pub audit: AuditConfig,
    #[command(flatten)]
    pub imports: ImportsConfig,
}

impl Config {
    /// Defaults with a given data folder and an ephemeral port: what tests start from.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Config {
        let mut c = Cli::parse_from(["clarity"]).into_config();
        c.server.listen = "127.0.0.1:0".parse().expect("valid address");
        c.store.data_dir = data_dir.into();
        c
    }

    /// The Cognito settings with `--auth cognito`, `None` with local auth; an error naming
    /// the missing or malformed flag otherwise.
    pub fn cognito(&self) -> anyhow::Result<Option<crate::auth::cognito::CognitoSettings>> {
        self.cognito.settings(self.auth.mode)
    }
}
