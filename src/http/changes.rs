//! `/api/v1/changes`: the caller's change feed, paged by an opaque token.
//!
//! Rules: the feed is always the caller's own (the user comes from the access token; a token
//! of another user is refused, never served). A page is read from the store after the
//! token's position, in change-seq order; `next_token` is the position after the page, so a
//! client that follows it sees every change once. Positions that cannot be followed
//! (another user's or store epoch's, ahead of the head, below the floor) answer 410
//! `resync_required` with how to start again; a token this server did not issue, 400
//! `invalid_token`. Reads of one's own samples are not audited (as `/health-data`).

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::BearerErrors;
use super::{AuthUser, parse_limit};
use crate::app::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::samples::SampleOut;
use crate::store::ChangeOp;
use crate::streams::feed::{Position, RESYNC_REQUIRED, Resync, check_resume};

/// Page size when `limit` is absent, and the largest allowed.
const DEFAULT_LIMIT: usize = 500;
const MAX_LIMIT: usize = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(changes))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ChangesParams {
    /// `next_token` of the previous page; absent or `0`: from the beginning (every current
    /// sample).
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    since: Option<String>,
    /// Page size, default 500.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// What happened to one sample.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Op {
    /// Inserted or updated: `sample` is the sample as stored now.
    Upsert,
    /// Deleted: `id` names it.
    Delete,
}

/// One change, at `seq` of the caller's feed.
#[derive(Serialize, ToSchema)]
struct ChangeEntry<'a> {
    /// The change's sequence number: strictly increasing along the feed (gaps allowed).
    #[schema(minimum = 1)]
    seq: u64,
    op: Op,
    /// With `upsert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::Sample>, nullable = false)]
    sample: Option<SampleOut<'a>>,
    /// With `delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    id: Option<&'a str>,
}

/// A page of the caller's change feed.
#[derive(Serialize, ToSchema)]
struct ChangesPage<'a> {
    changes: Vec<ChangeEntry<'a>>,
    /// Pass as `since` for the next page, also when `more` is false (to poll for new
    /// changes later).
    next_token: String,
    /// Whether changes after this page were already there when it was read.
    more: bool,
}

/// Change feed
///
/// Every insert, update and deletion of the caller's samples, in order, after the position
/// `since`. Replaying from the beginning onto an empty set rebuilds the current samples
/// exactly. Follow `next_token` page after page; when `more` is false, the client is up to
/// date and may poll with the same token later, or follow live over the WebSocket (stream
/// `samples`, whose offsets are these `seq`s).
#[utoipa::path(
    get,
    path = "/api/v1/changes",
    operation_id = "list_changes",
    tag = "changes",
    security(("bearer" = [])),
    params(ChangesParams),
    responses(
        (status = 200, description = "A page of changes.", body = ChangesPage),
        (status = 400, description = "`invalid_token`: `since` is not a token this server issued (or was damaged); `invalid_query`: a parameter out of its schema, or one this endpoint does not take.", body = ErrorBody),
        (status = 410, description = "`resync_required`: the position cannot be followed (a token of another user or of another store epoch, one ahead of the feed's head, or one older than the oldest complete position after compaction or forgotten deletions). Start again with `since=0`, which lists every current sample, and replace the local copy with it.", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn changes(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    params: Result<Query<ChangesParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(super::query_error)?;
    let limit = parse_limit(p.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let user = caller.user_id;
    let epoch = state.store.epoch().await?;
    let after = match p.since.as_deref() {
        None | Some("0") => 0,
        Some(token) => Position::from_token(token)
            .map_err(|_| {
                ApiError::bad_request(
                    "invalid_token",
                    "`since` is not a change-feed token this server issued: pass the \
                     `next_token` of a page unchanged, or 0 to start from the beginning",
                )
            })?
            .bind(user, &epoch)
            .map_err(resync)?,
    };
    let page = state.store.changes(user, after, limit).await?;
    check_resume(after, &page).map_err(resync)?;
    let next = page.changes.last().map_or(after, |c| c.seq);
    let body = ChangesPage {
        changes: page
            .changes
            .iter()
            .map(|c| match &c.op {
                ChangeOp::Upsert(sample) => ChangeEntry {
                    seq: c.seq,
                    op: Op::Upsert,
                    sample: Some(sample.to_wire()),
                    id: None,
                },
                ChangeOp::Delete { id } => ChangeEntry {
                    seq: c.seq,
                    op: Op::Delete,
                    sample: None,
                    id: Some(id),
                },
            })
            .collect(),
        next_token: Position {
            epoch,
            user,
            seq: next,
        }
        .token(),
        more: page.more,
    };
    // Serialised here because the body borrows from `page`.
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// The one answer to a position that cannot be followed: 410, saying why and how to resync.
fn resync(why: Resync) -> ApiError {
    ApiError::Gone {
        code: RESYNC_REQUIRED,
        message: format!(
            "{}; start again with since=0: that lists every current sample (replace your \
             copy with it), then follow next_token",
            why.reason()
        ),
    }
}
