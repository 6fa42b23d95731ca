//! `/api/v1/auth/*`: signup, login, refresh, logout. With `--auth cognito` all four answer
//! 404 `local_auth_disabled`: accounts and tokens are the user pool's.
//!
//! Rules:
//! - Logins are throttled per account and client address, and per address
//!   ([`crate::auth::throttle`]): 429 `too_many_attempts` with `Retry-After`, answered before
//!   the password is looked at. Logs never carry the email address.
//! - Logout needs the access token and the login's refresh token; it ends that login
//!   everywhere: refresh tokens (store), access tokens and live sessions (4011).
//! - Audit (the account's log, after the fact, best effort): `account_created`, `login`,
//!   `login_failed` (a wrong password for an existing account; an email with no account has
//!   no log to go in and is not recorded) and `refresh_token_reused`. Routine refreshes are
//!   not recorded.

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router, extract::State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::client_ip::ClientIp;
use super::{Body, bearer, json_body};
use crate::app::AppState;
use crate::audit::{self, Action, Event, Origin};
use crate::auth::throttle::Throttled;
use crate::auth::{AuthError, TokenPair};
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/signup", post(signup))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
}

#[derive(Deserialize)]
struct SignupBody {
    email: String,
    password: String,
    display_name: Option<String>,
}

async fn signup(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    audit::record_best_effort(&state, event).await;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user_id": user.id, "email": user.email })),
    ))
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

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
        let event = Event {
            owner,
            actor: (action == Action::Login).then_some(owner),
            action,
            target: None,
            origin: &origin,
        };
        audit::record_best_effort(&state, event).await;
    }
    Ok(Json(res?))
}

/// The answer to a throttled login; the log names the address, never the account.
fn throttled(Throttled { scope, wait }: Throttled, ip: std::net::IpAddr) -> ApiError {
    metrics::counter!(crate::metrics::LOGIN_THROTTLED, "scope" => scope.as_str()).increment(1);
    tracing::info!(%ip, scope = scope.as_str(), "login throttled");
    ApiError::TooManyAttempts {
        retry_after_ms: (wait.as_millis() as u64).max(1),
    }
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<TokenPair>, ApiError> {
    state.auth.local_accounts()?;
    let b: RefreshBody = json_body(&headers, &body)?;
    let (account, res) = state.auth.refresh_for(&b.refresh_token).await;
    if let (Some(owner), Err(AuthError::RefreshReused)) = (account, &res) {
        let event = Event {
            owner,
            // Whoever replayed the token is not known: it may be a thief.
            actor: None,
            action: Action::RefreshTokenReused,
            target: None,
            origin: &origin,
        };
        audit::record_best_effort(&state, event).await;
    }
    Ok(Json(res?))
}

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
    let closed = crate::bus::dispatch::end_login(&state.0, caller.user_id, family);
    tracing::info!(user_id = %caller.user_id, closed, "logged out");
    Ok(StatusCode::NO_CONTENT)
}
