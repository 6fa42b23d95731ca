//! The in-process bus: what a single node runs by default, and how several nodes in one
//! process (tests) talk without Redis. Same contract as the Redis bus: others' messages only,
//! leases that expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::{Bus, BusError, BusStatus, Envelope, Message};

/// Messages a node may have queued before its dispatcher reads them.
const INBOX: usize = 8192;

/// What the nodes of one process share.
pub struct Net {
    tx: broadcast::Sender<Arc<Envelope>>,
    /// Lease holder and expiry by user.
    leases: Mutex<HashMap<Uuid, (Uuid, Instant)>>,
}

impl Net {
    pub fn new() -> Arc<Net> {
        Arc::new(Net {
            tx: broadcast::channel(INBOX).0,
            leases: Mutex::new(HashMap::new()),
        })
    }
}

pub struct MemoryBus {
    node: Uuid,
    net: Arc<Net>,
    inbox: Mutex<Option<mpsc::Receiver<Message>>>,
    reconnects: watch::Sender<u64>,
}

impl MemoryBus {
    /// A node on `net`; must be called inside the runtime (it starts the inbox task).
    pub fn new(node: Uuid, net: Arc<Net>) -> MemoryBus {
        let (itx, irx) = mpsc::channel(INBOX);
        let reconnects = watch::Sender::new(0u64);
        let mut rx = net.tx.subscribe();
        let missed = reconnects.clone();
        tokio::spawn(async move {
            loop {
                let env = tokio::select! {
                    () = itx.closed() => return,
                    r = rx.recv() => r,
                };
                match env {
                    Ok(env) if env.node != node => {
                        if itx.try_send(env.msg.clone()).is_err() {
                            missed.send_modify(|n| *n += 1);
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => missed.send_modify(|n| *n += 1),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        MemoryBus {
            node,
            net,
            inbox: Mutex::new(Some(irx)),
            reconnects,
        }
    }
}

#[async_trait::async_trait]
impl Bus for MemoryBus {
    fn node(&self) -> Uuid {
        self.node
    }

    fn publish(&self, msg: Message) {
        // Alone on the net: nobody to tell.
        if self.net.tx.receiver_count() > 1 {
            let _ = self.net.tx.send(Arc::new(Envelope {
                node: self.node,
                msg,
            }));
        }
    }

    fn take_inbox(&self) -> Option<mpsc::Receiver<Message>> {
        self.inbox.lock().expect("inbox lock").take()
    }

    async fn claim(&self, users: &[Uuid], ttl: Duration) -> Result<Vec<bool>, BusError> {
        let now = Instant::now();
        let mut leases = self.net.leases.lock().expect("lease lock");
        Ok(users
            .iter()
            .map(|u| match leases.get(u) {
                Some((holder, until)) if *holder != self.node && *until > now => false,
                _ => {
                    leases.insert(*u, (self.node, now + ttl));
                    true
                }
            })
            .collect())
    }

    async fn release(&self, users: &[Uuid]) -> Result<(), BusError> {
        let mut leases = self.net.leases.lock().expect("lease lock");
        for u in users {
            if leases
                .get(u)
                .is_some_and(|(holder, _)| *holder == self.node)
            {
                leases.remove(u);
            }
        }
        Ok(())
    }

    fn status(&self) -> BusStatus {
        BusStatus {
            kind: "memory",
            up: true,
        }
    }

    fn reconnects(&self) -> watch::Receiver<u64> {
        self.reconnects.subscribe()
    }
}
