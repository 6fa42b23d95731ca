//! `GET /api/v1/audit`: the caller's audit log, newest first (docs/security.md "Audit log").
//!
//! Rules: only the caller's own entries (those about their data and account); paginated
//! with the listing cursor; the entries carry ids and codes, never health values.

use axum::Json;
use axum::extract::{Query, State};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::openapi::BearerErrors;
use super::{AuthUser, parse_limit};
use crate::app::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::store::AuditRecord;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Page size, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
}

/// One audit entry: who did what with the owner's data or account, when and from where.
#[derive(Serialize, ToSchema)]
pub(super) struct Entry {
    /// Time-ordered (UUIDv7).
    id: Uuid,
    owner_id: Uuid,
    /// Who acted; `null` when nobody was signed in (a failed login, a replayed token).
    actor_id: Option<Uuid>,
    /// `data_read`, `stream_subscribed`, `access_denied`, `share_granted`, `share_revoked`,
    /// `login`, `login_failed`, `refresh_token_reused`, `account_created`, `export`.
    action: String,
    /// What was concerned (`insights`, `analyses/<id>`, `<scope>:<grantee id>`...).
    target: Option<String>,
    /// RFC 3339, UTC.
    #[schema(format = DateTime)]
    time: String,
    /// The client's address.
    ip: Option<String>,
    user_agent: Option<String>,
}

/// A page of the caller's audit log, newest first.
#[derive(Serialize, ToSchema)]
struct AuditPage {
    entries: Vec<Entry>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

pub(super) fn entry(e: &AuditRecord) -> Entry {
    Entry {
        id: e.id,
        owner_id: e.owner_id,
        actor_id: e.actor_id,
        action: e.action.clone(),
        target: e.target.clone(),
        time: e.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        ip: e.ip.clone(),
        user_agent: e.user_agent.clone(),
    }
}

/// Your audit log
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "list_audit",
    tag = "audit",
    security(("bearer" = [])),
    params(Params),
    responses(
        (status = 200, description = "A page of the caller's audit log, newest first.", body = AuditPage),
        (status = 400, description = "`invalid_query` (a parameter out of its schema, or one this endpoint does not take) or `invalid_cursor`.", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(p) = params.map_err(super::query_error)?;
    let limit = parse_limit(p.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let before = p
        .cursor
        .as_deref()
        .map(|c| super::decode_cursor::<Uuid>(c).map(|(_, id)| id))
        .transpose()?;
    let page = state
        .store
        .list_audit(caller.user_id, before, limit)
        .await?;
    let next = page.next.and_then(|id| {
        page.entries
            .iter()
            .find(|e| e.id == id)
            .map(|e| super::encode_cursor(e.at.timestamp_millis(), &e.id))
    });
    Ok(Json(AuditPage {
        entries: page.entries.iter().map(entry).collect(),
        next_cursor: next,
    }))
}
