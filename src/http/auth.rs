//! `/api/v1/auth/*`: signup, login, refresh. With `--auth cognito` all three answer 404
//! `local_auth_disabled`: accounts and tokens are the user pool's.
//!
//! Audit (the account's log, after the fact, best effort): `account_created`, `login`,
//! `login_failed` (a wrong password for an existing account; an email with no account has
//! no log to go in and is not recorded) and `refresh_token_reused`. Routine refreshes are not
//! recorded.

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router, extract::State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Body, json_body};
use crate::app::AppState;
use crate::audit::{self, Action, Event, Origin};
use crate::auth::{AuthError, TokenPair};
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/signup", post(signup))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
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
    origin: Origin,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<TokenPair>, ApiError> {
    state.auth.local_accounts()?;
    let b: LoginBody = json_body(&headers, &body)?;
    let (account, res) = state.auth.login_for(&b.email, &b.password).await;
    let action = match &res {
        Ok(_) => Some(Action::Login),
        Err(AuthError::InvalidCredentials) => Some(Action::LoginFailed),
        Err(_) => None,
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
