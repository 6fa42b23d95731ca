//! Integration tests through the real HTTP and WebSocket interfaces.

mod common;

mod analysis;
mod audit;
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
mod log_scan;
mod migrate;
mod nodes;
mod ops;
mod pat;
mod streams;
mod ws_fuzz;
mod ws_ingest;
mod ws_session;
