//! Hostile input over REST: generated JSON bodies (and raw garbage) to every endpoint that
//! takes a body, generated query strings and path ids to the ones that read. Never a 5xx,
//! every error is the documented JSON shape (`into_json` checks it), and the server is still
//! healthy afterwards. `CLARITY_FUZZ_CASES` sets the inputs per endpoint (see `common::fuzz`).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::Method;

use crate::common::fuzz::{cases, json_value};
use crate::common::{into_json, spawn_app_with};

/// A body: JSON from the generator most of the time, else raw text or bytes as JSON.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => json_value().prop_map(|v| v.to_string().into_bytes()),
        2 => prop::collection::btree_map(
                prop_oneof![
                    Just("email".to_owned()),
                    Just("password".to_owned()),
                    Just("samples".to_owned()),
                    Just("grantee_email".to_owned()),
                    Just("scope".to_owned()),
                    Just("refresh_token".to_owned()),
                ],
                json_value(),
                0..4,
            )
            .prop_map(|m| serde_json::to_vec(&m).unwrap()),
        1 => "\\PC{0,80}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// A query string or path segment: ids, cursors, numbers, garbage.
fn param() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9_=-]{0,40}",
        any::<i64>().prop_map(|n| n.to_string()),
        Just("00000000-0000-0000-0000-000000000000".to_owned()),
        "\\PC{0,20}".prop_map(|s| urlencoding(&s)),
    ]
}

fn urlencoding(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_bodies_and_queries_never_get_a_server_error() {
    let app = spawn_app_with(|c| {
        // The generator is not an abuser: keep per-user budgets out of the way.
        c.insights.insight_requests_per_hour = 1_000_000;
    })
    .await;
    let user = app.user().await;
    let n = cases(150);
    let mut runner = TestRunner::deterministic();
    let bodies = body();
    let params = param();
    let posts: [(Method, &str, bool); 7] = [
        (Method::POST, "/api/v1/auth/signup", false),
        (Method::POST, "/api/v1/auth/login", false),
        (Method::POST, "/api/v1/auth/refresh", false),
        (Method::POST, "/api/v1/health-data", true),
        (Method::POST, "/api/v1/analyses", true),
        (Method::POST, "/api/v1/insights", true),
        (Method::POST, "/api/v1/shares", true),
    ];
    let reads = [
        "/api/v1/health-data?kind={}&from={}&limit={}&cursor={}",
        "/api/v1/analyses?user_id={}&limit={}&cursor={}",
        "/api/v1/insights?user_id={}&limit={}&cursor={}",
        "/api/v1/analyses/{}",
        "/api/v1/insights/{}?user_id={}",
        "/api/v1/shares/{}",
    ];
    let mut tried = 0usize;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..n {
        for (method, path, auth) in &posts {
            let body = bodies.new_tree(&mut runner).unwrap().current();
            let mut req = app
                .http
                .request(method.clone(), app.url(path))
                .header("content-type", "application/json")
                .body(body.clone());
            if *auth {
                req = req.bearer_auth(&user.access);
            }
            let (status, reply) = into_json(req.send().await.unwrap()).await;
            assert!(
                !status.is_server_error(),
                "{method} {path} {:?} -> {status} {reply}",
                String::from_utf8_lossy(&body)
            );
            *statuses.entry(status.as_u16()).or_default() += 1;
            tried += 1;
        }
        for template in reads {
            let mut url = template.to_owned();
            while url.contains("{}") {
                let p = params.new_tree(&mut runner).unwrap().current();
                url = url.replacen("{}", &p, 1);
            }
            let method = if url.starts_with("/api/v1/shares/") {
                Method::DELETE
            } else {
                Method::GET
            };
            let resp = app
                .http
                .request(method.clone(), app.url(&url))
                .bearer_auth(&user.access)
                .send()
                .await
                .unwrap();
            let (status, reply) = into_json(resp).await;
            assert!(
                !status.is_server_error(),
                "{method} {url} -> {status} {reply}"
            );
            *statuses.entry(status.as_u16()).or_default() += 1;
            tried += 1;
        }
    }
    eprintln!("rest fuzz: {tried} generated requests, statuses {statuses:?}");
    assert!(statuses.keys().any(|s| *s < 300), "some inputs were valid");
    let (status, _) = app.get("/api/ready", None).await;
    assert_eq!(status, 200);
    let (status, _) = app.get("/api/v1/user/profile", Some(&user.access)).await;
    assert_eq!(status, 200);
}
