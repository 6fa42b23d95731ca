//! `/api/v1/analyses`: run the analytics on the caller's last week now, and the history of
//! stored analyses.
//!
//! Rules: always the caller's own data (the user comes from the token); a `POST` answers
//! 201 with a new analysis, or 200 with the stored one when the data has not changed since;
//! the result is also pushed to the caller's live sessions.
//!
//! Reading another user's documents (`?user_id=`, with a share) is recorded in that user's
//! audit log before the documents go out; if the entry cannot be written the read fails
//! (503). A refused read is recorded too (`access_denied`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::openapi::{Analysis, AnalysisPage, BearerErrors};
use super::{AuthUser, json_text, parse_limit, parse_time};
use crate::app::AppState;
use crate::audit::{Action, Event, Origin};
use crate::http::error::{ApiError, ErrorBody};
use crate::pipeline::analysis::{self, AnalysisError, Trigger};
use crate::store::{DocCursor, DocKind, DocQuery};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(one))
}

/// Analyse now
///
/// Runs the analytics on the caller's last week (at most 7 days, trimmed to the minutes with
/// activity data) and stores the result; the analysis is also pushed to the caller's live
/// sessions.
#[utoipa::path(
    post,
    path = "/api/v1/analyses",
    operation_id = "create_analysis",
    tag = "analyses",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A new analysis.", body = Analysis),
        (status = 200, description = "The data has not changed since the stored analysis: that one (same id).", body = Analysis),
        (status = 422, description = "`no_data`: no activity data in the last 7 days.", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> Result<Response, ApiError> {
    let user = caller.user_id;
    match analysis::run(&state.pipeline, user, Trigger::Request, None).await {
        Ok((record, new)) => {
            state.fanout.deliver(DocKind::Analysis, &record, new).await;
            if new {
                crate::pipeline::insight::spawn(&state.pipeline, user, record.clone());
            }
            let status = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_text(status, record.body))
        }
        Err(AnalysisError::NoData) => Err(ApiError::unprocessable(
            "no_data",
            "no activity data in the last 7 days to analyse",
        )),
        Err(AnalysisError::Store(e)) => Err(e.into()),
        Err(e @ AnalysisError::Failed(_)) => Err(ApiError::Internal(e.into())),
    }
}

/// One analysis
#[utoipa::path(
    get,
    path = "/api/v1/analyses/{id}",
    operation_id = "get_analysis",
    tag = "analyses",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "`analysis_id`."), OwnerParam),
    responses(
        (status = 200, description = "The analysis.", body = Analysis),
        (status = 400, description = "`invalid_query`: `user_id` is not a UUID, or a parameter this endpoint does not take.", body = ErrorBody),
        (status = 403, description = "`forbidden`: no share of `user_id`'s analyses with the caller.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such analysis of that user (a malformed id included).", body = ErrorBody),
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
    one_doc(
        &state,
        DocKind::Analysis,
        caller.user_id,
        &origin,
        id,
        owner,
    )
    .await
}

/// `?user_id=`: whose documents (default: the caller's).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct OwnerParam {
    /// Another user who shares these documents with the caller (default: the caller).
    #[param(value_type = Option<Uuid>)]
    user_id: Option<String>,
}

/// The owner named by `user_id` (default `caller`), once the caller may read their `kind`.
/// A refusal is recorded in the owner's audit log (`target` names what was asked for).
pub(super) async fn owner_for(
    state: &AppState,
    caller: Uuid,
    origin: &Origin,
    user_id: Option<&str>,
    kind: DocKind,
    target: impl FnOnce() -> String,
) -> Result<Uuid, ApiError> {
    let owner = match user_id {
        None => return Ok(caller),
        Some(s) => Uuid::parse_str(s)
            .map_err(|_| ApiError::bad_request("invalid_query", "`user_id` must be a UUID"))?,
    };
    if let Err(e) = super::shares::check_read(state, caller, owner, kind).await {
        if matches!(e, ApiError::Forbidden { .. }) {
            let event = Event {
                owner,
                actor: Some(caller),
                action: Action::AccessDenied,
                target: Some(target()),
                origin,
            };
            state.audit.record_refusal(event).await;
        }
        return Err(e);
    }
    Ok(owner)
}

/// Records `caller`'s read of `owner`'s `target` before it is answered; own reads are not
/// recorded. Fails (503, or 500 for a non-transient store failure) when the entry cannot be
/// written: no unrecorded disclosure.
pub(super) async fn record_read(
    state: &AppState,
    caller: Uuid,
    owner: Uuid,
    origin: &Origin,
    target: String,
) -> Result<(), ApiError> {
    if caller == owner {
        return Ok(());
    }
    let event = Event {
        owner,
        actor: Some(caller),
        action: Action::DataRead,
        target: Some(target),
        origin,
    };
    Ok(state.audit.record(event).await?)
}

/// One document of `kind`, by id, of the caller or of a user who shared it with them.
pub(super) async fn one_doc(
    state: &AppState,
    kind: DocKind,
    caller: Uuid,
    origin: &Origin,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
    owner: Result<Query<OwnerParam>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(owner) = owner.map_err(super::query_error)?;
    let asked = id.as_ref().ok().map(|Path(id)| *id);
    let target = |id: Option<Uuid>| match id {
        Some(id) => format!("{}/{id}", kind.stream()),
        None => kind.stream().to_owned(),
    };
    let user = owner_for(
        state,
        caller,
        origin,
        owner.user_id.as_deref(),
        kind,
        || target(asked),
    )
    .await?;
    // Another user's id and a malformed one look the same as a missing one.
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    match state.store.get_doc(kind, user, id).await? {
        Some(d) => {
            record_read(state, caller, user, origin, target(Some(id))).await?;
            Ok(json_text(
                StatusCode::OK,
                with_superseded_by(&d).into_owned(),
            ))
        }
        None => Err(ApiError::NotFound),
    }
}

/// A stored document as listed: a replaced one (an edit or deletion changed its data) gets
/// `superseded_by`, the id of the document that replaces it (the nil UUID when it was
/// withdrawn: no data is left in its range), appended to its fields.
fn with_superseded_by(doc: &crate::store::DocRecord) -> std::borrow::Cow<'_, str> {
    match (doc.superseded_by, doc.body.strip_suffix('}')) {
        (Some(by), Some(open)) => format!("{open},\"superseded_by\":\"{by}\"}}").into(),
        _ => doc.body.as_str().into(),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    /// Documents whose window ends at or after this (RFC 3339 with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Documents whose window ends before this (RFC 3339 with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// Page size, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
    /// Another user who shares these documents with the caller (default: the caller).
    #[param(value_type = Option<Uuid>)]
    user_id: Option<String>,
}

/// Analysis history
#[utoipa::path(
    get,
    path = "/api/v1/analyses",
    operation_id = "list_analyses",
    tag = "analyses",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of analyses, ordered by window end.", body = AnalysisPage),
        (status = 400, description = "`invalid_query` (a parameter out of its schema, or one this endpoint does not take) or `invalid_cursor`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: no share of `user_id`'s analyses with the caller.", body = ErrorBody),
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
        DocKind::Analysis,
        "analyses",
        caller.user_id,
        &origin,
        params,
    )
    .await
}

/// One page of documents of `kind` (the caller's, or `user_id`'s when shared with the caller)
/// as `{<field>:[...], next_cursor}`.
pub(super) async fn list_page(
    state: &AppState,
    kind: DocKind,
    field: &str,
    caller: uuid::Uuid,
    origin: &Origin,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(super::query_error)?;
    let target = || kind.stream().to_owned();
    let user = owner_for(state, caller, origin, p.user_id.as_deref(), kind, target).await?;
    let limit = parse_limit(p.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let query = DocQuery {
        from_ms: p
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?,
        to_ms: p.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
        after: p.cursor.as_deref().map(decode_cursor).transpose()?,
        limit,
    };
    let page = state.store.list_docs(kind, user, query).await?;
    record_read(state, caller, user, origin, target()).await?;
    // Bodies are stored JSON documents: spliced in, not re-parsed.
    let mut out = format!("{{\"{field}\":[");
    for (i, a) in page.docs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&with_superseded_by(a));
    }
    out.push_str("],\"next_cursor\":");
    match &page.next {
        Some(c) => out.push_str(&format!("\"{}\"", encode_cursor(c))),
        None => out.push_str("null"),
    }
    out.push('}');
    Ok(json_text(StatusCode::OK, out))
}

fn encode_cursor(c: &DocCursor) -> String {
    super::encode_cursor(c.window_to_ms, &c.id)
}

fn decode_cursor(s: &str) -> Result<DocCursor, ApiError> {
    let (window_to_ms, id) = super::decode_cursor(s)?;
    Ok(DocCursor { window_to_ms, id })
}
