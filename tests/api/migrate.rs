//! `clarity migrate` through the real binary: idempotent table creation, and a clear refusal
//! to serve on a table that was never created.

use std::process::Output;

use tokio::process::Command;

use crate::common::Backend;

async fn clarity(args: &[&str], backend: &Backend, dir: &std::path::Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clarity"));
    cmd.args(args);
    if args[0] == "serve" {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd.arg("--data-dir")
        .arg(dir)
        .envs(backend.env())
        .env("CLARITY_JWT_SECRET", crate::common::JWT_SECRET)
        .env("CLARITY_LOG_FORMAT", "text")
        .kill_on_drop(true)
        .output()
        .await
        .expect("clarity runs")
}

#[tokio::test]
async fn migrate_creates_the_table_once_and_serve_refuses_a_missing_one() {
    let Some(backend) = Backend::dynamodb() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let serve = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        clarity(&["serve"], &backend, dir.path()),
    )
    .await
    .expect("serve gives up at once on a missing table");
    assert!(!serve.status.success());
    let log = String::from_utf8_lossy(&serve.stderr);
    assert!(log.contains("clarity migrate"), "{log}");

    for _ in 0..2 {
        let out = clarity(&["migrate"], &backend, dir.path()).await;
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
    }
    let config = backend.config(dir.path());
    let store = clarity::app::open_store(&config)
        .await
        .expect("table is usable");
    store.ping().await.expect("ping");
}
