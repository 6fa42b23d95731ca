//! The CLI's start-up errors and warnings through the real binary: each names what to set.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use tokio::process::Command;

/// A loopback endpoint nothing listens on.
fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// `clarity ARGS` with an empty environment (PATH aside) plus `env`, HOME in `dir`.
async fn clarity(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clarity"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .envs(env.iter().copied())
        .current_dir(dir)
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("clarity exits within 60 s")
        .expect("clarity runs")
}

#[tokio::test]
async fn dynamodb_without_credentials_says_in_one_line_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = dead_endpoint();
    for cmd in ["migrate", "serve"] {
        let mut args = vec![cmd, "--store", "dynamodb", "--dynamodb-endpoint", &endpoint];
        if cmd == "serve" {
            let secret = "0123456789abcdef0123456789abcdef";
            args.extend(["--listen", "127.0.0.1:0", "--jwt-secret", secret]);
        }
        let out = clarity(&args, &[], dir.path()).await;
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cmd}: {log}");
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
            assert!(log.contains(name), "{cmd} names {name}: {log}");
        }
        assert!(
            log.contains("DynamoDB Local any values work"),
            "{cmd}: {log}"
        );
        assert!(
            !log.contains("IMDS"),
            "{cmd}: no provider chain dump: {log}"
        );
        assert!(
            log.lines().count() <= 3 && log.len() < 1500,
            "{cmd}: a short message, not kilobytes ({} bytes): {log}",
            log.len()
        );
    }
}

#[tokio::test]
async fn serve_on_dynamodb_without_a_jwt_secret_warns_that_nodes_will_not_share_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = dead_endpoint();
    let aws = [
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
        ("CLARITY_STORE_TIMEOUT_MS", "500"),
    ];
    let serve = |extra: &[&'static str]| -> Vec<String> {
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "dynamodb",
            "--dynamodb-endpoint",
            &endpoint,
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect()
    };
    let run = |args: Vec<String>| {
        let dir = dir.path().to_owned();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            clarity(&args, &aws, &dir).await
        }
    };
    // The endpoint is dead, so the server stops after its start-up checks either way.
    let out = run(serve(&[])).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("WARN") && log.contains("--jwt-secret") && log.contains("other nodes"),
        "{log}"
    );
    let secret = "0123456789abcdef0123456789abcdef";
    let out = run(serve(&["--jwt-secret", secret])).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains("other nodes"),
        "no warning with a secret: {log}"
    );
}

#[tokio::test]
async fn score_without_onnx_runtime_names_every_way_to_configure_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = clarity(
        &["score", "--model", "models/pat-s", "--input", "week.csv"],
        &[],
        dir.path(),
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for name in [
        "--onnxruntime-lib",
        "CLARITY_ONNXRUNTIME_LIB",
        "ORT_DYLIB_PATH",
    ] {
        assert!(err.contains(name), "names {name}: {err}");
    }
}

#[tokio::test]
async fn migrate_help_lists_only_the_flags_migrate_uses() {
    let dir = tempfile::tempdir().unwrap();
    let out = clarity(&["migrate", "--help"], &[], dir.path()).await;
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--store",
        "--data-dir",
        "--dynamodb-endpoint",
        "--dynamodb-table-prefix",
        "--log",
    ] {
        assert!(help.contains(flag), "lists {flag}: {help}");
    }
    for flag in [
        "--listen",
        "--jwt-secret",
        "--gemini-api-key",
        "--max-frame-bytes",
        "--pat-model",
        "--allowed-origins",
    ] {
        assert!(!help.contains(flag), "does not list {flag}: {help}");
    }
    // The serve help still has them all.
    let out = clarity(&["serve", "--help"], &[], dir.path()).await;
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--listen") && help.contains("--gemini-api-key"));
}
