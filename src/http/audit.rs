//! `GET /api/v1/audit`: the caller's audit log, newest first (README "Audit log").
//!
//! Rules: only the caller's own entries (those about their data and account); paginated
//! with the listing cursor; the entries carry ids and codes, never health values.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{AuthUser, parse_limit};
use crate::app::AppState;
use crate::error::ApiError;
use crate::store::AuditRecord;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(list))
}

#[derive(Deserialize)]
struct Params {
    limit: Option<String>,
    cursor: Option<String>,
}

fn entry_json(e: &AuditRecord) -> Value {
    json!({
        "id": e.id,
        "owner_id": e.owner_id,
        "actor_id": e.actor_id,
        "action": e.action,
        "target": e.target,
        "time": e.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "ip": e.ip,
        "user_agent": e.user_agent,
    })
}

async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
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
    let entries: Vec<Value> = page.entries.iter().map(entry_json).collect();
    Ok(Json(json!({ "entries": entries, "next_cursor": next })))
}
