//! Inbound: a client frame is parsed once, by [`parse`], into a [`Command`].
//!
//! Rules:
//! - Two outcomes are kept apart because the session treats them differently: text that is
//!   not a frame envelope at all (not JSON, or a field of the wrong JSON type) is refused
//!   before the rate limiter counts it; an envelope with a bad body counts as a frame (its
//!   `type` and `seq` are known) and then gets its error.
//! - The frame's `seq` is carried with the command. Its errors echo it where protocol v1
//!   says so (a `samples` frame's, an unknown type's); the others do not, as documented in
//!   protocol/README.md (error codes), and `tests/api/ws_ingest.rs` checks that.
//! - Nothing here depends on the session's settings (those checks, e.g. samples per frame,
//!   stay in the session) or on the WebSocket library.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{Refusal, Stream};

/// What a well-formed client frame asks for.
#[derive(Debug)]
pub enum Command<'a> {
    /// Store these samples (each still raw: every sample is validated on its own).
    Samples {
        seq: u64,
        samples: Vec<&'a RawValue>,
    },
    /// Delete these samples of the session's user (ids checked: 1..=1000 valid ids).
    Delete {
        seq: u64,
        ids: Vec<String>,
    },
    Ping,
    /// Replace the session's access token.
    Refresh {
        access_token: Cow<'a, str>,
    },
    /// Analyse the user's last week now.
    Analyze,
    /// Watch a stream; `owner` `None` is the session's own user.
    Subscribe {
        stream: Stream,
        owner: Option<Uuid>,
        since: Option<u64>,
        epoch: Option<Cow<'a, str>>,
    },
    Unsubscribe {
        stream: Stream,
        owner: Option<Uuid>,
    },
}

/// A frame whose envelope could be read: its `type` and `seq` as sent, and what it asks for
/// (or why it cannot be done).
#[derive(Debug)]
pub struct Inbound<'a> {
    /// The `type` as sent (`None`: missing), for the rate limiter's message and metrics.
    pub ty: Option<Cow<'a, str>>,
    pub seq: Option<u64>,
    /// A W3C `traceparent` the client sent with the frame (any frame type): the server's
    /// spans for it continue that trace. Not checked here; a malformed one is ignored.
    pub traceparent: Option<Cow<'a, str>>,
    pub command: Result<Command<'a>, Refusal>,
}

impl Inbound<'_> {
    /// The metrics label of the frame's type.
    pub fn label(&self) -> &'static str {
        match &self.command {
            Ok(c) => c.label(),
            Err(_) => match self.ty.as_deref() {
                Some(
                    t @ ("samples" | "delete" | "ping" | "refresh" | "analyze" | "subscribe"
                    | "unsubscribe"),
                ) => label_of(t),
                Some(_) => "unknown",
                None => "invalid",
            },
        }
    }
}

fn label_of(t: &str) -> &'static str {
    match t {
        "samples" => "samples",
        "delete" => "delete",
        "ping" => "ping",
        "refresh" => "refresh",
        "analyze" => "analyze",
        "subscribe" => "subscribe",
        _ => "unsubscribe",
    }
}

impl Command<'_> {
    pub fn label(&self) -> &'static str {
        match self {
            Command::Samples { .. } => "samples",
            Command::Delete { .. } => "delete",
            Command::Ping => "ping",
            Command::Refresh { .. } => "refresh",
            Command::Analyze => "analyze",
            Command::Subscribe { .. } => "subscribe",
            Command::Unsubscribe { .. } => "unsubscribe",
        }
    }
}

/// The envelope of every client frame. Fields are optional so that a frame with a known
/// `seq` but a bad body still gets an error naming that `seq`.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    ty: Option<Cow<'a, str>>,
    seq: Option<u64>,
    #[serde(borrow)]
    samples: Option<&'a RawValue>,
    #[serde(borrow)]
    ids: Option<&'a RawValue>,
    #[serde(borrow)]
    access_token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    since: Option<u64>,
    #[serde(borrow)]
    epoch: Option<Cow<'a, str>>,
    #[serde(borrow)]
    traceparent: Option<Cow<'a, str>>,
}

/// Reads one client text frame. `Err`: not a frame envelope (`invalid_json`, or
/// `invalid_frame` for JSON of the wrong shape), refused before it counts as a frame.
pub fn parse(text: &str) -> Result<Inbound<'_>, Refusal> {
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            "invalid_json"
        } else {
            "invalid_frame"
        };
        Refusal::new(code, format!("cannot read frame: {e}"))
    })?;
    let seq = env.seq;
    let command = command(&env);
    Ok(Inbound {
        ty: env.ty,
        seq,
        traceparent: env.traceparent,
        command,
    })
}

fn command<'a>(env: &Envelope<'a>) -> Result<Command<'a>, Refusal> {
    let invalid = |m: &'static str| Refusal::new("invalid_frame", m);
    match env.ty.as_deref() {
        Some("samples") => {
            let seq = env
                .seq
                .ok_or_else(|| invalid("samples frames need a non-negative integer `seq`"))?;
            let raw = env
                .samples
                .ok_or_else(|| invalid("missing field `samples`").with_seq(Some(seq)))?;
            let samples = serde_json::from_str::<Vec<&RawValue>>(raw.get())
                .map_err(|_| invalid("`samples` must be an array").with_seq(Some(seq)))?;
            Ok(Command::Samples { seq, samples })
        }
        Some("delete") => {
            let seq = env
                .seq
                .ok_or_else(|| invalid("delete frames need a non-negative integer `seq`"))?;
            let raw = env
                .ids
                .ok_or_else(|| invalid("missing field `ids`").with_seq(Some(seq)))?;
            let ids = serde_json::from_str::<Vec<String>>(raw.get()).map_err(|_| {
                invalid("`ids` must be an array of sample id strings").with_seq(Some(seq))
            })?;
            crate::samples::ids::check_ids(&ids)
                .map_err(|e| invalid_ids(e.to_string()).with_seq(Some(seq)))?;
            Ok(Command::Delete { seq, ids })
        }
        Some("ping") => Ok(Command::Ping),
        Some("refresh") => {
            let access_token = env
                .access_token
                .clone()
                .ok_or_else(|| invalid("missing field `access_token`"))?;
            Ok(Command::Refresh { access_token })
        }
        Some("analyze") => Ok(Command::Analyze),
        Some("subscribe") => {
            let (stream, owner) = stream_key(env)?;
            Ok(Command::Subscribe {
                stream,
                owner,
                since: env.since,
                epoch: env.epoch.clone(),
            })
        }
        Some("unsubscribe") => {
            let (stream, owner) = stream_key(env)?;
            Ok(Command::Unsubscribe { stream, owner })
        }
        Some(other) => Err(Refusal::new(
            "unknown_type",
            format!("unknown frame type `{}`", truncate(other, 64)),
        )
        .with_seq(env.seq)),
        None => Err(invalid("missing field `type`")),
    }
}

/// A `delete` frame whose ids break the rule (count, or one that is no valid id).
fn invalid_ids(message: String) -> Refusal {
    Refusal::new("invalid_ids", message)
}

/// The stream and owner a subscribe/unsubscribe frame names.
fn stream_key(env: &Envelope<'_>) -> Result<(Stream, Option<Uuid>), Refusal> {
    let invalid = |m: &'static str| Refusal::new("invalid_frame", m);
    let stream = match env.stream.as_deref() {
        None => return Err(invalid("missing field `stream`")),
        Some(name) => Stream::from_name(name)
            .ok_or_else(|| invalid("`stream` must be `insights`, `analyses` or `samples`"))?,
    };
    let owner = match env.user_id.as_deref() {
        None => None,
        Some(id) => Some(Uuid::parse_str(id).map_err(|_| invalid("`user_id` must be a UUID"))?),
    };
    Ok((stream, owner))
}

/// At most `max` characters of `s` (for echoing client text in messages).
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DocKind;

    fn refusal(text: &str) -> Refusal {
        parse(text).unwrap().command.unwrap_err()
    }

    #[test]
    fn each_frame_type_becomes_its_command() {
        let cmd = |t| parse(t).unwrap().command.unwrap();
        assert!(matches!(
            cmd(r#"{"type":"samples","seq":3,"samples":[{},1]}"#),
            Command::Samples { seq: 3, ref samples } if samples.len() == 2
        ));
        assert!(matches!(cmd(r#"{"type":"ping"}"#), Command::Ping));
        assert!(matches!(
            cmd(r#"{"type":"delete","seq":4,"ids":["a","b"]}"#),
            Command::Delete { seq: 4, ref ids } if ids == &["a", "b"]
        ));
        assert!(matches!(cmd(r#"{"type":"analyze"}"#), Command::Analyze));
        assert!(
            matches!(cmd(r#"{"type":"refresh","access_token":"t"}"#), Command::Refresh { access_token } if access_token == "t")
        );
        assert!(matches!(
            cmd(r#"{"type":"subscribe","stream":"insights","since":4,"epoch":"e"}"#),
            Command::Subscribe { stream: Stream::Docs(DocKind::Insight), owner: None, since: Some(4), epoch: Some(e) } if e == "e"
        ));
        assert!(matches!(
            cmd(r#"{"type":"subscribe","stream":"samples","since":0}"#),
            Command::Subscribe {
                stream: Stream::Samples,
                owner: None,
                since: Some(0),
                epoch: None
            }
        ));
        let id = Uuid::now_v7();
        assert!(matches!(
            cmd(&format!(r#"{{"type":"unsubscribe","stream":"analyses","user_id":"{id}"}}"#)),
            Command::Unsubscribe { stream: Stream::Docs(DocKind::Analysis), owner: Some(o) } if o == id
        ));
    }

    #[test]
    fn delete_frames_name_the_rule_their_ids_break() {
        let r = refusal(r#"{"type":"delete","seq":3,"ids":[]}"#);
        assert_eq!(
            (r.code, r.message.as_ref(), r.seq),
            (
                "invalid_ids",
                "`ids` must list 1 to 1000 sample ids, got 0",
                Some(3)
            )
        );
        let many: Vec<String> = (0..1001).map(|i| format!("\"{i}\"")).collect();
        let r = refusal(&format!(
            r#"{{"type":"delete","seq":4,"ids":[{}]}}"#,
            many.join(",")
        ));
        assert_eq!((r.code, r.seq), ("invalid_ids", Some(4)));
        let r = refusal(r#"{"type":"delete","seq":5,"ids":["ok",""]}"#);
        assert_eq!(
            (r.code, r.message.as_ref()),
            (
                "invalid_ids",
                "ids[1]: an id must be 1-128 bytes without control characters"
            )
        );
        let r = refusal(r#"{"type":"delete","seq":6,"ids":[1]}"#);
        assert_eq!((r.code, r.seq), ("invalid_frame", Some(6)));
        let r = refusal(r#"{"type":"delete","seq":7}"#);
        assert_eq!(
            (r.message.as_ref(), r.seq),
            ("missing field `ids`", Some(7))
        );
        let r = refusal(r#"{"type":"delete","ids":["a"]}"#);
        assert_eq!((r.code, r.seq), ("invalid_frame", None));
    }

    #[test]
    fn text_that_is_no_envelope_is_refused_before_it_counts() {
        assert_eq!(parse("{").unwrap_err().code, "invalid_json");
        assert_eq!(parse(r#"{"seq":-1}"#).unwrap_err().code, "invalid_frame");
        assert_eq!(parse(r#"[1]"#).unwrap_err().code, "invalid_frame");
    }

    #[test]
    fn errors_echo_the_seq_where_protocol_v1_does() {
        let r = refusal(r#"{"type":"samples","seq":9,"samples":{}}"#);
        assert_eq!(
            (r.code, r.message.as_ref(), r.seq),
            ("invalid_frame", "`samples` must be an array", Some(9))
        );
        let r = refusal(r#"{"type":"nap","seq":2}"#);
        assert_eq!((r.code, r.seq), ("unknown_type", Some(2)));
        let r = refusal(r#"{"type":"samples","samples":[]}"#);
        assert_eq!(
            (r.message.as_ref(), r.seq),
            ("samples frames need a non-negative integer `seq`", None)
        );
        // v1 answers these without `seq` (tests/api/ws_ingest.rs).
        let r = refusal(r#"{"type":"subscribe","seq":4,"stream":"x"}"#);
        assert_eq!((r.code, r.seq), ("invalid_frame", None));
        let r = refusal(r#"{"seq":1}"#);
        assert_eq!((r.message.as_ref(), r.seq), ("missing field `type`", None));
        assert_eq!(parse(r#"{"seq":1}"#).unwrap().seq, Some(1));
    }
}
