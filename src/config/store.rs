//! Storage settings: which backend, where, how long one operation may take, how many writes
//! may wait for it, and each backend's own knobs.
//!
//! Rules: `clarity migrate` flattens [`StoreConfig`], [`SqliteConfig`] and [`DynamoConfig`]
//! too, so those hold only what creating the tables uses; settings of the serving write path
//! (queues, requests in flight) live in [`WritesConfig`]. Renamed fields keep their old
//! argument id and flag, so the command line does not change.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use crate::store::dynamo::DynamoOptions;
use crate::store::sqlite::{DataKey, SqliteOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// Embedded SQLite database in the data folder: one node, zero setup.
    Sqlite,
    /// One DynamoDB table shared by every node.
    Dynamodb,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Store")]
pub struct StoreConfig {
    /// Folder for the embedded database and the generated signing key.
    #[arg(long, env = "CLARITY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Storage backend.
    #[arg(
        id = "store",
        value_name = "STORE",
        long = "store",
        env = "CLARITY_STORE",
        value_enum,
        default_value = "sqlite"
    )]
    pub kind: StoreKind,

    /// Longest wait for one store operation, milliseconds; a request that waits longer is
    /// answered 503.
    #[arg(
        id = "store_timeout_ms",
        value_name = "STORE_TIMEOUT_MS",
        long = "store-timeout-ms",
        env = "CLARITY_STORE_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub timeout_ms: u64,

    #[command(flatten)]
    pub key: DataKeyConfig,
}

/// The embedded store's data key (encryption at rest, docs/security.md). Shared by serve,
/// `migrate`, `import`, `backup`, `restore` and `rekey`, so each opens the store the same way.
#[derive(Debug, Clone, Default, Args)]
pub struct DataKeyConfig {
    /// File holding the SQLite store's 32-byte data key as 64 hex digits (`openssl rand -hex
    /// 32`); the store is then encrypted (SQLCipher: every page, index and the WAL). Unset: a
    /// plain SQLite file. Keep the file readable by the server's user only.
    #[arg(long, env = "CLARITY_DATA_KEY_FILE")]
    pub data_key_file: Option<PathBuf>,

    /// The data key itself (64 hex digits), for containers whose secrets arrive as
    /// environment variables; elsewhere prefer --data-key-file (a flag shows in `ps`).
    #[arg(
        long,
        env = "CLARITY_DATA_KEY",
        hide_env_values = true,
        conflicts_with = "data_key_file"
    )]
    pub data_key: Option<SecretString>,
}

impl DataKeyConfig {
    /// The key these settings name, if any. `warn` gets advice that does not stop the
    /// command (a key file others may read); neither it nor an error ever holds the key.
    pub fn load(&self, mut warn: impl FnMut(String)) -> anyhow::Result<Option<DataKey>> {
        if let Some(text) = &self.data_key {
            return DataKey::from_hex(text.expose_secret())
                .map(Some)
                .map_err(|e| anyhow::anyhow!("CLARITY_DATA_KEY (--data-key): {e}"));
        }
        let Some(path) = &self.data_key_file else {
            return Ok(None);
        };
        let shown = path.display();
        let text = SecretString::from(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read the data key file {shown}: {e}"))?,
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o044 != 0 {
                warn(format!(
                    "the data key file {shown} is readable by group or others (mode {mode:03o}): \
                     `chmod 600` it"
                ));
            }
        }
        DataKey::from_hex(text.expose_secret())
            .map(Some)
            .map_err(|e| anyhow::anyhow!("the data key file {shown}: {e}"))
    }
}

impl StoreConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// How much the serving write path lets wait for the store before callers get 503 /
/// `store_unavailable`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Store")]
pub struct WritesConfig {
    /// Write operations queued for the store before callers get 503 / `store_unavailable`.
    #[arg(
        id = "store_queue_depth",
        value_name = "STORE_QUEUE_DEPTH",
        long = "store-queue-depth",
        env = "CLARITY_STORE_QUEUE_DEPTH",
        default_value_t = 65_536
    )]
    pub queue_depth: usize,

    /// Samples queued for the store before callers get 503 / `store_unavailable`.
    #[arg(
        id = "store_max_pending_samples",
        value_name = "STORE_MAX_PENDING_SAMPLES",
        long = "store-max-pending-samples",
        env = "CLARITY_STORE_MAX_PENDING_SAMPLES",
        default_value_t = 200_000
    )]
    pub max_pending_samples: usize,

    /// Sample writes of this node in flight to DynamoDB at once; more wait their turn within
    /// the store timeout instead of piling onto a saturated table.
    #[arg(long, env = "CLARITY_DYNAMODB_MAX_INFLIGHT", default_value_t = 64)]
    pub dynamodb_max_inflight: usize,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "SQLite")]
pub struct SqliteConfig {
    /// SQLite `synchronous` pragma: FULL survives power loss, NORMAL only process crashes.
    #[arg(
        id = "sqlite_synchronous",
        value_name = "SQLITE_SYNCHRONOUS",
        long = "sqlite-synchronous",
        env = "CLARITY_SQLITE_SYNCHRONOUS",
        default_value = "FULL"
    )]
    pub synchronous: String,
}

impl SqliteConfig {
    /// The SQLite store's options: this group's, with the store's timeout and write queue.
    pub fn options(&self, store: &StoreConfig, writes: &WritesConfig) -> SqliteOptions {
        SqliteOptions {
            synchronous: self.synchronous.clone(),
            queue_depth: writes.queue_depth,
            max_pending_samples: writes.max_pending_samples,
            timeout: store.timeout(),
            ..SqliteOptions::default()
        }
    }
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "DynamoDB")]
pub struct DynamoConfig {
    /// Prefix of the DynamoDB table name (the table is `<prefix>clarity`), to keep several
    /// deployments or test runs in one account.
    #[arg(
        id = "dynamodb_table_prefix",
        value_name = "DYNAMODB_TABLE_PREFIX",
        long = "dynamodb-table-prefix",
        env = "CLARITY_DYNAMODB_TABLE_PREFIX",
        default_value = ""
    )]
    pub table_prefix: String,

    /// DynamoDB endpoint override, e.g. `http://127.0.0.1:8000` for DynamoDB Local. Region
    /// and credentials come from the standard AWS chain (`AWS_REGION`, `AWS_PROFILE`, task role).
    #[arg(
        id = "dynamodb_endpoint",
        value_name = "DYNAMODB_ENDPOINT",
        long = "dynamodb-endpoint",
        env = "CLARITY_DYNAMODB_ENDPOINT"
    )]
    pub endpoint: Option<String>,

    /// Attempts per DynamoDB request (SDK standard retry with jittered backoff) within the
    /// store timeout.
    #[arg(
        id = "dynamodb_max_attempts",
        value_name = "DYNAMODB_MAX_ATTEMPTS",
        long = "dynamodb-max-attempts",
        env = "CLARITY_DYNAMODB_MAX_ATTEMPTS",
        default_value_t = 4
    )]
    pub max_attempts: u32,
}

impl DynamoConfig {
    /// The DynamoDB store's options: this group's, with the store's timeout and write queue.
    pub fn options(&self, store: &StoreConfig, writes: &WritesConfig) -> DynamoOptions {
        DynamoOptions {
            table_prefix: self.table_prefix.clone(),
            endpoint: self.endpoint.clone(),
            max_attempts: self.max_attempts,
            timeout: store.timeout(),
            max_pending_samples: writes.max_pending_samples,
            max_inflight: writes.dynamodb_max_inflight,
        }
    }
}
