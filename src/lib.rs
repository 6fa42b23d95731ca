//! Clarity: a real-time server for wearable health data.
//!
//! This crate is the edge and the wiring: `http` and `ws` are the interfaces, `config`,
//! `cli` and `backup` the command line, `app` builds the narrow handles of the domain and
//! `server` runs them. The domain itself (samples, store, windows, analytics, scoring,
//! insights, pipeline, fan-out, protocol) is the `clarity-core` crate, re-exported here under
//! its module names so that `clarity::store::Store` and `clarity_core::store::Store` are the
//! same item.

pub use clarity_core::{
    analytics, audit, auth, aws, bus, ingest, insights, interop, pipeline, protocol, rate, samples,
    scoring, store, streams, window,
};

pub mod analyze_batch;
pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod http;
pub mod metrics;
pub mod otel;
pub mod rekey;
pub mod server;
pub mod telemetry;
pub mod ws;
