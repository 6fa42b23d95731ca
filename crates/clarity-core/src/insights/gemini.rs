//! Google Gemini over the Generative Language REST API.
//!
//! Rules:
//! - `POST {base}/v1beta/models/{model}:generateContent` (or `:streamGenerateContent?alt=sse`),
//!   key in `x-goog-api-key` (never in the URL, never logged); structured output via
//!   `responseMimeType: application/json` + `responseSchema`, and the reply is validated again
//!   here: a model answer that does not fit is an error, never shown as an insight.
//! - 429 honours `Retry-After`; 429, 5xx, timeouts and connection errors are retried with
//!   exponential backoff and jitter up to `max_attempts`; SAFETY / MAX_TOKENS / malformed JSON
//!   are not retried (the same prompt gives the same refusal). Streaming is not retried once
//!   text has been forwarded.
//! - A circuit breaker opens after `breaker_failures` consecutive transport/server failures and
//!   sends callers straight to the fallback for `breaker_cooldown`; then one call is let through.
//! - At most `max_concurrency` calls in flight; a caller waits at most one timeout for a slot.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::prompt::{Prompt, response_schema};

#[derive(Debug, Clone)]
pub struct GeminiConfig {
    pub base_url: String,
    pub model: String,
    pub api_key: SecretString,
    /// Per attempt, including reading a streamed body.
    pub timeout: Duration,
    pub max_attempts: u32,
    pub max_concurrency: usize,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    pub stream: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GeminiError {
    #[error("circuit breaker open after repeated failures")]
    BreakerOpen,
    #[error("too many insight requests in flight")]
    Busy,
    #[error("rate limited (HTTP 429) after {0} attempts")]
    RateLimited(u32),
    #[error("server error HTTP {0}")]
    Server(u16),
    #[error("request refused HTTP {0}")]
    Refused(u16),
    #[error("timed out")]
    Timeout,
    #[error("transport error: {0}")]
    Transport(String),
    #[error("blocked by the model's safety filter ({0})")]
    Blocked(String),
    #[error("the answer was cut off (MAX_TOKENS)")]
    Truncated,
    #[error("malformed answer: {0}")]
    Invalid(String),
}

impl GeminiError {
    /// Whether another attempt may succeed.
    fn retryable(&self) -> bool {
        matches!(
            self,
            GeminiError::RateLimited(_)
                | GeminiError::Server(_)
                | GeminiError::Timeout
                | GeminiError::Transport(_)
        )
    }
}

/// A validated model answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub summary: String,
    pub key_points: Vec<String>,
    pub recommendations: Vec<String>,
    /// `modelVersion` as the API reported it, else the configured model.
    pub model: String,
}

struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

pub struct Gemini {
    http: reqwest::Client,
    cfg: GeminiConfig,
    permits: Semaphore,
    breaker: Mutex<Breaker>,
}

impl Gemini {
    pub fn new(cfg: GeminiConfig) -> anyhow::Result<Gemini> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        // Exported from the start, so an alert on it sees a 0 rather than nothing.
        ::metrics::gauge!(crate::metrics::GEMINI_BREAKER_OPEN).set(0.0);
        Ok(Gemini {
            http,
            permits: Semaphore::new(cfg.max_concurrency.max(1)),
            breaker: Mutex::new(Breaker {
                failures: 0,
                open_until: None,
            }),
            cfg,
        })
    }

    pub fn model(&self) -> &str {
        &self.cfg.model
    }

    fn breaker_allows(&self) -> bool {
        let b = self.breaker.lock().expect("breaker lock poisoned");
        b.open_until.is_none_or(|t| Instant::now() >= t)
    }

    /// Counts one request's outcome; `true` when the breaker is (now) open.
    fn record(&self, result: Result<(), &GeminiError>) -> bool {
        let mut b = self.breaker.lock().expect("breaker lock poisoned");
        match result {
            Ok(()) => {
                b.failures = 0;
                b.open_until = None;
                ::metrics::gauge!(crate::metrics::GEMINI_BREAKER_OPEN).set(0.0);
            }
            Err(e) if e.retryable() => {
                b.failures += 1;
                if b.failures >= self.cfg.breaker_failures.max(1) {
                    tracing::warn!(failures = b.failures, "Gemini circuit breaker open");
                    b.open_until = Some(Instant::now() + self.cfg.breaker_cooldown);
                    // Stays 1 through the cooldown and a failed trial call: Gemini is down
                    // until a call succeeds.
                    ::metrics::gauge!(crate::metrics::GEMINI_BREAKER_OPEN).set(1.0);
                }
            }
            // The API answered; the answer was unusable. Not an outage.
            Err(_) => {}
        }
        b.open_until.is_some_and(|t| Instant::now() < t)
    }

    /// Asks the model; `on_delta` gets streamed text as it arrives.
    pub async fn generate(
        &self,
        prompt: &Prompt,
        on_delta: &mut (dyn for<'s> FnMut(&'s str) + Send + '_),
    ) -> Result<Reply, GeminiError> {
        if !self.breaker_allows() {
            return Err(GeminiError::BreakerOpen);
        }
        let _permit = tokio::time::timeout(self.cfg.timeout, self.permits.acquire())
            .await
            .map_err(|_| GeminiError::Busy)?
            .map_err(|_| GeminiError::Busy)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut streamed = false;
            let res = tokio::time::timeout(
                self.cfg.timeout,
                self.attempt(prompt, &mut |t| {
                    streamed = true;
                    on_delta(t)
                }),
            )
            .await
            .unwrap_or(Err(Failure::plain(GeminiError::Timeout)));
            let open = self.record(res.as_ref().map(|_| ()).map_err(|f| &f.error));
            match res {
                Ok(reply) => break Ok(reply),
                Err(f)
                    if f.error.retryable()
                        && !streamed
                        && !open
                        && attempt < self.cfg.max_attempts =>
                {
                    let backoff = Duration::from_millis(250 * (1 << (attempt - 1).min(6)));
                    let jitter = Duration::from_millis(rand::random_range(
                        0..=backoff.as_millis() as u64 / 2,
                    ));
                    let wait = f.retry_after.unwrap_or(backoff + jitter);
                    if wait > self.cfg.timeout * 3 {
                        // The server asks for longer than a caller should wait: give up now.
                        break Err(f.error);
                    }
                    tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %f.error, "retrying Gemini");
                    tokio::time::sleep(wait).await;
                }
                Err(f) => {
                    break Err(match f.error {
                        GeminiError::Server(429) => GeminiError::RateLimited(attempt),
                        e => e,
                    });
                }
            }
        }
    }

    async fn attempt(
        &self,
        prompt: &Prompt,
        on_delta: &mut (dyn for<'s> FnMut(&'s str) + Send + '_),
    ) -> Result<Reply, Failure> {
        let method = if self.cfg.stream {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        let url = format!(
            "{}/v1beta/models/{}:{method}",
            self.cfg.base_url.trim_end_matches('/'),
            self.cfg.model
        );
        let body = json!({
            "systemInstruction": {"parts": [{"text": prompt.system}]},
            "contents": [{"role": "user", "parts": [{"text": prompt.user}]}],
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseSchema": response_schema(),
                "temperature": 0.3,
                "maxOutputTokens": 1024,
            },
        });
        let resp = self
            .http
            .post(&url)
            .header("x-goog-api-key", self.cfg.api_key.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|e| Failure::plain(transport(e)))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let error = match status {
                429 | 500..=599 => GeminiError::Server(status),
                _ => GeminiError::Refused(status),
            };
            return Err(Failure { error, retry_after });
        }
        let mut acc = Answer::default();
        if self.cfg.stream {
            let mut stream = resp.bytes_stream();
            let mut buf = String::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Failure::plain(transport(e)))?;
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    for line in event.lines() {
                        if let Some(data) = line.strip_prefix("data:") {
                            let v: Value = serde_json::from_str(data.trim()).map_err(|e| {
                                Failure::plain(GeminiError::Invalid(format!("SSE event: {e}")))
                            })?;
                            let text = acc.absorb(&v).map_err(Failure::plain)?;
                            if !text.is_empty() {
                                on_delta(&text);
                            }
                        }
                    }
                }
            }
        } else {
            let v: Value = resp
                .json()
                .await
                .map_err(|e| Failure::plain(GeminiError::Invalid(format!("body: {e}"))))?;
            acc.absorb(&v).map_err(Failure::plain)?;
        }
        acc.finish(&self.cfg.model).map_err(Failure::plain)
    }
}

struct Failure {
    error: GeminiError,
    retry_after: Option<Duration>,
}

impl Failure {
    fn plain(error: GeminiError) -> Failure {
        Failure {
            error,
            retry_after: None,
        }
    }
}

fn transport(e: reqwest::Error) -> GeminiError {
    if e.is_timeout() {
        GeminiError::Timeout
    } else {
        // Without the URL: the error text must not carry anything secret.
        GeminiError::Transport(e.without_url().to_string())
    }
}

/// A (possibly streamed) `GenerateContentResponse`, accumulated.
#[derive(Default)]
struct Answer {
    text: String,
    finish: Option<String>,
    model: Option<String>,
}

impl Answer {
    /// Takes one response (or SSE chunk); returns its new text.
    fn absorb(&mut self, v: &Value) -> Result<String, GeminiError> {
        if let Some(reason) = v["promptFeedback"]["blockReason"].as_str() {
            return Err(GeminiError::Blocked(reason.to_owned()));
        }
        if let Some(m) = v["modelVersion"].as_str() {
            self.model = Some(m.to_owned());
        }
        let cand = &v["candidates"][0];
        if let Some(r) = cand["finishReason"].as_str() {
            self.finish = Some(r.to_owned());
        }
        let mut new = String::new();
        if let Some(parts) = cand["content"]["parts"].as_array() {
            for p in parts {
                if let Some(t) = p["text"].as_str() {
                    new.push_str(t);
                }
            }
        }
        self.text.push_str(&new);
        Ok(new)
    }

    fn finish(self, configured_model: &str) -> Result<Reply, GeminiError> {
        match self.finish.as_deref() {
            Some("STOP") | None => {}
            Some("MAX_TOKENS") => return Err(GeminiError::Truncated),
            Some(other) => return Err(GeminiError::Blocked(other.to_owned())),
        }
        let v: Value = serde_json::from_str(&self.text)
            .map_err(|e| GeminiError::Invalid(format!("not JSON: {e}")))?;
        let (summary, key_points, recommendations) =
            super::prompt::validate(&v).map_err(GeminiError::Invalid)?;
        Ok(Reply {
            summary,
            key_points,
            recommendations,
            model: self.model.unwrap_or_else(|| configured_model.to_owned()),
        })
    }
}
