//! WAL checkpoints off the writer thread.
//!
//! Rules:
//! - A checkpoint copies committed WAL pages into the database file and fsyncs it. Left to
//!   SQLite's default (`wal_autocheckpoint = 1000` pages on the writing connection), it runs
//!   inside the writer's `COMMIT`, so every few megabytes one group commit (and every ack
//!   waiting on it) also pays for copying and syncing the database file. Here a thread with its
//!   own connection runs `PASSIVE` checkpoints (they never block the writer or readers) after
//!   commits, at most one per [`GAP`].
//! - The writer keeps an autocheckpoint, at [`WRITER_LIMIT_PAGES`]: under non-stop writes a
//!   passive checkpoint rarely catches the WAL's end, and SQLite only rewinds the WAL once one
//!   has; the writer's own checkpoint (which no commit can overtake) does, and bounds the file.
//! - Durability is unchanged: a commit is acked after the WAL's fsync, as before; checkpoints
//!   only move already durable pages, and SQLite recovers an interrupted one on open.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// Shortest time between two background checkpoints: each one fsyncs the database file.
const GAP: Duration = Duration::from_millis(50);

/// WAL size (pages) at which the writer checkpoints itself (see the module's rules).
pub(super) const WRITER_LIMIT_PAGES: i64 = 16_384;

/// Wakes the checkpoint thread; dropping it ends the thread, [`Notify::stop`] waits for that.
pub(super) struct Notify {
    wake: mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Notify {
    /// Called after each commit: never blocks (a pending wake-up already covers this one).
    pub(super) fn committed(&self) {
        let _ = self.wake.try_send(());
    }

    /// Ends the thread and waits until its connection is closed (a closed store leaves no
    /// connection open: `clarity rekey` may run right after).
    pub(super) fn stop(self) {
        drop(self.wake);
        let _ = self.thread.join();
    }
}

/// Starts the checkpoint thread on the database at `path` (opened with the store's data key,
/// like every connection to it).
pub(super) fn spawn(
    path: &Path,
    synchronous: &str,
    key: Option<&super::key::DataKey>,
) -> anyhow::Result<Notify> {
    let conn = super::key::open(path, rusqlite::OpenFlags::default(), key)?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    // This connection never commits, so it never checkpoints by itself either.
    let (tx, rx) = mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || run(conn, rx))?;
    Ok(Notify { wake: tx, thread })
}

fn run(conn: Connection, rx: mpsc::Receiver<()>) {
    while rx.recv().is_ok() {
        let res = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match res {
            Ok((wal, copied)) => tracing::trace!(wal, copied, "wal checkpoint"),
            // Busy (the writer's own checkpoint runs) or I/O: the next commit wakes us again.
            Err(e) => tracing::debug!(error = %e, "wal checkpoint skipped"),
        }
        std::thread::sleep(GAP);
    }
}
