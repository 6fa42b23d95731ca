//! The data key of an encrypted store (SQLCipher) and the one way every connection opens it.
//!
//! Rules:
//! - A data key is 32 random bytes, written as 64 hex digits. It is handed to SQLCipher as a
//!   raw key (`PRAGMA key = "x'…'"`), so opening a connection skips PBKDF2: the key is
//!   already uniformly random, stretching it would only slow every connection down.
//! - Every connection to `clarity.db` (the writer, each reader, `clarity backup`, `restore`,
//!   `rekey`) is opened through [`open`] / [`key_connection`], so the key is always applied
//!   first, before any statement that reads a page.
//! - Without a key the store is a plain SQLite file, exactly as before encryption existed; a
//!   key given for a plain file, no key for an encrypted one, and a wrong key are each a
//!   [`KeyError`] naming the file and what to do, decided before anything is written.
//! - The key never appears in a message, a `Debug` output or a log line.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use secrecy::{ExposeSecret, SecretBox, SecretString};

/// A 32-byte data key. `Debug` shows nothing of it.
pub struct DataKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl Clone for DataKey {
    fn clone(&self) -> Self {
        DataKey(SecretBox::new(Box::new(*self.0.expose_secret())))
    }
}

impl DataKey {
    /// 64 hex digits; surrounding whitespace (a key file's newline) is ignored.
    pub fn from_hex(text: &str) -> Result<DataKey, KeyFormatError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(KeyFormatError);
        }
        let mut bytes = Box::new([0u8; 32]);
        hex::decode_to_slice(text, &mut bytes[..]).map_err(|_| KeyFormatError)?;
        Ok(DataKey(SecretBox::new(bytes)))
    }

    /// The statement that gives SQLCipher this key for database `schema` (`main`, or an
    /// attached one).
    fn pragma(&self, statement: &str, schema: &str) -> SecretString {
        let hex = SecretString::from(hex::encode(self.0.expose_secret()));
        SecretString::from(format!(
            "PRAGMA {schema}.{statement} = \"x'{}'\";",
            hex.expose_secret()
        ))
    }

    /// `ATTACH DATABASE path AS schema` encrypted with this key (for `sqlcipher_export`).
    fn attach(&self, path: &Path, schema: &str) -> SecretString {
        let hex = SecretString::from(hex::encode(self.0.expose_secret()));
        SecretString::from(format!(
            // The key as a string literal `'x''…'''` (the value x'…'), whatever the build
            // thinks of double-quoted strings.
            "ATTACH DATABASE '{}' AS {schema} KEY 'x''{}''';",
            path.to_string_lossy().replace('\'', "''"),
            hex.expose_secret()
        ))
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "a data key must be 64 hex digits (32 random bytes), e.g. the output of `openssl rand -hex 32`"
)]
pub struct KeyFormatError;

/// Why a store file could not be opened with the key given (or without one).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{0} is encrypted and no data key was given: pass the key it was encrypted with \
         (--data-key-file or CLARITY_DATA_KEY_FILE, or CLARITY_DATA_KEY)"
    )]
    Missing(PathBuf),
    #[error(
        "the data key given does not open {0} (a wrong key, or not a Clarity store): pass \
         the key it was encrypted with; after `clarity rekey` that is the new key"
    )]
    Wrong(PathBuf),
    #[error(
        "{0} is not encrypted, but a data key was given: encrypt it first with `clarity rekey \
         --data-dir {1} --new-key-file FILE` while the server is stopped, or start without a \
         data key"
    )]
    NotEncrypted(PathBuf, PathBuf),
    #[error("cannot open {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// Opens the store file `path` with `key` (none: a plain file) and reads its schema, so a
/// key that does not fit the file fails here, before anything is written: a plain file given
/// a key, an encrypted one given none, and a wrong key are told apart by what SQLite(Cipher)
/// itself can read.
///
/// Only SQLite touches the file: no `std::fs` handle on it is ever opened and closed, because
/// closing any descriptor of a file drops every POSIX lock this process holds on it, its
/// live connections' included (SQLite's "broken POSIX locks"); another process could then
/// checkpoint and delete the WAL under them (a reader saw `disk I/O error`, short read).
pub fn open(path: &Path, flags: OpenFlags, key: Option<&DataKey>) -> Result<Connection, KeyError> {
    let sqlite = |source| KeyError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
    key_connection(&conn, key).map_err(sqlite)?;
    match reads_schema(&conn) {
        Ok(()) => Ok(conn),
        Err(e) if is_not_a_database(&e) => {
            drop(conn);
            Err(match key {
                None => KeyError::Missing(path.to_path_buf()),
                Some(_) if opens_plain(path) => KeyError::NotEncrypted(
                    path.to_path_buf(),
                    path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                ),
                Some(_) => KeyError::Wrong(path.to_path_buf()),
            })
        }
        Err(e) => Err(sqlite(e)),
    }
}

fn reads_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(drop)
}

/// Whether `path` reads as a plain (unencrypted) SQLite database.
fn opens_plain(path: &Path) -> bool {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| reads_schema(&c))
        .is_ok()
}

/// Gives a fresh connection its key; the first statement it runs. No key: nothing, a plain
/// database.
pub fn key_connection(conn: &Connection, key: Option<&DataKey>) -> rusqlite::Result<()> {
    match key {
        Some(key) => conn.execute_batch(key.pragma("key", "main").expose_secret()),
        None => Ok(()),
    }
}

/// Re-encrypts an encrypted database under `new` (`PRAGMA rekey`: every page rewritten in
/// one transaction).
pub fn rekey(conn: &Connection, new: &DataKey) -> rusqlite::Result<()> {
    conn.execute_batch(new.pragma("rekey", "main").expose_secret())
}

/// Writes a copy of `conn`'s main database to the new file `out`, encrypted with `key`
/// (`sqlcipher_export`: the way SQLCipher turns a plain database into an encrypted one).
/// `user_version` is not part of what the export copies, so it is carried over here.
pub fn export_encrypted(conn: &Connection, out: &Path, key: &DataKey) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    conn.execute_batch(key.attach(out, "encrypted").expose_secret())?;
    let result = conn
        .query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))
        .and_then(|()| conn.execute_batch(&format!("PRAGMA encrypted.user_version = {version};")));
    let detached = conn.execute_batch("DETACH DATABASE encrypted;");
    result.and(detached)
}

/// SQLCipher's answer to a page it cannot decrypt (or a file that is no database).
pub fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_64_hex_digits_and_never_shown() {
        let text = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n";
        let key = DataKey::from_hex(text).unwrap();
        assert_eq!(format!("{key:?}"), "DataKey([redacted])");
        for bad in ["", "0011", &"zz".repeat(32), &"00".repeat(33)] {
            assert!(DataKey::from_hex(bad).is_err(), "{bad:?}");
        }
    }
}
