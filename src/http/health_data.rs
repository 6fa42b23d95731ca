//! `/api/v1/health-data`: batch upload and time-ordered, cursor-paginated history.
//!
//! Rules: an upload answers 200 only after the accepted samples are durable; history is
//! always scoped to the caller (the user id comes from the token, never from the request).
//! Raw samples are never shared, so `user_id` is no parameter here: a request naming one
//! (anyone's, the caller's included) gets 400 rather than the caller's own data.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{BearerErrors, JsonBodyErrors, SampleInput};
use super::{AuthUser, Body, json_body, parse_limit, parse_time};
use crate::app::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::ingest::{self, IngestReport};
use crate::samples::{Kind, SampleOut};
use crate::store::{Cursor, SampleQuery};

/// Page size when `limit` is absent, and the largest allowed.
const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload, history))
}

#[derive(Deserialize, ToSchema)]
struct UploadBody<'a> {
    /// At most `--max-samples-per-request` (10,000). Each is validated on its own: one that
    /// does not match is listed in `rejected` and never fails the others.
    #[serde(borrow)]
    #[schema(value_type = Vec<SampleInput>)]
    samples: Vec<&'a RawValue>,
}

/// Upload samples
///
/// Answers after the accepted samples are durable. A sample `id` already stored for the
/// caller replaces the stored one when it carries a higher `version` (`updated`); otherwise
/// it counts as a duplicate and is not stored again.
#[utoipa::path(
    post,
    path = "/api/v1/health-data",
    operation_id = "upload_samples",
    tag = "health-data",
    security(("bearer" = [])),
    request_body(content = UploadBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored; per-sample rejections are in the body.", body = super::schemas::IngestReport),
        (status = 422, description = "`invalid_body`: not `{samples: [...]}`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over the user's samples per second (`--max-user-samples-per-sec`); nothing was stored.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the batch fits."))),
        JsonBodyErrors,
        BearerErrors,
    ),
)]
async fn upload(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<IngestReport>, ApiError> {
    let max = state.config.limits.max_samples_per_request;
    let big = body.len() > ingest::OFFLOAD_BYTES;
    let validate = move || -> Result<(ingest::Prepared, usize), ApiError> {
        let b: UploadBody<'_> = json_body(&headers, &body).map_err(|e| bare_array(e, &body))?;
        if b.samples.len() > max {
            return Err(ApiError::PayloadTooLarge(format!(
                "at most {max} samples per request, got {}",
                b.samples.len()
            )));
        }
        Ok((ingest::prepare(&b.samples), b.samples.len()))
    };
    let prepared = if big {
        ingest::off_runtime(validate)
            .await
            .map_err(ApiError::Internal)??
    } else {
        validate()?
    };
    let (prepared, n) = prepared;
    if let Err(wait) = state.ingest.admit(caller.user_id, n) {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "more than {} samples per second for this user",
                state.config.limits.max_user_samples_per_sec
            ),
            retry_after_ms: crate::rate::retry_after_ms(wait),
        });
    }
    let report = state
        .ingest
        .commit(caller.user_id, prepared, "rest")
        .await?;
    Ok(Json(report))
}

/// A body that is a bare array of samples gets the shape it should have had.
fn bare_array(e: ApiError, body: &[u8]) -> ApiError {
    let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    match e {
        ApiError::Unprocessable { code, .. } if is_array => ApiError::unprocessable(
            code,
            "the body must be an object `{\"samples\":[...]}`, not a bare array: \
             wrap the samples as {\"samples\": [ ... ]}",
        ),
        e => e,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    /// Only this kind.
    #[param(value_type = Option<super::schemas::Kind>)]
    kind: Option<String>,
    /// Samples starting at or after this (RFC 3339 with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Samples starting before this (RFC 3339 with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// Page size, default 1000.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
    /// Not a parameter: read only to refuse it with a message saying why.
    #[param(ignore)]
    user_id: Option<serde::de::IgnoredAny>,
}

/// A page of samples, ordered by `(start, id)`.
#[derive(Serialize, ToSchema)]
struct HistoryPage<'a> {
    #[schema(value_type = Vec<super::schemas::Sample>)]
    samples: Vec<SampleOut<'a>>,
    /// Pass as `cursor` for the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Sample history
#[utoipa::path(
    get,
    path = "/api/v1/health-data",
    operation_id = "list_samples",
    tag = "health-data",
    security(("bearer" = [])),
    params(HistoryParams),
    responses(
        (status = 200, description = "The caller's samples.", body = HistoryPage),
        (status = 400, description = "`invalid_query` (a parameter out of its schema, or one this endpoint does not take, such as `user_id`: raw samples are never shared) or `invalid_cursor`.", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn history(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(super::query_error)?;
    if p.user_id.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`user_id` is not a parameter of /api/v1/health-data: raw samples are never \
             shared, so the history is always the caller's own",
        ));
    }
    let query = SampleQuery {
        kind: p
            .kind
            .as_deref()
            .map(|k| {
                Kind::parse(k).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!("unknown kind `{k}`; kind must be one of {}", Kind::names()),
                    )
                })
            })
            .transpose()?,
        from_ms: p
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?,
        to_ms: p.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
        after: p.cursor.as_deref().map(decode_cursor).transpose()?,
        limit: parse_limit(p.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?,
    };
    let page = state.store.query_samples(caller.user_id, query).await?;
    let body = HistoryPage {
        samples: page.samples.iter().map(|s| s.to_wire()).collect(),
        next_cursor: page.next.as_ref().map(encode_cursor),
    };
    // Serialised here because the body borrows from `page`.
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

fn encode_cursor(c: &Cursor) -> String {
    super::encode_cursor(c.start_ms, &c.id)
}

fn decode_cursor(s: &str) -> Result<Cursor, ApiError> {
    let (start_ms, id) = super::decode_cursor(s)?;
    Ok(Cursor { start_ms, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cursor_round_trips(ms in any::<i64>(), id in "\\PC{1,128}") {
            let c = Cursor { start_ms: ms, id };
            prop_assert_eq!(decode_cursor(&encode_cursor(&c)).unwrap(), c);
        }

        #[test]
        fn cursor_decoding_never_panics(s in "\\PC{0,64}") {
            let _ = decode_cursor(&s);
        }
    }
}
