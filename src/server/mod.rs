//! Serving: the HTTP listener (HTTPS with `--tls-cert`), then an orderly shutdown.
//!
//! Shutdown order: stop accepting → cancel sessions (each acks what it has in flight, sends
//! `going_away`, closes with 1001) → wait for them, bounded by the grace period → give the
//! window leases back and flush the bus → close the store, which commits everything queued.
//! Nothing acknowledged is lost on the way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::app::{App, AppState};

pub mod dispatch;
pub mod erase;
mod listener;
pub mod tls;

/// Serves `app` on `listener` until `shutdown`, with TLS when its config asks for it.
pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = tls::Tls::from_config(&app.config.tls)?;
    run_with(app, listener, tls, shutdown).await
}

/// [`run`] with TLS already loaded (`clarity serve` loads it before opening the store, so a
/// bad certificate fails the start at once).
pub async fn run_with(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<Arc<tls::Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Published from the start (at 0): autoscaling averages it over tasks, and a task that
    // has no session yet must count as empty, not be missing.
    metrics::gauge!(crate::metrics::WS_CONNECTIONS).increment(0.0);
    let state = AppState(app.clone());
    let mut router = crate::http::router(state);
    if app.config.tracing.otlp_endpoint.is_some() {
        router = router.route_layer(axum::middleware::from_fn(crate::http::trace::trace_request));
    }
    if let Some(tls) = &tls {
        tokio::spawn(tls.clone().watch(app.shutdown.clone()));
        if let Some(hsts) = tls.hsts() {
            router = router.layer(axum::middleware::map_response(
                move |mut response: axum::response::Response| {
                    let hsts = hsts.clone();
                    async move {
                        response
                            .headers_mut()
                            .insert(axum::http::header::STRICT_TRANSPORT_SECURITY, hsts);
                        response
                    }
                },
            ));
        }
    }
    tokio::spawn(sweep_windows(app.clone()));
    tokio::spawn(renew_leases(app.clone()));
    tokio::spawn(sweep_uploads(app.clone()));
    // Erasures a crash interrupted (a backend that erases in steps) are finished now.
    app.sessions.spawn(erase::resume_pending(app.clone()));
    if let Some(inbox) = app.bus.take_inbox() {
        tokio::spawn(crate::server::dispatch::run(
            app.clone(),
            inbox,
            app.bus.reconnects(),
        ));
    }
    let cancel = app.shutdown.clone();
    let config = &app.config;
    let listener = listener::GuardedListener::new(
        listener,
        listener::Limits {
            handshake: config.server.handshake_timeout(),
            idle: config.server.idle_timeout(),
            per_ip: config.server.max_connections_per_ip,
            send_buffer: config.server.socket_send_buffer,
        },
        tls.as_ref().map(|t| t.acceptor()),
    );
    // `tap_io` adds nothing; it is what gives `ConnectInfo<SocketAddr>` for any listener.
    let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
    let serve = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        tokio::select! {
            () = shutdown => {}
            () = cancel.cancelled() => {}
        }
        tracing::info!("shutting down: no new connections");
        cancel.cancel();
    });
    let result = serve.await;
    app.shutdown.cancel();
    app.sessions.close();
    if tokio::time::timeout(app.config.server.shutdown_grace(), app.sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = app.sessions.len(),
            "sessions still open after the grace period; closing the store anyway"
        );
    }
    // Other nodes may take these users over now rather than when the leases expire.
    app.ownership.release_all().await;
    app.bus.close().await;
    app.store.close().await;
    tracing::info!("shutdown complete");
    result.map_err(Into::into)
}

/// Drops the windows of users gone quiet, so memory follows the active users.
async fn sweep_windows(app: Arc<App>) {
    let idle = app.config.windows.idle();
    let mut tick = tokio::time::interval(idle.min(std::time::Duration::from_secs(60)));
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            _ = tick.tick() => {
                let dropped = app.windows.sweep(idle, |user| app.hub.has_sessions(user));
                app.ingest.forget_full_budgets();
                metrics::gauge!(crate::metrics::WINDOWS).set(app.windows.len() as f64);
                if dropped > 0 {
                    tracing::debug!(dropped, "idle windows dropped");
                }
            }
        }
    }
}

/// Deletes the kept import uploads past `--import-retention-days`: at start, then hourly.
async fn sweep_uploads(app: Arc<App>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            _ = tick.tick() => {
                match app.imports.archive().sweep(std::time::SystemTime::now()).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "import uploads past their retention deleted"),
                    Err(e) => tracing::warn!(error = %e, "import uploads past their retention not deleted"),
                }
            }
        }
    }
}

/// Keeps the leases of the windows this node holds; a window another node took over (after
/// a bus outage both may have acted as owner) is dropped here.
async fn renew_leases(app: Arc<App>) {
    let mut tick = tokio::time::interval(app.ownership.ttl() / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            _ = tick.tick() => {
                let lost = app.ownership.renew(|user| app.windows.get(user).is_some()).await;
                for user in lost {
                    tracing::info!("window lease taken over by another node; dropping the window");
                    app.windows.remove(user);
                }
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
