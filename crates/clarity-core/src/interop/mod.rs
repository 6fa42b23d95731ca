//! Interoperability: bringing history in from other health platforms' files.
//!
//! Rules: everything here goes through the same validation and store write path as samples
//! sent live; no HTTP types (the edge streams uploads to a file and calls in).

pub mod apple_health;
pub mod imports;
