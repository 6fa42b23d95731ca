//! Authentication settings: who issues access tokens, the local signing key and token
//! lifetimes, the admins, login throttling, and the Cognito user pool.
//!
//! Rules: secrets are `SecretString` with `hide_env_values` (never printed); a Cognito
//! setting that is missing or malformed with `--auth cognito` stops the start with a message
//! naming the flag. Renamed fields keep their old argument id and flag.

use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::SecretString;

use crate::auth::cognito::{CognitoSettings, region_of_pool};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Accounts and tokens managed by this server.
    Local,
    /// Access tokens issued by an Amazon Cognito user pool.
    Cognito,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthConfig {
    /// Who issues access tokens: `local` (signup/login/refresh here, HS256) or `cognito`
    /// (RS256 access tokens of an Amazon Cognito user pool; the local account endpoints are off).
    #[arg(
        id = "auth",
        value_name = "AUTH",
        long = "auth",
        env = "CLARITY_AUTH",
        value_enum,
        default_value = "local"
    )]
    pub mode: AuthMode,

    /// HS256 signing key for access tokens, shared by all nodes of a deployment. When unset a
    /// random key is generated once and kept in the data folder.
    #[arg(long, env = "CLARITY_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,

    /// `iss` claim put in and required of access tokens.
    #[arg(long, env = "CLARITY_JWT_ISSUER", default_value = "clarity")]
    pub jwt_issuer: String,

    /// `aud` claim put in and required of access tokens.
    #[arg(long, env = "CLARITY_JWT_AUDIENCE", default_value = "clarity-api")]
    pub jwt_audience: String,

    /// Access token lifetime, seconds.
    #[arg(long, env = "CLARITY_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,

    /// Refresh token lifetime, seconds.
    #[arg(long, env = "CLARITY_REFRESH_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl_secs: u64,

    /// How long before its token expires a WebSocket session gets a `token_expiring` frame.
    #[arg(long, env = "CLARITY_TOKEN_EXPIRY_WARNING_SECS", default_value_t = 60)]
    pub token_expiry_warning_secs: u64,

    /// Accounts allowed to use `/api/v1/admin/*`, by account id (UUIDs, comma-separated; an
    /// account's id is the `user_id` of its signup answer and of `GET /api/v1/user/profile`).
    /// Empty (the default): nobody.
    #[arg(long, env = "CLARITY_ADMIN_USER_IDS", value_delimiter = ',')]
    pub admin_user_ids: Vec<String>,

    /// Removed (an email address proves nothing until someone signs up with it): given, the
    /// server refuses to start and points to `--admin-user-ids`.
    #[arg(long, env = "CLARITY_ADMIN_EMAILS", value_delimiter = ',', hide = true)]
    pub admin_emails: Vec<String>,

    /// Failed logins for one account from one client address before further attempts from
    /// that address must wait (1 s, then doubling up to the window).
    #[arg(long, env = "CLARITY_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Failed logins from one client address, over all accounts, per window (a token
    /// bucket); past it the address gets 429 until the bucket refills.
    #[arg(long, env = "CLARITY_LOGIN_MAX_FAILURES_PER_IP", default_value_t = 30)]
    pub login_max_failures_per_ip: u32,

    /// Window of the login failure budgets, seconds: an account's failures from an address
    /// are forgotten this long after the last one, and the per-address bucket refills over it.
    #[arg(long, env = "CLARITY_LOGIN_FAILURE_WINDOW_SECS", default_value_t = 900)]
    pub login_failure_window_secs: u64,
}

impl AuthConfig {
    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs.max(1))
    }

    pub fn refresh_ttl(&self) -> Duration {
        Duration::from_secs(self.refresh_token_ttl_secs.max(1))
    }

    pub fn login_failure_window(&self) -> Duration {
        Duration::from_secs(self.login_failure_window_secs.max(1))
    }
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cognito (--auth cognito)")]
pub struct CognitoConfig {
    /// Cognito user pool id, e.g. `us-east-1_AbC123xyz` (required with `--auth cognito`).
    #[arg(
        id = "cognito_user_pool_id",
        value_name = "COGNITO_USER_POOL_ID",
        long = "cognito-user-pool-id",
        env = "CLARITY_COGNITO_USER_POOL_ID"
    )]
    pub user_pool_id: Option<String>,

    /// Cognito app client id; access tokens must carry it as `client_id` (required with
    /// `--auth cognito`).
    #[arg(
        id = "cognito_client_id",
        value_name = "COGNITO_CLIENT_ID",
        long = "cognito-client-id",
        env = "CLARITY_COGNITO_CLIENT_ID"
    )]
    pub client_id: Option<String>,

    /// AWS region of the user pool. Default: the pool id's prefix (`us-east-1` for
    /// `us-east-1_AbC123xyz`).
    #[arg(
        id = "cognito_region",
        value_name = "COGNITO_REGION",
        long = "cognito-region",
        env = "CLARITY_COGNITO_REGION"
    )]
    pub region: Option<String>,

    /// Where the pool's signing keys are fetched. Default:
    /// `https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json`.
    #[arg(
        id = "cognito_jwks_url",
        value_name = "COGNITO_JWKS_URL",
        long = "cognito-jwks-url",
        env = "CLARITY_COGNITO_JWKS_URL"
    )]
    pub jwks_url: Option<String>,

    /// Age after which the cached key set is fetched again (in the background; the cached
    /// keys keep working meanwhile and if the fetch fails), seconds.
    #[arg(
        id = "cognito_jwks_max_age_secs",
        value_name = "COGNITO_JWKS_MAX_AGE_SECS",
        long = "cognito-jwks-max-age-secs",
        env = "CLARITY_COGNITO_JWKS_MAX_AGE_SECS",
        default_value_t = 3600
    )]
    pub jwks_max_age_secs: u64,

    /// Shortest interval between two key-set fetches (a token with an unknown `kid` triggers
    /// one at most this often, so garbage tokens cannot flood Cognito), milliseconds.
    #[arg(
        id = "cognito_jwks_min_refetch_ms",
        value_name = "COGNITO_JWKS_MIN_REFETCH_MS",
        long = "cognito-jwks-min-refetch-ms",
        env = "CLARITY_COGNITO_JWKS_MIN_REFETCH_MS",
        default_value_t = 30_000
    )]
    pub jwks_min_refetch_ms: u64,

    /// Longest wait for one key-set fetch, milliseconds.
    #[arg(
        id = "cognito_jwks_timeout_ms",
        value_name = "COGNITO_JWKS_TIMEOUT_MS",
        long = "cognito-jwks-timeout-ms",
        env = "CLARITY_COGNITO_JWKS_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub jwks_timeout_ms: u64,
}

impl CognitoConfig {
    /// The Cognito settings with `--auth cognito`, `None` with local auth; an error naming
    /// the missing or malformed flag otherwise.
    pub fn settings(&self, mode: AuthMode) -> anyhow::Result<Option<CognitoSettings>> {
        if mode != AuthMode::Cognito {
            return Ok(None);
        }
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        let pool = given(&self.user_pool_id).ok_or_else(|| {
            anyhow::anyhow!(
                "--auth cognito needs --cognito-user-pool-id (CLARITY_COGNITO_USER_POOL_ID)"
            )
        })?;
        let client_id = given(&self.client_id).ok_or_else(|| {
            anyhow::anyhow!("--auth cognito needs --cognito-client-id (CLARITY_COGNITO_CLIENT_ID)")
        })?;
        let region = match given(&self.region) {
            Some(r) => r.to_owned(),
            None => region_of_pool(pool).ok_or_else(|| {
                anyhow::anyhow!(
                    "cannot derive the region from --cognito-user-pool-id `{pool}` (expected \
                     `<region>_<id>`, e.g. `us-east-1_AbC123xyz`); set --cognito-region"
                )
            })?,
        };
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{pool}");
        let jwks_url = match given(&self.jwks_url) {
            Some(u) => u.to_owned(),
            None => format!("{issuer}/.well-known/jwks.json"),
        };
        Ok(Some(CognitoSettings {
            issuer,
            client_id: client_id.to_owned(),
            jwks_url,
            jwks_max_age: Duration::from_secs(self.jwks_max_age_secs.max(1)),
            min_refetch: Duration::from_millis(self.jwks_min_refetch_ms),
            fetch_timeout: Duration::from_millis(self.jwks_timeout_ms.max(1)),
        }))
    }
}
