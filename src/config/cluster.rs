//! Settings of a deployment with several nodes: the bus between them, window leases, and how
//! long a user's live window stays in memory.
//!
//! Rules: the defaults run one node with nothing to set up (`memory` bus); renamed fields
//! keep their old argument id and flag.

use std::time::Duration;

use clap::Args;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Bus (several nodes)")]
pub struct BusConfig {
    /// How nodes talk to each other: `memory` (one node; nothing to set up) or a Redis URL
    /// (`redis://HOST:PORT`, `rediss://` for TLS) shared by every node of a deployment.
    #[arg(
        id = "bus",
        value_name = "BUS",
        long = "bus",
        env = "CLARITY_BUS",
        default_value = "memory"
    )]
    pub url: String,

    /// Prefix of the bus channel and lease keys in Redis, so deployments can share one.
    #[arg(
        id = "bus_prefix",
        value_name = "BUS_PREFIX",
        long = "bus-prefix",
        env = "CLARITY_BUS_PREFIX",
        default_value = "clarity:"
    )]
    pub prefix: String,

    /// This node's name on the bus (lease holder); a fresh random id when unset.
    #[arg(long, env = "CLARITY_NODE_ID")]
    pub node_id: Option<uuid::Uuid>,

    /// How long a node's claim on a user's window lasts without renewal: after a node dies,
    /// another takes its users over within this.
    #[arg(long, env = "CLARITY_LEASE_TTL_MS", default_value_t = 15_000)]
    pub lease_ttl_ms: u64,
}

impl BusConfig {
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms.max(100))
    }
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Windows")]
pub struct WindowsConfig {
    /// A user's live window is dropped after this long without new data or a session
    /// (it is rebuilt from the store when they come back), seconds.
    #[arg(
        id = "window_idle_secs",
        value_name = "WINDOW_IDLE_SECS",
        long = "window-idle-secs",
        env = "CLARITY_WINDOW_IDLE_SECS",
        default_value_t = 900
    )]
    pub idle_secs: u64,
}

impl WindowsConfig {
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_secs.max(1))
    }
}
