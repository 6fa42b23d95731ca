//! Fault injection: the store becomes overloaded or fails, then recovers. Clients are told to
//! retry (503 / `store_unavailable` / `internal`), never acked for data that was not stored,
//! and their retries succeed once the store is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clarity::samples::Sample;
use clarity::store::{
    AuditPage, AuditRecord, DocKind, DocPage, DocQuery, DocRecord, RefreshTokenRecord,
    RotateOutcome, SamplePage, SampleQuery, ShareRecord, Store, StoreError, StoreResult,
    StreamEvent, UserRecord,
};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::common::{hr, spawn_with_store};

const HEALTHY: u8 = 0;
const OVERLOADED: u8 = 1;
const BROKEN: u8 = 2;
/// Only audit entries cannot be written.
const AUDIT_DOWN: u8 = 3;
/// Audit appends wait until the mode changes.
const AUDIT_HELD: u8 = 4;

/// Delegates to a real store unless told to fail.
struct Faulty {
    inner: Arc<dyn Store>,
    mode: Arc<AtomicU8>,
}

impl Faulty {
    fn check(&self) -> StoreResult<()> {
        match self.mode.load(Ordering::SeqCst) {
            OVERLOADED => Err(StoreError::Overloaded),
            BROKEN => Err(StoreError::Other(anyhow::anyhow!("disk I/O error"))),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Store for Faulty {
    async fn ping(&self) -> StoreResult<()> {
        self.check()?;
        self.inner.ping().await
    }
    async fn create_user(&self, user: UserRecord) -> StoreResult<()> {
        self.inner.create_user(user).await
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        self.inner.user_by_email(email).await
    }
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        self.inner.user_by_id(id).await
    }
    async fn insert_refresh_token(&self, token: RefreshTokenRecord) -> StoreResult<()> {
        self.inner.insert_refresh_token(token).await
    }
    async fn rotate_refresh_token(
        &self,
        old_hash: [u8; 32],
        new: RefreshTokenRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        self.inner.rotate_refresh_token(old_hash, new, now).await
    }
    async fn revoke_refresh_family(
        &self,
        token_hash: [u8; 32],
        user: Uuid,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>> {
        self.inner
            .revoke_refresh_family(token_hash, user, keep_until)
            .await
    }
    async fn insert_samples(&self, user: Uuid, samples: Vec<Sample>) -> StoreResult<Vec<bool>> {
        self.check()?;
        self.inner.insert_samples(user, samples).await
    }
    async fn query_samples(&self, user: Uuid, query: SampleQuery) -> StoreResult<SamplePage> {
        self.check()?;
        self.inner.query_samples(user, query).await
    }
    async fn put_doc(&self, kind: DocKind, doc: DocRecord) -> StoreResult<bool> {
        self.check()?;
        self.inner.put_doc(kind, doc).await
    }
    async fn get_doc(&self, kind: DocKind, user: Uuid, id: Uuid) -> StoreResult<Option<DocRecord>> {
        self.check()?;
        self.inner.get_doc(kind, user, id).await
    }
    async fn list_docs(&self, kind: DocKind, user: Uuid, query: DocQuery) -> StoreResult<DocPage> {
        self.check()?;
        self.inner.list_docs(kind, user, query).await
    }
    async fn put_share(&self, share: ShareRecord) -> StoreResult<ShareRecord> {
        self.check()?;
        self.inner.put_share(share).await
    }
    async fn get_share(&self, id: Uuid) -> StoreResult<Option<ShareRecord>> {
        self.check()?;
        self.inner.get_share(id).await
    }
    async fn delete_share(&self, share: &ShareRecord) -> StoreResult<bool> {
        self.check()?;
        self.inner.delete_share(share).await
    }
    async fn shares_of(&self, user: Uuid) -> StoreResult<Vec<ShareRecord>> {
        self.check()?;
        self.inner.shares_of(user).await
    }
    async fn has_share(&self, owner: Uuid, grantee: Uuid, scope: DocKind) -> StoreResult<bool> {
        self.check()?;
        self.inner.has_share(owner, grantee, scope).await
    }
    async fn epoch(&self) -> StoreResult<String> {
        self.check()?;
        self.inner.epoch().await
    }
    async fn append_event(
        &self,
        user: Uuid,
        kind: DocKind,
        body: String,
        keep: u64,
    ) -> StoreResult<u64> {
        self.check()?;
        self.inner.append_event(user, kind, body, keep).await
    }
    async fn stream_head(&self, user: Uuid, kind: DocKind) -> StoreResult<u64> {
        self.check()?;
        self.inner.stream_head(user, kind).await
    }
    async fn read_events(
        &self,
        user: Uuid,
        kind: DocKind,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<StreamEvent>> {
        self.check()?;
        self.inner.read_events(user, kind, after, limit).await
    }
    async fn append_audit(&self, entry: AuditRecord) -> StoreResult<()> {
        self.check()?;
        if self.mode.load(Ordering::SeqCst) == AUDIT_DOWN {
            return Err(StoreError::Timeout);
        }
        while self.mode.load(Ordering::SeqCst) == AUDIT_HELD {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.inner.append_audit(entry).await
    }
    async fn list_audit(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        self.check()?;
        self.inner.list_audit(owner, before, limit).await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

#[tokio::test]
async fn store_outage_is_reported_and_recovered_from() {
    let mode = Arc::new(AtomicU8::new(HEALTHY));
    let app = spawn_with_store({
        let mode = mode.clone();
        move |inner| Arc::new(Faulty { inner, mode })
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
        move |inner| Arc::new(Faulty { inner, mode })
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
        move |inner| Arc::new(Faulty { inner, mode })
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
