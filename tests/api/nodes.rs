//! Several real `clarity` processes sharing one store and one Redis, as behind a load
//! balancer: events cross nodes in order, samples reach the node that owns the window, a
//! killed node's users move to another without losing or rescoring anything, and a Redis
//! outage degrades nodes to single-node behaviour until it returns.
//!
//! The store is DynamoDB Local when `scripts/test` started one (CI), else SQLite files shared
//! by the processes. Needs `redis-server` (see `common::redis`).

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::process::Child;

use crate::common::process::{login, start_binary};
use crate::common::redis::RedisServer;
use crate::common::{Backend, JWT_SECRET, PASSWORD, Ws, into_json};

struct Cluster {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
    http: reqwest::Client,
    prefix: String,
}

struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Cluster {
    async fn new(redis: &RedisServer) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::dynamodb().unwrap_or(Backend::Sqlite);
        backend.migrate(&backend.config(dir.path())).await;
        let prefix = format!("t{}:", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut env = backend.env();
        env.push(("CLARITY_JWT_SECRET", JWT_SECRET.into()));
        env.push(("CLARITY_BUS", redis.url()));
        env.push(("CLARITY_BUS_PREFIX", prefix.clone()));
        // Short leases: a killed node's users move within about 2 s.
        env.push(("CLARITY_LEASE_TTL_MS", "2000".into()));
        Cluster {
            dir,
            env,
            http: reqwest::Client::new(),
            prefix,
        }
    }

    /// A node, once it is ready (connected to the bus).
    async fn node(&self) -> Node {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (child, addr) = start_binary(&["serve"], self.dir.path(), &env).await;
        let node = Node { child, addr };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (s, body) = ready(&self.http, &node).await;
            if s == 200 {
                return node;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node never ready: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn signup(&self, node: &Node, email: &str) -> (uuid::Uuid, String) {
        let resp = self
            .http
            .post(format!("http://{}/api/v1/auth/signup", node.addr))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let (status, body) = into_json(resp).await;
        assert_eq!(status, 201, "{body}");
        let id = body["user_id"].as_str().unwrap().parse().unwrap();
        (id, login(&self.http, node.addr, email).await)
    }

    async fn get(&self, node: &Node, path: &str, token: &str) -> Value {
        let resp = self
            .http
            .get(format!("http://{}{path}", node.addr))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let (status, body) = into_json(resp).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// The node id holding `user`'s window lease, read from Redis itself.
    async fn lease_holder(&self, redis: &RedisServer, user: uuid::Uuid) -> Option<String> {
        let client = redis::Client::open(redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("GET")
            .arg(format!("{}lease:{user}", self.prefix))
            .query_async::<Option<String>>(&mut conn)
            .await
            .ok()?
    }
}

async fn ready(http: &reqwest::Client, node: &Node) -> (u16, Value) {
    let resp = http
        .get(format!("http://{}/api/ready", node.addr))
        .send()
        .await
        .unwrap();
    let (s, b) = into_json(resp).await;
    (s.as_u16(), b)
}

/// Messages `node` has received from other nodes.
async fn bus_received(http: &reqwest::Client, node: &Node) -> u64 {
    let text = http
        .get(format!("http://{}/metrics", node.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("clarity_bus_received_total "))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

async fn ws(node: &Node, token: &str) -> Ws {
    let url = format!("ws://{}/api/v1/ws?access_token={token}", node.addr);
    let (stream, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let mut ws = Ws { stream };
    ws.welcome().await;
    ws
}

/// Activity minutes `from..to` after `t0`, as samples with ids `m<minute>`.
fn minutes(t0: DateTime<Utc>, from: i64, to: i64) -> Vec<Value> {
    (from..to)
        .map(|m| {
            json!({"id": format!("m{m}"), "kind": "activity_count",
                   "start": (t0 + chrono::Duration::minutes(m)).to_rfc3339(),
                   "value": (m * 37) % 500})
        })
        .collect()
}

/// Sends a batch and waits for its ack (skipping pushed frames); returns the ack.
async fn send_acked(ws: &mut Ws, seq: i64, samples: Vec<Value>) -> Value {
    ws.send(&json!({"type": "samples", "seq": seq, "samples": samples}))
        .await;
    ws.recv_type("ack").await
}

/// Sends `analyze` until the answer covers `want` minutes (forwarded samples travel over the
/// bus, so the owner may need a moment); returns that analysis.
async fn analyze_until(ws: &mut Ws, want: u64) -> Value {
    analyze_counting(ws, want).await.0
}

/// [`analyze_until`], and how many analyses it took (each is an event on the streams).
async fn analyze_counting(ws: &mut Ws, want: u64) -> (Value, usize) {
    for tries in 1..=100 {
        ws.send(&json!({"type": "analyze"})).await;
        let a = ws.recv_type("analysis").await;
        if a["minutes_present"].as_u64() == Some(want) {
            return (a, tries);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no analysis covering {want} minutes");
}

#[derive(Default)]
struct Events {
    analyses: Vec<u64>,
    insights: Vec<u64>,
    analysis_ids: Vec<Value>,
}

/// Reads a dashboard until it has `n` analysis and `m` insight events.
async fn read_events(ws: &mut Ws, n: usize, m: usize) -> Events {
    let mut e = Events::default();
    while e.analyses.len() < n || e.insights.len() < m {
        let v = ws.recv_within(Duration::from_secs(30)).await;
        match v["type"].as_str().unwrap() {
            "analysis" => {
                e.analyses.push(v["offset"].as_u64().unwrap());
                e.analysis_ids.push(v["analysis_id"].clone());
            }
            "insight" => e.insights.push(v["offset"].as_u64().unwrap()),
            other => panic!("unexpected {other} on the dashboard: {v}"),
        }
    }
    e
}

/// Next stream event of `stream` on a dashboard connection.
async fn next_event(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let v = ws.recv_within(Duration::from_secs(30)).await;
        if v["type"] == ty {
            return v;
        }
        assert!(
            ["analysis", "insight", "insight_delta"].contains(&v["type"].as_str().unwrap()),
            "unexpected frame on the dashboard: {v}"
        );
    }
}

async fn subscribe(ws: &mut Ws, owner: uuid::Uuid, stream: &str) {
    ws.send(&json!({"type": "subscribe", "stream": stream, "user_id": owner}))
        .await;
    let v = ws.recv_type("subscribed").await;
    assert_eq!(v["stream"], stream, "{v}");
}

/// One whole UTC day two days ago: every minute the tests send lies in it, so no day
/// completes and the only analyses are the ones asked for.
fn day_start() -> DateTime<Utc> {
    let d = (Utc::now() - chrono::Duration::days(2)).date_naive();
    d.and_hms_opt(1, 0, 0).unwrap().and_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_streams_and_windows_and_take_over_from_a_killed_node() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let cluster = Cluster::new(&redis).await;
    let mut a = cluster.node().await;
    let b = cluster.node().await;
    let c = cluster.node().await;
    let (owner, owner_token) = cluster.signup(&a, "owner@example.com").await;
    let (_, viewer_token) = cluster.signup(&b, "viewer@example.com").await;
    let mut share_ids = Vec::new();
    for scope in ["analyses", "insights"] {
        let resp = cluster
            .http
            .post(format!("http://{}/api/v1/shares", c.addr))
            .bearer_auth(&owner_token)
            .json(&json!({"grantee_email": "viewer@example.com", "scope": scope}))
            .send()
            .await
            .unwrap();
        let (s, body) = into_json(resp).await;
        assert_eq!(s, 201, "{body}");
        share_ids.push(body["share_id"].as_str().unwrap().to_owned());
    }
    let t0 = day_start();
    let mut acked: BTreeSet<i64> = BTreeSet::new();

    // A device on A (A owns the window), a dashboard on B.
    let mut device = ws(&a, &owner_token).await;
    let mut dash = ws(&b, &viewer_token).await;
    subscribe(&mut dash, owner, "analyses").await;
    subscribe(&mut dash, owner, "insights").await;
    for (seq, from) in [(1, 0), (2, 150)] {
        let ack = send_acked(&mut device, seq, minutes(t0, from, from + 150)).await;
        assert_eq!(ack["accepted"], 150, "{ack}");
        acked.extend(from..from + 150);
    }
    let first = analyze_until(&mut device, 300).await;
    let a_node = ready(&cluster.http, &a).await.1["node"].clone();
    assert_eq!(
        cluster.lease_holder(&redis, owner).await.as_deref(),
        a_node.as_str(),
        "the device's node owns the window"
    );

    // A REST upload on C reaches A's window over the bus (A does not reread the store: it
    // owns the window, so only forwarded samples can make the count grow).
    let resp = cluster
        .http
        .post(format!("http://{}/api/v1/health-data", c.addr))
        .bearer_auth(&owner_token)
        .json(&json!({"samples": minutes(t0, 300, 400)}))
        .send()
        .await
        .unwrap();
    let (s, body) = into_json(resp).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["accepted"], 100, "{body}");
    acked.extend(300..400);
    let second = analyze_until(&mut device, 400).await;

    // The dashboard on B got both analyses and both insights, each stream in order.
    let seen = read_events(&mut dash, 2, 2).await;
    assert_eq!(seen.analyses, [1, 2]);
    assert_eq!(seen.insights, [1, 2]);
    assert_eq!(
        seen.analysis_ids,
        [first["analysis_id"].clone(), second["analysis_id"].clone()]
    );

    // One batch acked, one in flight: then A dies.
    let ack = send_acked(&mut device, 3, minutes(t0, 400, 500)).await;
    assert_eq!(ack["accepted"], 100, "{ack}");
    acked.extend(400..500);
    device
        .send(&json!({"type": "samples", "seq": 4, "samples": minutes(t0, 500, 600)}))
        .await;
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();

    // The device reconnects through the load balancer to B and resends what was not acked.
    let mut device = ws(&b, &owner_token).await;
    let ack = send_acked(&mut device, 4, minutes(t0, 500, 600)).await;
    assert_eq!(
        ack["accepted"].as_u64().unwrap() + ack["duplicates"].as_u64().unwrap(),
        100,
        "{ack}"
    );
    acked.extend(500..600);
    // B takes the window over once A's lease has expired (≤ 2 s): keep streaming meanwhile.
    let b_node = ready(&cluster.http, &b).await.1["node"].clone();
    let mut next = 600;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while cluster.lease_holder(&redis, owner).await.as_deref() != b_node.as_str() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never took the lease over"
        );
        let ack = send_acked(&mut device, next, minutes(t0, next, next + 10)).await;
        assert_eq!(ack["accepted"], 10, "{ack}");
        acked.extend(next..next + 10);
        next += 10;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let ack = send_acked(&mut device, next, minutes(t0, next, next + 20)).await;
    assert_eq!(ack["accepted"], 20, "{ack}");
    acked.extend(next..next + 20);
    next += 20;
    // And a REST upload on C now reaches B, the new owner (waited for on B's bus counter, so
    // that no analysis runs on half of it).
    let received = bus_received(&cluster.http, &b).await;
    let resp = cluster
        .http
        .post(format!("http://{}/api/v1/health-data", c.addr))
        .bearer_auth(&owner_token)
        .json(&json!({"samples": minutes(t0, next, next + 30)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    acked.extend(next..next + 30);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bus_received(&cluster.http, &b).await == received {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upload never reached B"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // B's bus counter moves when the forwarded upload arrives, a moment before its samples
    // are in the window: an analyze in between covers fewer minutes, and is an event too.
    let (third, tries) = analyze_counting(&mut device, acked.len() as u64).await;
    let seen = read_events(&mut dash, tries, tries).await;
    let dense: Vec<u64> = (3..3 + tries as u64).collect();
    assert_eq!(seen.analyses, dense, "offsets stay dense across nodes");
    assert_eq!(seen.insights, dense);
    assert_eq!(seen.analysis_ids.last(), Some(&third["analysis_id"]));

    // Nothing acked is lost...
    let mut stored = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = cluster
            .get(
                &c,
                &format!("/api/v1/health-data?limit=500{cursor}"),
                &owner_token,
            )
            .await;
        for s in page["samples"].as_array().unwrap() {
            stored.insert(s["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    for m in &acked {
        assert!(stored.contains(&format!("m{m}")), "acked minute {m} lost");
    }
    // ...and nothing is scored twice: the analyses the dashboard saw (the first two, then the
    // third's tries: one that ran before the forwarded upload was in the window covers fewer
    // minutes and is an analysis of its own), each stored once, with one insight each.
    let mut expected: HashSet<&str> = HashSet::from([
        first["analysis_id"].as_str().unwrap(),
        second["analysis_id"].as_str().unwrap(),
    ]);
    expected.extend(seen.analysis_ids.iter().map(|id| id.as_str().unwrap()));
    let analyses = cluster.get(&c, "/api/v1/analyses", &owner_token).await;
    let ids: Vec<&str> = analyses["analyses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["analysis_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), expected.len(), "{analyses}");
    assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), expected);
    let insights = cluster.get(&c, "/api/v1/insights", &owner_token).await;
    let of: HashSet<&str> = insights["insights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["analysis_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        insights["insights"].as_array().unwrap().len(),
        expected.len(),
        "{insights}"
    );
    assert_eq!(of, expected);

    // Revoking on C ends the viewer's subscription on B at once.
    let resp = cluster
        .http
        .delete(format!("http://{}/api/v1/shares/{}", c.addr, share_ids[1]))
        .bearer_auth(&owner_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let ended = dash.recv_type("unsubscribed").await;
    assert_eq!(ended["stream"], "insights", "{ended}");
    assert_eq!(ended["reason"], "revoked", "{ended}");
    drop((b, c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_nodes_serve_their_own_sessions_and_report_degraded_until_it_returns() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let cluster = Cluster::new(&redis).await;
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (owner, owner_token) = cluster.signup(&a, "owner2@example.com").await;
    let (_, viewer_token) = cluster.signup(&a, "viewer2@example.com").await;
    for scope in ["analyses", "insights"] {
        let resp = cluster
            .http
            .post(format!("http://{}/api/v1/shares", a.addr))
            .bearer_auth(&owner_token)
            .json(&json!({"grantee_email": "viewer2@example.com", "scope": scope}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    for n in [&a, &b] {
        let (s, body) = ready(&cluster.http, n).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["bus"], json!({"kind": "redis", "up": true}));
    }
    let t0 = day_start();
    let mut device = ws(&a, &owner_token).await;
    let mut dash_b = ws(&b, &viewer_token).await;
    let mut dash_a = ws(&a, &viewer_token).await;
    for d in [&mut dash_a, &mut dash_b] {
        subscribe(d, owner, "analyses").await;
    }
    send_acked(&mut device, 1, minutes(t0, 0, 100)).await;
    analyze_until(&mut device, 100).await;
    for d in [&mut dash_a, &mut dash_b] {
        assert_eq!(next_event(d, "analysis").await["offset"], 1);
    }

    redis.stop().await;
    for n in [&a, &b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (s, body) = ready(&cluster.http, n).await;
            if s == 503 {
                assert_eq!(body["status"], "degraded", "{body}");
                assert_eq!(body["bus"]["up"], false, "{body}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never degraded: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Same-node sessions work as on a single node: acks, analyses, the local dashboard.
    let ack = send_acked(&mut device, 2, minutes(t0, 100, 200)).await;
    assert_eq!(ack["accepted"], 100, "{ack}");
    let during = analyze_until(&mut device, 200).await;
    let ev = next_event(&mut dash_a, "analysis").await;
    assert_eq!(ev["offset"], 2, "{ev}");
    assert_eq!(ev["analysis_id"], during["analysis_id"]);

    redis.restart().await;
    for n in [&a, &b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while ready(&cluster.http, n).await.0 != 200 {
            assert!(tokio::time::Instant::now() < deadline, "never ready again");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Cross-node delivery resumes; B fills the event it missed from the store, in order.
    send_acked(&mut device, 3, minutes(t0, 200, 300)).await;
    let after = analyze_until(&mut device, 300).await;
    let missed = next_event(&mut dash_b, "analysis").await;
    assert_eq!(missed["offset"], 2, "{missed}");
    assert_eq!(missed["analysis_id"], during["analysis_id"]);
    let live = next_event(&mut dash_b, "analysis").await;
    assert_eq!(live["offset"], 3, "{live}");
    assert_eq!(live["analysis_id"], after["analysis_id"]);
    assert_eq!(next_event(&mut dash_a, "analysis").await["offset"], 3);
}

/// Ending sessions from another process over Redis: an admin's disconnect (admins named by
/// account id in `CLARITY_ADMIN_USER_IDS`, comma-separated) and a logout, each on node A,
/// close the user's session on node B; B then refuses the logged-out access token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_and_logout_cross_processes() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let mut cluster = Cluster::new(&redis).await;
    // As an operator does: the admin signs up, then node A starts naming their account id.
    let b = cluster.node().await;
    let (boss_id, boss) = cluster.signup(&b, "boss3@example.com").await;
    cluster.env.push((
        "CLARITY_ADMIN_USER_IDS",
        format!("{},{boss_id}", uuid::Uuid::new_v4()),
    ));
    let a = cluster.node().await;
    let (user, token) = cluster.signup(&b, "user3@example.com").await;
    let post = |node: &Node, path: String, body: Value, token: &str| {
        cluster
            .http
            .post(format!("http://{}{path}", node.addr))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    let mut session = ws(&b, &token).await;
    let resp = post(
        &a,
        format!("/api/v1/admin/users/{user}/disconnect"),
        json!({}),
        &boss,
    )
    .await
    .unwrap();
    let (status, body) = into_json(resp).await;
    assert_eq!(status, 202, "{body}");
    let (code, _) = session.until_close().await;
    assert_eq!(code, 4012);

    // A login of its own, ended on node A while its session runs on node B.
    let resp = cluster
        .http
        .post(format!("http://{}/api/v1/auth/login", a.addr))
        .json(&json!({"email": "user3@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (_, pair) = into_json(resp).await;
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let mut session = ws(&b, &access).await;
    let refresh = json!({"refresh_token": pair["refresh_token"]});
    let resp = post(&a, "/api/v1/auth/logout".into(), refresh, &access)
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (code, _) = session.until_close().await;
    assert_eq!(code, 4011);
    let resp = cluster
        .http
        .get(format!("http://{}/api/v1/user/profile", b.addr))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(resp).await;
    assert_eq!(
        (status.as_u16(), &body["error"]["code"]),
        (401, &json!("token_revoked"))
    );
}
