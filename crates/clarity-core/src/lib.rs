//! Clarity's domain, below the HTTP/WebSocket edge: samples and their validation, the store
//! (SQLite, DynamoDB), accounts and tokens, the bus between nodes, the per-user windows, the
//! analytics, PAT scoring, the insight generators, the pipeline that turns completed days into
//! analyses and insights, the fan-out to sessions and subscribers, and the wire protocol's
//! typed commands and frames.
//!
//! Rules: no HTTP framework, no OpenAPI, no command-line parsing here (the `clarity` crate
//! owns those); each part takes narrow handles and plain option structs, so every part can be
//! built and tested without a socket. tests/api/layering.rs checks the dependency graph.

pub mod analytics;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod bus;
pub mod ingest;
pub mod insights;
pub mod interop;
pub mod metrics;
pub mod pipeline;
pub mod protocol;
pub mod rate;
pub mod samples;
pub mod scoring;
pub mod store;
pub mod streams;
pub mod window;
