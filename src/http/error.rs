//! The one HTTP error type.
//!
//! Rules: every error body is `{"error":{"code","message"}}` with a stable `code`; internal
//! causes are logged here and never sent; store overload and timeouts are 503 with
//! `Retry-After`, so clients retry instead of giving up.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{AccessError, AuthError, TokenError};
use crate::store::StoreError;

/// The body of every error response (and of the WebSocket's HTTP refusals).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable; each response lists the codes it can carry.
    #[schema(value_type = String, example = "invalid_query")]
    pub code: &'static str,
    /// For people; may change.
    pub message: String,
    /// With 429 and 503: how long to wait before retrying, also given (in seconds, rounded
    /// up) as `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, nullable = false)]
    pub retry_after_ms: Option<u64>,
}

/// Retry hint given with 503s caused by the store.
pub const STORE_RETRY_AFTER_MS: u64 = crate::protocol::STORE_RETRY_AFTER_MS;

/// Retry hint given with 503s caused by another service (the S3 import archive).
pub const DEPENDENCY_RETRY_AFTER_MS: u64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("no such resource")]
    NotFound,
    /// What the request refers to is no longer there for good (410), e.g. a change-feed
    /// position the client must start again from 0 instead of.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    #[error("{message}")]
    Missing { code: &'static str, message: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    UpgradeRequired { message: String },
    /// A service the request needs (the S3 import archive) refused or could not be reached:
    /// 503 with a retry hint and a message saying what was not done.
    #[error("{message}")]
    Dependency { code: &'static str, message: String },
    #[error("service temporarily unavailable, retry later")]
    Unavailable { retry_after_ms: u64 },
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_ms: u64,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// Login throttled: too many failed attempts for this account or from this address.
    #[error("too many failed logins; try again after the delay given")]
    TooManyAttempts { retry_after_ms: u64 },
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code,
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::Missing { .. } => StatusCode::NOT_FOUND,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::UpgradeRequired { .. } => StatusCode::UPGRADE_REQUIRED,
            ApiError::Unavailable { .. } | ApiError::Dependency { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The retry hint of 429s and 503s.
    fn retry_after_ms(&self) -> Option<u64> {
        match self {
            ApiError::Unavailable { retry_after_ms }
            | ApiError::TooManyRequests { retry_after_ms, .. }
            | ApiError::TooManyAttempts { retry_after_ms } => Some(*retry_after_ms),
            ApiError::Dependency { .. } => Some(DEPENDENCY_RETRY_AFTER_MS),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unprocessable { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Missing { code, .. }
            | ApiError::Dependency { code, .. }
            | ApiError::Gone { code, .. } => code,
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::UpgradeRequired { .. } => "upgrade_required",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Internal(_) => "internal",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut error = ErrorDetail {
            code: self.code(),
            message: self.to_string(),
            retry_after_ms: None,
        };
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = ?cause, "internal error");
        }
        error.retry_after_ms = self.retry_after_ms();
        let mut resp = (status, axum::Json(ErrorBody { error })).into_response();
        let headers = resp.headers_mut();
        if let ApiError::Unauthorized { .. } = &self {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(retry_after_ms) = self.retry_after_ms() {
            let secs = retry_after_ms.div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::EmailTaken => ApiError::Conflict {
                code: "email_taken",
                message: "an account with this email already exists".into(),
            },
            StoreError::AccountErased => ApiError::Gone {
                code: "account_erased",
                message: "the account was erased".into(),
            },
            e if e.is_transient() => {
                tracing::warn!(error = %e, "store unavailable");
                metrics::counter!(crate::metrics::STORE_ERRORS, "kind" => "transient").increment(1);
                ApiError::Unavailable {
                    retry_after_ms: STORE_RETRY_AFTER_MS,
                }
            }
            e => {
                metrics::counter!(crate::metrics::STORE_ERRORS, "kind" => "failed").increment(1);
                ApiError::Internal(e.into())
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let msg = e.to_string();
        match e {
            AuthError::InvalidEmail => ApiError::unprocessable("invalid_email", msg),
            AuthError::WeakPassword(_) => ApiError::unprocessable("weak_password", msg),
            AuthError::InvalidInput(_) => ApiError::unprocessable("invalid_input", msg),
            AuthError::EmailTaken => ApiError::Conflict {
                code: "email_taken",
                message: "an account with this email already exists".into(),
            },
            AuthError::InvalidCredentials => ApiError::unauthorized("invalid_credentials", msg),
            AuthError::InvalidRefresh => ApiError::unauthorized("invalid_refresh_token", msg),
            AuthError::RefreshReused { .. } => ApiError::unauthorized("refresh_token_reused", msg),
            AuthError::LocalAuthDisabled => ApiError::Missing {
                code: "local_auth_disabled",
                message: msg,
            },
            AuthError::Store(e) => e.into(),
            AuthError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => ApiError::unauthorized("token_expired", "access token expired"),
            TokenError::Invalid => ApiError::unauthorized("unauthorized", "invalid access token"),
            TokenError::Revoked => ApiError::unauthorized(
                "token_revoked",
                "this login was ended (logout, or a replayed refresh token); sign in again",
            ),
            TokenError::AccountNotFound => ApiError::unauthorized(
                "account_not_found",
                "the account this token was issued for no longer exists",
            ),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Token(e) => e.into(),
            AccessError::Unavailable { retry_after } => ApiError::Unavailable {
                retry_after_ms: (retry_after.as_millis() as u64).max(1000),
            },
            AccessError::Store(e) => e.into(),
        }
    }
}
