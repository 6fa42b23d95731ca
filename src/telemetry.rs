//! Logging setup.
//!
//! Rule: logs never carry passwords, tokens or health values; fields are ids, counts,
//! codes and durations. Dependencies that would log those at trace level are capped at debug
//! whatever the filter says: tungstenite dumps every WebSocket frame (tokens, samples,
//! insights), the AWS SDK every DynamoDB response body (accounts with email and password
//! hash, documents) and the signing requests (session tokens); h2 its frames.
//! `tests/api/log_scan.rs` checks the whole log of a full scenario at debug and trace.

use std::io::IsTerminal;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, TelemetryConfig};

/// Targets (prefixes) whose trace level carries message payloads: never logged above debug.
const PAYLOAD_LOGGERS: [&str; 8] = [
    "tungstenite",
    "tokio_tungstenite",
    "aws_smithy",
    "aws_sdk",
    "aws_sigv4",
    "aws_runtime",
    "aws_config",
    "h2",
];

pub fn init(config: &TelemetryConfig) {
    init_with(config, None);
}

/// [`init`], plus a layer that exports spans (src/otel.rs). The log filter applies to the
/// log only: the export layer brings its own.
pub fn init_with(config: &TelemetryConfig, spans: Option<crate::otel::SpanLayer<Registry>>) {
    let log = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let log = match config.log_format {
        LogFormat::Text => log.boxed(),
        LogFormat::Json => log.json().boxed(),
    };
    let res = tracing_subscriber::registry()
        .with(spans)
        .with(log.with_filter(filter(&config.log)))
        .try_init();
    if let Err(e) = res {
        eprintln!("logging already initialised: {e}");
    }
}

/// The `--log` filter, with [`PAYLOAD_LOGGERS`] capped at debug.
pub fn filter(spec: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(spec).unwrap_or_else(|e| {
        eprintln!("invalid log filter {spec:?} ({e}); using `info`");
        EnvFilter::new("info")
    });
    // Only when something may log at trace: a cap below the filter's level would enable
    // more than asked for.
    if filter
        .max_level_hint()
        .is_none_or(|max| max > LevelFilter::DEBUG)
    {
        for target in PAYLOAD_LOGGERS {
            // Replaces a directive for the same target the user gave.
            filter = filter.add_directive(
                format!("{target}=debug")
                    .parse()
                    .expect("a valid directive"),
            );
        }
    }
    // The AWS SDK's credential and region chains warn, at length, about every provider that
    // found nothing (instance metadata included) on a machine that is not an EC2 instance;
    // the store reports missing credentials in one line instead. Asking for debug, or naming
    // aws_config in the filter, shows them again.
    if filter
        .max_level_hint()
        .is_some_and(|max| max <= LevelFilter::INFO)
        && !spec.contains("aws_config")
    {
        for target in CHAIN_LOGGERS {
            filter = filter.add_directive(
                format!("{target}=error")
                    .parse()
                    .expect("a valid directive"),
            );
        }
    }
    filter
}

/// Targets of the AWS SDK's provider chains, quiet below debug (see [`filter`]).
const CHAIN_LOGGERS: [&str; 2] = ["aws_config::imds", "aws_config::meta::credentials"];

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn frame_dumps_are_never_enabled() {
        for spec in [
            "trace",
            "info,tungstenite=trace",
            "tokio_tungstenite=trace",
            "warn,aws_smithy=trace",
        ] {
            let f = filter(spec).to_string();
            for target in super::PAYLOAD_LOGGERS {
                assert!(f.contains(&format!("{target}=debug")), "{spec}: {f}");
            }
            assert!(!f.contains("=trace"), "{spec}: {f}");
        }
        // Below trace nothing is added.
        assert!(!filter("info").to_string().contains("debug"));
        assert_eq!(filter("debug").to_string(), "debug");
    }
}
