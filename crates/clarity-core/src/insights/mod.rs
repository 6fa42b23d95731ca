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
//!   day-complete analysis of a window ending within 48 hours of now (`pipeline::analysis`),
//!   and
//!   `POST /api/v1/insights`; protocol/README.md states the same rule.

pub mod features;
pub mod gemini;
pub mod heart;
mod local;
pub mod prompt;
mod text;

use async_trait::async_trait;
use serde::Serialize;

use crate::store::StoreError;
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
    /// An edit or deletion replaced the analysis while its insight was written: the
    /// replacement gets its own insight, this one is not stored.
    #[error("the analysis was replaced by a newer one")]
    Superseded,
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

    /// The primary generator's tag (`local`, or Gemini's model): part of an insight's id, so
    /// that another generator's insight of the same analysis is a different document.
    pub fn primary_tag(&self) -> String {
        self.primary.tag()
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
