//! `/api/v1/export/{fhir,openmhealth,csv}`: a user's samples (and, for FHIR, analyses) in
//! interchange formats, streamed page by page (`clarity::interop` writes each piece).
//!
//! Rules:
//! - Always the caller's own data, except FHIR with `?user_id=` of a user who shares their
//!   analyses with the caller: then only the analyses (raw samples are never shared, as
//!   everywhere else), and the read is recorded in that user's audit log before anything is
//!   sent (no entry, no data: 503); a refused read is recorded as `access_denied`.
//! - Parameters are checked before the answer starts; a store failure after the first bytes
//!   ends the stream with an error, so a client never takes a cut-off export for a whole one
//!   (the Bundle or JSON array is then not closed).
//! - Bodies are FHIR JSON / NDJSON, JSON, NDJSON or CSV as the format says (the one family of
//!   REST answers that is not `application/json`); errors stay JSON.

use std::sync::Arc;

use axum::body::Body as ResponseBody;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::openapi::BearerErrors;
use super::parse_time;
use super::{AuthUser, analyses};
use crate::app::AppState;
use crate::audit::Origin;
use crate::http::error::{ApiError, ErrorBody};
use crate::interop::{csv, fhir, omh, table};
use crate::samples::{Kind, Sample};
use crate::store::{Cursor, DocCursor, DocKind, DocQuery, SampleQuery, Store};

/// Samples (or documents) read from the store per step of the stream.
const PAGE: usize = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_fhir))
        .routes(routes!(export_omh))
        .routes(routes!(export_csv))
}

/// Turns what the store holds into the pieces of one format.
trait Writer: Send + 'static {
    fn head(&mut self) -> String;
    fn sample(&mut self, s: &Sample) -> Option<String>;
    fn analysis(&mut self, _doc: &serde_json::Value) -> Option<String> {
        None
    }
    fn tail(&mut self) -> String;
}

enum Step {
    Head,
    Samples(Option<Cursor>),
    Docs(Option<DocCursor>),
    Tail,
    Done,
}

/// One export in progress: where it is, and what it still has to read.
struct Export {
    store: Arc<dyn Store>,
    user: Uuid,
    kind: Option<Kind>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    samples: bool,
    analyses: bool,
    writer: Box<dyn Writer>,
    step: Step,
}

impl Export {
    fn first_data_step(&self) -> Step {
        if self.samples {
            Step::Samples(None)
        } else if self.analyses {
            Step::Docs(None)
        } else {
            Step::Tail
        }
    }

    /// The next piece of the body; `None` at the end.
    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            let step = std::mem::replace(&mut self.step, Step::Done);
            let out = match step {
                Step::Done => return None,
                Step::Head => {
                    self.step = self.first_data_step();
                    self.writer.head()
                }
                Step::Samples(after) => {
                    let query = SampleQuery {
                        kind: self.kind,
                        from_ms: self.from_ms,
                        to_ms: self.to_ms,
                        after,
                        limit: PAGE,
                    };
                    let page = match self.store.query_samples(self.user, query).await {
                        Ok(p) => p,
                        Err(e) => return Some(Err(fail(e))),
                    };
                    let mut out = String::new();
                    for s in &page.samples {
                        out.extend(self.writer.sample(s));
                    }
                    self.step = match page.next {
                        Some(c) => Step::Samples(Some(c)),
                        None if self.analyses => Step::Docs(None),
                        None => Step::Tail,
                    };
                    out
                }
                Step::Docs(after) => {
                    let query = DocQuery {
                        from_ms: self.from_ms,
                        to_ms: self.to_ms,
                        after,
                        limit: PAGE,
                    };
                    let page = match self
                        .store
                        .list_docs(DocKind::Analysis, self.user, query)
                        .await
                    {
                        Ok(p) => p,
                        Err(e) => return Some(Err(fail(e))),
                    };
                    let mut out = String::new();
                    for d in &page.docs {
                        if let Ok(doc) = serde_json::from_str(&d.body) {
                            out.extend(self.writer.analysis(&doc));
                        }
                    }
                    self.step = match page.next {
                        Some(c) => Step::Docs(Some(c)),
                        None => Step::Tail,
                    };
                    out
                }
                Step::Tail => self.writer.tail(),
            };
            if !out.is_empty() {
                return Some(Ok(Bytes::from(out)));
            }
        }
    }

    fn into_response(self, content_type: &'static str) -> Response {
        let stream = futures_util::stream::unfold(self, |mut e| async move {
            e.next().await.map(|piece| (piece, e))
        });
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, content_type)],
            ResponseBody::from_stream(stream),
        )
            .into_response()
    }
}

/// A store failure after the answer started: logged, and the connection ends mid-body.
fn fail(e: crate::store::StoreError) -> std::io::Error {
    tracing::warn!(error = %e, "export stopped: store read failed");
    std::io::Error::other("store read failed")
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_kind(k: Option<&str>) -> Result<Option<Kind>, ApiError> {
    k.map(|k| {
        Kind::parse(k).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("unknown kind `{k}`; kind must be one of {}", Kind::names()),
            )
        })
    })
    .transpose()
}

fn range(from: Option<&str>, to: Option<&str>) -> Result<(Option<i64>, Option<i64>), ApiError> {
    Ok((
        from.map(|t| parse_time("from", t)).transpose()?,
        to.map(|t| parse_time("to", t)).transpose()?,
    ))
}

/// Whether the client asked for NDJSON: `format=ndjson`, or an Accept naming an NDJSON type.
fn wants_ndjson(
    format: Option<&str>,
    headers: &HeaderMap,
    default_json: &str,
) -> Result<bool, ApiError> {
    match format {
        Some("ndjson") => Ok(true),
        Some(f) if f == default_json => Ok(false),
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            format!("format must be `{default_json}` or `ndjson`"),
        )),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("ndjson"))),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FhirParams {
    /// One sample kind, or `analysis` for the analyses only (default: every sample, then
    /// every analysis).
    kind: Option<String>,
    /// Samples starting (analyses whose window ends) at or after this (RFC 3339 with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Samples starting (analyses whose window ends) before this (RFC 3339 with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// `bundle` (default) or `ndjson` (Bulk Data: one resource a line; also chosen by
    /// `Accept: application/fhir+ndjson`).
    format: Option<String>,
    /// Another user who shares their analyses with the caller: their analyses only.
    #[param(value_type = Option<Uuid>)]
    user_id: Option<String>,
}

struct FhirBundle {
    user: Uuid,
    bundle: fhir::BundleWriter,
}

impl Writer for FhirBundle {
    fn head(&mut self) -> String {
        self.bundle.head(Uuid::new_v4(), &now_rfc3339())
    }
    fn sample(&mut self, s: &Sample) -> Option<String> {
        Some(self.bundle.entry(&fhir::observation(self.user, s)))
    }
    fn analysis(&mut self, doc: &serde_json::Value) -> Option<String> {
        fhir::analysis_observation(self.user, doc).map(|o| self.bundle.entry(&o))
    }
    fn tail(&mut self) -> String {
        self.bundle.tail().to_owned()
    }
}

struct FhirNdjson {
    user: Uuid,
}

impl Writer for FhirNdjson {
    fn head(&mut self) -> String {
        String::new()
    }
    fn sample(&mut self, s: &Sample) -> Option<String> {
        Some(format!("{}\n", fhir::observation(self.user, s)))
    }
    fn analysis(&mut self, doc: &serde_json::Value) -> Option<String> {
        fhir::analysis_observation(self.user, doc).map(|o| format!("{o}\n"))
    }
    fn tail(&mut self) -> String {
        String::new()
    }
}

/// FHIR R4 export
///
/// The caller's samples as FHIR R4 Observations (LOINC codes where LOINC has one, UCUM units,
/// original UTC offsets, the device as a contained Device, subject `Patient/<user id>`),
/// then their analyses as Observations; a Bundle of type `collection`, or Bulk Data NDJSON.
/// docs/interop.md has the mapping table.
#[utoipa::path(
    get,
    path = "/api/v1/export/fhir",
    operation_id = "export_fhir",
    tag = "export",
    security(("bearer" = [])),
    params(FhirParams),
    responses(
        (status = 200, description = "A FHIR R4 Bundle (type `collection`), or NDJSON of resources, streamed.", content(
            (Object = "application/fhir+json"),
            (String = "application/fhir+ndjson"),
        )),
        (status = 400, description = "`invalid_query`: a parameter out of its schema or one this endpoint does not take.", body = ErrorBody),
        (status = 403, description = "`forbidden`: no share of `user_id`'s analyses with the caller, or a sample kind asked of another user (raw samples are never shared).", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn export_fhir(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    origin: Origin,
    headers: HeaderMap,
    params: Result<Query<FhirParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(super::query_error)?;
    let analyses_only = p.kind.as_deref() == Some("analysis");
    let kind = if analyses_only {
        None
    } else {
        parse_kind(p.kind.as_deref())?
    };
    let (from_ms, to_ms) = range(p.from.as_deref(), p.to.as_deref())?;
    let ndjson = match p.format.as_deref() {
        Some("bundle") => false,
        f => wants_ndjson(f, &headers, "bundle")?,
    };
    let target = || "fhir:analyses".to_owned();
    let user = analyses::owner_for(
        &state,
        caller.user_id,
        &origin,
        p.user_id.as_deref(),
        DocKind::Analysis,
        target,
    )
    .await?;
    let shared = user != caller.user_id;
    if shared && kind.is_some() {
        return Err(ApiError::Forbidden {
            code: "forbidden",
            message: "raw samples are never shared: another user's export holds their \
                      analyses only (omit `kind`, or kind=analysis)"
                .into(),
        });
    }
    analyses::record_read(&state, caller.user_id, user, &origin, target()).await?;
    let writer: Box<dyn Writer> = if ndjson {
        Box::new(FhirNdjson { user })
    } else {
        Box::new(FhirBundle {
            user,
            bundle: fhir::BundleWriter::new(),
        })
    };
    let export = Export {
        store: state.store.clone(),
        user,
        kind,
        from_ms,
        to_ms,
        samples: !shared && !analyses_only,
        analyses: kind.is_none(),
        writer,
        step: Step::Head,
    };
    let ctype = if ndjson {
        "application/fhir+ndjson"
    } else {
        "application/fhir+json"
    };
    Ok(export.into_response(ctype))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OmhParams {
    /// One kind (one with an Open mHealth schema; default: every such kind).
    kind: Option<String>,
    /// Samples starting at or after this (RFC 3339 with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Samples starting before this (RFC 3339 with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// `json` (default: one JSON array) or `ndjson` (one data point a line; also chosen by an
    /// `Accept` naming NDJSON).
    format: Option<String>,
}

struct OmhWriter {
    ndjson: bool,
    written: usize,
    created: String,
}

impl Writer for OmhWriter {
    fn head(&mut self) -> String {
        if self.ndjson {
            String::new()
        } else {
            "[".into()
        }
    }
    fn sample(&mut self, s: &Sample) -> Option<String> {
        let point = omh::data_point(s, &self.created)?;
        let sep = match (self.ndjson, self.written) {
            (true, _) => "",
            (false, 0) => "",
            (false, _) => ",",
        };
        self.written += 1;
        let end = if self.ndjson { "\n" } else { "" };
        Some(format!("{sep}{point}{end}"))
    }
    fn tail(&mut self) -> String {
        if self.ndjson {
            String::new()
        } else {
            "]".into()
        }
    }
}

/// Open mHealth export
///
/// The caller's samples of the kinds with an Open mHealth schema, as data points (header +
/// body), oldest first. Kinds without a schema are left out (docs/interop.md lists them).
#[utoipa::path(
    get,
    path = "/api/v1/export/openmhealth",
    operation_id = "export_openmhealth",
    tag = "export",
    security(("bearer" = [])),
    params(OmhParams),
    responses(
        (status = 200, description = "Open mHealth data points, streamed.", content(
            (Vec<Object> = "application/json"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "`invalid_query`: a parameter out of its schema, one this endpoint does not take, or a kind without an Open mHealth schema.", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn export_omh(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    headers: HeaderMap,
    params: Result<Query<OmhParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(super::query_error)?;
    let kind = parse_kind(p.kind.as_deref())?;
    if let Some(k) = kind.filter(|k| table::mapping(*k).omh.is_none()) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "{} has no Open mHealth schema; kinds with one: {}",
                k.as_str(),
                table::omh_kinds()
            ),
        ));
    }
    let (from_ms, to_ms) = range(p.from.as_deref(), p.to.as_deref())?;
    let ndjson = wants_ndjson(p.format.as_deref(), &headers, "json")?;
    let export = Export {
        store: state.store.clone(),
        user: caller.user_id,
        kind,
        from_ms,
        to_ms,
        samples: true,
        analyses: false,
        writer: Box::new(OmhWriter {
            ndjson,
            written: 0,
            created: now_rfc3339(),
        }),
        step: Step::Head,
    };
    Ok(export.into_response(if ndjson {
        "application/x-ndjson"
    } else {
        "application/json"
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CsvParams {
    /// One kind (default: every kind, long format).
    kind: Option<String>,
    /// Samples starting at or after this (RFC 3339 with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Samples starting before this (RFC 3339 with offset).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// `minutes` (the `clarity analyze --input` format; the default for `activity_count`, and
    /// only for it) or `long` (one row per sample; the default for everything else).
    format: Option<String>,
}

struct LongCsv;

impl Writer for LongCsv {
    fn head(&mut self) -> String {
        format!("{}\n", csv::LONG_HEADER)
    }
    fn sample(&mut self, s: &Sample) -> Option<String> {
        Some(csv::long_row(s))
    }
    fn tail(&mut self) -> String {
        String::new()
    }
}

struct MinuteCsv(csv::MinuteWriter);

impl Writer for MinuteCsv {
    fn head(&mut self) -> String {
        csv::MinuteWriter::header()
    }
    fn sample(&mut self, s: &Sample) -> Option<String> {
        self.0.push(s)
    }
    fn tail(&mut self) -> String {
        self.0.finish().unwrap_or_default()
    }
}

/// CSV export
///
/// `kind=activity_count`: the minute series in exactly the `clarity analyze --input` format
/// (`timestamp_utc_iso8601,activity_count`, UTC, one row per minute with data). Any other
/// kind, or none: the long format, one row per sample (docs/interop.md has the columns).
#[utoipa::path(
    get,
    path = "/api/v1/export/csv",
    operation_id = "export_csv",
    tag = "export",
    security(("bearer" = [])),
    params(CsvParams),
    responses(
        (status = 200, description = "CSV, streamed.", content_type = "text/csv", body = String),
        (status = 400, description = "`invalid_query`: a parameter out of its schema or one this endpoint does not take (`format=minutes` is for activity_count only).", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn export_csv(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    params: Result<Query<CsvParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(super::query_error)?;
    let kind = parse_kind(p.kind.as_deref())?;
    let (from_ms, to_ms) = range(p.from.as_deref(), p.to.as_deref())?;
    let minutes = match (p.format.as_deref(), kind) {
        (None | Some("minutes"), Some(Kind::ActivityCount)) => true,
        (None | Some("long"), _) => false,
        (Some("minutes"), _) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "format=minutes is the activity_count minute series: add kind=activity_count",
            ));
        }
        (Some(_), _) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "format must be `minutes` or `long`",
            ));
        }
    };
    let writer: Box<dyn Writer> = if minutes {
        Box::new(MinuteCsv(csv::MinuteWriter::new()))
    } else {
        Box::new(LongCsv)
    };
    let export = Export {
        store: state.store.clone(),
        user: caller.user_id,
        kind,
        from_ms,
        to_ms,
        samples: true,
        analyses: false,
        writer,
        step: Step::Head,
    };
    Ok(export.into_response("text/csv; charset=utf-8"))
}
