//! The OpenAPI 3.1 document of the REST API, served at `GET /api/openapi.json`.
//!
//! Rules:
//! - The document is generated from the router, not written beside it: every REST route is
//!   registered with utoipa-axum's `routes!(handler)` from the handler's `#[utoipa::path]`
//!   annotation, which gives both the axum route and the operation. A route cannot be served
//!   at a path or method other than the documented one, and only the WebSocket and the
//!   dashboard's files are registered without it ([`super::router`]).
//! - Adding a route: write the handler with `#[utoipa::path(...)]` (method, path, `operation_id`,
//!   `tag`, params, body, every status it can answer) and add `.routes(routes!(handler))` to its
//!   area's `router()`; a new area's router is merged in [`super::api`].
//! - Bodies are described by the types the handlers (de)serialise (`ToSchema`), errors by
//!   [`ErrorBody`], which `ApiError` serialises. Analyses and insights are stored JSON that the
//!   handlers pass through: their schemas are the protocol's (`protocol/schemas/server`, which
//!   the WebSocket tests check every frame against), without the frame's `type`.
//! - Error statuses shared by many routes come from the response sets below; a status a route
//!   adds is listed on the route, once (a set and a route never name the same status).
//! - Not here: the WebSocket protocol (protocol/asyncapi.yaml) and the dashboard's files.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::http::error::{ErrorBody, ErrorDetail};

/// Name of the bearer security scheme (`security(("bearer" = []))` on an operation).
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Clarity REST API",
        description = "Wearable health data: accounts, sample upload and history, analyses, \
            insights and shares. Every body is JSON, errors included \
            (`{\"error\":{\"code\",\"message\"}}`); 429 and 503 carry `Retry-After`. The live \
            stream is the WebSocket at `/api/v1/ws`, described by the AsyncAPI document in \
            `protocol/`, not here.",
    ),
    modifiers(&Security),
    components(schemas(ErrorBody, ErrorDetail, Analysis, Insight, SampleInput, Provenance)),
    tags(
        (name = "auth", description = "Local accounts and tokens (`--auth local`; with `--auth cognito` these answer 404 `local_auth_disabled`)."),
        (name = "user", description = "The caller's account."),
        (name = "health-data", description = "Sample upload and history."),
        (name = "changes", description = "The change feed of the caller's samples: every insert, update and deletion in order, to follow from a token."),
        (name = "analyses", description = "Actigraphy analytics of the last week."),
        (name = "insights", description = "Plain-language insights about the last week (rate limited)."),
        (name = "shares", description = "Letting another account read your insights or analyses."),
        (name = "ops", description = "Liveness, readiness, metrics and this document."),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `/api/v1/auth/login` or `/refresh` (15 min), or \
                         with `--auth cognito` the user pool's access token.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The documented routes, with their document; [`super::router`] serves them.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The base document: info, tags, security scheme and the shared schemas.
pub(super) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The finished document as JSON text (built once).
pub fn document() -> &'static str {
    static DOC: LazyLock<String> = LazyLock::new(|| ordered(finish(super::api().into_openapi())));
    &DOC
}

/// JSON text with the top-level fields in the usual order (`openapi` first), not sorted.
fn ordered(doc: Value) -> String {
    const ORDER: [&str; 5] = ["openapi", "info", "tags", "paths", "components"];
    let Value::Object(fields) = doc else {
        unreachable!("the document is an object")
    };
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort_by_key(|k| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    let parts: Vec<String> = keys
        .into_iter()
        .map(|k| format!("{}:{}", Value::from(k.as_str()), fields[k]))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// The generated document with the protocol's schemas of the stored documents put in.
fn finish(doc: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(&doc).expect("the OpenAPI document serialises");
    let schemas = doc["components"]["schemas"]
        .as_object_mut()
        .expect("the document has component schemas");
    schemas.insert(
        "Analysis".into(),
        rest_schema(include_str!("../../protocol/schemas/server/analysis.json")),
    );
    schemas.insert(
        "Insight".into(),
        rest_schema(include_str!("../../protocol/schemas/server/insight.json")),
    );
    let client: Value =
        serde_json::from_str(include_str!("../../protocol/schemas/client/samples.json"))
            .expect("protocol schema is JSON");
    for (def, name, put) in CLIENT_DEFS {
        if put {
            let mut schema = client["$defs"][def].clone();
            if def == "sample" {
                per_kind_rules_by_reference(&mut schema);
            }
            rewrite_refs(&mut schema);
            schemas.insert(name.into(), schema);
        }
    }
    doc
}

/// The `$defs` of protocol/schemas/client/samples.json, the components they become, and
/// whether to put them in: `kind` is the same as the schema derived from
/// [`super::schemas::Kind`] (a test checks), so that one is used. `Provenance` is shared by
/// input and output (responses carry what was sent).
const CLIENT_DEFS: [(&str, &str, bool); 5] = [
    ("sample", "SampleInput", true),
    ("kind", "Kind", false),
    ("dateTime", "DateTime", true),
    ("provenance", "Provenance", true),
    ("device", "Device", true),
];

/// The sample's per-kind rules (units, ranges in every unit, required extra fields: twenty
/// `if`/`then` blocks) stay in protocol/schemas/client/samples.json, named in the description:
/// a sample that breaks them is reported in the 200's `rejected` list, so they do not decide
/// whether a request body is valid, and OpenAPI tools (schemathesis' generator among them)
/// cannot generate from that many nested conditionals. The shape, types and required fields
/// stay here.
fn per_kind_rules_by_reference(sample: &mut Value) {
    let Some(obj) = sample.as_object_mut() else {
        return;
    };
    if obj.remove("allOf").is_some() {
        let note = " Per kind (units and their conversion, the value's range in each unit, \
                    `diastolic` for blood_pressure, `activity` and `end` for workout, the sleep \
                    stage names): protocol/schemas/client/samples.json and docs/phone-data.md.";
        if let Some(Value::String(d)) = obj.get_mut("description") {
            d.push_str(note);
        }
    }
}

/// Points a protocol schema's `#/$defs/<def>` references at the components they became.
fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(def) = r.strip_prefix("#/$defs/")
                && let Some((_, name, _)) = CLIENT_DEFS.iter().find(|(d, _, _)| *d == def)
            {
                *r = format!("#/components/schemas/{name}");
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// A server frame's schema as the REST body: the same document without the frame's `type`
/// (and without what only a stream delivery adds).
fn rest_schema(frame_schema: &str) -> Value {
    let mut s: Value = serde_json::from_str(frame_schema).expect("protocol schema is JSON");
    let obj = s.as_object_mut().expect("protocol schema is an object");
    obj.remove("$schema");
    obj.remove("title");
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        for frame_only in ["type", "stream", "offset"] {
            props.remove(frame_only);
        }
    }
    if let Some(req) = obj.get_mut("required").and_then(Value::as_array_mut) {
        req.retain(|r| r != "type");
    }
    s
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object)),
)]
async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

/// Types whose schema is one of the protocol's, put in by [`finish`] (the derived schema is a
/// placeholder that only names the component).
macro_rules! protocol_schema {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new().build().into()
            }
        }

        impl ToSchema for $name {}
    )*};
}

protocol_schema! {
    /// An analysis as stored and listed: protocol/schemas/server/analysis.json without `type`.
    Analysis;
    /// An insight as stored and listed: protocol/schemas/server/insight.json without `type`.
    Insight;
    /// A sample as clients send it: the `sample` of protocol/schemas/client/samples.json.
    SampleInput;
    /// A sample's device, app and recording method: the `provenance` of
    /// protocol/schemas/client/samples.json.
    Provenance;
}

/// A page of analyses (`GET /api/v1/analyses`), ordered by window end.
#[derive(ToSchema)]
pub struct AnalysisPage {
    pub analyses: Vec<Analysis>,
    /// Pass as `cursor` for the next page; `null` on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A page of insights (`GET /api/v1/insights`), ordered by window end.
#[derive(ToSchema)]
pub struct InsightPage {
    pub insights: Vec<Insight>,
    /// Pass as `cursor` for the next page; `null` on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A sample's `value`: a number, or for `sleep_stage` the stage.
pub(crate) fn sample_value() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .description(Some("Every kind but `sleep_stage`, in the kind's unit.")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([
                    "awake",
                    "light",
                    "deep",
                    "rem",
                    "in_bed",
                    "asleep",
                    "out_of_bed",
                ]))
                .description(Some("`sleep_stage`.")),
        )
        .build()
        .into()
}

// Response sets. Descriptions name the codes a route of the set can answer.

fn error_response(description: &str, headers: &[(&str, &str)]) -> RefOr<Response> {
    let mut b = utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    ErrorBody::name(),
                ))))
                .build(),
        );
    for (name, description) in headers {
        b = b.header(
            *name,
            utoipa::openapi::HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(if *name == "Retry-After" {
                            Type::Integer
                        } else {
                            Type::String
                        })
                        .build(),
                ))
                .description(Some(*description))
                .build(),
        );
    }
    b.build().into()
}

const RETRY_AFTER: (&str, &str) = ("Retry-After", "Seconds to wait before retrying.");

fn unavailable() -> (String, RefOr<Response>) {
    (
        "503".into(),
        error_response(
            "`unavailable`: the store is overloaded or timed out, the server is shutting \
             down, (`--auth cognito`) the pool's signing keys cannot be fetched, or (insights, \
             without the fallback) Gemini failed. Retry after `Retry-After` seconds \
             (`retry_after_ms` in the body).",
            &[RETRY_AFTER],
        ),
    )
}

/// 503, for the routes without a bearer token that use the store.
pub struct Unavailable;

impl IntoResponses for Unavailable {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([unavailable()])
    }
}

/// 401 and 503: every route that takes `Authorization: Bearer`.
pub struct BearerErrors;

impl IntoResponses for BearerErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            (
                "401".into(),
                error_response(
                    "`unauthorized` (missing, malformed or invalid bearer token), \
                     `token_expired`, `token_revoked` (its login was ended: logout or a \
                     replayed refresh token) or `account_not_found` (the token's account no \
                     longer exists).",
                    &[("WWW-Authenticate", "`Bearer`.")],
                ),
            ),
            unavailable(),
        ])
    }
}

/// 400, 413 and 415: every route that reads a JSON body. (422 `invalid_body`, a body that is
/// JSON but not of the schema, is listed on each route with its own codes.)
pub struct JsonBodyErrors;

impl IntoResponses for JsonBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            (
                "400".into(),
                error_response(
                    "`invalid_json`: the body is not JSON; `invalid_body`: it could not be read.",
                    &[],
                ),
            ),
            (
                "413".into(),
                error_response(
                    "`payload_too_large`: the body is over `--max-body-bytes` (8 MiB), or an \
                     upload has more than `--max-samples-per-request` samples (10,000).",
                    &[],
                ),
            ),
            (
                "415".into(),
                error_response(
                    "`unsupported_media_type`: `Content-Type` is not `application/json` (or \
                     `+json`).",
                    &[],
                ),
            ),
        ])
    }
}
