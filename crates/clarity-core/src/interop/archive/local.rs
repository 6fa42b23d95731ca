//! The local backend of the [`super::Archive`] (the default): uploads kept in the data dir.
//! With `--archive s3://` the same folders hold only the scratch copies that running imports
//! read ([`super::s3`]).
//!
//! Rules:
//! - An upload lives at `DATA_DIR/imports/<user_id>/<import_id>.export`: one folder per
//!   account, so that erasing the account removes exactly its uploads (on every node: each
//!   node's data dir holds the uploads it took).
//! - Retention (`--import-retention-days`, at least 1): an upload whose file was last written
//!   longer ago is deleted by [`Local::sweep`] (at start, then hourly). A running import's
//!   file was written when its upload ended, so only an import running for longer than the
//!   retention could lose its file, and that import keeps reading the open file.
//! - Files of the layout before per-account folders (`imports/<import_id>.export`) have no
//!   known owner: only retention removes them.
//! - Missing files and folders are not errors: erasing and sweeping are idempotent.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use uuid::Uuid;

const DAY: Duration = Duration::from_secs(86_400);

/// Where uploads are kept, and for how long.
#[derive(Debug, Clone)]
pub struct Local {
    dir: PathBuf,
    retention: Duration,
}

impl Local {
    /// Uploads in `data_dir/imports`, kept `retention_days` (at least 1).
    pub fn new(data_dir: &Path, retention_days: u32) -> Local {
        Local {
            dir: data_dir.join("imports"),
            retention: DAY * retention_days.max(1),
        }
    }

    /// How long an upload is kept.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    fn user_dir(&self, user: Uuid) -> PathBuf {
        self.dir.join(user.to_string())
    }

    /// Where the upload `id` of `user` is written (the folder is created).
    pub fn upload_path(&self, user: Uuid, id: Uuid) -> std::io::Result<PathBuf> {
        let dir = self.user_dir(user);
        std::fs::create_dir_all(&dir)?;
        Ok(dir.join(format!("{id}.export")))
    }

    /// The upload `id` of `user`, if it is kept here.
    pub fn find(&self, user: Uuid, id: Uuid) -> Option<PathBuf> {
        let path = self.user_dir(user).join(format!("{id}.export"));
        path.is_file().then_some(path)
    }

    /// Deletes every upload of `user`; returns how many files there were.
    pub async fn erase_user(&self, user: Uuid) -> std::io::Result<usize> {
        let dir = self.user_dir(user);
        tokio::task::spawn_blocking(move || {
            let n = match std::fs::read_dir(&dir) {
                Ok(entries) => entries.count(),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
                _ => Ok(n),
            }
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Deletes the uploads last written before `now - retention`; returns how many.
    pub async fn sweep(&self, now: SystemTime) -> std::io::Result<usize> {
        let (dir, cutoff) = (self.dir.clone(), now.checked_sub(self.retention));
        let Some(cutoff) = cutoff else { return Ok(0) };
        tokio::task::spawn_blocking(move || sweep_dir(&dir, cutoff, true))
            .await
            .map_err(std::io::Error::other)?
    }
}

/// Removes the files under `dir` older than `cutoff` (one level of account folders below
/// the top; an account folder left empty goes too).
fn sweep_dir(dir: &Path, cutoff: SystemTime, top: bool) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let path = entry.path();
        if meta.is_dir() {
            if top {
                removed += sweep_dir(&path, cutoff, false)?;
                // Fails while the folder still holds files (or a new upload began): kept.
                let _ = std::fs::remove_dir(&path);
            }
        } else if meta.modified()? < cutoff {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
                _ => removed += 1,
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn erase_removes_one_accounts_uploads_and_sweep_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Local::new(dir.path(), 30);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let pa = archive.upload_path(a, Uuid::now_v7()).unwrap();
        let pb = archive.upload_path(b, Uuid::now_v7()).unwrap();
        std::fs::write(&pa, b"a").unwrap();
        std::fs::write(&pb, b"b").unwrap();
        let legacy = dir
            .path()
            .join("imports")
            .join(format!("{}.export", Uuid::now_v7()));
        std::fs::write(&legacy, b"old layout").unwrap();

        assert_eq!(archive.erase_user(a).await.unwrap(), 1);
        assert!(!pa.exists() && pb.exists());
        assert_eq!(archive.erase_user(a).await.unwrap(), 0, "idempotent");

        let now = SystemTime::now();
        assert_eq!(archive.sweep(now).await.unwrap(), 0, "all recent");
        assert_eq!(archive.sweep(now + DAY * 31).await.unwrap(), 2);
        assert!(!pb.exists() && !legacy.exists());
        assert!(!pb.parent().unwrap().exists(), "the empty folder goes too");
    }
}
