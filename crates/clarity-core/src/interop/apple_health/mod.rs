//! Apple Health import: an export (export.zip or export.xml, as Health's "Export All Health
//! Data" writes it) -> the user's samples, through the store's write path, with a report.
//!
//! Files: [`reader`] (streaming XML), [`map`] (element -> sample, derived ids, provenance),
//! [`source`] (zip or XML, zip-bomb guard), [`job`] (parse on a blocking thread, write in big
//! batches with backoff, progress).
//!
//! Rules:
//! - Memory stays bounded whatever the export's size: one element at a time is parsed and at
//!   most a few batches wait for the store.
//! - Nothing is dropped silently: every element is counted by type (`records_by_type`), and
//!   each is stored, a duplicate, rejected (by reason) or unmapped (by type).
//! - Re-running an import (the same file after a crash, or a later export) stores nothing
//!   twice: ids are derived from the sample ([`map`]'s rules).

pub mod job;
pub mod map;
pub mod reader;
pub mod source;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::StoreError;

pub use job::{CheckReport, Progress, check, run};
pub use source::Limits;

/// What an import did (so far, while it runs).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    /// Data elements read: Records (those inside a Correlation too), Correlations, Workouts,
    /// ActivitySummaries and any other element below HealthData.
    pub records_read: u64,
    /// `records_read` by type: a Record's or Correlation's `type`, else the element's name.
    pub records_by_type: BTreeMap<String, u64>,
    /// Samples stored now.
    pub samples_stored: u64,
    /// Samples already stored (the same id): an earlier import, or repeated in the file.
    pub duplicates: u64,
    /// Samples that replaced a stored one (a later creationDate).
    pub updated: u64,
    /// Elements not stored because invalid, by rejection code.
    pub rejected: BTreeMap<String, u64>,
    /// Elements of types without a Clarity kind, by type (Records inside a Correlation are
    /// part of its sample, not counted here).
    pub unmapped: BTreeMap<String, u64>,
    /// Bytes of the uploaded file read so far.
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Starts of the earliest and latest sample stored (or found stored), UTC ms, and the
    /// latest's UTC offset: which weeks the analyses at the end cover.
    #[serde(skip)]
    pub span: Option<crate::pipeline::history::Span>,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    NotAnExport(String),
    #[error(transparent)]
    Read(#[from] reader::ReadError),
    #[error("refused as a zip bomb: {0}")]
    ZipBomb(String),
    #[error("reading the upload failed: {0}")]
    Io(String),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    #[error("stopped: {0}")]
    Cancelled(String),
}

impl ImportError {
    /// A stable code for the API and the import_done frame.
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::NotAnExport(_)
            | ImportError::Read(reader::ReadError::NotHealthData(_)) => "not_an_export",
            ImportError::Read(reader::ReadError::Malformed { .. }) => "malformed_xml",
            ImportError::Read(reader::ReadError::Io(_)) | ImportError::Io(_) => "io_error",
            ImportError::ZipBomb(_) => "zip_bomb",
            ImportError::Store(_) => "store_error",
            ImportError::Cancelled(_) => "cancelled",
        }
    }
}
