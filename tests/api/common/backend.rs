//! The store backends a test can run on.
//!
//! SQLite needs nothing. DynamoDB needs a real DynamoDB server (DynamoDB Local) named by
//! `CLARITY_TEST_DYNAMODB=http://127.0.0.1:PORT`, which `scripts/test` starts; without it
//! the DynamoDB half of the suite is skipped with a message, unless
//! `CLARITY_TEST_REQUIRE_DYNAMODB=1` (CI) makes that a failure. Every test gets its own table
//! (a fresh prefix), so tests never see each other's data.

use std::path::Path;
use std::sync::Arc;

use clarity::config::{Config, StoreKind};
use clarity::store::Store;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Dynamo { endpoint: String, prefix: String },
}

/// The DynamoDB endpoint for tests, if any; panics when CI requires one and it is missing.
pub fn dynamodb_endpoint() -> Option<String> {
    match std::env::var("CLARITY_TEST_DYNAMODB") {
        Ok(url) if !url.is_empty() => {
            assert!(
                std::env::var_os("AWS_ACCESS_KEY_ID").is_some(),
                "CLARITY_TEST_DYNAMODB is set but AWS_ACCESS_KEY_ID is not: DynamoDB Local \
                 accepts any credentials, but the SDK needs some (scripts/test sets them)"
            );
            Some(url)
        }
        _ => {
            assert!(
                std::env::var_os("CLARITY_TEST_REQUIRE_DYNAMODB").is_none(),
                "CLARITY_TEST_REQUIRE_DYNAMODB is set but CLARITY_TEST_DYNAMODB is not"
            );
            eprintln!(
                "skipping the DynamoDB variant: CLARITY_TEST_DYNAMODB is not set \
                 (run scripts/test to start DynamoDB Local)"
            );
            None
        }
    }
}

impl Backend {
    /// A fresh DynamoDB table's backend, or `None` when no DynamoDB server is configured.
    pub fn dynamodb() -> Option<Backend> {
        dynamodb_endpoint().map(|endpoint| Backend::Dynamo {
            endpoint,
            prefix: format!("t{}-", &Uuid::new_v4().simple().to_string()[..12]),
        })
    }

    /// Test defaults on `dir`, pointed at this backend.
    pub fn config(&self, dir: &Path) -> Config {
        let mut config = Config::for_tests(dir);
        config.auth.jwt_secret = Some(super::JWT_SECRET.to_string().into());
        config.telemetry.log = "warn".into();
        self.apply(&mut config);
        config
    }

    pub fn apply(&self, config: &mut Config) {
        if let Backend::Dynamo { endpoint, prefix } = self {
            config.store.kind = StoreKind::Dynamodb;
            config.dynamodb.endpoint = Some(endpoint.clone());
            config.dynamodb.table_prefix = prefix.clone();
        }
    }

    /// Environment that points a `clarity` child process at this backend.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Backend::Sqlite => vec![("CLARITY_STORE", "sqlite".into())],
            Backend::Dynamo { endpoint, prefix } => vec![
                ("CLARITY_STORE", "dynamodb".into()),
                ("CLARITY_DYNAMODB_ENDPOINT", endpoint.clone()),
                ("CLARITY_DYNAMODB_TABLE_PREFIX", prefix.clone()),
            ],
        }
    }

    /// Creates the backend's tables (what `clarity migrate` does).
    pub async fn migrate(&self, config: &Config) {
        clarity::app::migrate(config).await.expect("migrate");
    }

    /// A migrated, opened store in `dir`.
    pub async fn open(&self, dir: &Path) -> Arc<dyn Store> {
        let config = self.config(dir);
        self.migrate(&config).await;
        clarity::app::open_store(&config)
            .await
            .expect("store opens")
    }
}
