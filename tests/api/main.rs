//! Integration tests through the real HTTP and WebSocket interfaces.

mod common;

mod admin;
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
mod crash_cycles;
mod dynamo_faults;
mod faults;
mod health_data;
mod insights;
mod limits;
mod log_scan;
mod login_throttle;
mod logout;
mod migrate;
mod nodes;
mod openapi;
mod ops;
mod origins;
mod pat;
mod rest_fuzz;
mod streams;
mod ws_backpressure;
mod ws_fuzz;
mod ws_ingest;
mod ws_session;
