//! Traces over OTLP/HTTP (protobuf), when `--otlp-endpoint` is set: the `tracing` spans of
//! the `clarity` and `clarity_core` targets become OpenTelemetry spans (tracing-opentelemetry),
//! exported in batches to `<endpoint>/v1/traces`.
//!
//! Rules:
//! - REST requests get their span in `http::trace` (the edge), through [`continue_trace`].
//! - Off by default: without an endpoint nothing is built and spans stay local to the logs.
//! - Span fields are ids, counts, kinds and codes only: never a health value, a token, a
//!   password or an email (`tests/api/otlp.rs` checks an exported trace for them).
//! - A client's W3C `traceparent` (HTTP header, or the optional field of a WebSocket frame)
//!   makes the server's span a child of the client's; a malformed one starts a new trace.
//! - Sampling: `--otlp-sample-ratio` of new traces; a continued trace keeps the client's
//!   sampled flag (parent-based).
//! - The exporter sends through our own reqwest client on the server's runtime (the SDK's
//!   batch thread has no runtime of its own), so no second HTTP stack is linked.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

use crate::config::TracingConfig;

/// A layer that exports spans, as `telemetry::init_with` takes it.
pub type SpanLayer<S> = Box<dyn Layer<S> + Send + Sync>;

/// Flushes the spans still queued when dropped (at the end of `main`, before the runtime).
pub struct Flush(SdkTracerProvider);

impl Drop for Flush {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("trace export not flushed: {e}");
        }
    }
}

/// The OpenTelemetry layer for the subscriber, and what flushes it; `None` without
/// `--otlp-endpoint`.
pub fn layer<S>(
    config: &TracingConfig,
    runtime: tokio::runtime::Handle,
) -> anyhow::Result<Option<(SpanLayer<S>, Flush)>>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Export { client, runtime })
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .map_err(|e| anyhow::anyhow!("--otlp-endpoint {endpoint}: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.otlp_sample_ratio,
        ))))
        .with_resource(Resource::builder().with_service_name("clarity").build())
        .build();
    let tracer = provider.tracer("clarity");
    // Only our own spans: a dependency's could carry what ours never do.
    let ours = Targets::new()
        .with_target("clarity", tracing::Level::INFO)
        .with_target("clarity_core", tracing::Level::INFO);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(ours)
        .boxed();
    Ok(Some((layer, Flush(provider))))
}

/// OTLP requests through reqwest on the server's runtime.
#[derive(Debug)]
struct Export {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for Export {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        // The SDK's batch thread awaits this without a runtime; the request runs on ours.
        let response = self
            .runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let status = response.status();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, body))
            })
            .await??;
        let mut out = Response::new(response.1);
        *out.status_mut() = response.0;
        Ok(out)
    }
}

/// Makes `span` a child of the client's span named by a W3C `traceparent`, if it is valid.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent else {
        return;
    };
    let carrier = HashMap::from([("traceparent".to_owned(), value.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer is installed: nothing to continue then.
        let _ = span.set_parent(parent);
    }
}
