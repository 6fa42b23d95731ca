//! Operational endpoints: liveness, readiness, Prometheus metrics.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
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

async fn ready(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable {
            retry_after_ms: 1000,
        });
    }
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        // PAT is optional: its absence is reported, never a reason to take the node out.
        Ok(Ok(())) => Ok(Json(json!({
            "status": "ready",
            "store": "ok",
            "details": { "pat": match state.pat.status() {
                Ok(model) => json!({ "available": true, "model": model }),
                Err(reason) => json!({ "available": false, "reason": reason }),
            }},
        }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::Unavailable {
                retry_after_ms: 1000,
            })
        }
        Err(_) => Err(ApiError::Unavailable {
            retry_after_ms: 1000,
        }),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.run_upkeep();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
