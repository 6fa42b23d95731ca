//! `/api/v1/user/*`: the caller's own account.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AuthUser;
use super::openapi::BearerErrors;
use crate::app::AppState;
use crate::http::error::ApiError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(profile))
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
