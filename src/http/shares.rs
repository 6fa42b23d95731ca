//! `/api/v1/shares`: a user lets another account read one kind of their documents
//! (`insights` or `analyses`: history over REST and the live stream).
//!
//! Rules:
//! - Only the owner grants. Owner or grantee may delete (a grantee may leave); anyone else
//!   gets the same 404 as for a share that does not exist.
//! - Granting is idempotent: the same grantee and scope again returns the existing share (200).
//! - Deleting ends the grantee's live subscriptions to that stream at once.
//! - Raw samples are never shared: dashboards see derived documents only.
//! - Grants and revocations go in the owner's audit log (`share_granted`, `share_revoked`,
//!   target `<scope>:<grantee id>`), after the fact: a failed entry is logged and counted.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{AuthUser, Body, json_body};
use crate::app::AppState;
use crate::audit::{self, Action, Event, Origin};
use crate::error::ApiError;
use crate::store::{DocKind, ShareRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/shares", post(create).get(list))
        .route("/api/v1/shares/{id}", delete(remove))
}

#[derive(Deserialize)]
struct CreateBody {
    grantee_email: String,
    scope: String,
}

async fn share_json(state: &AppState, sh: &ShareRecord) -> Result<Value, ApiError> {
    let (owner, grantee) = tokio::try_join!(
        state.store.user_by_id(sh.owner_id),
        state.store.user_by_id(sh.grantee_id)
    )?;
    Ok(json!({
        "share_id": sh.id,
        "owner_id": sh.owner_id,
        "owner_email": owner.map(|u| u.email),
        "grantee_id": sh.grantee_id,
        "grantee_email": grantee.map(|u| u.email),
        "scope": sh.scope.stream(),
        "created_at": sh.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    }))
}

async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    origin: Origin,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let b: CreateBody = json_body(&headers, &body)?;
    let scope = DocKind::from_stream(&b.scope).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_request",
            "`scope` must be `insights` or `analyses`",
        )
    })?;
    let email = crate::auth::normalise_email(&b.grantee_email).map_err(|_| {
        ApiError::bad_request("invalid_request", "`grantee_email` is not an email address")
    })?;
    let grantee = state
        .store
        .user_by_email(&email)
        .await?
        .ok_or_else(|| ApiError::Missing {
            code: "grantee_not_found",
            message: "no account has that email address".into(),
        })?;
    if grantee.id == caller.user_id {
        return Err(ApiError::bad_request(
            "invalid_request",
            "you can always see your own data; share with another account",
        ));
    }
    let wanted = ShareRecord {
        id: Uuid::new_v4(),
        owner_id: caller.user_id,
        grantee_id: grantee.id,
        scope,
        created_at: Utc::now(),
    };
    let stored = state.store.put_share(wanted.clone()).await?;
    let status = if stored.id == wanted.id {
        tracing::info!(share_id = %stored.id, owner = %stored.owner_id, grantee = %stored.grantee_id, scope = scope.stream(), "share granted");
        audit::record_best_effort(
            &state,
            share_event(&stored, caller.user_id, Action::ShareGranted, &origin),
        )
        .await;
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(share_json(&state, &stored).await?)).into_response())
}

async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> Result<Json<Value>, ApiError> {
    let mut granted = Vec::new();
    let mut received = Vec::new();
    for sh in state.store.shares_of(caller.user_id).await? {
        let v = share_json(&state, &sh).await?;
        if sh.owner_id == caller.user_id {
            granted.push(v);
        } else {
            received.push(v);
        }
    }
    Ok(Json(json!({ "granted": granted, "received": received })))
}

async fn remove(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    origin: Origin,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    let share = match state.store.get_share(id).await? {
        Some(sh) if sh.owner_id == caller.user_id || sh.grantee_id == caller.user_id => sh,
        _ => return Err(ApiError::NotFound),
    };
    if !state.store.delete_share(&share).await? {
        return Err(ApiError::NotFound);
    }
    let ended = state
        .streams
        .revoke(share.owner_id, share.grantee_id, share.scope);
    state.bus.publish(crate::bus::Message::Revoked {
        owner: share.owner_id,
        viewer: share.grantee_id,
        stream: share.scope.into(),
    });
    tracing::info!(share_id = %share.id, ended, "share revoked");
    let event = share_event(&share, caller.user_id, Action::ShareRevoked, &origin);
    audit::record_best_effort(&state, event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The owner's audit entry for a change of `share` made by `actor`.
fn share_event<'a>(
    share: &ShareRecord,
    actor: Uuid,
    action: Action,
    origin: &'a Origin,
) -> Event<'a> {
    Event {
        owner: share.owner_id,
        actor: Some(actor),
        action,
        target: Some(format!("{}:{}", share.scope.stream(), share.grantee_id)),
        origin,
    }
}

/// Whether `caller` may read `owner`'s documents of `kind`: their own, or shared with them.
pub(super) async fn check_read(
    state: &AppState,
    caller: Uuid,
    owner: Uuid,
    kind: DocKind,
) -> Result<(), ApiError> {
    if caller == owner || state.store.has_share(owner, caller, kind).await? {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "forbidden",
            message: format!("no share grants you this user's {}", kind.stream()),
        })
    }
}
