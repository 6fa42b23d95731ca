use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{hr, spawn_app, spawn_app_with};

#[tokio::test]
async fn upload_reports_each_sample() {
    let app = spawn_app().await;
    let u = app.user().await;
    let samples = json!([
        hr("ok-1", 0, 60),
        {"id": "steps-1", "kind": "step_count", "start": "2026-11-01T08:00:00-05:00", "end": "2026-11-01T08:01:00-05:00", "value": 120, "unit": "steps", "source": "watch"},
        {"id": "sleep-1", "kind": "sleep_stage", "start": "2026-11-01T01:00:00+09:00", "end": "2026-11-01T01:30:00+09:00", "value": "deep"},
        hr("ok-1", 0, 60),
        {"id": "bad-kind", "kind": "weather", "start": "2026-11-01T00:00:00Z", "value": 1},
        {"id": "bad-time", "kind": "heart_rate", "start": "yesterday", "value": 60},
        {"id": "bad-range", "kind": "oxygen_saturation", "start": "2026-11-01T00:00:00Z", "value": 120},
        {"id": "bad-unit", "kind": "body_temperature", "start": "2026-11-01T00:00:00Z", "value": 98.6, "unit": "fahrenheit"},
        {"kind": "heart_rate", "start": "2026-11-01T00:00:00Z", "value": 60},
        "not an object",
        {"id": "future", "kind": "heart_rate", "start": "2099-01-01T00:00:00Z", "value": 60},
        {"id": "stage", "kind": "sleep_stage", "start": "2026-11-01T00:00:00Z", "end": "2026-11-01T00:10:00Z", "value": "napping"},
    ]);
    let (s, b) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": samples}),
            Some(&u.access),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["accepted"], 3);
    assert_eq!(b["duplicates"], 1);
    let rejected: Vec<(u64, &str)> = b["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (4, "unknown_kind"),
            (5, "invalid_time"),
            (6, "out_of_range"),
            (7, "unit_mismatch"),
            (8, "invalid_sample"),
            (9, "invalid_sample"),
            (10, "time_out_of_range"),
            (11, "invalid_value"),
        ]
    );

    // Resending the whole batch stores nothing new.
    let (_, b) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": samples}),
            Some(&u.access),
        )
        .await;
    assert_eq!(
        (b["accepted"].as_u64(), b["duplicates"].as_u64()),
        (Some(0), Some(4))
    );

    let stored = app.all_samples(&u.access, "").await;
    assert_eq!(stored.len(), 3);
    let steps = stored.iter().find(|s| s["id"] == "steps-1").unwrap();
    assert_eq!(steps["start"], "2026-11-01T08:00:00-05:00", "offset kept");
    assert_eq!(steps["unit"], "count", "unit normalised");
    assert_eq!(steps["value"], 120);
    assert_eq!(steps["source"], "watch");
    let sleep = stored.iter().find(|s| s["id"] == "sleep-1").unwrap();
    assert_eq!(sleep["value"], "deep");
    assert_eq!(sleep["end"], "2026-11-01T01:30:00+09:00");
    assert!(sleep.get("unit").is_none());
}

#[tokio::test]
async fn upload_limits_and_auth() {
    let app = spawn_app_with(|c| {
        c.limits.max_samples_per_request = 5;
        c.limits.max_body_bytes = 4096;
    })
    .await;
    let u = app.user().await;
    let (s, _) = app
        .post("/api/v1/health-data", &json!({"samples": []}), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let six: Vec<Value> = (0..6).map(|i| hr(&format!("s{i}"), i, 60)).collect();
    let (s, b) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": six}),
            Some(&u.access),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let big = json!({"samples": [{"id": "x".repeat(5000)}]});
    let (s, _) = app.post("/api/v1/health-data", &big, Some(&u.access)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, b) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": 3}),
            Some(&u.access),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );
    let (s, b) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": []}),
            Some(&u.access),
        )
        .await;
    assert_eq!((s, b["accepted"].as_u64()), (StatusCode::OK, Some(0)));
}

#[tokio::test]
async fn history_pages_in_time_order() {
    let app = spawn_app().await;
    let u = app.user().await;
    // Out of order, with ties on the same instant and another kind interleaved.
    let mut samples: Vec<Value> = (0..25)
        .rev()
        .map(|i| hr(&format!("hr-{i:02}"), i, 60 + i))
        .collect();
    samples.push(hr("tie-b", 10, 70));
    samples.push(hr("tie-a", 10, 70));
    samples.push(json!({"id": "steps", "kind": "step_count", "start": "2026-11-01T00:05:30+01:00", "value": 10}));
    let (s, _) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": samples}),
            Some(&u.access),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/api/v1/health-data?limit=4".to_owned();
        if let Some(c) = &cursor {
            path += &format!("&cursor={c}");
        }
        let (s, b) = app.get(&path, Some(&u.access)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let page = b["samples"].as_array().unwrap();
        assert!(page.len() <= 4);
        pages += 1;
        seen.extend(page.iter().map(|s| {
            (
                s["start"].as_str().unwrap().to_owned(),
                s["id"].as_str().unwrap().to_owned(),
            )
        }));
        match b["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 28);
    assert_eq!(pages, 7);
    let ids: HashSet<_> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids.len(), 28, "no sample twice across pages");
    let times: Vec<i64> = seen
        .iter()
        .map(|(t, _)| {
            chrono::DateTime::parse_from_rfc3339(t)
                .unwrap()
                .timestamp_millis()
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "ordered by time: {seen:?}"
    );
    let ties: Vec<&str> = seen
        .iter()
        .filter(|(t, _)| t == "2026-11-01T00:10:00+01:00")
        .map(|(_, id)| id.as_str())
        .collect();
    assert_eq!(ties, vec!["hr-10", "tie-a", "tie-b"]);

    // Filters: kind, and [from, to).
    let steps = app.all_samples(&u.access, "&kind=step_count").await;
    assert_eq!(steps.len(), 1);
    let window = app
        .all_samples(
            &u.access,
            "&kind=heart_rate&from=2026-11-01T00:05:00%2B01:00&to=2026-10-31T23:10:00Z",
        )
        .await;
    let ids: Vec<&str> = window.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["hr-05", "hr-06", "hr-07", "hr-08", "hr-09"]);
}

#[tokio::test]
async fn history_rejects_bad_queries() {
    let app = spawn_app().await;
    let u = app.user().await;
    for (q, code) in [
        ("limit=0", "invalid_query"),
        ("limit=10001", "invalid_query"),
        ("limit=ten", "invalid_query"),
        ("kind=weather", "invalid_query"),
        ("from=yesterday", "invalid_query"),
        ("cursor=%%%", "invalid_cursor"),
        ("cursor=bm90LWEtY3Vyc29y", "invalid_cursor"),
    ] {
        let (s, b) = app
            .get(&format!("/api/v1/health-data?{q}"), Some(&u.access))
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str().unwrap()),
            (StatusCode::BAD_REQUEST, code),
            "{q}"
        );
    }
    let (s, b) = app
        .get("/api/v1/health-data?limit=10000", Some(&u.access))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = app.get("/api/v1/health-data", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn users_never_see_each_other() {
    let app = spawn_app().await;
    let a = app.user().await;
    let b = app.user().await;
    let (_, r) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": [hr("same-id", 1, 60)]}),
            Some(&a.access),
        )
        .await;
    assert_eq!(r["accepted"], 1);
    // The same client id for another user is that user's own sample, not a duplicate.
    let (_, r) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": [hr("same-id", 2, 90)]}),
            Some(&b.access),
        )
        .await;
    assert_eq!(r["accepted"], 1);
    let sa = app.all_samples(&a.access, "").await;
    let sb = app.all_samples(&b.access, "").await;
    assert_eq!((sa.len(), sb.len()), (1, 1));
    assert_eq!(
        (sa[0]["value"].as_i64(), sb[0]["value"].as_i64()),
        (Some(60), Some(90))
    );
}

/// `user_id` on the sample history named someone else and silently got the caller's own
/// samples. It is no parameter there (raw samples are never shared): 400 naming it, for
/// anyone's id, the caller's included; and every query-taking endpoint refuses a parameter
/// it does not take with 400 `invalid_query` naming it, instead of ignoring it.
#[tokio::test]
async fn unknown_and_foreign_query_parameters_are_refused() {
    let app = spawn_app().await;
    let (me, other) = (app.user().await, app.user().await);
    for (u, id) in [(&me, "mine-1"), (&other, "theirs-1")] {
        let (s, body) = app
            .post(
                "/api/v1/health-data",
                &json!({"samples": [hr(id, 0, 60)]}),
                Some(&u.access),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    for whose in [other.user_id, me.user_id] {
        let path = format!("/api/v1/health-data?user_id={whose}");
        let (s, body) = app.get(&path, Some(&me.access)).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_query")),
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("`user_id`"), "{message}");
        assert!(body.get("samples").is_none(), "{body}");
    }
    let doc = uuid::Uuid::new_v4();
    for path in [
        "/api/v1/health-data?kind=heart_rate&colour=blue".to_owned(),
        "/api/v1/analyses?colour=blue".to_owned(),
        "/api/v1/insights?limit=5&colour=blue".to_owned(),
        format!("/api/v1/analyses/{doc}?colour=blue"),
        format!("/api/v1/insights/{doc}?colour=blue"),
        "/api/v1/audit?colour=blue".to_owned(),
    ] {
        let (s, body) = app.get(&path, Some(&me.access)).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_query")),
            "{path}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("colour"), "{path}: {message}");
    }
    // The parameters each endpoint does take still work.
    let (s, body) = app
        .get(
            "/api/v1/health-data?kind=heart_rate&limit=10",
            Some(&me.access),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mine-1"]);
}
