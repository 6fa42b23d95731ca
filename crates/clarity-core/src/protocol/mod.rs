//! The WebSocket protocol (v1) as types: client frames in ([`command`]), server frames out
//! ([`frame`]), and the errors between them; [`compressed`] reads a client frame sent
//! compressed (a binary message).
//!
//! Rules:
//! - protocol/ (AsyncAPI, one JSON Schema per frame) is the contract; these types implement
//!   it and the tests validate every frame they receive against the schemas.
//! - A client frame is parsed once into a [`Command`]; a server frame is a [`ServerFrame`]
//!   encoded by [`encode`] into a [`Frame`]. No other code builds frame text.
//! - One mapping from a store failure to the error code a client sees: [`store_failure`].
//! - No WebSocket or HTTP library types: `ws/` converts at the socket.

pub mod command;
pub mod compressed;
pub mod frame;
mod stream;

use std::borrow::Cow;

use chrono::{SecondsFormat, TimeZone, Utc};

pub use command::{Command, Inbound, parse};
pub use frame::{ErrorFrame, Frame, Limits, Outbound, Outgoing, ServerFrame, encode};
pub use stream::Stream;

use crate::store::StoreError;

pub const PROTOCOL_VERSION: u32 = 1;

/// How long a client is told to wait before resending after a store failure.
pub const STORE_RETRY_AFTER_MS: u64 = 1000;

/// Why a client frame is not acted on: the `error` frame it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub seq: Option<u64>,
    pub retry_after_ms: Option<u64>,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            seq: None,
            retry_after_ms: None,
        }
    }

    /// The `seq` of the frame refused, when it had one.
    pub fn with_seq(mut self, seq: Option<u64>) -> Refusal {
        self.seq = self.seq.or(seq);
        self
    }

    pub fn retry_after(mut self, ms: u64) -> Refusal {
        self.retry_after_ms = Some(ms);
        self
    }

    pub fn frame(&self) -> ServerFrame<'_> {
        ServerFrame::Error(ErrorFrame {
            code: self.code,
            message: Cow::Borrowed(self.message.as_ref()),
            seq: self.seq,
            retry_after_ms: self.retry_after_ms,
        })
    }
}

/// What a client is told about a failed store operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFailure {
    /// `store_unavailable` (overloaded, timed out, unreachable: retry) or `internal`.
    pub code: &'static str,
    pub transient: bool,
}

/// The one mapping of a store error to what a client sees; logs it once, as a warning when
/// the store is only unavailable, as an error otherwise. `what` names the operation.
pub fn store_failure(e: &StoreError, what: &'static str) -> StoreFailure {
    if matches!(e, StoreError::AccountErased) {
        // A write that raced the account's erasure: the erasure won, as it must.
        tracing::info!("{what}: the account was erased");
        StoreFailure {
            code: "account_erased",
            transient: false,
        }
    } else if e.is_transient() {
        tracing::warn!(error = %e, "{what}: store unavailable");
        StoreFailure {
            code: "store_unavailable",
            transient: true,
        }
    } else {
        tracing::error!(error = ?e, "{what}: store failed");
        StoreFailure {
            code: "internal",
            transient: false,
        }
    }
}

impl StoreFailure {
    /// `retry_after_ms` for a failure a client can retry.
    pub fn retry_after_ms(self) -> Option<u64> {
        self.transient.then_some(STORE_RETRY_AFTER_MS)
    }
}

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn unix_secs_rfc3339(secs: i64) -> String {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}
