//! Deleting samples: `POST /api/v1/health-data/delete` (many ids) and
//! `DELETE /api/v1/health-data/{id}` (one).
//!
//! Rules: answered only once the deletion is durable; the caller's own samples only (the user
//! id comes from the token). Deleting an id that is not stored is not an error: it is
//! reported (`not_found`), and the state is the same as after a successful delete. A deleted
//! id leaves a tombstone, so a late re-send of its old version does not bring it back (see
//! `store::changes`). Each id counts as a sample against the user's samples per second.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{BearerErrors, JsonBodyErrors};
use super::{AuthUser, Body, json_body};
use crate::app::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::ingest::{self, DeleteReport};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(delete_many))
        .routes(routes!(delete_one))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    /// 1 to 1000 sample ids (each 1-128 bytes without control characters).
    #[schema(min_items = 1, max_items = 1000)]
    ids: Vec<String>,
}

/// Delete samples
///
/// Answers once the deletion is durable. Ids that are not stored (unknown, or deleted
/// already) are listed in `not_found_ids`, not refused.
#[utoipa::path(
    post,
    path = "/api/v1/health-data/delete",
    operation_id = "delete_samples",
    tag = "health-data",
    security(("bearer" = [])),
    request_body(content = DeleteBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Deleted; ids that were not stored are listed.", body = super::schemas::DeleteReport),
        (status = 422, description = "`invalid_body` (not `{ids: [...]}`) or `invalid_ids` (not 1 to 1000 ids, or one that is no valid sample id): nothing was deleted.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over the user's samples per second (`--max-user-samples-per-sec`, one per id); nothing was deleted.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the request fits."))),
        JsonBodyErrors,
        BearerErrors,
    ),
)]
async fn delete_many(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<DeleteReport>, ApiError> {
    let b: DeleteBody = json_body(&headers, &body)?;
    ingest::check_ids(&b.ids).map_err(|e| ApiError::unprocessable("invalid_ids", e.to_string()))?;
    Ok(Json(delete(&state, caller.user_id, b.ids).await?))
}

/// Delete one sample
///
/// Answers once the deletion is durable: 204 when the sample was deleted, 404 `not_found`
/// when it was not stored (unknown, or deleted already: the state is the same either way).
#[utoipa::path(
    delete,
    path = "/api/v1/health-data/{id}",
    operation_id = "delete_sample",
    tag = "health-data",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The sample's id (percent-encoded).", min_length = 1, max_length = 128)),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`not_found`: no such sample of the caller (never stored, or deleted already).", body = ErrorBody),
        (status = 422, description = "`invalid_ids`: not a valid sample id.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over the user's samples per second.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the request fits."))),
        BearerErrors,
    ),
)]
async fn delete_one(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ingest::check_ids(std::slice::from_ref(&id))
        .map_err(|e| ApiError::unprocessable("invalid_ids", e.to_string()))?;
    let report = delete(&state, caller.user_id, vec![id]).await?;
    if report.deleted == 1 {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::Missing {
            code: "not_found",
            message: "no sample with this id is stored for you (never stored, or deleted \
                      already)"
                .into(),
        })
    }
}

async fn delete(
    state: &AppState,
    user: uuid::Uuid,
    ids: Vec<String>,
) -> Result<DeleteReport, ApiError> {
    if let Err(wait) = state.ingest.admit(user, ids.len()) {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "more than {} samples per second for this user",
                state.config.limits.max_user_samples_per_sec
            ),
            retry_after_ms: crate::rate::retry_after_ms(wait),
        });
    }
    let (report, not_found_ids) = state.ingest.delete(user, ids, "rest", None).await?;
    Ok(DeleteReport {
        deleted: report.deleted,
        not_found: report.not_found,
        not_found_ids,
    })
}
