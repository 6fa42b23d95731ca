//! Fault injection: the store becomes overloaded or fails, then recovers. Clients are told to
//! retry (503 / `store_unavailable` / `internal`), never acked for data that was not stored,
//! and their retries succeed once the store is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use clarity::store::{AuditPage, AuditRecord, Store, StoreError, StoreResult};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::wrap::{Intercept, Op, wrap};
use crate::common::{hr, spawn_with_store};

const HEALTHY: u8 = 0;
const OVERLOADED: u8 = 1;
const BROKEN: u8 = 2;
/// Only audit entries cannot be written.
const AUDIT_DOWN: u8 = 3;
/// Audit appends wait until the mode changes.
const AUDIT_HELD: u8 = 4;

/// Fails the store's calls (all but accounts and tokens, so that clients can still log in)
/// while told to.
struct Faulty {
    mode: Arc<AtomicU8>,
}

#[async_trait]
impl Intercept for Faulty {
    fn check(&self, op: Op) -> StoreResult<()> {
        if op.is_account() {
            return Ok(());
        }
        match self.mode.load(Ordering::SeqCst) {
            OVERLOADED => Err(StoreError::Overloaded),
            BROKEN => Err(StoreError::Other(anyhow::anyhow!("disk I/O error"))),
            _ => Ok(()),
        }
    }
    async fn append_audit(&self, inner: &dyn Store, entry: AuditRecord) -> StoreResult<()> {
        if self.mode.load(Ordering::SeqCst) == AUDIT_DOWN {
            return Err(StoreError::Timeout);
        }
        while self.mode.load(Ordering::SeqCst) == AUDIT_HELD {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        inner.append_audit(entry).await
    }
}

#[tokio::test]
async fn store_outage_is_reported_and_recovered_from() {
    let mode = Arc::new(AtomicU8::new(HEALTHY));
    let app = spawn_with_store({
        let mode = mode.clone();
        move |inner| wrap(inner, Faulty { mode })
    })
    .await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    let batch = json!({"samples": [hr("f1", 1, 60), hr("f2", 2, 61)]});

    mode.store(OVERLOADED, Ordering::SeqCst);
    let resp = app
        .http
        .post(app.url("/api/v1/health-data"))
        .bearer_auth(&u.access)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    let (_, body) = crate::common::into_json(resp).await;
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(body["error"]["retry_after_ms"], 1000);
    let (s, _) = app.get("/api/ready", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let (s, _) = app.get("/api/v1/health-data", Some(&u.access)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);

    ws.send(&json!({"type": "samples", "seq": 1, "samples": batch["samples"]}))
        .await;
    let e = ws.recv_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e["seq"].as_u64()),
        (Some("store_unavailable"), Some(1))
    );
    assert_eq!(e["retry_after_ms"], 1000);

    mode.store(BROKEN, Ordering::SeqCst);
    ws.send(&json!({"type": "samples", "seq": 2, "samples": batch["samples"]}))
        .await;
    let e = ws.recv_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e["seq"].as_u64()),
        (Some("internal"), Some(2))
    );
    assert!(
        !e["message"].as_str().unwrap().contains("disk"),
        "internal causes stay internal"
    );
    let (s, b) = app
        .post("/api/v1/health-data", &batch, Some(&u.access))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("internal"))
    );
    assert!(!b.to_string().contains("disk"));

    // Recovery: the same session retries and the data lands once.
    mode.store(HEALTHY, Ordering::SeqCst);
    let (s, _) = app.get("/api/ready", None).await;
    assert_eq!(s, StatusCode::OK);
    ws.send(&json!({"type": "samples", "seq": 3, "samples": batch["samples"]}))
        .await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(
        (ack["seq"].as_u64(), ack["accepted"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(app.all_samples(&u.access, "").await.len(), 2);
}

#[tokio::test]
async fn a_full_write_queue_answers_503_not_an_ack() {
    // A real SQLite store with a one-slot queue: concurrent uploads overflow it.
    let app = crate::common::spawn_app_with(|c| c.writes.queue_depth = 1).await;
    let u = app.user().await;
    let uploads = (0..64).map(|n| {
        let http = app.http.clone();
        let url = app.url("/api/v1/health-data");
        let token = u.access.clone();
        let samples: Vec<_> = (0..200).map(|i| hr(&format!("q{n}-{i}"), i, 60)).collect();
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"samples": samples}))
                .send()
                .await
                .unwrap();
            (n, resp.status())
        })
    });
    let mut ok = Vec::new();
    let mut unavailable = 0;
    for h in uploads {
        let (n, status) = h.await.unwrap();
        match status {
            StatusCode::OK => ok.push(n),
            StatusCode::SERVICE_UNAVAILABLE => unavailable += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // Exactly the acknowledged uploads are stored.
    let stored = app.all_samples(&u.access, "").await;
    assert_eq!(
        stored.len(),
        ok.len() * 200,
        "{} ok, {unavailable} refused",
        ok.len()
    );
    for n in ok {
        assert!(stored.iter().any(|s| s["id"] == format!("q{n}-0").as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_data_is_not_disclosed_unless_the_read_is_audited() {
    let mode = Arc::new(AtomicU8::new(HEALTHY));
    let app = spawn_with_store({
        let mode = mode.clone();
        move |inner| wrap(inner, Faulty { mode })
    })
    .await;
    let (owner, viewer) = (app.user().await, app.user().await);
    let (status, _) = app
        .post(
            "/api/v1/shares",
            &json!({"grantee_email": viewer.email, "scope": "insights"}),
            Some(&owner.access),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let list = format!("/api/v1/insights?user_id={}", owner.user_id);
    assert_eq!(app.get(&list, Some(&viewer.access)).await.0, StatusCode::OK);

    mode.store(AUDIT_DOWN, Ordering::SeqCst);
    // Fail closed: no entry, no data.
    let (status, body) = app.get(&list, Some(&viewer.access)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
        "{body}"
    );
    assert!(body.get("insights").is_none());
    let mut dash = app.ws(&viewer.access).await;
    dash.welcome().await;
    dash.send(&json!({"type": "subscribe", "stream": "insights", "user_id": owner.user_id}))
        .await;
    let e = dash.recv().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("store_unavailable")),
        "{e}"
    );
    // What already happened is not undone by a missing entry: own reads and logins work.
    assert_eq!(
        app.get("/api/v1/insights", Some(&owner.access)).await.0,
        StatusCode::OK
    );
    app.login(&owner.email).await;
    assert!(
        app.metrics()
            .await
            .contains("clarity_audit_write_failures_total{action=\"data_read\"}")
    );

    mode.store(HEALTHY, Ordering::SeqCst);
    assert_eq!(app.get(&list, Some(&viewer.access)).await.0, StatusCode::OK);
    let (_, log) = app.get("/api/v1/audit", Some(&owner.access)).await;
    let reads = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "data_read")
        .count();
    assert_eq!(
        reads, 2,
        "the two reads that went out, not the refused one: {log}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_answered_before_its_audit_entry_is_written() {
    let mode = Arc::new(AtomicU8::new(HEALTHY));
    let app = spawn_with_store({
        let mode = mode.clone();
        move |inner| wrap(inner, Faulty { mode })
    })
    .await;
    let u = app.user().await;
    let failed = |page: &AuditPage| {
        page.entries
            .iter()
            .filter(|e| e.action == "login_failed")
            .count()
    };
    mode.store(AUDIT_HELD, Ordering::SeqCst);
    // Hang guard only: the answer must not wait for the held audit write at all.
    let (status, body) = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        app.post(
            "/api/v1/auth/login",
            &json!({"email": u.email, "password": "not the password"}),
            None,
        ),
    )
    .await
    .expect("the login is answered while its audit entry is still being written");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "invalid_credentials");
    let page = app
        .app
        .store
        .list_audit(u.user_id, None, 100)
        .await
        .unwrap();
    assert_eq!(failed(&page), 0, "the write is still held");

    mode.store(HEALTHY, Ordering::SeqCst);
    let written = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let page = app
                .app
                .store
                .list_audit(u.user_id, None, 100)
                .await
                .unwrap();
            if failed(&page) == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        written.is_ok(),
        "the failed login is recorded once released"
    );
}
