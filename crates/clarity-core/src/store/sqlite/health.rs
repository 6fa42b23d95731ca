//! Whether the SQLite store can write: what `/api/ready` and `clarity_store_read_only` report.
//!
//! Rules:
//! - A write that fails with `SQLITE_FULL` (disk or quota full) is refused as
//!   [`StoreError::Unavailable`] with [`DISK_FULL`] (503 / `store_unavailable` with a retry
//!   delay), never as an internal error: nothing was stored, and the same write succeeds once
//!   space is freed. SQLite rolls the whole transaction back on it; the writer never acks
//!   anything of that transaction.
//! - The writer marks the store read-only at such a failure and writable again at its next
//!   successful commit; each change is logged once (no value of any sample in it) and sets
//!   the gauge, so a full disk is one error line, not one per refused batch.
//! - Readiness reports read-only only for [`LAPSE`] after the last such failure: a node that a
//!   load balancer took out gets no writes, so without the lapse it would never be seen to
//!   recover. After the lapse, the next write either succeeds or marks it again.
//! - Reads never depend on this: they use their own connections and need no space.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::store::StoreError;

/// What a write refused for lack of space says; it names no user and no value.
pub const DISK_FULL: &str =
    "the disk holding the database is full: writes are refused until space is freed";

/// How long readiness reports read-only after the last write that failed for lack of space.
pub(super) const LAPSE: Duration = Duration::from_secs(10);

/// Shared by the writer (which marks it) and the store (which reports it).
pub(super) struct WriteHealth {
    base: Instant,
    /// Milliseconds since `base` of the last failure for lack of space, plus one; 0 while
    /// writes work.
    full_at: AtomicU64,
}

impl WriteHealth {
    pub(super) fn new() -> WriteHealth {
        metrics::gauge!(crate::metrics::STORE_READ_ONLY).set(0.0);
        WriteHealth {
            base: Instant::now(),
            full_at: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + 1
    }

    /// A write failed for lack of space.
    pub(super) fn full(&self) {
        if self.full_at.swap(self.now(), Ordering::AcqRel) == 0 {
            metrics::gauge!(crate::metrics::STORE_READ_ONLY).set(1.0);
            tracing::error!(
                "sqlite store cannot write: the disk is full; writes are refused with \
                 store_unavailable (503) until space is freed, reads go on"
            );
        }
    }

    /// A transaction with writes committed.
    pub(super) fn committed(&self) {
        if self.full_at.load(Ordering::Acquire) != 0 && self.full_at.swap(0, Ordering::AcqRel) != 0
        {
            metrics::gauge!(crate::metrics::STORE_READ_ONLY).set(0.0);
            tracing::info!("sqlite store writes again");
        }
    }

    /// Why readiness should say the store cannot write, if it should (see the module's rules).
    pub(super) fn read_only(&self) -> Option<&'static str> {
        let at = self.full_at.load(Ordering::Acquire);
        (at != 0 && self.now().saturating_sub(at) < LAPSE.as_millis() as u64).then_some(DISK_FULL)
    }
}

/// Whether `e` is SQLite's "database or disk is full".
pub(super) fn is_disk_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// Whether a store error carries SQLite's "database or disk is full".
pub(super) fn is_disk_full_error(e: &StoreError) -> bool {
    match e {
        StoreError::Other(e) => e
            .downcast_ref::<rusqlite::Error>()
            .is_some_and(is_disk_full),
        _ => false,
    }
}

pub(super) fn disk_full() -> StoreError {
    StoreError::Unavailable(DISK_FULL.into())
}

impl super::SqliteStore {
    /// Fault injection for tests, never used by the server: `true` caps the database at its
    /// current size on the writer's connection (`PRAGMA max_page_count`), so that a write
    /// needing a new page fails with `SQLITE_FULL` and SQLite rolls its transaction back, as
    /// on a full disk; `false` lifts the cap, as freeing space does. Returns the cap in pages.
    #[doc(hidden)]
    pub async fn simulate_disk_full(&self, full: bool) -> crate::store::StoreResult<i64> {
        // SQLite raises a cap below the current size to the current size.
        let cap = if full { 1 } else { i64::from(u32::MAX - 1) };
        self.call(move |c| {
            c.query_row(&format!("PRAGMA max_page_count = {cap}"), [], |r| r.get(0))
                .map_err(|e| StoreError::Other(e.into()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_from_a_failure_until_a_commit() {
        let h = WriteHealth::new();
        assert_eq!(h.read_only(), None);
        h.full();
        assert_eq!(h.read_only(), Some(DISK_FULL));
        h.full();
        assert_eq!(h.read_only(), Some(DISK_FULL));
        h.committed();
        assert_eq!(h.read_only(), None);
    }

    #[test]
    fn readiness_forgets_an_old_failure() {
        // A failure older than the lapse (the clock's origin moved back instead of waiting).
        let h = WriteHealth {
            base: Instant::now() - LAPSE - Duration::from_millis(5),
            full_at: AtomicU64::new(1),
        };
        assert_eq!(h.read_only(), None);
        h.full();
        assert_eq!(h.read_only(), Some(DISK_FULL));
    }

    #[test]
    fn disk_full_is_recognised_through_the_store_error() {
        let e = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(is_disk_full(&e));
        assert!(is_disk_full_error(&StoreError::Other(e.into())));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(!is_disk_full_error(&StoreError::Other(busy.into())));
    }
}
