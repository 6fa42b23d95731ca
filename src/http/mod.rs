//! The HTTP surface: each area owns its `router()`; this module merges them and holds the
//! extractors they share.
//!
//! Rules:
//! - Every response, errors included, is JSON (bar `/metrics`, the `/dashboard` files and
//!   the bodies of `/api/v1/export/*`, which are in the format asked for: FHIR, NDJSON, CSV).
//! - Request logs carry method, path and status, never the query string (it may hold an
//!   `access_token`) nor bodies (health values, passwords).
//! - Every REST route is documented: [`api`] holds them all, each registered from its
//!   `#[utoipa::path]` annotation, and its document is served at `/api/openapi.json`
//!   ([`openapi`]). Only the WebSocket and the dashboard's files are routed without one.

mod admin;
mod analyses;
mod audit;
mod auth;
mod changes;
pub mod client_ip;
mod dashboard;
pub mod error;
mod export;
mod export_formats;
mod health_data;
mod imports;
mod insights;
mod omh_import;
pub mod openapi;
mod ops;
pub mod origin;
mod sample_delete;
mod schemas;
mod shares;
pub mod trace;
mod user;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::{Router, middleware};
use bytes::Bytes;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::auth::Verified;
use crate::http::error::ApiError;

/// The REST API: every route with its OpenAPI operation. A new area's router goes here.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(auth::router())
        .merge(user::router())
        .merge(export::router())
        .merge(health_data::router())
        .merge(imports::router())
        .merge(sample_delete::router())
        .merge(export_formats::router())
        .merge(omh_import::router())
        .merge(changes::router())
        .merge(analyses::router())
        .merge(insights::router())
        .merge(shares::router())
        .merge(audit::router())
        .merge(admin::router())
        .merge(ops::router())
        .merge(openapi::router())
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.config.limits.max_body_bytes;
    Router::from(api())
        // Not REST: the dashboard's files, and the WebSocket (protocol/asyncapi.yaml).
        .merge(dashboard::router())
        .merge(crate::ws::router())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            (body_limit, state.config.limits.max_import_bytes),
            announced_body_limit,
        ))
        // Before routing, so that preflights (OPTIONS) and refused WebSocket handshakes are
        // answered here; inside the request log, which then records them.
        .layer(middleware::from_fn_with_state(state.clone(), origin::layer))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// A body announced (`Content-Length`) over the limit is refused before it is read: waiting
/// for bytes that will be refused anyway would hold the connection until a timeout. Uploads
/// of exports (`POST /api/v1/imports`) have their own limit, `--max-import-bytes`.
async fn announced_body_limit(
    axum::extract::State((body_limit, import_limit)): axum::extract::State<(usize, u64)>,
    req: Request,
    next: Next,
) -> Response {
    let (limit, flag) = if req.uri().path() == imports::PATH {
        (import_limit, "--max-import-bytes")
    } else {
        (body_limit as u64, "--max-body-bytes")
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(len) if len > limit => ApiError::PayloadTooLarge(format!(
            "request body of {len} bytes is over the limit of {limit} bytes ({flag})"
        ))
        .into_response(),
        _ => next.run(req).await,
    }
}

async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status();
    let class = match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!(crate::metrics::HTTP_REQUESTS, "status" => class).increment(1);
    tracing::debug!(%method, %path, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    resp
}

/// Parses a JSON body that may borrow from the request bytes (sample batches do, to avoid a
/// copy per sample).
pub fn json_body<'a, T: Deserialize<'a>>(
    headers: &HeaderMap,
    body: &'a Bytes,
) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::unprocessable(
                "invalid_body",
                format!("request body does not match the schema: {e}"),
            )
        } else {
            ApiError::bad_request(
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            )
        }
    })
}

/// The request body as bytes, with a JSON error when it is over the limit.
pub struct Body(pub Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge("request body is too large".into())
                } else {
                    ApiError::bad_request("invalid_body", e.body_text())
                }
            })
    }
}

/// The caller, proven by `Authorization: Bearer <access token>`.
pub struct AuthUser(pub Verified);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| ApiError::unauthorized("unauthorized", "missing bearer token"))?;
        Ok(AuthUser(state.auth.verify_access(token).await?))
    }
}

/// The token of an `Authorization: Bearer` header, if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The one answer to a query string that does not fit its endpoint's parameters: 400
/// `invalid_query` naming the rule broken (an unknown parameter is named, with the ones the
/// endpoint takes). Query structs deny unknown fields, so that a misspelt or foreign
/// parameter (`user_id` where there is none) is refused rather than silently ignored.
pub(crate) fn query_error(e: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", e.body_text())
}

/// An RFC 3339 query parameter as UTC milliseconds.
pub(crate) fn parse_time(name: &str, value: &str) -> Result<i64, ApiError> {
    crate::samples::Timestamp::parse(value)
        .map(|t| t.utc_ms)
        .ok_or_else(|| {
            // A literal `+` in a query string decodes to a space, so `+01:00` arrives as
            // ` 01:00`: the most common way to get this wrong.
            let hint = if value.contains(' ') {
                "; it contains a space: a `+` in a query string must be URL-encoded as %2B \
                 (e.g. from=2026-11-29T08:00:00%2B01:00)"
            } else {
                ""
            };
            ApiError::bad_request(
                "invalid_query",
                format!("`{name}` must be {}{hint}", crate::samples::TIME_RULE),
            )
        })
}

/// The `limit` query parameter: `default` when absent, else an integer in `1..=max`.
pub(crate) fn parse_limit(
    value: Option<&str>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match value {
        None => Ok(default),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("limit must be an integer in 1..={max}"),
                )
            }),
    }
}

/// A listing cursor: `<ms>:<id>`, base64url, opaque to clients.
pub(crate) fn encode_cursor(ms: i64, id: &dyn std::fmt::Display) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{ms}:{id}"))
}

/// The parts of a cursor made by [`encode_cursor`]; `invalid_cursor` for anything else.
pub(crate) fn decode_cursor<T: std::str::FromStr>(s: &str) -> Result<(i64, T), ApiError> {
    use base64::Engine;
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not one this server issued");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (ms, id) = raw.split_once(':').ok_or_else(bad)?;
    Ok((
        ms.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}

/// A JSON document we already hold serialised.
pub(crate) fn json_text(status: axum::http::StatusCode, body: String) -> Response {
    use axum::response::IntoResponse;
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
