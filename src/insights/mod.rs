//! Insights: plain-language text about a user's week, from Gemini or the local generator.
//!
//! Rules:
//! - Built only from [`Features`] of a stored analysis (no identity, no sample rows).
//! - Gemini when a key is configured; when it fails (breaker open, 429s, 5xx, timeout, SAFETY,
//!   MAX_TOKENS, malformed answer) the local generator answers instead, recorded as
//!   `generator:"local"` with a `fallback_reason`, unless the fallback is disabled, in which
//!   case the user gets an `insight_failed` event. A model answer is never made up.
//! - One insight per (analysis, generator, prompt version): its id is a digest of those, so a
//!   repeated request gives the stored insight instead of a second one.
//! - Which analyses get one is decided by the callers: a new asked-for analysis, a new
//!   day-complete analysis of a window ending within 48 hours of now (`window::analysis`), and
//!   `POST /api/v1/insights`; protocol/README.md states the same rule.

pub mod features;
pub mod gemini;
mod local;
pub mod prompt;
mod text;

use std::sync::Arc;

use async_trait::async_trait;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::pipeline::Pipeline;
use crate::protocol::{ServerFrame, encode};
use crate::store::{DocKind, DocQuery, DocRecord, StoreError};
pub use features::Features;
use gemini::{Gemini, GeminiError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorKind {
    Local,
    Gemini,
}

/// Text from a generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub generator: GeneratorKind,
    pub model: Option<String>,
    pub summary: String,
    pub key_points: Vec<String>,
    pub recommendations: Vec<String>,
    /// Why Gemini was not used although configured.
    pub fallback_reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InsightError {
    #[error("the model failed and the local fallback is disabled: {0}")]
    Model(GeminiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the analysis document is unreadable: {0}")]
    BadAnalysis(String),
}

/// Something that writes an insight from features.
#[async_trait]
pub trait InsightGenerator: Send + Sync {
    /// Part of the insight id: a new generator or model gives a new insight.
    fn tag(&self) -> String;
    /// `on_delta` receives streamed text, for generators that stream.
    async fn generate(
        &self,
        features: &Features,
        on_delta: &mut (dyn for<'s> FnMut(&'s str) + Send + '_),
    ) -> Result<Generated, GeminiError>;
}

/// The built-in rule-based generator.
pub struct LocalGenerator;

#[async_trait]
impl InsightGenerator for LocalGenerator {
    fn tag(&self) -> String {
        "local".into()
    }

    async fn generate(
        &self,
        features: &Features,
        _on_delta: &mut (dyn for<'s> FnMut(&'s str) + Send + '_),
    ) -> Result<Generated, GeminiError> {
        Ok(local::generate(features))
    }
}

#[async_trait]
impl InsightGenerator for Gemini {
    fn tag(&self) -> String {
        format!("gemini:{}", self.model())
    }

    async fn generate(
        &self,
        features: &Features,
        on_delta: &mut (dyn for<'s> FnMut(&'s str) + Send + '_),
    ) -> Result<Generated, GeminiError> {
        let r = Gemini::generate(self, &prompt::build(features), on_delta).await?;
        Ok(Generated {
            generator: GeneratorKind::Gemini,
            model: Some(r.model),
            summary: r.summary,
            key_points: r.key_points,
            recommendations: r.recommendations,
            fallback_reason: None,
        })
    }
}

/// The configured generator, and the local one to fall back on.
pub struct Insights {
    primary: Box<dyn InsightGenerator>,
    /// Answers when the primary fails; `None` turns failures into `insight_failed`.
    fallback: Option<LocalGenerator>,
}

impl Insights {
    /// Gemini when configured, else the local generator.
    pub fn new(gemini: Option<Gemini>, fallback: bool) -> Insights {
        match gemini {
            Some(g) => Insights {
                primary: Box::new(g),
                fallback: fallback.then_some(LocalGenerator),
            },
            None => Insights {
                primary: Box::new(LocalGenerator),
                fallback: None,
            },
        }
    }

    pub async fn generate(
        &self,
        features: &Features,
        on_delta: &mut (dyn for<'s> FnMut(&'s str) + Send + '_),
    ) -> Result<Generated, InsightError> {
        match self.primary.generate(features, on_delta).await {
            Ok(g) => Ok(g),
            Err(e) => match &self.fallback {
                Some(local) => {
                    tracing::warn!(error = %e, "insight generator failed; using the local one");
                    let mut g = local
                        .generate(features, on_delta)
                        .await
                        .map_err(InsightError::Model)?;
                    g.fallback_reason = Some(e.to_string());
                    Ok(g)
                }
                None => Err(InsightError::Model(e)),
            },
        }
    }
}

fn insight_id(analysis: Uuid, tag: &str) -> Uuid {
    let mut h = Sha256::new();
    h.update(analysis.as_bytes());
    h.update(prompt::PROMPT_VERSION.as_bytes());
    h.update(tag.as_bytes());
    crate::window::analysis::digest_uuid(h)
}

/// The latest insight's features before `before_ms` (window end), for week-on-week changes.
async fn previous_features(
    pipeline: &Pipeline,
    user: Uuid,
    before_ms: i64,
) -> Result<Option<Features>, StoreError> {
    let page = pipeline
        .store
        .list_docs(
            DocKind::Insight,
            user,
            DocQuery {
                from_ms: Some(before_ms - 35 * 86_400_000),
                to_ms: Some(before_ms - 86_400_000 + 1),
                after: None,
                limit: 200,
            },
        )
        .await?;
    Ok(page.docs.last().and_then(|d| {
        serde_json::from_str::<Value>(&d.body)
            .ok()
            .and_then(|v| serde_json::from_value(v["features"].clone()).ok())
    }))
}

/// Generates (or finds) the insight for a stored analysis; `true` when it is new. Streamed
/// text goes to the user's sessions as `insight_delta` frames.
pub async fn for_analysis(
    pipeline: &Arc<Pipeline>,
    user: Uuid,
    analysis: &DocRecord,
) -> Result<(DocRecord, bool), InsightError> {
    let id = insight_id(analysis.id, &pipeline.insights.primary.tag());
    if let Some(existing) = pipeline.store.get_doc(DocKind::Insight, user, id).await? {
        return Ok((existing, false));
    }
    let doc: Value = serde_json::from_str(&analysis.body)
        .map_err(|e| InsightError::BadAnalysis(e.to_string()))?;
    let mut features = Features::from_analysis(&doc);
    if let Some(prev) = previous_features(pipeline, user, analysis.window_to_ms).await? {
        features.compare_with(&prev);
    }
    let mut index = 0u32;
    let mut on_delta = |text: &str| {
        let frame = ServerFrame::InsightDelta {
            insight_id: id,
            analysis_id: analysis.id,
            index,
            text,
        };
        index += 1;
        pipeline.fanout.push_user(user, &encode(&frame));
    };
    let generated = pipeline.insights.generate(&features, &mut on_delta).await?;
    let body = json!({
        "insight_id": id,
        "user_id": user,
        "analysis_id": analysis.id,
        "created_at": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "window": doc["window"],
        "generator": generated.generator,
        "model": generated.model,
        "prompt_version": prompt::PROMPT_VERSION,
        "summary": generated.summary,
        "key_points": generated.key_points,
        "recommendations": generated.recommendations,
        "fallback_reason": generated.fallback_reason,
        "features": features,
    });
    let record = DocRecord {
        id,
        user_id: user,
        created_at: Utc::now(),
        window_from_ms: analysis.window_from_ms,
        window_to_ms: analysis.window_to_ms,
        body: body.to_string(),
    };
    let new = pipeline
        .store
        .put_doc(DocKind::Insight, record.clone())
        .await?;
    ::metrics::counter!(crate::metrics::INSIGHTS, "generator" => match generated.generator { GeneratorKind::Gemini => "gemini", GeneratorKind::Local => "local" }).increment(1);
    Ok((record, new))
}

/// Generates the insight for a new analysis in the background and pushes it.
pub fn spawn(pipeline: &Arc<Pipeline>, user: Uuid, analysis: DocRecord) {
    let pipeline2 = pipeline.clone();
    pipeline.sessions.spawn(async move {
        match for_analysis(&pipeline2, user, &analysis).await {
            Ok((record, new)) => {
                pipeline2
                    .fanout
                    .deliver(DocKind::Insight, &record, new)
                    .await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "insight not produced");
                let reason = match &e {
                    InsightError::Store(s) => {
                        crate::protocol::store_failure(s, "insight not stored")
                            .code
                            .to_owned()
                    }
                    InsightError::Model(m) => m.to_string(),
                    _ => "internal".to_owned(),
                };
                let frame = ServerFrame::InsightFailed {
                    analysis_id: analysis.id,
                    reason: &reason,
                };
                pipeline2.fanout.push_user(user, &encode(&frame));
            }
        }
    });
}
