//! The pipeline's insight step: the insight of a stored analysis, generated once (its id is a
//! digest of the analysis, the prompt version and the generator), streamed to the user's
//! sessions as `insight_delta` frames while it is written, stored, then delivered on the
//! user's insight stream; a failure reaches the user as `insight_failed`. The generators
//! themselves (local, Gemini) are in `crate::insights` and know nothing of the pipeline.

use std::sync::Arc;
use tracing::Instrument;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Pipeline;
use crate::insights::{Features, GeneratorKind, InsightError, prompt};
use crate::protocol::{ServerFrame, encode};
use crate::store::{DocKind, DocQuery, DocRecord, StoreError};

fn insight_id(analysis: Uuid, tag: &str) -> Uuid {
    let mut h = Sha256::new();
    h.update(analysis.as_bytes());
    h.update(prompt::PROMPT_VERSION.as_bytes());
    h.update(tag.as_bytes());
    super::analysis::digest_uuid(h)
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
    replacing(pipeline, user, analysis, None).await
}

/// [`for_analysis`], naming in a new insight's body the insight it replaces (`supersedes`:
/// that of the analysis `analysis` superseded).
pub async fn replacing(
    pipeline: &Arc<Pipeline>,
    user: Uuid,
    analysis: &DocRecord,
    supersedes: Option<Uuid>,
) -> Result<(DocRecord, bool), InsightError> {
    let id = insight_id(analysis.id, &pipeline.insights.primary_tag());
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
    let generated = pipeline
        .insights
        .generate(&features, &mut on_delta)
        .instrument(tracing::info_span!("insight.generate"))
        .await?;
    let mut body = json!({
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
    if let Some(old) = supersedes {
        body["supersedes"] = json!(old);
    }
    let record = DocRecord {
        superseded_by: None,
        id,
        user_id: user,
        created_at: Utc::now(),
        window_from_ms: analysis.window_from_ms,
        window_to_ms: analysis.window_to_ms,
        body: body.to_string(),
    };
    // A new insight (not a recomputation's, which holds the lock already) is stored only
    // while its analysis is current, checked under the user's derived-results lock: an
    // edit's recomputation then either finds it stored (and replaces it) or this finds the
    // analysis replaced.
    let _derived = match supersedes {
        None => {
            let lock = pipeline.lock_user(user).await;
            let current = pipeline.store.get_analysis(user, analysis.id).await?;
            if current.is_none_or(|a| a.superseded_by.is_some()) {
                return Err(InsightError::Superseded);
            }
            Some(lock)
        }
        Some(_) => None,
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
    // A child of the analysis it explains.
    let span = tracing::info_span!("insight", analysis_id = %analysis.id);
    let task = async move {
        match for_analysis(&pipeline2, user, &analysis).await {
            Ok((record, new)) => {
                pipeline2
                    .fanout
                    .deliver(DocKind::Insight, &record, new)
                    .instrument(tracing::info_span!("push", kind = "insight"))
                    .await;
            }
            Err(InsightError::Superseded) => {
                tracing::debug!("insight not stored: its analysis was replaced meanwhile");
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
    };
    pipeline.sessions.spawn(task.instrument(span));
}
