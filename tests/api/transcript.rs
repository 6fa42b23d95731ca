//! The websocat walkthrough of README.md and protocol/README.md through a real server, frame
//! by frame, compared byte for byte with `tests/fixtures/ws-transcript.golden`.
//!
//! Rules: only what must vary between runs is replaced (ids the server generates, times,
//! the session id, the users, the stream epoch, a rate limiter's wait); field order, spacing
//! and every other byte are compared as sent, so a change of the wire format fails here.
//! `CLARITY_UPDATE_GOLDEN=1 cargo test --test api transcript` rewrites the file (review the
//! diff: it is the protocol).

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::{TestApp, Ws, spawn_app, spawn_app_with, validate_server_frame};

/// Keys whose values differ from run to run; their values become `<key>`.
const VARYING: [&str; 9] = [
    "session_id",
    "server_time",
    "token_expires_at",
    "expires_at",
    "created_at",
    "epoch",
    "analysis_id",
    "insight_id",
    "retry_after_ms",
];

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ws-transcript.golden")
}

/// Replaces the value of every `"key":` in [`VARYING`] by `"<key>"` (a string) or `<key>` (a
/// number), leaving every other byte as it was.
fn mask(frame: &str) -> String {
    let mut out = String::with_capacity(frame.len());
    let mut rest = frame;
    'scan: while !rest.is_empty() {
        for key in VARYING {
            let pat = format!("\"{key}\":");
            if let Some(tail) = rest.strip_prefix(pat.as_str()) {
                out.push_str(&pat);
                let end = if let Some(s) = tail.strip_prefix('"') {
                    out.push_str(&format!("\"<{key}>\""));
                    1 + s.find('"').expect("closed string") + 1
                } else {
                    out.push_str(&format!("<{key}>"));
                    tail.find([',', '}']).expect("number ends")
                };
                rest = &tail[end..];
                continue 'scan;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

struct Transcript {
    lines: Vec<String>,
    /// Values that differ between runs wherever they appear (user ids, tokens), and their
    /// placeholders.
    names: Vec<(String, &'static str)>,
}

impl Transcript {
    fn name(&mut self, value: impl ToString, placeholder: &'static str) {
        self.names.push((value.to_string(), placeholder));
    }

    fn unname(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (value, placeholder) in &self.names {
            text = text.replace(value.as_str(), placeholder);
        }
        text
    }

    fn note(&mut self, line: &str) {
        self.lines.push(format!("# {line}"));
    }

    async fn send(&mut self, ws: &mut Ws, text: &str) {
        self.lines.push(format!("> {}", self.unname(text)));
        ws.stream.send(Message::text(text)).await.expect("ws send");
    }

    /// The next text frame as sent (schema-checked), skipping WebSocket Pings.
    async fn recv(&mut self, ws: &mut Ws) -> serde_json::Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), ws.stream.next())
                .await
                .expect("frame in time")
                .expect("socket open")
                .expect("frame read");
            match msg {
                Message::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                    validate_server_frame(&v);
                    self.lines
                        .push(format!("< {}", self.unname(&mask(t.as_str()))));
                    return v;
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    async fn close(&mut self, ws: &mut Ws) {
        self.lines.push("> close 1000".into());
        ws.stream
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await
            .expect("close sent");
        loop {
            match ws.stream.next().await {
                Some(Ok(Message::Close(c))) => {
                    let c = c.expect("close frame with a code");
                    self.lines.push(format!(
                        "< close {} {:?}",
                        u16::from(c.code),
                        c.reason.as_str()
                    ));
                    return;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected the close reply, got {other:?}"),
            }
        }
    }
}

async fn walkthrough(app: &TestApp, t: &mut Transcript) {
    let u = app.user().await;
    t.name(u.user_id, "<user_id>");
    let mut ws = app.ws(&u.access).await;
    t.note("README.md quick start: welcome, a batch, ping, a malformed line");
    t.recv(&mut ws).await;
    let batch = r#"{"type":"samples","seq":1,"samples":[{"id":"hr-1","kind":"heart_rate","start":"2026-11-29T08:00:00+01:00","value":61},{"id":"hr-2","kind":"heart_rate","start":"2026-11-29T08:01:00+01:00","value":400}]}"#;
    t.send(&mut ws, batch).await;
    t.recv(&mut ws).await;
    t.send(&mut ws, r#"{"type":"ping"}"#).await;
    t.recv(&mut ws).await;
    t.send(&mut ws, r#"{"type":"samples","seq":2,"samples":["#)
        .await;
    t.recv(&mut ws).await;
    t.send(&mut ws, r#"{"type":"samples","samples":[]}"#).await;
    t.recv(&mut ws).await;
    t.send(&mut ws, r#"{"type":"nap","seq":3}"#).await;
    t.recv(&mut ws).await;

    t.note("streams: subscribe, unsubscribe, a stream nobody shared, not subscribed");
    t.send(&mut ws, r#"{"type":"subscribe","stream":"analyses"}"#)
        .await;
    t.recv(&mut ws).await;
    t.send(&mut ws, r#"{"type":"unsubscribe","stream":"analyses"}"#)
        .await;
    t.recv(&mut ws).await;
    let other = app.account().await;
    t.name(other, "<other_user_id>");
    t.send(
        &mut ws,
        &format!(r#"{{"type":"subscribe","stream":"insights","user_id":"{other}"}}"#),
    )
    .await;
    t.recv(&mut ws).await;
    t.send(&mut ws, r#"{"type":"unsubscribe","stream":"insights"}"#)
        .await;
    t.recv(&mut ws).await;

    t.note("analyze: a new analysis and its insight are stream events; asked again, a plain frame");
    let steps: Vec<String> = (0..5)
        .map(|i| {
            format!(
                r#"{{"id":"steps-{i}","kind":"step_count","start":"2026-11-29T08:{:02}:00+01:00","end":"2026-11-29T08:{:02}:00+01:00","value":{}}}"#,
                i * 10,
                i * 10 + 10,
                300 + 100 * i
            )
        })
        .collect();
    t.send(
        &mut ws,
        &format!(
            r#"{{"type":"samples","seq":4,"samples":[{}]}}"#,
            steps.join(",")
        ),
    )
    .await;
    t.recv(&mut ws).await;
    t.send(&mut ws, r#"{"type":"analyze"}"#).await;
    let analysis = t.recv(&mut ws).await;
    assert_eq!(analysis["type"], "analysis", "{analysis}");
    let insight = t.recv(&mut ws).await;
    assert_eq!(insight["type"], "insight", "{insight}");
    t.send(&mut ws, r#"{"type":"analyze"}"#).await;
    t.recv(&mut ws).await;

    t.note("resuming a stream: the missed event is replayed from the store");
    t.send(
        &mut ws,
        r#"{"type":"subscribe","stream":"insights","since":0}"#,
    )
    .await;
    t.recv(&mut ws).await;
    t.recv(&mut ws).await;
    t.send(&mut ws, r#"{"type":"unsubscribe","stream":"insights"}"#)
        .await;
    t.recv(&mut ws).await;

    t.note("refresh, a duplicate resend, close");
    let (access, _) = app.login(&u.email).await;
    t.name(&access, "<access_token>");
    t.send(
        &mut ws,
        &format!(r#"{{"type":"refresh","access_token":"{access}"}}"#),
    )
    .await;
    t.recv(&mut ws).await;
    t.send(&mut ws, batch).await;
    t.recv(&mut ws).await;

    t.note("an edit (same id, higher version) and a delete, outside the analysed week: acks only");
    t.send(
        &mut ws,
        r#"{"type":"samples","seq":5,"samples":[{"id":"hr-old","kind":"heart_rate","start":"2026-11-10T08:00:00+01:00","value":58,"version":1}]}"#,
    )
    .await;
    t.recv(&mut ws).await;
    t.send(
        &mut ws,
        r#"{"type":"samples","seq":6,"samples":[{"id":"hr-old","kind":"heart_rate","start":"2026-11-10T08:00:00+01:00","value":60,"version":2}]}"#,
    )
    .await;
    t.recv(&mut ws).await;
    t.send(
        &mut ws,
        r#"{"type":"delete","seq":7,"ids":["hr-old","hr-unknown"]}"#,
    )
    .await;
    t.recv(&mut ws).await;
    t.send(&mut ws, r#"{"type":"delete","seq":8,"ids":[]}"#)
        .await;
    t.recv(&mut ws).await;
    t.close(&mut ws).await;
}

/// A device on a server started with `--max-frames-per-sec 1 --frame-burst 1`: its second
/// frame in the same second is refused.
async fn rate_limited(app: &TestApp, t: &mut Transcript) {
    let u = app.user().await;
    t.name(u.user_id, "<user_id>");
    let mut ws = app.ws(&u.access).await;
    t.note("--max-frames-per-sec 1 --frame-burst 1: the second frame within a second");
    t.recv(&mut ws).await;
    t.send(&mut ws, r#"{"type":"ping"}"#).await;
    t.send(&mut ws, r#"{"type":"samples","seq":5,"samples":[]}"#)
        .await;
    t.recv(&mut ws).await;
    let refused = t.recv(&mut ws).await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    t.close(&mut ws).await;
}

#[tokio::test]
async fn transcript_of_the_websocat_walkthrough_is_byte_for_byte_the_golden_file() {
    let mut t = Transcript {
        lines: Vec::new(),
        names: Vec::new(),
    };
    let app = spawn_app().await;
    walkthrough(&app, &mut t).await;
    let limited = spawn_app_with(|c| {
        c.limits.max_frames_per_sec = 1;
        c.limits.frame_burst = 1;
    })
    .await;
    rate_limited(&limited, &mut t).await;
    let got = t.lines.join("\n") + "\n";

    let path = golden_path();
    if std::env::var_os("CLARITY_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &got).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; CLARITY_UPDATE_GOLDEN=1 writes it", path.display()));
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        assert_eq!(
            w,
            g,
            "line {} of {} differs (CLARITY_UPDATE_GOLDEN=1 rewrites the file once the change is intended)",
            i + 1,
            path.display()
        );
    }
    assert_eq!(want, got, "the transcript has a different number of lines");
}

#[test]
fn mask_replaces_only_the_varying_values() {
    assert_eq!(
        mask(r#"{"type":"x","session_id":"ab\u00e9","n":1,"retry_after_ms":20,"epoch":"e"}"#),
        r#"{"type":"x","session_id":"<session_id>","n":1,"retry_after_ms":<retry_after_ms>,"epoch":"<epoch>"}"#
    );
}
