//! `/api/v1/user/*`: the caller's own account.

use axum::routing::get;
use axum::{Json, Router, extract::State};
use serde_json::{Value, json};

use super::AuthUser;
use crate::app::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/user/profile", get(profile))
}

async fn profile(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> Result<Json<Value>, ApiError> {
    // A valid token for a deleted account is treated like a bad token.
    let user = state
        .store
        .user_by_id(caller.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("unauthorized", "account no longer exists"))?;
    Ok(Json(json!({
        "user_id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "created_at": user.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })))
}
