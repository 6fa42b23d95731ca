//! Accounts and tokens: signup, login, refresh-token rotation, access-token checks.
//!
//! Rules:
//! - Login failures look the same whatever the cause (unknown email or wrong password), in
//!   answer and in time.
//! - Refresh tokens are single-use; presenting a spent one revokes its whole family.
//! - Nothing here logs a password or a token.

pub mod password;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use crate::store::{RefreshTokenRecord, RotateOutcome, Store, StoreError, UserRecord};
pub use tokens::{TokenError, TokenKeys, Verified};

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid email address")]
    InvalidEmail,
    #[error("{0}")]
    WeakPassword(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("email already registered")]
    EmailTaken,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("refresh token is invalid or expired")]
    InvalidRefresh,
    #[error("refresh token was already used; all tokens of this login are revoked")]
    RefreshReused,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::EmailTaken => AuthError::EmailTaken,
            e => AuthError::Store(e),
        }
    }
}

/// An access/refresh pair as handed to a client.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Access token lifetime, seconds.
    pub expires_in: u64,
}

pub struct Auth {
    keys: TokenKeys,
    store: Arc<dyn Store>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    /// Runs argon2 (each hash takes ~19 MiB and a core) on a few dedicated threads.
    hashing: password::HashPool,
    /// Verified against when the email is unknown, so that path costs a real verification.
    dummy_hash: String,
}

impl Auth {
    pub fn new(
        keys: TokenKeys,
        store: Arc<dyn Store>,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> anyhow::Result<Auth> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Auth {
            keys,
            store,
            access_ttl,
            refresh_ttl,
            hashing: password::HashPool::new(cores)?,
            dummy_hash: password::hash("dummy password for timing equalisation")?,
        })
    }

    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    pub fn verify_access(&self, token: &str) -> Result<Verified, TokenError> {
        self.keys.verify(token)
    }

    pub async fn signup(
        &self,
        email: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<UserRecord, AuthError> {
        let email = normalise_email(email)?;
        password::check_policy(password, &email).map_err(AuthError::WeakPassword)?;
        let display_name = match display_name.map(str::trim) {
            None | Some("") => None,
            Some(n) if n.chars().count() > MAX_DISPLAY_NAME || n.chars().any(char::is_control) => {
                return Err(AuthError::InvalidInput(format!(
                    "display_name must be at most {MAX_DISPLAY_NAME} printable characters"
                )));
            }
            Some(n) => Some(n.to_owned()),
        };
        let pw = password.to_owned();
        let password_hash = self.blocking_hash(move || password::hash(&pw)).await??;
        let user = UserRecord {
            id: Uuid::now_v7(),
            email,
            display_name,
            password_hash,
            created_at: Utc::now(),
        };
        self.store.create_user(user.clone()).await?;
        Ok(user)
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<TokenPair, AuthError> {
        let user = match normalise_email(email) {
            Ok(e) => self.store.user_by_email(&e).await?,
            Err(_) => None,
        };
        let stored = user
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.password_hash.clone());
        let pw = password.to_owned();
        let ok = self
            .blocking_hash(move || password::verify(&pw, &stored))
            .await?;
        match user {
            Some(user) if ok => self.new_family(user.id).await,
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        let old_hash = tokens::refresh_token_hash(refresh_token);
        let new_token = tokens::new_refresh_token();
        let now = Utc::now();
        let record = RefreshTokenRecord {
            token_hash: tokens::refresh_token_hash(&new_token),
            // Overwritten by the store with the old token's user and family.
            user_id: Uuid::nil(),
            family_id: Uuid::nil(),
            expires_at: now + self.refresh_ttl,
        };
        match self
            .store
            .rotate_refresh_token(old_hash, record, now)
            .await?
        {
            RotateOutcome::Rotated { user_id } => self.pair(user_id, new_token),
            RotateOutcome::Reused => Err(AuthError::RefreshReused),
            RotateOutcome::Invalid => Err(AuthError::InvalidRefresh),
        }
    }

    async fn new_family(&self, user_id: Uuid) -> Result<TokenPair, AuthError> {
        let token = tokens::new_refresh_token();
        self.store
            .insert_refresh_token(RefreshTokenRecord {
                token_hash: tokens::refresh_token_hash(&token),
                user_id,
                family_id: Uuid::new_v4(),
                expires_at: Utc::now() + self.refresh_ttl,
            })
            .await?;
        self.pair(user_id, token)
    }

    fn pair(&self, user_id: Uuid, refresh_token: String) -> Result<TokenPair, AuthError> {
        let (access_token, _) = self.keys.issue(user_id, self.access_ttl)?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: self.access_ttl.as_secs(),
        })
    }

    async fn blocking_hash<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        self.hashing.run(f).await.map_err(AuthError::Internal)
    }
}

/// Lower-cases and checks an address; the result is the account key.
pub fn normalise_email(email: &str) -> Result<String, AuthError> {
    let email = email.trim().to_lowercase();
    let domain_ok = email
        .rsplit_once('@')
        .is_some_and(|(_, d)| d.contains('.') && !d.starts_with('.') && !d.ends_with('.'));
    if email.len() > 254 || !domain_ok || !email_address::EmailAddress::is_valid(&email) {
        return Err(AuthError::InvalidEmail);
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::normalise_email;

    #[test]
    fn emails() {
        assert_eq!(
            normalise_email(" Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }
}
