//! The kept uploads (the archive): every import's file stays so that it can be re-run when
//! mappings improve, until the account is erased or the retention period ends. Two
//! backends: the data dir ([`local`], the default) or S3 (`--archive s3://bucket/prefix`,
//! [`s3`]).
//!
//! Rules:
//! - An upload is written as it arrives ([`Upload`]), never held in memory whole; it is kept
//!   only once [`Upload::finish`] succeeded. With S3, finish returns after S3 acknowledged the
//!   whole object: an upload S3 refused fails (the caller answers 503 `archive_unavailable`)
//!   instead of running an import whose file is not kept.
//! - An import reads a file on local disk (a zip needs seeking): with S3 that is a scratch
//!   copy in the data dir (the upload as it arrived, or the object downloaded for a re-run),
//!   deleted when the import ends ([`Archive::done_reading`]).
//! - Keys are per account (`<user_id>/<import_id>.export`, below the data dir's `imports/`
//!   or the S3 prefix), so erasing an account deletes exactly its uploads
//!   ([`Archive::erase_user`]) and the retention sweep ([`Archive::sweep`]) can go by age.
//! - Erasing and sweeping are idempotent: what is already gone is not an error.

pub mod local;
pub mod s3;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;
use uuid::Uuid;

pub use local::Local;
pub use s3::{S3Archive, S3Location};

/// What went wrong with the archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The data dir (the local archive, or the S3 backend's scratch copies).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// S3 refused or could not be reached; `message` names the bucket and S3's error.
    #[error("the import archive is unavailable: {0}")]
    Unavailable(String),
}

/// Where uploads are kept.
#[derive(Debug, Clone)]
pub enum Archive {
    Local(Local),
    S3(S3Archive),
}

impl Archive {
    /// How long an upload is kept.
    pub fn retention(&self) -> Duration {
        match self {
            Archive::Local(l) => l.retention(),
            Archive::S3(s) => s.retention(),
        }
    }

    /// Where the uploads are, for logs (`data dir` or `s3://bucket/prefix`).
    pub fn describe(&self) -> String {
        match self {
            Archive::Local(_) => "the data dir".into(),
            Archive::S3(s) => s.location().to_string(),
        }
    }

    /// Begins keeping upload `id` of `user` (S3: the multipart upload is created now, so that
    /// an unusable bucket fails before the body is read).
    pub async fn begin(&self, user: Uuid, id: Uuid) -> Result<Upload, ArchiveError> {
        let (path, s3) = match self {
            Archive::Local(l) => (l.upload_path(user, id)?, None),
            Archive::S3(s) => (
                s.scratch().upload_path(user, id)?,
                Some(s.begin(user, id).await?),
            ),
        };
        let file = match tokio::fs::File::create(&path).await {
            Ok(f) => f,
            Err(e) => {
                if let Some(parts) = s3 {
                    parts.abort().await;
                }
                return Err(e.into());
            }
        };
        Ok(Upload {
            path,
            file,
            written: 0,
            s3,
        })
    }

    /// A file on local disk holding the kept upload `id` of `user` (S3: downloaded, streamed,
    /// to a scratch copy); `None` when it is not kept (never uploaded, another account's,
    /// erased, or past the retention).
    pub async fn fetch(&self, user: Uuid, id: Uuid) -> Result<Option<PathBuf>, ArchiveError> {
        match self {
            Archive::Local(l) => Ok(l.find(user, id)),
            Archive::S3(s) => s.fetch(user, id).await,
        }
    }

    /// The import of upload `id` has ended: the S3 backend's scratch copy goes (the local
    /// backend's file is the kept upload: it stays).
    pub async fn done_reading(&self, user: Uuid, id: Uuid) {
        if let Archive::S3(s) = self {
            s.drop_scratch(user, id).await;
        }
    }

    /// Deletes upload `id` of `user` (refused after it arrived, e.g. the account was erased
    /// meanwhile).
    pub async fn remove(&self, user: Uuid, id: Uuid) -> Result<(), ArchiveError> {
        match self {
            Archive::Local(l) => {
                if let Some(path) = l.find(user, id) {
                    match tokio::fs::remove_file(path).await {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                        _ => {}
                    }
                }
                Ok(())
            }
            Archive::S3(s) => s.remove(user, id).await,
        }
    }

    /// Deletes every upload of `user`; returns how many there were.
    pub async fn erase_user(&self, user: Uuid) -> Result<usize, ArchiveError> {
        match self {
            Archive::Local(l) => Ok(l.erase_user(user).await?),
            Archive::S3(s) => s.erase_user(user).await,
        }
    }

    /// Deletes the uploads last written before `now - retention`; returns how many.
    pub async fn sweep(&self, now: SystemTime) -> Result<usize, ArchiveError> {
        match self {
            Archive::Local(l) => Ok(l.sweep(now).await?),
            Archive::S3(s) => s.sweep(now).await,
        }
    }
}

/// An upload being written: to its local file, and with S3 also to a multipart upload, a
/// part whenever [`s3::PART_BYTES`] more have arrived (the part is read back from the file,
/// so no part is held in memory).
pub struct Upload {
    path: PathBuf,
    file: tokio::fs::File,
    written: u64,
    s3: Option<s3::Parts>,
}

impl Upload {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ArchiveError> {
        self.file.write_all(chunk).await?;
        self.written += chunk.len() as u64;
        if let Some(parts) = &mut self.s3
            && self.written - parts.sent() >= s3::PART_BYTES
        {
            // The part is read from the file: what was written must be there first.
            self.file.flush().await?;
            parts.ship(&self.path, self.written).await?;
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Completes the upload; returns the local file the import reads.
    pub async fn finish(mut self) -> Result<PathBuf, ArchiveError> {
        let done = async {
            self.file.flush().await?;
            self.file.sync_all().await?;
            if let Some(parts) = self.s3.take() {
                parts.complete(&self.path, self.written).await?;
            }
            Ok::<_, ArchiveError>(())
        }
        .await;
        match done {
            Ok(()) => Ok(self.path),
            Err(e) => {
                let _ = tokio::fs::remove_file(&self.path).await;
                Err(e)
            }
        }
    }

    /// Gives the upload up: the local file and the unfinished S3 upload go.
    pub async fn abort(mut self) {
        if let Some(parts) = self.s3.take() {
            parts.abort().await;
        }
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}
