//! `/api/v1/imports`: upload an Apple Health export and follow its import.
//!
//! Rules:
//! - The body (export.zip or export.xml, told apart by their first bytes) is streamed to a
//!   file in the archive (`interop::archive`: the data dir's `imports/<user_id>/`) as it arrives, never held in memory; over `--max-import-bytes` the
//!   upload stops with 413 and the partial file is removed.
//! - 202 once the file is complete; the import then runs as a job (see
//!   `interop::imports`): `GET /api/v1/imports/{id}` and the `import_progress` /
//!   `import_done` frames report it. Only the caller's own jobs are visible.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AuthUser;
use super::openapi::BearerErrors;
use crate::app::AppState;
use crate::http::error::{ApiError, ErrorBody, ErrorDetail};
use crate::interop::imports::StartError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(one))
}

/// The path whose body limit is `--max-import-bytes` instead of `--max-body-bytes`.
pub const PATH: &str = "/api/v1/imports";

/// An import job (documentation of `JobView`, which the server serialises).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ImportJob {
    import_id: Uuid,
    /// `apple_health`.
    format: String,
    /// `running`, `done` or `failed`.
    state: String,
    /// Data elements read (Records, those inside Correlations too, Correlations, Workouts,
    /// ActivitySummaries, ...).
    records_read: u64,
    /// `records_read` by HealthKit type (or element name).
    records_by_type: BTreeMap<String, u64>,
    samples_stored: u64,
    /// Samples already stored (an earlier import of the same data, or repeated in the file).
    duplicates: u64,
    /// Samples that replaced a stored one (a later creationDate).
    updated: u64,
    /// Elements not stored, by rejection code.
    rejected: BTreeMap<String, u64>,
    /// Elements of types without a Clarity kind, by type.
    unmapped: BTreeMap<String, u64>,
    bytes_done: u64,
    bytes_total: u64,
    /// Why a `failed` import stopped (`malformed_xml` names the line and byte offset,
    /// `zip_bomb`, `not_an_export`, `store_error`, `io_error`, `cancelled`: the account was
    /// erased).
    error: Option<ErrorDetail>,
}

/// Import an Apple Health export
///
/// The body is the export as Health writes it (`export.zip`, or its `export.xml`), any
/// content type. It is stored in the data dir and imported as a job: every Record of a mapped
/// type becomes a sample with a derived id (re-importing adds nothing twice; docs/import.md).
#[utoipa::path(
    post,
    path = "/api/v1/imports",
    operation_id = "create_import",
    tag = "imports",
    security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "export.zip or export.xml, as bytes (the content type is not looked at: the body is recognised by its first bytes)"),
    responses(
        (status = 202, description = "Uploaded; the import runs (`Location`: its job).", body = ImportJob),
        (status = 400, description = "`empty_body`: no file was sent.", body = ErrorBody),
        (status = 409, description = "`import_running`: an import of this account is running.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the upload is over `--max-import-bytes`.", body = ErrorBody),
        (status = 422, description = "`not_an_export`: the body is neither a zip archive nor XML.", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let user = caller.user_id;
    let imports = &state.imports;
    let id = imports.claim(user).map_err(|e| match e {
        StartError::Running(_) => ApiError::Conflict {
            code: "import_running",
            message: e.to_string(),
        },
    })?;
    let path = imports
        .upload_path(user, id)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let received = receive(&state, body, &path).await.and_then(|format| {
        // Erased while the file arrived: its deletion may have run before the file existed.
        if state.auth.is_erased(user) {
            Err(ApiError::Unauthorized {
                code: "account_erased",
                message: "the account was erased".into(),
            })
        } else {
            Ok(format)
        }
    });
    match received {
        Ok(format) => {
            imports.start(user, id, path, format);
            let view = imports.get(user, id).ok_or(ApiError::NotFound)?;
            let body = serde_json::to_string(&view).map_err(|e| ApiError::Internal(e.into()))?;
            Ok((
                StatusCode::ACCEPTED,
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (header::LOCATION, format!("{PATH}/{id}")),
                ],
                body,
            )
                .into_response())
        }
        Err(e) => {
            imports.release(user, id);
            let _ = tokio::fs::remove_file(&path).await;
            Err(e)
        }
    }
}

/// Streams the body to `path`; returns the format, from the first bytes.
async fn receive(
    state: &AppState,
    body: axum::body::Body,
    path: &std::path::Path,
) -> Result<&'static str, ApiError> {
    let max = state.config.limits.max_import_bytes;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    let mut head: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("invalid_body", format!("the upload was cut off: {e}"))
        })?;
        total += chunk.len() as u64;
        if total > max {
            return Err(ApiError::PayloadTooLarge(format!(
                "the export is over the limit of {max} bytes (--max-import-bytes)"
            )));
        }
        if head.len() < 64 {
            head.extend_from_slice(&chunk[..chunk.len().min(64 - head.len())]);
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    file.flush()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    if total == 0 {
        return Err(ApiError::bad_request(
            "empty_body",
            "no file: send export.zip or export.xml as the body",
        ));
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    let text = text.trim_ascii_start();
    if head.starts_with(b"PK\x03\x04") || text.starts_with(b"<") {
        Ok("apple_health")
    } else {
        Err(ApiError::unprocessable(
            "not_an_export",
            "the body is neither a zip archive (export.zip) nor XML (export.xml)",
        ))
    }
}

/// An import job
///
/// The caller's import: state, counts so far, and the error of a failed one.
#[utoipa::path(
    get,
    path = "/api/v1/imports/{id}",
    operation_id = "get_import",
    tag = "imports",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "`import_id`.")),
    responses(
        (status = 200, description = "The job.", body = ImportJob),
        (status = 404, description = "`not_found`: no such import of the caller on this node (a malformed id included; jobs are forgotten at restart).", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn one(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    let view = state
        .imports
        .get(caller.user_id, id)
        .ok_or(ApiError::NotFound)?;
    let body = serde_json::to_string(&view).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(super::json_text(StatusCode::OK, body))
}
