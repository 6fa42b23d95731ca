//! HTTPS and WSS served directly (rustls): the certificate in use, its reload, and HSTS.
//!
//! Rules:
//! - The certificate and key are loaded at start-up; a missing, unreadable or mismatched pair
//!   stops the start with an error naming the flag and the file.
//! - Reload without restart: the files are checked every `--tls-reload-secs` (and on SIGHUP);
//!   a changed pair that loads serves every connection accepted from then on (open ones keep
//!   theirs). One that does not load is logged as an error and the pair in use is kept, so a
//!   half-written renewal never takes the server down.
//! - The `ServerConfig` never changes: its resolver hands out the current [`CertifiedKey`].
//! - With TLS on, every response carries `Strict-Transport-Security` (unless max-age is 0).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::http::HeaderValue;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_util::sync::CancellationToken;

use crate::config::TlsConfig;

/// TLS for the listener: the acceptor every new connection goes through, and what reloads it.
pub struct Tls {
    acceptor: TlsAcceptor,
    current: Arc<CurrentKey>,
    provider: Arc<CryptoProvider>,
    cert: PathBuf,
    key: PathBuf,
    reload: Duration,
    hsts: Option<HeaderValue>,
}

/// The certificate new handshakes get.
#[derive(Debug)]
struct CurrentKey(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentKey {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

impl Tls {
    /// `None` without `--tls-cert`; an error naming the flag and file when the pair does not
    /// load.
    pub fn from_config(config: &TlsConfig) -> anyhow::Result<Option<Arc<Tls>>> {
        let Some((cert, key)) = config.files() else {
            return Ok(None);
        };
        let provider = Arc::new(aws_lc_rs::default_provider());
        let current = Arc::new(CurrentKey(RwLock::new(Arc::new(load(
            &cert, &key, &provider,
        )?))));
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // hyper serves HTTP/1.1 here (the WebSocket upgrade is HTTP/1.1 too).
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let hsts = (config.hsts_max_age_secs > 0).then(|| {
            HeaderValue::from_str(&format!("max-age={}", config.hsts_max_age_secs))
                .expect("digits are a valid header value")
        });
        Ok(Some(Arc::new(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            current,
            provider,
            cert,
            key,
            reload: config.reload_interval(),
            hsts,
        })))
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// The `Strict-Transport-Security` value, unless turned off.
    pub fn hsts(&self) -> Option<HeaderValue> {
        self.hsts.clone()
    }

    /// Loads the files again; the pair in use stays when they do not load.
    fn reload(&self) {
        match load(&self.cert, &self.key, &self.provider) {
            Ok(key) => {
                *self
                    .current
                    .0
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "TLS certificate not reloaded; still serving the previous one"
            ),
        }
    }

    /// Reloads when the files change (checked every `--tls-reload-secs`) or on SIGHUP, until
    /// `cancel`.
    pub async fn watch(self: Arc<Self>, cancel: CancellationToken) {
        let mut seen = self.stamps();
        let mut tick = tokio::time::interval(self.reload);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let sighup = async {
                match hangup.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = sighup => {
                    seen = self.stamps();
                    self.reload();
                }
                _ = tick.tick() => {
                    // Each change is tried once: a pair caught half-written fails, and the
                    // second file's own write is a change again.
                    let now = self.stamps();
                    if now != seen {
                        seen = now;
                        self.reload();
                    }
                }
            }
        }
    }

    /// What tells a replaced file apart: modification time, size and inode (a renamed-over
    /// file or a swapped symlink changes the inode even within one clock tick).
    fn stamps(&self) -> [Option<(SystemTime, u64, u64)>; 2] {
        use std::os::unix::fs::MetadataExt;
        [&self.cert, &self.key].map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len(), m.ino()))
        })
    }
}

/// The certificate chain and key from PEM files, checked to belong together.
fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "--tls-cert {}: cannot read PEM certificates",
                cert.display()
            )
        })?;
    anyhow::ensure!(
        !chain.is_empty(),
        "--tls-cert {}: no PEM certificate (`-----BEGIN CERTIFICATE-----`) in the file",
        cert.display()
    );
    let private = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "--tls-key {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file",
            key.display()
        )
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
            "--tls-key {} is not the key of the certificate in --tls-cert {}",
            key.display(),
            cert.display()
        ),
        e => anyhow::anyhow!(
            "--tls-cert {} / --tls-key {}: {e}",
            cert.display(),
            key.display()
        ),
    })
}
