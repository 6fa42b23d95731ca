//! Insight claims against their analyses (issue 18), through the real server: every phone
//! fixture (streamed as tests/api/phone_fixtures.rs streams it) and the clean actigraphy week
//! of tests/api/insights.rs, with the local generator and with Gemini played by the mock. The
//! checker (common/claims.rs) reads the stored insight and the stored analysis it was written
//! from, over REST, and refuses any number that does not trace to the analysis and any claim
//! the analysis contradicts.
//!
//! The Gemini mock answers as a model that cites its prompt: a sentence for each number the
//! prompt gives (sleep, efficiency, rhythm, peak, heart rate, the heart trend lines). So a
//! contradiction in what the prompt hands the model shows up in the model's text; and the
//! prompt itself is checked to hold only the insight's features (which trace to the analysis)
//! and no personal data or sample rows.

use serde_json::{Value, json};

use crate::analysis::analyze;
use crate::common::claims::{assert_truthful, check};
use crate::common::{Session, TestApp, Ws, spawn_app};
use crate::insights::{Answer, start_mock, upload_days, with_gemini};
use crate::phone_fixtures::{Check, FIXTURES, load, stream};

/// The insight of `analysis` as the server pushed it.
async fn insight_of(ws: &mut Ws, analysis: &Value) -> Value {
    loop {
        let v = ws.recv_within(std::time::Duration::from_secs(30)).await;
        if v["type"] == "insight" && v["analysis_id"] == analysis["analysis_id"] {
            return v;
        }
        assert_ne!(v["type"], "insight_failed", "{v}");
    }
}

/// The stored insight and the stored analysis it was written from, read over REST.
async fn stored(app: &TestApp, user: &Session, pushed: &Value) -> (Value, Value) {
    let id = pushed["insight_id"].as_str().unwrap();
    let (s, insight) = app
        .get(&format!("/api/v1/insights/{id}"), Some(&user.access))
        .await;
    assert!(s.is_success(), "{insight}");
    let aid = insight["analysis_id"].as_str().unwrap();
    let (s, analysis) = app
        .get(&format!("/api/v1/analyses/{aid}"), Some(&user.access))
        .await;
    assert!(s.is_success(), "{analysis}");
    (insight, analysis)
}

/// A phone fixture streamed by a new user; the stored insight and analysis of its `analyze`.
async fn phone_insight(app: &TestApp, name: &str) -> (Session, Value, Value) {
    let (samples, _) = load(name);
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let mut c = Check::new(name);
    stream(&mut c, &mut ws, &samples).await;
    // Rejected samples are tests/api/phone_fixtures.rs's finding ([A kinds]); the insight is
    // checked against whatever analysis the accepted ones give.
    for f in &c.failures {
        eprintln!("{f}");
    }
    let a = analyze(&mut ws).await;
    let pushed = insight_of(&mut ws, &a).await;
    let (insight, analysis) = stored(app, &user, &pushed).await;
    (user, insight, analysis)
}

/// The clean actigraphy week of tests/api/insights.rs (minute counts, a daily curve peaking at
/// 15:00); the stored insight and analysis of its `analyze`.
async fn actigraphy_insight(app: &TestApp) -> (Session, Value, Value) {
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-15T00:00:00+01:00").unwrap();
    upload_days(&mut ws, t0, 0..7, |_| 15.0).await;
    let a = analyze(&mut ws).await;
    let pushed = insight_of(&mut ws, &a).await;
    let (insight, analysis) = stored(app, &user, &pushed).await;
    (user, insight, analysis)
}

/// Checks each case and reports every violation of every case together.
fn report(cases: Vec<(String, Value, Value)>) {
    let mut all = Vec::new();
    for (label, insight, analysis) in &cases {
        eprintln!(
            "{label}: {}",
            crate::common::claims::texts(insight).join(" | ")
        );
        all.extend(
            check(insight, analysis, None)
                .into_iter()
                .map(|v| format!("{label}: {v}")),
        );
    }
    assert!(
        all.is_empty(),
        "{} claim(s) the analyses do not support:\n{}",
        all.len(),
        all.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_insights_of_the_actigraphy_week_say_only_what_its_analysis_holds() {
    let app = spawn_app().await;
    let (_, insight, analysis) = actigraphy_insight(&app).await;
    assert_eq!(insight["generator"], "local");
    assert_truthful("actigraphy week (local)", &insight, &analysis, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_insights_of_the_phone_fixtures_say_only_what_their_analyses_hold() {
    let app = spawn_app().await;
    let mut cases = Vec::new();
    for name in FIXTURES {
        let (_, insight, analysis) = phone_insight(&app, name).await;
        assert_eq!(insight["generator"], "local");
        cases.push((format!("{name} (local)"), insight, analysis));
    }
    report(cases);
}

/// `d` minutes as the generators write them.
fn duration(d: f64) -> String {
    let m = d.round() as i64;
    if m < 60 {
        format!("{m} minutes")
    } else {
        format!("{}h {:02}m", m / 60, m % 60)
    }
}

/// The features object of a prompt (the first JSON object in its text).
fn prompt_features(prompt: &str) -> Value {
    let start = prompt.find('{').expect("a features object in the prompt");
    serde_json::Deserializer::from_str(&prompt[start..])
        .into_iter::<Value>()
        .next()
        .expect("one JSON value")
        .expect("the features are JSON")
}

fn prompt_text(request: &Value) -> String {
    request["contents"][0]["parts"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// A model that cites its prompt: a sentence for each number the prompt gives.
fn cite_the_prompt(request: &Value) -> String {
    let prompt = prompt_text(request);
    let f = prompt_features(&prompt);
    let mut points = Vec::new();
    let n = |k: &str| f[k].as_f64();
    if let Some(m) = n("sleep_minutes_mean") {
        points.push(format!("You slept {} a night on average.", duration(m)));
    }
    if let Some(e) = n("sleep_efficiency_mean") {
        points.push(format!("Sleep efficiency averaged {e:.0}%."));
    }
    if let (Some(d), Some(r)) = (n("deep_minutes_mean"), n("rem_minutes_mean")) {
        points.push(format!(
            "Deep sleep averaged {} and REM sleep {} a night.",
            duration(d),
            duration(r)
        ));
    }
    if let Some(is) = n("interdaily_stability") {
        points.push(format!("Interdaily stability was {is:.2}."));
    }
    if let Some(ra) = n("relative_amplitude") {
        points.push(format!("Relative amplitude was {ra:.2}."));
    }
    if let Some(h) = n("acrophase_hours") {
        let m = (h * 60.0).round() as i64 % 1440;
        points.push(format!(
            "Activity peaked around {:02}:{:02}.",
            m / 60,
            m % 60
        ));
    }
    if let Some(hr) = n("mean_heart_rate_bpm") {
        points.push(format!("Mean heart rate was {hr:.0} bpm."));
    }
    // The heart trends, in the prompt's own words.
    let mut in_heart = false;
    for line in prompt.lines() {
        if line.starts_with("Heart trends") {
            in_heart = true;
        } else if in_heart && let Some(l) = line.strip_prefix("- ") {
            points.push(format!("{l}."));
        } else if in_heart && !line.trim().is_empty() {
            in_heart = false;
        }
    }
    if points.is_empty() {
        points.push(format!("Your data covers {} days.", f["days"]));
    }
    points.truncate(8);
    json!({
        "summary": points[0],
        "key_points": points,
        "recommendations": ["Keep a regular routine."]
    })
    .to_string()
}

/// Gemini through the mock on `case`: the server stored the model's answer, which cites the
/// prompt; the prompt holds the insight's features (each traced to the analysis) and no
/// personal data. Returns the stored insight and analysis for the claim checker.
fn gemini_case(
    label: &str,
    mock: &crate::insights::Mock,
    (user, insight, analysis): (Session, Value, Value),
) -> (String, Value, Value) {
    assert_eq!(insight["generator"], "gemini", "{label}: {insight}");
    let without = |mut f: Value| {
        if let Some(m) = f.as_object_mut() {
            m.remove("change");
            m.remove("heart");
        }
        f
    };
    let seen = mock.seen();
    let request = seen
        .iter()
        .find(|s| {
            without(prompt_features(&prompt_text(&s.body))) == without(insight["features"].clone())
        })
        .unwrap_or_else(|| panic!("{label}: no prompt carries the insight's features"));
    let sent = request.body.to_string();
    for personal in [user.user_id.to_string(), user.email.clone()] {
        assert!(
            !sent.contains(&personal),
            "{label}: the prompt carries {personal}"
        );
    }
    // The features are what traces to the analysis: checked with the insight below
    // (`check` traces `features` first).
    let cited: Value = serde_json::from_str(&cite_the_prompt(&request.body)).unwrap();
    assert_eq!(
        insight["key_points"], cited["key_points"],
        "{label}: the server stored the model's answer as given"
    );
    (label.to_owned(), insight, analysis)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gemini_insight_of_the_actigraphy_week_cites_only_what_its_analysis_holds() {
    let (mock, base) = start_mock().await;
    mock.always(Answer::From(cite_the_prompt));
    let app = with_gemini(&base, |c| c.insights.max_attempts = 1).await;
    let case = actigraphy_insight(&app).await;
    report(vec![gemini_case("actigraphy week (gemini)", &mock, case)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_insights_of_the_phone_fixtures_cite_only_what_their_analyses_hold() {
    let (mock, base) = start_mock().await;
    mock.always(Answer::From(cite_the_prompt));
    let app = with_gemini(&base, |c| c.insights.max_attempts = 1).await;
    let mut cases = Vec::new();
    for name in FIXTURES {
        let case = phone_insight(&app, name).await;
        cases.push(gemini_case(&format!("{name} (gemini)"), &mock, case));
    }
    report(cases);
}
