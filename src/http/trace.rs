//! The `http.request` span of each REST request (with `--otlp-endpoint`; src/otel.rs): method,
//! route template (never the path as sent: it may hold ids of other kinds), status; a client's
//! `traceparent` header makes it the child of the client's span.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Route layer (`Router::route_layer`, so that the matched route is known).
pub async fn trace_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = request.method().as_str().to_owned();
    let span = tracing::info_span!(
        parent: None,
        "http.request",
        otel.name = format!("{method} {route}"),
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    crate::otel::continue_trace(
        &span,
        request
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok()),
    );
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}
