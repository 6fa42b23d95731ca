//! Operational endpoints: liveness, readiness, Prometheus metrics.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, extract::State};
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiError;

/// Readiness fails if the store has not answered within this.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/health",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/api/ready", get(ready))
        .route("/metrics", get(metrics))
}

/// 200 when the node can do everything; 503 when shutting down, when the store does not
/// answer, or (`"status":"degraded"`) when the bus is down: the node still serves its own
/// sessions, but a load balancer should send new ones elsewhere while others are healthy.
async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable {
            retry_after_ms: 1000,
        });
    }
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            return Err(ApiError::Unavailable {
                retry_after_ms: 1000,
            });
        }
        Err(_) => {
            return Err(ApiError::Unavailable {
                retry_after_ms: 1000,
            });
        }
    }
    let bus = state.bus.status();
    let (status, code) = if bus.up {
        ("ready", StatusCode::OK)
    } else {
        ("degraded", StatusCode::SERVICE_UNAVAILABLE)
    };
    // PAT is optional: its absence is reported, never a reason to take the node out.
    let mut body = json!({
        "status": status,
        "store": "ok",
        "bus": { "kind": bus.kind, "up": bus.up },
        "node": state.bus.node(),
        "details": { "pat": match state.pat.status() {
            Ok(model) => json!({ "available": true, "model": model }),
            Err(reason) => json!({ "available": false, "reason": reason }),
        }},
    });
    if !bus.up {
        // The error shape every non-2xx answer has, next to the details.
        body["error"] = json!({
            "code": "degraded",
            "message": "the bus to the other nodes is down: this node serves its own sessions only",
        });
    }
    Ok((code, Json(body)).into_response())
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.run_upkeep();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
