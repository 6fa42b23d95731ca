//! `clarity`: config → tracing → `App` → `server::run`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use clarity::app::{self, App};
use clarity::config::{AuthMode, Cli, Command, StoreKind};
use clarity::{server, telemetry};

fn main() -> ExitCode {
    release_large_allocations();
    let cli = Cli::parse();
    if let Some(Command::Analyze(args)) = &cli.command {
        return clarity::cli::analyze(args);
    }
    if let Some(Command::Score(args)) = &cli.command {
        return clarity::cli::score(args);
    }
    if let Some(Command::Backup(args)) = &cli.command {
        return clarity::backup::backup_command(args);
    }
    if let Some(Command::Restore(args)) = &cli.command {
        return clarity::backup::restore_command(args);
    }
    if let Some(Command::Rekey(args)) = &cli.command {
        return clarity::rekey::rekey_command(args);
    }
    if let Some(Command::Import(args)) = &cli.command {
        return clarity::cli::import(args);
    }
    let migrate_only = matches!(cli.command, Some(Command::Migrate(_)));
    let config = cli.into_config();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Declared after the runtime so that it is dropped (flushing the last spans) first.
    let (spans, _flush) = match clarity::otel::layer(&config.tracing, runtime.handle().clone()) {
        Ok(Some((layer, flush))) => (Some(layer), Some(flush)),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("tracing: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init_with(&config.telemetry, spans);
    let (what, res) = if migrate_only {
        ("migration", runtime.block_on(app::migrate(&config)))
    } else {
        ("server", runtime.block_on(serve(config)))
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{what} failed");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: clarity::config::Config) -> anyhow::Result<()> {
    // Each WebSocket is a file descriptor; the default soft limit (1024) is far too low.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "cannot raise the open-file limit");
    }
    if config.store.kind == StoreKind::Dynamodb
        && config.auth.mode == AuthMode::Local
        && config.auth.jwt_secret.is_none()
    {
        tracing::warn!(
            "--store dynamodb without --jwt-secret: this node signs tokens with its own key \
             (data-dir/jwt_secret), so other nodes will refuse them; give every node the same \
             --jwt-secret (CLARITY_JWT_SECRET, at least 32 bytes)"
        );
    }
    let tls = server::tls::Tls::from_config(&config.tls)?;
    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    let app = Arc::new(App::new(config).await?);
    tracing::info!(
        store = ?app.config.store.kind,
        data_dir = %app.config.store.data_dir.display(),
        "listening on {}://{}",
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr()?
    );
    server::run_with(app, listener, tls, server::shutdown_signal()).await
}

/// Makes glibc return large blocks (argon2's 19 MiB per hash) to the OS when freed.
///
/// glibc raises its mmap threshold after the first such block is freed, so later ones come
/// from per-thread arenas and stay resident: measured 237 MiB RSS after 100 logins, 9 MiB
/// with the threshold pinned (`loadtest idle --connections 200`, server started fresh).
fn release_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
