//! OpenTelemetry over OTLP/HTTP from the real binary (`--otlp-endpoint`), into a small
//! receiver here: one `samples` frame carrying a client `traceparent` gives one trace from
//! the frame through the store commit and the ack to the analysis of the day it completed,
//! its insight and both pushes, each span linked to its parent; and no attribute anywhere
//! carries a sample value, the token, the password or the email.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use futures_util::{SinkExt, StreamExt};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::process::{signup, start_logged};
use crate::common::*;

/// Every span (and the resource attributes) the receiver was sent.
#[derive(Default, Clone)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    resource: Arc<Mutex<Vec<KeyValue>>>,
}

async fn receiver() -> (String, Received) {
    let got = Received::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for rs in req.resource_spans {
                    if let Some(r) = rs.resource {
                        sink.resource.lock().unwrap().extend(r.attributes);
                    }
                    for ss in rs.scope_spans {
                        sink.spans.lock().unwrap().extend(ss.spans);
                    }
                }
                // An empty ExportTraceServiceResponse.
                Bytes::new()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), got)
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| text(&kv.value))
}

/// The one span of `trace` named `name` (and with `kind`, for pushes).
fn one<'a>(spans: &'a [Span], name: &str, kind: Option<&str>) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == name && kind.is_none_or(|k| attr(s, "kind").as_deref() == Some(k)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {name} {kind:?} span in the trace: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_frame_to_its_ack_analysis_insight_and_pushes() {
    let (endpoint, got) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let (_child, addr, _log) = start_logged(
        &["--otlp-endpoint", &endpoint],
        dir.path(),
        // Export batches every 100 ms rather than every 5 s.
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
        "info",
        "text",
    )
    .await;
    let http = reqwest::Client::new();
    let email = "traced-person@example.com";
    let token = signup(&http, addr, email).await;
    // A REST request continuing a client's trace (header).
    let rest_trace = "0af7651916cd43dd8448eb211c80319c";
    let rest_parent = "b7ad6b7169203331";
    let resp = http
        .get(format!("http://{addr}/api/v1/analyses"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{rest_trace}-{rest_parent}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let mut req = format!("ws://{addr}/api/v1/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    // Yesterday's activity every 10 minutes, then a minute of today: yesterday is complete.
    let day = yesterday();
    // Fractional: a whole number here could be a pid or a port in some attribute (pids reach
    // 32768 on this machine), which would be a false alarm.
    let values: Vec<f64> = (0..145).map(|i| 31_337.25 + i as f64).collect();
    let samples: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let t = day + chrono::Duration::minutes(10 * i as i64 + 1);
            json!({"id": format!("t{i}"), "kind": "activity_count", "start": t.to_rfc3339(), "value": v})
        })
        .collect();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    ws.send(Message::text(
        json!({
            "type": "samples",
            "seq": 1,
            "traceparent": format!("00-{trace_id}-{client_span}-01"),
            "samples": samples,
        })
        .to_string(),
    ))
    .await
    .unwrap();
    let (mut acked, mut analysed, mut explained) = (false, false, false);
    tokio::time::timeout(Duration::from_secs(60), async {
        while !(acked && analysed && explained) {
            let Some(Ok(Message::Text(t))) = ws.next().await else {
                continue;
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            match v["type"].as_str() {
                Some("ack") => {
                    assert_eq!(v["accepted"], 145, "{v}");
                    acked = true;
                }
                Some("analysis") => analysed = true,
                Some("insight") => explained = true,
                _ => {}
            }
        }
    })
    .await
    .expect("ack, analysis and insight arrive");

    // The exporter sends in batches: wait (bounded) for the last spans of the trace.
    let names = [
        "ws.frame",
        "ingest",
        "store.commit",
        "ws.ack",
        "analysis",
        "insight",
    ];
    let mut trace: Vec<Span> = Vec::new();
    for _ in 0..200 {
        trace = got
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .cloned()
            .collect();
        let pushes = trace.iter().filter(|s| s.name == "push").count();
        if names.iter().all(|n| trace.iter().any(|s| s.name == *n)) && pushes >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rest: Vec<Span> = got
        .spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| hex(&s.trace_id) == rest_trace)
        .cloned()
        .collect();
    // `otel.name` names it after the method and route.
    let request = one(&rest, "GET /api/v1/analyses", None);
    assert_eq!(hex(&request.parent_span_id), rest_parent);
    assert_eq!(
        attr(request, "http.route").as_deref(),
        Some("/api/v1/analyses")
    );
    assert_eq!(
        attr(request, "http.response.status_code").as_deref(),
        Some("200")
    );
    let frame = one(&trace, "ws.frame", None);
    let ingest = one(&trace, "ingest", None);
    let commit = one(&trace, "store.commit", None);
    let ack = one(&trace, "ws.ack", None);
    let analysis = one(&trace, "analysis", None);
    let insight = one(&trace, "insight", None);
    let push_analysis = one(&trace, "push", Some("analysis"));
    let push_insight = one(&trace, "push", Some("insight"));
    let parent = |child: &Span, parent: &Span| {
        assert_eq!(
            hex(&child.parent_span_id),
            hex(&parent.span_id),
            "{} is a child of {}",
            child.name,
            parent.name
        );
    };
    assert_eq!(
        hex(&frame.parent_span_id),
        client_span,
        "continues the client's span"
    );
    parent(ingest, frame);
    parent(commit, ingest);
    parent(ack, frame);
    parent(analysis, ingest);
    parent(insight, analysis);
    parent(push_analysis, analysis);
    parent(push_insight, insight);
    assert_eq!(attr(frame, "kind").as_deref(), Some("samples"));
    assert_eq!(attr(ack, "accepted").as_deref(), Some("145"));
    assert_eq!(attr(analysis, "trigger").as_deref(), Some("day_complete"));

    // No attribute of any span, event or resource carries what the user sent.
    let mut strings: Vec<String> = got
        .resource
        .lock()
        .unwrap()
        .iter()
        .map(|kv| text(&kv.value))
        .collect();
    for s in got.spans.lock().unwrap().iter() {
        strings.push(s.name.clone());
        strings.extend(s.attributes.iter().map(|kv| text(&kv.value)));
        for e in &s.events {
            strings.push(e.name.clone());
            strings.extend(e.attributes.iter().map(|kv| text(&kv.value)));
        }
    }
    let secrets = [token.as_str(), email, PASSWORD];
    for s in &strings {
        for secret in secrets {
            assert!(!s.contains(secret), "an attribute carries {secret:?}: {s}");
        }
        // Whole numbers only: a value's digits inside a longer number (a duration, a port)
        // are not the value.
        for v in &values {
            let v = v.to_string();
            assert!(
                !s.split(|c: char| !c.is_ascii_digit() && c != '.')
                    .any(|token| token == v),
                "an attribute carries the value {v}: {s}"
            );
        }
    }
}
