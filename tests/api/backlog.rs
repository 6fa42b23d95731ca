//! Uploading a backlog (a phone that was offline for a week) the way protocol/README.md
//! ("Uploading a backlog") says: frames as big as `limits.max_samples_per_frame`, one or two
//! in flight, and after `rate_limited` a wait of `retry_after_ms` before resending that frame.
//! The whole week is acked, each frame is refused at most once, and the session stays open.

use chrono::{DurationRound, Utc};
use serde_json::{Value, json};

use crate::common::{Ws, spawn_app};

/// A week of minute data as a phone would have it: activity counts and heart rate.
fn week_of_minutes() -> Vec<Value> {
    let offset = chrono::FixedOffset::east_opt(3600).unwrap();
    let end = Utc::now()
        .duration_trunc(chrono::Duration::minutes(1))
        .unwrap()
        .with_timezone(&offset);
    let first = end - chrono::Duration::minutes(7 * 1440);
    let mut out = Vec::with_capacity(2 * 7 * 1440);
    for m in 0..7 * 1440 {
        let t = (first + chrono::Duration::minutes(m)).to_rfc3339();
        out.push(json!({"id": format!("a{m}"), "kind": "activity_count", "start": t, "value": (m * 7) % 900}));
        out.push(json!({"id": format!("h{m}"), "kind": "heart_rate", "start": t, "value": 55 + m % 40, "source": "watch"}));
    }
    out
}

/// Waits for the answer to frame `seq` (an `ack` or an `error` naming it).
async fn answer(ws: &mut Ws, seq: u64) -> Value {
    loop {
        let f = ws.recv().await;
        if f["seq"] == seq && (f["type"] == "ack" || f["type"] == "error") {
            return f;
        }
        assert_ne!(f["type"], "error", "unexpected error: {f}");
    }
}

#[tokio::test]
async fn a_week_uploaded_in_big_frames_honouring_retry_after_is_all_acked() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    let welcome = ws.welcome().await;
    let per_frame = welcome["limits"]["max_samples_per_frame"].as_u64().unwrap() as usize;
    assert_eq!(per_frame, 5000, "the documented default");

    let week = week_of_minutes();
    let frames: Vec<&[Value]> = week.chunks(per_frame).collect();
    let (mut accepted, mut refused, mut sent) = (0, 0, 0);
    for (i, batch) in frames.iter().enumerate() {
        let seq = i as u64 + 1;
        let mut refused_this = 0;
        loop {
            ws.send(&json!({"type": "samples", "seq": seq, "samples": batch}))
                .await;
            sent += 1;
            let a = answer(&mut ws, seq).await;
            if a["type"] == "ack" {
                assert_eq!(a["rejected"], json!([]), "{a}");
                accepted += a["accepted"].as_u64().unwrap();
                break;
            }
            assert_eq!(a["code"], "rate_limited", "{a}");
            refused += 1;
            refused_this += 1;
            assert_eq!(refused_this, 1, "honouring retry_after_ms is enough: {a}");
            let wait = a["retry_after_ms"].as_u64().unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
    }
    assert_eq!(
        accepted,
        week.len() as u64,
        "every sample of the week acked"
    );
    assert!(
        refused <= frames.len(),
        "{refused} refusals for {} frames",
        frames.len()
    );
    assert_eq!(sent, frames.len() + refused);

    // The session is still open, and the store has the week.
    ws.send(&json!({"type": "ping"})).await;
    ws.recv_type("pong").await;
    let stored = app
        .all_samples(&u.access, "&kind=activity_count")
        .await
        .len();
    assert_eq!(stored, 7 * 1440);
}
