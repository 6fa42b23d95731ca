//! `GET /api/v1/export`: everything stored of the caller, as NDJSON (one JSON object a line).
//!
//! Rules:
//! - Streamed page by page straight from the store (samples, documents and audit entries a
//!   page at a time): an export holds one page in memory, whatever the account's size.
//! - Lines, `type` first, in this order: `profile` (no password hash), `sample` (the wire
//!   shape, with `version` and `provenance`: valid upload input), `analysis` and `insight`
//!   (the stored document with its window and `superseded_by`), `share` (given and received,
//!   by account id), `audit` (newest first), and last `end` with the count of each type. An
//!   export without its `end` line is incomplete: a store failure mid-way writes an `error`
//!   line and ends the body there. (Not by cutting the connection: the error line, and with
//!   it the reason, would be lost with the connection's unsent bytes.)
//! - gzip on request: `Accept-Encoding: gzip` gives `Content-Encoding: gzip`; `?gzip=true`
//!   gives a `.ndjson.gz` file (`application/gzip`) for clients that would unpack the former.
//! - Recorded in the caller's audit log (`export`) before anything goes out; when the entry
//!   cannot be written nothing goes out (503).

use std::io::Write;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AuthUser;
use super::openapi::BearerErrors;
use crate::app::AppState;
use crate::audit::{Action, Event, Origin};
use crate::http::error::{ApiError, ErrorBody};
use crate::samples::SampleOut;
use crate::store::{Cursor, DocCursor, DocKind, DocQuery, DocRecord, SampleQuery, StoreError};

/// Store reads per page.
const SAMPLE_PAGE: usize = 1000;
const DOC_PAGE: usize = 100;
const AUDIT_PAGE: usize = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Params {
    /// `true` (or `1`): a gzip file (`application/gzip`, `.ndjson.gz`) whatever
    /// `Accept-Encoding` says.
    #[param(value_type = Option<bool>)]
    gzip: Option<String>,
}

/// Export all your data
///
/// Streams the caller's profile, samples, analyses, insights, shares and audit log as
/// NDJSON, one object per line with a `type` (`profile`, `sample`, `analysis`, `insight`,
/// `share`, `audit`), ending with an `end` line that counts them (an export without it is
/// incomplete). gzip with `Accept-Encoding: gzip` or `?gzip=true`. Recorded in the audit
/// log (`export`).
#[utoipa::path(
    get,
    path = "/api/v1/export",
    operation_id = "export",
    tag = "user",
    security(("bearer" = [])),
    params(Params),
    responses(
        (status = 200, description = "NDJSON; gzip with `?gzip=true` (`application/gzip`) or `Accept-Encoding: gzip` (`Content-Encoding: gzip`).", content(
            (String = "application/x-ndjson"),
            (String = "application/gzip"),
        ),
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"clarity-export-<user id>.ndjson\"` (`.ndjson.gz` with `?gzip=true`)."))),
        (status = 400, description = "`invalid_query`: a parameter other than `gzip`, or `gzip` not `true`/`false`/`1`/`0`.", body = ErrorBody),
        BearerErrors,
    ),
)]
async fn export(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    origin: Origin,
    headers: HeaderMap,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(super::query_error)?;
    let as_file = match p.gzip.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`gzip` must be `true` or `false` (or `1` / `0`)",
            ));
        }
    };
    let encoded = !as_file && accepts_gzip(&headers);
    let user = caller.user_id;
    // Own data, but a whole account leaving at once is worth knowing about (a stolen token):
    // recorded before anything goes out.
    let event = Event {
        owner: user,
        actor: Some(user),
        action: Action::Export,
        target: None,
        origin: &origin,
    };
    state.audit.record(event).await?;
    let gzip = (as_file || encoded).then(|| GzEncoder::new(Vec::new(), Compression::default()));
    let lines = Lines {
        state,
        user,
        phase: Phase::Profile,
        counts: Counts::default(),
        gzip,
    };
    let body =
        axum::body::Body::from_stream(futures_util::stream::unfold(lines, |mut l| async move {
            l.next_chunk().await.map(|c| (c, l))
        }));
    let (ctype, name) = if as_file {
        (
            "application/gzip",
            format!("clarity-export-{user}.ndjson.gz"),
        )
    } else {
        (
            "application/x-ndjson",
            format!("clarity-export-{user}.ndjson"),
        )
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if encoded {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(resp)
}

/// Whether `Accept-Encoding` admits gzip (`gzip` or `x-gzip`, without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip"))
                && !q_zero
        })
}

/// Where the export is.
enum Phase {
    Profile,
    Samples(Option<Cursor>),
    Docs(DocKind, Option<DocCursor>),
    Shares,
    Audit(Option<Uuid>),
    End,
    /// The `end` line is out: the gzip trailer, if any, then nothing.
    Done,
    /// The `error` line is out: the body ends there, without an `end` line.
    Failed,
    Gone,
}

#[derive(Default, Serialize)]
struct Counts {
    sample: u64,
    analysis: u64,
    insight: u64,
    share: u64,
    audit: u64,
}

/// One line of the export.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Profile {
        user_id: Uuid,
        email: &'a str,
        display_name: Option<&'a str>,
        created_at: String,
    },
    Sample {
        sample: SampleOut<'a>,
    },
    Analysis(Doc<'a>),
    Insight(Doc<'a>),
    Share {
        share_id: Uuid,
        /// `granted` (the caller is the owner) or `received`.
        direction: &'static str,
        owner_id: Uuid,
        grantee_id: Uuid,
        scope: &'static str,
        created_at: String,
    },
    Audit(super::audit::Entry),
    End {
        counts: &'a Counts,
    },
    Error {
        code: &'static str,
        message: String,
    },
}

#[derive(Serialize)]
struct Doc<'a> {
    id: Uuid,
    created_at: String,
    window_from: String,
    window_to: String,
    superseded_by: Option<Uuid>,
    /// The document as the REST API and the streams serve it.
    document: &'a RawValue,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(String::new, rfc3339)
}

fn push(out: &mut Vec<u8>, line: &Line<'_>) -> Result<(), StoreError> {
    serde_json::to_writer(&mut *out, line).map_err(|e| StoreError::Other(e.into()))?;
    out.push(b'\n');
    Ok(())
}

fn doc_line<'a>(kind: DocKind, d: &'a DocRecord) -> Result<Line<'a>, StoreError> {
    let doc = Doc {
        id: d.id,
        created_at: rfc3339(d.created_at),
        window_from: ms(d.window_from_ms),
        window_to: ms(d.window_to_ms),
        superseded_by: d.superseded_by,
        document: serde_json::from_str(&d.body).map_err(|e| StoreError::Other(e.into()))?,
    };
    Ok(match kind {
        DocKind::Analysis => Line::Analysis(doc),
        DocKind::Insight => Line::Insight(doc),
    })
}

/// The export's state between chunks.
struct Lines {
    state: AppState,
    user: Uuid,
    phase: Phase,
    counts: Counts,
    gzip: Option<GzEncoder<Vec<u8>>>,
}

impl Lines {
    /// The next chunk of the body; `None` at the end.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            match self.phase {
                Phase::Done => return self.finish().map(Ok),
                Phase::Failed | Phase::Gone => return None,
                _ => {}
            }
            let mut text = Vec::new();
            if let Err(e) = self.step(&mut text).await {
                tracing::warn!(error = %e, "export failed mid-way");
                self.phase = Phase::Failed;
                let line = Line::Error {
                    code: if e.is_transient() {
                        "store_unavailable"
                    } else {
                        "internal"
                    },
                    message: "the export stopped before its end; download it again".into(),
                };
                let mut text = Vec::new();
                let _ = push(&mut text, &line);
                let mut chunk = self.encode(&text).unwrap_or_default();
                chunk.extend(self.finish().unwrap_or_default());
                return Some(Ok(Bytes::from(chunk)));
            }
            match self.encode(&text) {
                Some(chunk) if chunk.is_empty() => continue,
                Some(chunk) => return Some(Ok(Bytes::from(chunk))),
                None => {
                    self.phase = Phase::Gone;
                    return Some(Err(std::io::Error::other("gzip failed")));
                }
            }
        }
    }

    /// `text` as it goes on the wire (compressed and flushed with gzip).
    fn encode(&mut self, text: &[u8]) -> Option<Vec<u8>> {
        match &mut self.gzip {
            None => Some(text.to_vec()),
            Some(gz) => {
                gz.write_all(text).ok()?;
                gz.flush().ok()?;
                Some(std::mem::take(gz.get_mut()))
            }
        }
    }

    /// The gzip trailer once, then `None`.
    fn finish(&mut self) -> Option<Bytes> {
        let gz = self.gzip.take()?;
        gz.finish().ok().map(Bytes::from)
    }

    /// Writes the lines of the current phase's next page and moves on.
    async fn step(&mut self, out: &mut Vec<u8>) -> Result<(), StoreError> {
        let store = &*self.state.store;
        let user = self.user;
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Profile => {
                let account = store.user_by_id(user).await?.ok_or_else(|| {
                    StoreError::Other(anyhow::anyhow!("the account was erased during its export"))
                })?;
                let line = Line::Profile {
                    user_id: account.id,
                    email: &account.email,
                    display_name: account.display_name.as_deref(),
                    created_at: rfc3339(account.created_at),
                };
                push(out, &line)?;
                self.phase = Phase::Samples(None);
            }
            Phase::Samples(after) => {
                let query = SampleQuery {
                    kind: None,
                    from_ms: None,
                    to_ms: None,
                    after,
                    limit: SAMPLE_PAGE,
                };
                let page = store.query_samples(user, query).await?;
                for s in &page.samples {
                    push(
                        out,
                        &Line::Sample {
                            sample: s.to_wire(),
                        },
                    )?;
                }
                self.counts.sample += page.samples.len() as u64;
                self.phase = match page.next {
                    Some(c) => Phase::Samples(Some(c)),
                    None => Phase::Docs(DocKind::Analysis, None),
                };
            }
            Phase::Docs(kind, after) => {
                let query = DocQuery {
                    from_ms: None,
                    to_ms: None,
                    after,
                    limit: DOC_PAGE,
                };
                let page = store.list_docs(kind, user, query).await?;
                for d in &page.docs {
                    push(out, &doc_line(kind, d)?)?;
                }
                let n = page.docs.len() as u64;
                match kind {
                    DocKind::Analysis => self.counts.analysis += n,
                    DocKind::Insight => self.counts.insight += n,
                }
                self.phase = match (page.next, kind) {
                    (Some(c), _) => Phase::Docs(kind, Some(c)),
                    (None, DocKind::Analysis) => Phase::Docs(DocKind::Insight, None),
                    (None, DocKind::Insight) => Phase::Shares,
                };
            }
            Phase::Shares => {
                let shares = store.shares_of(user).await?;
                for sh in &shares {
                    let line = Line::Share {
                        share_id: sh.id,
                        direction: if sh.owner_id == user {
                            "granted"
                        } else {
                            "received"
                        },
                        owner_id: sh.owner_id,
                        grantee_id: sh.grantee_id,
                        scope: sh.scope.stream(),
                        created_at: rfc3339(sh.created_at),
                    };
                    push(out, &line)?;
                }
                self.counts.share += shares.len() as u64;
                self.phase = Phase::Audit(None);
            }
            Phase::Audit(before) => {
                let page = store.list_audit(user, before, AUDIT_PAGE).await?;
                for e in &page.entries {
                    push(out, &Line::Audit(super::audit::entry(e)))?;
                }
                self.counts.audit += page.entries.len() as u64;
                self.phase = match page.next {
                    Some(id) => Phase::Audit(Some(id)),
                    None => Phase::End,
                };
            }
            Phase::End => {
                push(
                    out,
                    &Line::End {
                        counts: &self.counts,
                    },
                )?;
                self.phase = Phase::Done;
            }
            Phase::Done | Phase::Failed | Phase::Gone => {}
        }
        Ok(())
    }
}
