//! The S3 backend of the [`super::Archive`] (`--archive s3://bucket/prefix`).
//!
//! Rules:
//! - Object `<prefix>/<user_id>/<import_id>.export`: one key prefix per account, so that
//!   erasing it lists and deletes exactly its objects (and aborts its unfinished uploads).
//! - Uploads are multipart ([`PART_BYTES`] a part, read back from the local file the body is
//!   written to: no part is held in memory; at most one part in flight while the body keeps
//!   arriving), each part with a CRC32 that S3 checks. A failed upload is aborted; the bucket's
//!   lifecycle rule (deploy/clarity.yaml) aborts what a crashed node left.
//! - Re-runs download the object streamed to a scratch copy in the data dir.
//! - The bucket is checked at start ([`S3Archive::connect`]): a missing bucket, refused
//!   access or an unreachable endpoint stop the server with one line naming the bucket.
//! - Retention: objects whose `LastModified` is older than the retention are deleted by the
//!   sweep (the lifecycle rule expires them too); unfinished uploads that old are aborted.
//! - Same client set-up as the DynamoDB store ([`crate::aws`]); path-style addressing when
//!   the endpoint is overridden (moto, MinIO).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::ArchiveError;
use super::local::Local;

/// Bytes per part of a multipart upload (S3's minimum is 5 MiB; 10,000 parts of 8 MiB allow
/// 80 GB, far above any `--max-import-bytes` in use).
pub const PART_BYTES: u64 = 8 << 20;

/// S3 refuses more parts than this in one upload.
const MAX_PARTS: i32 = 10_000;

/// `s3://bucket/prefix`, as `--archive` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Empty, or ending in `/`.
    pub prefix: String,
}

impl FromStr for S3Location {
    type Err = String;

    fn from_str(s: &str) -> Result<S3Location, String> {
        let rest = s.strip_prefix("s3://").ok_or_else(|| {
            format!("`{s}` is not an S3 location: the archive is s3://BUCKET[/PREFIX] (leave it out to keep uploads in the data dir)")
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid {
            return Err(format!(
                "`{bucket}` is not an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)"
            ));
        }
        let prefix = prefix.trim_matches('/');
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Uploads in an S3 bucket; running imports read scratch copies in `scratch`.
#[derive(Clone)]
pub struct S3Archive {
    client: Client,
    location: S3Location,
    scratch: Local,
    retention: Duration,
}

impl fmt::Debug for S3Archive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Archive")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// An S3 error in one line: the service's code and message, or the SDK's cause chain.
fn describe<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_owned(),
                _ => format!("HTTP {}", s.raw().status().as_u16()),
            }
        }
        other => DisplayErrorContext(other).to_string(),
    }
}

impl S3Archive {
    /// Connects and checks that the bucket exists and can be reached with our credentials.
    pub async fn connect(
        location: S3Location,
        endpoint: Option<&str>,
        scratch: Local,
        retention_days: u32,
    ) -> anyhow::Result<S3Archive> {
        let conf = crate::aws::sdk_config(&crate::aws::ClientOptions {
            service: "the S3 import archive",
            emulator_hint: "for moto any values work, e.g. AWS_ACCESS_KEY_ID=local \
                 AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1",
            endpoint,
            max_attempts: 3,
            // A part is 8 MiB: a minute per attempt is generous; no bound on a whole call,
            // whose body may be large.
            attempt_timeout: Some(Duration::from_secs(60)),
            operation_timeout: None,
        })
        .await?;
        let conf = aws_sdk_s3::config::Builder::from(&conf)
            // Emulators answer on one host name, not one per bucket.
            .force_path_style(endpoint.is_some())
            .build();
        let client = Client::from_conf(conf);
        let bucket = &location.bucket;
        if let Err(e) = client.head_bucket().bucket(bucket).send().await {
            let why = match &e {
                SdkError::ServiceError(s) if s.err().is_not_found() => {
                    "it does not exist (create it, or deploy the stack in deploy/)".to_owned()
                }
                SdkError::ServiceError(s) if s.raw().status().as_u16() == 403 => {
                    "access denied (the role needs s3:ListBucket on it)".to_owned()
                }
                other => describe(other),
            };
            let at = endpoint.map(|u| format!(" at {u}")).unwrap_or_default();
            anyhow::bail!("--archive {location}: the bucket {bucket}{at} cannot be used: {why}");
        }
        Ok(S3Archive {
            client,
            location,
            scratch,
            retention: Duration::from_secs(86_400) * retention_days.max(1),
        })
    }

    pub fn location(&self) -> &S3Location {
        &self.location
    }

    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Where running imports' copies are written.
    pub fn scratch(&self) -> &Local {
        &self.scratch
    }

    fn user_prefix(&self, user: Uuid) -> String {
        format!("{}{user}/", self.location.prefix)
    }

    /// The object of upload `id` of `user`.
    pub fn key(&self, user: Uuid, id: Uuid) -> String {
        format!("{}{id}.export", self.user_prefix(user))
    }

    fn unavailable<E>(&self, what: &str, e: &SdkError<E, HttpResponse>) -> ArchiveError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        ArchiveError::Unavailable(format!(
            "{what} in s3://{} failed: {}",
            self.location.bucket,
            describe(e)
        ))
    }

    /// Starts the multipart upload of `id`.
    pub(super) async fn begin(&self, user: Uuid, id: Uuid) -> Result<Parts, ArchiveError> {
        let key = self.key(user, id);
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.location.bucket)
            .key(&key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| self.unavailable("starting the upload", &e))?;
        let upload_id = out.upload_id().unwrap_or_default().to_owned();
        Ok(Parts {
            archive: self.clone(),
            key,
            upload_id,
            sent: 0,
            next: 1,
            done: Vec::new(),
            inflight: None,
        })
    }

    /// Downloads upload `id` of `user`, streamed, to its scratch copy.
    pub(super) async fn fetch(
        &self,
        user: Uuid,
        id: Uuid,
    ) -> Result<Option<PathBuf>, ArchiveError> {
        let got = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(self.key(user, id))
            .send()
            .await;
        let mut body = match got {
            Ok(out) => out.body,
            Err(SdkError::ServiceError(s)) if s.err().is_no_such_key() => return Ok(None),
            Err(e) => return Err(self.unavailable("reading the upload", &e)),
        };
        let path = self.scratch.upload_path(user, id)?;
        let copied = async {
            let mut file = tokio::fs::File::create(&path).await?;
            while let Some(chunk) = body.try_next().await.map_err(|e| {
                ArchiveError::Unavailable(format!(
                    "reading the upload from s3://{} was cut off: {e}",
                    self.location.bucket
                ))
            })? {
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            Ok::<_, ArchiveError>(())
        }
        .await;
        match copied {
            Ok(()) => Ok(Some(path)),
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                Err(e)
            }
        }
    }

    /// Deletes the scratch copy of `id` (the import read it to the end, or gave up).
    pub(super) async fn drop_scratch(&self, user: Uuid, id: Uuid) {
        if let Some(path) = self.scratch.find(user, id) {
            let _ = tokio::fs::remove_file(path).await;
        }
    }

    /// Deletes upload `id` of `user` and its scratch copy.
    pub(super) async fn remove(&self, user: Uuid, id: Uuid) -> Result<(), ArchiveError> {
        self.drop_scratch(user, id).await;
        self.delete(&self.key(user, id)).await
    }

    async fn delete(&self, key: &str) -> Result<(), ArchiveError> {
        self.client
            .delete_object()
            .bucket(&self.location.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.unavailable("deleting an upload", &e))?;
        Ok(())
    }

    /// Deletes every object of `user`, aborts their unfinished uploads and removes their
    /// scratch copies; returns how many objects there were.
    pub(super) async fn erase_user(&self, user: Uuid) -> Result<usize, ArchiveError> {
        self.scratch.erase_user(user).await?;
        let prefix = self.user_prefix(user);
        let keys = self.list(&prefix, None).await?;
        for key in &keys {
            self.delete(key).await?;
        }
        self.abort_uploads(&prefix, None).await?;
        Ok(keys.len())
    }

    /// Deletes the objects last modified before `now - retention` (and aborts uploads begun
    /// before then); returns how many objects.
    pub(super) async fn sweep(&self, now: SystemTime) -> Result<usize, ArchiveError> {
        self.scratch.sweep(now).await?;
        let Some(cutoff) = now.checked_sub(self.retention) else {
            return Ok(0);
        };
        let prefix = self.location.prefix.clone();
        let keys = self.list(&prefix, Some(cutoff)).await?;
        for key in &keys {
            self.delete(key).await?;
        }
        self.abort_uploads(&prefix, Some(cutoff)).await?;
        Ok(keys.len())
    }

    /// The keys below `prefix` (last modified before `before`, if given).
    async fn list(
        &self,
        prefix: &str,
        before: Option<SystemTime>,
    ) -> Result<Vec<String>, ArchiveError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.unavailable("listing uploads", &e))?;
            for object in page.contents() {
                let old = match (before, object.last_modified()) {
                    (None, _) => true,
                    (Some(cutoff), Some(at)) => {
                        SystemTime::try_from(*at).is_ok_and(|at| at < cutoff)
                    }
                    (Some(_), None) => false,
                };
                if let (true, Some(key)) = (old, object.key()) {
                    keys.push(key.to_owned());
                }
            }
        }
        Ok(keys)
    }

    /// Aborts the unfinished uploads below `prefix` (begun before `before`, if given).
    async fn abort_uploads(
        &self,
        prefix: &str,
        before: Option<SystemTime>,
    ) -> Result<(), ArchiveError> {
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.location.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| self.unavailable("listing unfinished uploads", &e))?;
            for upload in page.uploads() {
                let old = match (before, upload.initiated()) {
                    (None, _) => true,
                    (Some(cutoff), Some(at)) => {
                        SystemTime::try_from(*at).is_ok_and(|at| at < cutoff)
                    }
                    (Some(_), None) => false,
                };
                if let (true, Some(key), Some(id)) = (old, upload.key(), upload.upload_id()) {
                    self.abort(key, id).await?;
                }
            }
            if !page.is_truncated().unwrap_or(false) {
                return Ok(());
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() && id_marker.is_none() {
                return Ok(());
            }
        }
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), ArchiveError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.location.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(s)) if s.err().is_no_such_upload() => Ok(()),
            Err(e) => Err(self.unavailable("aborting an upload", &e)),
        }
    }
}

/// A multipart upload in progress.
pub(super) struct Parts {
    archive: S3Archive,
    key: String,
    upload_id: String,
    /// Bytes of the file given to parts so far.
    sent: u64,
    next: i32,
    done: Vec<CompletedPart>,
    inflight: Option<JoinHandle<Result<CompletedPart, ArchiveError>>>,
}

impl Parts {
    pub(super) fn sent(&self) -> u64 {
        self.sent
    }

    /// Uploads the file's bytes `sent..upto` as the next part, once the part before has
    /// been acknowledged.
    pub(super) async fn ship(&mut self, path: &Path, upto: u64) -> Result<(), ArchiveError> {
        self.settle().await?;
        if self.next > MAX_PARTS {
            return Err(ArchiveError::Unavailable(format!(
                "the upload is over S3's {MAX_PARTS} parts of {PART_BYTES} bytes"
            )));
        }
        let body = ByteStream::read_from()
            .path(path)
            .offset(self.sent)
            .length(Length::Exact(upto - self.sent))
            .build()
            .await
            .map_err(|e| ArchiveError::Io(std::io::Error::other(e)))?;
        let (archive, key, upload_id, number) = (
            self.archive.clone(),
            self.key.clone(),
            self.upload_id.clone(),
            self.next,
        );
        self.inflight = Some(tokio::spawn(async move {
            let out = archive
                .client
                .upload_part()
                .bucket(&archive.location.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(body)
                .send()
                .await
                .map_err(|e| archive.unavailable("uploading a part", &e))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build())
        }));
        self.next += 1;
        self.sent = upto;
        Ok(())
    }

    /// Waits for the part in flight.
    async fn settle(&mut self) -> Result<(), ArchiveError> {
        if let Some(part) = self.inflight.take() {
            let part = part
                .await
                .map_err(|e| ArchiveError::Io(std::io::Error::other(e)))??;
            self.done.push(part);
        }
        Ok(())
    }

    /// Sends the rest of the file (`total` bytes) and completes the upload; aborts it on
    /// failure.
    pub(super) async fn complete(mut self, path: &Path, total: u64) -> Result<(), ArchiveError> {
        let result = async {
            if total > self.sent || self.done.is_empty() && self.inflight.is_none() {
                self.ship(path, total).await?;
            }
            self.settle().await?;
            self.archive
                .client
                .complete_multipart_upload()
                .bucket(&self.archive.location.bucket)
                .key(&self.key)
                .upload_id(&self.upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(std::mem::take(&mut self.done)))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| self.archive.unavailable("completing the upload", &e))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            self.abort().await;
        }
        result
    }

    /// Gives the upload up (S3 drops its parts).
    pub(super) async fn abort(mut self) {
        if let Some(part) = self.inflight.take() {
            let _ = part.await;
        }
        if let Err(e) = self.archive.abort(&self.key, &self.upload_id).await {
            // The lifecycle rule aborts it later.
            tracing::warn!(error = %e, "an unfinished import upload was not aborted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Archive, Local};
    use super::*;

    /// moto's S3 server (scripts/s3-local; scripts/test sets CLARITY_TEST_S3 and the AWS_*
    /// variables moto accepts any value of), or `None` with a message (a failure under
    /// `CLARITY_TEST_REQUIRE_S3=1`).
    fn endpoint() -> Option<String> {
        let url = std::env::var("CLARITY_TEST_S3").ok();
        if url.is_none() {
            assert!(
                std::env::var_os("CLARITY_TEST_REQUIRE_S3").is_none(),
                "CLARITY_TEST_REQUIRE_S3 is set but CLARITY_TEST_S3 is not"
            );
            eprintln!("skipped: set CLARITY_TEST_S3 (scripts/s3-local start PORT) to run");
        }
        url
    }

    /// A new bucket on `url`.
    async fn bucket(url: &str) -> String {
        let name = format!(
            "clarity-unit-{}",
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let conf = crate::aws::sdk_config(&crate::aws::ClientOptions {
            service: "S3",
            emulator_hint: "",
            endpoint: Some(url),
            max_attempts: 1,
            attempt_timeout: None,
            operation_timeout: None,
        })
        .await
        .unwrap();
        let conf = aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build();
        Client::from_conf(conf)
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .unwrap();
        name
    }

    #[tokio::test]
    async fn a_large_upload_goes_in_parts_and_comes_back_whole() {
        let Some(url) = endpoint() else { return };
        let name = bucket(&url).await;
        let dir = tempfile::tempdir().unwrap();
        let location: S3Location = format!("s3://{name}/kept").parse().unwrap();
        let s3 = S3Archive::connect(location, Some(&url), Local::new(dir.path(), 1), 7)
            .await
            .unwrap();
        let archive = Archive::S3(s3.clone());
        let (user, id) = (Uuid::new_v4(), Uuid::now_v7());
        // 2.5 parts of pseudo-random bytes, in the chunk sizes a body arrives in.
        let mut bytes = vec![0u8; (PART_BYTES * 5 / 2) as usize];
        let mut x: u64 = 7;
        for b in bytes.iter_mut() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (x >> 56) as u8;
        }
        let mut upload = archive.begin(user, id).await.unwrap();
        for chunk in bytes.chunks(64 * 1024 + 3) {
            upload.write(chunk).await.unwrap();
        }
        let scratch = upload.finish().await.unwrap();
        assert_eq!(std::fs::read(&scratch).unwrap(), bytes, "the import's copy");

        let head = s3
            .client
            .head_object()
            .bucket(&name)
            .key(format!("kept/{user}/{id}.export"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(bytes.len() as i64));
        assert!(
            head.e_tag().unwrap_or_default().ends_with("-3\""),
            "a multipart object of 3 parts: {:?}",
            head.e_tag()
        );

        archive.done_reading(user, id).await;
        assert!(!scratch.exists(), "the scratch copy goes after the import");
        let fetched = archive.fetch(user, id).await.unwrap().expect("kept");
        assert_eq!(std::fs::read(&fetched).unwrap(), bytes, "read back whole");
        archive.done_reading(user, id).await;
        assert_eq!(archive.fetch(Uuid::new_v4(), id).await.unwrap(), None);

        // An unfinished upload of the same account is aborted by the erase too.
        let unfinished = archive.begin(user, Uuid::now_v7()).await.unwrap();
        drop(unfinished);
        assert_eq!(archive.erase_user(user).await.unwrap(), 1);
        assert_eq!(archive.fetch(user, id).await.unwrap(), None);
        let open = s3
            .client
            .list_multipart_uploads()
            .bucket(&name)
            .send()
            .await
            .unwrap();
        assert!(open.uploads().is_empty(), "{:?}", open.uploads());
        assert_eq!(archive.erase_user(user).await.unwrap(), 0, "idempotent");
    }

    #[tokio::test]
    async fn the_sweep_deletes_only_what_is_past_the_retention() {
        let Some(url) = endpoint() else { return };
        let name = bucket(&url).await;
        let dir = tempfile::tempdir().unwrap();
        let location: S3Location = format!("s3://{name}").parse().unwrap();
        let s3 = S3Archive::connect(location, Some(&url), Local::new(dir.path(), 1), 7)
            .await
            .unwrap();
        let archive = Archive::S3(s3);
        let (user, id) = (Uuid::new_v4(), Uuid::now_v7());
        let mut upload = archive.begin(user, id).await.unwrap();
        upload.write(b"<HealthData/>").await.unwrap();
        upload.finish().await.unwrap();
        archive.done_reading(user, id).await;

        let now = SystemTime::now();
        assert_eq!(archive.sweep(now).await.unwrap(), 0, "all recent");
        assert!(archive.fetch(user, id).await.unwrap().is_some());
        archive.done_reading(user, id).await;
        assert_eq!(
            archive
                .sweep(now + Duration::from_secs(6 * 86_400))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            archive
                .sweep(now + Duration::from_secs(8 * 86_400))
                .await
                .unwrap(),
            1
        );
        assert_eq!(archive.fetch(user, id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_unusable_bucket_is_named_at_connect() {
        let Some(url) = endpoint() else { return };
        let dir = tempfile::tempdir().unwrap();
        let missing: S3Location = "s3://clarity-no-such-bucket/x".parse().unwrap();
        let err = S3Archive::connect(missing, Some(&url), Local::new(dir.path(), 1), 7)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("clarity-no-such-bucket") && err.contains("does not exist"),
            "{err}"
        );
        // Nothing listens on a port just released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let closed = format!("http://127.0.0.1:{port}");
        let location: S3Location = "s3://clarity-anything".parse().unwrap();
        let err = S3Archive::connect(location, Some(&closed), Local::new(dir.path(), 1), 7)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("clarity-anything")
                && err.contains(&closed)
                && err.contains("cannot be used"),
            "{err}"
        );
    }

    #[test]
    fn locations_parse_or_say_what_is_wrong() {
        let l: S3Location = "s3://clarity-imports/prod/uploads/".parse().unwrap();
        assert_eq!(l.bucket, "clarity-imports");
        assert_eq!(l.prefix, "prod/uploads/");
        assert_eq!(l.to_string(), "s3://clarity-imports/prod/uploads/");
        let bare: S3Location = "s3://bucket".parse().unwrap();
        assert_eq!(bare.prefix, "");
        let err = "/var/data".parse::<S3Location>().unwrap_err();
        assert!(err.contains("s3://BUCKET"), "{err}");
        let err = "s3://Bad_Bucket/x".parse::<S3Location>().unwrap_err();
        assert!(err.contains("not an S3 bucket name"), "{err}");
    }
}
