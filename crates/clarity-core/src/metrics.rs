//! Metric names in one place, with their descriptions; the Prometheus recorder that renders
//! them is the server's (`clarity::metrics`), so the domain knows only the `metrics` facade.
//!
//! Rules:
//! - Metric names are constants here; call sites never spell them.
//! - Labels are low-cardinality enums (frame type, outcome, transport): never user ids.

pub const WS_CONNECTIONS: &str = "clarity_ws_connections";
pub const WS_SESSIONS_TOTAL: &str = "clarity_ws_sessions_total";
pub const WS_FRAMES_IN: &str = "clarity_ws_frames_received_total";
pub const WS_FRAMES_OUT: &str = "clarity_ws_frames_sent_total";
pub const WS_CLOSES: &str = "clarity_ws_closes_total";
pub const WS_OUTBOUND_BYTES: &str = "clarity_ws_outbound_queued_bytes";
pub const SAMPLES: &str = "clarity_samples_total";
pub const ACK_LATENCY_SECONDS: &str = "clarity_ack_latency_seconds";
pub const STORE_COMMIT_SECONDS: &str = "clarity_store_commit_seconds";
pub const STORE_COMMIT_OPS: &str = "clarity_store_commit_ops";
pub const STORE_SAMPLES_WRITTEN: &str = "clarity_store_samples_written_total";
pub const STORE_ERRORS: &str = "clarity_store_errors_total";
pub const STORE_READ_ONLY: &str = "clarity_store_read_only";
pub const STORE_WRITER_PANICS: &str = "clarity_store_writer_panics_total";
pub const HTTP_REQUESTS: &str = "clarity_http_requests_total";
pub const COGNITO_JWKS_FETCHES: &str = "clarity_cognito_jwks_fetches_total";
pub const LOGIN_THROTTLED: &str = "clarity_login_throttled_total";
pub const WINDOWS: &str = "clarity_windows";
pub const INSIGHTS: &str = "clarity_insights_total";
pub const ANALYSES: &str = "clarity_analyses_total";
pub const ANALYSIS_SECONDS: &str = "clarity_analysis_seconds";
pub const PAT_QUEUE_DEPTH: &str = "clarity_pat_queue_depth";
pub const PAT_QUEUE_CAPACITY: &str = "clarity_pat_queue_capacity";
pub const PAT_BATCH_SIZE: &str = "clarity_pat_batch_size";
pub const PAT_LATENCY_SECONDS: &str = "clarity_pat_latency_seconds";
pub const PAT_WEEKS: &str = "clarity_pat_weeks_total";
pub const STREAM_EVENTS: &str = "clarity_stream_events_total";
pub const STREAM_LAGGED: &str = "clarity_stream_lagged_total";
pub const SUBSCRIPTIONS: &str = "clarity_subscriptions";
pub const CONNECTIONS_REFUSED: &str = "clarity_connections_refused_total";
pub const CONNECTIONS_TIMED_OUT: &str = "clarity_connections_timed_out_total";
pub const BUS_PUBLISHED: &str = "clarity_bus_published_total";
pub const BUS_RECEIVED: &str = "clarity_bus_received_total";
pub const BUS_DROPPED: &str = "clarity_bus_dropped_total";
pub const BUS_UP: &str = "clarity_bus_up";
pub const LEASES: &str = "clarity_window_leases";
pub const LEASES_CLAIMED: &str = "clarity_window_leases_claimed_total";
pub const AUDIT_ENTRIES: &str = "clarity_audit_entries_total";
pub const AUDIT_FAILURES: &str = "clarity_audit_write_failures_total";
pub const GEMINI_BREAKER_OPEN: &str = "clarity_gemini_breaker_open";

/// Describes every metric to the installed recorder (help text and units); the server calls
/// it once after installing the Prometheus recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(WS_CONNECTIONS, "Open WebSocket sessions");
    describe_gauge!(
        WS_OUTBOUND_BYTES,
        Unit::Bytes,
        "Bytes of session replies queued for WebSocket writers, all sessions"
    );
    describe_counter!(STREAM_EVENTS, "Stream events published, by stream");
    describe_counter!(
        STREAM_LAGGED,
        "Events a subscriber could not queue (it is told `lagged`)"
    );
    describe_gauge!(SUBSCRIPTIONS, "Live stream subscriptions on this node");
    describe_counter!(BUS_PUBLISHED, "Messages published to other nodes");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused at accept (too many from one address)"
    );
    describe_counter!(
        CONNECTIONS_TIMED_OUT,
        "Connections closed by the handshake or idle deadline, by phase"
    );
    describe_counter!(BUS_RECEIVED, "Messages received from other nodes");
    describe_counter!(
        BUS_DROPPED,
        "Bus messages lost (queue full, Redis unavailable), by reason"
    );
    describe_gauge!(BUS_UP, "1 while the Redis bus works, else 0");
    describe_gauge!(LEASES, "Windows this node owns (holds the lease of)");
    describe_counter!(LEASES_CLAIMED, "Window leases this node took over");
    describe_counter!(WS_SESSIONS_TOTAL, "WebSocket sessions opened");
    describe_counter!(WS_FRAMES_IN, "WebSocket frames received, by type");
    describe_counter!(WS_FRAMES_OUT, "WebSocket frames sent, by type");
    describe_counter!(
        WS_CLOSES,
        "WebSocket sessions closed by the server, by reason"
    );
    describe_counter!(SAMPLES, "Samples received, by outcome and transport");
    describe_histogram!(
        ACK_LATENCY_SECONDS,
        Unit::Seconds,
        "Samples frame received to ack queued"
    );
    describe_histogram!(
        STORE_COMMIT_SECONDS,
        Unit::Seconds,
        "Duration of one group commit"
    );
    describe_histogram!(STORE_COMMIT_OPS, "Operations folded into one commit");
    describe_counter!(
        STORE_SAMPLES_WRITTEN,
        "Samples committed (new or duplicate)"
    );
    describe_counter!(STORE_ERRORS, "Store operations that failed, by kind");
    describe_gauge!(
        STORE_READ_ONLY,
        "1 from a write that failed for lack of disk space until a write succeeds (SQLite)"
    );
    describe_counter!(
        STORE_WRITER_PANICS,
        "Write batches whose writer thread panicked; their writes were refused, the writer went on"
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests, by status class");
    describe_gauge!(
        WINDOWS,
        "Live per-user windows on this node (about 60 KB each)"
    );
    describe_counter!(
        ANALYSES,
        "Analyses computed, by trigger and outcome (new or existing)"
    );
    describe_histogram!(
        ANALYSIS_SECONDS,
        Unit::Seconds,
        "CPU time of one analysis (analytics over a week)"
    );
    describe_gauge!(PAT_QUEUE_DEPTH, "Weeks waiting for the PAT inference pool");
    describe_gauge!(
        PAT_QUEUE_CAPACITY,
        "Weeks the PAT queue holds before it refuses (outcome \"busy\")"
    );
    describe_histogram!(PAT_BATCH_SIZE, "Weeks run in one PAT session call");
    describe_histogram!(
        PAT_LATENCY_SECONDS,
        Unit::Seconds,
        "PAT week queued to embedding ready"
    );
    describe_counter!(
        PAT_WEEKS,
        "Weeks sent to PAT, by outcome (ok, error, busy: refused by a full queue)"
    );
    describe_counter!(AUDIT_ENTRIES, "Audit log entries written, by action");
    describe_counter!(
        AUDIT_FAILURES,
        "Audit log entries that could not be written, by action"
    );
    describe_gauge!(
        GEMINI_BREAKER_OPEN,
        "1 from the call that opens the Gemini circuit breaker until a call succeeds, else 0"
    );
}
