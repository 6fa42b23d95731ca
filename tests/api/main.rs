//! Integration tests through the real HTTP and WebSocket interfaces.

mod common;

mod analysis;
mod auth;
mod browser;
mod bus;
mod cli_analyze;
mod cognito;
mod conformance;
mod conformance_nodes;
mod crash;
mod dynamo_faults;
mod faults;
mod health_data;
mod insights;
mod migrate;
mod nodes;
mod openapi;
mod ops;
mod pat;
mod streams;
mod ws_fuzz;
mod ws_ingest;
mod ws_session;
