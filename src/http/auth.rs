//! `/api/v1/auth/*`: signup, login, refresh, logout. With `--auth cognito` all four answer
//! 404 `local_auth_disabled`: accounts and tokens are the user pool's.
//!
//! Rules:
//! - Logins are throttled per account and client address, and per address
//!   ([`crate::auth::throttle`]): 429 `too_many_attempts` with `Retry-After`, answered before
//!   the password is looked at. Logs never carry the email address.
//! - Logout needs the access token and the login's refresh token; it ends that login
//!   everywhere: refresh tokens (store), access tokens and live sessions (4011). A replayed
//!   (spent) refresh token ends its login the same way: it may be a thief's.
//! - Audit (the account's log, after the fact, best effort): `account_created`, `login`,
//!   `login_failed` (a wrong password for an existing account; an email with no account has
//!   no log to go in and is not recorded) and `refresh_token_reused`. Routine refreshes are
//!   not recorded.

use axum::http::{HeaderMap, StatusCode};
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::client_ip::ClientIp;
use super::openapi::{JsonBodyErrors, Unavailable};
use super::{Body, bearer, json_body};
use crate::app::AppState;
use crate::audit::{Action, Event, Origin};
use crate::auth::throttle::Throttled;
use crate::auth::{AuthError, TokenPair};
use crate::http::error::{ApiError, ErrorBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

#[derive(Deserialize, ToSchema)]
struct SignupBody {
    /// Stored lower-case; the domain must have a dot.
    #[schema(format = Email, max_length = 254, example = "ada@example.com")]
    email: String,
    /// 8-128 characters, at least 4 different ones, not a very common password, not the
    /// email address.
    #[schema(min_length = 8, max_length = 128, example = "correct horse battery")]
    password: String,
    /// At most 100 characters, no control characters; empty is none.
    #[schema(max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    display_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct SignupResponse {
    user_id: Uuid,
    /// Normalised (lower-case).
    email: String,
}

/// Create an account
#[utoipa::path(
    post,
    path = "/api/v1/auth/signup",
    operation_id = "signup",
    tag = "auth",
    request_body(content = SignupBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Created. Log in for tokens.", body = SignupResponse),
        (status = 404, description = "`local_auth_disabled` (`--auth cognito`).", body = ErrorBody),
        (status = 409, description = "`email_taken`.", body = ErrorBody),
        (status = 422, description = "`invalid_email`, `weak_password`, `invalid_input` (e.g. a display name over 100 characters) or `invalid_body` (not of the schema).", body = ErrorBody),
        JsonBodyErrors,
        Unavailable,
    ),
)]
async fn signup(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<SignupResponse>), ApiError> {
    state.auth.local_accounts()?;
    let b: SignupBody = json_body(&headers, &body)?;
    let user = state
        .auth
        .signup(&b.email, &b.password, b.display_name.as_deref())
        .await?;
    tracing::info!(user_id = %user.id, "account created");
    let event = Event {
        owner: user.id,
        actor: Some(user.id),
        action: Action::AccountCreated,
        target: None,
        origin: &origin,
    };
    state.audit.record_best_effort(event).await;
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            user_id: user.id,
            email: user.email,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
struct LoginBody {
    #[schema(example = "ada@example.com")]
    email: String,
    #[schema(example = "correct horse battery")]
    password: String,
}

/// Log in
///
/// A new token pair. Unknown email and wrong password get the same answer, in the same time.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    operation_id = "login",
    tag = "auth",
    request_body(content = LoginBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Logged in.", body = super::schemas::TokenPair),
        (status = 401, description = "`invalid_credentials`.", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`."))),
        (status = 404, description = "`local_auth_disabled` (`--auth cognito`).", body = ErrorBody),
        (status = 422, description = "`invalid_body` (not of the schema).", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many failed logins for this account from this address, or from this address overall.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the next attempt is admitted."))),
        JsonBodyErrors,
        Unavailable,
    ),
)]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    origin: Origin,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<TokenPair>, ApiError> {
    state.auth.local_accounts()?;
    let b: LoginBody = json_body(&headers, &body)?;
    let attempt = state
        .login_throttle
        .begin(&b.email, ip)
        .map_err(|t| throttled(t, ip))?;
    let (account, res) = state.auth.login_for(&b.email, &b.password).await;
    let action = match &res {
        Ok(_) => {
            attempt.succeeded();
            Some(Action::Login)
        }
        Err(AuthError::InvalidCredentials) => {
            // A wrong password (or no such account): the attempt stays counted.
            drop(attempt);
            Some(Action::LoginFailed)
        }
        Err(_) => {
            // Not the client's failure (store unavailable): no budget spent.
            attempt.undecided();
            None
        }
    };
    if let (Some(owner), Some(action)) = (account, action) {
        // Written beside the answer, not before it: a wrong password must take as long as an
        // unknown email, which has nothing to record.
        let app = state.0.clone();
        state.sessions.spawn(async move {
            let event = Event {
                owner,
                actor: (action == Action::Login).then_some(owner),
                action,
                target: None,
                origin: &origin,
            };
            app.audit.record_best_effort(event).await;
        });
    }
    Ok(Json(res?))
}

/// The answer to a throttled login; the log names the address, never the account.
pub(super) fn throttled(Throttled { scope, wait }: Throttled, ip: std::net::IpAddr) -> ApiError {
    metrics::counter!(crate::metrics::LOGIN_THROTTLED, "scope" => scope.as_str()).increment(1);
    tracing::info!(%ip, scope = scope.as_str(), "login throttled");
    ApiError::TooManyAttempts {
        retry_after_ms: (wait.as_millis() as u64).max(1),
    }
}

#[derive(Deserialize, ToSchema)]
struct RefreshBody {
    refresh_token: String,
}

/// Refresh tokens
///
/// Spends the refresh token for a new pair. Replaying a spent one ends that login as a
/// logout does: its refresh tokens are revoked, its access tokens refused and its live
/// sessions closed (4011), on every node.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    operation_id = "refresh",
    tag = "auth",
    request_body(content = RefreshBody, content_type = "application/json"),
    responses(
        (status = 200, description = "A new pair; the old refresh token is spent.", body = super::schemas::TokenPair),
        (status = 401, description = "`invalid_refresh_token`, or `refresh_token_reused` (a spent token: the whole login is now ended, its access tokens refused and its sessions closed).", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`."))),
        (status = 404, description = "`local_auth_disabled` (`--auth cognito`).", body = ErrorBody),
        (status = 422, description = "`invalid_body` (not of the schema).", body = ErrorBody),
        JsonBodyErrors,
        Unavailable,
    ),
)]
async fn refresh(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<TokenPair>, ApiError> {
    state.auth.local_accounts()?;
    let b: RefreshBody = json_body(&headers, &body)?;
    let (account, res) = state.auth.refresh_for(&b.refresh_token).await;
    if let (Some(owner), Err(AuthError::RefreshReused { family })) = (account, &res) {
        // A replay may be a thief's: the whole login ends, as at logout, on every node.
        let closed = crate::server::dispatch::end_login(&state.0, owner, *family);
        tracing::info!(user_id = %owner, closed, "refresh token replayed; login ended");
        let event = Event {
            owner,
            // Whoever replayed the token is not known: it may be a thief.
            actor: None,
            action: Action::RefreshTokenReused,
            target: None,
            origin: &origin,
        };
        state.audit.record_best_effort(event).await;
    }
    Ok(Json(res?))
}

/// Log out: end this login everywhere
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "logout",
    tag = "auth",
    security(("bearer" = [])),
    request_body(content = RefreshBody, content_type = "application/json"),
    responses(
        (status = 204, description = "The login's refresh tokens are revoked, its access tokens refused and its live sessions closed (4011)."),
        (status = 401, description = "`unauthorized`, `token_expired` or `token_revoked` (the access token), or `invalid_refresh_token` (not a token of the caller's).", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`."))),
        (status = 404, description = "`local_auth_disabled` (`--auth cognito`).", body = ErrorBody),
        (status = 422, description = "`invalid_body` (not of the schema).", body = ErrorBody),
        JsonBodyErrors,
        Unavailable,
    ),
)]
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<StatusCode, ApiError> {
    // Before the token check, so that Cognito mode answers as for the other endpoints.
    state.auth.local_accounts()?;
    let token = bearer(&headers)
        .ok_or_else(|| ApiError::unauthorized("unauthorized", "missing bearer token"))?;
    let caller = state.auth.verify_access(token).await?;
    let b: RefreshBody = json_body(&headers, &body)?;
    let family = state.auth.logout(caller.user_id, &b.refresh_token).await?;
    let closed = crate::server::dispatch::end_login(&state.0, caller.user_id, family);
    tracing::info!(user_id = %caller.user_id, closed, "logged out");
    Ok(StatusCode::NO_CONTENT)
}
