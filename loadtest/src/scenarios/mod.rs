//! Scenarios and the plumbing they share: environment preparation (fd limit,
//! target, accounts, Ctrl-C), paced connection ramp-up and connect tracking.
//!
//! Adding a scenario: create `scenarios/<name>.rs` with
//! `pub async fn run(env: Arc<Env>, args: &<Name>Args) -> Result<Report>`, add a
//! variant to `ScenarioCmd` in `main.rs` and dispatch to it. Use [`ramp`] to
//! open sessions at --ramp-per-sec, [`Env::connect`] to connect one session and
//! [`Env::base_report`] for the common parts of the report.

pub mod churn;
pub mod fanout;
pub mod idle;
pub mod ingest;
pub mod rest_upload;

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::CommonArgs;
use crate::client::{self, Account, AccountStats, ConnectError, SourcePool, Target, Welcome, Ws};
use crate::report::{Report, now_rfc3339, r3, read_rss};

/// Everything a scenario needs that is set up before connecting.
pub struct Env {
    pub common: CommonArgs,
    pub scenario: &'static str,
    pub run_id: String,
    pub target: Target,
    pub sources: SourcePool,
    pub accounts: Arc<Vec<Account>>,
    pub account_stats: AccountStats,
    /// Becomes `true` on Ctrl-C: scenarios end their measurement early.
    pub stop: watch::Receiver<bool>,
    pub nofile_limit: Option<u64>,
    started_at: String,
    notes: Vec<String>,
}

impl Env {
    /// `users`: how many accounts to create or log into (`lt-<run_id>-0..users`).
    pub async fn prepare(
        common: &CommonArgs,
        scenario: &'static str,
        users: usize,
    ) -> Result<Self> {
        let started_at = now_rfc3339();
        let mut notes = Vec::new();
        let nofile_limit = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(lim) => Some(lim),
            Err(e) => {
                eprintln!("[loadtest] warning: could not raise RLIMIT_NOFILE: {e}");
                None
            }
        };
        if let Some(lim) = nofile_limit {
            let needed = common.connections as u64 + 64;
            if lim < needed {
                let msg = format!(
                    "RLIMIT_NOFILE is {lim} but {needed} descriptors are needed; expect connect failures"
                );
                eprintln!("[loadtest] warning: {msg}");
                notes.push(msg);
            }
        }

        let target = Target::parse(&common.url)?;
        let sources = SourcePool::new(target.server, common.source_ips);
        let per_source = common.connections.div_ceil(sources.len().max(1));
        if per_source > 28_000 {
            let msg = format!(
                "{per_source} connections per source address may exhaust ephemeral ports \
                 (raise --source-ips, or use an IPv4 loopback --url)"
            );
            eprintln!("[loadtest] warning: {msg}");
            notes.push(msg);
        }

        if let Some(pid) = common.server_pid
            && read_rss(pid).is_none()
        {
            let msg = format!("cannot read /proc/{pid}/status; server RSS will be missing");
            eprintln!("[loadtest] warning: {msg}");
            notes.push(msg);
        }

        let run_id = common
            .run_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_string());

        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("[loadtest] Ctrl-C: ending measurement early (Ctrl-C again to abort)");
                let _ = stop_tx.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });

        eprintln!(
            "[loadtest] {scenario}: run {run_id}, target {}, creating/logging in {users} account(s)...",
            target.base
        );
        let http = client::http_client()?;
        let (accounts, account_stats) = tokio::time::timeout(
            // Generous but bounded: argon2 costs tens of ms per request.
            Duration::from_secs(120 + users as u64),
            client::create_accounts(
                &http,
                &target,
                &run_id,
                &common.password,
                users,
                common.signup_concurrency,
            ),
        )
        .await
        .context("timed out creating accounts")??;
        eprintln!(
            "[loadtest] accounts ready: {} created, {} existing, {} failed in {:.1}s",
            account_stats.created, account_stats.existing, account_stats.failed, account_stats.secs
        );
        if let Some(exp) = accounts.iter().filter_map(|a| a.expires_in).min()
            && exp < common.duration + 60
        {
            let msg = format!(
                "access tokens expire in {exp}s, shorter than the run; sessions may be closed"
            );
            eprintln!("[loadtest] warning: {msg}");
            notes.push(msg);
        }

        Ok(Self {
            common: common.clone(),
            scenario,
            run_id,
            target,
            sources,
            accounts: Arc::new(accounts),
            account_stats,
            stop,
            nofile_limit,
            started_at,
            notes,
        })
    }

    /// Token for session `i` (round-robin over accounts).
    pub fn token(&self, i: usize) -> &str {
        &self.accounts[i % self.accounts.len()].access_token
    }

    pub fn source(&self, i: usize) -> Option<IpAddr> {
        self.sources.pick(i)
    }

    /// Connect session `i`: TCP from its source address, upgrade, read welcome.
    pub async fn connect(
        &self,
        i: usize,
        config: WebSocketConfig,
    ) -> Result<(Ws, Welcome), ConnectError> {
        client::connect_ws(
            &self.target,
            self.token(i),
            self.source(i),
            config,
            self.common.connect_timeout(),
        )
        .await
    }

    /// Connects session `i`, frees its connect-phase permit and counts the outcome in
    /// `tracker`; on failure returns the error key to count.
    pub async fn connect_counted(
        &self,
        i: usize,
        config: WebSocketConfig,
        tracker: &ConnTracker,
        permit: OwnedSemaphorePermit,
    ) -> Result<(Ws, Welcome), String> {
        let connected = self.connect(i, config).await;
        drop(permit);
        let counter = if connected.is_ok() {
            &tracker.established
        } else {
            &tracker.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        connected.map_err(|e| e.key())
    }

    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleep until `deadline` or Ctrl-C, whichever comes first.
    pub async fn sleep_until(&self, deadline: Instant) {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }

    /// A report pre-filled with the common parameters.
    pub fn base_report(&self) -> Report {
        let c = &self.common;
        let mut r = Report::new(self.scenario, &self.run_id);
        r.started_at = self.started_at.clone();
        r.params
            .set("url", c.url.clone())
            .set("ws_url", self.target.ws_url.clone())
            .set("connections", c.connections as u64)
            .set("users", self.accounts.len() as u64)
            .set("duration_s", c.duration)
            .set("ramp_per_sec", c.ramp_per_sec)
            .set("connect_timeout_s", c.connect_timeout)
            .set("source_ips", self.sources.len() as u64)
            .set("nofile_limit", self.nofile_limit);
        r.counts
            .set("accounts_created", self.account_stats.created as u64)
            .set("accounts_existing", self.account_stats.existing as u64)
            .set("accounts_failed", self.account_stats.failed as u64)
            .set("account_http_retries", self.account_stats.retries as u64);
        r.rates.set("account_setup_s", r3(self.account_stats.secs));
        r.notes.extend(self.notes.iter().cloned());
        if self.stopped() {
            r.notes
                .push("interrupted with Ctrl-C: measurement window cut short".into());
        }
        r
    }

    pub fn progress_every(&self) -> Option<Duration> {
        (self.common.progress_every > 0).then(|| Duration::from_secs(self.common.progress_every))
    }
}

/// Live connection counters shared between session tasks and the driver.
#[derive(Debug, Default)]
pub struct ConnTracker {
    pub established: AtomicUsize,
    pub failed: AtomicUsize,
    /// Established sessions that ended before the scenario told them to.
    pub lost: AtomicUsize,
}

impl ConnTracker {
    pub fn established(&self) -> usize {
        self.established.load(Ordering::Relaxed)
    }
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }
    pub fn lost(&self) -> usize {
        self.lost.load(Ordering::Relaxed)
    }
    pub fn open(&self) -> usize {
        self.established().saturating_sub(self.lost())
    }
}

/// Spawn `n` session tasks into `tasks`, paced at --ramp-per-sec, with at most
/// --max-pending-connects holding a permit at once (tasks drop the permit once
/// connected or failed). Stops early on Ctrl-C. Returns the number spawned.
pub async fn ramp<T, F, Fut>(env: &Env, n: usize, tasks: &mut JoinSet<T>, mut make: F) -> usize
where
    F: FnMut(usize, OwnedSemaphorePermit) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let sem = Arc::new(Semaphore::new(env.common.max_pending_connects));
    let interval = Duration::from_secs_f64(1.0 / env.common.ramp_per_sec);
    let start = Instant::now();
    let mut stop = env.stop.clone();
    for i in 0..n {
        if *stop.borrow() {
            return i;
        }
        let due = start + interval.mul_f64(i as f64);
        if due > Instant::now() + Duration::from_millis(1) {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = stop.wait_for(|s| *s) => return i,
            }
        }
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = stop.wait_for(|s| *s) => return i,
        };
        tasks.spawn(make(i, permit));
    }
    n
}

/// Wait until all `spawned` sessions have connected or failed, `deadline`
/// passes, or Ctrl-C; prints progress. Returns the seconds the connect phase took.
pub async fn wait_connected(
    env: &Env,
    tracker: &ConnTracker,
    spawned: usize,
    started: Instant,
    deadline: Instant,
) -> f64 {
    let mut last_progress = Instant::now();
    loop {
        let done = tracker.established() + tracker.failed();
        if done >= spawned || Instant::now() >= deadline || env.stopped() {
            break;
        }
        if let Some(every) = env.progress_every()
            && last_progress.elapsed() >= every
        {
            last_progress = Instant::now();
            eprintln!(
                "[loadtest] connecting: {}/{} established, {} failed",
                tracker.established(),
                env.common.connections,
                tracker.failed()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed().as_secs_f64()
}

/// Upper bound for the connect phase: ramp time + one connect timeout + slack.
pub fn connect_deadline(env: &Env, started: Instant) -> Instant {
    let ramp = Duration::from_secs_f64(env.common.connections as f64 / env.common.ramp_per_sec);
    started + ramp + env.common.connect_timeout() + Duration::from_secs(2)
}

/// Join all tasks until `deadline`; abort whatever is left. Returns the results
/// and the number of tasks that had to be aborted.
pub async fn join_all<T: 'static>(tasks: &mut JoinSet<T>, deadline: Instant) -> (Vec<T>, usize) {
    let mut out = Vec::with_capacity(tasks.len());
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok(v))) => out.push(v),
            Ok(Some(Err(_))) => {} // panicked / cancelled task
            Ok(None) => return (out, 0),
            Err(_) => {
                let left = tasks.len();
                tasks.abort_all();
                // Reap the aborted tasks (returns promptly).
                while tasks.join_next().await.is_some() {}
                return (out, left);
            }
        }
    }
}

/// Resolves once `n` workers have counted themselves into `finished` (e.g. all reached their
/// --max-cycles or --max-requests).
pub async fn all_finished(finished: &AtomicU64, n: usize) {
    while (finished.load(Ordering::Relaxed) as usize) < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
