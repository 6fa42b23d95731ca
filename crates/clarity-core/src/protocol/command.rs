//! Inbound: a client frame is parsed once, by [`parse`], into a [`Command`].
//!
//! Rules:
//! - Two outcomes are kept apart because the session treats them differently: text that is
//!   not a frame envelope at all (not JSON, or a field of the wrong JSON type) is refused
//!   before the rate limiter counts it; an envelope with a bad body counts as a frame (its
//!   `type` and `seq` are known) and then gets its error.
//! - The frame's `seq` is carried with the command. Its errors echo it where protocol v1
//!   says so (a `samples`, `series` or `delete` frame's, an unknown type's); the others do not, as documented in
//!   protocol/README.md (error codes), and `tests/api/ws_ingest.rs` checks that.
//! - Nothing here depends on the session's settings (those checks, e.g. samples per frame,
//!   stay in the session) or on the WebSocket library.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{Refusal, Stream};
use crate::samples::series::MAX_INTERVAL_MS;
use crate::samples::{Series, TIME_RULE, Timestamp};

/// What a well-formed client frame asks for.
#[derive(Debug)]
pub enum Command<'a> {
    /// Store these samples (each still raw: every sample is validated on its own).
    Samples {
        seq: u64,
        samples: Vec<&'a RawValue>,
    },
    /// Store the samples of a regular series (shape checked, values not validated yet).
    Series {
        seq: u64,
        series: Series,
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
                    t @ ("samples" | "series" | "delete" | "ping" | "refresh" | "analyze"
                    | "subscribe" | "unsubscribe"),
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
        "series" => "series",
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
            Command::Series { .. } => "series",
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
    // A `series` frame's fields: raw here, so that they never make another frame type's
    // envelope unreadable; read by [`series`].
    #[serde(borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    unit: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    start: Option<&'a RawValue>,
    #[serde(borrow)]
    interval_ms: Option<&'a RawValue>,
    #[serde(borrow)]
    intervals: Option<&'a RawValue>,
    #[serde(borrow)]
    values: Option<&'a RawValue>,
    #[serde(borrow)]
    versions: Option<&'a RawValue>,
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
        Some("series") => {
            let seq = env
                .seq
                .ok_or_else(|| invalid("series frames need a non-negative integer `seq`"))?;
            let series =
                series(env).map_err(|m| Refusal::new("invalid_frame", m).with_seq(Some(seq)))?;
            Ok(Command::Series { seq, series })
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

/// A `series` frame's body, its shape checked ([`Series::check`]); the message names the
/// field and its rule.
fn series(env: &Envelope<'_>) -> Result<Series, String> {
    fn field<T: serde::de::DeserializeOwned>(
        raw: Option<&RawValue>,
        name: &str,
        rule: &str,
    ) -> Result<Option<T>, String> {
        match raw {
            None => Ok(None),
            Some(r) => serde_json::from_str(r.get())
                .map(Some)
                .map_err(|_| format!("`{name}` must be {rule}")),
        }
    }
    fn required<T>(v: Option<T>, name: &str) -> Result<T, String> {
        v.ok_or_else(|| format!("missing field `{name}`"))
    }
    let kind: String = required(field(env.kind, "kind", "a string")?, "kind")?;
    let start: String = required(field(env.start, "start", TIME_RULE)?, "start")?;
    let start = Timestamp::parse(&start).ok_or_else(|| format!("`start` must be {TIME_RULE}"))?;
    let interval_rule =
        format!("an integer within 1..={MAX_INTERVAL_MS} (milliseconds between values)");
    let interval_ms: i64 = required(
        field(env.interval_ms, "interval_ms", &interval_rule)?,
        "interval_ms",
    )?;
    let values: Vec<serde_json::Value> = required(
        field(
            env.values,
            "values",
            "an array of numbers (strings for sleep_stage) or null",
        )?,
        "values",
    )?;
    let series = Series {
        kind,
        unit: field(env.unit, "unit", "a string")?,
        source: field(env.source, "source", "a string or a source object")?,
        start,
        interval_ms,
        intervals: field(env.intervals, "intervals", "true or false")?.unwrap_or(false),
        values,
        ids: field(env.ids, "ids", "an array of sample id strings (or null)")?,
        versions: field(env.versions, "versions", "an array of versions")?,
    };
    series.check()?;
    Ok(series)
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
    fn series_frames_are_read_once_and_their_shape_refused_naming_the_rule() {
        let cmd = parse(
            r#"{"type":"series","seq":5,"kind":"heart_rate","unit":"bpm","source":{"name":"w"},"start":"2026-01-01T10:00:00+01:00","interval_ms":1000,"values":[60,null],"ids":["a",null],"versions":[1,null],"intervals":true}"#,
        )
        .unwrap()
        .command
        .unwrap();
        let Command::Series { seq: 5, series } = cmd else {
            panic!("not a series: {cmd:?}");
        };
        assert_eq!(
            (
                series.kind.as_str(),
                series.unit.as_deref(),
                series.start.offset_secs
            ),
            ("heart_rate", Some("bpm"), 3600)
        );
        assert_eq!(series.ids, Some(vec![Some("a".into()), None]));
        assert!(series.intervals);
        assert_eq!(series.samples(), 1);
        let refused = |body: &str| {
            let r = refusal(&format!(r#"{{"type":"series","seq":8,{body}}}"#));
            assert_eq!((r.code, r.seq), ("invalid_frame", Some(8)), "{body}");
            r.message.into_owned()
        };
        let ok = r#""kind":"heart_rate","start":"2026-01-01T00:00:00Z""#;
        assert_eq!(
            refused(&format!(
                r#"{ok},"interval_ms":1000,"values":[1,2],"ids":["a"]"#
            )),
            "`ids` must have one entry per value: 1 ids for 2 values"
        );
        assert!(
            refused(&format!(r#"{ok},"interval_ms":0,"values":[1]"#))
                .starts_with("`interval_ms` must be an integer within 1..=86400000")
        );
        assert!(
            refused(&format!(r#"{ok},"interval_ms":1.5,"values":[1]"#))
                .starts_with("`interval_ms` must be an integer")
        );
        assert_eq!(
            refused(
                r#""kind":"heart_rate","start":"2026-01-01T00:00:00","interval_ms":1,"values":[1]"#
            ),
            format!("`start` must be {TIME_RULE}")
        );
        assert_eq!(
            refused(&format!(r#"{ok},"interval_ms":1"#)),
            "missing field `values`"
        );
        assert!(
            refused(&format!(r#"{ok},"interval_ms":1,"values":{{}}"#))
                .starts_with("`values` must be an array")
        );
        assert!(
            refused(&format!(r#"{ok},"interval_ms":1,"values":[1],"ids":[3]"#))
                .starts_with("`ids` must be an array of sample id strings")
        );
        let r = refusal(r#"{"type":"series","values":[1]}"#);
        assert_eq!(
            (r.message.as_ref(), r.seq),
            ("series frames need a non-negative integer `seq`", None)
        );
        // The series fields never make another frame's envelope unreadable.
        assert!(matches!(
            parse(r#"{"type":"ping","values":3,"kind":[1],"start":{}}"#)
                .unwrap()
                .command,
            Ok(Command::Ping)
        ));
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
