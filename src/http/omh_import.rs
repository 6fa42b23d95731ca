//! `POST /api/v1/import/openmhealth`: Open mHealth data points (a JSON array, or NDJSON) into
//! the caller's samples, through the same ingest path as `POST /api/v1/health-data`.
//!
//! Rules:
//! - Each point becomes a sample input by the mapping table (`interop::omh`), then is
//!   validated and stored like any uploaded sample: the same limits (points per request,
//!   samples per second), the same duplicate rule (the sample id comes from `header.id`, so a
//!   re-import stores nothing twice), the same answer once durable.
//! - A point that cannot be mapped or is invalid is rejected on its own, with its position in
//!   the body, a code and a message naming the rule; it never fails the others. A body that
//!   is not JSON / NDJSON at all is 400 naming the line.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::BearerErrors;
use super::{AuthUser, Body};
use crate::app::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::ingest::{self, IngestReport, MAX_LISTED_REJECTIONS};
use crate::interop::omh;
use crate::samples::Rejection;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import_omh))
}

/// The data points of a body: a JSON array, or one JSON object a line.
fn points(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let ndjson = ctype.ends_with("ndjson");
    if !ndjson && ctype != "application/json" && !ctype.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json (an array of data points) or \
             application/x-ndjson (one data point a line)"
                .into(),
        ));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if !ndjson || first == Some(&b'[') {
        return serde_json::from_slice::<Vec<Value>>(body).map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("the body must be a JSON array of Open mHealth data points: {e}"),
            )
        });
    }
    let mut out = Vec::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v = serde_json::from_slice(line).map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("line {} is not a JSON data point: {e}", i + 1),
            )
        })?;
        out.push(v);
    }
    Ok(out)
}

/// Mapped inputs (with their position in the body) and the points refused by the mapping.
type Mapped = (Vec<(usize, Box<RawValue>)>, Vec<Rejection>);

fn map_points(points: &[Value]) -> Mapped {
    let mut mapped = Vec::with_capacity(points.len());
    let mut refused = Vec::new();
    for (index, p) in points.iter().enumerate() {
        match omh::to_sample_input(p).and_then(|input| {
            serde_json::value::to_raw_value(&input)
                .map_err(|e| ("invalid_data_point", format!("not representable: {e}")))
        }) {
            Ok(raw) => mapped.push((index, raw)),
            Err((code, message)) => refused.push(Rejection {
                index,
                code,
                message,
            }),
        }
    }
    (mapped, refused)
}

/// Import Open mHealth data points
///
/// Each data point of a mapped schema (docs/interop.md) becomes a sample of the caller, stored
/// like an upload to `/api/v1/health-data`. Answers after the accepted samples are durable;
/// `rejected[].index` is the point's position in the body.
#[utoipa::path(
    post,
    path = "/api/v1/import/openmhealth",
    operation_id = "import_openmhealth",
    tag = "export",
    security(("bearer" = [])),
    request_body(content(
        (Vec<Object> = "application/json"),
        (String = "application/x-ndjson"),
    )),
    responses(
        (status = 200, description = "Stored; per-point rejections are in the body.", body = super::schemas::IngestReport),
        (status = 400, description = "`invalid_json`: not a JSON array / NDJSON of objects (the line is named).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: more data points than `--max-samples-per-request`, or a body over the limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: neither JSON nor NDJSON.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over the user's samples per second; nothing was stored.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the batch fits."))),
        BearerErrors,
    ),
)]
async fn import_omh(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<IngestReport>, ApiError> {
    let max = state.config.limits.max_samples_per_request;
    let big = body.len() > ingest::OFFLOAD_BYTES;
    let validate =
        move || -> Result<(ingest::Prepared, Vec<usize>, Vec<Rejection>, usize), ApiError> {
            let points = points(&headers, &body)?;
            if points.len() > max {
                return Err(ApiError::PayloadTooLarge(format!(
                    "at most {max} data points per request, got {}",
                    points.len()
                )));
            }
            let (mapped, refused) = map_points(&points);
            let positions: Vec<usize> = mapped.iter().map(|(i, _)| *i).collect();
            let raws: Vec<&RawValue> = mapped.iter().map(|(_, r)| r.as_ref()).collect();
            Ok((ingest::prepare(&raws), positions, refused, points.len()))
        };
    let (prepared, positions, refused, n) = if big {
        ingest::off_runtime(validate)
            .await
            .map_err(ApiError::Internal)??
    } else {
        validate()?
    };
    if let Err(wait) = state.ingest.admit(caller.user_id, n) {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "more than {} samples per second for this user",
                state.config.limits.max_user_samples_per_sec
            ),
            retry_after_ms: crate::rate::retry_after_ms(wait),
        });
    }
    let mut report = state
        .ingest
        .commit(caller.user_id, prepared, "rest")
        .await?;
    // Validation numbered the mapped points; the client numbers the body's.
    for r in &mut report.rejected {
        r.index = positions.get(r.index).copied().unwrap_or(r.index);
    }
    let total = report.rejected.len() + report.rejected_omitted + refused.len();
    report.rejected.extend(refused);
    report.rejected.sort_by_key(|r| r.index);
    report.rejected.truncate(MAX_LISTED_REJECTIONS);
    report.rejected_omitted = total - report.rejected.len();
    Ok(Json(report))
}
