//! The Redis bus (`--bus redis://HOST:PORT`): pub/sub on one channel for messages, and
//! window leases as keys with an expiry (`SET ... PX`), claimed and renewed by a script so a
//! node never takes a lease another node still holds.
//!
//! Rules:
//! - Start-up does not need Redis: connections are made lazily and retried with backoff, and
//!   until they work the node runs as if alone (see the module rules in `bus`).
//! - Commands time out after [`COMMAND_TIMEOUT`], so a dead Redis costs a lease claim at most
//!   that, never a hang.
//! - Messages that could not be published are not retried (events are in the store already);
//!   forwarded samples that were lost are named in a `resync` once publishing works again.
//! - One channel and keys under `--bus-prefix`, so deployments (and test runs) can share a
//!   Redis. Lease scripts take several keys: a cluster-mode Redis would need them in one slot,
//!   so use a non-cluster Redis (ElastiCache cluster mode disabled).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Bus, BusError, BusStatus, Envelope, Message};
use crate::metrics::{BUS_DROPPED, BUS_PUBLISHED, BUS_RECEIVED, BUS_UP};

/// Longest a Redis command may take before the node treats Redis as down.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// Messages queued for publishing (or received and not yet dispatched) at most.
const QUEUE: usize = 8192;
/// Messages sent in one pipeline.
const BATCH: usize = 256;
/// Users named in one `resync`; more lost than that resyncs every window.
const MAX_RESYNC_USERS: usize = 10_000;
/// How often an idle subscriber connection is checked.
const PING_EVERY: Duration = Duration::from_secs(5);

/// Takes or renews each lease in KEYS for ARGV[1] (node) for ARGV[2] ms; 1 where held.
const CLAIM: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == false or holder == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
";

/// Deletes each lease in KEYS that ARGV[1] holds.
const RELEASE: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
";

#[derive(Default)]
struct Lost {
    users: HashSet<Uuid>,
    all: bool,
}

impl Lost {
    fn note(&mut self, msg: &Message) {
        match msg {
            // A lost change notice: the `resync` that names the user also wakes its
            // change-feed followers on every node.
            Message::Samples { user, .. } | Message::SamplesChanged { user, .. } => {
                self.note_user(*user)
            }
            Message::Resync { users: None } => self.all = true,
            Message::Resync { users: Some(u) } => u.iter().for_each(|m| self.note_user(*m)),
            // Stream events are in the store: subscribers fill gaps from there.
            _ => {}
        }
    }

    fn note_user(&mut self, user: Uuid) {
        if self.all {
            return;
        }
        self.users.insert(user);
        if self.users.len() > MAX_RESYNC_USERS {
            self.all = true;
            self.users.clear();
        }
    }

    fn take(&mut self) -> Option<Message> {
        if self.all {
            *self = Lost::default();
            return Some(Message::Resync { users: None });
        }
        if self.users.is_empty() {
            return None;
        }
        Some(Message::Resync {
            users: Some(self.users.drain().collect()),
        })
    }
}

struct Shared {
    node: Uuid,
    channel: String,
    /// The subscriber connection is up.
    subscribed: AtomicBool,
    /// The last command (publish, claim, release) worked.
    commands_ok: AtomicBool,
    lost: Mutex<Lost>,
    reconnects: watch::Sender<u64>,
}

impl Shared {
    fn command_result<T>(
        &self,
        r: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, BusError> {
        let out = match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(BusError::Unavailable(e.to_string())),
            Err(_) => Err(BusError::Unavailable("redis command timed out".into())),
        };
        let ok = out.is_ok();
        if self.commands_ok.swap(ok, Ordering::AcqRel) != ok {
            if ok {
                tracing::info!("redis commands work again");
            } else if let Err(e) = &out {
                tracing::warn!(error = %e, "redis commands failing; running on this node alone");
            }
        }
        self.gauge();
        out
    }

    fn up(&self) -> bool {
        self.subscribed.load(Ordering::Acquire) && self.commands_ok.load(Ordering::Acquire)
    }

    fn gauge(&self) {
        ::metrics::gauge!(BUS_UP).set(if self.up() { 1.0 } else { 0.0 });
    }
}

pub struct RedisBus {
    shared: Arc<Shared>,
    conn: ConnectionManager,
    prefix: String,
    out: mpsc::Sender<Message>,
    inbox: Mutex<Option<mpsc::Receiver<Message>>>,
    claim: redis::Script,
    release: redis::Script,
    stop: CancellationToken,
}

impl RedisBus {
    /// Connects lazily to `url`; the tasks run until [`Bus::close`].
    pub fn start(url: &str, prefix: &str, node: Uuid) -> anyhow::Result<RedisBus> {
        let shutdown = CancellationToken::new();
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let shared = Arc::new(Shared {
            node,
            channel: format!("{prefix}bus"),
            subscribed: AtomicBool::new(false),
            commands_ok: AtomicBool::new(true),
            lost: Mutex::new(Lost::default()),
            reconnects: watch::Sender::new(0),
        });
        let (out_tx, out_rx) = mpsc::channel(QUEUE);
        let (in_tx, in_rx) = mpsc::channel(QUEUE);
        tokio::spawn(subscriber(client, shared.clone(), in_tx, shutdown.clone()));
        tokio::spawn(publisher(
            conn.clone(),
            shared.clone(),
            out_rx,
            shutdown.clone(),
        ));
        shared.gauge();
        Ok(RedisBus {
            shared,
            conn,
            prefix: prefix.to_owned(),
            out: out_tx,
            inbox: Mutex::new(Some(in_rx)),
            claim: redis::Script::new(CLAIM),
            release: redis::Script::new(RELEASE),
            stop: shutdown,
        })
    }

    fn lease_key(&self, user: &Uuid) -> String {
        format!("{}lease:{user}", self.prefix)
    }
}

#[async_trait::async_trait]
impl Bus for RedisBus {
    fn node(&self) -> Uuid {
        self.shared.node
    }

    fn publish(&self, msg: Message) {
        if let Err(e) = self.out.try_send(msg) {
            ::metrics::counter!(BUS_DROPPED, "why" => "queue_full").increment(1);
            self.shared
                .lost
                .lock()
                .expect("lost lock")
                .note(&e.into_inner());
        }
    }

    fn take_inbox(&self) -> Option<mpsc::Receiver<Message>> {
        self.inbox.lock().expect("inbox lock").take()
    }

    async fn claim(&self, users: &[Uuid], ttl: Duration) -> Result<Vec<bool>, BusError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.claim.prepare_invoke();
        for u in users {
            inv.key(self.lease_key(u));
        }
        inv.arg(self.shared.node.to_string())
            .arg(ttl.as_millis().max(1) as u64);
        let mut conn = self.conn.clone();
        let r =
            tokio::time::timeout(COMMAND_TIMEOUT, inv.invoke_async::<Vec<i64>>(&mut conn)).await;
        let held = self.shared.command_result(r)?;
        Ok(held.into_iter().map(|h| h == 1).collect())
    }

    async fn release(&self, users: &[Uuid]) -> Result<(), BusError> {
        if users.is_empty() {
            return Ok(());
        }
        let mut inv = self.release.prepare_invoke();
        for u in users {
            inv.key(self.lease_key(u));
        }
        inv.arg(self.shared.node.to_string());
        let mut conn = self.conn.clone();
        let r = tokio::time::timeout(COMMAND_TIMEOUT, inv.invoke_async::<i64>(&mut conn)).await;
        self.shared.command_result(r).map(|_| ())
    }

    fn status(&self) -> BusStatus {
        BusStatus {
            kind: "redis",
            up: self.shared.up(),
        }
    }

    fn reconnects(&self) -> watch::Receiver<u64> {
        self.shared.reconnects.subscribe()
    }

    async fn close(&self) {
        // What is queued goes out first (the last events of a draining node).
        let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
        while self.out.capacity() < self.out.max_capacity()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.stop.cancel();
    }
}

/// Receives the channel, reconnecting with backoff; every (re)connection bumps `reconnects`,
/// since messages sent while it was down are gone.
async fn subscriber(
    client: redis::Client,
    shared: Arc<Shared>,
    inbox: mpsc::Sender<Message>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut warned = false;
    loop {
        let connected = tokio::select! {
            () = shutdown.cancelled() => return,
            r = tokio::time::timeout(COMMAND_TIMEOUT * 2, async {
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(&shared.channel).await?;
                Ok::<_, redis::RedisError>(ps)
            }) => r,
        };
        match connected {
            Ok(Ok(ps)) => {
                backoff = Duration::from_millis(100);
                warned = false;
                shared.subscribed.store(true, Ordering::Release);
                shared.gauge();
                shared.reconnects.send_modify(|n| *n += 1);
                tracing::info!(channel = %shared.channel, "bus connected");
                let (mut sink, mut stream) = ps.split();
                let mut ping = tokio::time::interval(PING_EVERY);
                ping.tick().await;
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        m = stream.next() => match m {
                            Some(m) => receive(&shared, &inbox, m.get_payload_bytes()),
                            None => break,
                        },
                        _ = ping.tick() => {
                            let alive = tokio::time::timeout(COMMAND_TIMEOUT, sink.ping::<redis::Value>()).await;
                            if !matches!(alive, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
                shared.subscribed.store(false, Ordering::Release);
                shared.gauge();
                tracing::warn!("bus connection lost; running on this node alone until it returns");
            }
            Ok(Err(e)) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "cannot connect to the bus; retrying");
            }
            Err(_) if !warned => {
                warned = true;
                tracing::warn!("connecting to the bus timed out; retrying");
            }
            _ => {}
        }
        let jitter = Duration::from_millis(rand::random::<u64>() % 100);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff + jitter) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

fn receive(shared: &Shared, inbox: &mpsc::Sender<Message>, payload: &[u8]) {
    let env: Envelope = match serde_json::from_slice(payload) {
        Ok(env) => env,
        Err(e) => {
            // Another version or another program on our channel: never fatal.
            tracing::warn!(error = %e, "unreadable bus message ignored");
            return;
        }
    };
    if env.node == shared.node {
        return;
    }
    ::metrics::counter!(BUS_RECEIVED).increment(1);
    if inbox.try_send(env.msg).is_err() {
        ::metrics::counter!(BUS_DROPPED, "why" => "inbox_full").increment(1);
        shared.reconnects.send_modify(|n| *n += 1);
    }
}

/// An [`Envelope`] as written, borrowing its message.
#[derive(serde::Serialize)]
struct Outgoing<'a> {
    node: Uuid,
    msg: &'a Message,
}

/// Drains the publish queue in pipelines; what fails is counted and, for forwarded samples,
/// remembered for a `resync`.
async fn publisher(
    mut conn: ConnectionManager,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Message>,
    shutdown: CancellationToken,
) {
    let mut batch: Vec<Message> = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        tokio::select! {
            () = shutdown.cancelled() => return,
            n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
        }
        let resync = shared.lost.lock().expect("lost lock").take();
        let mut pipe = redis::pipe();
        for msg in resync.iter().chain(batch.iter()) {
            match serde_json::to_vec(&Outgoing {
                node: shared.node,
                msg,
            }) {
                Ok(body) => {
                    pipe.publish(&shared.channel, body).ignore();
                }
                Err(e) => tracing::error!(error = %e, "bus message not serialisable"),
            }
        }
        let r = tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
        let sent = resync.iter().count() + batch.len();
        match shared.command_result(r) {
            Ok(()) => {
                ::metrics::counter!(BUS_PUBLISHED).increment(sent as u64);
            }
            Err(_) => {
                ::metrics::counter!(BUS_DROPPED, "why" => "unavailable").increment(sent as u64);
                let mut lost = shared.lost.lock().expect("lost lock");
                for m in resync.iter().chain(batch.iter()) {
                    lost.note(m);
                }
            }
        }
    }
}
