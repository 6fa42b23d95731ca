//! `clarity backup` / `clarity restore` through the real binary, against a server that keeps
//! ingesting over WebSocket while the backup runs.

use std::collections::HashSet;
use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::common::*;

const FRAME: usize = 25;

async fn clarity(args: &[&std::ffi::OsStr]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
        .args(args)
        .env_remove("CLARITY_DATA_DIR")
        .output()
        .await
        .expect("clarity runs")
}

fn frame_ids(frame: usize) -> impl Iterator<Item = String> {
    (0..FRAME).map(move |i| format!("b{frame}-{i}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_mid_ingest_restores_every_sample_acked_before_it() {
    let app = spawn_app().await;
    let u = app.user().await;
    let mut ws = app.ws(&u.access).await;
    ws.welcome().await;

    // One frame at a time, each acked before the next: `acked` is how many frames are stored.
    let (acked_tx, mut acked) = watch::channel(0usize);
    let (stop_tx, stop) = watch::channel(false);
    let ingest = tokio::spawn(async move {
        let mut frame = 0;
        while !*stop.borrow() && frame < 5000 {
            let samples: Vec<Value> = frame_ids(frame)
                .enumerate()
                .map(|(i, id)| hr(&id, (frame * FRAME + i) as i64, 60))
                .collect();
            ws.send(&json!({"type": "samples", "seq": frame, "samples": samples}))
                .await;
            let ack = ws.recv_type("ack").await;
            assert_eq!(ack["accepted"].as_u64(), Some(FRAME as u64), "{ack}");
            frame += 1;
            acked_tx.send_replace(frame);
        }
        frame
    });

    acked.wait_for(|n| *n >= 20).await.unwrap();
    // Everything acked up to here was acked before the backup began.
    let acked_before = *acked.borrow();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("clarity.backup");
    let out = clarity(&[
        "backup".as_ref(),
        "--data-dir".as_ref(),
        app.dir.path().as_os_str(),
        "--out".as_ref(),
        file.as_os_str(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["bytes"].as_u64().unwrap() > 0, "{report}");
    // The ingest went on during and after the backup; frames acked after it ended cannot be
    // in it.
    let after_backup = *acked.borrow();
    acked.wait_for(|n| *n >= after_backup + 5).await.unwrap();
    stop_tx.send_replace(true);
    let total = ingest.await.unwrap();

    let restored_dir = tempfile::tempdir().unwrap();
    let target = restored_dir.path().join("data");
    let out = clarity(&[
        "restore".as_ref(),
        "--from".as_ref(),
        file.as_os_str(),
        "--data-dir".as_ref(),
        target.as_os_str(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let restored = spawn_in(restored_dir, |c| c.store.data_dir = target.clone()).await;
    let stored: HashSet<String> = restored
        .all_samples(&u.access, "")
        .await
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    for frame in 0..acked_before {
        for id in frame_ids(frame) {
            assert!(
                stored.contains(&id),
                "acked before the backup, missing: {id}"
            );
        }
    }
    let sent: HashSet<String> = (0..total).flat_map(frame_ids).collect();
    assert!(stored.is_subset(&sent));
    assert!(
        stored.len() < total * FRAME,
        "a snapshot, not the final state: {} of {}",
        stored.len(),
        total * FRAME
    );
}

#[tokio::test]
async fn backup_and_restore_refuse_what_would_lose_data() {
    let app = spawn_app().await;
    let u = app.user().await;
    app.post(
        "/api/v1/health-data",
        &json!({"samples": [hr("r1", 1, 61), hr("r2", 2, 62)]}),
        Some(&u.access),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("b.db");
    let backup = |dir: &Path, out: &Path| {
        let (dir, out) = (dir.to_owned(), out.to_owned());
        async move {
            clarity(&[
                "backup".as_ref(),
                "--data-dir".as_ref(),
                dir.as_os_str(),
                "--out".as_ref(),
                out.as_os_str(),
            ])
            .await
        }
    };
    let restore = |from: &Path, dir: &Path, force: bool| {
        let (from, dir) = (from.to_owned(), dir.to_owned());
        async move {
            let mut args: Vec<&std::ffi::OsStr> = vec![
                "restore".as_ref(),
                "--from".as_ref(),
                from.as_os_str(),
                "--data-dir".as_ref(),
                dir.as_os_str(),
            ];
            if force {
                args.push("--force".as_ref());
            }
            clarity(&args).await
        }
    };
    let refused = |out: &Output, needle: &str| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
    };

    let empty = tempfile::tempdir().unwrap();
    refused(&backup(empty.path(), &file).await, "no SQLite store");
    assert!(backup(app.dir.path(), &file).await.status.success());
    refused(&backup(app.dir.path(), &file).await, "already exists");

    // A non-empty target is refused, and keeps what it had.
    let target = tempfile::tempdir().unwrap();
    std::fs::write(target.path().join("keep"), b"x").unwrap();
    refused(&restore(&file, target.path(), false).await, "is not empty");
    assert!(!target.path().join("clarity.db").exists());

    // Not a backup: garbage, and a truncated copy.
    let garbage = tmp.path().join("garbage");
    std::fs::write(&garbage, vec![7u8; 8192]).unwrap();
    refused(
        &restore(&garbage, empty.path(), false).await,
        "not a sound Clarity backup",
    );
    let truncated = tmp.path().join("truncated");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &restore(&truncated, empty.path(), false).await,
        "not a sound Clarity backup",
    );
    assert!(std::fs::read_dir(empty.path()).unwrap().next().is_none());

    // --force replaces the store, and a stale WAL of the old one is not replayed onto it.
    std::fs::write(target.path().join("clarity.db-wal"), vec![1u8; 4096]).unwrap();
    let out = restore(&file, target.path(), true).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(target.path().join("keep").exists());
    let restored = spawn_in(target, |_| {}).await;
    let ids: Vec<String> = restored
        .all_samples(&u.access, "")
        .await
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
}

#[tokio::test]
async fn an_encrypted_store_is_backed_up_encrypted_and_restores_only_with_its_key() {
    use crate::encryption::{
        KEY_A, KEY_B, canaries, found_in, key_file, needles, post_canaries, stored_ids,
    };
    let keys = tempfile::tempdir().unwrap();
    let a = key_file(keys.path(), "a.key", KEY_A);
    let b = key_file(keys.path(), "b.key", KEY_B);
    let app = spawn_app_with(|c| c.store.key.data_key_file = Some(a.clone())).await;
    let (email, u) = post_canaries(&app, "bk").await;
    assert_eq!(canaries("bk").len(), 30);
    let before = stored_ids(&app, &u.access).await;

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("enc.backup");
    let backup = |key: Option<&Path>| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "backup".as_ref(),
            "--data-dir".as_ref(),
            app.dir.path().as_os_str(),
            "--out".as_ref(),
            file.as_os_str(),
        ];
        if let Some(key) = key {
            args.extend(["--data-key-file".as_ref(), key.as_os_str()]);
        }
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        async move {
            let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
            clarity(&args).await
        }
    };
    let out = backup(None).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is encrypted and no data key was given"),
        "{err}"
    );
    assert!(!file.exists());

    let out = backup(Some(&a)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits = found_in(tmp.path(), &needles("bk", &email));
    assert!(hits.is_empty(), "the backup holds data in clear: {hits:#?}");

    let target = tmp.path().join("restored");
    let restore = |key: Option<&Path>| {
        let mut args: Vec<std::ffi::OsString> = vec![
            "restore".into(),
            "--from".into(),
            file.clone().into(),
            "--data-dir".into(),
            target.clone().into(),
        ];
        if let Some(key) = key {
            args.extend(["--data-key-file".into(), key.into()]);
        }
        async move {
            let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
            clarity(&args).await
        }
    };
    for (key, says) in [
        (None, "no data key was given"),
        (Some(b.as_path()), "the data key given does not open it"),
    ] {
        let out = restore(key).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("not a sound Clarity backup"), "{err}");
        assert!(err.contains(says), "{says:?} in {err}");
        assert!(!err.contains(KEY_A) && !err.contains(KEY_B), "{err}");
        assert!(!target.exists(), "nothing restored");
    }
    let out = restore(Some(&a)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits = found_in(&target, &needles("bk", &email));
    assert!(hits.is_empty(), "restored in clear: {hits:#?}");
    let restored = spawn_in(tempfile::tempdir().unwrap(), |c| {
        c.store.data_dir = target.clone();
        c.store.key.data_key_file = Some(a.clone());
    })
    .await;
    assert_eq!(stored_ids(&restored, &u.access).await, before);
}
