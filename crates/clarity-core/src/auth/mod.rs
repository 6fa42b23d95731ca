//! Accounts and tokens: signup, login, refresh-token rotation, access-token checks.
//!
//! Rules:
//! - Login failures look the same whatever the cause (unknown email or wrong password), in
//!   answer and in time.
//! - Refresh tokens are single-use; presenting a spent one revokes its whole family and ends
//!   that login exactly as a logout does (access tokens refused, sessions closed 4011).
//! - Logout revokes the family of the refresh token presented (in the store, for every node)
//!   and ends the access tokens of that login on this node until they expire (a deny-list in
//!   memory, filled on the other nodes by the bus; see `server::dispatch::end_login`).
//! - Nothing here logs a password or a token.
//! - With `--auth cognito` access tokens come from a Cognito user pool ([`cognito`]); the
//!   local account endpoints answer `local_auth_disabled`, and a user's first valid token
//!   provisions their account here (id = the token's `sub`).

pub mod accounts;
pub mod cognito;
pub mod password;
pub mod throttle;
pub mod tokens;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use dashmap::DashMap;
use uuid::Uuid;

use crate::store::{RefreshTokenRecord, RotateOutcome, Store, StoreError, UserRecord};
use accounts::AccountCache;
use cognito::{Cognito, CognitoError, CognitoIdentity, CognitoSettings};
pub use tokens::{TokenError, TokenKeys, Verified};

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 100;

/// `password_hash` of accounts provisioned for Cognito users: not a PHC string, so no
/// password ever matches it (should the server be switched back to local auth).
const NO_PASSWORD: &str = "!cognito";

/// Ended logins kept before the expired ones are swept out.
const ENDED_SWEEP_AT: usize = 1024;

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
    /// A spent refresh token was presented: login `family` is revoked in the store and its
    /// access tokens refused here; the caller ends its sessions and tells the other nodes.
    #[error("refresh token was already used; all tokens of this login are revoked")]
    RefreshReused { family: Uuid },
    #[error(
        "accounts are managed by Amazon Cognito on this server: sign up, sign in and refresh \
         tokens with the user pool, then send its access token as `Authorization: Bearer`"
    )]
    LocalAuthDisabled,
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

/// Why an access token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Invalid or expired: 401.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token could not be checked now (Cognito's keys unreachable): 503.
    #[error("the identity provider's signing keys are unavailable")]
    Unavailable { retry_after: Duration },
    /// Provisioning the Cognito user's account failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<CognitoError> for AccessError {
    fn from(e: CognitoError) -> Self {
        match e {
            CognitoError::Token(t) => AccessError::Token(t),
            CognitoError::Unavailable { retry_after } => AccessError::Unavailable { retry_after },
        }
    }
}

/// An access/refresh pair as handed to a client.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenPair {
    /// A JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque, single use: spend it at `/api/v1/auth/refresh`.
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
    /// `Some` with `--auth cognito`: access tokens come from the user pool.
    cognito: Option<Cognito>,
    /// Accounts known to exist, so that checking the account of a request seldom costs a
    /// store read.
    accounts: AccountCache,
    /// Logins (refresh-token families) ended by a logout, with the Unix second by which
    /// every access token of theirs has expired: those tokens are refused until then.
    ended: DashMap<Uuid, i64>,
    /// Size of `ended` at which expired entries are swept next.
    ended_sweep_at: AtomicUsize,
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
            cognito: None,
            accounts: AccountCache::default(),
            ended: DashMap::new(),
            ended_sweep_at: AtomicUsize::new(ENDED_SWEEP_AT),
        })
    }

    /// Switches access-token checks to a Cognito user pool (`None`: stay local).
    pub fn with_cognito(mut self, settings: Option<CognitoSettings>) -> anyhow::Result<Auth> {
        self.cognito = settings.map(Cognito::new).transpose()?;
        Ok(self)
    }

    /// The local signing keys (used in local mode only).
    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The Cognito verifier with `--auth cognito`.
    pub fn cognito(&self) -> Option<&Cognito> {
        self.cognito.as_ref()
    }

    /// `LocalAuthDisabled` when accounts live in Cognito (signup, login and refresh are off).
    pub fn local_accounts(&self) -> Result<(), AuthError> {
        match self.cognito {
            Some(_) => Err(AuthError::LocalAuthDisabled),
            None => Ok(()),
        }
    }

    /// Checks an access token: a local HS256 token, or with `--auth cognito` a Cognito access
    /// token, whose user gets an account here on their first request. A local token whose
    /// account no longer exists is refused (`AccountNotFound`).
    pub async fn verify_access(&self, token: &str) -> Result<Verified, AccessError> {
        let Some(cognito) = &self.cognito else {
            let v = self.keys.verify(token)?;
            if self.accounts.is_erased(v.user_id) {
                return Err(TokenError::AccountNotFound.into());
            }
            if v.family.is_some_and(|f| self.is_ended(f)) {
                return Err(TokenError::Revoked.into());
            }
            if !self.account_exists(v.user_id).await? {
                return Err(TokenError::AccountNotFound.into());
            }
            return Ok(v);
        };
        let id = cognito.verify(token).await?;
        if self.accounts.is_erased(id.user_id) {
            return Err(TokenError::AccountNotFound.into());
        }
        self.provision(&id).await?;
        Ok(Verified {
            user_id: id.user_id,
            expires_at: id.expires_at,
            family: None,
            issued_at: id.issued_at,
        })
    }

    /// Whether `user` has an account (cached for [`accounts::ACCOUNT_TTL`]).
    async fn account_exists(&self, user: Uuid) -> Result<bool, AccessError> {
        if self.accounts.is_fresh(user) {
            return Ok(true);
        }
        let exists = self
            .store
            .user_by_id(user)
            .await
            .map_err(AccessError::Store)?
            .is_some();
        if exists {
            self.accounts.remember(user);
        }
        Ok(exists)
    }

    /// Forgets that `user`'s account exists (it was erased): this node refuses their tokens
    /// from their next request.
    pub fn forget_account(&self, user: Uuid) {
        self.accounts.forget(user);
    }

    /// Refuses `user`'s tokens on this node from now on, whatever the cache or the store
    /// says, while their account is erased (and for [`accounts::ACCOUNT_TTL`] after, so that
    /// a request that read the account before the erasure cannot slip through).
    pub fn begin_erasure(&self, user: Uuid) {
        self.accounts.erase(user);
    }

    /// An erasure that failed: `user`'s tokens work again.
    pub fn abort_erasure(&self, user: Uuid) {
        self.accounts.unerase(user);
    }

    /// Whether `user`'s account is being (or was just) erased, as far as this node knows.
    pub fn is_erased(&self, user: Uuid) -> bool {
        self.accounts.is_erased(user)
    }

    /// Whether `password` is `user`'s (false for an unknown account and for accounts without
    /// a local password). Costs one argon2 verification either way.
    pub async fn check_password(&self, user: Uuid, password: &str) -> Result<bool, AuthError> {
        let stored = self.store.user_by_id(user).await?;
        let hash = stored
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.password_hash.clone());
        let pw = password.to_owned();
        let ok = self
            .blocking_hash(move || password::verify(&pw, &hash))
            .await?;
        Ok(ok && stored.is_some())
    }

    /// Whether the login `family` was ended by a logout (known to this node).
    pub fn is_ended(&self, family: Uuid) -> bool {
        self.ended
            .get(&family)
            .is_some_and(|until| *until >= Utc::now().timestamp())
    }

    /// Refuses the access tokens of login `family` from now until they have all expired.
    pub fn end_family(&self, family: Uuid) {
        let now = Utc::now().timestamp();
        let lifetime = i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX / 4);
        let until = now
            .saturating_add(lifetime)
            .saturating_add(tokens::LEEWAY_SECS as i64);
        self.ended.insert(family, until);
        // Entries are only needed while tokens of theirs may be alive; sweeping when the map
        // has doubled keeps the cost per logout constant.
        if self.ended.len() >= self.ended_sweep_at.load(Ordering::Relaxed) {
            self.ended.retain(|_, until| *until >= now);
            self.ended_sweep_at.store(
                (self.ended.len() * 2).max(ENDED_SWEEP_AT),
                Ordering::Relaxed,
            );
        }
    }

    /// Logout: revokes the family of `refresh_token` (which must be `user`'s) and ends its
    /// access tokens here; returns the family, for ending its sessions.
    pub async fn logout(&self, user: Uuid, refresh_token: &str) -> Result<Uuid, AuthError> {
        self.local_accounts()?;
        let hash = tokens::refresh_token_hash(refresh_token);
        let keep_until = Utc::now() + self.refresh_ttl;
        match self
            .store
            .revoke_refresh_family(hash, user, keep_until)
            .await?
        {
            Some(family) => {
                self.end_family(family);
                Ok(family)
            }
            None => Err(AuthError::InvalidRefresh),
        }
    }

    /// Makes sure a Cognito user has an account (profile, shares and history need one).
    async fn provision(&self, id: &CognitoIdentity) -> Result<(), AccessError> {
        if self.account_exists(id.user_id).await? {
            return Ok(());
        }
        self.create_cognito_account(id).await?;
        self.accounts.remember(id.user_id);
        Ok(())
    }

    /// Creates the account of a Cognito user, named by [`cognito_account_name`]; when another
    /// account holds that name, by the user's id instead.
    async fn create_cognito_account(&self, id: &CognitoIdentity) -> Result<(), AccessError> {
        let by_id = id.user_id.to_string();
        let mut names = vec![cognito_account_name(id)];
        if names[0] != by_id {
            names.push(by_id);
        }
        for email in names {
            let user = UserRecord {
                id: id.user_id,
                email,
                display_name: None,
                password_hash: NO_PASSWORD.to_owned(),
                created_at: Utc::now(),
            };
            match self.store.create_user(user).await {
                Ok(()) => {
                    tracing::info!(user_id = %id.user_id, "account provisioned for a Cognito user");
                    return Ok(());
                }
                // A concurrent first request of the same user won, or the name is taken.
                Err(StoreError::EmailTaken) => {
                    let exists = self
                        .store
                        .user_by_id(id.user_id)
                        .await
                        .map_err(AccessError::Store)?
                        .is_some();
                    if exists {
                        return Ok(());
                    }
                }
                Err(e) => return Err(AccessError::Store(e)),
            }
        }
        Err(AccessError::Store(StoreError::Other(anyhow::anyhow!(
            "cannot provision the account of a Cognito user: its name and id are taken"
        ))))
    }

    pub async fn signup(
        &self,
        email: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<UserRecord, AuthError> {
        self.local_accounts()?;
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
        self.login_for(email, password).await.1
    }

    /// [`Auth::login`], also naming the account the email belongs to (when it names one),
    /// whether the password was right or not: whose audit log the attempt goes in.
    pub async fn login_for(
        &self,
        email: &str,
        password: &str,
    ) -> (Option<Uuid>, Result<TokenPair, AuthError>) {
        if let Err(e) = self.local_accounts() {
            return (None, Err(e));
        }
        let user = match normalise_email(email) {
            Ok(e) => match self.store.user_by_email(&e).await {
                Ok(u) => u,
                Err(e) => return (None, Err(e.into())),
            },
            Err(_) => None,
        };
        let account = user.as_ref().map(|u| u.id);
        let stored = user
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.password_hash.clone());
        let pw = password.to_owned();
        let ok = match self
            .blocking_hash(move || password::verify(&pw, &stored))
            .await
        {
            Ok(ok) => ok,
            Err(e) => return (account, Err(e)),
        };
        let res = match user {
            Some(user) if ok => self.new_family(user.id).await,
            _ => Err(AuthError::InvalidCredentials),
        };
        (account, res)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        self.refresh_for(refresh_token).await.1
    }

    /// [`Auth::refresh`], also naming whose token it was when the store knew it (rotated or
    /// replayed).
    pub async fn refresh_for(
        &self,
        refresh_token: &str,
    ) -> (Option<Uuid>, Result<TokenPair, AuthError>) {
        if let Err(e) = self.local_accounts() {
            return (None, Err(e));
        }
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
        match self.store.rotate_refresh_token(old_hash, record, now).await {
            Ok(RotateOutcome::Rotated { user_id, family_id }) => {
                (Some(user_id), self.pair(user_id, family_id, new_token))
            }
            Ok(RotateOutcome::Reused { user_id, family_id }) => {
                // Treated as a logout of that login: whoever holds its access tokens (the
                // owner or a thief) is refused from now on.
                self.end_family(family_id);
                (
                    Some(user_id),
                    Err(AuthError::RefreshReused { family: family_id }),
                )
            }
            Ok(RotateOutcome::Invalid) => (None, Err(AuthError::InvalidRefresh)),
            Err(e) => (None, Err(e.into())),
        }
    }

    async fn new_family(&self, user_id: Uuid) -> Result<TokenPair, AuthError> {
        let token = tokens::new_refresh_token();
        let family_id = Uuid::new_v4();
        self.store
            .insert_refresh_token(RefreshTokenRecord {
                token_hash: tokens::refresh_token_hash(&token),
                user_id,
                family_id,
                expires_at: Utc::now() + self.refresh_ttl,
            })
            .await?;
        self.pair(user_id, family_id, token)
    }

    fn pair(
        &self,
        user_id: Uuid,
        family_id: Uuid,
        refresh_token: String,
    ) -> Result<TokenPair, AuthError> {
        let (access_token, _) =
            self.keys
                .issue_in_family(user_id, Some(family_id), self.access_ttl)?;
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

/// The account name (the store's `email` field) of a Cognito user: the token's `email` claim
/// when it carries a valid one; else the `username` (lower-cased when it is an email address,
/// so that shares can name it); else the user id. Access tokens carry `username`, not email,
/// unless the pool adds it with a pre-token-generation trigger.
pub fn cognito_account_name(id: &CognitoIdentity) -> String {
    if let Some(email) = id.email.as_deref().and_then(|e| normalise_email(e).ok()) {
        return email;
    }
    match id.username.as_deref().map(str::trim) {
        Some(u) if !u.is_empty() => normalise_email(u).unwrap_or_else(|_| {
            let printable = u.chars().count() <= 254 && !u.chars().any(char::is_control);
            if printable {
                u.to_owned()
            } else {
                id.user_id.to_string()
            }
        }),
        _ => id.user_id.to_string(),
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
    use super::{CognitoIdentity, cognito_account_name, normalise_email};
    use uuid::Uuid;

    #[test]
    fn cognito_account_names() {
        let id = |username: Option<&str>, email: Option<&str>| CognitoIdentity {
            user_id: Uuid::from_u128(7),
            expires_at: 0,
            issued_at: None,
            username: username.map(str::to_owned),
            email: email.map(str::to_owned),
        };
        let by_id = Uuid::from_u128(7).to_string();
        assert_eq!(
            cognito_account_name(&id(Some("ann"), Some("Ann@Example.com"))),
            "ann@example.com"
        );
        assert_eq!(
            cognito_account_name(&id(Some("Ann@Example.com"), None)),
            "ann@example.com"
        );
        assert_eq!(cognito_account_name(&id(Some(" Ann_S "), None)), "Ann_S");
        assert_eq!(
            cognito_account_name(&id(Some("ann"), Some("not an email"))),
            "ann"
        );
        assert_eq!(cognito_account_name(&id(None, None)), by_id);
        assert_eq!(cognito_account_name(&id(Some(" "), None)), by_id);
        assert_eq!(cognito_account_name(&id(Some("a\u{7}b"), None)), by_id);
    }

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
