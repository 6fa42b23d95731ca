//! Access tokens (HS256 JWT) and opaque refresh tokens.
//!
//! Rules:
//! - The algorithm is pinned: a token whose header names another algorithm is invalid.
//! - `exp`, `iat`, `iss`, `aud` and `sub` are required, `iat` not in the future; no leeway
//!   beyond a few seconds of clock skew.
//! - Refresh tokens are 256 random bits; only their SHA-256 is stored.
//! - Access tokens issued at login or refresh name their refresh-token family (`fam`), so
//!   that a logout can end them and the sessions they opened before they expire.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Clock skew tolerated on `exp`.
pub(crate) const LEEWAY_SECS: u64 = 5;
/// Shortest accepted configured secret.
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
    /// The refresh-token family (login) the token was issued for; absent on tokens minted
    /// outside a login (tests, tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<Uuid>,
}

/// What a valid access token proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub user_id: Uuid,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// The login (refresh-token family) behind a local token; `None` for Cognito tokens.
    pub family: Option<Uuid>,
    /// When the token was issued (`iat`, Unix seconds); `None` for a Cognito token without
    /// one. Erasing the account without the password needs a recent one.
    pub issued_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
    /// Valid, but its login was ended by a logout.
    #[error("token of a login that was ended")]
    Revoked,
    /// Valid, but its account no longer exists.
    #[error("the token's account no longer exists")]
    AccountNotFound,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl TokenKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> anyhow::Result<TokenKeys> {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "the JWT secret must be at least {MIN_SECRET_BYTES} bytes"
        );
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// Signs an access token for `user` valid for `ttl`; returns it with its expiry.
    pub fn issue(&self, user: Uuid, ttl: Duration) -> anyhow::Result<(String, i64)> {
        self.issue_in_family(user, None, ttl)
    }

    /// [`TokenKeys::issue`] for the login `family` (the `fam` claim).
    pub fn issue_in_family(
        &self,
        user: Uuid,
        family: Option<Uuid>,
        ttl: Duration,
    ) -> anyhow::Result<(String, i64)> {
        let now = chrono::Utc::now().timestamp();
        let exp = now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: user,
            iat: now,
            exp,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
            fam: family,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, exp))
    }

    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            // jsonwebtoken does not look at `iat`; a token from the future is forged or from
            // a badly wrong clock.
            Ok(data) if data.claims.iat > chrono::Utc::now().timestamp() + LEEWAY_SECS as i64 => {
                Err(TokenError::Invalid)
            }
            Ok(data) => Ok(Verified {
                user_id: data.claims.sub,
                expires_at: data.claims.exp,
                family: data.claims.fam,
                issued_at: Some(data.claims.iat),
            }),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(TokenError::Expired),
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

/// The configured secret, or one generated on first start and kept in `dir/jwt_secret`.
pub fn load_secret(configured: Option<&SecretString>, dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = configured {
        return Ok(s.expose_secret().as_bytes().to_vec());
    }
    let path = dir.join("jwt_secret");
    match std::fs::read_to_string(&path) {
        Ok(hex) => Ok(hex.trim().as_bytes().to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            let mut bytes = [0u8; 48];
            rand::rng().fill_bytes(&mut bytes);
            let secret = URL_SAFE_NO_PAD.encode(bytes);
            write_private(&path, secret.as_bytes())?;
            Ok(secret.into_bytes())
        }
        Err(e) => Err(e.into()),
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// A new opaque refresh token.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn refresh_token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], "clarity", "clarity-api").unwrap()
    }

    #[test]
    fn round_trip_and_tamper() {
        let k = keys();
        let user = Uuid::new_v4();
        let (t, exp) = k.issue(user, Duration::from_secs(60)).unwrap();
        let v = k.verify(&t).unwrap();
        assert_eq!((v.user_id, v.expires_at, v.family), (user, exp, None));
        let fam = Uuid::new_v4();
        let (t2, _) = k
            .issue_in_family(user, Some(fam), Duration::from_secs(60))
            .unwrap();
        assert_eq!(k.verify(&t2).unwrap().family, Some(fam));
        let other = TokenKeys::new(&[8u8; 32], "clarity", "clarity-api").unwrap();
        assert_eq!(other.verify(&t), Err(TokenError::Invalid));
        let wrong_aud = TokenKeys::new(&[7u8; 32], "clarity", "other").unwrap();
        assert_eq!(wrong_aud.verify(&t), Err(TokenError::Invalid));
        assert_eq!(k.verify("garbage"), Err(TokenError::Invalid));
    }

    #[test]
    fn alg_none_is_refused() {
        // header {"alg":"none","typ":"JWT"}
        let user = Uuid::new_v4();
        let payload = serde_json::json!({"sub": user, "iat": 0, "exp": 9_999_999_999i64,
            "iss": "clarity", "aud": "clarity-api", "jti": user});
        let t = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        assert_eq!(keys().verify(&t), Err(TokenError::Invalid));
    }

    #[test]
    fn issued_in_the_future_or_without_iat_is_refused() {
        let now = chrono::Utc::now().timestamp();
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(&[7u8; 32]).unwrap(),
            )
            .unwrap()
        };
        let base = serde_json::json!({"sub": Uuid::new_v4(), "exp": now + 600,
            "iss": "clarity", "aud": "clarity-api", "jti": Uuid::new_v4()});
        let mut future = base.clone();
        future["iat"] = (now + 3600).into();
        assert_eq!(keys().verify(&sign(future)), Err(TokenError::Invalid));
        assert_eq!(keys().verify(&sign(base.clone())), Err(TokenError::Invalid));
        let mut ok = base;
        ok["iat"] = now.into();
        assert!(keys().verify(&sign(ok)).is_ok());
    }

    #[test]
    fn expired_is_distinguished() {
        let k = keys();
        let claims = Claims {
            sub: Uuid::new_v4(),
            iat: 1,
            exp: 2,
            iss: "clarity".into(),
            aud: "clarity-api".into(),
            jti: Uuid::new_v4(),
            fam: None,
        };
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&[7u8; 32]).unwrap(),
        )
        .unwrap();
        assert_eq!(k.verify(&t), Err(TokenError::Expired));
    }
}
