//! Insights through the server, with Gemini played by a local mock that speaks the
//! Generative Language API's wire format (JSON and SSE). Assertions cover what the user gets
//! and what the mock received.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::StatusCode as Http;
use serde_json::{Value, json};

use crate::common::{Session, TestApp, Ws, spawn_app, spawn_app_with};

pub(crate) const KEY: &str = "test-gemini-key-123";

/// What the mock answers next.
#[derive(Clone)]
pub(crate) enum Answer {
    Json(u16, Value, Option<&'static str>),
    Sse(Vec<Value>),
    Hang(Duration),
    /// The model's text, written from the request (the prompt): a model that cites it.
    From(fn(&Value) -> String),
}

#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub path: String,
    pub key: Option<String>,
    pub body: Value,
}

#[derive(Clone, Default)]
pub(crate) struct Mock {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    /// What it answers when no answer is queued (else a 500).
    always: Arc<Mutex<Option<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    fn push(&self, a: Answer) {
        self.answers.lock().unwrap().push_back(a);
    }
    pub(crate) fn always(&self, a: Answer) {
        *self.always.lock().unwrap() = Some(a);
    }
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(
    State(mock): State<Mock>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    mock.seen.lock().unwrap().push(Seen {
        path: rest,
        key: headers
            .get("x-goog-api-key")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: body.clone(),
    });
    let answer = mock.answers.lock().unwrap().pop_front();
    let answer = answer.or_else(|| mock.always.lock().unwrap().clone());
    match answer.unwrap_or(Answer::Json(500, json!({"error": {"code": 500}}), None)) {
        Answer::From(write) => (
            StatusCode::OK,
            axum::Json(reply_with(&write(&body), "STOP")),
        )
            .into_response(),
        Answer::Json(status, body, retry_after) => {
            let mut resp =
                (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
            if let Some(r) = retry_after {
                resp.headers_mut().insert("retry-after", r.parse().unwrap());
            }
            resp
        }
        Answer::Sse(chunks) => {
            let text: String = chunks
                .iter()
                .map(|c| format!("data: {c}\r\n\r\n").replace("\r\n", "\n"))
                .collect();
            ([("content-type", "text/event-stream")], text).into_response()
        }
        Answer::Hang(d) => {
            tokio::time::sleep(d).await;
            (StatusCode::OK, axum::Json(reply("late"))).into_response()
        }
    }
}

pub(crate) async fn start_mock() -> (Mock, String) {
    let mock = Mock::default();
    let router = axum::Router::new()
        .route("/v1beta/models/{*rest}", axum::routing::post(handle))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (mock, format!("http://{addr}"))
}

fn answer_text(summary: &str) -> String {
    json!({"summary": summary, "key_points": ["Sleep was 7h 10m a night."], "recommendations": ["Keep a fixed wake time."]}).to_string()
}

/// A `GenerateContentResponse` carrying `text`.
pub(crate) fn reply_with(text: &str, finish: &str) -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish, "index": 0}],
        "usageMetadata": {"promptTokenCount": 300, "candidatesTokenCount": 60},
        "modelVersion": "gemini-test-001"
    })
}

fn reply(summary: &str) -> Value {
    reply_with(&answer_text(summary), "STOP")
}

pub(crate) async fn with_gemini(
    base: &str,
    tune: impl FnOnce(&mut clarity::config::Config),
) -> TestApp {
    let base = base.to_owned();
    spawn_app_with(move |c| {
        c.insights.api_key = Some(KEY.to_string().into());
        c.insights.base_url = base;
        c.insights.model = "gemini-test".into();
        c.insights.stream = false;
        c.insights.timeout_ms = 2_000;
        tune(c);
    })
    .await
}

/// A user with 90 minutes of activity, and an open session.
async fn user_with_data(app: &TestApp) -> (Session, Ws) {
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    add_minutes(&mut ws, 0, 90).await;
    (user, ws)
}

async fn add_minutes(ws: &mut Ws, from: i64, to: i64) {
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-27T06:00:00+01:00").unwrap();
    let samples: Vec<Value> = (from..to)
        .map(|m| {
            json!({"id": format!("m{m}"), "kind": "activity_count",
            "start": (t0 + chrono::Duration::minutes(m)).to_rfc3339(), "value": (m * 7) % 300})
        })
        .collect();
    ws.send(&json!({"type": "samples", "seq": from, "samples": samples}))
        .await;
    ws.recv_type("ack").await;
}

async fn post_insight(app: &TestApp, user: &Session) -> (Http, Value) {
    app.post("/api/v1/insights", &json!({}), Some(&user.access))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_answers_through_its_real_wire_format_without_personal_data() {
    let (mock, base) = start_mock().await;
    mock.push(Answer::Json(200, reply("A steady week."), None));
    let app = with_gemini(&base, |_| {}).await;
    let (user, mut ws) = user_with_data(&app).await;
    let (s, i) = post_insight(&app, &user).await;
    assert_eq!(s, Http::CREATED, "{i}");
    assert_eq!(
        (i["generator"].as_str(), i["model"].as_str()),
        (Some("gemini"), Some("gemini-test-001"))
    );
    assert_eq!(i["summary"], "A steady week.");
    assert!(i["fallback_reason"].is_null());
    assert_eq!(ws.recv_type("insight").await["insight_id"], i["insight_id"]);

    let seen = mock.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "gemini-test:generateContent");
    assert_eq!(seen[0].key.as_deref(), Some(KEY));
    let gc = &seen[0].body["generationConfig"];
    assert_eq!(gc["responseMimeType"], "application/json");
    assert_eq!(
        gc["responseSchema"]["required"],
        json!(["summary", "key_points", "recommendations"])
    );
    let sent = seen[0].body.to_string();
    for personal in [user.user_id.to_string(), user.email.clone()] {
        assert!(!sent.contains(&personal), "the prompt carries {personal}");
    }
    assert!(!sent.contains("\"m1\""), "no sample rows in the prompt");
    // Asking again for the same data gives the stored insight, without a second call.
    let (s, again) = post_insight(&app, &user).await;
    assert_eq!((s, &again["insight_id"]), (Http::OK, &i["insight_id"]));
    assert_eq!(mock.seen().len(), 1);
    let (s, list) = app.get("/api/v1/insights", Some(&user.access)).await;
    assert_eq!(s, Http::OK);
    assert_eq!(list["insights"][0]["insight_id"], i["insight_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_text_goes_out_as_deltas_before_the_insight() {
    let (mock, base) = start_mock().await;
    let text = answer_text("Streamed week.");
    let (a, b) = text.split_at(text.len() / 2);
    let mut first = reply_with(a, "STOP");
    first["candidates"][0]
        .as_object_mut()
        .unwrap()
        .remove("finishReason");
    mock.push(Answer::Sse(vec![first, reply_with(b, "STOP")]));
    let app = with_gemini(&base, |c| c.insights.stream = true).await;
    let (user, mut ws) = user_with_data(&app).await;
    ws.send(&json!({"type": "analyze"})).await;
    let mut deltas = String::new();
    let insight = loop {
        let v = ws.recv().await;
        match v["type"].as_str() {
            Some("insight_delta") => deltas.push_str(v["text"].as_str().unwrap()),
            Some("insight") => break v,
            _ => {}
        }
    };
    assert_eq!(deltas, text, "the deltas add up to the model's answer");
    assert_eq!(insight["generator"], "gemini");
    assert_eq!(insight["summary"], "Streamed week.");
    assert_eq!(mock.seen()[0].path, "gemini-test:streamGenerateContent");
    let (_, list) = app.get("/api/v1/insights", Some(&user.access)).await;
    assert_eq!(list["insights"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_after_retry_after() {
    let (mock, base) = start_mock().await;
    mock.push(Answer::Json(
        429,
        json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}),
        Some("1"),
    ));
    mock.push(Answer::Json(200, reply("After a wait."), None));
    let app = with_gemini(&base, |_| {}).await;
    let (user, _ws) = user_with_data(&app).await;
    let started = Instant::now();
    let (s, i) = post_insight(&app, &user).await;
    assert_eq!(s, Http::CREATED, "{i}");
    assert_eq!(i["generator"], "gemini");
    assert_eq!(mock.seen().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After honoured"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_fall_back_to_local_and_open_the_breaker() {
    let (mock, base) = start_mock().await;
    let app = with_gemini(&base, |c| {
        c.insights.max_attempts = 2;
        c.insights.breaker_failures = 2;
    })
    .await;
    let (user, mut ws) = user_with_data(&app).await;
    // Every answer is a 500 (the mock's default).
    let (s, i) = post_insight(&app, &user).await;
    assert_eq!(s, Http::CREATED, "{i}");
    assert_eq!(i["generator"], "local");
    assert!(
        i["fallback_reason"].as_str().unwrap().contains("500"),
        "{i}"
    );
    assert!(!i["summary"].as_str().unwrap().is_empty());
    assert_eq!(mock.seen().len(), 2, "one retry");
    // Two consecutive failures opened the breaker: the next insight does not call the API.
    add_minutes(&mut ws, 90, 100).await;
    let (s, i) = post_insight(&app, &user).await;
    assert_eq!(s, Http::CREATED, "{i}");
    assert!(
        i["fallback_reason"]
            .as_str()
            .unwrap()
            .contains("circuit breaker"),
        "{i}"
    );
    assert_eq!(mock.seen().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_safety_blocks_and_malformed_answers_fall_back_without_hanging() {
    let (mock, base) = start_mock().await;
    let app = with_gemini(&base, |c| {
        c.insights.timeout_ms = 500;
        c.insights.max_attempts = 1;
        c.insights.breaker_failures = 100;
    })
    .await;
    let (user, mut ws) = user_with_data(&app).await;
    let cases = [
        (Answer::Hang(Duration::from_secs(3)), "timed out"),
        (Answer::Json(200, reply_with("", "SAFETY"), None), "safety"),
        (
            Answer::Json(200, reply_with("{\"summary\": \"cut", "MAX_TOKENS"), None),
            "MAX_TOKENS",
        ),
        (
            Answer::Json(200, reply_with("not json at all", "STOP"), None),
            "not JSON",
        ),
        (
            Answer::Json(
                200,
                reply_with(
                    "{\"summary\": \"\", \"key_points\": [], \"recommendations\": []}",
                    "STOP",
                ),
                None,
            ),
            "summary is empty",
        ),
    ];
    for (k, (answer, reason)) in cases.into_iter().enumerate() {
        mock.push(answer);
        add_minutes(&mut ws, 100 + k as i64 * 10, 110 + k as i64 * 10).await;
        let started = Instant::now();
        let (s, i) = post_insight(&app, &user).await;
        assert_eq!(s, Http::CREATED, "{i}");
        assert_eq!(i["generator"], "local", "case {reason}");
        assert!(
            i["fallback_reason"].as_str().unwrap().contains(reason),
            "{reason}: {i}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{reason}: no hang"
        );
        assert_eq!(mock.seen().len(), k + 1, "{reason}: not retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fallback_a_failure_is_an_insight_failed_event() {
    let (mock, base) = start_mock().await;
    let app = with_gemini(&base, |c| {
        c.insights.fallback = false;
        c.insights.max_attempts = 1;
    })
    .await;
    let (user, mut ws) = user_with_data(&app).await;
    ws.send(&json!({"type": "analyze"})).await;
    let failed = ws.recv_type("insight_failed").await;
    assert!(
        failed["reason"].as_str().unwrap().contains("500"),
        "{failed}"
    );
    let (s, b) = post_insight(&app, &user).await;
    assert_eq!(s, Http::SERVICE_UNAVAILABLE, "{b}");
    let (_, list) = app.get("/api/v1/insights", Some(&user.access)).await;
    assert_eq!(
        list["insights"].as_array().unwrap().len(),
        0,
        "nothing made up"
    );
    assert!(!mock.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_week_gives_an_analysis_then_a_local_insight_and_requests_are_rate_limited() {
    let app = spawn_app_with(|c| c.insights.insight_requests_per_hour = 2).await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-15T00:00:00+01:00").unwrap();
    for day in 0..7 {
        let samples: Vec<Value> = (0..1440)
            .map(|m| {
                let h = m as f64 / 60.0;
                let v = (250.0 + 250.0 * ((h - 15.0) / 24.0 * std::f64::consts::TAU).cos()).round();
                json!({"id": format!("d{day}-{m}"), "kind": "activity_count",
                    "start": (t0 + chrono::Duration::minutes(day * 1440 + m)).to_rfc3339(), "value": v})
            })
            .collect();
        ws.send(&json!({"type": "samples", "seq": day, "samples": samples}))
            .await;
        ws.recv_type("ack").await;
    }
    ws.send(&json!({"type": "analyze"})).await;
    let mut seen_analysis = None;
    let insight = loop {
        let v = ws.recv().await;
        if v["type"] == "analysis" && v["trigger"] == "request" {
            seen_analysis = Some(v);
        } else if v["type"] == "insight"
            && seen_analysis
                .as_ref()
                .is_some_and(|a| a["analysis_id"] == v["analysis_id"])
        {
            break v;
        }
    };
    assert_eq!(insight["generator"], "local");
    assert!(insight["model"].is_null());
    eprintln!(
        "local insight: {} {} {}",
        insight["summary"], insight["key_points"], insight["recommendations"]
    );
    assert!(
        insight["summary"]
            .as_str()
            .unwrap()
            .contains("a night on average"),
        "{insight}"
    );
    assert!(insight["key_points"].as_array().unwrap().len() >= 3);
    assert_eq!(insight["features"]["days"], 7.0);
    crate::common::claims::assert_truthful(
        "streamed week",
        &insight,
        seen_analysis.as_ref().unwrap(),
        None,
    );
    let id = insight["insight_id"].as_str().unwrap();
    let (s, one) = app
        .get(&format!("/api/v1/insights/{id}"), Some(&user.access))
        .await;
    assert_eq!((s, &one["summary"]), (Http::OK, &insight["summary"]));
    let other = app.user().await;
    let (s, _) = app
        .get(&format!("/api/v1/insights/{id}"), Some(&other.access))
        .await;
    assert_eq!(s, Http::NOT_FOUND);

    for _ in 0..2 {
        let (s, _) = post_insight(&app, &user).await;
        assert!(s.is_success());
    }
    let (s, b) = post_insight(&app, &user).await;
    assert_eq!(s, Http::TOO_MANY_REQUESTS, "{b}");
    assert!(b["error"]["retry_after_ms"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn without_a_key_the_local_generator_is_used() {
    let app = spawn_app().await;
    let (user, _ws) = user_with_data(&app).await;
    let (s, i) = post_insight(&app, &user).await;
    assert_eq!(s, Http::CREATED, "{i}");
    assert_eq!(i["generator"], "local");
    assert!(i["fallback_reason"].is_null());
    assert_eq!(i["prompt_version"], "insight-v5");
}

/// Uploads whole days of minute activity from `t0`: a daily curve peaking at `peak_hour(day)`.
pub(crate) async fn upload_days(
    ws: &mut Ws,
    t0: chrono::DateTime<chrono::FixedOffset>,
    days: std::ops::Range<i64>,
    peak_hour: impl Fn(i64) -> f64,
) {
    for day in days {
        let peak = peak_hour(day);
        let samples: Vec<Value> = (0..1440)
            .map(|m| {
                let h = m as f64 / 60.0;
                let v = (250.0 + 250.0 * ((h - peak) / 24.0 * std::f64::consts::TAU).cos()).round();
                json!({"id": format!("d{day}-{m}"), "kind": "activity_count",
                    "start": (t0 + chrono::Duration::minutes(day * 1440 + m)).to_rfc3339(), "value": v})
            })
            .collect();
        ws.send(&json!({"type": "samples", "seq": day, "samples": samples}))
            .await;
        ws.recv_type("ack").await;
    }
}

/// Three regular days, an insight, then three days whose peak moves every day, and a second
/// insight: its interdaily stability is lower than the first's. Old dates (October), so no
/// completed day brings an automatic insight. Returns the two insights.
/// The stored analysis an insight was written from.
async fn analysis_of(app: &TestApp, user: &Session, insight: &Value) -> Value {
    let id = insight["analysis_id"].as_str().unwrap();
    let (s, a) = app
        .get(&format!("/api/v1/analyses/{id}"), Some(&user.access))
        .await;
    assert_eq!(s, Http::OK, "{a}");
    a
}

async fn two_insights_with_a_drop_in_stability(app: &TestApp) -> (Value, Value) {
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-10-05T00:00:00+02:00").unwrap();
    upload_days(&mut ws, t0, 0..3, |_| 15.0).await;
    let (s, first) = post_insight(app, &user).await;
    assert_eq!(s, Http::CREATED, "{first}");
    upload_days(&mut ws, t0, 3..6, |d| [3.0, 11.0, 19.0][(d % 3) as usize]).await;
    let (s, second) = post_insight(app, &user).await;
    assert_eq!(s, Http::CREATED, "{second}");
    // The local generator's texts say only what their analyses hold (a model's are the
    // mock's canned text here).
    if first["generator"] == "local" {
        let a = analysis_of(app, &user, &first).await;
        crate::common::claims::assert_truthful("first week", &first, &a, None);
        let a = analysis_of(app, &user, &second).await;
        crate::common::claims::assert_truthful(
            "second week",
            &second,
            &a,
            Some(&first["features"]),
        );
    }
    (first, second)
}

fn texts(insight: &Value) -> Vec<String> {
    let mut all = vec![insight["summary"].as_str().unwrap().to_owned()];
    for list in ["key_points", "recommendations"] {
        all.extend(
            insight[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned()),
        );
    }
    all
}

#[tokio::test]
async fn a_three_minute_window_says_it_is_too_short_and_never_prints_zero_durations() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-02T06:00:00+01:00").unwrap();
    let samples: Vec<Value> = (0..3)
        .map(|m| {
            json!({"id": format!("s{m}"), "kind": "activity_count",
            "start": (t0 + chrono::Duration::minutes(m)).to_rfc3339(), "value": 40 + m})
        })
        .collect();
    ws.send(&json!({"type": "samples", "seq": 1, "samples": samples}))
        .await;
    ws.recv_type("ack").await;
    let (s, i) = post_insight(&app, &user).await;
    assert_eq!(s, Http::CREATED, "{i}");
    let all = texts(&i);
    for t in &all {
        for zero in ["0h 00m", " 0 minutes", "0.0 days", " 0%"] {
            assert!(!t.contains(zero), "{t:?} reads as zero ({zero})");
        }
    }
    let summary = i["summary"].as_str().unwrap();
    assert!(summary.contains("3 minutes"), "{summary}");
    let analysis = analysis_of(&app, &user, &i).await;
    crate::common::claims::assert_truthful("three minutes", &i, &analysis, None);
    assert!(summary.contains("too short"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_interdaily_stability_is_phrased_as_a_change_not_a_value() {
    let app = spawn_app().await;
    let (first, second) = two_insights_with_a_drop_in_stability(&app).await;
    let before = first["features"]["interdaily_stability"].as_f64().unwrap();
    let now = second["features"]["interdaily_stability"].as_f64().unwrap();
    assert!(now < before - 0.05, "IS {before} -> {now}");
    let all = texts(&second);
    let expected = format!("{:.2} lower than in your previous report", before - now);
    assert!(
        all.iter()
            .any(|t| t.contains("interdaily stability") && t.contains(&expected)),
        "no {expected:?} in {all:#?}"
    );
    for t in &all {
        assert!(
            !t.contains("stability -") && !t.contains("stability +"),
            "a signed change reads as a value: {t:?}"
        );
    }
    // The stored features name the change a delta too.
    let delta = second["features"]["change"]["interdaily_stability_delta"]
        .as_f64()
        .unwrap_or_else(|| panic!("no labelled delta: {}", second["features"]));
    assert!((delta - (now - before)).abs() < 0.002, "{delta}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_labels_changes_as_differences_from_the_previous_report() {
    let (mock, base) = start_mock().await;
    mock.push(Answer::Json(200, reply("First."), None));
    mock.push(Answer::Json(200, reply("Second."), None));
    let app = with_gemini(&base, |_| {}).await;
    let (_, second) = two_insights_with_a_drop_in_stability(&app).await;
    assert_eq!(second["generator"], "gemini", "{second}");
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    let prompt = seen[1].body["contents"][0]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    // The feature values themselves are there, once, under their own names.
    let now = second["features"]["interdaily_stability"].as_f64().unwrap();
    assert!(
        prompt.contains(&format!("\"interdaily_stability\": {now}")),
        "{prompt}"
    );
    // A change is never a bare signed number under the measure's name.
    assert!(
        !prompt.contains("\"interdaily_stability\": -"),
        "a delta under the value's name: {prompt}"
    );
    let delta = second["features"]["change"]["interdaily_stability_delta"]
        .as_f64()
        .unwrap();
    let line = prompt
        .lines()
        .find(|l| l.contains("interdaily stability") && l.contains("previous report"))
        .unwrap_or_else(|| panic!("no change line in {prompt}"));
    assert!(
        line.contains(&format!("{:.2} lower", -delta)),
        "{line:?} (delta {delta})"
    );
    assert!(prompt.contains("differences"), "{prompt}");
}
