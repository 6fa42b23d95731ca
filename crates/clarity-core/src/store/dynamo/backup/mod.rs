//! Export of the table to files and import of such files into a new table: `clarity backup`
//! and `clarity restore` with `--store dynamodb`.
//!
//! Rules:
//! - The files are in the format of DynamoDB's own export to S3 (`ExportTableToPointInTime`,
//!   `DYNAMODB_JSON`, see [`files`]), so an export AWS made and an operator downloaded
//!   restores exactly as one of ours does.
//! - An export is a parallel Scan (one segment per data file), strongly consistent reads.
//!   A Scan is not a snapshot: an item written while it runs may be in it or not, and a write
//!   transaction's items may be split. Export a quiet table, or a PITR copy, for a consistent
//!   backup (docs/operations.md). The export is written under a temporary name beside its
//!   destination and renamed when complete; an existing destination is never touched.
//! - An import goes only into a table that is missing or empty (never a merge), made by the
//!   server's own table creation ([`schema::migrate`]: keys, billing, TTL). Every file is
//!   read and checked (JSON, key attributes, item counts, checksums) before the first write,
//!   so a damaged backup is refused with its file and line and leaves no table half loaded.
//! - The store's epoch item (`META`/`EPOCH`) is not imported: the new table gets a new epoch,
//!   so change-feed positions and stream offsets handed out by the old table are answered
//!   `resync_required` instead of being followed into a history that diverges after the
//!   backup point. Everything else (accounts, refresh tokens, samples with their id index and
//!   change log, analyses, insights, shares, audit) is copied as it is.

pub mod files;
pub mod json;
pub mod load;

use std::path::{Path, PathBuf};

use anyhow::Context;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::DynamoOptions;
use super::schema::{self, TTL_ATTR, sdk_err};
use files::{DataFile, DataWriter, KeyElement, Summary};

type Item = std::collections::HashMap<String, AttributeValue>;

/// Batches being written at once during an import.
const LOAD_CONCURRENCY: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; a backup never overwrites")]
    OutputExists(PathBuf),
    #[error("DynamoDB table {0} does not exist (check --dynamodb-table-prefix and the region)")]
    NoTable(String),
    #[error(
        "DynamoDB table {0} already holds items: a restore never merges into or overwrites a \
         table; restore into a new one (another --dynamodb-table-prefix)"
    )]
    TargetNotEmpty(String),
    #[error("{path} is not a sound backup: {reason}")]
    NotABackup { path: PathBuf, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Dynamo(#[from] anyhow::Error),
}

impl BackupError {
    /// Whether the input broke a rule (as opposed to a failure on the way).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            BackupError::OutputExists(_)
                | BackupError::NoTable(_)
                | BackupError::TargetNotEmpty(_)
                | BackupError::NotABackup { .. }
        )
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

fn not_a_backup(from: &Path) -> impl Fn(files::Bad) -> BackupError + '_ {
    move |bad| BackupError::NotABackup {
        path: from.to_path_buf(),
        reason: bad.to_string(),
    }
}

/// What an export or an import did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub table: String,
    pub dir: PathBuf,
    pub items: u64,
    pub files: usize,
    /// Items of the backup not imported (the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<u64>,
}

/// Exports the table of `opts` into the new folder `out` (see [`export_table`]).
pub async fn export(
    opts: &DynamoOptions,
    out: &Path,
    segments: u32,
) -> Result<Report, BackupError> {
    let client = super::client(opts).await?;
    export_table(&client, &opts.table(), out, segments).await
}

/// Imports the backup folder `from` into the table of `opts` (see [`import_table`]).
pub async fn import(opts: &DynamoOptions, from: &Path) -> Result<Report, BackupError> {
    let client = super::client(opts).await?;
    import_table(&client, &opts.table(), from).await
}

/// Exports `table` into the new folder `out` with `segments` parallel Scan segments.
pub async fn export_table(
    client: &Client,
    table: &str,
    out: &Path,
    segments: u32,
) -> Result<Report, BackupError> {
    if out.exists() {
        return Err(BackupError::OutputExists(out.to_path_buf()));
    }
    let desc = match client.describe_table().table_name(table).send().await {
        Ok(d) => d.table.context("DescribeTable answered without a table")?,
        Err(e) if e.code() == Some("ResourceNotFoundException") => {
            return Err(BackupError::NoTable(table.to_owned()));
        }
        Err(e) => {
            return Err(sdk_err(e)
                .context(format!("describing table {table}"))
                .into());
        }
    };
    let key_schema: Vec<KeyElement> = desc
        .key_schema()
        .iter()
        .map(|k| KeyElement {
            attribute_name: k.attribute_name().to_owned(),
            key_type: k.key_type().as_str().to_owned(),
        })
        .collect();
    let tmp = temp_beside(out)?;
    let result = export_into(
        client,
        table,
        &tmp,
        segments.max(1),
        desc.table_arn,
        key_schema,
    )
    .await
    .and_then(|report| {
        if out.exists() {
            return Err(BackupError::OutputExists(out.to_path_buf()));
        }
        std::fs::rename(&tmp, out).map_err(io(format!("cannot write {}", out.display())))?;
        sync_parent(out)?;
        Ok(Report {
            dir: out.to_path_buf(),
            ..report
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

async fn export_into(
    client: &Client,
    table: &str,
    dir: &Path,
    segments: u32,
    table_arn: Option<String>,
    key_schema: Vec<KeyElement>,
) -> Result<Report, BackupError> {
    let data = dir.join(files::DATA_DIR);
    std::fs::create_dir_all(&data).map_err(io(format!("cannot create {}", data.display())))?;
    let started = chrono::Utc::now();
    let scans = (0..segments).map(|segment| {
        let name = format!("segment-{segment:04}-of-{segments:04}.json.gz");
        scan_segment(client, table, segment, segments, data.join(&name), name)
    });
    let mut entries: Vec<DataFile> = futures_util::future::try_join_all(scans).await?;
    entries.sort_by(|a, b| a.data_file_s3_key.cmp(&b.data_file_s3_key));
    let ended = chrono::Utc::now();
    let items: u64 = entries.iter().map(|e| e.item_count).sum();

    let mut lines = String::new();
    for e in &entries {
        lines.push_str(&serde_json::to_string(e).map_err(anyhow::Error::from)?);
        lines.push('\n');
    }
    let path = dir.join(files::FILES);
    files::write_synced(&path, lines.as_bytes())
        .map_err(io(format!("cannot write {}", path.display())))?;
    let stamp =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let summary = Summary {
        version: files::MANIFEST_VERSION.into(),
        table_arn,
        table_name: Some(table.to_owned()),
        start_time: Some(stamp(started)),
        end_time: Some(stamp(ended)),
        export_time: Some(stamp(started)),
        item_count: Some(items),
        output_format: files::FORMAT.into(),
        export_type: Some("FULL_EXPORT".into()),
        manifest_files_s3_key: Some(files::FILES.into()),
        key_schema: Some(key_schema),
        time_to_live_attribute: Some(TTL_ATTR.into()),
        exported_by: Some(format!("clarity {}", env!("CARGO_PKG_VERSION"))),
    };
    let path = dir.join(files::SUMMARY);
    let text = serde_json::to_vec_pretty(&summary).map_err(anyhow::Error::from)?;
    files::write_synced(&path, &text).map_err(io(format!("cannot write {}", path.display())))?;
    for d in [&data, dir] {
        sync_dir(d)?;
    }
    Ok(Report {
        table: table.to_owned(),
        dir: dir.to_path_buf(),
        items,
        files: entries.len(),
        skipped: None,
    })
}

/// Scans one segment page by page into its own data file, written on a blocking thread.
async fn scan_segment(
    client: &Client,
    table: &str,
    segment: u32,
    segments: u32,
    path: PathBuf,
    name: String,
) -> Result<DataFile, BackupError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Item>>(2);
    let file = path.clone();
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, String)> {
        let mut w = DataWriter::create(&file)?;
        while let Some(page) = rx.blocking_recv() {
            for item in &page {
                w.write(item)?;
            }
        }
        let count = w.finish()?;
        Ok((count, files::sha256_hex(&file)?))
    });
    let scanned = async {
        let mut start: Option<Item> = None;
        loop {
            let page = client
                .scan()
                .table_name(table)
                .segment(segment as i32)
                .total_segments(segments as i32)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_err)
                .with_context(|| format!("scanning {table} (segment {segment} of {segments})"))?;
            // A closed channel means the writer failed; its error is reported below.
            if tx.send(page.items.unwrap_or_default()).await.is_err() {
                return Ok(());
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok::<(), anyhow::Error>(()),
            }
        }
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(anyhow::Error::from)?;
    scanned?;
    let (item_count, sha) = written.map_err(io(format!("cannot write {}", path.display())))?;
    Ok(DataFile {
        item_count,
        md5_checksum: None,
        sha256_checksum: Some(sha),
        data_file_s3_key: format!("{}/{name}", files::DATA_DIR),
    })
}

/// Whether an export item is the store's epoch, which an import leaves out (module rules).
fn is_epoch(item: &Item) -> bool {
    matches!(item.get("pk"), Some(AttributeValue::S(p)) if p == "META")
        && matches!(item.get("sk"), Some(AttributeValue::S(s)) if s == "EPOCH")
}

/// Imports the export in `from` into `table`, which must be missing or empty.
pub async fn import_table(
    client: &Client,
    table: &str,
    from: &Path,
) -> Result<Report, BackupError> {
    // Every file checked before anything is written.
    let (summary, data) = {
        let from = from.to_path_buf();
        tokio::task::spawn_blocking(move || check_export(&from))
            .await
            .map_err(anyhow::Error::from)?
    }?;
    let clarity_keys = [("pk", "HASH"), ("sk", "RANGE")];
    if let Some(keys) = &summary.key_schema {
        let got: Vec<(&str, &str)> = keys
            .iter()
            .map(|k| (k.attribute_name.as_str(), k.key_type.as_str()))
            .collect();
        if got != clarity_keys {
            return Err(BackupError::NotABackup {
                path: from.join(files::SUMMARY),
                reason: format!("its key schema is {got:?}, a Clarity table's is {clarity_keys:?}"),
            });
        }
    }
    if schema::exists(client, table).await? {
        let probe = client
            .scan()
            .table_name(table)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)
            .with_context(|| format!("reading table {table}"))?;
        if !probe.items().is_empty() || probe.last_evaluated_key.is_some() {
            return Err(BackupError::TargetNotEmpty(table.to_owned()));
        }
    }
    schema::migrate(client, table).await?;

    let file_count = data.len();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Item>>(LOAD_CONCURRENCY * 2);
    let reader = tokio::task::spawn_blocking(move || -> Result<u64, files::Bad> {
        let mut skipped = 0u64;
        let mut batch = Vec::with_capacity(load::BATCH);
        for (entry, path) in &data {
            let mut open = true;
            files::for_each_item(path, entry, |item| {
                if is_epoch(&item) {
                    skipped += 1;
                    return true;
                }
                batch.push(item);
                if batch.len() == load::BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(load::BATCH));
                    open = tx.blocking_send(full).is_ok();
                }
                open
            })?;
            if !open {
                return Ok(skipped);
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
        Ok(skipped)
    });
    let batches =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let loaded = batches
        .map(|batch| async move {
            let n = batch.len() as u64;
            load::put_batch(client, table, batch).await.map(|()| n)
        })
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
        .await;
    let read = reader.await.map_err(anyhow::Error::from)?;
    let loaded = loaded.with_context(|| {
        format!(
            "loading {table} stopped; the table is partly loaded: delete it \
             (aws dynamodb delete-table --table-name {table}) and restore again"
        )
    })?;
    let skipped = read.map_err(not_a_backup(from))?;
    Ok(Report {
        table: table.to_owned(),
        dir: from.to_path_buf(),
        items: loaded,
        files: file_count,
        skipped: Some(skipped),
    })
}

/// The manifests and a full read of every data file.
fn check_export(from: &Path) -> Result<(Summary, Vec<(DataFile, PathBuf)>), BackupError> {
    if !from.is_dir() {
        return Err(BackupError::NotABackup {
            path: from.to_path_buf(),
            reason: "not a folder (a DynamoDB backup is a folder: manifest-summary.json, \
                     manifest-files.json, data/)"
                .into(),
        });
    }
    let (summary, data) = files::read_manifests(from).map_err(not_a_backup(from))?;
    for (entry, path) in &data {
        files::for_each_item(path, entry, |_| true).map_err(not_a_backup(from))?;
    }
    Ok((summary, data))
}

/// A fresh name beside `path`, so that the final rename stays on one file system.
fn temp_beside(path: &Path) -> Result<PathBuf, BackupError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    match std::fs::remove_dir_all(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(format!("cannot remove {}", tmp.display()))(e)),
    }
    Ok(tmp)
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("cannot flush {}", dir.display())))
}

fn sync_parent(path: &Path) -> Result<(), BackupError> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}
