//! `/api/v1/user/*` and `/api/v1/user`: the caller's own account.
//!
//! Rules for erasing it (`DELETE /api/v1/user`):
//! - It needs proof that the account holder is present, not just a token that may have been
//!   lying around: the password in the body (checked as at login, and throttled with the
//!   same budgets), or an access token issued less than [`REAUTH_SECS`] ago. Otherwise 403
//!   `reauthentication_required` naming both ways; a wrong password is 403 `wrong_password`.
//! - What is erased, in what order and what is kept: `server::erase` and docs/security.md.

use axum::http::{HeaderMap, StatusCode};
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::client_ip::ClientIp;
use super::openapi::{BearerErrors, JsonBodyErrors};
use super::{AuthUser, Body, json_body};
use crate::app::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// How recent an access token must be to erase the account without the password.
pub const REAUTH_SECS: i64 = 300;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(profile))
        .routes(routes!(erase))
}

#[derive(Serialize, ToSchema)]
struct Profile {
    user_id: Uuid,
    email: String,
    /// `null` when none was given at signup.
    #[schema(required = true)]
    display_name: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: String,
}

/// The caller's profile
#[utoipa::path(
    get,
    path = "/api/v1/user/profile",
    operation_id = "get_profile",
    tag = "user",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account.", body = Profile),
        BearerErrors,
    ),
)]
async fn profile(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> Result<Json<Profile>, ApiError> {
    // The extractor checked the account; it may have gone since (or its positive answer
    // was cached): the same refusal.
    let user = state
        .store
        .user_by_id(caller.user_id)
        .await?
        .ok_or(crate::auth::TokenError::AccountNotFound)?;
    Ok(Json(Profile {
        user_id: user.id,
        email: user.email,
        display_name: user.display_name,
        created_at: user
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EraseBody {
    /// The account's password. May be left out (or the body empty) when the access token was
    /// issued less than 5 minutes ago.
    #[schema(example = "correct horse battery")]
    password: Option<String>,
}

/// Erase the account
///
/// Deletes the account and everything it owns (samples, analyses, insights, stream events,
/// shares given and received, refresh tokens, audit log), closes its live sessions (4011
/// `account_erased`) and ends grantees' subscriptions to its streams. Only an audit
/// tombstone `account_erased` (the account id and the time) is kept. Download the data
/// first with `GET /api/v1/export`.
#[utoipa::path(
    delete,
    path = "/api/v1/user",
    operation_id = "erase_account",
    tag = "user",
    security(("bearer" = [])),
    request_body(content = EraseBody, content_type = "application/json", description = "Optional when the access token is less than 5 minutes old."),
    responses(
        (status = 204, description = "Erased: the account's tokens no longer work, its email address can sign up again (as a new account)."),
        (status = 403, description = "`wrong_password`, or `reauthentication_required`: no password given and the access token is over 5 minutes old (log in again, or send the password).", body = ErrorBody),
        (status = 422, description = "`invalid_body` (not of the schema).", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many wrong passwords for this account or from this address (the login budgets).", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the next attempt is admitted."))),
        JsonBodyErrors,
        BearerErrors,
    ),
)]
async fn erase(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<StatusCode, ApiError> {
    let b: EraseBody = if body.iter().all(u8::is_ascii_whitespace) {
        EraseBody { password: None }
    } else {
        json_body(&headers, &body)?
    };
    match b.password {
        Some(password) => check_password(&state, caller.user_id, &password, ip).await?,
        None => {
            let now = chrono::Utc::now().timestamp();
            let fresh = caller
                .issued_at
                .is_some_and(|iat| now.saturating_sub(iat) < REAUTH_SECS);
            if !fresh {
                return Err(ApiError::Forbidden {
                    code: "reauthentication_required",
                    message: format!(
                        "erasing the account needs the password in the body \
                         ({{\"password\": \"...\"}}) or an access token issued less than \
                         {} minutes ago: log in again",
                        REAUTH_SECS / 60
                    ),
                });
            }
        }
    }
    crate::server::erase::erase_account(&state.0, caller.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The password check of an erasure, under the login throttle's budgets.
async fn check_password(
    state: &AppState,
    user: Uuid,
    password: &str,
    ip: std::net::IpAddr,
) -> Result<(), ApiError> {
    let account = state
        .store
        .user_by_id(user)
        .await?
        .ok_or(crate::auth::TokenError::AccountNotFound)?;
    let attempt = state
        .login_throttle
        .begin(&account.email, ip)
        .map_err(|t| super::auth::throttled(t, ip))?;
    match state.auth.check_password(user, password).await {
        Ok(true) => {
            attempt.succeeded();
            Ok(())
        }
        Ok(false) => {
            drop(attempt);
            Err(ApiError::Forbidden {
                code: "wrong_password",
                message: "the password is not this account's; nothing was erased".into(),
            })
        }
        Err(e) => {
            attempt.undecided();
            Err(e.into())
        }
    }
}
