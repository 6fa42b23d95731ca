//! `/api/v1/health-data`: batch upload and time-ordered, cursor-paginated history.
//!
//! Rules: an upload answers 200 only after the accepted samples are durable; history is
//! always scoped to the caller (the user id comes from the token, never from the request).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{AuthUser, Body, json_body, parse_limit, parse_time};
use crate::app::AppState;
use crate::error::ApiError;
use crate::ingest::{self, IngestReport};
use crate::samples::{Kind, SampleOut};
use crate::store::{Cursor, SampleQuery};

/// Page size when `limit` is absent, and the largest allowed.
const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/health-data", get(history).post(upload))
}

#[derive(Deserialize)]
struct UploadBody<'a> {
    #[serde(borrow)]
    samples: Vec<&'a RawValue>,
}

async fn upload(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<IngestReport>, ApiError> {
    let max = state.config.max_samples_per_request;
    let big = body.len() > ingest::OFFLOAD_BYTES;
    let validate = move || -> Result<(ingest::Prepared, usize), ApiError> {
        let b: UploadBody<'_> = json_body(&headers, &body)?;
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
    if let Err(wait) = ingest::admit(&state, caller.user_id, n) {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "more than {} samples per second for this user",
                state.config.max_user_samples_per_sec
            ),
            retry_after_ms: wait.as_millis().max(1) as u64,
        });
    }
    let report = ingest::commit(&state.0, caller.user_id, prepared, "rest").await?;
    Ok(Json(report))
}

#[derive(Deserialize)]
struct HistoryParams {
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct HistoryPage<'a> {
    samples: Vec<SampleOut<'a>>,
    next_cursor: Option<String>,
}

async fn history(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let query = SampleQuery {
        kind: p
            .kind
            .as_deref()
            .map(|k| {
                Kind::parse(k).ok_or_else(|| {
                    ApiError::bad_request("invalid_query", format!("unknown kind `{k}`"))
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
