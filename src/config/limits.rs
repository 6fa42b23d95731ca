//! What one client may ask of the server: frame and body sizes, sample and frame rates,
//! sessions, subscriptions, and the queues and write timeout that bound a slow reader.
//!
//! Rules: every limit answers with a clear error or close code naming it (see
//! protocol/README.md and docs/configuration.md); none is "unlimited" unless the help says 0
//! means so.

use std::time::Duration;

use clap::Args;
use clarity_core::ingest::UserBudget;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitsConfig {
    /// Largest accepted WebSocket message, bytes.
    #[arg(long, env = "CLARITY_MAX_FRAME_BYTES", default_value_t = 1024 * 1024)]
    pub max_frame_bytes: usize,

    /// Most samples in one `samples` frame.
    #[arg(long, env = "CLARITY_MAX_SAMPLES_PER_FRAME", default_value_t = 5000)]
    pub max_samples_per_frame: usize,

    /// Sustained frames per second a session may send.
    #[arg(long, env = "CLARITY_MAX_FRAMES_PER_SEC", default_value_t = 50)]
    pub max_frames_per_sec: u32,

    /// Burst of frames above the sustained rate; also the number of consecutive rate-limited
    /// frames after which the session is closed (4008).
    #[arg(long, env = "CLARITY_FRAME_BURST", default_value_t = 100)]
    pub frame_burst: u32,

    /// Samples frames a session may have waiting for the store at once.
    #[arg(long, env = "CLARITY_MAX_INFLIGHT_BATCHES", default_value_t = 8)]
    pub max_inflight_batches: usize,

    /// Frames queued to a session's socket, per kind: pushed frames (analyses, insights,
    /// stream events) beyond it close the session as a slow consumer (4009); the session's own
    /// replies (acks, pongs, errors) beyond it make it stop reading until they drain.
    #[arg(long, env = "CLARITY_OUTBOUND_QUEUE", default_value_t = 64)]
    pub outbound_queue: usize,

    /// Bytes of replies queued to a session's socket; beyond it the session stops reading
    /// until the client has read some (TCP back-pressure on the client).
    #[arg(long, env = "CLARITY_OUTBOUND_QUEUE_BYTES", default_value_t = 256 * 1024)]
    pub outbound_queue_bytes: usize,

    /// A session whose output has been waiting for the socket this long without catching up
    /// (the client reads too slowly or not at all) is dropped, milliseconds.
    #[arg(long, env = "CLARITY_WS_WRITE_TIMEOUT_MS", default_value_t = 10_000)]
    pub ws_write_timeout_ms: u64,

    /// Events kept per stream (a user's analyses or insights) for `subscribe` with `since`;
    /// a client further behind is told `recover: false` and reloads over REST.
    #[arg(long, env = "CLARITY_STREAM_HISTORY", default_value_t = 256)]
    pub stream_history: u64,

    /// Stream subscriptions one session may hold at once.
    #[arg(long, env = "CLARITY_MAX_SUBSCRIPTIONS", default_value_t = 16)]
    pub max_subscriptions: usize,

    /// Most samples in one REST upload.
    #[arg(
        long,
        env = "CLARITY_MAX_SAMPLES_PER_REQUEST",
        default_value_t = 10_000
    )]
    pub max_samples_per_request: usize,

    /// Largest accepted HTTP request body, bytes.
    #[arg(long, env = "CLARITY_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest accepted Apple Health export upload (`POST /api/v1/imports`), bytes; larger
    /// uploads get 413. Real exports are 0.5-2 GB zipped.
    #[arg(
        long,
        env = "CLARITY_MAX_IMPORT_BYTES",
        default_value_t = 4 * 1024 * 1024 * 1024
    )]
    pub max_import_bytes: u64,

    /// Most bytes an export's export.xml may inflate to (and at most 200 times the upload's
    /// size): larger is refused as a zip bomb.
    #[arg(
        long,
        env = "CLARITY_MAX_IMPORT_INFLATED_BYTES",
        default_value_t = 64 * 1024 * 1024 * 1024
    )]
    pub max_import_inflated_bytes: u64,

    /// Samples one WebSocket session may send per second (bursts up to twice that, or one
    /// full frame); more get `rate_limited` with `retry_after_ms`.
    #[arg(long, env = "CLARITY_MAX_SAMPLES_PER_SEC", default_value_t = 5_000)]
    pub max_samples_per_sec: u32,

    /// Samples one user may send per second over all their sessions and REST uploads on a
    /// node (bursts up to twice that).
    #[arg(
        long,
        env = "CLARITY_MAX_USER_SAMPLES_PER_SEC",
        default_value_t = 10_000
    )]
    pub max_user_samples_per_sec: u32,

    /// Open WebSocket sessions per user on a node (0: no limit); one more is refused with 429.
    #[arg(long, env = "CLARITY_MAX_SESSIONS_PER_USER", default_value_t = 20)]
    pub max_sessions_per_user: usize,
}

impl LimitsConfig {
    /// One user's sample budget on a node: twice the sustained rate, and never less than
    /// one full frame or REST upload (else a single allowed request could never pass).
    pub fn user_budget(&self) -> UserBudget {
        let per_sec = self.max_user_samples_per_sec.max(1);
        let burst = (per_sec.saturating_mul(2) as usize)
            .max(self.max_samples_per_request)
            .max(self.max_samples_per_frame);
        UserBudget {
            per_sec,
            burst: u32::try_from(burst).unwrap_or(u32::MAX),
        }
    }

    pub fn ws_write_timeout(&self) -> Duration {
        Duration::from_millis(self.ws_write_timeout_ms.max(1))
    }
}
