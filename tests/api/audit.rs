//! The audit log through the real HTTP and WebSocket interfaces: what a data owner sees about
//! reads of their data, shares and logins, that nobody else sees it, that it holds no health
//! values, and that it pages.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{PASSWORD, Session, TestApp, Ws, spawn_app};

/// Distinctive sample values: they must never show up in an audit entry.
const ACTIVITY: i64 = 48271;
const HEART_RATE: i64 = 187;

async fn share(app: &TestApp, owner: &Session, grantee: &str, scope: &str) -> Value {
    let (status, body) = app
        .post(
            "/api/v1/shares",
            &json!({"grantee_email": grantee, "scope": scope}),
            Some(&owner.access),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// A GET with a user agent, as a dashboard would send it.
async fn get_as(app: &TestApp, path: &str, token: &str, ua: &str) -> (StatusCode, Value) {
    let resp = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    crate::common::into_json(resp).await
}

/// Data on the owner's device, then `analyze`: returns the insight.
async fn produce(device: &mut Ws) -> Value {
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-28T06:00:00+00:00").unwrap();
    let samples: Vec<Value> = (0..30)
        .flat_map(|m| {
            let start = (t0 + chrono::Duration::minutes(m)).to_rfc3339();
            [
                json!({"id": format!("a{m}"), "kind": "activity_count", "start": start, "value": ACTIVITY}),
                json!({"id": format!("h{m}"), "kind": "heart_rate", "start": start, "value": HEART_RATE}),
            ]
        })
        .collect();
    device
        .send(&json!({"type": "samples", "seq": 1, "samples": samples}))
        .await;
    device.send(&json!({"type": "analyze"})).await;
    loop {
        let v = device.recv().await;
        if v["type"] == "insight" {
            return v;
        }
    }
}

/// Waits (bounded) until the caller's log holds `n` login entries (`login`, `login_failed`):
/// they are written beside the login's answer, not before it.
async fn logins_recorded(app: &TestApp, token: &str, n: usize) {
    let done = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let log = audit_log(app, token, 500).await;
            let logins = actions(&log)
                .iter()
                .filter(|a| a.starts_with("login"))
                .count();
            if logins >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(done.is_ok(), "{n} login entries recorded");
}

/// Every entry of the caller's audit log, following cursors with pages of `limit`.
async fn audit_log(app: &TestApp, token: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/audit?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = app.get(&path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = body["entries"].as_array().unwrap();
        assert!(page.len() <= limit);
        out.extend(page.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

/// The entry's text split into its alphanumeric runs.
fn tokens(v: &Value) -> Vec<String> {
    v.to_string()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sees_reads_shares_and_logins_and_nothing_else_does() {
    let app = spawn_app().await;
    let (owner, viewer) = (app.user().await, app.user().await);

    // A wrong password for the owner's account, and one for an email nobody has.
    for email in [owner.email.as_str(), "nobody-here@example.com"] {
        let (status, _) = app
            .post(
                "/api/v1/auth/login",
                &json!({"email": email, "password": "not the password"}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let granted = share(&app, &owner, &viewer.email, "insights").await;
    let mut device = app.ws(&owner.access).await;
    device.welcome().await;
    let insight = produce(&mut device).await;
    let insight_id = insight["insight_id"].as_str().unwrap().to_owned();

    // The viewer reads the owner's insights (a listing, then one), and their own.
    let ua = "ClarityDashboard/1.0 (audit test)";
    let list = format!("/api/v1/insights?user_id={}", owner.user_id);
    let (status, body) = get_as(&app, &list, &viewer.access, ua).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["insights"].as_array().unwrap().len(), 1);
    let one = format!("/api/v1/insights/{insight_id}?user_id={}", owner.user_id);
    assert_eq!(
        get_as(&app, &one, &viewer.access, ua).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/insights", Some(&viewer.access)).await.0,
        StatusCode::OK
    );
    // A missing document discloses nothing and is not recorded.
    let missing = format!(
        "/api/v1/insights/{}?user_id={}",
        Uuid::new_v4(),
        owner.user_id
    );
    assert_eq!(
        app.get(&missing, Some(&viewer.access)).await.0,
        StatusCode::NOT_FOUND
    );
    // No share of analyses: refused, and that is recorded.
    let analyses = format!("/api/v1/analyses?user_id={}", owner.user_id);
    assert_eq!(
        app.get(&analyses, Some(&viewer.access)).await.0,
        StatusCode::FORBIDDEN
    );

    // The viewer subscribes over the WebSocket: one entry per subscribe, not per event.
    let mut dash = app.ws(&viewer.access).await;
    dash.welcome().await;
    dash.send(
        &json!({"type": "subscribe", "stream": "insights", "user_id": owner.user_id, "since": 0}),
    )
    .await;
    let sub = dash.recv_type("subscribed").await;
    assert_eq!(sub["replay"], 1);
    assert_eq!(
        dash.recv_type("insight").await["insight_id"],
        json!(insight_id)
    );
    dash.send(&json!({"type": "subscribe", "stream": "analyses", "user_id": owner.user_id}))
        .await;
    assert_eq!(dash.recv_type("error").await["code"], "forbidden");
    // Made-up owners are refused as before (and leave nothing in the store).
    let nobody = format!("/api/v1/insights?user_id={}", Uuid::new_v4());
    assert_eq!(
        app.get(&nobody, Some(&viewer.access)).await.0,
        StatusCode::FORBIDDEN
    );

    // The owner refreshes, and a replay of the spent token is recorded.
    let spent = owner.refresh.clone();
    let (status, _) = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": spent}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": spent}),
            None,
        )
        .await;
    assert_eq!(body["error"]["code"], "refresh_token_reused");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The replay ended that login, access token included: the owner signs in again.
    let (status, body) = app.get("/api/v1/user/profile", Some(&owner.access)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_revoked"))
    );
    let owner_access = app.login(&owner.email).await.0;

    // The owner revokes.
    let path = format!("/api/v1/shares/{}", granted["share_id"].as_str().unwrap());
    let status = app
        .http
        .delete(app.url(&path))
        .bearer_auth(&owner_access)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(dash.recv_type("unsubscribed").await["reason"], "revoked");

    logins_recorded(&app, &owner_access, 3).await;
    let log = audit_log(&app, &owner_access, 500).await;
    assert_eq!(
        actions(&log),
        [
            "share_revoked",
            "login",
            "refresh_token_reused",
            "access_denied",
            "stream_subscribed",
            "access_denied",
            "data_read",
            "data_read",
            "share_granted",
            "login_failed",
            "login",
            "account_created",
        ],
        "newest first: {log:#?}"
    );
    let by =
        |action: &str| -> Vec<&Value> { log.iter().filter(|e| e["action"] == action).collect() };
    let owner_id = json!(owner.user_id);
    let viewer_id = json!(viewer.user_id);
    for e in &log {
        assert_eq!(e["owner_id"], owner_id, "{e}");
        assert_eq!(e["ip"], "127.0.0.1", "{e}");
        let time = e["time"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(time).expect("RFC 3339 time");
        let id: Uuid = e["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(id.get_version_num(), 7, "time-ordered ids");
    }
    let reads = by("data_read");
    assert_eq!(reads[0]["target"], format!("insights/{insight_id}"));
    assert_eq!(reads[1]["target"], "insights");
    for r in &reads {
        assert_eq!(r["actor_id"], viewer_id);
        assert_eq!(r["user_agent"], ua);
    }
    let sub = by("stream_subscribed")[0];
    assert_eq!(
        (&sub["actor_id"], &sub["target"]),
        (&viewer_id, &json!("insights"))
    );
    // Refused over the WebSocket, then over REST.
    for denied in by("access_denied") {
        assert_eq!(
            (&denied["actor_id"], &denied["target"]),
            (&viewer_id, &json!("analyses"))
        );
    }
    let grantee_target = json!(format!("insights:{}", viewer.user_id));
    for action in ["share_granted", "share_revoked"] {
        let e = by(action)[0];
        assert_eq!(
            (&e["actor_id"], &e["target"]),
            (&owner_id, &grantee_target),
            "{e}"
        );
    }
    assert_eq!(by("login")[0]["actor_id"], owner_id);
    assert_eq!(
        by("login_failed")[0]["actor_id"],
        Value::Null,
        "nobody authenticated"
    );
    assert_eq!(by("refresh_token_reused")[0]["actor_id"], Value::Null);

    // No health value, insight text, email or token in any entry: ids, codes and times only.
    let summary = insight["summary"].as_str().unwrap_or_default();
    for e in &log {
        for v in e.as_object().unwrap().values() {
            assert!(v.is_string() || v.is_null(), "no numbers in entries: {e}");
        }
        let toks = tokens(e);
        for value in [ACTIVITY, HEART_RATE] {
            assert!(!toks.contains(&value.to_string()), "{value} in {e}");
        }
        let text = e.to_string();
        for secret in [
            owner.email.as_str(),
            viewer.email.as_str(),
            PASSWORD,
            owner_access.as_str(),
            owner.refresh.as_str(),
            viewer.access.as_str(),
        ] {
            assert!(!text.contains(secret), "{e}");
        }
        if summary.len() > 20 {
            assert!(!text.contains(&summary[..20]), "{e}");
        }
    }

    // Pages of any size give the same log.
    for limit in [1, 3] {
        assert_eq!(
            audit_log(&app, &owner_access, limit).await,
            log,
            "limit {limit}"
        );
    }

    // The viewer sees their own log only, whatever they ask for.
    logins_recorded(&app, &viewer.access, 1).await;
    let theirs = audit_log(&app, &viewer.access, 500).await;
    assert_eq!(actions(&theirs), ["login", "account_created"]);
    let (status, body) = app
        .get(
            &format!("/api/v1/audit?user_id={}", owner.user_id),
            Some(&viewer.access),
        )
        .await;
    // Not a parameter of the audit log: refused, naming it, rather than ignored.
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query")),
        "{body}"
    );
    assert!(body.to_string().contains("user_id"), "{body}");
    assert!(body.get("entries").is_none(), "{body}");

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("clarity_audit_entries_total{action=\"data_read\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_endpoint_needs_a_token_and_checks_its_query() {
    let app = spawn_app().await;
    let u = app.user().await;
    let (status, body) = app.get("/api/v1/audit", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    for (query, code) in [
        ("limit=0", "invalid_query"),
        ("limit=501", "invalid_query"),
        ("limit=x", "invalid_query"),
        ("cursor=bm90LWEtY3Vyc29y", "invalid_cursor"),
        ("cursor=MTIzOm5vdC1hLXV1aWQ", "invalid_cursor"),
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/audit?{query}"), Some(&u.access))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}: {body}"
        );
    }
    logins_recorded(&app, &u.access, 1).await;
    let (status, body) = app.get("/api/v1/audit", Some(&u.access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        actions(body["entries"].as_array().unwrap()),
        ["login", "account_created"]
    );
    assert_eq!(body["next_cursor"], Value::Null);
}
