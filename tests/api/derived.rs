//! Derived results follow the data: deleting the samples an analysis used recomputes it over
//! the same range; the new analysis (and insight) names the one it supersedes, the old ones
//! are marked over REST (`superseded_by`) and on the streams (`superseded` events), and no
//! current analysis counts a deleted sample.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::common::{Session, TestApp, Ws, spawn_app, yesterday};

const NIL: &str = "00000000-0000-0000-0000-000000000000";

/// Sixty activity minutes from `hour`:00 yesterday (UTC), ids `{prefix}{i}`.
fn hour_of_activity(prefix: &str, hour: i64) -> Vec<Value> {
    (0..60)
        .map(|i| {
            let t = yesterday() + chrono::Duration::hours(hour) + chrono::Duration::minutes(i);
            json!({"id": format!("{prefix}{i}"), "kind": "activity_count",
                   "start": t.to_rfc3339(), "value": 100 + (i * 7) % 50})
        })
        .collect()
}

fn ids(prefix: &str) -> Vec<String> {
    (0..60).map(|i| format!("{prefix}{i}")).collect()
}

/// Reads frames until every wanted `(type, stream)` was seen once; returns them by key.
async fn collect(ws: &mut Ws, wanted: &[(&str, &str)]) -> HashMap<(String, String), Value> {
    let mut seen = HashMap::new();
    while wanted
        .iter()
        .any(|(t, s)| !seen.contains_key(&(t.to_string(), s.to_string())))
    {
        let v = ws.recv_within(std::time::Duration::from_secs(60)).await;
        let key = (
            v["type"].as_str().unwrap_or("").to_owned(),
            v["stream"].as_str().unwrap_or("").to_owned(),
        );
        match key.0.as_str() {
            "ack" | "insight_delta" => {}
            "analysis" | "insight" | "superseded" => {
                assert!(seen.insert(key, v.clone()).is_none(), "twice: {v}");
            }
            other => panic!("unexpected frame {other}: {v}"),
        }
    }
    seen
}

async fn listed(app: &TestApp, user: &Session, what: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/v1/{what}?limit=500"), Some(&user.access))
        .await;
    assert!(status.is_success(), "{body}");
    body[what].as_array().unwrap().clone()
}

fn current(docs: &[Value]) -> Vec<&Value> {
    docs.iter()
        .filter(|d| d.get("superseded_by").is_none())
        .collect()
}

/// A user whose two hours of yesterday (02:00 and 06:00, ids `early*` and `late*`) were
/// streamed and analysed on request; the socket is left after that analysis' and its
/// insight's frames, which are returned by `(type, stream)`.
async fn two_hours_analysed(app: &TestApp) -> (Session, Ws, HashMap<(String, String), Value>) {
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let mut samples = hour_of_activity("early", 2);
    samples.extend(hour_of_activity("late", 6));
    ws.send(&json!({"type": "samples", "seq": 1, "samples": samples}))
        .await;
    ws.send(&json!({"type": "analyze"})).await;
    let first = collect(
        &mut ws,
        &[("analysis", "analyses"), ("insight", "insights")],
    )
    .await;
    (user, ws, first)
}

async fn next_analysis(ws: &mut Ws) -> Value {
    loop {
        let v = ws.recv_within(std::time::Duration::from_secs(60)).await;
        if v["type"] == "analysis" {
            return v;
        }
    }
}

fn by_id<'a>(docs: &'a [Value], field: &str, id: &Value) -> &'a Value {
    docs.iter()
        .find(|d| &d[field] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {docs:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_samples_of_an_analysis_supersedes_it_and_its_insight() {
    let app = spawn_app().await;
    // Two hours of one day (no day completes): 02:00 and 06:00 yesterday.
    let (user, mut ws, first) = two_hours_analysed(&app).await;
    let a1 = &first[&("analysis".into(), "analyses".into())];
    let i1 = &first[&("insight".into(), "insights".into())];
    assert_eq!(a1["minutes_present"], 120, "{a1}");
    assert_eq!(i1["analysis_id"], a1["analysis_id"]);

    // Delete the early hour: the analysis over that range is recomputed without it.
    ws.send(&json!({"type": "delete", "seq": 2, "ids": ids("early")}))
        .await;
    let second = collect(
        &mut ws,
        &[
            ("analysis", "analyses"),
            ("superseded", "analyses"),
            ("insight", "insights"),
            ("superseded", "insights"),
        ],
    )
    .await;
    let a2 = &second[&("analysis".into(), "analyses".into())];
    let i2 = &second[&("insight".into(), "insights".into())];
    assert_eq!(a2["supersedes"], a1["analysis_id"], "{a2}");
    assert_eq!(a2["trigger"], "data_changed", "{a2}");
    assert_eq!(
        a2["minutes_present"], 60,
        "the deleted hour is not counted: {a2}"
    );
    let late_start = (yesterday() + chrono::Duration::hours(6)).timestamp();
    let from = chrono::DateTime::parse_from_rfc3339(a2["window"]["from"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert_eq!(from, late_start, "{a2}");
    let sup = &second[&("superseded".into(), "analyses".into())];
    assert_eq!(
        (&sup["id"], &sup["by"], &sup["user_id"]),
        (&a1["analysis_id"], &a2["analysis_id"], &json!(user.user_id)),
        "{sup}"
    );
    assert!(sup["offset"].as_u64().unwrap() > a2["offset"].as_u64().unwrap());
    assert_eq!(i2["analysis_id"], a2["analysis_id"], "{i2}");
    assert_eq!(i2["supersedes"], i1["insight_id"], "{i2}");
    let isup = &second[&("superseded".into(), "insights".into())];
    assert_eq!(
        (&isup["id"], &isup["by"]),
        (&i1["insight_id"], &i2["insight_id"])
    );

    // History: the old ones name their replacement; the current analysis covers no deleted
    // sample.
    let analyses = listed(&app, &user, "analyses").await;
    assert_eq!(
        by_id(&analyses, "analysis_id", &a1["analysis_id"])["superseded_by"],
        a2["analysis_id"]
    );
    let now = current(&analyses);
    assert_eq!(now.len(), 1, "{analyses:?}");
    assert_eq!(now[0]["analysis_id"], a2["analysis_id"]);
    assert_eq!(now[0]["minutes_present"], 60);
    let insights = listed(&app, &user, "insights").await;
    assert_eq!(
        by_id(&insights, "insight_id", &i1["insight_id"])["superseded_by"],
        i2["insight_id"]
    );
    let now = current(&insights);
    assert_eq!(now.len(), 1, "{insights:?}");
    assert_eq!(now[0]["analysis_id"], a2["analysis_id"]);
    // One document by id shows the mark too.
    let (_, one) = app
        .get(
            &format!("/api/v1/analyses/{}", a1["analysis_id"].as_str().unwrap()),
            Some(&user.access),
        )
        .await;
    assert_eq!(one["superseded_by"], a2["analysis_id"], "{one}");

    // Delete the rest: nothing is left to analyse, so both are withdrawn.
    ws.send(&json!({"type": "delete", "seq": 3, "ids": ids("late")}))
        .await;
    let third = collect(
        &mut ws,
        &[("superseded", "analyses"), ("superseded", "insights")],
    )
    .await;
    let sup = &third[&("superseded".into(), "analyses".into())];
    assert_eq!((&sup["id"], &sup["by"]), (&a2["analysis_id"], &json!(NIL)));
    let isup = &third[&("superseded".into(), "insights".into())];
    assert_eq!((&isup["id"], &isup["by"]), (&i2["insight_id"], &json!(NIL)));
    assert!(current(&listed(&app, &user, "analyses").await).is_empty());
    assert!(current(&listed(&app, &user, "insights").await).is_empty());
}

/// Marks documents superseded half a second late.
struct SlowMark;

#[async_trait::async_trait]
impl crate::common::wrap::Intercept for SlowMark {
    async fn set_superseded(
        &self,
        inner: &dyn clarity::store::Store,
        kind: clarity::store::DocKind,
        user: uuid::Uuid,
        id: uuid::Uuid,
        by: Option<uuid::Uuid>,
    ) -> clarity::store::StoreResult<bool> {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        inner.set_superseded(kind, user, id, by).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_arrives_only_once_the_old_analysis_lists_as_superseded() {
    // A dashboard that re-lists analyses when one arrives must not see two current ones,
    // however slow the store is to mark the old one.
    let app =
        crate::common::spawn_with_store(|store| crate::common::wrap::wrap(store, SlowMark)).await;
    let (user, mut ws, _) = two_hours_analysed(&app).await;
    for round in 0..5u64 {
        ws.send(&json!({"type": "delete", "seq": 2 + round, "ids": [format!("early{round}")]}))
            .await;
        let new = next_analysis(&mut ws).await;
        assert_eq!(new["trigger"], "data_changed", "{new}");
        let old = new["supersedes"].as_str().unwrap();
        let (status, body) = app
            .get(&format!("/api/v1/analyses/{old}"), Some(&user.access))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["superseded_by"], new["analysis_id"],
            "round {round}: {body}"
        );
        let now = current(&listed(&app, &user, "analyses").await)
            .into_iter()
            .map(|a| a["analysis_id"].clone())
            .collect::<Vec<_>>();
        assert_eq!(now, vec![new["analysis_id"].clone()], "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_events_are_replayed_on_resume() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut ws = app.ws(&user.access).await;
    ws.welcome().await;
    let mut samples = hour_of_activity("x", 3);
    samples.extend(hour_of_activity("y", 8));
    ws.send(&json!({"type": "samples", "seq": 1, "samples": samples}))
        .await;
    ws.send(&json!({"type": "analyze"})).await;
    let first = collect(&mut ws, &[("analysis", "analyses")]).await;
    let offset = first[&("analysis".into(), "analyses".into())]["offset"]
        .as_u64()
        .unwrap();
    ws.send(&json!({"type": "delete", "seq": 2, "ids": ids("x")}))
        .await;
    collect(&mut ws, &[("superseded", "analyses")]).await;
    drop(ws);

    // A dashboard that last saw the first analysis resumes after it and gets the rest.
    let mut dash = app.ws(&user.access).await;
    dash.welcome().await;
    dash.send(&json!({"type": "subscribe", "stream": "analyses", "since": offset}))
        .await;
    let sub = dash.recv_type("subscribed").await;
    assert_eq!(sub["recover"], true, "{sub}");
    let mut types = Vec::new();
    for _ in 0..sub["replay"].as_u64().unwrap() {
        let v = dash.recv().await;
        types.push(v["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(types, ["analysis", "superseded"]);
}

/// Fails the first `left` calls of `op` with a transient error (a store timing out).
struct Flaky {
    op: crate::common::wrap::Op,
    left: std::sync::atomic::AtomicUsize,
}

impl crate::common::wrap::Intercept for Flaky {
    fn check(&self, op: crate::common::wrap::Op) -> clarity::store::StoreResult<()> {
        use std::sync::atomic::Ordering;
        if op == self.op
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(clarity::store::StoreError::Timeout);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recomputation_that_meets_a_transient_store_failure_is_retried() {
    // Marking the old analysis superseded is the recomputation's last store write: it times
    // out twice, as DynamoDB under load does.
    let app = crate::common::spawn_with_store(|store| {
        crate::common::wrap::wrap(
            store,
            Flaky {
                op: crate::common::wrap::Op::SetSuperseded,
                left: 2.into(),
            },
        )
    })
    .await;
    let (user, mut ws, first) = two_hours_analysed(&app).await;
    let a1 = &first[&("analysis".into(), "analyses".into())];
    ws.send(&json!({"type": "delete", "seq": 2, "ids": ids("early")}))
        .await;
    let second = collect(
        &mut ws,
        &[
            ("analysis", "analyses"),
            ("superseded", "analyses"),
            ("insight", "insights"),
            ("superseded", "insights"),
        ],
    )
    .await;
    let a2 = &second[&("analysis".into(), "analyses".into())];
    assert_eq!(a2["supersedes"], a1["analysis_id"], "{a2}");
    assert_eq!(a2["minutes_present"], 60, "{a2}");
    // The stored state agrees: one current analysis, without the deleted hour.
    let analyses = listed(&app, &user, "analyses").await;
    let now = current(&analyses);
    assert_eq!(now.len(), 1, "{analyses:?}");
    assert_eq!(now[0]["analysis_id"], a2["analysis_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_edits_ends_in_one_current_analysis_that_sees_them_all() {
    // (What coalescing saves, one recomputation per settle period instead of one per frame,
    // is CPU: BENCHMARKS.md measures it with the ingest mix; here, that the outcome is right.)
    let app = spawn_app().await;
    let (user, mut ws, _) = two_hours_analysed(&app).await;
    // Twenty frames of one deletion each, as a phone syncing a burst of edits sends them.
    const FRAMES: u64 = 20;
    for i in 0..FRAMES {
        ws.send(&json!({"type": "delete", "seq": 2 + i, "ids": [format!("early{i}")]}))
            .await;
    }
    // Every analysis until the one that sees all twenty deletions.
    let mut recomputed = 0;
    loop {
        let v = ws.recv_within(std::time::Duration::from_secs(60)).await;
        if v["type"] == "analysis" {
            recomputed += 1;
            assert_eq!(v["trigger"], "data_changed", "{v}");
            if v["minutes_present"] == 120 - FRAMES {
                break;
            }
        }
    }
    assert!(
        recomputed < FRAMES / 2,
        "{recomputed} recomputations for {FRAMES} frames of edits"
    );
    let analyses = listed(&app, &user, "analyses").await;
    let now = current(&analyses);
    assert_eq!(now.len(), 1, "{analyses:?}");
    assert_eq!(now[0]["minutes_present"], 120 - FRAMES);
}
