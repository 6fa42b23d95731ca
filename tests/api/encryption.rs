//! Encryption at rest of the SQLite store (`--data-key-file`, `CLARITY_DATA_KEY`): what is
//! on disk, which keys open it, `clarity rekey`, all through a real server and the binary.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

pub const KEY_A: &str = "6b1f0a9c3e5d7f2a4c6e8b0d2f4a6c8e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a";
pub const KEY_B: &str = "d4c3b2a19f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4938271605f4e";

/// Writes `hex` to a key file only its owner can read.
pub fn key_file(dir: &Path, name: &str, hex: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("{hex}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// `clarity ARGS` with no data key or data folder from the environment, plus `env`.
pub async fn clarity(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_clarity"));
    cmd.args(args)
        .env_remove("CLARITY_DATA_DIR")
        .env_remove("CLARITY_DATA_KEY")
        .env_remove("CLARITY_DATA_KEY_FILE")
        .env_remove("CLARITY_JWT_SECRET")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("clarity exits within 60 s (a server that should have refused is serving)")
        .expect("clarity runs")
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

/// Heart rates with fractional values no other data has, and ids that say what they are.
pub fn canaries(tag: &str) -> Vec<Value> {
    (0..30)
        .map(|i| {
            let mut s = hr(&format!("canary-{tag}-{i}"), i, 0);
            s["value"] = json!(canary_value(i));
            s
        })
        .collect()
}

fn canary_value(i: i64) -> f64 {
    71.123_456_789 + i as f64 * 0.001_953_125
}

/// The byte strings of `canaries(tag)` and the user's email as SQLite writes them (a REAL
/// as 8 big-endian bytes, text as UTF-8).
pub fn needles(tag: &str, email: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![(format!("email {email}"), email.as_bytes().to_vec())];
    for i in 0..30 {
        let id = format!("canary-{tag}-{i}");
        out.push((format!("id {id}"), id.into_bytes()));
        out.push((
            format!("value {}", canary_value(i)),
            canary_value(i).to_be_bytes().to_vec(),
        ));
    }
    out
}

/// Every (file, needle) found in any file under `dir` (the store, its -wal and -shm, and
/// whatever else the server wrote there).
pub fn found_in(dir: &Path, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            for (what, needle) in needles {
                if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                    hits.push(format!("{what} in {}", path.display()));
                }
            }
        }
    }
    hits
}

fn files_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Ingests the canaries over WebSocket (acked), then greps the data folder while the server
/// runs (the WAL holds them) and after it stopped (checkpointed into clarity.db).
async fn ingest_and_grep(key: Option<&str>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let keys = tempfile::tempdir().unwrap();
    let file = key.map(|k| key_file(keys.path(), "data.key", k));
    let app = spawn_app_with(|c| c.store.key.data_key_file = file.clone()).await;
    let email = format!("canary-{}@example.org", uuid::Uuid::new_v4().simple());
    app.signup(&email).await;
    let (access, _) = app.login(&email).await;
    let mut ws = app.ws(&access).await;
    ws.welcome().await;
    ws.send(&json!({"type": "samples", "seq": 1, "samples": canaries("ws")}))
        .await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(ack["accepted"].as_u64(), Some(30), "{ack}");
    let needles = needles("ws", &email);
    let running = found_in(app.dir.path(), &needles);
    let files = files_of(app.dir.path());
    drop(ws);
    let dir = app.stop().await;
    let stopped = found_in(dir.path(), &needles);
    (running, stopped, files)
}

#[tokio::test]
async fn with_a_data_key_no_file_in_the_data_dir_holds_a_sample_value_or_the_email() {
    let (running, stopped, files) = ingest_and_grep(Some(KEY_A)).await;
    assert!(
        files.iter().any(|f| f == "clarity.db-wal"),
        "the WAL was searched: {files:?}"
    );
    assert!(running.is_empty(), "while serving: {running:#?}");
    assert!(stopped.is_empty(), "after stopping: {stopped:#?}");
}

/// The same search on a plain store finds every kind of needle: the test above can fail.
#[tokio::test]
async fn without_a_data_key_the_same_search_finds_them() {
    let (running, stopped, _) = ingest_and_grep(None).await;
    for hits in [&running, &stopped] {
        for kind in ["email ", "id canary-ws-", "value "] {
            assert!(
                hits.iter().any(|h| h.starts_with(kind)),
                "{kind}: {hits:#?}"
            );
        }
    }
}

/// `clarity serve ARGS --data-dir DIR` that must refuse to start: its exit status and
/// output (stdout and stderr together).
async fn serve_refused(dir: &Path, extra: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> String {
    let mut args = vec![
        os("serve"),
        os("--listen"),
        os("127.0.0.1:0"),
        os("--data-dir"),
        dir.as_os_str(),
    ];
    args.extend_from_slice(extra);
    let out = clarity(&args, env).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "serve started: {text}");
    assert_ne!(out.status.code(), Some(101), "a panic: {text}");
    assert!(!text.contains("panicked"), "{text}");
    for key in [KEY_A, KEY_B] {
        assert!(!text.contains(key), "the key is printed: {text}");
    }
    text
}

/// The one line that says `needle`, which also names the store file.
fn line_with<'a>(text: &'a str, needle: &str, dir: &Path) -> &'a str {
    let line = text
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {text}"));
    let db = dir.join("clarity.db");
    assert!(
        line.contains(&*db.to_string_lossy()),
        "names {db:?}: {line}"
    );
    line
}

#[tokio::test]
async fn serve_refuses_a_wrong_missing_or_needless_key_in_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let a = key_file(tmp.path(), "a.key", KEY_A);
    let b = key_file(tmp.path(), "b.key", KEY_B);

    // An encrypted store, made by `migrate` with key A.
    let enc = tmp.path().join("enc");
    let out = clarity(
        &[
            os("migrate"),
            os("--data-dir"),
            enc.as_os_str(),
            os("--data-key-file"),
            a.as_os_str(),
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let head = std::fs::read(enc.join("clarity.db")).unwrap();
    assert_ne!(
        &head[..16],
        b"SQLite format 3\0",
        "encrypted from its first page"
    );

    let text = serve_refused(&enc, &[], &[]).await;
    let line = line_with(&text, "is encrypted and no data key was given", &enc);
    assert!(line.contains("--data-key-file"), "{line}");

    let text = serve_refused(&enc, &[os("--data-key-file"), b.as_os_str()], &[]).await;
    line_with(&text, "the data key given does not open", &enc);
    let text = serve_refused(&enc, &[], &[("CLARITY_DATA_KEY", KEY_B)]).await;
    line_with(&text, "the data key given does not open", &enc);

    // The right key from the environment opens it (migrate: opens the store and exits).
    let out = clarity(
        &[os("migrate"), os("--data-dir"), enc.as_os_str()],
        &[("CLARITY_DATA_KEY", KEY_A)],
    )
    .await;
    assert!(out.status.success(), "{out:?}");

    // A plain store given a key.
    let plain = tmp.path().join("plain");
    let out = clarity(&[os("migrate"), os("--data-dir"), plain.as_os_str()], &[]).await;
    assert!(out.status.success(), "{out:?}");
    let text = serve_refused(&plain, &[os("--data-key-file"), a.as_os_str()], &[]).await;
    let line = line_with(&text, "is not encrypted, but a data key was given", &plain);
    assert!(line.contains("clarity rekey"), "{line}");
    assert_eq!(
        &std::fs::read(plain.join("clarity.db")).unwrap()[..16],
        b"SQLite format 3\0",
        "left as it was"
    );

    // A malformed key names the rule, not the text.
    let bad = key_file(tmp.path(), "bad.key", &KEY_A[..40]);
    let text = serve_refused(&enc, &[os("--data-key-file"), bad.as_os_str()], &[]).await;
    assert!(text.contains("64 hex digits"), "{text}");
    assert!(!text.contains(&KEY_A[..40]), "{text}");
}

#[tokio::test]
async fn a_key_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let a = key_file(tmp.path(), "a.key", KEY_A);
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o644)).unwrap();
    let dir = tmp.path().join("data");
    let out = clarity(
        &[
            os("migrate"),
            os("--data-dir"),
            dir.as_os_str(),
            os("--data-key-file"),
            a.as_os_str(),
        ],
        &[],
    )
    .await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("is readable by group or others (mode 644)"),
        "{text}"
    );
    assert!(!text.contains(KEY_A), "{text}");
}

pub async fn post_canaries(app: &TestApp, tag: &str) -> (String, Session) {
    let u = app.user().await;
    let (status, body) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": canaries(tag)}),
            Some(&u.access),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    (u.email.clone(), u)
}

pub async fn stored_ids(app: &TestApp, access: &str) -> Vec<String> {
    let mut ids: Vec<String> = app
        .all_samples(access, "")
        .await
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn rekey_args<'a>(dir: &'a Path, old: Option<&'a Path>, new: &'a Path) -> Vec<&'a std::ffi::OsStr> {
    let mut args = vec![os("rekey"), os("--data-dir"), dir.as_os_str()];
    if let Some(old) = old {
        args.extend([os("--data-key-file"), old.as_os_str()]);
    }
    args.extend([os("--new-key-file"), new.as_os_str()]);
    args
}

#[tokio::test]
async fn rekey_moves_the_store_to_the_new_key_and_the_old_one_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let a = key_file(keys.path(), "a.key", KEY_A);
    let b = key_file(keys.path(), "b.key", KEY_B);
    let app = spawn_app_with(|c| c.store.key.data_key_file = Some(a.clone())).await;
    let (_, u) = post_canaries(&app, "rk").await;
    let before = stored_ids(&app, &u.access).await;
    assert_eq!(before.len(), 30);

    // Not while the server has the store open.
    let out = clarity(&rekey_args(app.dir.path(), Some(&a), &b), &[]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is in use"), "{err}");

    let dir = app.stop().await;
    let out = clarity(&rekey_args(dir.path(), Some(&a), &b), &[]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("re-encrypted with the new key"), "{err}");

    let text = serve_refused(dir.path(), &[os("--data-key-file"), a.as_os_str()], &[]).await;
    line_with(&text, "the data key given does not open", dir.path());

    let app = spawn_in(dir, |c| c.store.key.data_key_file = Some(b.clone())).await;
    assert_eq!(stored_ids(&app, &u.access).await, before);
}

#[tokio::test]
async fn rekey_encrypts_a_plain_store_in_place() {
    let keys = tempfile::tempdir().unwrap();
    let a = key_file(keys.path(), "a.key", KEY_A);
    let app = spawn_app().await;
    let (email, u) = post_canaries(&app, "pl").await;
    let before = stored_ids(&app, &u.access).await;
    let dir = app.stop().await;
    let needles = needles("pl", &email);
    assert!(
        !found_in(dir.path(), &needles).is_empty(),
        "plain to begin with"
    );

    let out = clarity(&rekey_args(dir.path(), None, &a), &[]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("encrypted with the new key"), "{err}");
    let hits = found_in(dir.path(), &needles);
    assert!(hits.is_empty(), "{hits:#?}");

    let text = serve_refused(dir.path(), &[], &[]).await;
    line_with(&text, "is encrypted and no data key was given", dir.path());

    let app = spawn_in(dir, |c| c.store.key.data_key_file = Some(a.clone())).await;
    assert_eq!(stored_ids(&app, &u.access).await, before);
    // And it keeps working: the migrations' version came along, new writes commit.
    let (status, body) = app
        .post(
            "/api/v1/health-data",
            &json!({"samples": [hr("after-rekey", 90, 64)]}),
            Some(&u.access),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(stored_ids(&app, &u.access).await.len(), 31);
}
