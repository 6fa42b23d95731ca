//! The application object: everything a request or session needs, built once at start-up.
//!
//! Rules: no globals (bar the metrics facade); backends are `Arc<dyn Trait>` so that
//! deployments swap them without touching handlers; handlers get [`AppState`].

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::AuditLog;
use crate::auth::throttle::LoginThrottle;
use crate::auth::{Auth, TokenKeys, tokens};
use crate::bus::Bus;
use crate::bus::memory::{MemoryBus, Net};
use crate::bus::redis::RedisBus;
use crate::config::{BusConfig, Config, InsightsConfig, StoreKind};
use crate::http::origin::OriginPolicy;
use crate::ingest::Ingest;
use crate::insights::Insights;
use crate::insights::gemini::Gemini;
use crate::interop::apple_health::Limits as ImportLimits;
use crate::interop::archive::{Archive, Local, S3Archive};
use crate::interop::imports::Imports;
use crate::pipeline::Pipeline;
use crate::scoring::{Pat, PatOptions};
use crate::store::Store;
use crate::store::dynamo::{self, DynamoOptions, DynamoStore};
use crate::store::sqlite::SqliteStore;
use crate::streams::feed::Feed;
use crate::streams::hub::Hub;
use crate::streams::subscription::Subscriptions;
use crate::streams::{FanOut, Streams};
use crate::window::Windows;
use crate::window::ownership::Ownership;
use crate::window::service::WindowService;
use dashmap::DashMap;
use tokio::sync::Semaphore;

pub struct App {
    /// Settings the process started with.
    pub config: Config,
    /// Durable storage of accounts, refresh tokens and samples.
    pub store: Arc<dyn Store>,
    /// The audit log (store + retention).
    pub audit: AuditLog,
    /// Signup, login, refresh and access-token checks.
    pub auth: Auth,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Cancelled when the server starts shutting down; every session watches it.
    pub shutdown: CancellationToken,
    /// Live WebSocket sessions, their writer tasks and background analyses; shutdown waits
    /// for them, since axum's graceful shutdown does not cover upgraded connections.
    pub sessions: TaskTracker,
    /// Every active user's last week of minute bins on this node.
    pub windows: Arc<Windows>,
    /// Live sessions by user, for frames the server initiates (analyses).
    pub hub: Arc<Hub>,
    /// Recent `POST /api/v1/insights` per user (sliding hour), for its rate limit.
    pub insight_requests: DashMap<uuid::Uuid, Vec<std::time::Instant>>,
    /// Validation and storage of samples, then the window; per-user sample budgets.
    pub ingest: Ingest,
    /// Live stream subscribers on this node, by watched user and stream.
    pub streams: Arc<Streams>,
    /// Delivery of documents and frames to sessions, subscribers and the other nodes.
    pub fanout: Arc<FanOut>,
    /// What stream subscriptions use (registry, store, audit log, task tracker).
    pub subscriptions: Arc<Subscriptions>,
    /// Messages to and from the other nodes, and window leases (in-process when alone).
    pub bus: Arc<dyn Bus>,
    /// Which users' windows this node owns.
    pub ownership: Arc<Ownership>,
    /// The way into the windows (ingest, sessions, requests, the bus); completed days come
    /// out of it as events for the pipeline.
    pub window_service: Arc<WindowService>,
    /// Analysis, insight and push (PAT, insight generators, analysis permits); its task
    /// consumes the window service's completed days.
    pub pipeline: Arc<Pipeline>,
    /// Browser origins allowed to open WebSockets and read REST answers (`--allowed-origins`).
    pub origins: OriginPolicy,
    /// Failed-login budgets per account and address (this node's).
    pub login_throttle: LoginThrottle,
    /// Ids of the accounts allowed to use `/api/v1/admin/*` (`--admin-user-ids`).
    pub admins: HashSet<uuid::Uuid>,
    /// Apple Health import jobs on this node (`/api/v1/imports`).
    pub imports: Arc<Imports>,
}

impl App {
    /// Opens the configured store and builds the app on it.
    pub async fn new(config: Config) -> anyhow::Result<App> {
        let store = open_store(&config).await?;
        App::with_store(config, store).await
    }

    pub async fn with_store(config: Config, store: Arc<dyn Store>) -> anyhow::Result<App> {
        let bus = bus_from(&config.bus)?;
        App::with_parts(config, store, bus).await
    }

    /// The app on a given store and bus (several nodes in one process share both in tests).
    pub async fn with_parts(
        config: Config,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
    ) -> anyhow::Result<App> {
        let cognito = config.cognito()?;
        let auth_config = &config.auth;
        let secret = tokens::load_secret(auth_config.jwt_secret.as_ref(), &config.store.data_dir)?;
        let keys = TokenKeys::new(&secret, &auth_config.jwt_issuer, &auth_config.jwt_audience)?;
        let (access_ttl, refresh_ttl) = (auth_config.access_ttl(), auth_config.refresh_ttl());
        let auth = tokio::task::spawn_blocking({
            let store = store.clone();
            move || Auth::new(keys, store, access_ttl, refresh_ttl)
        })
        .await??
        .with_cognito(cognito)?;
        let origins = OriginPolicy::new(&config.server.allowed_origins)?;
        let admins = admin_user_ids(&auth_config.admin_user_ids, &auth_config.admin_emails)?;
        let login_throttle = LoginThrottle::new(
            auth_config.login_max_failures,
            auth_config.login_max_failures_per_ip,
            auth_config.login_failure_window(),
        );
        let pat_options = PatOptions::from(&config.scoring);
        let pat = tokio::task::spawn_blocking(move || Pat::start(&pat_options)).await?;
        let hub = Arc::new(Hub::default());
        let streams = Arc::new(Streams::new(config.limits.stream_history));
        let fanout = Arc::new(FanOut::new(
            hub.clone(),
            streams.clone(),
            bus.clone(),
            store.clone(),
        ));
        let windows = Arc::new(Windows::default());
        let ownership = Arc::new(Ownership::new(bus.clone(), config.bus.lease_ttl()));
        let sessions = TaskTracker::new();
        let (window_service, day_events) = WindowService::new(
            windows.clone(),
            ownership.clone(),
            store.clone(),
            bus.clone(),
            sessions.clone(),
        );
        let window_service = Arc::new(window_service);
        let pipeline = Arc::new(Pipeline {
            windows: windows.clone(),
            window_service: window_service.clone(),
            store: store.clone(),
            pat,
            insights: insights_from(&config.insights)?,
            analysis_permits: Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            sessions: sessions.clone(),
            fanout: fanout.clone(),
            revising: Default::default(),
            revise_pending: Default::default(),
            days_pending: Default::default(),
        });
        tokio::spawn(pipeline.clone().consume_days(day_events));
        let audit = AuditLog::new(store.clone(), config.audit.retention_days);
        let feed = Arc::new(Feed::new(bus.clone()));
        let subscriptions = Arc::new(Subscriptions {
            streams: streams.clone(),
            feed: feed.clone(),
            store: store.clone(),
            audit: audit.clone(),
            sessions: sessions.clone(),
        });
        let ingest = Ingest::new(
            store.clone(),
            window_service.clone(),
            config.limits.user_budget(),
        )
        .with_feed(feed);
        let imports = Arc::new(Imports::new(
            pipeline.clone(),
            archive(&config).await?,
            ImportLimits {
                max_inflated_bytes: config.limits.max_import_inflated_bytes,
                ..ImportLimits::default()
            },
        ));
        Ok(App {
            imports,
            audit,
            store,
            auth,
            metrics: crate::metrics::handle(),
            shutdown: CancellationToken::new(),
            sessions,
            windows,
            hub,
            insight_requests: DashMap::new(),
            ingest,
            streams,
            fanout,
            subscriptions,
            ownership,
            window_service,
            pipeline,
            bus,
            config,
            origins,
            login_throttle,
            admins,
        })
    }
}

/// `--admin-user-ids`; a malformed one, or the removed `--admin-emails`, stops the start.
/// Admins are named by account id because an email address proves nothing: with an address
/// no account holds yet, anyone could sign up with it and be an admin.
fn admin_user_ids(ids: &[String], emails: &[String]) -> anyhow::Result<HashSet<uuid::Uuid>> {
    let nonempty = |list: &[String]| -> Vec<String> {
        list.iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect()
    };
    anyhow::ensure!(
        nonempty(emails).is_empty(),
        "--admin-emails (CLARITY_ADMIN_EMAILS) is no longer supported: whoever signs up with \
         an address first would be an admin. Name admins by account id with --admin-user-ids \
         (CLARITY_ADMIN_USER_IDS, comma-separated UUIDs); an account's id is the `user_id` of \
         its signup answer and of GET /api/v1/user/profile"
    );
    nonempty(ids)
        .iter()
        .map(|id| {
            uuid::Uuid::parse_str(id).map_err(|_| {
                anyhow::anyhow!("--admin-user-ids: `{id}` is not an account id (a UUID)")
            })
        })
        .collect()
}

/// The bus `--bus` names: in-process, or Redis (connected lazily: a node starts without it).
fn bus_from(config: &BusConfig) -> anyhow::Result<Arc<dyn Bus>> {
    let node = config.node_id.unwrap_or_else(uuid::Uuid::new_v4);
    Ok(match config.url.as_str() {
        "memory" => Arc::new(MemoryBus::new(node, Net::new())),
        url if url.starts_with("redis://") || url.starts_with("rediss://") => {
            Arc::new(RedisBus::start(url, &config.prefix, node)?)
        }
        other => anyhow::bail!(
            "unknown --bus {other:?}: use `memory` or a Redis URL (redis://HOST:PORT)"
        ),
    })
}

fn insights_from(config: &InsightsConfig) -> anyhow::Result<Insights> {
    let gemini = config.gemini().map(Gemini::new).transpose()?;
    Ok(Insights::new(gemini, config.fallback))
}

/// Opens the store `config` names; the DynamoDB table must exist (`clarity migrate`).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config.store.kind {
        StoreKind::Sqlite => {
            let mut opts = config.sqlite.options(&config.store, &config.writes);
            opts.key = config.store.key.load(|advice| tracing::warn!("{advice}"))?;
            let dir = config.store.data_dir.clone();
            Arc::new(tokio::task::spawn_blocking(move || SqliteStore::open(&dir, opts)).await??)
        }
        StoreKind::Dynamodb => Arc::new(DynamoStore::connect(&dynamo_options(config)).await?),
    })
}

/// Where import uploads are kept: the data dir, or the `--archive` bucket (checked here, so
/// that an unusable bucket stops the start with one line).
async fn archive(config: &Config) -> anyhow::Result<Archive> {
    let (dir, days) = (&config.store.data_dir, config.imports.import_retention_days);
    Ok(match &config.imports.archive {
        None => Archive::Local(Local::new(dir, days)),
        Some(location) => {
            // Scratch copies live only while their import runs: a day covers any import.
            let scratch = Local::new(dir, 1);
            let endpoint = config.imports.archive_endpoint.as_deref();
            Archive::S3(S3Archive::connect(location.clone(), endpoint, scratch, days).await?)
        }
    })
}

pub fn dynamo_options(config: &Config) -> DynamoOptions {
    config.dynamodb.options(&config.store, &config.writes)
}

/// `clarity migrate`: creates what the configured store needs, idempotently.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    match config.store.kind {
        StoreKind::Sqlite => {
            // Opening creates the schema.
            open_store(config).await?.close().await;
        }
        StoreKind::Dynamodb => {
            let opts = dynamo_options(config);
            let client = dynamo::client(&opts).await?;
            dynamo::schema::migrate(&client, &opts.table()).await?;
        }
    }
    Ok(())
}

/// Cheap-to-clone handle given to every handler.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
