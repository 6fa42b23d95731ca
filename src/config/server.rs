//! Serving settings: the listening address, what connections may do before and while they
//! are served, which browsers may talk to the server, and how long shutdown waits.
//!
//! Rules: every setting is a flag with an `env = "CLARITY_..."` twin and a default that works
//! on a laptop; zero means "off" only where the help says so.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "CLARITY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Browser origins allowed to open WebSockets and to read REST answers (CORS), exact
    /// and comma-separated, e.g. `https://app.example.com,https://admin.example.com`. Empty
    /// (the default): WebSockets from any origin, no CORS headers. The server's own origin
    /// (Origin host = Host header: the built-in dashboard) is always allowed.
    #[arg(long, env = "CLARITY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Take the client address for login throttling from the last `X-Forwarded-For` entry
    /// (what a load balancer such as the ALB appends) instead of the TCP peer. Only behind a
    /// proxy that sets it: otherwise clients could pick their own address.
    #[arg(long, env = "CLARITY_TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// A new connection must be answered (its request complete, or the WebSocket upgraded)
    /// within this, or it is closed: clients that trickle headers cannot hold sockets.
    #[arg(long, env = "CLARITY_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000)]
    pub handshake_timeout_ms: u64,

    /// A connection that sends nothing for this long is closed (0: the heartbeat timeout plus
    /// 30 s, so live WebSockets, which answer pings, are never cut).
    #[arg(long, env = "CLARITY_IDLE_TIMEOUT_SECS", default_value_t = 0)]
    pub idle_timeout_secs: u64,

    /// Open connections per client address (0: no limit). Behind a load balancer every
    /// connection comes from the balancer: set 0 there.
    #[arg(long, env = "CLARITY_MAX_CONNECTIONS_PER_IP", default_value_t = 512)]
    pub max_connections_per_ip: usize,

    /// Kernel send buffer per connection, bytes (0: the kernel's autotuning, up to
    /// megabytes). Bounds what a peer that stops reading costs; Linux doubles the value.
    #[arg(long, env = "CLARITY_SOCKET_SEND_BUFFER", default_value_t = 131_072)]
    pub socket_send_buffer: usize,

    /// Interval of server WebSocket pings, milliseconds.
    #[arg(long, env = "CLARITY_HEARTBEAT_INTERVAL_MS", default_value_t = 30_000)]
    pub heartbeat_interval_ms: u64,

    /// Missed heartbeat intervals after which a silent peer is dropped.
    #[arg(long, env = "CLARITY_HEARTBEAT_MISSES", default_value_t = 3)]
    pub heartbeat_misses: u32,

    /// Longest wait for sessions to finish on shutdown, seconds.
    #[arg(long, env = "CLARITY_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
}

impl ServerConfig {
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms.max(1))
    }

    pub fn heartbeat_timeout(&self) -> Duration {
        self.heartbeat_interval() * self.heartbeat_misses.max(1)
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms.max(1))
    }

    pub fn idle_timeout(&self) -> Duration {
        if self.idle_timeout_secs > 0 {
            Duration::from_secs(self.idle_timeout_secs)
        } else {
            self.heartbeat_timeout() + Duration::from_secs(30)
        }
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}
