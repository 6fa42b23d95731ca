//! Login throttling: failed logins for one account from one address make that address wait
//! (429 `too_many_attempts` with `Retry-After`) while the owner logs in from elsewhere; a
//! success resets the count; an address failing across many accounts runs out of its own
//! budget. Client addresses are simulated with `X-Forwarded-For` and
//! `--trust-forwarded-for`; without that flag the header changes nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, into_json, spawn_app_with};

const ATTACKER: &str = "203.0.113.7";
const OWNER: &str = "198.51.100.20";

struct Answer {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
}

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Answer {
    let resp = app
        .http
        .post(app.url("/api/v1/auth/login"))
        // What a load balancer writes: the client's claim first, its own observation last.
        .header("x-forwarded-for", format!("10.9.9.9, {ip}"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let (status, body) = into_json(resp).await;
    Answer {
        status,
        body,
        retry_after,
    }
}

fn assert_throttled(a: &Answer) -> u64 {
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "too_many_attempts");
    assert!(a.body["error"]["retry_after_ms"].as_u64().unwrap() >= 1);
    a.retry_after.expect("Retry-After header")
}

async fn throttled_app(per_account: u32, per_ip: u32) -> TestApp {
    spawn_app_with(|c| {
        c.server.trust_forwarded_for = true;
        c.auth.login_max_failures = per_account;
        c.auth.login_max_failures_per_ip = per_ip;
        c.auth.login_failure_window_secs = 900;
    })
    .await
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_owner_out() {
    let app = throttled_app(3, 100).await;
    app.signup("ann@example.com").await;
    for _ in 0..3 {
        let a = login_from(&app, ATTACKER, "ann@example.com", "wrong horse battery").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    }
    // The attacker's address now waits, even with the right password (it is not checked).
    let a = login_from(&app, ATTACKER, "Ann@Example.com", "wrong horse battery").await;
    assert_eq!(assert_throttled(&a), 1);
    let a = login_from(&app, ATTACKER, "ann@example.com", PASSWORD).await;
    assert_throttled(&a);

    // The owner, elsewhere, logs in at once.
    let a = login_from(&app, OWNER, "ann@example.com", PASSWORD).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // After the wait one more guess is allowed, and the wait doubles.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = login_from(&app, ATTACKER, "ann@example.com", "wrong horse battery").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = login_from(&app, ATTACKER, "ann@example.com", "wrong horse battery").await;
    assert_eq!(assert_throttled(&a), 2);

    // Other accounts from that address are not held back by this one.
    app.signup("bob@example.com").await;
    let a = login_from(&app, ATTACKER, "bob@example.com", PASSWORD).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn a_success_resets_the_count() {
    let app = throttled_app(3, 100).await;
    app.signup("cy@example.com").await;
    for round in 0..3 {
        for _ in 0..2 {
            let a = login_from(&app, OWNER, "cy@example.com", "wrong horse battery").await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "round {round}");
        }
        let a = login_from(&app, OWNER, "cy@example.com", PASSWORD).await;
        assert_eq!(a.status, StatusCode::OK, "round {round}: {}", a.body);
    }
    for _ in 0..3 {
        let a = login_from(&app, OWNER, "cy@example.com", "wrong horse battery").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    assert_throttled(&login_from(&app, OWNER, "cy@example.com", PASSWORD).await);
}

#[tokio::test]
async fn an_address_failing_across_accounts_runs_out_of_budget() {
    // 4 failures per 20 s: one comes back every 5 s.
    let app = spawn_app_with(|c| {
        c.server.trust_forwarded_for = true;
        c.auth.login_max_failures_per_ip = 4;
        c.auth.login_failure_window_secs = 20;
    })
    .await;
    app.signup("dee@example.com").await;
    for i in 0..4 {
        // Unknown accounts count like known ones.
        let a = login_from(&app, ATTACKER, &format!("nobody{i}@example.com"), PASSWORD).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let a = login_from(&app, ATTACKER, "dee@example.com", PASSWORD).await;
    let wait = assert_throttled(&a);
    assert!((1..=5).contains(&wait), "{wait}");
    // Another address is unaffected.
    let a = login_from(&app, OWNER, "dee@example.com", PASSWORD).await;
    assert_eq!(a.status, StatusCode::OK);
    // The bucket refills.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let a = login_from(&app, ATTACKER, "dee@example.com", PASSWORD).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_trusted() {
    let app = spawn_app_with(|c| c.auth.login_max_failures_per_ip = 3).await;
    for i in 0..3 {
        // A new made-up address each time: all of them are the loopback peer here.
        let a = login_from(
            &app,
            &format!("192.0.2.{i}"),
            "eve@example.com",
            "wrong horse battery",
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    assert_throttled(&login_from(&app, "192.0.2.99", "eve@example.com", PASSWORD).await);
}
