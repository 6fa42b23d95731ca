//! The import archive in S3 (`--archive s3://bucket/prefix`; docs/import.md, "The kept
//! uploads") against moto's S3 server (scripts/s3-local; scripts/test sets CLARITY_TEST_S3):
//! an upload through `POST /api/v1/imports` is kept as `prefix/<user_id>/<import_id>.export`,
//! byte for byte, and not on the node's disk once its import ended; `POST
//! /api/v1/imports/{id}/rerun` imports it again from the bucket; erasing the account deletes
//! its objects (and only its); the retention sweep deletes old ones; a bucket that goes away
//! makes an upload 503 `archive_unavailable` with nothing imported, and a missing or
//! unreachable bucket stops the start with one line naming it.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use clarity::app::App;
use clarity::config::Config;
use reqwest::StatusCode;

use crate::common::{TestApp, spawn_app_with};
use crate::import_apple::{finished, generate, upload};
use crate::import_archive::{import, kept};

/// moto's endpoint, or `None` with a message (a failure under `CLARITY_TEST_REQUIRE_S3=1`).
fn endpoint() -> Option<String> {
    let url = std::env::var("CLARITY_TEST_S3").ok();
    if url.is_none() {
        assert!(
            std::env::var_os("CLARITY_TEST_REQUIRE_S3").is_none(),
            "CLARITY_TEST_REQUIRE_S3 is set but CLARITY_TEST_S3 is not (scripts/s3-local)"
        );
        eprintln!(
            "skipped: set CLARITY_TEST_S3 (scripts/s3-local start PORT) to run the S3 archive tests"
        );
    }
    url
}

async fn client(url: &str) -> Client {
    let conf = clarity::aws::sdk_config(&clarity::aws::ClientOptions {
        service: "S3",
        emulator_hint: "scripts/test sets AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local",
        endpoint: Some(url),
        max_attempts: 1,
        attempt_timeout: None,
        operation_timeout: None,
    })
    .await
    .expect("credentials for moto");
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    )
}

/// A new bucket.
async fn bucket(s3: &Client) -> String {
    let name = format!(
        "clarity-api-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    s3.create_bucket().bucket(&name).send().await.unwrap();
    name
}

fn archive_at(c: &mut Config, url: &str, location: &str) {
    c.imports.archive = Some(location.parse().unwrap());
    c.imports.archive_endpoint = Some(url.to_owned());
}

/// The keys below `prefix`.
async fn keys(s3: &Client, bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

async fn object(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

async fn rerun(app: &TestApp, token: &str, id: &str) -> (StatusCode, serde_json::Value) {
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/imports/{id}/rerun")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    crate::common::into_json(resp).await
}

#[tokio::test]
async fn uploads_are_kept_in_s3_rerun_from_there_and_erased_with_the_account() {
    let Some(url) = endpoint() else { return };
    let s3 = client(&url).await;
    let name = bucket(&s3).await;
    let work = tempfile::tempdir().unwrap();
    let (file, _) = generate(work.path(), 2, false);
    let bytes = std::fs::read(&file).unwrap();
    let app = spawn_app_with(|c| {
        archive_at(c, &url, &format!("s3://{name}/uploads"));
        c.imports.import_retention_days = 7;
    })
    .await;
    let erased = app.user().await;
    let other = app.user().await;
    let erased_id = import(&app, &erased.access, bytes.clone()).await;
    let other_id = import(&app, &other.access, bytes.clone()).await;

    let key = format!("uploads/{}/{erased_id}.export", erased.user_id);
    assert_eq!(
        object(&s3, &name, &key).await,
        bytes,
        "the upload is in the bucket, byte for byte"
    );
    assert_eq!(
        kept(app.dir.path(), &erased_id),
        None,
        "no copy stays on the node once the import ended"
    );

    // The re-run reads the object back (the node has no copy) and imports the same records:
    // all of them already stored.
    let (_, first) = app
        .get(
            &format!("/api/v1/imports/{erased_id}"),
            Some(&erased.access),
        )
        .await;
    let (status, job) = rerun(&app, &erased.access, &erased_id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["import_id"], erased_id.as_str());
    let again = finished(&app, &erased.access, &erased_id).await;
    assert_eq!(again["state"], "done", "{again}");
    assert!(first["records_read"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(again["records_read"], first["records_read"], "{again}");
    assert_eq!(again["bytes_total"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(again["samples_stored"], 0, "nothing twice: {again}");
    assert_eq!(
        kept(app.dir.path(), &erased_id),
        None,
        "the re-run's copy went"
    );

    // Only the owner's kept uploads can be re-run.
    let (status, body) = rerun(&app, &erased.access, &other_id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");

    let resp = app
        .http
        .delete(app.url("/api/v1/user"))
        .bearer_auth(&erased.access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        keys(&s3, &name, &format!("uploads/{}/", erased.user_id)).await,
        Vec::<String>::new(),
        "the erased account's objects are gone when the erase answers"
    );
    let other_key = format!("uploads/{}/{other_id}.export", other.user_id);
    assert_eq!(keys(&s3, &name, "uploads/").await, vec![other_key.clone()]);

    // Retention: the sweep the server runs at start and hourly, at a later clock.
    let archive = app.app.imports.archive();
    let now = SystemTime::now();
    assert_eq!(archive.sweep(now).await.unwrap(), 0);
    assert_eq!(keys(&s3, &name, "uploads/").await, vec![other_key]);
    let later = now + Duration::from_secs(8 * 86_400);
    assert_eq!(archive.sweep(later).await.unwrap(), 1);
    assert_eq!(keys(&s3, &name, "uploads/").await, Vec::<String>::new());
    let (status, body) = rerun(&app, &other.access, &other_id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "past the retention: {body}");
}

#[tokio::test]
async fn an_upload_the_bucket_refuses_is_503_and_nothing_is_imported() {
    let Some(url) = endpoint() else { return };
    let s3 = client(&url).await;
    let name = bucket(&s3).await;
    let work = tempfile::tempdir().unwrap();
    let (file, _) = generate(work.path(), 2, false);
    let bytes = std::fs::read(&file).unwrap();
    let app = spawn_app_with(|c| archive_at(c, &url, &format!("s3://{name}"))).await;
    let user = app.user().await;

    // The bucket goes away while the server runs.
    s3.delete_bucket().bucket(&name).send().await.unwrap();
    let (status, body) = upload(&app, &user.access, bytes.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "archive_unavailable", "{body}");
    assert!(body["error"]["retry_after_ms"].as_u64().is_some(), "{body}");
    assert!(
        app.all_samples(&user.access, "&from=2024-01-01T00:00:00Z")
            .await
            .is_empty(),
        "no import ran"
    );
    let leftovers = std::fs::read_dir(
        app.dir
            .path()
            .join("imports")
            .join(user.user_id.to_string()),
    )
    .map(|d| d.count())
    .unwrap_or(0);
    assert_eq!(leftovers, 0, "no copy left on the node");

    // Back: the slot was given back and the next upload is kept.
    s3.create_bucket().bucket(&name).send().await.unwrap();
    let id = import(&app, &user.access, bytes).await;
    let key = format!("{}/{id}.export", user.user_id);
    assert_eq!(keys(&s3, &name, "").await, vec![key]);
}

#[tokio::test]
async fn a_missing_or_unreachable_bucket_stops_the_start_naming_it() {
    let Some(url) = endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = |endpoint: &str, location: &str| {
        let mut c = Config::for_tests(dir.path());
        c.auth.jwt_secret = Some(crate::common::JWT_SECRET.to_string().into());
        archive_at(&mut c, endpoint, location);
        c
    };
    let missing = config(&url, "s3://clarity-api-no-such-bucket/x");
    let err = App::new(missing).await.err().expect("refused");
    let err = format!("{err:#}");
    assert!(
        err.contains("clarity-api-no-such-bucket") && err.contains("does not exist"),
        "{err}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("http://127.0.0.1:{port}");
    let unreachable = config(&closed, "s3://clarity-api-anything");
    let err = App::new(unreachable).await.err().expect("refused");
    let err = format!("{err:#}");
    assert!(
        err.contains("clarity-api-anything") && err.contains(&closed),
        "{err}"
    );
}
