//! Outbound: every frame the server sends is a value of [`ServerFrame`], turned into text by
//! [`encode`] and nowhere else.
//!
//! Rules:
//! - The bytes on the wire are the contract (protocol/schemas/server, checked by the tests;
//!   `tests/api/transcript.rs` checks them byte for byte). serde writes struct fields in
//!   declaration order, so the order of the fields below is the order on the wire.
//! - Some frames have their fields in alphabetical order, `type` among them (they used to be
//!   built from `serde_json::Value`, whose keys are sorted). They keep that order: changing
//!   it is a protocol change, not a refactor. Their structs say so.
//! - A stored document (analysis, insight) is sent as it was stored, with `type` (and for a
//!   stream event `stream` and `offset`) spliced in front: the body is an object the server
//!   wrote, so re-parsing it would only cost time. A stream event that is no document (a
//!   `superseded` event) is stored with its own `type` as its first field; `stream` and
//!   `offset` are spliced in after it.
//! - [`Frame`] is the encoded text, reference-counted: a stream event is encoded once and the
//!   same bytes go to every subscriber. No WebSocket library type appears here; the socket
//!   writer (`ws/outbound.rs`) converts at the edge.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Serialize;
use uuid::Uuid;

use super::Stream;
use crate::samples::{Rejection, SampleOut};
use crate::store::{ChangeOp, DocKind};

/// An encoded frame: UTF-8 JSON text, cheap to clone (shared bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    pub fn as_str(&self) -> &str {
        // Only built from `String`/`&'static str` below, so always UTF-8.
        std::str::from_utf8(&self.0).expect("frames are UTF-8")
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The shared bytes (UTF-8).
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// A frame received as text from another node (the bus), already encoded there.
    pub fn from_encoded(text: String) -> Frame {
        Frame(Bytes::from(text))
    }
}

/// A session's queue of pushed frames (analyses, insights, stream events). Boxed because a
/// queue allocates its first block of 32 slots up front: 8-byte slots instead of 32 keep
/// idle sessions small.
pub type Outgoing = Box<Frame>;
/// The sending side of a session's bounded push queue.
pub type Outbound = tokio::sync::mpsc::Sender<Outgoing>;

/// Limits announced in `welcome`.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_samples_per_frame: usize,
    pub max_frames_per_sec: u32,
    pub frame_burst: u32,
    pub max_inflight_batches: usize,
}

/// The `error` frame answering a session's own frame: `type` first.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorFrame<'a> {
    pub code: &'a str,
    pub message: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Frames written with `type` first.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Tagged<'a> {
    Welcome {
        protocol_version: u32,
        session_id: Uuid,
        user_id: Uuid,
        server_time: &'a str,
        heartbeat_interval_ms: u64,
        token_expires_at: &'a str,
        limits: &'a Limits,
    },
    Ack {
        seq: u64,
        accepted: usize,
        duplicates: usize,
        updated: usize,
        deleted: usize,
        not_found: usize,
        rejected: &'a [Rejection],
        rejected_omitted: usize,
    },
    Error(&'a ErrorFrame<'a>),
    Pong {
        server_time: &'a str,
    },
    TokenExpiring {
        expires_at: &'a str,
        expires_in_ms: u64,
    },
    Refreshed {
        expires_at: &'a str,
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
    Change {
        stream: &'static str,
        user_id: Uuid,
        offset: u64,
        op: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        sample: Option<SampleOut<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
    },
}

/// Every frame the server sends.
#[derive(Debug)]
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
        updated: usize,
        deleted: usize,
        not_found: usize,
        rejected: &'a [Rejection],
        rejected_omitted: usize,
    },
    /// An error answering the session's own frame (`type`, `code`, `message`, `seq`,
    /// `retry_after_ms`).
    Error(ErrorFrame<'a>),
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
    /// The client's `unsubscribe` was done.
    Unsubscribed {
        stream: Stream,
        user_id: Uuid,
    },
    /// A share was revoked: the subscription ended (alphabetical fields).
    Revoked {
        stream: Stream,
        user_id: Uuid,
    },
    /// The answer to `subscribe` (alphabetical fields).
    Subscribed {
        stream: Stream,
        user_id: Uuid,
        epoch: &'a str,
        offset: u64,
        recover: bool,
        replay: usize,
    },
    /// A subscriber fell behind; its subscription ended (alphabetical fields).
    Lagged {
        stream: Stream,
        user_id: Uuid,
        last_offset: u64,
    },
    /// A subscription failed or was refused (alphabetical fields, naming the stream).
    StreamError {
        stream: Stream,
        user_id: Uuid,
        code: &'a str,
        message: &'a str,
        retry_after_ms: Option<u64>,
    },
    /// An `analyze` that could not be answered with an analysis (alphabetical fields).
    AnalysisError {
        code: &'a str,
        message: &'a str,
    },
    /// Streamed insight text (alphabetical fields).
    InsightDelta {
        insight_id: Uuid,
        analysis_id: Uuid,
        index: u32,
        text: &'a str,
    },
    /// No insight could be made for an analysis (alphabetical fields).
    InsightFailed {
        analysis_id: Uuid,
        reason: &'a str,
    },
    /// A stored document of `kind` as a plain frame (asked for again, or its stream event
    /// could not be appended).
    Document {
        kind: DocKind,
        body: &'a str,
    },
    /// A stored document as the stream event at `offset`.
    Event {
        kind: DocKind,
        offset: u64,
        body: &'a str,
    },
    /// An import's state while it runs (`body`: the job as `GET /api/v1/imports/{id}` shows
    /// it, a JSON object the server wrote).
    ImportProgress {
        body: &'a str,
    },
    /// An import ended (`done` or `failed`), with its final report.
    ImportDone {
        body: &'a str,
    },
    /// One entry of `user_id`'s change feed (stream `samples`), `offset` its change seq.
    Change {
        user_id: Uuid,
        offset: u64,
        op: &'a ChangeOp,
    },
}

// The alphabetical frames, `type` in its sorted place (see the module's rules).

#[derive(Serialize)]
struct RevokedAlpha<'a> {
    reason: &'a str,
    stream: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    user_id: Uuid,
}

#[derive(Serialize)]
struct SubscribedAlpha<'a> {
    epoch: &'a str,
    offset: u64,
    recover: bool,
    replay: usize,
    stream: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    user_id: Uuid,
}

#[derive(Serialize)]
struct LaggedAlpha<'a> {
    last_offset: u64,
    stream: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    user_id: Uuid,
}

#[derive(Serialize)]
struct StreamErrorAlpha<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
    stream: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    user_id: Uuid,
}

#[derive(Serialize)]
struct AnalysisErrorAlpha<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
}

#[derive(Serialize)]
struct InsightDeltaAlpha<'a> {
    analysis_id: Uuid,
    index: u32,
    insight_id: Uuid,
    text: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
}

#[derive(Serialize)]
struct InsightFailedAlpha<'a> {
    analysis_id: Uuid,
    reason: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
}

impl<'a> ServerFrame<'a> {
    /// An error without `seq` or `retry_after_ms`.
    pub fn error(code: &'a str, message: impl Into<Cow<'a, str>>) -> ServerFrame<'a> {
        ServerFrame::Error(ErrorFrame {
            code,
            message: message.into(),
            seq: None,
            retry_after_ms: None,
        })
    }

    /// The frame's `type`, for metrics.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerFrame::Welcome { .. } => "welcome",
            ServerFrame::Ack { .. } => "ack",
            ServerFrame::Error(_)
            | ServerFrame::StreamError { .. }
            | ServerFrame::AnalysisError { .. } => "error",
            ServerFrame::Pong { .. } => "pong",
            ServerFrame::TokenExpiring { .. } => "token_expiring",
            ServerFrame::Refreshed { .. } => "refreshed",
            ServerFrame::GoingAway { .. } => "going_away",
            ServerFrame::Unsubscribed { .. } | ServerFrame::Revoked { .. } => "unsubscribed",
            ServerFrame::Subscribed { .. } => "subscribed",
            ServerFrame::Lagged { .. } => "lagged",
            ServerFrame::Change { .. } => "change",
            ServerFrame::InsightDelta { .. } => "insight_delta",
            ServerFrame::InsightFailed { .. } => "insight_failed",
            ServerFrame::Document { kind, .. } | ServerFrame::Event { kind, .. } => kind.as_str(),
            ServerFrame::ImportProgress { .. } => "import_progress",
            ServerFrame::ImportDone { .. } => "import_done",
        }
    }
}

/// The one place a frame becomes text.
pub fn encode(frame: &ServerFrame<'_>) -> Frame {
    let text = match frame {
        ServerFrame::Document { kind, body } => splice(kind.as_str(), None, body),
        ServerFrame::Event { kind, offset, body } => {
            splice(kind.as_str(), Some((kind.stream(), *offset)), body)
        }
        ServerFrame::ImportProgress { body } => splice("import_progress", None, body),
        ServerFrame::ImportDone { body } => splice("import_done", None, body),
        other => json(other),
    };
    Frame(Bytes::from(text))
}

fn json(frame: &ServerFrame<'_>) -> String {
    match *frame {
        ServerFrame::Welcome {
            protocol_version,
            session_id,
            user_id,
            ref server_time,
            heartbeat_interval_ms,
            ref token_expires_at,
            limits,
        } => to_string(&Tagged::Welcome {
            protocol_version,
            session_id,
            user_id,
            server_time,
            heartbeat_interval_ms,
            token_expires_at,
            limits,
        }),
        ServerFrame::Ack {
            seq,
            accepted,
            duplicates,
            updated,
            deleted,
            not_found,
            rejected,
            rejected_omitted,
        } => to_string(&Tagged::Ack {
            seq,
            accepted,
            duplicates,
            updated,
            deleted,
            not_found,
            rejected,
            rejected_omitted,
        }),
        ServerFrame::Error(ref e) => to_string(&Tagged::Error(e)),
        ServerFrame::Pong { ref server_time } => to_string(&Tagged::Pong { server_time }),
        ServerFrame::TokenExpiring {
            ref expires_at,
            expires_in_ms,
        } => to_string(&Tagged::TokenExpiring {
            expires_at,
            expires_in_ms,
        }),
        ServerFrame::Refreshed { ref expires_at } => to_string(&Tagged::Refreshed { expires_at }),
        ServerFrame::GoingAway {
            reason,
            reconnect_after_ms,
        } => to_string(&Tagged::GoingAway {
            reason,
            reconnect_after_ms,
        }),
        ServerFrame::Unsubscribed { stream, user_id } => to_string(&Tagged::Unsubscribed {
            stream: stream.name(),
            user_id,
            reason: "requested",
        }),
        ServerFrame::Revoked { stream, user_id } => to_string(&RevokedAlpha {
            reason: "revoked",
            stream: stream.name(),
            ty: "unsubscribed",
            user_id,
        }),
        ServerFrame::Subscribed {
            stream,
            user_id,
            epoch,
            offset,
            recover,
            replay,
        } => to_string(&SubscribedAlpha {
            epoch,
            offset,
            recover,
            replay,
            stream: stream.name(),
            ty: "subscribed",
            user_id,
        }),
        ServerFrame::Lagged {
            stream,
            user_id,
            last_offset,
        } => to_string(&LaggedAlpha {
            last_offset,
            stream: stream.name(),
            ty: "lagged",
            user_id,
        }),
        ServerFrame::StreamError {
            stream,
            user_id,
            code,
            message,
            retry_after_ms,
        } => to_string(&StreamErrorAlpha {
            code,
            message,
            retry_after_ms,
            stream: stream.name(),
            ty: "error",
            user_id,
        }),
        ServerFrame::AnalysisError { code, message } => to_string(&AnalysisErrorAlpha {
            code,
            message,
            ty: "error",
        }),
        ServerFrame::InsightDelta {
            insight_id,
            analysis_id,
            index,
            text,
        } => to_string(&InsightDeltaAlpha {
            analysis_id,
            index,
            insight_id,
            text,
            ty: "insight_delta",
        }),
        ServerFrame::InsightFailed {
            analysis_id,
            reason,
        } => to_string(&InsightFailedAlpha {
            analysis_id,
            reason,
            ty: "insight_failed",
        }),
        ServerFrame::Change {
            user_id,
            offset,
            op,
        } => {
            let (op, sample, id) = match op {
                ChangeOp::Upsert(sample) => ("upsert", Some(sample.to_wire()), None),
                ChangeOp::Delete { id } => ("delete", None, Some(id.as_str())),
            };
            to_string(&Tagged::Change {
                stream: Stream::SAMPLES,
                user_id,
                offset,
                op,
                sample,
                id,
            })
        }
        ServerFrame::Document { .. }
        | ServerFrame::Event { .. }
        | ServerFrame::ImportProgress { .. }
        | ServerFrame::ImportDone { .. } => {
            unreachable!("documents are spliced")
        }
    }
}

fn to_string(v: &impl Serialize) -> String {
    serde_json::to_string(v).expect("server frames always serialise")
}

/// A stored JSON object with `type` (and `stream`, `offset`) in front.
fn splice(ty: &str, event: Option<(&str, u64)>, body: &str) -> String {
    // An event body naming its own type (`{"type":"superseded",...}`) keeps it.
    if let (Some((stream, offset)), Some(own)) = (event, body.strip_prefix("{\"type\":\""))
        && let Some(end) = own.find('"')
    {
        let (own_ty, rest) = own.split_at(end);
        let rest = &rest[1..];
        return format!(
            "{{\"type\":\"{own_ty}\",\"stream\":\"{stream}\",\"offset\":{offset}{rest}"
        );
    }
    let rest = body.trim_start_matches('{');
    match event {
        None => format!("{{\"type\":\"{ty}\",{rest}"),
        Some((stream, offset)) => {
            format!("{{\"type\":\"{ty}\",\"stream\":\"{stream}\",\"offset\":{offset},{rest}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_get_their_type_and_stream_position_in_front() {
        let body = r#"{"analysis_id":"a","n":1}"#;
        let doc = encode(&ServerFrame::Document {
            kind: DocKind::Analysis,
            body,
        });
        assert_eq!(
            doc.as_str(),
            r#"{"type":"analysis","analysis_id":"a","n":1}"#
        );
        let ev = encode(&ServerFrame::Event {
            kind: DocKind::Insight,
            offset: 7,
            body,
        });
        assert_eq!(
            ev.as_str(),
            r#"{"type":"insight","stream":"insights","offset":7,"analysis_id":"a","n":1}"#
        );
    }

    #[test]
    fn an_event_naming_its_own_type_keeps_it() {
        let body = r#"{"type":"superseded","user_id":"u","id":"a","by":"b"}"#;
        let ev = encode(&ServerFrame::Event {
            kind: DocKind::Analysis,
            offset: 3,
            body,
        });
        assert_eq!(
            ev.as_str(),
            r#"{"type":"superseded","stream":"analyses","offset":3,"user_id":"u","id":"a","by":"b"}"#
        );
    }

    #[test]
    fn alphabetical_frames_keep_their_order() {
        let user = Uuid::nil();
        let f = encode(&ServerFrame::StreamError {
            stream: Stream::Docs(DocKind::Analysis),
            user_id: user,
            code: "store_unavailable",
            message: "m",
            retry_after_ms: Some(1000),
        });
        assert_eq!(
            f.as_str(),
            format!(
                r#"{{"code":"store_unavailable","message":"m","retry_after_ms":1000,"stream":"analyses","type":"error","user_id":"{user}"}}"#
            )
        );
        let f = encode(&ServerFrame::Error(ErrorFrame {
            code: "rate_limited",
            message: "m".into(),
            seq: Some(5),
            retry_after_ms: Some(20),
        }));
        assert_eq!(
            f.as_str(),
            r#"{"type":"error","code":"rate_limited","message":"m","seq":5,"retry_after_ms":20}"#
        );
    }

    #[test]
    fn change_frames_carry_the_sample_or_the_deleted_id() {
        let user = Uuid::nil();
        let deleted = ChangeOp::Delete { id: "w1".into() };
        let f = encode(&ServerFrame::Change {
            user_id: user,
            offset: 8,
            op: &deleted,
        });
        assert_eq!(
            f.as_str(),
            format!(
                r#"{{"type":"change","stream":"samples","user_id":"{user}","offset":8,"op":"delete","id":"w1"}}"#
            )
        );
    }
}
