//! Opening an uploaded export: export.zip (the entry `apple_health_export/export.xml`, or any
//! entry named `export.xml`) or a bare export.xml, as one stream of XML, with how far into
//! the file reading has come.
//!
//! Rules:
//! - The zip entry is inflated as it is read, never extracted to disk or memory whole.
//! - Zip bombs are refused: an entry whose inflated size (declared, or counted while reading,
//!   since the declaration can lie) exceeds [`Limits::max_inflated_bytes`] or
//!   [`Limits::max_ratio`] times the file's size stops the import.
//! - Only the compression methods Health writes (deflate, stored) are read.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ImportError;

/// Bounds on what an upload may inflate to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes of XML an export may inflate to.
    pub max_inflated_bytes: u64,
    /// Most bytes of XML per byte of the uploaded file.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_inflated_bytes: 64 << 30,
            max_ratio: 200,
        }
    }
}

/// The file, counting the bytes read (for `bytes_done`).
struct Counted {
    file: File,
    done: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Seek for Counted {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let at = self.file.seek(pos)?;
        self.done.store(at, Ordering::Relaxed);
        Ok(at)
    }
}

/// Inflated bytes, refused past the limit.
struct Inflated<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Inflated<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other(BOMB));
        }
        Ok(n)
    }
}

const BOMB: &str = "zip bomb";

fn bomb_error(limit: u64, file_len: u64) -> ImportError {
    ImportError::ZipBomb(format!(
        "export.xml inflates to more than {limit} bytes from a {file_len}-byte upload (limits: \
         --max-import-inflated-bytes and {}x the upload's size)",
        Limits::default().max_ratio
    ))
}

/// Whether an I/O error from the stream is the zip-bomb guard's.
pub fn is_bomb(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.to_string() == BOMB)
}

/// Opens `path` and hands its XML stream to `read`; `done` follows the bytes of the file read.
pub fn with_xml<T>(
    path: &Path,
    limits: Limits,
    done: Arc<AtomicU64>,
    read: impl FnOnce(&mut dyn BufRead) -> Result<T, ImportError>,
) -> Result<T, ImportError> {
    let io = |e: std::io::Error| ImportError::Io(e.to_string());
    let mut file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let limit = limits
        .max_inflated_bytes
        .min(file_len.saturating_mul(limits.max_ratio).max(1 << 20));
    let counted = Counted { file, done };
    if n == 4 && magic == *b"PK\x03\x04" {
        let mut zip = zip::ZipArchive::new(counted)
            .map_err(|e| ImportError::NotAnExport(format!("the zip archive is unreadable: {e}")))?;
        let index = entry_index(&mut zip)?;
        let entry = zip
            .by_index(index)
            .map_err(|e| ImportError::NotAnExport(format!("export.xml cannot be read: {e}")))?;
        if entry.size() > limit {
            return Err(bomb_error(limit, file_len));
        }
        let mut stream = BufReader::with_capacity(
            256 * 1024,
            Inflated {
                inner: entry,
                read: 0,
                limit,
            },
        );
        read(&mut stream).map_err(|e| match e {
            ImportError::Io(m) if m.contains(BOMB) => bomb_error(limit, file_len),
            other => other,
        })
    } else {
        let mut stream = BufReader::with_capacity(256 * 1024, counted);
        read(&mut stream)
    }
}

/// The export.xml entry: Health's path, else the first entry named export.xml.
fn entry_index<R: Read + Seek>(zip: &mut zip::ZipArchive<R>) -> Result<usize, ImportError> {
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let pick = names
        .iter()
        .position(|n| n == "apple_health_export/export.xml")
        .or_else(|| {
            names
                .iter()
                .position(|n| n == "export.xml" || n.ends_with("/export.xml"))
        });
    let index = pick.and_then(|name_at| zip.index_for_name(&names[name_at])).ok_or_else(|| {
        ImportError::NotAnExport(
            "the zip archive has no export.xml (Health's export holds apple_health_export/export.xml)"
                .into(),
        )
    })?;
    let entry = zip
        .by_index_raw(index)
        .map_err(|e| ImportError::NotAnExport(format!("export.xml cannot be read: {e}")))?;
    match entry.compression() {
        zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated => Ok(index),
        other => Err(ImportError::NotAnExport(format!(
            "export.xml is compressed with {other:?}; Health writes deflate (or stored) entries"
        ))),
    }
}
