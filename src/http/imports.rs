//! `/api/v1/imports`: upload an Apple Health export and follow its import.
//!
//! Rules:
//! - The body (export.zip or export.xml, told apart by their first bytes) is streamed into
//!   the archive (`interop::archive`: the data dir's `imports/<user_id>/`, or S3 with
//!   `--archive`) as it arrives, never held in memory; over `--max-import-bytes` the upload
//!   stops with 413 and what was written is removed.
//! - 202 once the file is kept (with S3: once S3 acknowledged the whole object; an archive
//!   that refuses it is 503 `archive_unavailable` and no import runs); the import then runs
//!   as a job (see `interop::imports`): `GET /api/v1/imports/{id}` and the
//!   `import_progress` / `import_done` frames report it. Only the caller's own jobs are
//!   visible.
//! - `POST /api/v1/imports/{id}/rerun` imports a kept upload of the caller again (the same
//!   id; 404 when it is not kept).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AuthUser;
use super::openapi::BearerErrors;
use crate::app::AppState;
use crate::http::error::{ApiError, ErrorBody, ErrorDetail};
use crate::interop::archive::{ArchiveError, Upload};
use crate::interop::imports::StartError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(one))
        .routes(routes!(rerun))
}

/// What an archive failure tells the client (the cause is logged).
fn archive_error(e: ArchiveError) -> ApiError {
    match e {
        ArchiveError::Io(e) => ApiError::Internal(e.into()),
        ArchiveError::Unavailable(why) => {
            tracing::warn!(error = %why, "import archive unavailable");
            ApiError::Dependency {
                code: "archive_unavailable",
                message: "the import archive (S3) refused or could not be reached: the upload \
                          was not kept and no import runs; retry later"
                    .into(),
            }
        }
    }
}

fn start_error(e: StartError) -> ApiError {
    match e {
        StartError::Running(_) => ApiError::Conflict {
            code: "import_running",
            message: e.to_string(),
        },
        StartError::NotKept(_) => ApiError::Missing {
            code: "not_found",
            message: e.to_string(),
        },
        StartError::Archive(e) => archive_error(e),
    }
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
        (status = 503, description = "`archive_unavailable`: the S3 archive (`--archive`) refused the upload or could not be reached; nothing was kept or imported.", body = ErrorBody),
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
    let id = imports.claim(user).map_err(start_error)?;
    let upload = match imports.archive().begin(user, id).await {
        Ok(u) => u,
        Err(e) => {
            imports.release(user, id);
            return Err(archive_error(e));
        }
    };
    let received = receive(&state, body, upload).await.and_then(|kept| {
        // Erased while the file arrived: its deletion may have run before the file existed.
        if state.auth.is_erased(user) {
            Err(ApiError::Unauthorized {
                code: "account_erased",
                message: "the account was erased".into(),
            })
        } else {
            Ok(kept)
        }
    });
    match received {
        Ok((format, path)) => {
            imports.start(user, id, path, format);
            accepted(&state, user, id)
        }
        Err(e) => {
            imports.release(user, id);
            if let Err(e) = imports.archive().remove(user, id).await {
                tracing::warn!(error = %e, "a refused import upload was not deleted");
            }
            Err(e)
        }
    }
}

/// 202 with the job and its `Location`.
fn accepted(state: &AppState, user: Uuid, id: Uuid) -> Result<Response, ApiError> {
    let view = state.imports.get(user, id).ok_or(ApiError::NotFound)?;
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

/// Streams the body into `upload`; returns the format (from the first bytes) and the file
/// the import reads. A refused body is given up ([`Upload::abort`]).
async fn receive(
    state: &AppState,
    body: axum::body::Body,
    mut upload: Upload,
) -> Result<(&'static str, std::path::PathBuf), ApiError> {
    let mut head: Vec<u8> = Vec::new();
    let format = match read_body(state, body, &mut upload, &mut head).await {
        Ok(()) => body_format(&head, upload.len()),
        Err(e) => Err(e),
    };
    match format {
        Ok(format) => {
            let path = upload.finish().await.map_err(archive_error)?;
            Ok((format, path))
        }
        Err(e) => {
            upload.abort().await;
            Err(e)
        }
    }
}

async fn read_body(
    state: &AppState,
    body: axum::body::Body,
    upload: &mut Upload,
    head: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let max = state.config.limits.max_import_bytes;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("invalid_body", format!("the upload was cut off: {e}"))
        })?;
        if upload.len() + chunk.len() as u64 > max {
            return Err(ApiError::PayloadTooLarge(format!(
                "the export is over the limit of {max} bytes (--max-import-bytes)"
            )));
        }
        if head.len() < 64 {
            head.extend_from_slice(&chunk[..chunk.len().min(64 - head.len())]);
        }
        upload.write(&chunk).await.map_err(archive_error)?;
    }
    Ok(())
}

/// The upload's format, from its first bytes.
fn body_format(head: &[u8], total: u64) -> Result<&'static str, ApiError> {
    if total == 0 {
        return Err(ApiError::bad_request(
            "empty_body",
            "no file: send export.zip or export.xml as the body",
        ));
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
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

/// Re-run an import
///
/// Imports the caller's kept upload `id` again (e.g. after an upgrade improved the mappings),
/// read back from the archive; derived ids make it add nothing twice. The job keeps its id:
/// `GET /api/v1/imports/{id}` and the frames follow the new run. Uploads are kept
/// `--import-retention-days` and deleted when the account is erased.
#[utoipa::path(
    post,
    path = "/api/v1/imports/{id}/rerun",
    operation_id = "rerun_import",
    tag = "imports",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "`import_id` of an earlier upload.")),
    responses(
        (status = 202, description = "The import runs again (`Location`: its job).", body = ImportJob),
        (status = 404, description = "`not_found`: no kept upload of the caller with this id (never uploaded, another account's, past the retention; a malformed id included).", body = ErrorBody),
        (status = 409, description = "`import_running`: an import of this account is running.", body = ErrorBody),
        (status = 503, description = "`archive_unavailable`: the S3 archive (`--archive`) could not be read.", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn rerun(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    let user = caller.user_id;
    state.imports.rerun(user, id).await.map_err(start_error)?;
    if state.auth.is_erased(user) {
        // Erased while the file was fetched: the erasure's cancel may have run before the
        // job existed.
        state.imports.cancel_user(user);
        return Err(ApiError::Unauthorized {
            code: "account_erased",
            message: "the account was erased".into(),
        });
    }
    accepted(&state, user, id)
}
