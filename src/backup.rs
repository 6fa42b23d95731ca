//! `clarity backup` and `clarity restore`: the embedded SQLite store to one file and back.
//!
//! Rules:
//! - A backup is SQLite's online backup of `DATA_DIR/clarity.db`, copied in one step, so it
//!   is one read transaction: a consistent snapshot holding every write committed before it
//!   began (an acked sample is committed), taken while the server keeps writing (WAL readers
//!   never block the writer).
//! - A backup or restore is written beside its destination under a temporary name, checked
//!   with `PRAGMA integrity_check`, flushed, and only then given its final name: a crash
//!   never leaves a half-written file under the name an operator trusts.
//! - A restore refuses a data folder that is not empty unless `--force`, and then replaces
//!   only the store: a stale `-wal`/`-shm` of the old store is removed first, since SQLite
//!   would replay it onto the restored file.
//! - An encrypted store (a data key, `store::sqlite::key`) is backed up encrypted with the
//!   same key, page by page (SQLCipher copies between keyed databases only, never into a
//!   plain file), and restoring it takes that key: a backup never holds health data in clear
//!   that the store did not.
//! - Exit codes as in `cli`: 2 when an input breaks a rule (no store, existing output,
//!   non-empty target, not a sound backup), 1 for any other failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::config::{BackupArgs, DataKeyConfig, RestoreArgs, StoreKind};
use crate::store::sqlite::key::{self, DataKey, KeyError};

mod dynamodb;

/// The store's file in a data folder (`store::sqlite::SqliteStore::open`).
pub(crate) const DB_FILE: &str = "clarity.db";
/// How long a backup step may keep finding the source busy (a checkpoint, a migration).
const BUSY_RETRIES: u32 = 200;
const BUSY_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "no SQLite store in {0} ({DB_FILE} is missing); for the DynamoDB table pass --store dynamodb"
    )]
    NoStore(PathBuf),
    #[error("{0} already exists; a backup never overwrites a file")]
    OutputExists(PathBuf),
    #[error("{0} is not empty; restore into a new folder, or pass --force to replace its store")]
    TargetNotEmpty(PathBuf),
    #[error("{path} is not a sound Clarity backup: {reason}")]
    NotABackup { path: PathBuf, reason: String },
    #[error(
        "{0} is in use (is `clarity serve` running on it?): stop the server first, this command \
         needs the store to itself"
    )]
    InUse(PathBuf),
    /// The data key does not fit the store (missing, wrong, or given for a plain store).
    #[error("{0}")]
    Key(KeyError),
    /// The key settings themselves (an unreadable file, not 64 hex digits).
    #[error("{0:#}")]
    KeySettings(anyhow::Error),
    #[error("{what}: {source}")]
    Sqlite {
        what: String,
        source: rusqlite::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl BackupError {
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            BackupError::NoStore(_)
            | BackupError::OutputExists(_)
            | BackupError::TargetNotEmpty(_)
            | BackupError::NotABackup { .. }
            | BackupError::InUse(_)
            | BackupError::KeySettings(_) => ExitCode::from(2),
            BackupError::Key(KeyError::Sqlite { .. }) => ExitCode::FAILURE,
            BackupError::Key(_) => ExitCode::from(2),
            BackupError::Sqlite { .. } | BackupError::Io { .. } => ExitCode::FAILURE,
        }
    }
}

pub(crate) fn sql(what: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Sqlite { what, source }
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

/// The key of `settings` for command `name`; advice goes to stderr, as the command's
/// diagnostics do.
pub fn load_key(settings: &DataKeyConfig, name: &str) -> Result<Option<DataKey>, BackupError> {
    settings
        .load(|advice| eprintln!("clarity {name}: warning: {advice}"))
        .map_err(BackupError::KeySettings)
}

/// `clarity backup`: prints `{"file","bytes"}` on success.
pub fn backup_command(args: &BackupArgs) -> ExitCode {
    if args.store == StoreKind::Dynamodb {
        return dynamodb::backup_command(args);
    }
    let result = load_key(&args.key, "backup")
        .and_then(|key| backup(&args.data_dir, &args.out, key.as_ref()));
    match result {
        Ok(bytes) => {
            println!(
                "{}",
                serde_json::json!({"file": args.out.display().to_string(), "bytes": bytes})
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clarity backup: {e}");
            e.exit_code()
        }
    }
}

/// `clarity restore`.
pub fn restore_command(args: &RestoreArgs) -> ExitCode {
    if args.store == StoreKind::Dynamodb {
        return dynamodb::restore_command(args);
    }
    let result = load_key(&args.key, "restore")
        .and_then(|key| restore(&args.from, &args.data_dir, args.force, key.as_ref()));
    match result {
        Ok(()) => {
            eprintln!(
                "clarity restore: {} restored into {}",
                args.from.display(),
                args.data_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clarity restore: {e}");
            e.exit_code()
        }
    }
}

/// Copies the store of `data_dir` to `out` (which must not exist); returns its size.
pub fn backup(data_dir: &Path, out: &Path, key: Option<&DataKey>) -> Result<u64, BackupError> {
    let source = data_dir.join(DB_FILE);
    if !source.is_file() {
        return Err(BackupError::NoStore(data_dir.to_path_buf()));
    }
    if out.exists() {
        return Err(BackupError::OutputExists(out.to_path_buf()));
    }
    // Read-write without create: a read-only connection cannot join a WAL database whose
    // server is not running (it may need to recover the -shm), and a typo must not create
    // an empty store.
    let src = key::open(
        &source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        key,
    )
    .map_err(BackupError::Key)?;
    src.busy_timeout(Duration::from_secs(5))
        .map_err(sql("busy timeout"))?;
    let tmp = temp_beside(out)?;
    let result = copy_checked(&src, &tmp, "DELETE", key).and_then(|()| {
        // A hard link fails if `out` appeared meanwhile: never overwrite.
        std::fs::hard_link(&tmp, out).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::OutputExists(out.to_path_buf())
            } else {
                io(format!("cannot write {}", out.display()))(e)
            }
        })
    });
    let _ = std::fs::remove_file(&tmp);
    result?;
    sync_dir(out)?;
    Ok(std::fs::metadata(out)
        .map_err(io(format!("cannot read {}", out.display())))?
        .len())
}

/// Installs the backup `from` as the store of `data_dir`.
pub fn restore(
    from: &Path,
    data_dir: &Path,
    force: bool,
    key: Option<&DataKey>,
) -> Result<(), BackupError> {
    let not_a_backup = |reason: String| BackupError::NotABackup {
        path: from.to_path_buf(),
        reason,
    };
    if !from.is_file() {
        return Err(not_a_backup("no such file".into()));
    }
    let src = key::open(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        key,
    )
    .map_err(|e| {
        not_a_backup(match e {
            KeyError::Missing(_) => "it is encrypted (or no SQLite file) and no data key was \
                given: pass the key of the store it was taken from (--data-key-file)"
                .into(),
            KeyError::Wrong(_) => "the data key given does not open it: pass the key of the \
                store it was taken from"
                .into(),
            KeyError::NotEncrypted(..) => "it is a plain (unencrypted) backup but a data key \
                was given: restore it without a key, then encrypt the store with `clarity rekey`"
                .into(),
            KeyError::Sqlite { source, .. } => source.to_string(),
        })
    })?;
    integrity(&src).map_err(|e| match e {
        BackupError::Sqlite { source, .. } => not_a_backup(source.to_string()),
        BackupError::NotABackup { reason, .. } => not_a_backup(reason),
        other => other,
    })?;
    if !force && !is_missing_or_empty(data_dir)? {
        return Err(BackupError::TargetNotEmpty(data_dir.to_path_buf()));
    }
    std::fs::create_dir_all(data_dir)
        .map_err(io(format!("cannot create {}", data_dir.display())))?;
    let target = data_dir.join(DB_FILE);
    let tmp = temp_beside(&target)?;
    let result = copy_checked(&src, &tmp, "DELETE", key).and_then(|()| {
        for suffix in ["-wal", "-shm"] {
            let stale = data_dir.join(format!("{DB_FILE}{suffix}"));
            match std::fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(format!("cannot remove {}", stale.display()))(e)),
            }
        }
        std::fs::rename(&tmp, &target).map_err(io(format!("cannot write {}", target.display())))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_dir(&target)
}

/// The whole of `src` into a new file `dst` in one backup step, then checked and flushed.
fn copy_checked(
    src: &Connection,
    dst: &Path,
    journal_mode: &str,
    key: Option<&DataKey>,
) -> Result<(), BackupError> {
    let mut out = Connection::open(dst).map_err(sql(format!("cannot create {}", dst.display())))?;
    // The copy is encrypted with the source's key: SQLCipher backs up only between two plain
    // or two keyed databases.
    key::key_connection(&out, key).map_err(sql("cannot key the copy"))?;
    {
        let backup = Backup::new(src, &mut out).map_err(sql("cannot start the backup"))?;
        let mut busy = 0;
        loop {
            // -1: every page in one step, i.e. one read transaction on the source; steps of
            // a few pages would restart whenever the server commits meanwhile.
            match backup.step(-1).map_err(sql("backup step failed"))? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    busy += 1;
                    if busy > BUSY_RETRIES {
                        return Err(BackupError::Io {
                            what: "the store stayed locked".into(),
                            source: std::io::Error::from(std::io::ErrorKind::TimedOut),
                        });
                    }
                    std::thread::sleep(BUSY_PAUSE);
                }
                // StepResult is non-exhaustive.
                _ => std::thread::sleep(BUSY_PAUSE),
            }
        }
    }
    // One self-contained file: no -wal beside it to lose in a copy.
    let mode: String = out
        .query_row(&format!("PRAGMA journal_mode = {journal_mode}"), [], |r| {
            r.get(0)
        })
        .map_err(sql("cannot set the journal mode"))?;
    if !mode.eq_ignore_ascii_case(journal_mode) {
        return Err(BackupError::NotABackup {
            path: dst.to_path_buf(),
            reason: format!("journal mode stayed {mode}"),
        });
    }
    integrity(&out)?;
    drop(out);
    std::fs::File::open(dst)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("cannot flush {}", dst.display())))
}

/// `PRAGMA integrity_check` is `ok`, and the file holds a schema (an empty SQLite file is
/// sound but is no store).
fn integrity(conn: &Connection) -> Result<(), BackupError> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .map_err(sql("integrity check"))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(sql("integrity check"))?
        .collect::<Result<_, _>>()
        .map_err(sql("integrity check"))?;
    let path = PathBuf::from(conn.path().unwrap_or_default());
    if rows != ["ok"] {
        return Err(BackupError::NotABackup {
            path,
            reason: format!("integrity_check: {}", rows.join("; ")),
        });
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .map_err(sql("reading the schema"))?;
    if tables == 0 {
        return Err(BackupError::NotABackup {
            path,
            reason: "it has no tables".into(),
        });
    }
    Ok(())
}

fn is_missing_or_empty(dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(format!("cannot read {}", dir.display()))(e)),
    }
}

/// A fresh name in `path`'s folder, so that the final rename or link stays on one file system.
pub(crate) fn temp_beside(path: &Path) -> Result<PathBuf, BackupError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(format!("cannot remove {}", tmp.display()))(e)),
    }
    Ok(tmp)
}

/// Makes the new name durable (the file's data was synced before).
pub(crate) fn sync_dir(path: &Path) -> Result<(), BackupError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("cannot flush {}", dir.display())))
}
