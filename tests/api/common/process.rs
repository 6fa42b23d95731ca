//! The real `clarity` binary as a child process (crash, restart and multi-node tests).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{PASSWORD, into_json};

/// Starts the real binary with `args`, an ephemeral port, `dir` as data folder and `envs`.
pub async fn start_binary(args: &[&str], dir: &Path, envs: &[(&str, &str)]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clarity"))
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--log", "info", "--data-dir"])
        .arg(dir)
        .env_remove("CLARITY_JWT_SECRET")
        .envs(envs.iter().copied())
        .env("CLARITY_LOG_FORMAT", "text")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start clarity");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                return rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        }
        panic!("server exited before listening");
    })
    .await
    .expect("server listens within 30 s");
    // Keep draining the log so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

pub async fn login(http: &reqwest::Client, addr: SocketAddr, email: &str) -> String {
    let resp = http
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(resp).await;
    assert!(status.is_success(), "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}
