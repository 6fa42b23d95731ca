//! Logging and audit settings: the log filter and format, and how long audit entries are kept.
//!
//! Rules: `clarity migrate` flattens [`TelemetryConfig`] too, so it holds only the logging
//! settings; the audit log's retention is serve-only ([`AuditConfig`]).

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging")]
pub struct TelemetryConfig {
    /// Log output format.
    #[arg(long, env = "CLARITY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "CLARITY_LOG", default_value = "info")]
    pub log: String,
}

/// Traces (serve only; src/otel.rs).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Tracing")]
pub struct TracingConfig {
    /// OTLP/HTTP collector to send traces to, its base URL (spans go to `/v1/traces`), e.g.
    /// `http://127.0.0.1:4318`. Unset: no tracing.
    #[arg(long, env = "CLARITY_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Share of new traces sampled, 0 to 1; a trace continued from a client's `traceparent`
    /// follows the client's sampled flag.
    #[arg(long, env = "CLARITY_OTLP_SAMPLE_RATIO", default_value_t = 1.0, value_parser = ratio)]
    pub otlp_sample_ratio: f64,
}

fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a ratio from 0 to 1")),
    }
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Audit log")]
pub struct AuditConfig {
    /// Days an audit log entry is kept (then no longer listed, and deleted: by the next
    /// appends on SQLite, by TTL on DynamoDB); at least 1.
    #[arg(
        id = "audit_retention_days",
        value_name = "AUDIT_RETENTION_DAYS",
        long = "audit-retention-days",
        env = "CLARITY_AUDIT_RETENTION_DAYS",
        default_value_t = 365
    )]
    pub retention_days: u32,
}
