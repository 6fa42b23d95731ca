//! The dashboard page: how it is served, and the page itself in headless Chromium driven by
//! Playwright (`tests/browser/dashboard.mjs`), watching a shared user's insight arrive live.
//! The owner's data is step counts on UTC+9 while the browser runs in Los Angeles time: dates
//! and hours must be the owner's, and captions and legend must say steps.
//!
//! The browser test needs `/usr/bin/chromium` and `tests/browser/node_modules` (both installed
//! by `scripts/browser-env`); without them it is skipped with a message, unless
//! `CLARITY_TEST_REQUIRE_BROWSER=1` (CI) makes that a failure. Its screenshots are left at
//! `target/test-artifacts/dashboard-1280.png` and `dashboard-390.png` (a phone's width).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, DurationRound, FixedOffset, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::common::{PASSWORD, Ws, spawn_app};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Launching Chromium and logging in; generous because the test machines have 2 cores.
const READY_WITHIN: Duration = Duration::from_secs(90);
/// The script itself gives up 60 s after READY; this only guards against a hung process.
const DONE_WITHIN: Duration = Duration::from_secs(120);
const DAYS: i64 = 3;
/// The owner's clock (UTC+9), and the viewer's browser somewhere else (UTC-8 in winter,
/// UTC-7 in summer): 16 or 17 hours apart, so every hour label and most dates differ.
const DATA_OFFSET_MINUTES: i32 = 9 * 60;
const VIEWER_TIME_ZONE: &str = "America/Los_Angeles";

pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn dashboard_files_are_served_with_their_types_and_a_strict_csp() {
    let app = spawn_app().await;
    let get = |path: &'static str| {
        let req = app.http.get(app.url(path));
        async move { req.send().await.expect("request") }
    };
    for (path, ctype) in [
        ("/dashboard", "text/html"),
        ("/dashboard/", "text/html"),
        ("/dashboard/clock.js", "application/javascript"),
        ("/dashboard/samples.js", "application/javascript"),
        ("/dashboard/charts.js", "application/javascript"),
        ("/dashboard/views.js", "application/javascript"),
        ("/dashboard/app.js", "application/javascript"),
        ("/dashboard/clarity.js", "application/javascript"),
        ("/dashboard/style.css", "text/css"),
        ("/dashboard/favicon.svg", "image/svg+xml"),
    ] {
        let resp = get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("{path}: no {name} header"))
        };
        assert!(
            header("content-type").starts_with(ctype),
            "{path}: {}",
            header("content-type")
        );
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("connect-src 'self' ws: wss:"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        let body = resp.text().await.unwrap();
        assert!(!body.is_empty(), "{path}");
        if ctype == "text/html" {
            // The scripts in the order they build on each other, app.js last.
            let at = |name: &str| {
                body.find(&format!(r#"<script src="/dashboard/{name}" defer>"#))
                    .unwrap_or_else(|| panic!("{name} is not loaded: {body}"))
            };
            let mut order = ["clock.js", "samples.js", "charts.js", "views.js"]
                .map(at)
                .to_vec();
            // app.js is a module (it imports the SDK, clarity.js): deferred like the others,
            // and run after them in document order.
            order.push(
                body.find(r#"<script src="/dashboard/app.js" type="module">"#)
                    .unwrap_or_else(|| panic!("app.js is not loaded as a module: {body}")),
            );
            assert!(order.is_sorted(), "scripts out of order: {body}");
            assert!(body.contains(r#"href="/dashboard/style.css""#), "{body}");
            assert!(
                body.contains(r#"<link rel="icon" href="/dashboard/favicon.svg""#),
                "{body}"
            );
            // Everything the page loads is its own: no inline script or style (the CSP would
            // block them), no other origin.
            assert!(
                !body.contains("<script>") && !body.contains("style="),
                "{body}"
            );
            assert!(
                !body.contains("http://") && !body.contains("https://"),
                "{body}"
            );
        }
    }
    let icon = get("/dashboard/favicon.svg").await.text().await.unwrap();
    assert!(
        icon.starts_with("<svg") && icon.contains("viewBox"),
        "{icon}"
    );
    // Only these files: anything else under /dashboard is the API's JSON 404.
    let resp = get("/dashboard/secret.txt").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

/// The path of `script` (in tests/browser) when Chromium and the Playwright package are there,
/// or `None` (skip) when one is missing and CI does not require them.
pub(crate) fn browser_env(script: &str) -> Option<PathBuf> {
    let modules = root().join("tests/browser/node_modules/playwright-core");
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing: Vec<String> = [
        (!Path::new(CHROMIUM).exists()).then(|| CHROMIUM.to_owned()),
        (!modules.is_dir()).then(|| modules.display().to_string()),
        (!node).then(|| "node".to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return Some(root().join("tests/browser").join(script));
    }
    let required = std::env::var("CLARITY_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "CLARITY_TEST_REQUIRE_BROWSER=1 but {} missing (run scripts/browser-env)",
        missing.join(", ")
    );
    eprintln!(
        "skipping the dashboard browser test: {} missing (run scripts/browser-env)",
        missing.join(", ")
    );
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_shared_insight_live_in_chromium() {
    let Some(script) = browser_env("dashboard.mjs") else {
        return;
    };
    let app = spawn_app().await;
    let owner = app.user().await;
    let viewer = app.user().await;
    for scope in ["insights", "analyses"] {
        let (s, share) = app
            .post(
                "/api/v1/shares",
                &json!({"grantee_email": viewer.email, "scope": scope}),
                Some(&owner.access),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{share}");
    }

    let shots = root().join("target/test-artifacts");
    std::fs::create_dir_all(&shots).unwrap();
    let (wide, narrow) = (
        shots.join("dashboard-1280.png"),
        shots.join("dashboard-390.png"),
    );
    for shot in [&wide, &narrow] {
        let _ = std::fs::remove_file(shot);
    }
    // The data (made after READY) ends at this minute; the page must show it on UTC+9.
    let clock = FixedOffset::east_opt(DATA_OFFSET_MINUTES * 60).unwrap();
    let end = Utc::now()
        .duration_trunc(chrono::Duration::minutes(1))
        .unwrap()
        .with_timezone(&clock);

    let mut child = Command::new("node")
        .arg(&script)
        .current_dir(script.parent().unwrap())
        .env("BASE_URL", format!("http://{}", app.addr))
        .env("VIEWER_EMAIL", &viewer.email)
        .env("VIEWER_PASSWORD", PASSWORD)
        .env("OWNER_ID", owner.user_id.to_string())
        .env("OWNER_EMAIL", &owner.email)
        .env("SCREENSHOT", &wide)
        .env("SCREENSHOT_NARROW", &narrow)
        .env("TIME_ZONE", VIEWER_TIME_ZONE)
        .env("DATA_OFFSET_MINUTES", DATA_OFFSET_MINUTES.to_string())
        .env("DATA_END_MS", end.timestamp_millis().to_string())
        .env("DATA_DAYS", DAYS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    // Both pipes are drained all along, so the script never blocks on a full pipe; its lines
    // go through eprintln so that the test harness shows them with a failure.
    let (tx, mut stdout) = mpsc::unbounded_channel::<String>();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = out.next_line().await {
            eprintln!("dashboard.mjs: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let err_lines = stderr.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = err.next_line().await {
            eprintln!("dashboard.mjs (stderr): {line}");
            err_lines.lock().unwrap().push(line);
        }
    });
    let report = |what: &str| format!("{what}; its stderr:\n{}", stderr.lock().unwrap().join("\n"));

    let ready = tokio::time::timeout(READY_WITHIN, async {
        while let Some(line) = stdout.recv().await {
            if line == "READY" {
                return true;
            }
        }
        false
    })
    .await;
    match ready {
        Ok(true) => {}
        Ok(false) => {
            let status = child.wait().await.unwrap();
            panic!(
                "{}",
                report(&format!("the script ended ({status}) before READY"))
            );
        }
        Err(_) => panic!("{}", report("no READY within 90 s")),
    }

    // Only now does the owner's data arrive: the page must show it live.
    let mut ws = app.ws(&owner.access).await;
    ws.welcome().await;
    let mut insights = stream_days(&mut ws, end, DAYS).await;
    insights.extend(analyze_until_insight(&mut ws).await);

    let mut seen: Option<Value> = None;
    let done = tokio::time::timeout(DONE_WITHIN, async {
        while let Some(line) = stdout.recv().await {
            if let Some(json) = line.strip_prefix("INSIGHT ") {
                seen = Some(serde_json::from_str(json).expect("INSIGHT line is JSON"));
            }
        }
        child.wait().await.unwrap()
    })
    .await;
    let status = match done {
        Ok(status) => status,
        Err(_) => panic!("{}", report("the script did not finish within 120 s")),
    };
    assert!(
        status.success(),
        "{}",
        report(&format!("the script failed ({status})"))
    );
    let seen = seen.unwrap_or_else(|| panic!("{}", report("no INSIGHT line")));
    let id = seen["insight_id"].as_str().unwrap();
    assert!(
        insights.iter().any(|i| i == id),
        "the page showed {seen}, not one of the owner's insights {insights:?}"
    );
    assert!(seen["bars"].as_u64().unwrap() > 24, "{seen}");

    for shot in [&wide, &narrow] {
        let png = std::fs::read(shot).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        assert!(png.len() > 10 * 1024, "screenshot of {} bytes", png.len());
    }
}

/// `days` of minute activity counts (a research actigraph: actigraphy sleep is scored only on
/// counts, never on steps) ending at `end`, on `end`'s clock, with nights (23:00 to 07:00
/// there) still so that the analysis finds sleep periods. Returns the ids of the insights
/// pushed meanwhile (a completed day brings an analysis and its insight).
async fn stream_days(ws: &mut Ws, end: DateTime<FixedOffset>, days: i64) -> Vec<String> {
    let start = end - chrono::Duration::days(days);
    let samples: Vec<Value> = (0..days * 1440)
        .map(|m| {
            let t = start + chrono::Duration::minutes(m);
            let night = t.hour() >= 23 || t.hour() < 7;
            // Days rise to an afternoon peak, with some scatter, for a chart worth looking at.
            let day_minute = f64::from(t.hour() * 60 + t.minute()) - 420.0;
            let curve = (std::f64::consts::PI * day_minute / 960.0).sin();
            let value = if night {
                0
            } else {
                10 + (90.0 * curve) as i64 + (m * 37) % 30
            };
            json!({"id": format!("dash-{m}"), "kind": "activity_count",
                "start": t.to_rfc3339(), "value": value, "source": "watch"})
        })
        .collect();
    let mut insights = Vec::new();
    for (seq, chunk) in samples.chunks(1000).enumerate() {
        ws.send(&json!({"type": "samples", "seq": seq, "samples": chunk}))
            .await;
        loop {
            let v = ws.recv_within(Duration::from_secs(30)).await;
            match v["type"].as_str() {
                Some("ack") => {
                    assert_eq!(v["accepted"].as_u64(), Some(chunk.len() as u64), "{v}");
                    break;
                }
                Some("insight") => insights.push(v["insight_id"].as_str().unwrap().to_owned()),
                Some("analysis" | "insight_delta") => {}
                _ => panic!("unexpected frame {v}"),
            }
        }
    }
    insights
}

/// Sends `analyze`; returns the ids of the insights that arrive up to the one made from the
/// requested analysis.
async fn analyze_until_insight(ws: &mut Ws) -> Vec<String> {
    ws.send(&json!({"type": "analyze"})).await;
    let mut requested: Option<Value> = None;
    let mut insights = Vec::new();
    loop {
        let v = ws.recv_within(Duration::from_secs(60)).await;
        match v["type"].as_str() {
            Some("analysis") if v["trigger"] == "request" => {
                requested = Some(v["analysis_id"].clone())
            }
            Some("insight") => {
                insights.push(v["insight_id"].as_str().unwrap().to_owned());
                if requested.as_ref() == Some(&v["analysis_id"]) {
                    return insights;
                }
            }
            Some("analysis" | "insight_delta") => {}
            _ => panic!("unexpected frame {v}"),
        }
    }
}
