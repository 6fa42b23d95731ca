//! Account-level rights (issue 19): `GET /api/v1/export` holds every stored item of the
//! caller and nothing of anyone else; `DELETE /api/v1/user` leaves nothing of the user in
//! any store query (SQLite, and DynamoDB Local when configured), ends their sessions and
//! their grantees' subscriptions, and survives a kill -9 halfway (atomic on SQLite).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use clarity::app::App;
use clarity::config::Config;
use clarity::samples::provenance::{Device, Provenance, RecordingMethod};
use clarity::samples::{Extra, Kind, Sample, Timestamp};
use clarity::store::sqlite::{SqliteOptions, SqliteStore};
use clarity::store::{
    AuditRecord, DocKind, DocQuery, DocRecord, SampleOp, SampleQuery, Store, StoreError,
    StoreResult, UserRecord,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::common::process::{login, start_binary};
use crate::common::wrap::{Intercept, Op, wrap};
use crate::common::{
    Backend, JWT_SECRET, PASSWORD, Session, TestApp, into_json, serve, spawn_app, spawn_on,
    spawn_with_store, yesterday,
};

/// `owner` has samples of several kinds (one versioned, with provenance), an analysis and an
/// insight from a real analysis, a share each way with `friend`, and audit entries; `friend`
/// has a sample of their own.
struct Seeded {
    owner: Session,
    friend: Session,
}

/// The samples a seeded owner uploads over REST (plus one written with a version).
const SEEDED_SAMPLES: usize = 60 + 4 + 1;

fn at(m: i64) -> String {
    (yesterday() + chrono::Duration::hours(8) + chrono::Duration::minutes(m)).to_rfc3339()
}

fn versioned(id: &str) -> Sample {
    let mut s = Sample::new(
        id,
        Kind::HeartRate,
        Timestamp::parse(&at(30)).unwrap(),
        None,
        72.0,
        Some("Pixel Watch".into()),
    );
    s.version = Some(3);
    s.extra = Some(Box::new(Extra {
        provenance: Some(Provenance {
            device: Some(Device {
                name: Some("Pixel Watch".into()),
                manufacturer: Some("Google".into()),
                ..Device::default()
            }),
            app: Some("com.google.android.apps.fitness".into()),
            method: Some(RecordingMethod::Automatic),
        }),
        ..Extra::default()
    }));
    s
}

async fn seed(app: &TestApp) -> Seeded {
    let owner = app.user().await;
    let friend = app.user().await;
    let mut samples: Vec<Value> = (0..60)
        .map(|m| {
            json!({"id": format!("act{m}"), "kind": "activity_count", "start": at(m),
                   "value": (m * 7) % 300})
        })
        .collect();
    samples.extend([
        json!({"id": "hr1", "kind": "heart_rate", "start": at(5), "value": 61, "source": "Watch"}),
        json!({"id": "steps1", "kind": "step_count", "start": at(0), "end": at(60), "value": 4000}),
        json!({"id": "sleep1", "kind": "sleep_stage", "start": at(-300), "end": at(-240), "value": "deep"}),
        json!({"id": "bp1", "kind": "blood_pressure", "start": at(10), "value": 120, "diastolic": 80}),
    ]);
    let (s, b) = app
        .post(
            "/api/v1/health-data",
            &json!({ "samples": samples }),
            Some(&owner.access),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["rejected"], json!([]), "{b}");
    app.app
        .store
        .write_samples(owner.user_id, vec![SampleOp::Put(versioned("hr-v"))])
        .await
        .expect("versioned sample stored");
    let (s, b) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": [{"id": "friend-secret", "kind": "heart_rate", "start": at(3), "value": 99}]}),
            Some(&friend.access),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app
        .post("/api/v1/analyses", &json!({}), Some(&owner.access))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .post("/api/v1/insights", &json!({}), Some(&owner.access))
        .await;
    assert!(s.is_success(), "{b}");
    for (from, to, scope) in [(&owner, &friend, "insights"), (&friend, &owner, "analyses")] {
        let (s, b) = app
            .post(
                "/api/v1/shares",
                &json!({"grantee_email": to.email, "scope": scope}),
                Some(&from.access),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    Seeded { owner, friend }
}

/// An export's headers, lines and text (unpacked when gzip).
async fn export(
    app: &TestApp,
    token: &str,
    query: &str,
    accept_gzip: bool,
) -> (reqwest::header::HeaderMap, Vec<Value>, String) {
    let mut req = app
        .http
        .get(app.url(&format!("/api/v1/export{query}")))
        .bearer_auth(token);
    if accept_gzip {
        req = req.header("accept-encoding", "gzip");
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    let raw = resp.bytes().await.unwrap();
    let gz = headers.get("content-encoding").is_some_and(|v| v == "gzip")
        || headers["content-type"] == "application/gzip";
    let text = if gz {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_string(&mut s)
            .expect("a complete gzip stream");
        s
    } else {
        String::from_utf8(raw.to_vec()).unwrap()
    };
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    (headers, lines, text)
}

fn of<'a>(lines: &'a [Value], ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    lines.iter().filter(move |l| l["type"] == ty)
}

fn without_audit(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["type"] != "audit" && l["type"] != "end")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_holds_every_stored_item_of_the_caller_and_nothing_of_others() {
    let app = spawn_app().await;
    let s = seed(&app).await;
    let tok = s.owner.access.as_str();
    let (h, lines, text) = export(&app, tok, "", false).await;
    assert_eq!(h["content-type"], "application/x-ndjson");
    assert_eq!(
        h["content-disposition"],
        format!(
            "attachment; filename=\"clarity-export-{}.ndjson\"",
            s.owner.user_id
        )
        .as_str()
    );
    assert!(h.get("content-encoding").is_none());

    // The profile, without the password hash.
    assert_eq!(lines[0]["type"], "profile");
    assert_eq!(lines[0]["user_id"], s.owner.user_id.to_string());
    assert_eq!(lines[0]["email"], s.owner.email);
    assert!(!text.contains("argon2") && !text.contains("password"));

    // Every sample, in the listing's shape and order (the versioned one included).
    let listed = app.all_samples(tok, "").await;
    let exported: Vec<Value> = of(&lines, "sample").map(|l| l["sample"].clone()).collect();
    assert_eq!(exported.len(), SEEDED_SAMPLES);
    assert_eq!(exported, listed);
    let kinds: BTreeSet<&str> = exported
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");

    // Every analysis and insight, as the REST API serves them.
    for (path, field, ty) in [
        ("/api/v1/analyses?limit=500", "analyses", "analysis"),
        ("/api/v1/insights?limit=500", "insights", "insight"),
    ] {
        let (st, body) = app.get(path, Some(tok)).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let rest = body[field].as_array().unwrap().clone();
        assert!(!rest.is_empty(), "the seed made a {ty}");
        let docs: Vec<Value> = of(&lines, ty).map(|l| l["document"].clone()).collect();
        assert_eq!(docs, rest, "{ty}");
        for l in of(&lines, ty) {
            assert!(l["window_from"].is_string() && l["window_to"].is_string());
            assert!(l["superseded_by"].is_null());
        }
    }

    // Both shares: the one given and the one received.
    let (_, shares) = app.get("/api/v1/shares", Some(tok)).await;
    let rest: BTreeSet<(String, &str)> = shares["granted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["share_id"].as_str().unwrap().to_owned(), "granted"))
        .chain(
            shares["received"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["share_id"].as_str().unwrap().to_owned(), "received")),
        )
        .collect();
    let exported: BTreeSet<(String, &str)> = of(&lines, "share")
        .map(|l| {
            (
                l["share_id"].as_str().unwrap().to_owned(),
                l["direction"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(exported.len(), 2);
    assert_eq!(exported, rest);

    // The audit log, newest first; read after the export, whose own entry is in both.
    let (_, audit) = app.get("/api/v1/audit?limit=500", Some(tok)).await;
    let rest: Vec<&Value> = audit["entries"].as_array().unwrap().iter().collect();
    let exported: Vec<Value> = of(&lines, "audit")
        .map(|l| {
            let mut e = l.clone();
            e.as_object_mut().unwrap().remove("type");
            e
        })
        .collect();
    assert_eq!(exported.iter().collect::<Vec<_>>(), rest);
    let actions: BTreeSet<&str> = exported
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["account_created", "login", "share_granted", "export"] {
        assert!(actions.contains(a), "{a} in {actions:?}");
    }

    // Counted at the end.
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(
        end["counts"],
        json!({"sample": SEEDED_SAMPLES, "analysis": of(&lines, "analysis").count(),
               "insight": of(&lines, "insight").count(), "share": 2, "audit": rest.len()})
    );

    // Nothing of the friend; and the friend's export holds nothing of the owner.
    assert!(!text.contains("friend-secret"));
    assert!(!text.contains(&s.friend.email));
    let (_, _, theirs) = export(&app, &s.friend.access, "", false).await;
    assert!(theirs.contains("friend-secret"));
    for mine in ["\"act0\"", "\"hr-v\"", "\"bp1\"", s.owner.email.as_str()] {
        assert!(!theirs.contains(mine), "{mine} in the friend's export");
    }

    // gzip as a content coding, and as a file: the same lines (one more export entry).
    let (h, zipped, _) = export(&app, tok, "", true).await;
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["content-type"], "application/x-ndjson");
    assert_eq!(without_audit(&zipped), without_audit(&lines));
    assert_eq!(of(&zipped, "audit").count(), rest.len() + 1);
    let (h, file, _) = export(&app, tok, "?gzip=true", false).await;
    assert_eq!(h["content-type"], "application/gzip");
    assert!(h.get("content-encoding").is_none());
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".ndjson.gz\"")
    );
    assert_eq!(without_audit(&file), without_audit(&lines));

    // Parameters are checked; no token, no export.
    for q in ["?gzip=maybe", "?user_id=x"] {
        let (st, b) = app.get(&format!("/api/v1/export{q}"), Some(tok)).await;
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_query"))
        );
    }
    assert_eq!(
        app.get("/api/v1/export", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn delete_user(app: &TestApp, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = app.http.delete(app.url("/api/v1/user")).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    into_json(req.send().await.unwrap()).await
}

/// An access token for `user` issued `age` ago (still valid).
fn token_issued_ago(app: &TestApp, user: Uuid, age: Duration) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = clarity::auth::tokens::Claims {
        sub: user,
        iat: now - age.as_secs() as i64,
        exp: now + 600,
        iss: app.app.config.auth.jwt_issuer.clone(),
        aud: app.app.config.auth.jwt_audience.clone(),
        jti: Uuid::new_v4(),
        fam: None,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_needs_the_password_or_a_fresh_token() {
    let app = spawn_app().await;
    let u = app.user().await;
    let old = token_issued_ago(&app, u.user_id, Duration::from_secs(600));

    let (s, b) = delete_user(&app, &old, Some(json!({"password": "wrong horse battery"}))).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("wrong_password"))
    );
    for body in [None, Some(json!({}))] {
        let (s, b) = delete_user(&app, &old, body).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("reauthentication_required"))
        );
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("password") && msg.contains("5 minutes"),
            "{msg}"
        );
    }
    let (s, b) = delete_user(&app, &old, Some(json!({"pasword": PASSWORD}))).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );
    // Nothing happened.
    assert_eq!(
        app.get("/api/v1/user/profile", Some(&u.access)).await.0,
        StatusCode::OK
    );

    // The password makes an old token enough.
    let (s, b) = delete_user(&app, &old, Some(json!({"password": PASSWORD}))).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, b) = app.get("/api/v1/user/profile", Some(&u.access)).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("account_not_found"))
    );
}

/// A store whose `erase_user` fails while `fail` is set.
struct FailingErase {
    fail: Arc<AtomicBool>,
}

impl Intercept for FailingErase {
    fn check(&self, op: Op) -> StoreResult<()> {
        if op == Op::EraseUser && self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected".into()));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_erase_keeps_the_account_usable_and_can_be_retried() {
    let fail = Arc::new(AtomicBool::new(true));
    let app = spawn_with_store({
        let fail = fail.clone();
        move |s| wrap(s, FailingErase { fail })
    })
    .await;
    let u = app.user().await;
    let (s, b) = delete_user(&app, &u.access, None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"))
    );
    // The account and its token still work (the refusal was taken back).
    assert_eq!(
        app.get("/api/v1/user/profile", Some(&u.access)).await.0,
        StatusCode::OK
    );
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;
    fail.store(false, Ordering::SeqCst);
    let (s, b) = delete_user(&app, &u.access, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (code, frames) = ws.until_close().await;
    assert_eq!(code, 4011);
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "error" && f["code"] == "account_erased"),
        "{frames:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_leaves_nothing_of_the_user_in_any_store_query_sqlite() {
    erasing_leaves_nothing_of_the_user_in_any_store_query(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_leaves_nothing_of_the_user_in_any_store_query_dynamodb() {
    if let Some(b) = Backend::dynamodb() {
        erasing_leaves_nothing_of_the_user_in_any_store_query(b).await;
    }
}

async fn erasing_leaves_nothing_of_the_user_in_any_store_query(backend: Backend) {
    let app = spawn_on(&backend, |_| {}).await;
    let s = seed(&app).await;
    let (owner, friend) = (&s.owner, &s.friend);
    let store = app.app.store.clone();
    let id = owner.user_id;
    let analysis = store
        .list_docs(DocKind::Analysis, id, doc_query())
        .await
        .unwrap()
        .docs[0]
        .id;
    assert!(store.stream_head(id, DocKind::Analysis).await.unwrap() > 0);

    // Live: the owner's own session, and the friend's dashboard on the owner's insights.
    let mut own = app.ws(&owner.access).await;
    own.welcome().await;
    let mut dash = app.ws(&friend.access).await;
    dash.welcome().await;
    dash.send(&json!({"type": "subscribe", "stream": "insights", "user_id": id}))
        .await;
    dash.recv_type("subscribed").await;

    let (st, b) = delete_user(&app, &owner.access, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");

    let (code, frames) = own.until_close().await;
    assert_eq!(code, 4011, "{frames:?}");
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "error" && f["code"] == "account_erased"),
        "{frames:?}"
    );
    let ended = dash.recv_type("unsubscribed").await;
    assert_eq!(ended["reason"], "revoked", "{ended}");

    // Every store query.
    assert!(store.user_by_id(id).await.unwrap().is_none());
    assert!(store.user_by_email(&owner.email).await.unwrap().is_none());
    let all = SampleQuery {
        kind: None,
        from_ms: None,
        to_ms: None,
        after: None,
        limit: 1000,
    };
    assert!(
        store
            .query_samples(id, all)
            .await
            .unwrap()
            .samples
            .is_empty()
    );
    assert!(store.changes(id, 0, 1000).await.unwrap().changes.is_empty());
    for kind in [DocKind::Analysis, DocKind::Insight] {
        let docs = store.list_docs(kind, id, doc_query()).await.unwrap().docs;
        assert!(docs.is_empty(), "{kind:?}: {docs:?}");
        let events = store.read_events(id, kind, 0, 1000).await.unwrap();
        assert!(events.is_empty(), "{kind:?} events: {events:?}");
    }
    assert!(
        store
            .get_doc(DocKind::Analysis, id, analysis)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.shares_of(id).await.unwrap().is_empty());
    assert!(store.shares_of(friend.user_id).await.unwrap().is_empty());
    assert!(
        !store
            .has_share(id, friend.user_id, DocKind::Insight)
            .await
            .unwrap()
    );
    assert!(
        !store
            .has_share(friend.user_id, id, DocKind::Analysis)
            .await
            .unwrap()
    );
    assert!(store.pending_erasures().await.unwrap().is_empty());
    // Only the tombstone is left, and it says nothing about the person.
    let audit = store.list_audit(id, None, 100).await.unwrap().entries;
    assert_eq!(audit.len(), 1, "{audit:?}");
    let t = &audit[0];
    assert_eq!(
        (
            t.action.as_str(),
            t.actor_id,
            &t.target,
            &t.ip,
            &t.user_agent
        ),
        ("account_erased", Some(id), &None, &None, &None)
    );

    // Every REST read with the old tokens, and every way back in.
    for path in [
        "/api/v1/user/profile",
        "/api/v1/health-data",
        "/api/v1/analyses",
        "/api/v1/insights",
        "/api/v1/shares",
        "/api/v1/audit",
        "/api/v1/export",
    ] {
        let (st, b) = app.get(path, Some(&owner.access)).await;
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("account_not_found")),
            "{path}"
        );
    }
    let refused = app.ws_try(Some(&owner.access), &[]).await.err().unwrap();
    assert_eq!(refused.0, 401, "{refused:?}");
    let (st, b) = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": owner.email, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );
    let (st, _) = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": owner.refresh}),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = app
        .get(
            &format!("/api/v1/analyses?user_id={id}"),
            Some(&friend.access),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // The friend keeps their own data; the address signs up again as a new, empty account.
    let theirs = app.all_samples(&friend.access, "").await;
    assert_eq!(theirs.len(), 1);
    let again = app.signup(&owner.email).await;
    assert_ne!(again, id);
    let (tok, _) = app.login(&owner.email).await;
    assert!(app.all_samples(&tok, "").await.is_empty());
    let (_, a) = app.get("/api/v1/analyses", Some(&tok)).await;
    assert_eq!(a["analyses"], json!([]));
    let (_, sh) = app.get("/api/v1/shares", Some(&tok)).await;
    assert_eq!((&sh["granted"], &sh["received"]), (&json!([]), &json!([])));
}

fn doc_query() -> DocQuery {
    DocQuery {
        from_ms: None,
        to_ms: None,
        after: None,
        limit: 1000,
    }
}

/// Lists one pending erasure once, then the store's own; says when the tombstone is written.
struct PendingOnce {
    user: Uuid,
    listed: AtomicBool,
    tombstone: Arc<Notify>,
}

#[async_trait]
impl Intercept for PendingOnce {
    async fn pending_erasures(&self, inner: &dyn Store) -> StoreResult<Vec<Uuid>> {
        if !self.listed.swap(true, Ordering::SeqCst) {
            return Ok(vec![self.user]);
        }
        inner.pending_erasures().await
    }
    async fn append_audit(&self, inner: &dyn Store, entry: AuditRecord) -> StoreResult<()> {
        let done = entry.action == "account_erased" && entry.owner_id == self.user;
        inner.append_audit(entry).await?;
        if done {
            self.tombstone.notify_one();
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_erasure_is_finished_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
    let user = Uuid::now_v7();
    store
        .create_user(UserRecord {
            id: user,
            email: "pending@example.com".into(),
            display_name: None,
            password_hash: clarity::auth::password::hash(PASSWORD).unwrap(),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    store
        .write_samples(user, vec![SampleOp::Put(versioned("p1"))])
        .await
        .unwrap();
    let now = chrono::Utc::now();
    store
        .put_doc(
            DocKind::Analysis,
            DocRecord {
                id: Uuid::new_v4(),
                user_id: user,
                created_at: now,
                window_from_ms: now.timestamp_millis() - 60_000,
                window_to_ms: now.timestamp_millis(),
                body: "{}".into(),
                superseded_by: None,
            },
        )
        .await
        .unwrap();

    let tombstone = Arc::new(Notify::new());
    let wrapped = wrap(
        store.clone(),
        PendingOnce {
            user,
            listed: AtomicBool::new(false),
            tombstone: tombstone.clone(),
        },
    );
    let mut config = Config::for_tests(dir.path());
    config.auth.jwt_secret = Some(JWT_SECRET.to_string().into());
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .unwrap();
    let app = App::with_store(config, wrapped).await.unwrap();
    let app = serve(Arc::new(app), listener, dir).await;
    tokio::time::timeout(Duration::from_secs(30), tombstone.notified())
        .await
        .expect("the pending erasure is finished at start");

    assert!(store.user_by_id(user).await.unwrap().is_none());
    let all = SampleQuery {
        kind: None,
        from_ms: None,
        to_ms: None,
        after: None,
        limit: 10,
    };
    assert!(
        store
            .query_samples(user, all)
            .await
            .unwrap()
            .samples
            .is_empty()
    );
    assert!(
        store
            .list_docs(DocKind::Analysis, user, doc_query())
            .await
            .unwrap()
            .docs
            .is_empty()
    );
    let (st, _) = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "pending@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

/// What the store holds of `user`: (account, samples, analyses).
async fn holdings(dir: &Path, user: Uuid) -> (bool, usize, usize) {
    let store = SqliteStore::open(dir, SqliteOptions::default()).unwrap();
    let account = store.user_by_id(user).await.unwrap().is_some();
    let all = SampleQuery {
        kind: None,
        from_ms: None,
        to_ms: None,
        after: None,
        limit: 100_000,
    };
    let samples = store.query_samples(user, all).await.unwrap().samples.len();
    let docs = store
        .list_docs(DocKind::Analysis, user, doc_query())
        .await
        .unwrap()
        .docs
        .len();
    store.close().await;
    (account, samples, docs)
}

/// kill -9 at points spread over the erase of a large account: after a restart the account
/// is either all there or all gone (SQLite erases in one transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erase_killed_halfway_leaves_the_account_whole_or_gone() {
    const SAMPLES: usize = 8000;
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (mut whole, mut gone) = (0, 0);
    for (round, delay_ms) in [0u64, 2, 5, 10, 20, 40, 80, 160, 320]
        .into_iter()
        .enumerate()
    {
        let (mut child, addr) = start_binary(
            &["serve"],
            dir.path(),
            &[("CLARITY_JWT_SECRET", JWT_SECRET)],
        )
        .await;
        let email = format!("kill{round}@example.com");
        let resp = http
            .post(format!("http://{addr}/api/v1/auth/signup"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let (st, b) = into_json(resp).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let user: Uuid = b["user_id"].as_str().unwrap().parse().unwrap();
        let token = login(&http, addr, &email).await;
        for chunk in 0..SAMPLES / 4000 {
            let samples: Vec<Value> = (0..4000)
                .map(|i| {
                    let m = (chunk * 4000 + i) as i64;
                    json!({"id": format!("k{m}"), "kind": "activity_count",
                           "start": at(m % 1400 - 1400), "value": m % 300})
                })
                .collect();
            let resp = http
                .post(format!("http://{addr}/api/v1/health-data"))
                .bearer_auth(&token)
                .json(&json!({ "samples": samples }))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
        let resp = http
            .post(format!("http://{addr}/api/v1/analyses"))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);

        let erase = tokio::spawn({
            let (http, token) = (http.clone(), token.clone());
            async move {
                http.delete(format!("http://{addr}/api/v1/user"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .map(|r| r.status())
            }
        });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        child.start_kill().expect("SIGKILL");
        child.wait().await.unwrap();
        let answered = erase.await.unwrap().ok();

        match holdings(dir.path(), user).await {
            // The pipeline may have stored more analyses of its own (completed days).
            (true, SAMPLES, docs) if docs >= 1 => {
                assert_ne!(answered, Some(StatusCode::NO_CONTENT), "a 204 was lost");
                whole += 1;
            }
            (false, 0, 0) => gone += 1,
            other => panic!("round {round}: half an account after kill -9: {other:?}"),
        }
    }
    eprintln!("kill -9 during erase: {whole} rounds left the account whole, {gone} erased it");
    // A restart finds nothing to finish.
    let (_child, addr) = start_binary(
        &["serve"],
        dir.path(),
        &[("CLARITY_JWT_SECRET", JWT_SECRET)],
    )
    .await;
    let resp = http
        .get(format!("http://{addr}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// A store whose document listings fail while `fail` is set.
struct FailingDocs {
    fail: Arc<AtomicBool>,
}

impl Intercept for FailingDocs {
    fn check(&self, op: Op) -> StoreResult<()> {
        if op == Op::ListDocs && self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected".into()));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_that_fails_mid_way_says_so_and_never_looks_complete() {
    let fail = Arc::new(AtomicBool::new(false));
    let app = spawn_with_store({
        let fail = fail.clone();
        move |s| wrap(s, FailingDocs { fail })
    })
    .await;
    let u = app.user().await;
    let (s, b) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": [{"id": "h1", "kind": "heart_rate", "start": at(1), "value": 60}]}),
            Some(&u.access),
        )
        .await;
    assert_eq!((s, &b["accepted"]), (StatusCode::OK, &json!(1)), "{b}");
    fail.store(true, Ordering::SeqCst);
    let resp = app
        .http
        .get(app.url("/api/v1/export"))
        .bearer_auth(&u.access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "profile");
    assert!(lines.iter().any(|l| l["type"] == "sample"), "{text}");
    let last = lines.last().unwrap();
    assert_eq!(
        (&last["type"], &last["code"]),
        (&json!("error"), &json!("store_unavailable"))
    );
    assert!(lines.iter().all(|l| l["type"] != "end"));
}
