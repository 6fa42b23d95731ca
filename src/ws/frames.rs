//! WebSocket frames as they travel: server frames (serialised) and the client envelope.
//!
//! The shapes are specified in protocol/ (AsyncAPI + one JSON Schema per frame); the test
//! suite validates every server frame it receives against those schemas.

use std::borrow::Cow;

use chrono::{SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::samples::Rejection;

pub const PROTOCOL_VERSION: u32 = 1;

/// Limits announced in `welcome`.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_samples_per_frame: usize,
    pub max_frames_per_sec: u32,
    pub frame_burst: u32,
    pub max_inflight_batches: usize,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Welcome {
        protocol_version: u32,
        session_id: Uuid,
        user_id: Uuid,
        server_time: String,
        heartbeat_interval_ms: u64,
        token_expires_at: String,
        limits: &'a Limits,
    },
    Ack {
        seq: u64,
        accepted: usize,
        duplicates: usize,
        rejected: &'a [Rejection],
        rejected_omitted: usize,
    },
    Error {
        code: &'static str,
        message: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Pong {
        server_time: String,
    },
    TokenExpiring {
        expires_at: String,
        expires_in_ms: u64,
    },
    Refreshed {
        expires_at: String,
    },
    GoingAway {
        reason: &'a str,
        reconnect_after_ms: u64,
    },
    Unsubscribed {
        stream: &'static str,
        user_id: Uuid,
        reason: &'static str,
    },
}

impl ServerFrame<'_> {
    pub fn error(
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> ServerFrame<'static> {
        ServerFrame::Error {
            code,
            message: message.into(),
            seq: None,
            retry_after_ms: None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ServerFrame::Welcome { .. } => "welcome",
            ServerFrame::Ack { .. } => "ack",
            ServerFrame::Error { .. } => "error",
            ServerFrame::Pong { .. } => "pong",
            ServerFrame::TokenExpiring { .. } => "token_expiring",
            ServerFrame::Refreshed { .. } => "refreshed",
            ServerFrame::GoingAway { .. } => "going_away",
            ServerFrame::Unsubscribed { .. } => "unsubscribed",
        }
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialise")
    }
}

/// The envelope of every client frame. Fields are optional so that a frame with a known
/// `seq` but a bad body still gets an error naming that `seq`.
#[derive(Deserialize)]
pub struct ClientFrame<'a> {
    #[serde(rename = "type", borrow)]
    pub ty: Option<Cow<'a, str>>,
    pub seq: Option<u64>,
    #[serde(borrow)]
    pub samples: Option<&'a RawValue>,
    #[serde(borrow)]
    pub access_token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub user_id: Option<Cow<'a, str>>,
    pub since: Option<u64>,
    #[serde(borrow)]
    pub epoch: Option<Cow<'a, str>>,
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
