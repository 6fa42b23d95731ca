//! The files of a table export, laid out as DynamoDB's export to S3 lays out one export
//! (`AWSDynamoDB/<ExportId>/`): `manifest-summary.json`, `manifest-files.json` (one line per
//! data file: `itemCount`, `dataFileS3Key`, checksums) and `data/*.json.gz` (gzip, one
//! DynamoDB JSON item per line).
//!
//! Rules: our manifests use AWS's field names and add only optional ones (`tableName`,
//! `keySchema`, `timeToLiveAttribute`, `sha256Checksum`), so one reader takes both an export
//! of ours and one of AWS downloaded from S3. A data file is found by the name after `data/`
//! in its key (AWS's keys carry the S3 prefix and export id). Reading counts lines from 1 and
//! every refusal carries the line, so an operator can look at the line that broke.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::json;

pub const SUMMARY: &str = "manifest-summary.json";
pub const FILES: &str = "manifest-files.json";
pub const DATA_DIR: &str = "data";
/// AWS's manifest version; ours follow its shape.
pub const MANIFEST_VERSION: &str = "2020-06-30";
pub const FORMAT: &str = "DYNAMODB_JSON";

type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyElement {
    pub attribute_name: String,
    pub key_type: String,
}

/// `manifest-summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub export_time: Option<String>,
    #[serde(default)]
    pub item_count: Option<u64>,
    pub output_format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_type: Option<String>,
    #[serde(default)]
    pub manifest_files_s3_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_schema: Option<Vec<KeyElement>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_by: Option<String>,
}

/// One line of `manifest-files.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataFile {
    pub item_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_checksum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_checksum: Option<String>,
    pub data_file_s3_key: String,
}

/// What is wrong with one file, and on which line when it is about a line.
#[derive(Debug)]
pub struct Bad {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{} line {l}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

fn bad(file: &Path, line: Option<u64>, reason: impl Into<String>) -> Bad {
    Bad {
        file: file.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

/// The summary and the data files of the export in `dir`.
pub fn read_manifests(dir: &Path) -> Result<(Summary, Vec<(DataFile, PathBuf)>), Bad> {
    let path = dir.join(SUMMARY);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        bad(
            &path,
            None,
            format!("{e} (a backup folder holds {SUMMARY}, {FILES} and {DATA_DIR}/)"),
        )
    })?;
    let summary: Summary =
        serde_json::from_str(&text).map_err(|e| bad(&path, None, e.to_string()))?;
    if summary.output_format != FORMAT {
        return Err(bad(
            &path,
            None,
            format!(
                "outputFormat is {:?}; only {FORMAT} exports can be restored",
                summary.output_format
            ),
        ));
    }
    let path = dir.join(FILES);
    let text = std::fs::read_to_string(&path).map_err(|e| bad(&path, None, e.to_string()))?;
    let mut files = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: DataFile = serde_json::from_str(line)
            .map_err(|e| bad(&path, Some(i as u64 + 1), e.to_string()))?;
        let name = entry
            .data_file_s3_key
            .rsplit_once("data/")
            .map(|(_, n)| n)
            .filter(|n| !n.is_empty() && !n.contains('/') && !n.starts_with('.'))
            .ok_or_else(|| {
                bad(
                    &path,
                    Some(i as u64 + 1),
                    format!(
                        "dataFileS3Key {:?} does not name a file under data/",
                        entry.data_file_s3_key
                    ),
                )
            })?;
        let file = dir.join(DATA_DIR).join(name);
        files.push((entry, file));
    }
    if let Some(n) = summary.item_count {
        let sum: u64 = files.iter().map(|(f, _)| f.item_count).sum();
        if sum != n {
            return Err(bad(
                &path,
                None,
                format!("its files hold {sum} items, {SUMMARY} says {n}"),
            ));
        }
    }
    Ok((summary, files))
}

/// Calls `f` with every item of the data file `path`, in order; checks the count and, when
/// given, the SHA-256 of the file. `f` returning `false` stops early (no error).
pub fn for_each_item(
    path: &Path,
    entry: &DataFile,
    mut f: impl FnMut(Item) -> bool,
) -> Result<(), Bad> {
    if let Some(want) = &entry.sha256_checksum {
        let got = sha256_hex(path).map_err(|e| bad(path, None, e.to_string()))?;
        if !got.eq_ignore_ascii_case(want) {
            return Err(bad(
                path,
                None,
                format!("SHA-256 is {got}, {FILES} says {want}: the file was changed or damaged"),
            ));
        }
    }
    let file = File::open(path).map_err(|e| bad(path, None, e.to_string()))?;
    let mut reader = BufReader::new(MultiGzDecoder::new(BufReader::new(file)));
    let mut line = String::new();
    let mut n = 0u64;
    loop {
        line.clear();
        let at = n + 1;
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(bad(
                    path,
                    Some(at),
                    format!("the file ends early or is damaged (gzip: {e})"),
                ));
            }
        }
        let text = line.strip_suffix('\n').unwrap_or(&line);
        let item = json::item_of(text).map_err(|e| bad(path, Some(at), e))?;
        for key in ["pk", "sk"] {
            if !matches!(
                item.get(key),
                Some(aws_sdk_dynamodb::types::AttributeValue::S(_))
            ) {
                return Err(bad(
                    path,
                    Some(at),
                    format!("the item has no string {key}: not an item of a Clarity table"),
                ));
            }
        }
        n += 1;
        if !f(item) {
            return Ok(());
        }
    }
    if n != entry.item_count {
        return Err(bad(
            path,
            None,
            format!(
                "holds {n} items, {FILES} says {}: the file is incomplete or not this backup's",
                entry.item_count
            ),
        ));
    }
    Ok(())
}

pub fn sha256_hex(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// One data file being written.
pub struct DataWriter {
    gz: GzEncoder<BufWriter<File>>,
    count: u64,
}

impl DataWriter {
    pub fn create(path: &Path) -> std::io::Result<DataWriter> {
        Ok(DataWriter {
            gz: GzEncoder::new(BufWriter::new(File::create(path)?), Compression::fast()),
            count: 0,
        })
    }

    pub fn write(&mut self, item: &Item) -> std::io::Result<()> {
        let line = json::line_of(item).map_err(std::io::Error::other)?;
        self.gz.write_all(line.as_bytes())?;
        self.gz.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    /// Ends the gzip stream and flushes the file to disk; returns the item count.
    pub fn finish(self) -> std::io::Result<u64> {
        let file = self.gz.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(self.count)
    }
}

/// Writes `bytes` to `path` and flushes it to disk.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
