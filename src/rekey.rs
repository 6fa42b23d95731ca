//! `clarity rekey`: the embedded store under a new data key, or encrypted for the first time.
//!
//! Rules:
//! - The server must be stopped: the store is switched out of WAL mode (which checkpoints
//!   the WAL into the file and needs every other connection gone) and then held with an
//!   exclusive lock; a store in use is refused ([`BackupError::InUse`]), never rekeyed under
//!   a running writer.
//! - An encrypted store is rekeyed in place with `PRAGMA rekey`: every page rewritten in one
//!   transaction, so a crash leaves it under the old key or the new one.
//! - A plain store cannot be rekeyed (SQLCipher encrypts only through `sqlcipher_export`): it
//!   is exported to an encrypted file beside it, checked, flushed, and renamed over the plain
//!   one, so a crash leaves the plain store or the encrypted one, never a mix.
//! - The new store is reopened with the new key and checked before the command succeeds.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::backup::{BackupError, DB_FILE, io, load_key, sql, sync_dir, temp_beside};
use crate::config::RekeyArgs;
use crate::store::sqlite::key::{self, DataKey};

/// `clarity rekey`.
pub fn rekey_command(args: &RekeyArgs) -> ExitCode {
    let result = load_key(&args.key, "rekey").and_then(|old| {
        let text = std::fs::read_to_string(&args.new_key_file).map_err(|e| {
            BackupError::KeySettings(anyhow::anyhow!(
                "cannot read the new key file {}: {e}",
                args.new_key_file.display()
            ))
        })?;
        let new = DataKey::from_hex(&text).map_err(|e| {
            BackupError::KeySettings(anyhow::anyhow!(
                "the new key file {}: {e}",
                args.new_key_file.display()
            ))
        })?;
        rekey(&args.data_dir, old.as_ref(), &new)
    });
    match result {
        Ok(was_plain) => {
            eprintln!(
                "clarity rekey: {} {}; start the server with the new key",
                args.data_dir.join(DB_FILE).display(),
                if was_plain {
                    "encrypted with the new key"
                } else {
                    "re-encrypted with the new key"
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clarity rekey: {e}");
            e.exit_code()
        }
    }
}

/// Puts the store of `data_dir` (encrypted with `old`, or plain when `None`) under `new`;
/// true when it was plain.
pub fn rekey(data_dir: &Path, old: Option<&DataKey>, new: &DataKey) -> Result<bool, BackupError> {
    let path = data_dir.join(DB_FILE);
    if !path.is_file() {
        return Err(BackupError::NoStore(data_dir.to_path_buf()));
    }
    let conn = key::open(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        old,
    )
    .map_err(BackupError::Key)?;
    // Held until the rekey is done: no server opens the store meanwhile.
    let _exclusive = lock_exclusive(data_dir)?;
    take_over(&conn, data_dir)?;
    match old {
        Some(_) => {
            key::rekey(&conn, new).map_err(sql("PRAGMA rekey failed"))?;
            drop(conn);
        }
        None => {
            let tmp = temp_beside(&path)?;
            // ATTACH opens with the connection's flags, which do not create files: an empty
            // file is a new database to SQLite.
            std::fs::File::create(&tmp).map_err(io(format!("cannot create {}", tmp.display())))?;
            let exported = key::export_encrypted(&conn, &tmp, new)
                .map_err(sql("cannot export the store encrypted"));
            drop(conn);
            let installed = exported
                .and_then(|()| check(&tmp, new))
                .and_then(|()| {
                    std::fs::File::open(&tmp)
                        .and_then(|f| f.sync_all())
                        .map_err(io(format!("cannot flush {}", tmp.display())))
                })
                .and_then(|()| {
                    // Out of WAL mode the plain store has no -wal to replay; a stale one
                    // must not be replayed onto the encrypted file either.
                    for suffix in ["-wal", "-shm"] {
                        let stale = data_dir.join(format!("{DB_FILE}{suffix}"));
                        match std::fs::remove_file(&stale) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => {
                                return Err(io(format!("cannot remove {}", stale.display()))(e));
                            }
                        }
                    }
                    std::fs::rename(&tmp, &path)
                        .map_err(io(format!("cannot write {}", path.display())))
                });
            if installed.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            installed?;
            sync_dir(&path)?;
        }
    }
    check(&path, new)?;
    Ok(old.is_none())
}

/// The store's lock file ([`crate::store::sqlite::LOCK_FILE`]) exclusively: refused while any
/// process (a server, an import) has the store open.
fn lock_exclusive(data_dir: &Path) -> Result<std::fs::File, BackupError> {
    let path = data_dir.join(crate::store::sqlite::LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io(format!("cannot open {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::InUse(data_dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(io(format!("cannot lock {}", path.display()))(e))
        }
    }
}

/// Makes `conn` the store's only user: out of WAL mode (refused while another connection,
/// i.e. a running server, has the file open), then an exclusive lock kept until it closes.
fn take_over(conn: &Connection, data_dir: &Path) -> Result<(), BackupError> {
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(sql("busy timeout"))?;
    let in_use = || BackupError::InUse(data_dir.to_path_buf());
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                in_use()
            }
            _ => sql("cannot leave WAL mode")(e),
        })?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(in_use());
    }
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;")
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                in_use()
            }
            _ => sql("cannot lock the store")(e),
        })
}

/// `path` opens with `key` and passes `PRAGMA quick_check`.
fn check(path: &Path, key: &DataKey) -> Result<(), BackupError> {
    let conn = key::open(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        Some(key),
    )
    .map_err(BackupError::Key)?;
    let verdict: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(sql(format!("cannot check {}", path.display())))?;
    if verdict != "ok" {
        return Err(BackupError::NotABackup {
            path: path.to_path_buf(),
            reason: format!("quick_check after rekey: {verdict}"),
        });
    }
    Ok(())
}
