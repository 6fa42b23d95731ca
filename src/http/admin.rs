//! `/api/v1/admin/*`: operations on other users' sessions, for the accounts named by
//! `--admin-user-ids`.
//!
//! Rules:
//! - Admins are the accounts whose id is in `--admin-user-ids` (read at start); anyone else
//!   gets 403, also when the list is empty. Never by email: an address nobody has signed up
//!   with yet would make whoever takes it first an admin.
//! - Disconnecting closes the user's live WebSocket sessions on every node with 4012 (this
//!   node's at once, the others' through the bus) and says how many this node closed. It is
//!   not a ban: the user's tokens stay valid and their apps may reconnect.
//! - Every action is logged with the admin's and the user's ids.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AuthUser;
use super::openapi::BearerErrors;
use crate::app::AppState;
use crate::http::error::{ApiError, ErrorBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(disconnect))
}

/// What a disconnect did on the node that answered.
#[derive(Serialize, ToSchema)]
struct Disconnected {
    user_id: Uuid,
    /// Sessions this node closed; other nodes close theirs when the bus delivers.
    closed_sessions: usize,
}

/// Refuses callers who are not admins.
fn require_admin(state: &AppState, caller: Uuid) -> Result<(), ApiError> {
    // The caller's account was checked with the token (it exists).
    if state.admins.contains(&caller) {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "forbidden",
            message: "administrators only (--admin-user-ids)".into(),
        })
    }
}

/// Close a user's live sessions (admins)
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{user_id}/disconnect",
    operation_id = "admin_disconnect_user",
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The user whose sessions end.")),
    responses(
        (status = 202, description = "This node's sessions of the user closed (4012); the other nodes' follow over the bus.", body = Disconnected),
        (status = 403, description = "`forbidden`: the caller's account id is not in `--admin-user-ids`.", body = ErrorBody),
        (status = 404, description = "`user_not_found`.", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn disconnect(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    user_id: Result<Path<Uuid>, PathRejection>,
) -> Result<(StatusCode, Json<Disconnected>), ApiError> {
    require_admin(&state, caller.user_id)?;
    let not_found = || ApiError::Missing {
        code: "user_not_found",
        message: "no account has that id".into(),
    };
    let Ok(Path(user)) = user_id else {
        return Err(not_found());
    };
    if state.store.user_by_id(user).await?.is_none() {
        return Err(not_found());
    }
    let closed = crate::server::dispatch::disconnect_user(&state.0, user);
    tracing::info!(admin = %caller.user_id, user_id = %user, closed, "admin disconnected a user's sessions");
    // Accepted: other nodes close theirs when the bus delivers the request.
    Ok((
        StatusCode::ACCEPTED,
        Json(Disconnected {
            user_id: user,
            closed_sessions: closed,
        }),
    ))
}
