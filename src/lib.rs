//! Clarity: a real-time server for wearable health data.
//!
//! Layout follows the architecture: `http` and `ws` are the interfaces, `ingest` the shared
//! write path, `store` the durable state, `auth` accounts and tokens, `bus` the other nodes;
//! `app` ties them
//! together and `server` runs them.

pub mod analytics;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod config;
pub mod http;
pub mod ingest;
pub mod insights;
pub mod metrics;
pub mod pipeline;
pub mod protocol;
pub mod rate;
pub mod samples;
pub mod scoring;
pub mod server;
pub mod store;
pub mod streams;
pub mod telemetry;
pub mod window;
pub mod ws;
