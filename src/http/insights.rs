//! `/api/v1/insights`: generate one now for the latest window, and the history.
//!
//! Rules: the caller's own insights only; `POST` is rate-limited per user (a model call costs
//! money and time) and answers 201 with a new insight or 200 with the stored one for unchanged
//! data; the result is also pushed to the caller's live sessions.

use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AuthUser;
use super::analyses::{ListParams, OwnerParam, list_page, one_doc};
use super::json_text;
use super::openapi::{BearerErrors, Insight, InsightPage};
use crate::app::AppState;
use crate::audit::Origin;
use crate::http::error::{ApiError, ErrorBody};
use crate::insights::{self, InsightError};
use crate::pipeline::analysis::{self, AnalysisError, Trigger};
use crate::store::DocKind;

const HOUR: Duration = Duration::from_secs(3600);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(one))
}

/// Counts this request against the caller's hourly budget.
fn admit(state: &AppState, user: Uuid) -> Result<(), ApiError> {
    let limit = state.config.insights.insight_requests_per_hour.max(1) as usize;
    let mut recent = state.insight_requests.entry(user).or_default();
    let now = Instant::now();
    recent.retain(|t| now.duration_since(*t) < HOUR);
    if recent.len() >= limit {
        let wait = HOUR.saturating_sub(now.duration_since(recent[0]));
        return Err(ApiError::TooManyRequests {
            message: format!("at most {limit} insight requests an hour"),
            retry_after_ms: crate::rate::retry_after_ms(wait),
        });
    }
    recent.push(now);
    Ok(())
}

/// Insight now
///
/// An insight for the latest window (the analysis runs first). Counted against the caller's
/// `--insight-requests-per-hour` (12). Also pushed to the caller's live sessions.
#[utoipa::path(
    post,
    path = "/api/v1/insights",
    operation_id = "create_insight",
    tag = "insights",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A new insight.", body = Insight),
        (status = 200, description = "The stored insight still applies (the data has not changed).", body = Insight),
        (status = 422, description = "`no_data`: no activity data in the last 7 days.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over `--insight-requests-per-hour` in the last hour.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until a request is admitted again."))),
        BearerErrors,
    ),
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> Result<Response, ApiError> {
    let user = caller.user_id;
    admit(&state, user)?;
    let (record, analysis_new) =
        match analysis::run(&state.pipeline, user, Trigger::Request, None).await {
            Ok(r) => r,
            Err(AnalysisError::NoData) => {
                return Err(ApiError::unprocessable(
                    "no_data",
                    "no activity data in the last 7 days",
                ));
            }
            Err(AnalysisError::Store(e)) => return Err(e.into()),
            Err(e @ AnalysisError::Failed(_)) => return Err(ApiError::Internal(e.into())),
        };
    if analysis_new {
        state.fanout.deliver(DocKind::Analysis, &record, true).await;
    }
    match crate::pipeline::insight::for_analysis(&state.pipeline, user, &record).await {
        Ok((insight, new)) => {
            state.fanout.deliver(DocKind::Insight, &insight, new).await;
            let status = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_text(status, insight.body))
        }
        Err(InsightError::Store(e)) => Err(e.into()),
        Err(InsightError::Model(e)) => Err(ApiError::Unavailable {
            retry_after_ms: match e {
                insights::gemini::GeminiError::BreakerOpen => 60_000,
                _ => 5_000,
            },
        }),
        Err(e @ InsightError::BadAnalysis(_)) => Err(ApiError::Internal(e.into())),
        // An edit replaced the analysis meanwhile: asking again gives the new one's insight.
        Err(InsightError::Superseded) => Err(ApiError::Unavailable {
            retry_after_ms: 1_000,
        }),
    }
}

/// One insight
#[utoipa::path(
    get,
    path = "/api/v1/insights/{id}",
    operation_id = "get_insight",
    tag = "insights",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "`insight_id`."), OwnerParam),
    responses(
        (status = 200, description = "The insight.", body = Insight),
        (status = 400, description = "`invalid_query`: `user_id` is not a UUID, or a parameter this endpoint does not take.", body = ErrorBody),
        (status = 403, description = "`forbidden`: no share of `user_id`'s insights with the caller.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such insight of that user (a malformed id included).", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn one(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    origin: Origin,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
    owner: Result<Query<OwnerParam>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    one_doc(&state, DocKind::Insight, caller.user_id, &origin, id, owner).await
}

/// Insight history
#[utoipa::path(
    get,
    path = "/api/v1/insights",
    operation_id = "list_insights",
    tag = "insights",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of insights, ordered by window end.", body = InsightPage),
        (status = 400, description = "`invalid_query` (a parameter out of its schema, or one this endpoint does not take) or `invalid_cursor`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: no share of `user_id`'s insights with the caller.", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    origin: Origin,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    list_page(
        &state,
        DocKind::Insight,
        "insights",
        caller.user_id,
        &origin,
        params,
    )
    .await
}
