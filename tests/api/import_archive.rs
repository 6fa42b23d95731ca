//! The kept uploads of imports (docs/import.md, "The kept uploads"): erasing the account
//! deletes its uploads (and only its), and uploads past `--import-retention-days` are deleted
//! when the server starts. Files are looked up by name anywhere below the data dir's
//! `imports/`, whatever the folder layout.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;

use crate::common::{TestApp, spawn_app, spawn_in};
use crate::import_apple::{finished, generate, upload};

/// The kept file of import `id`, if any, below `data_dir/imports`.
pub(crate) fn kept(data_dir: &Path, id: &str) -> Option<PathBuf> {
    fn walk(dir: &Path, name: &str) -> Option<PathBuf> {
        for entry in std::fs::read_dir(dir).ok()? {
            let path = entry.ok()?.path();
            if path.is_dir() {
                if let Some(found) = walk(&path, name) {
                    return Some(found);
                }
            } else if path.file_name().is_some_and(|n| n == name) {
                return Some(path);
            }
        }
        None
    }
    walk(&data_dir.join("imports"), &format!("{id}.export"))
}

/// Imports `bytes` for `token`'s account; returns the import id once the job is done.
pub(crate) async fn import(app: &TestApp, token: &str, bytes: Vec<u8>) -> String {
    let (status, job) = upload(app, token, bytes).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["import_id"].as_str().unwrap().to_owned();
    let job = finished(app, token, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    id
}

#[tokio::test]
async fn erasing_the_account_deletes_its_kept_uploads() {
    let work = tempfile::tempdir().unwrap();
    let (file, _) = generate(work.path(), 2, false);
    let bytes = std::fs::read(&file).unwrap();
    let app = spawn_app().await;
    let erased = app.user().await;
    let other = app.user().await;
    let erased_id = import(&app, &erased.access, bytes.clone()).await;
    let other_id = import(&app, &other.access, bytes).await;
    assert!(
        kept(app.dir.path(), &erased_id).is_some(),
        "kept after the import"
    );

    let resp = app
        .http
        .delete(app.url("/api/v1/user"))
        .bearer_auth(&erased.access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        kept(app.dir.path(), &erased_id),
        None,
        "the erased account's upload is gone when the erase answers"
    );
    assert!(
        kept(app.dir.path(), &other_id).is_some(),
        "another account's upload stays"
    );
}

#[tokio::test]
async fn uploads_past_the_retention_are_deleted_at_start() {
    let work = tempfile::tempdir().unwrap();
    let (file, _) = generate(work.path(), 2, false);
    let bytes = std::fs::read(&file).unwrap();
    let app = spawn_app().await;
    let user = app.user().await;
    let old_id = import(&app, &user.access, bytes.clone()).await;
    let new_id = import(&app, &user.access, bytes).await;
    let dir = app.stop().await;

    // The first upload was last written 8 days ago, the second just now.
    let old = kept(dir.path(), &old_id).expect("kept");
    let eight_days_ago = SystemTime::now() - Duration::from_secs(8 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(eight_days_ago)
        .unwrap();

    let app = spawn_in(dir, |c| c.imports.import_retention_days = 7).await;
    let mut waited = 0;
    while kept(app.dir.path(), &old_id).is_some() {
        assert!(
            waited < 200,
            "the upload past the retention is still there after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(
        kept(app.dir.path(), &new_id).is_some(),
        "the upload within the retention stays"
    );
}

#[tokio::test]
async fn a_kept_upload_can_be_rerun_by_its_owner_only() {
    let work = tempfile::tempdir().unwrap();
    let (file, _) = generate(work.path(), 2, false);
    let app = spawn_app().await;
    let owner = app.user().await;
    let other = app.user().await;
    let id = import(&app, &owner.access, std::fs::read(&file).unwrap()).await;
    let (_, first) = app
        .get(&format!("/api/v1/imports/{id}"), Some(&owner.access))
        .await;

    let rerun = |token: String, id: String| {
        let app = &app;
        async move {
            let resp = app
                .http
                .post(app.url(&format!("/api/v1/imports/{id}/rerun")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            crate::common::into_json(resp).await
        }
    };
    let (status, body) = rerun(other.access.clone(), id.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another account's: {body}");
    let (status, body) = rerun(owner.access.clone(), uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "never uploaded: {body}");

    let (status, job) = rerun(owner.access.clone(), id.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let again = finished(&app, &owner.access, &id).await;
    assert_eq!(again["state"], "done", "{again}");
    assert!(first["records_read"].as_u64().unwrap() > 0);
    assert_eq!(again["records_read"], first["records_read"]);
    assert_eq!(again["samples_stored"], 0, "nothing twice: {again}");
    assert!(
        kept(app.dir.path(), &id).is_some(),
        "still kept after the re-run"
    );
}
