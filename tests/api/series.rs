//! Compact frames over the WebSocket: a `series` frame stores exactly the samples the
//! equivalent `samples` frame would (same ack, same `GET /api/v1/health-data`), a re-sent
//! series is all duplicates, a series of the wrong shape is refused naming the rule; a
//! compressed frame (gzip or raw DEFLATE in a binary message) is read like its text, and one
//! that inflates past `max_frame_bytes` closes the session with 1009.

use std::io::Write;

use chrono::{Duration, SecondsFormat};
use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{spawn_app, spawn_app_with, yesterday};

/// 08:00 yesterday in UTC+02:00, as sent.
fn start() -> chrono::DateTime<chrono::FixedOffset> {
    (yesterday() + Duration::hours(8))
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
}

fn rfc3339(t: chrono::DateTime<chrono::FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time as responses write it.
fn as_stored(t: chrono::DateTime<chrono::FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A heart-rate series with a gap (index 2), a value out of range (index 3), one given id
/// (index 1) and one version (index 0).
fn series(seq: u64) -> Value {
    json!({
        "type": "series", "seq": seq, "kind": "heart_rate", "unit": "bpm",
        "source": {"name": "Band", "device": {"model": "B2"}},
        "start": rfc3339(start()), "interval_ms": 60_000,
        "values": [61, 62.5, null, 400, 64],
        "ids": [null, "given-1", null, null, null],
        "versions": [3, null, null, null, null]
    })
}

/// The samples frame the series stands for, by the documented rule.
fn equivalent_samples(seq: u64) -> Value {
    let t = |i: i64| start() + Duration::minutes(i);
    let id =
        |i: i64| clarity::samples::derived_id("heart_rate", t(i).timestamp_millis(), Some("Band"));
    let source = json!({"name": "Band", "device": {"model": "B2"}});
    let sample = |i: i64, id: String, value: Value| {
        json!({"id": id, "kind": "heart_rate", "unit": "bpm", "source": source,
               "start": rfc3339(t(i)), "value": value})
    };
    let mut first = sample(0, id(0), json!(61));
    first["version"] = json!(3);
    json!({"type": "samples", "seq": seq, "samples": [
        first,
        sample(1, "given-1".into(), json!(62.5)),
        sample(3, id(3), json!(400)),
        sample(4, id(4), json!(64)),
    ]})
}

/// An ack without its `seq`, with rejections keyed by the value index in the series.
fn outcome(ack: &Value, index_map: &[usize]) -> Value {
    let mut a = ack.clone();
    a.as_object_mut().unwrap().remove("seq");
    for r in a["rejected"].as_array_mut().unwrap() {
        let i = r["index"].as_u64().unwrap() as usize;
        r["index"] = json!(index_map[i]);
    }
    a
}

#[tokio::test]
async fn a_series_stores_exactly_what_the_equivalent_samples_frame_stores() {
    let app = spawn_app().await;
    let (a, b) = (app.user().await, app.user().await);
    let mut ws = app.ws(&a.access).await;
    ws.welcome().await;
    ws.send(&series(1)).await;
    let series_ack = ws.recv_type("ack").await;
    assert_eq!(series_ack["seq"], 1);
    assert_eq!(series_ack["accepted"], 3, "{series_ack}");
    assert_eq!(
        series_ack["rejected"][0]["index"], 3,
        "rejections name the value index"
    );
    assert_eq!(series_ack["rejected"][0]["code"], "out_of_range");

    let mut ws_b = app.ws(&b.access).await;
    ws_b.welcome().await;
    ws_b.send(&equivalent_samples(1)).await;
    let samples_ack = ws_b.recv_type("ack").await;
    // Sample 2 of the samples frame is value 3 of the series.
    assert_eq!(
        outcome(&samples_ack, &[0, 1, 3, 4]),
        outcome(&series_ack, &[0, 1, 2, 3, 4])
    );

    let stored_a = app.all_samples(&a.access, "").await;
    let stored_b = app.all_samples(&b.access, "").await;
    assert_eq!(stored_a.len(), 3);
    assert_eq!(stored_a, stored_b, "the same samples, field for field");
    assert_eq!(stored_a[0]["version"], 3);
    assert_eq!(stored_a[0]["provenance"]["device"]["model"], "B2");
    assert_eq!(stored_a[1]["id"], "given-1");
    assert_eq!(
        stored_a[2]["start"],
        as_stored(start() + Duration::minutes(4))
    );
}

#[tokio::test]
async fn a_series_sent_again_is_all_duplicates() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let frame = json!({"type": "series", "seq": 1, "kind": "step_count", "source": "phone",
        "start": rfc3339(start()), "interval_ms": 60_000, "intervals": true,
        "values": [10, 0, 35]});
    ws.send(&frame).await;
    assert_eq!(ws.recv_type("ack").await["accepted"], 3);
    // Resent after a reconnect (an ack lost): the derived ids are the same.
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    ws.send(&frame).await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(
        (ack["accepted"].as_u64(), ack["duplicates"].as_u64()),
        (Some(0), Some(3))
    );
    let stored = app.all_samples(&u.access, "").await;
    assert_eq!(stored.len(), 3);
    assert_eq!(
        stored[0]["end"],
        as_stored(start() + Duration::minutes(1)),
        "with `intervals` each value spans its interval"
    );
    // Another source's series over the same minutes is other samples.
    let mut other = frame.clone();
    other["seq"] = json!(2);
    other["source"] = json!("watch");
    ws.send(&other).await;
    assert_eq!(ws.recv_type("ack").await["accepted"], 3);
}

#[tokio::test]
async fn a_series_of_the_wrong_shape_is_refused_naming_the_rule() {
    let app = spawn_app_with(|c| c.limits.max_samples_per_frame = 4).await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let base = json!({"type": "series", "seq": 7, "kind": "heart_rate",
        "start": rfc3339(start()), "interval_ms": 1000, "values": [60, 61]});
    let with = |k: &str, v: Value| {
        let mut f = base.clone();
        f[k] = v;
        f
    };
    let cases = [
        (
            with("ids", json!(["a"])),
            "invalid_frame",
            "`ids` must have one entry per value: 1 ids for 2 values",
        ),
        (
            with("versions", json!([1, 2, 3])),
            "invalid_frame",
            "`versions` must have one entry per value: 3 versions for 2 values",
        ),
        (
            with("interval_ms", json!(0)),
            "invalid_frame",
            "`interval_ms` must be an integer within 1..=86400000 (milliseconds between values)",
        ),
        (
            with("interval_ms", json!("60s")),
            "invalid_frame",
            "`interval_ms` must be an integer within 1..=86400000 (milliseconds between values)",
        ),
        (
            with("values", json!([60, 61, 62, 63, 64])),
            "too_many_samples",
            "at most 4 values per series frame, got 5",
        ),
    ];
    for (frame, code, message) in cases {
        ws.send(&frame).await;
        let e = ws.recv_type("error").await;
        assert_eq!(
            (e["code"].as_str(), e["message"].as_str(), e["seq"].as_u64()),
            (Some(code), Some(message), Some(7)),
            "{frame}"
        );
    }
    assert!(
        app.all_samples(&u.access, "").await.is_empty(),
        "nothing stored"
    );
}

fn deflate(text: &str) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

fn gzip(text: &str) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn compressed_frames_are_read_as_their_text() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let values: Vec<u32> = (0..240).map(|i| 55 + i % 20).collect();
    let frame = json!({"type": "series", "seq": 1, "kind": "heart_rate", "source": "ring",
        "start": rfc3339(start()), "interval_ms": 15_000, "values": values})
    .to_string();
    let raw = deflate(&frame);
    assert!(
        raw.len() * 3 < frame.len(),
        "{} -> {}",
        frame.len(),
        raw.len()
    );
    ws.stream.send(Message::binary(raw)).await.unwrap();
    let ack = ws.recv_type("ack").await;
    assert_eq!(
        (ack["seq"].as_u64(), ack["accepted"].as_u64()),
        (Some(1), Some(240))
    );
    // gzip, and a samples frame: any frame may come compressed.
    let samples = json!({"type": "samples", "seq": 2, "samples": [{"id": "z1",
        "kind": "heart_rate", "start": rfc3339(start()), "value": 70}]})
    .to_string();
    ws.stream
        .send(Message::binary(gzip(&samples)))
        .await
        .unwrap();
    assert_eq!(ws.recv_type("ack").await["accepted"], 1);
    ws.stream
        .send(Message::binary(deflate(r#"{"type":"ping"}"#)))
        .await
        .unwrap();
    assert_eq!(ws.recv_type("pong").await["type"], "pong");
    // Bytes that are neither format: refused, the session stays open.
    ws.stream
        .send(Message::binary(vec![0x1f, 0x8b, 9, 9]))
        .await
        .unwrap();
    let e = ws.recv_type("error").await;
    assert_eq!(e["code"], "unsupported_frame");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("gzip (RFC 1952) or raw DEFLATE (RFC 1951)"),
        "{e}"
    );
    ws.send(&json!({"type": "ping"})).await;
    ws.recv_type("pong").await;
    assert_eq!(app.all_samples(&u.access, "").await.len(), 241);
}

/// permessage-deflate is not negotiated (the WebSocket stack cannot): a client offering it
/// gets no extension back and a working session.
#[tokio::test]
async fn permessage_deflate_is_not_negotiated() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app().await;
    let u = app.user().await;
    let mut req = app.ws_url().into_client_request().unwrap();
    let headers = req.headers_mut();
    headers.insert(
        "authorization",
        format!("Bearer {}", u.access).parse().unwrap(),
    );
    headers.insert(
        "sec-websocket-extensions",
        "permessage-deflate; client_max_window_bits"
            .parse()
            .unwrap(),
    );
    let (stream, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert!(resp.headers().get("sec-websocket-extensions").is_none());
    let mut ws = crate::common::Ws { stream };
    ws.welcome().await;
    ws.send(&json!({"type": "ping"})).await;
    ws.recv_type("pong").await;
}

#[tokio::test]
async fn a_compression_bomb_is_refused_with_1009() {
    let app = spawn_app_with(|c| c.limits.max_frame_bytes = 64 * 1024).await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    // 16 MiB of spaces inside a samples frame: 16 KiB on the wire, 256 times the limit once
    // inflated.
    let bomb = format!(
        r#"{{"type":"samples","seq":1,"samples":[]{}}}"#,
        " ".repeat(16 << 20)
    );
    let bytes = deflate(&bomb);
    assert!(bytes.len() < 64 * 1024, "{}", bytes.len());
    ws.stream.send(Message::binary(bytes)).await.unwrap();
    let (code, frames) = ws.until_close().await;
    assert_eq!(code, 1009);
    let e = frames
        .iter()
        .find(|f| f["type"] == "error")
        .expect("an error frame first");
    assert_eq!(e["code"], "frame_too_large");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("inflates past max_frame_bytes 65536"),
        "{e}"
    );
}
