//! Amazon Cognito access tokens (`--auth cognito`): RS256 signatures checked against the user
//! pool's published keys (JWKS).
//!
//! Rules:
//! - Only RS256, only keys of the pool's key set, found by the token's `kid`. `iss` must be the
//!   pool, `token_use` `access`, `client_id` ours (access tokens carry no `aud`), `exp` with the
//!   same few seconds of clock skew as local tokens, `iat` (when present) not in the future, and
//!   `sub` a UUID: it becomes the Clarity user id.
//! - The key set is cached. A token with an unknown `kid` fetches it again, but only one fetch
//!   runs at a time and fetches start at least `min_refetch` apart, so tokens with made-up kids
//!   cannot make us hammer Cognito (and a token whose unverified claims could never pass does
//!   not fetch at all). After `jwks_max_age` the set is refreshed in the background while the
//!   cached keys keep answering.
//! - When the key set cannot be fetched, a token with a cached `kid` still verifies; any other
//!   token is [`CognitoError::Unavailable`] (503 with `Retry-After`), not invalid: it may well
//!   be fine.
//! - Tokens are never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use uuid::Uuid;

use super::tokens::{LEEWAY_SECS, TokenError};

/// Largest key-set document accepted (Cognito's is about 1 KB).
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// What `--auth cognito` needs; the server builds it from its command line.
#[derive(Debug, Clone)]
pub struct CognitoSettings {
    /// `https://cognito-idp.{region}.amazonaws.com/{pool}`: required as `iss`.
    pub issuer: String,
    /// The app client id required as `client_id`.
    pub client_id: String,
    pub jwks_url: String,
    /// Age after which the key set is refreshed in the background.
    pub jwks_max_age: Duration,
    /// Shortest interval between the starts of two fetches.
    pub min_refetch: Duration,
    /// Longest wait for one fetch.
    pub fetch_timeout: Duration,
}

/// The region of a pool id such as `us-east-1_AbC123xyz`, if it has that shape.
pub fn region_of_pool(pool: &str) -> Option<String> {
    let (region, id) = pool.split_once('_')?;
    let region_ok = region.split('-').count() >= 3
        && region.split('-').all(|p| !p.is_empty())
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let id_ok = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric());
    (region_ok && id_ok).then(|| region.to_owned())
}

/// What a valid Cognito access token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoIdentity {
    /// The token's `sub`.
    pub user_id: Uuid,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// The `username` claim (access tokens carry no email).
    pub username: Option<String>,
    /// An `email` claim, present only when the pool adds one (pre-token-generation trigger).
    pub email: Option<String>,
    /// The `iat` claim, Unix seconds.
    pub issued_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CognitoError {
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The signing keys could not be fetched; the token may be fine.
    #[error("the identity provider's signing keys are unavailable")]
    Unavailable { retry_after: Duration },
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    token_use: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// Claims read before the signature is checked, only to decide whether a fetch is worth it.
#[derive(Deserialize)]
struct Unverified {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    token_use: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

#[derive(Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

type Keys = HashMap<String, Arc<DecodingKey>>;

#[derive(Default)]
struct KeyState {
    keys: Keys,
    /// Start of the last successful fetch.
    fetched_at: Option<Instant>,
    /// Start of the last fetch, successful or not.
    attempted_at: Option<Instant>,
    last_failed: bool,
    /// A background refresh of a stale set is queued or running.
    refreshing: bool,
    fetches: u64,
}

impl KeyState {
    /// How long until another fetch may start; `None` when one may start now.
    fn fetch_wait(&self, now: Instant, min: Duration) -> Option<Duration> {
        let next = self.attempted_at? + min;
        (next > now).then(|| next - now)
    }

    fn is_stale(&self, now: Instant, max_age: Duration) -> bool {
        self.fetched_at
            .is_none_or(|t| now.duration_since(t) >= max_age)
    }
}

/// Verifies Cognito access tokens; cheap to clone (one shared key cache).
#[derive(Clone)]
pub struct Cognito {
    inner: Arc<Inner>,
}

struct Inner {
    settings: CognitoSettings,
    http: reqwest::Client,
    validation: Validation,
    state: Mutex<KeyState>,
    /// Held for the whole of a fetch: at most one at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl Cognito {
    pub fn new(settings: CognitoSettings) -> anyhow::Result<Cognito> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.fetch_timeout)
            .timeout(settings.fetch_timeout)
            .build()?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[&settings.issuer]);
        // Access tokens have no `aud`; `client_id` is checked instead.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Ok(Cognito {
            inner: Arc::new(Inner {
                settings,
                http,
                validation,
                state: Mutex::new(KeyState::default()),
                fetching: tokio::sync::Mutex::new(()),
            }),
        })
    }

    pub fn settings(&self) -> &CognitoSettings {
        &self.inner.settings
    }

    /// Key-set fetches attempted so far (successful or not).
    pub fn fetches(&self) -> u64 {
        self.inner.state().fetches
    }

    pub async fn verify(&self, token: &str) -> Result<CognitoIdentity, CognitoError> {
        let invalid = || CognitoError::Token(TokenError::Invalid);
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid());
        }
        let kid = header.kid.ok_or_else(invalid)?;
        let key = self.inner.clone().key_for(&kid, token).await?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.inner.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => CognitoError::Token(TokenError::Expired),
                _ => invalid(),
            },
        )?;
        let c = data.claims;
        if c.token_use.as_deref() != Some("access")
            || c.client_id.as_deref() != Some(self.inner.settings.client_id.as_str())
            || c.iat
                .is_some_and(|iat| iat > chrono::Utc::now().timestamp() + LEEWAY_SECS as i64)
        {
            return Err(invalid());
        }
        let user_id = Uuid::parse_str(&c.sub).map_err(|_| invalid())?;
        Ok(CognitoIdentity {
            user_id,
            expires_at: c.exp,
            username: c.username,
            email: c.email,
            issued_at: c.iat,
        })
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, KeyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn key_for(
        self: Arc<Self>,
        kid: &str,
        token: &str,
    ) -> Result<Arc<DecodingKey>, CognitoError> {
        let s = &self.settings;
        {
            let mut st = self.state();
            if let Some(key) = st.keys.get(kid).cloned() {
                let now = Instant::now();
                if st.is_stale(now, s.jwks_max_age)
                    && !st.refreshing
                    && st.fetch_wait(now, s.min_refetch).is_none()
                {
                    st.refreshing = true;
                    tokio::spawn(self.clone().refresh_stale());
                }
                return Ok(key);
            }
        }
        // An unknown kid. Tokens that could never pass do not get to trigger a fetch.
        if !self.plausible(token) {
            return Err(TokenError::Invalid.into());
        }
        let _one = self.fetching.lock().await;
        {
            let st = self.state();
            if let Some(key) = st.keys.get(kid) {
                return Ok(key.clone());
            }
            if let Some(wait) = st.fetch_wait(Instant::now(), s.min_refetch) {
                return Err(if st.last_failed {
                    CognitoError::Unavailable { retry_after: wait }
                } else {
                    TokenError::Invalid.into()
                });
            }
        }
        match self.fetch().await {
            Ok(()) => self
                .state()
                .keys
                .get(kid)
                .cloned()
                .ok_or(TokenError::Invalid.into()),
            Err(()) => Err(CognitoError::Unavailable {
                retry_after: s.min_refetch,
            }),
        }
    }

    /// Whether the unverified claims name this pool, client and token use.
    fn plausible(&self, token: &str) -> bool {
        match jsonwebtoken::dangerous::insecure_decode_claims::<Unverified>(token) {
            Ok(c) => {
                c.iss.as_deref() == Some(self.settings.issuer.as_str())
                    && c.client_id.as_deref() == Some(self.settings.client_id.as_str())
                    && c.token_use.as_deref() == Some("access")
            }
            Err(_) => false,
        }
    }

    async fn refresh_stale(self: Arc<Self>) {
        {
            let _one = self.fetching.lock().await;
            let now = Instant::now();
            let due = {
                let st = self.state();
                st.is_stale(now, self.settings.jwks_max_age)
                    && st.fetch_wait(now, self.settings.min_refetch).is_none()
            };
            if due {
                // A failure is logged by `fetch`; the cached keys keep answering.
                let _ = self.fetch().await;
            }
        }
        self.state().refreshing = false;
    }

    /// Fetches the key set and replaces the cache with it; the caller holds `fetching`.
    async fn fetch(&self) -> Result<(), ()> {
        let started = Instant::now();
        {
            let mut st = self.state();
            st.attempted_at = Some(started);
            st.fetches += 1;
        }
        let result = self.download().await;
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!(crate::metrics::COGNITO_JWKS_FETCHES, "outcome" => outcome).increment(1);
        let mut st = self.state();
        match result {
            Ok(keys) => {
                tracing::info!(
                    keys = keys.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "Cognito signing keys fetched"
                );
                st.keys = keys;
                st.fetched_at = Some(started);
                st.last_failed = false;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    url = %self.settings.jwks_url,
                    cached_keys = st.keys.len(),
                    "cannot fetch the Cognito signing keys"
                );
                st.last_failed = true;
                Err(())
            }
        }
    }

    async fn download(&self) -> anyhow::Result<Keys> {
        let resp = self
            .http
            .get(&self.settings.jwks_url)
            .send()
            .await?
            .error_for_status()?;
        anyhow::ensure!(
            resp.content_length()
                .is_none_or(|n| n <= MAX_JWKS_BYTES as u64),
            "key set over {MAX_JWKS_BYTES} bytes"
        );
        let body = resp.bytes().await?;
        anyhow::ensure!(
            body.len() <= MAX_JWKS_BYTES,
            "key set over {MAX_JWKS_BYTES} bytes"
        );
        let set: RawKeySet = serde_json::from_slice(&body)?;
        let keys = rs256_keys(set);
        anyhow::ensure!(!keys.is_empty(), "the key set has no RS256 signing key");
        Ok(keys)
    }
}

/// The RS256 signing keys of a set, by `kid`; other keys are skipped, not fatal.
fn rs256_keys(set: RawKeySet) -> Keys {
    let mut keys = Keys::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let rsa = matches!(jwk.algorithm, AlgorithmParameters::RSA(_));
        let alg_ok = jwk
            .common
            .key_algorithm
            .is_none_or(|a| a == KeyAlgorithm::RS256);
        let use_ok = jwk
            .common
            .public_key_use
            .as_ref()
            .is_none_or(|u| *u == PublicKeyUse::Signature);
        if !(rsa && alg_ok && use_ok) {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.insert(kid, Arc::new(key));
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_regions() {
        assert_eq!(
            region_of_pool("us-east-1_AbC123xyz").as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            region_of_pool("ap-southeast-2_x9").as_deref(),
            Some("ap-southeast-2")
        );
        for bad in [
            "",
            "us-east-1",
            "us-east-1_",
            "_abc",
            "useast1_abc",
            "us-east-1_a/b",
        ] {
            assert_eq!(region_of_pool(bad), None, "{bad}");
        }
    }

    #[test]
    fn key_set_filtering() {
        let rsa = |kid: &str, alg: Option<&str>, usage: Option<&str>| {
            let mut v = serde_json::json!({"kty": "RSA", "kid": kid, "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"});
            if let Some(a) = alg {
                v["alg"] = a.into();
            }
            if let Some(u) = usage {
                v["use"] = u.into();
            }
            v
        };
        let set = RawKeySet {
            keys: vec![
                rsa("a", Some("RS256"), Some("sig")),
                rsa("b", None, None),
                rsa("c", Some("RS512"), Some("sig")),
                rsa("d", Some("RS256"), Some("enc")),
                serde_json::json!({"kty": "oct", "kid": "e", "k": "c2VjcmV0", "alg": "HS256"}),
                serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
                serde_json::json!({"nonsense": true}),
            ],
        };
        let mut kids: Vec<_> = rs256_keys(set).into_keys().collect();
        kids.sort();
        assert_eq!(kids, ["a", "b"]);
    }
}
