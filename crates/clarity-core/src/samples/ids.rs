//! The ids a delete names: the rule uploads apply to `id` ([`super::parse`]), so every
//! stored id can be named, and a bounded count per request or frame.
//!
//! Here (not in ingest) because the protocol's frame parser checks them too, and the
//! protocol must not depend on ingest.

use super::MAX_ID_LEN;

/// Most ids a delete names (a `delete` frame, `POST /api/v1/health-data/delete`).
pub const MAX_DELETE_IDS: usize = 1000;

/// Why a delete's ids are refused as a whole (nothing is deleted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadIds {
    #[error("`ids` must list 1 to {MAX_DELETE_IDS} sample ids, got {0}")]
    Count(usize),
    #[error(
        "ids[{0}]: an id must be 1-{max} bytes without control characters",
        max = MAX_ID_LEN
    )]
    Invalid(usize),
}

/// Checks the ids of a delete: 1..=[`MAX_DELETE_IDS`], each a valid sample id (the rule
/// uploads apply, so every stored id can be named).
pub fn check_ids<S: AsRef<str>>(ids: &[S]) -> Result<(), BadIds> {
    if ids.is_empty() || ids.len() > MAX_DELETE_IDS {
        return Err(BadIds::Count(ids.len()));
    }
    // The rule uploads apply to `id` (samples::parse).
    let valid =
        |id: &str| !id.is_empty() && id.len() <= MAX_ID_LEN && !id.chars().any(char::is_control);
    match ids.iter().position(|id| !valid(id.as_ref())) {
        Some(i) => Err(BadIds::Invalid(i)),
        None => Ok(()),
    }
}
