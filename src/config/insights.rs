//! Insight settings: the Gemini client (key, model, timeouts, retries, concurrency, circuit
//! breaker, streaming), the local fallback, and the per-user request budget.
//!
//! Rules: without an API key insights come from the built-in local generator and the Gemini
//! settings are unused; the key is a `SecretString` never printed. Renamed fields keep their
//! old argument id and flag.

use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

use crate::insights::gemini::GeminiConfig;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Insights (Gemini)")]
pub struct InsightsConfig {
    /// Google Gemini API key. Without one, insights come from the built-in local generator.
    #[arg(
        id = "gemini_api_key",
        value_name = "GEMINI_API_KEY",
        long = "gemini-api-key",
        env = "GEMINI_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<SecretString>,

    /// Base URL of the Generative Language API.
    #[arg(
        id = "gemini_base_url",
        value_name = "GEMINI_BASE_URL",
        long = "gemini-base-url",
        env = "CLARITY_GEMINI_BASE_URL",
        default_value = "https://generativelanguage.googleapis.com"
    )]
    pub base_url: String,

    /// Gemini model.
    #[arg(
        id = "gemini_model",
        value_name = "GEMINI_MODEL",
        long = "gemini-model",
        env = "CLARITY_GEMINI_MODEL",
        default_value = "gemini-2.5-flash"
    )]
    pub model: String,

    /// Longest wait for one Gemini attempt (streamed body included), milliseconds.
    #[arg(
        id = "gemini_timeout_ms",
        value_name = "GEMINI_TIMEOUT_MS",
        long = "gemini-timeout-ms",
        env = "CLARITY_GEMINI_TIMEOUT_MS",
        default_value_t = 20_000
    )]
    pub timeout_ms: u64,

    /// Attempts per insight on 429, 5xx and timeouts (jittered exponential backoff,
    /// `Retry-After` honoured).
    #[arg(
        id = "gemini_max_attempts",
        value_name = "GEMINI_MAX_ATTEMPTS",
        long = "gemini-max-attempts",
        env = "CLARITY_GEMINI_MAX_ATTEMPTS",
        default_value_t = 3
    )]
    pub max_attempts: u32,

    /// Gemini calls in flight at once.
    #[arg(
        id = "gemini_max_concurrency",
        value_name = "GEMINI_MAX_CONCURRENCY",
        long = "gemini-max-concurrency",
        env = "CLARITY_GEMINI_MAX_CONCURRENCY",
        default_value_t = 4
    )]
    pub max_concurrency: usize,

    /// Consecutive failed calls that open the circuit breaker.
    #[arg(
        id = "gemini_breaker_failures",
        value_name = "GEMINI_BREAKER_FAILURES",
        long = "gemini-breaker-failures",
        env = "CLARITY_GEMINI_BREAKER_FAILURES",
        default_value_t = 5
    )]
    pub breaker_failures: u32,

    /// How long an open breaker sends insights to the fallback, seconds.
    #[arg(
        id = "gemini_breaker_secs",
        value_name = "GEMINI_BREAKER_SECS",
        long = "gemini-breaker-secs",
        env = "CLARITY_GEMINI_BREAKER_SECS",
        default_value_t = 60
    )]
    pub breaker_secs: u64,

    /// Stream Gemini's answer (`insight_delta` frames) instead of waiting for it whole.
    #[arg(
        id = "gemini_stream",
        value_name = "GEMINI_STREAM",
        long = "gemini-stream",
        env = "CLARITY_GEMINI_STREAM",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub stream: bool,

    /// When Gemini fails, answer with the local generator (recorded as such); `false` sends
    /// `insight_failed` instead.
    #[arg(
        id = "gemini_fallback",
        value_name = "GEMINI_FALLBACK",
        long = "gemini-fallback",
        env = "CLARITY_GEMINI_FALLBACK",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub fallback: bool,

    /// `POST /api/v1/insights` requests a user may make per hour.
    #[arg(long, env = "CLARITY_INSIGHT_REQUESTS_PER_HOUR", default_value_t = 12)]
    pub insight_requests_per_hour: u32,
}

impl InsightsConfig {
    /// The Gemini client's settings; `None` without an API key (local insights only).
    pub fn gemini(&self) -> Option<GeminiConfig> {
        let key = self.api_key.as_ref()?;
        Some(GeminiConfig {
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            api_key: key.clone(),
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            max_attempts: self.max_attempts.max(1),
            max_concurrency: self.max_concurrency,
            breaker_failures: self.breaker_failures,
            breaker_cooldown: Duration::from_secs(self.breaker_secs),
            stream: self.stream,
        })
    }
}
