//! Derived results follow the data: after an edit or deletion, the analyses (and their
//! insights) over the changed times are recomputed and the old ones marked superseded.
//!
//! Rules:
//! - An analysis is touched when a changed time (an old sample's or its new version's) lies
//!   in the week its input was read from: `[until - 7 days, until)`, `until` being the end of
//!   the week it analysed (the local midnight after its window for `day_complete` and
//!   `import`, its window's end otherwise). Only current analyses are looked at.
//! - Recomputations are coalesced per user: a write batch queues its changed spans; one
//!   runner per user waits [`SETTLE`], takes every span queued by then (merged) and recomputes
//!   once, and goes on while more arrive. A phone syncing a burst of edits (one frame after
//!   another) costs one recomputation per settle period, not one per frame.
//! - The recomputation reads that week from the store (not the window, which may be another
//!   week or on another node), so it sees exactly what is stored now. Its id is a digest of
//!   its input like any analysis': the same input gives the old id (nothing changed for it);
//!   an id that exists already (the data went back to an earlier state) is made current
//!   again instead of being stored twice.
//! - The new analysis names the old one (`supersedes`); the old one is marked
//!   (`Store::set_superseded`) before the new one is delivered (whoever receives it and
//!   lists analyses finds the old one superseded), then a `superseded` event goes on the
//!   analyses stream. The
//!   current insight of the old analysis is replaced by one of the new analysis the same way
//!   on the insights stream.
//! - A week with no activity left has no analysis: the old one is withdrawn, marked superseded
//!   by the nil UUID (and its insight with it), so no current document depends on deleted
//!   samples.
//! - A transient store failure (overloaded, timed out, unavailable) is retried with backoff
//!   for up to [`RETRY_FOR`], the user's lock released while waiting: a recomputation is
//!   idempotent (what an earlier attempt replaced is current and recomputes to itself).
//! - The write stored its changed times as revisions (`store::revisions`); the runner clears
//!   them only after recomputing. One given up on, or lost with a killed node, stays stored
//!   and is recomputed when a node next takes the user's window (`WindowService`), so no
//!   analysis keeps counting samples that no longer exist.
//! - One user's recomputations run one at a time (a later batch waits for the earlier one),
//!   so two batches never both replace the same analysis; new analyses and insights of the
//!   user take the same lock from their snapshot until stored (`Pipeline::lock_user`), so
//!   none computed from replaced data is stored after the recomputation looked.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use super::Pipeline;
use super::analysis::{self, AnalysisError, Trigger};
use crate::store::{DocKind, DocQuery, DocRecord, Store, StoreError, StoreResult};
use crate::window::{WINDOW_MINUTES, read_series};

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = WINDOW_MINUTES as i64 * 60_000;

/// What a withdrawn document is marked superseded by: nothing replaces it.
pub const WITHDRAWN: Uuid = Uuid::nil();

/// How long a recomputation is retried while the store fails transiently.
pub const RETRY_FOR: Duration = Duration::from_secs(60);

/// How long a user's runner waits before taking the spans queued (see the module's rules).
pub const SETTLE: Duration = Duration::from_millis(250);

/// What a user's runner has yet to recompute.
#[derive(Default)]
pub struct Pending {
    spans: Vec<(i64, i64)>,
    /// The stored revisions (change seq ranges) these spans come from: cleared once done.
    revisions: Vec<(u64, u64)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.revisions.is_empty()
    }
}

/// Recomputes `user`'s analyses touched by changes at `spans` (UTC ms `[start, end]`), in the
/// background, coalesced with the user's other pending changes; then clears the stored
/// `revisions` (change seq ranges) they came from.
pub fn spawn(
    pipeline: &Arc<Pipeline>,
    user: Uuid,
    spans: Vec<(i64, i64)>,
    revisions: Vec<(u64, u64)>,
) {
    use dashmap::mapref::entry::Entry;
    match pipeline.revise_pending.entry(user) {
        // A runner is waiting or running: it (or its next round) takes these.
        Entry::Occupied(mut queued) => {
            queued.get_mut().spans.extend(spans);
            queued.get_mut().revisions.extend(revisions);
            return;
        }
        Entry::Vacant(slot) => {
            slot.insert(Pending { spans, revisions });
        }
    }
    let pipeline2 = pipeline.clone();
    pipeline.sessions.spawn(async move {
        loop {
            tokio::time::sleep(SETTLE).await;
            // The entry goes only while empty, under its shard's lock: a span queued after
            // this finds no entry and starts a new runner.
            let (spans, revisions) = match pipeline2.revise_pending.entry(user) {
                Entry::Occupied(mut queued) if !queued.get().is_empty() => {
                    let Pending { spans, revisions } = std::mem::take(queued.get_mut());
                    (crate::samples::merge_spans(spans), revisions)
                }
                Entry::Occupied(queued) => {
                    queued.remove();
                    return;
                }
                Entry::Vacant(_) => return,
            };
            if recompute(&pipeline2, user, &spans).await {
                clear(&pipeline2, user, revisions).await;
            }
        }
    });
}

/// Confirms the recomputation of `revisions` in the store. One not cleared is recomputed
/// again when a node next takes the user's window: wasted work, not a wrong result.
async fn clear(pipeline: &Pipeline, user: Uuid, revisions: Vec<(u64, u64)>) {
    if revisions.is_empty() {
        return;
    }
    // One store call per round, however many batches the round coalesced.
    if let Err(e) = pipeline.store.clear_revisions(user, revisions).await {
        tracing::warn!(error = %e, "recomputed changes not confirmed in the store");
    }
}

/// One recomputation of `spans`, retried while the store fails transiently; whether it was
/// done.
async fn recompute(pipeline: &Arc<Pipeline>, user: Uuid, spans: &[(i64, i64)]) -> bool {
    let give_up = tokio::time::Instant::now() + RETRY_FOR;
    let mut delay = Duration::from_millis(100);
    loop {
        let result = {
            let _one_at_a_time = pipeline.lock_user(user).await;
            run(pipeline, user, spans).await
        };
        match result {
            Ok(()) => return true,
            Err(AnalysisError::Store(e))
                if e.is_transient() && tokio::time::Instant::now() + delay < give_up =>
            {
                tracing::debug!(error = %e, "recomputing analyses over changed samples: retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::warn!(error = %e, "analyses over edited or deleted samples not recomputed");
                return false;
            }
        }
    }
}

/// The end of the week an analysis read (see the module's rules), UTC ms.
fn week_end(doc: &DocRecord) -> i64 {
    let body: Value = serde_json::from_str(&doc.body).unwrap_or_default();
    // Both read the week up to a local midnight (`history` for imports).
    if body["trigger"] != "day_complete" && body["trigger"] != "import" {
        return doc.window_to_ms;
    }
    let offset_ms = body["window"]["utc_offset_minutes"].as_i64().unwrap_or(0) * 60_000;
    // The local midnight at or after the window's end.
    let local = doc.window_to_ms + offset_ms;
    local.div_euclid(DAY_MS) * DAY_MS
        + if local.rem_euclid(DAY_MS) == 0 {
            0
        } else {
            DAY_MS
        }
        - offset_ms
}

async fn current_touched(
    store: &dyn Store,
    user: Uuid,
    spans: &[(i64, i64)],
) -> StoreResult<Vec<(DocRecord, i64)>> {
    let lo = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let hi = spans.iter().map(|s| s.1).max().unwrap_or(0);
    // Week ends lie at most a day after a window's end.
    let mut query = DocQuery {
        from_ms: Some(lo - DAY_MS),
        to_ms: Some(hi.saturating_add(WEEK_MS + DAY_MS)),
        after: None,
        limit: 200,
    };
    let mut out = Vec::new();
    loop {
        let page = store
            .list_docs(DocKind::Analysis, user, query.clone())
            .await?;
        for doc in page.docs {
            if doc.superseded_by.is_some() {
                continue;
            }
            let until = week_end(&doc);
            if spans
                .iter()
                .any(|&(start, end)| start < until && end >= until - WEEK_MS)
            {
                out.push((doc, until));
            }
        }
        match page.next {
            Some(c) => query.after = Some(c),
            None => return Ok(out),
        }
    }
}

async fn run(
    pipeline: &Arc<Pipeline>,
    user: Uuid,
    spans: &[(i64, i64)],
) -> Result<(), AnalysisError> {
    let store = &*pipeline.store;
    let touched = current_touched(store, user, spans).await?;
    // Several current analyses of a week may recompute to one: it is delivered once.
    let mut delivered = HashSet::new();
    for (old, until) in touched {
        let series = read_series(store, user, (until - WEEK_MS, until)).await?;
        let trigger = Trigger::DataChanged;
        let until_minute = until.div_euclid(60_000);
        match analysis::recompute(pipeline, user, trigger, &series, until_minute, old.id).await {
            Ok((new, _)) if new.id == old.id => {}
            Ok((new, stored_now)) => {
                replace(pipeline, user, &old, &new, stored_now, &mut delivered).await?
            }
            Err(AnalysisError::NoData) => withdraw(pipeline, user, &old).await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Marks `old` replaced by `new` and delivers both events; then the same for its insight.
async fn replace(
    pipeline: &Arc<Pipeline>,
    user: Uuid,
    old: &DocRecord,
    new: &DocRecord,
    stored_now: bool,
    delivered: &mut HashSet<Uuid>,
) -> StoreResult<()> {
    let store = &*pipeline.store;
    if !stored_now && new.superseded_by.is_some() {
        // The data went back to what an earlier analysis saw: that one is current again.
        store
            .set_superseded(DocKind::Analysis, user, new.id, None)
            .await?;
    }
    // Marked before `new` is delivered: a client that lists analyses on receiving it finds
    // `old` superseded. `new` is delivered once per recomputation, whether stored now or
    // by an earlier attempt whose marking failed (`old` is still current then, so `new` is
    // found again: a repeat at worst, with the same id, rather than never).
    let fanout = &pipeline.fanout;
    store
        .set_superseded(DocKind::Analysis, user, old.id, Some(new.id))
        .await?;
    if delivered.insert(new.id) {
        fanout.deliver(DocKind::Analysis, new, true).await;
    }
    publish(pipeline, DocKind::Analysis, user, old.id, new.id).await;
    for insight in insights_of(store, user, old).await? {
        match super::insight::replacing(pipeline, user, new, Some(insight.id)).await {
            Ok((fresh, stored_now)) => {
                if !stored_now && fresh.superseded_by.is_some() {
                    store
                        .set_superseded(DocKind::Insight, user, fresh.id, None)
                        .await?;
                }
                store
                    .set_superseded(DocKind::Insight, user, insight.id, Some(fresh.id))
                    .await?;
                if delivered.insert(fresh.id) {
                    fanout.deliver(DocKind::Insight, &fresh, true).await;
                }
                publish(pipeline, DocKind::Insight, user, insight.id, fresh.id).await;
            }
            Err(e) => {
                // Its analysis is marked superseded: readers see the insight is out of date.
                tracing::warn!(error = %e, "insight of a recomputed analysis not produced");
            }
        }
    }
    Ok(())
}

/// No activity is left in `old`'s week: it and its insight are withdrawn.
async fn withdraw(pipeline: &Arc<Pipeline>, user: Uuid, old: &DocRecord) -> StoreResult<()> {
    let store = &*pipeline.store;
    store
        .set_superseded(DocKind::Analysis, user, old.id, Some(WITHDRAWN))
        .await?;
    publish(pipeline, DocKind::Analysis, user, old.id, WITHDRAWN).await;
    for insight in insights_of(store, user, old).await? {
        store
            .set_superseded(DocKind::Insight, user, insight.id, Some(WITHDRAWN))
            .await?;
        publish(pipeline, DocKind::Insight, user, insight.id, WITHDRAWN).await;
    }
    Ok(())
}

async fn publish(pipeline: &Pipeline, kind: DocKind, user: Uuid, old: Uuid, by: Uuid) {
    if let Err(e) = pipeline
        .fanout
        .publish_superseded(kind, user, old, by)
        .await
    {
        // The mark is stored and listed over REST; only the live event is lost.
        tracing::warn!(error = %e, stream = kind.stream(), "superseded event not appended");
    }
}

/// The current insights made of `analysis` (insights share their analysis' window).
async fn insights_of(
    store: &dyn Store,
    user: Uuid,
    analysis: &DocRecord,
) -> Result<Vec<DocRecord>, StoreError> {
    let page = store
        .list_docs(
            DocKind::Insight,
            user,
            DocQuery {
                from_ms: Some(analysis.window_to_ms),
                to_ms: Some(analysis.window_to_ms + 1),
                after: None,
                limit: 500,
            },
        )
        .await?;
    let id = analysis.id.to_string();
    Ok(page
        .docs
        .into_iter()
        .filter(|d| d.superseded_by.is_none())
        .filter(|d| {
            serde_json::from_str::<Value>(&d.body)
                .is_ok_and(|b| b["analysis_id"].as_str() == Some(id.as_str()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn merge_joins_overlapping_spans_in_order() {
        assert_eq!(
            crate::samples::merge_spans(vec![(50, 60), (0, 10), (5, 20), (20, 30), (40, 45)]),
            vec![(0, 30), (40, 45), (50, 60)]
        );
        assert!(crate::samples::merge_spans(vec![]).is_empty());
    }
}
