//! `/api/v1/auth/*`: signup, login, refresh. With `--auth cognito` all three answer 404
//! `local_auth_disabled`: accounts and tokens are the user pool's.

use axum::http::{HeaderMap, StatusCode};
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::openapi::{JsonBodyErrors, Unavailable};
use super::{Body, json_body};
use crate::app::AppState;
use crate::auth::TokenPair;
use crate::error::{ApiError, ErrorBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(refresh))
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
        (status = 200, description = "Logged in.", body = TokenPair),
        (status = 401, description = "`invalid_credentials`.", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`."))),
        (status = 404, description = "`local_auth_disabled` (`--auth cognito`).", body = ErrorBody),
        (status = 422, description = "`invalid_body` (not of the schema).", body = ErrorBody),
        JsonBodyErrors,
        Unavailable,
    ),
)]
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<TokenPair>, ApiError> {
    state.auth.local_accounts()?;
    let b: LoginBody = json_body(&headers, &body)?;
    Ok(Json(state.auth.login(&b.email, &b.password).await?))
}

#[derive(Deserialize, ToSchema)]
struct RefreshBody {
    refresh_token: String,
}

/// Refresh tokens
///
/// Spends the refresh token for a new pair. Replaying a spent one revokes every token of
/// that login.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    operation_id = "refresh",
    tag = "auth",
    request_body(content = RefreshBody, content_type = "application/json"),
    responses(
        (status = 200, description = "A new pair; the old refresh token is spent.", body = TokenPair),
        (status = 401, description = "`invalid_refresh_token` or `refresh_token_reused`.", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`."))),
        (status = 404, description = "`local_auth_disabled` (`--auth cognito`).", body = ErrorBody),
        (status = 422, description = "`invalid_body` (not of the schema).", body = ErrorBody),
        JsonBodyErrors,
        Unavailable,
    ),
)]
async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<TokenPair>, ApiError> {
    state.auth.local_accounts()?;
    let b: RefreshBody = json_body(&headers, &body)?;
    Ok(Json(state.auth.refresh(&b.refresh_token).await?))
}
