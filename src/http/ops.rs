//! Operational endpoints: liveness, readiness, Prometheus metrics.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::error::{ApiError, ErrorBody, ErrorDetail};

/// Readiness fails if the store has not answered within this.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
struct Health {
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
}

/// Liveness
#[utoipa::path(
    get,
    path = "/api/health",
    operation_id = "health",
    tag = "ops",
    responses((status = 200, description = "The process answers.", body = Health)),
)]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
struct Readiness {
    /// `ready` (200) or `degraded` (503: the bus is down, or the store cannot write).
    #[schema(value_type = String, pattern = "^(ready|degraded)$")]
    status: &'static str,
    /// `ok`, or `read_only`: the store answers reads but refuses writes (its disk is full);
    /// writes get 503 / `store_unavailable` until space is freed, without a restart.
    #[schema(value_type = String, pattern = "^(ok|read_only)$")]
    store: &'static str,
    bus: BusInfo,
    /// This node's id.
    node: Uuid,
    details: Details,
    /// When degraded: the error shape every non-2xx answer has.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    error: Option<ErrorDetail>,
}

#[derive(Serialize, ToSchema)]
struct BusInfo {
    /// `memory` or `redis`.
    #[schema(value_type = String)]
    kind: &'static str,
    up: bool,
}

#[derive(Serialize, ToSchema)]
struct Details {
    pat: PatInfo,
}

/// PAT is optional: its absence is reported, never a reason to take the node out.
#[derive(Serialize, ToSchema)]
struct PatInfo {
    available: bool,
    /// The model, when available.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    model: Option<String>,
    /// Why not, when unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reason: Option<String>,
}

/// Readiness
///
/// 200 when the node can do everything; 503 when shutting down, when the store does not
/// answer, or (`"status":"degraded"`) when the bus is down or the store cannot write
/// (`"store":"read_only"`, error `store_read_only`: its disk is full): the node still serves
/// reads and its own sessions, but a load balancer should send new ones elsewhere while
/// others are healthy. `/api/health` stays 200 then: a restart frees no disk space.
#[utoipa::path(
    get,
    path = "/api/ready",
    operation_id = "ready",
    tag = "ops",
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "`unavailable` (shutting down, store not answering), or `degraded` with the readiness fields too (the bus is down, or `store` is `read_only`: the store cannot write).", body = ErrorBody, headers(("Retry-After" = u64, description = "With `unavailable`."))),
    ),
)]
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
    let read_only = state.store.read_only();
    let (status, code) = if bus.up && read_only.is_none() {
        ("ready", StatusCode::OK)
    } else {
        ("degraded", StatusCode::SERVICE_UNAVAILABLE)
    };
    let pat = match state.pipeline.pat.status() {
        Ok(model) => PatInfo {
            available: true,
            model: Some(model.to_owned()),
            reason: None,
        },
        Err(reason) => PatInfo {
            available: false,
            model: None,
            reason: Some(reason.to_owned()),
        },
    };
    let body = Readiness {
        status,
        store: if read_only.is_some() {
            "read_only"
        } else {
            "ok"
        },
        bus: BusInfo {
            kind: bus.kind,
            up: bus.up,
        },
        node: state.bus.node(),
        details: Details { pat },
        error: match (read_only, bus.up) {
            (Some(reason), _) => Some(ErrorDetail {
                code: "store_read_only",
                message: reason.into(),
                retry_after_ms: None,
            }),
            (None, false) => Some(ErrorDetail {
                code: "degraded",
                message:
                    "the bus to the other nodes is down: this node serves its own sessions only"
                        .into(),
                retry_after_ms: None,
            }),
            (None, true) => None,
        },
    };
    Ok((code, Json(body)).into_response())
}

/// Prometheus metrics
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "ops",
    responses((status = 200, description = "Prometheus text exposition format.", content_type = "text/plain", body = String)),
)]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.run_upkeep();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
