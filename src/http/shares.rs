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

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::openapi::BearerErrors;
use super::{AuthUser, Body, json_body};
use crate::app::AppState;
use crate::audit::{Action, Event, Origin};
use crate::http::error::{ApiError, ErrorBody};
use crate::store::{DocKind, ShareRecord};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(remove))
}

/// What a share lets the grantee read: history over REST and the live stream.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum Scope {
    Insights,
    Analyses,
}

#[derive(Deserialize, ToSchema)]
struct CreateBody {
    /// The account to share with (not the caller's own).
    #[schema(format = Email, example = "grace@example.com")]
    grantee_email: String,
    /// Anything else is 400 `invalid_request`.
    #[schema(value_type = Scope)]
    scope: String,
}

#[derive(Serialize, ToSchema)]
struct Share {
    share_id: Uuid,
    owner_id: Uuid,
    /// `null` if the account is gone.
    #[schema(required = true)]
    owner_email: Option<String>,
    grantee_id: Uuid,
    /// `null` if the account is gone.
    #[schema(required = true)]
    grantee_email: Option<String>,
    #[schema(value_type = Scope)]
    scope: &'static str,
    #[schema(value_type = String, format = DateTime)]
    created_at: String,
}

#[derive(Serialize, ToSchema)]
struct ShareList {
    /// Shares the caller gave.
    granted: Vec<Share>,
    /// Shares the caller was given.
    received: Vec<Share>,
}

async fn share_json(state: &AppState, sh: &ShareRecord) -> Result<Share, ApiError> {
    let (owner, grantee) = tokio::try_join!(
        state.store.user_by_id(sh.owner_id),
        state.store.user_by_id(sh.grantee_id)
    )?;
    Ok(Share {
        share_id: sh.id,
        owner_id: sh.owner_id,
        owner_email: owner.map(|u| u.email),
        grantee_id: sh.grantee_id,
        grantee_email: grantee.map(|u| u.email),
        scope: sh.scope.stream(),
        created_at: sh.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// Share
///
/// Lets another account read the caller's insights or analyses (history and live stream).
/// Granting again returns the existing share.
#[utoipa::path(
    post,
    path = "/api/v1/shares",
    operation_id = "create_share",
    tag = "shares",
    security(("bearer" = [])),
    request_body(content = CreateBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Granted.", body = Share),
        (status = 200, description = "Granted already: the existing share.", body = Share),
        (status = 400, description = "`invalid_request` (unknown scope, not an email address, the caller's own address), `invalid_json` (the body is not JSON) or `invalid_body` (it could not be read).", body = ErrorBody),
        (status = 404, description = "`grantee_not_found`: no account has that address.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: `Content-Type` is not JSON.", body = ErrorBody),
        (status = 422, description = "`invalid_body`: not of the schema.", body = ErrorBody),
        BearerErrors,
    ),
)]
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
        state
            .audit
            .record_best_effort(share_event(
                &stored,
                caller.user_id,
                Action::ShareGranted,
                &origin,
            ))
            .await;
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(share_json(&state, &stored).await?)).into_response())
}

/// Shares of the caller
#[utoipa::path(
    get,
    path = "/api/v1/shares",
    operation_id = "list_shares",
    tag = "shares",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Shares given and received.", body = ShareList),
        BearerErrors,
    ),
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> Result<Json<ShareList>, ApiError> {
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
    Ok(Json(ShareList { granted, received }))
}

/// Revoke a share
///
/// By its owner or its grantee. Ends the grantee's live subscriptions to that stream at once.
#[utoipa::path(
    delete,
    path = "/api/v1/shares/{id}",
    operation_id = "delete_share",
    tag = "shares",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "`share_id`.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "`not_found`: no such share, or the caller is neither its owner nor its grantee (a malformed id included).", body = ErrorBody),
        BearerErrors,
    ),
)]
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
    state.audit.record_best_effort(event).await;
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
