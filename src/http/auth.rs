//! `/api/v1/auth/*`: signup, login, refresh. With `--auth cognito` all three answer 404
//! `local_auth_disabled`: accounts and tokens are the user pool's.

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router, extract::State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Body, json_body};
use crate::app::AppState;
use crate::auth::TokenPair;
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
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<TokenPair>, ApiError> {
    state.auth.local_accounts()?;
    let b: LoginBody = json_body(&headers, &body)?;
    Ok(Json(state.auth.login(&b.email, &b.password).await?))
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<TokenPair>, ApiError> {
    state.auth.local_accounts()?;
    let b: RefreshBody = json_body(&headers, &body)?;
    Ok(Json(state.auth.refresh(&b.refresh_token).await?))
}
