//! The OpenAPI document (`GET /api/openapi.json`): valid OpenAPI 3.1, listing every REST route
//! the server serves and nothing else, and true to what the server answers: a scenario
//! through every operation checks each response's status, content type and body against it.
//!
//! Adding a route: annotate it and register it with `routes!` (src/http/openapi.rs), add it
//! to [`ROUTES`], and give the scenario a step that gets a 2xx from it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, spawn_app, spawn_app_with};

/// Every REST route: method and path as the document writes them. The WebSocket
/// (`/api/v1/ws`, AsyncAPI in protocol/) and the dashboard's files are not REST routes.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/signup"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/user/profile"),
    ("DELETE", "/api/v1/user"),
    ("GET", "/api/v1/export"),
    ("POST", "/api/v1/health-data"),
    ("GET", "/api/v1/health-data"),
    ("POST", "/api/v1/health-data/delete"),
    ("DELETE", "/api/v1/health-data/{id}"),
    ("GET", "/api/v1/export/fhir"),
    ("GET", "/api/v1/export/openmhealth"),
    ("GET", "/api/v1/export/csv"),
    ("POST", "/api/v1/import/openmhealth"),
    ("GET", "/api/v1/changes"),
    ("POST", "/api/v1/analyses"),
    ("GET", "/api/v1/analyses"),
    ("GET", "/api/v1/analyses/{id}"),
    ("POST", "/api/v1/insights"),
    ("GET", "/api/v1/insights"),
    ("GET", "/api/v1/insights/{id}"),
    ("POST", "/api/v1/shares"),
    ("GET", "/api/v1/shares"),
    ("DELETE", "/api/v1/shares/{id}"),
    ("GET", "/api/v1/audit"),
    ("POST", "/api/v1/imports"),
    ("GET", "/api/v1/imports/{id}"),
    ("POST", "/api/v1/imports/{id}/rerun"),
    ("POST", "/api/v1/admin/users/{user_id}/disconnect"),
    ("GET", "/api/health"),
    ("GET", "/api/ready"),
    ("GET", "/metrics"),
    ("GET", "/api/openapi.json"),
];

/// The admin (`--admin-user-ids`).
const BOSS: uuid::Uuid = uuid::Uuid::from_u128(0xb055);

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    let resp = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let doc: Value = resp.json().await.expect("the document is JSON");
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(clarity::http::openapi::document()).unwrap(),
        "served as built"
    );
    doc
}

/// `(METHOD, path)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");

    // The OpenAPI Initiative's schema of 3.1 documents (tests/fixtures/README.md).
    let oas: Value = serde_json::from_str(include_str!("../fixtures/openapi-3.1-schema.json"))
        .expect("fixture is JSON");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&oas)
        .expect("the OpenAPI 3.1 schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "not OpenAPI 3.1: {errors:#?}");

    // Every schema is JSON Schema 2020-12 (compiles, its references resolve).
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in schemas.keys() {
        schema_validator(
            &doc,
            &json!({"$ref": format!("#/components/schemas/{name}")}),
        )
        .unwrap_or_else(|e| panic!("components/schemas/{name}: {e}"));
    }
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("reference outside the component schemas: {r}"));
        assert!(schemas.contains_key(name), "dangling reference {r}");
    }

    // Operations: unique ids, a tag, the bearer scheme where secured, a 2xx.
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            assert!(op["tags"][0].is_string(), "{method} {path} has no tag");
            if let Some(security) = op.get("security") {
                assert_eq!(security, &json!([{"bearer": []}]), "{method} {path}");
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} documents no success"
            );
            for (status, r) in responses {
                if status != "204" {
                    assert!(
                        r["content"].is_object(),
                        "{method} {path} {status}: no body"
                    );
                }
            }
        }
    }
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"]),
        (&json!("http"), &json!("bearer"))
    );

    // The stored documents and sample input are the protocol's schemas.
    for (name, field) in [
        ("Analysis", "analysis_id"),
        ("Insight", "insight_id"),
        ("SampleInput", "kind"),
    ] {
        assert!(
            schemas[name]["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(field))),
            "{name} is not the protocol's schema: {}",
            schemas[name]
        );
    }
    // `SampleInput` points its kind at the derived `Kind`: they must be the same enum.
    let protocol: Value =
        serde_json::from_str(include_str!("../../protocol/schemas/client/samples.json")).unwrap();
    assert_eq!(schemas["Kind"]["enum"], protocol["$defs"]["kind"]["enum"]);
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_served() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let listed = operations(&doc);
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        listed, expected,
        "the document and ROUTES differ (left: document)"
    );
    for (path, _) in doc["paths"].as_object().unwrap() {
        assert!(
            path.starts_with("/api/") || path == "/metrics",
            "{path} is not REST"
        );
        assert!(path != "/api/v1/ws", "the WebSocket is AsyncAPI's");
    }

    // Served as documented: an operation with `security` refuses a request without a token
    // (so it is routed and really secured); one without answers without one. A method the
    // document does not list for a path is not served (so no route was added beside it).
    let any_id = uuid::Uuid::new_v4().to_string();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let url = app.url(&path.replace("{id}", &any_id));
        for method in METHODS {
            let resp = app
                .http
                .request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &url,
                )
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let www_authenticate = resp.headers().get("www-authenticate").cloned();
            let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or_default();
            let what = format!("{} {path}: {status} {body}", method.to_uppercase());
            match item.get(method) {
                None => assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}"),
                Some(op) if op.get("security").is_some() => {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
                    assert_eq!(www_authenticate.unwrap(), "Bearer", "{what}");
                }
                Some(_) => {
                    assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}");
                    assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
                    assert_ne!(body["error"]["code"], "not_found", "{what}");
                }
            }
        }
    }
}

/// A validator of `schema` whose `#/components/...` references resolve in `doc`.
fn schema_validator(doc: &Value, schema: &Value) -> Result<jsonschema::Validator, String> {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| e.to_string())
}

/// Checks real responses against the document and remembers which operations answered 2xx.
struct Checker {
    doc: Value,
    validators: Mutex<HashMap<String, jsonschema::Validator>>,
    succeeded: Mutex<BTreeSet<(String, String)>>,
    checked: Mutex<usize>,
}

/// What the server answered.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

enum Body {
    Empty,
    Json(Value),
    Raw(&'static str, String),
}

impl Checker {
    async fn new(app: &TestApp) -> Checker {
        Checker {
            doc: document(app).await,
            validators: Mutex::default(),
            succeeded: Mutex::default(),
            checked: Mutex::default(),
        }
    }

    /// [`Checker::call`] for a path without parameters (the path is its own template).
    async fn at(
        &self,
        app: &TestApp,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> Answer {
        self.call(app, method, path, path, token, body).await
    }

    /// Sends the request, checks the answer against the operation `method template` and
    /// returns it.
    async fn call(
        &self,
        app: &TestApp,
        method: &str,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> Answer {
        let mut req = app.http.request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(path),
        );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Body::Empty => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(ctype, text) => req.header("content-type", ctype).body(text),
        };
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let what = format!("{method} {path} -> {status}: {text}");

        let op = &self.doc["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "undocumented operation: {what}");
        let documented = &op["responses"][status.as_str()];
        assert!(documented.is_object(), "undocumented status: {what}");
        let ctype = headers.get("content-type").map(|v| {
            v.to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim()
                .to_owned()
        });
        let body = match documented.get("content") {
            None => {
                assert!(text.is_empty(), "undocumented body: {what}");
                Value::Null
            }
            Some(content) => {
                let ctype = ctype.unwrap_or_else(|| panic!("no content type: {what}"));
                let media = &content[&ctype];
                assert!(
                    media.is_object(),
                    "undocumented content type {ctype}: {what}"
                );
                // JSON and its `+json` dialects (FHIR's application/fhir+json) are checked as
                // JSON; any other type as the text it is.
                let body = if ctype == "application/json" || ctype.ends_with("+json") {
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {what}"))
                } else {
                    Value::String(text.clone())
                };
                let key = format!("{method} {template} {status} {ctype}");
                let mut validators = self.validators.lock().unwrap();
                let v = validators.entry(key).or_insert_with(|| {
                    schema_validator(&self.doc, &media["schema"]).expect("schema compiles")
                });
                let errors: Vec<String> = v
                    .iter_errors(&body)
                    .map(|e| format!("{e} at {}", e.instance_path))
                    .collect();
                assert!(errors.is_empty(), "not as documented: {errors:#?}\n{what}");
                body
            }
        };
        *self.checked.lock().unwrap() += 1;
        if status.is_success() {
            self.succeeded
                .lock()
                .unwrap()
                .insert((method.to_owned(), template.to_owned()));
        }
        Answer {
            status,
            headers,
            body,
        }
    }
}

#[tokio::test]
async fn responses_are_as_documented() {
    let app = spawn_app_with(|c| {
        c.insights.insight_requests_per_hour = 1;
        c.limits.max_samples_per_request = 100;
        c.auth.admin_user_ids = vec![BOSS.to_string()];
    })
    .await;
    app.account_with_id(BOSS, "boss@example.com").await;
    let boss = app.login("boss@example.com").await.0;
    let api = Checker::new(&app).await;
    let no = None;
    let signup = |email: &str, password: &str| {
        Body::Json(json!({"email": email, "password": password, "display_name": "Ada"}))
    };

    // Accounts and tokens.
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/signup",
            no,
            signup("ada@example.com", PASSWORD),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let owner_id = a.body["user_id"].as_str().unwrap().to_owned();
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/signup",
            no,
            signup("ada@example.com", PASSWORD),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/signup",
            no,
            signup("bob@example.com", "aaaaaaaa"),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/signup",
            no,
            Body::Raw("text/plain", "{}".into()),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/signup",
            no,
            Body::Raw("application/json", "{".into()),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/signup",
            no,
            Body::Json(json!({"email": 1})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    api.at(
        &app,
        "POST",
        "/api/v1/auth/signup",
        no,
        signup("grace@example.com", PASSWORD),
    )
    .await;
    let login =
        |email: &str, password: &str| Body::Json(json!({"email": email, "password": password}));
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/login",
            no,
            login("ada@example.com", "wrong password"),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/login",
            no,
            login("ada@example.com", PASSWORD),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let refresh = a.body["refresh_token"].as_str().unwrap().to_owned();
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/refresh",
            no,
            Body::Json(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let token = a.body["access_token"].as_str().unwrap().to_owned();
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/refresh",
            no,
            Body::Json(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // The replay ended that login (its access tokens too): sign in again.
    let (s, _) = app.get("/api/v1/user/profile", Some(&token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let token = app.login("ada@example.com").await.0;
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/login",
            no,
            login("grace@example.com", PASSWORD),
        )
        .await;
    let grace = a.body["access_token"].as_str().unwrap().to_owned();
    let t = Some(token.as_str());

    let a = api
        .at(&app, "GET", "/api/v1/user/profile", t, Body::Empty)
        .await;
    assert_eq!(
        (a.status, &a.body["display_name"]),
        (StatusCode::OK, &json!("Ada"))
    );
    let a = api
        .at(
            &app,
            "GET",
            "/api/v1/user/profile",
            Some("not a token"),
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Samples.
    let samples = json!({"samples": [
        {"id": "a1", "kind": "activity_count", "start": "2026-11-20T10:00:00+01:00", "value": 400, "source": "watch"},
        {"id": "a2", "kind": "activity_count", "start": "2026-11-20T10:01:00+01:00", "value": 12.5},
        {"id": "s1", "kind": "sleep_stage", "start": "2026-11-20T01:00:00+01:00", "end": "2026-11-20T01:30:00+01:00", "value": "deep"},
        {"id": "h1", "kind": "heart_rate", "start": "2026-11-20T10:00:00+01:00", "value": 999},
        [1, 2],
    ]});
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/health-data",
            t,
            Body::Json(samples.clone()),
        )
        .await;
    assert_eq!((a.status, &a.body["accepted"]), (StatusCode::OK, &json!(3)));
    let a = api
        .at(&app, "POST", "/api/v1/health-data", t, Body::Json(samples))
        .await;
    assert_eq!(a.body["duplicates"], 3);
    let too_many: Vec<Value> = (0..101)
        .map(|i| crate::common::hr(&format!("x{i}"), i, 60))
        .collect();
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/health-data",
            t,
            Body::Json(json!({"samples": too_many})),
        )
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/health-data",
            t,
            Body::Json(json!({"samples": 1})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = api
        .call(
            &app,
            "GET",
            "/api/v1/health-data",
            "/api/v1/health-data?limit=2",
            t,
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let cursor = a.body["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let a = api
        .call(&app, "GET", "/api/v1/health-data", &format!("/api/v1/health-data?limit=2&cursor={cursor}&kind=activity_count&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z"), t, Body::Empty)
        .await;
    assert_eq!(
        (a.status, &a.body["next_cursor"]),
        (StatusCode::OK, &Value::Null)
    );
    for bad in ["limit=0", "kind=steps", "from=yesterday", "cursor=x"] {
        let a = api
            .call(
                &app,
                "GET",
                "/api/v1/health-data",
                &format!("/api/v1/health-data?{bad}"),
                t,
                Body::Empty,
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // Deletes: many (unknown ids reported), one (204, then 404), bad ids (422).
    let doomed =
        json!({"samples": [crate::common::hr("d1", 300, 60), crate::common::hr("d2", 301, 61)]});
    let a = api
        .at(&app, "POST", "/api/v1/health-data", t, Body::Json(doomed))
        .await;
    assert_eq!(a.body["accepted"], 2);
    let del = "/api/v1/health-data/delete";
    let a = api
        .at(
            &app,
            "POST",
            del,
            t,
            Body::Json(json!({"ids": ["d1", "nope"]})),
        )
        .await;
    assert_eq!((a.status, &a.body["deleted"]), (StatusCode::OK, &json!(1)));
    let a = api
        .at(&app, "POST", del, t, Body::Json(json!({"ids": []})))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let one = "/api/v1/health-data/{id}";
    for want in [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND] {
        let a = api
            .call(
                &app,
                "DELETE",
                one,
                "/api/v1/health-data/d2",
                t,
                Body::Empty,
            )
            .await;
        assert_eq!(a.status, want);
    }

    // Interchange formats: exports of those samples, and an Open mHealth import.
    for (path, status) in [
        ("/api/v1/export/fhir", 200),
        ("/api/v1/export/fhir?format=ndjson", 200),
        ("/api/v1/export/fhir?format=xml", 400),
        ("/api/v1/export/openmhealth?format=ndjson", 200),
        ("/api/v1/export/openmhealth?kind=mood", 400),
        ("/api/v1/export/csv?kind=activity_count", 200),
        ("/api/v1/export/csv", 200),
        ("/api/v1/export/csv?format=wide", 400),
    ] {
        let template = path.split('?').next().unwrap();
        let a = api.call(&app, "GET", template, path, t, Body::Empty).await;
        assert_eq!(a.status.as_u16(), status, "{path}");
    }
    let a = api
        .at(&app, "GET", "/api/v1/export/openmhealth", t, Body::Empty)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let points = a.body.clone();
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/import/openmhealth",
            t,
            Body::Json(points),
        )
        .await;
    // The caller's own points again: the sleep stage (the one mapped kind) is a duplicate.
    assert_eq!(
        (a.status, &a.body["duplicates"]),
        (StatusCode::OK, &json!(1))
    );
    for (ctype, text, status) in [
        ("application/x-ndjson", "nope", StatusCode::BAD_REQUEST),
        ("text/csv", "a,b", StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        let a = api
            .at(
                &app,
                "POST",
                "/api/v1/import/openmhealth",
                t,
                Body::Raw(ctype, text.into()),
            )
            .await;
        assert_eq!(a.status, status, "{ctype}");
    }

    // The change feed: a page, the next (empty) one, a damaged token and a foreign one.
    let a = api
        .call(
            &app,
            "GET",
            "/api/v1/changes",
            "/api/v1/changes?since=0&limit=2",
            t,
            Body::Empty,
        )
        .await;
    assert_eq!((a.status, &a.body["more"]), (StatusCode::OK, &json!(true)));
    // Not `token`: `t` borrows the access token by that name, and later calls need it.
    let next_token = a.body["next_token"].as_str().unwrap().to_owned();
    let a = api
        .call(
            &app,
            "GET",
            "/api/v1/changes",
            &format!("/api/v1/changes?since={next_token}"),
            t,
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = api
        .call(
            &app,
            "GET",
            "/api/v1/changes",
            "/api/v1/changes?since=bm9wZQ",
            t,
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = api
        .call(
            &app,
            "GET",
            "/api/v1/changes",
            &format!("/api/v1/changes?since={next_token}"),
            Some(&grace),
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::GONE, "another user's token");

    // Analyses and insights (Grace has no data).
    let a = api
        .at(&app, "POST", "/api/v1/analyses", Some(&grace), Body::Empty)
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = api
        .at(&app, "POST", "/api/v1/analyses", t, Body::Empty)
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let analysis_id = a.body["analysis_id"].as_str().unwrap().to_owned();
    let a = api
        .at(&app, "POST", "/api/v1/analyses", t, Body::Empty)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    // 201, or 200 when the insight the new analysis started is stored already.
    let a = api
        .at(&app, "POST", "/api/v1/insights", t, Body::Empty)
        .await;
    assert!(a.status.is_success(), "{}", a.status);
    let insight_id = a.body["insight_id"].as_str().unwrap().to_owned();
    let a = api
        .at(&app, "POST", "/api/v1/insights", t, Body::Empty)
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.contains_key("retry-after"));
    for (kind, id) in [("analyses", &analysis_id), ("insights", &insight_id)] {
        let list = format!("/api/v1/{kind}");
        let one = format!("/api/v1/{kind}/{{id}}");
        let a = api
            .call(
                &app,
                "GET",
                &list,
                &format!("{list}?limit=1&from=2026-11-01T00:00:00Z"),
                t,
                Body::Empty,
            )
            .await;
        assert_eq!(a.body[kind].as_array().unwrap().len(), 1);
        let a = api
            .call(
                &app,
                "GET",
                &list,
                &format!("{list}?user_id={owner_id}"),
                Some(&grace),
                Body::Empty,
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        let a = api
            .call(
                &app,
                "GET",
                &list,
                &format!("{list}?limit=501"),
                t,
                Body::Empty,
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        let a = api
            .call(&app, "GET", &one, &format!("{list}/{id}"), t, Body::Empty)
            .await;
        assert_eq!(a.status, StatusCode::OK);
        let a = api
            .call(
                &app,
                "GET",
                &one,
                &format!("{list}/{}", uuid::Uuid::new_v4()),
                t,
                Body::Empty,
            )
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        let a = api
            .call(
                &app,
                "GET",
                &one,
                &format!("{list}/{id}?user_id=me"),
                t,
                Body::Empty,
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        let a = api
            .call(
                &app,
                "GET",
                &one,
                &format!("{list}/{id}?user_id={owner_id}"),
                Some(&grace),
                Body::Empty,
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
    }

    // Shares.
    let share =
        |email: &str, scope: &str| Body::Json(json!({"grantee_email": email, "scope": scope}));
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/shares",
            t,
            share("grace@example.com", "insights"),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let share_id = a.body["share_id"].as_str().unwrap().to_owned();
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/shares",
            t,
            share("grace@example.com", "insights"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/shares",
            t,
            share("nobody@example.com", "insights"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/shares",
            t,
            share("grace@example.com", "samples"),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = api
        .call(
            &app,
            "GET",
            "/api/v1/insights/{id}",
            &format!("/api/v1/insights/{insight_id}?user_id={owner_id}"),
            Some(&grace),
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = api
        .at(&app, "GET", "/api/v1/shares", Some(&grace), Body::Empty)
        .await;
    assert_eq!(a.body["received"].as_array().unwrap().len(), 1);
    let a = api
        .call(
            &app,
            "DELETE",
            "/api/v1/shares/{id}",
            &format!("/api/v1/shares/{share_id}"),
            t,
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = api
        .call(
            &app,
            "DELETE",
            "/api/v1/shares/{id}",
            &format!("/api/v1/shares/{share_id}"),
            t,
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // Audit log, admin, logout.
    let a = api
        .call(
            &app,
            "GET",
            "/api/v1/audit",
            "/api/v1/audit?limit=5",
            t,
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = api
        .call(
            &app,
            "GET",
            "/api/v1/audit",
            "/api/v1/audit?cursor=zz",
            t,
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // Raw samples are never shared: `user_id` is no parameter of the history (400).
    let foreign = format!("/api/v1/health-data?user_id={}", uuid::Uuid::new_v4());
    let a = api
        .call(&app, "GET", "/api/v1/health-data", &foreign, t, Body::Empty)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let disconnect = "/api/v1/admin/users/{user_id}/disconnect";
    let own = format!("/api/v1/admin/users/{owner_id}/disconnect");
    let a = api
        .call(&app, "POST", disconnect, &own, Some(&boss), Body::Empty)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let a = api
        .call(
            &app,
            "POST",
            disconnect,
            &own,
            Some(grace.as_str()),
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let unknown = format!("/api/v1/admin/users/{}/disconnect", uuid::Uuid::new_v4());
    let a = api
        .call(&app, "POST", disconnect, &unknown, Some(&boss), Body::Empty)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/login",
            no,
            login("ada@example.com", PASSWORD),
        )
        .await;
    let (access, refresh) = (
        a.body["access_token"].as_str().unwrap().to_owned(),
        a.body["refresh_token"].as_str().unwrap().to_owned(),
    );
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/auth/logout",
            Some(access.as_str()),
            Body::Json(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);

    // Imports: a one-record export.xml, then its job; a body that is no export.
    let export = "<?xml version=\"1.0\"?>\n<HealthData locale=\"en_US\">\n <Record type=\"HKQuantityTypeIdentifierHeartRate\" sourceName=\"W\" unit=\"count/min\" startDate=\"2024-03-10 08:00:00 -0500\" endDate=\"2024-03-10 08:00:00 -0500\" value=\"61\"/>\n</HealthData>\n";
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/imports",
            t,
            Body::Raw("application/xml", export.into()),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let import = a.body["import_id"].as_str().unwrap().to_owned();
    let a = api
        .call(
            &app,
            "GET",
            "/api/v1/imports/{id}",
            &format!("/api/v1/imports/{import}"),
            t,
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = api
        .call(
            &app,
            "GET",
            "/api/v1/imports/{id}",
            "/api/v1/imports/nope",
            t,
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // A re-run of the kept upload once its import ended; of one that is not kept.
    crate::import_apple::finished(&app, token.as_str(), &import).await;
    let a = api
        .call(
            &app,
            "POST",
            "/api/v1/imports/{id}/rerun",
            &format!("/api/v1/imports/{import}/rerun"),
            t,
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    // One import per account runs at a time (409 `import_running` meanwhile).
    crate::import_apple::finished(&app, token.as_str(), &import).await;
    let a = api
        .call(
            &app,
            "POST",
            "/api/v1/imports/{id}/rerun",
            &format!("/api/v1/imports/{}/rerun", uuid::Uuid::now_v7()),
            t,
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // The account: an export, then an erasure (a wrong password first).
    let a = api.at(&app, "GET", "/api/v1/export", t, Body::Empty).await;
    assert_eq!(a.status, StatusCode::OK);
    let wrong = Body::Json(json!({"password": "not her password"}));
    let a = api
        .at(&app, "DELETE", "/api/v1/user", Some(grace.as_str()), wrong)
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = api
        .at(
            &app,
            "DELETE",
            "/api/v1/user",
            Some(grace.as_str()),
            Body::Empty,
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);

    // Operations.
    for path in ["/api/health", "/api/ready", "/metrics", "/api/openapi.json"] {
        let a = api.call(&app, "GET", path, path, no, Body::Empty).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
    }
    // The store closed (as on shutdown): readiness and writes answer 503.
    app.app.store.close().await;
    let a = api.at(&app, "GET", "/api/ready", no, Body::Empty).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    let a = api
        .at(
            &app,
            "POST",
            "/api/v1/health-data",
            t,
            Body::Json(json!({"samples": [crate::common::hr("late", 1, 60)]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.headers.contains_key("retry-after"));

    // Every operation answered with a documented success at least once.
    let succeeded = api.succeeded.lock().unwrap().clone();
    let missing: Vec<_> = operations(&api.doc)
        .difference(&succeeded)
        .cloned()
        .collect();
    assert!(missing.is_empty(), "no 2xx seen from {missing:?}");
    eprintln!("{} responses checked", api.checked.lock().unwrap());
}
