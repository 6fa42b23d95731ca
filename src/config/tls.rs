//! TLS settings: the certificate and key the embedded server serves HTTPS and WSS with, how
//! often they are checked for a replacement, and the HSTS header that goes with TLS.
//!
//! Rules: no certificate (the default) is plain HTTP, for local use and behind a load balancer
//! that terminates TLS; the certificate and the key come together or not at all.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first, to serve HTTPS and WSS directly (rustls); needs
    /// `--tls-key`. Unset: plain HTTP.
    #[arg(long, env = "CLARITY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert` (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "CLARITY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// How often the certificate and key files are checked for a change, seconds (SIGHUP
    /// checks at once). A changed pair serves new connections; one that does not load is
    /// logged and the pair in use kept.
    #[arg(long, env = "CLARITY_TLS_RELOAD_SECS", default_value_t = 5)]
    pub tls_reload_secs: u64,

    /// `max-age` of the `Strict-Transport-Security` header sent on every response when TLS
    /// is on, seconds (0: no header).
    #[arg(long, env = "CLARITY_HSTS_MAX_AGE_SECS", default_value_t = 31_536_000)]
    pub hsts_max_age_secs: u64,
}

impl TlsConfig {
    /// The certificate and key files, when TLS is on.
    pub fn files(&self) -> Option<(PathBuf, PathBuf)> {
        Some((self.tls_cert.clone()?, self.tls_key.clone()?))
    }

    pub fn reload_interval(&self) -> Duration {
        Duration::from_secs(self.tls_reload_secs.max(1))
    }
}
