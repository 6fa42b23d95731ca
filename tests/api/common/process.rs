//! The real `clarity` binary as a child process (crash, restart and multi-node tests).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{PASSWORD, into_json};

/// Starts the real binary with `args`, an ephemeral port, `dir` as data folder and `envs`.
pub async fn start_binary(args: &[&str], dir: &Path, envs: &[(&str, &str)]) -> (Child, SocketAddr) {
    let (child, addr, _) = spawn(args, dir, envs, "info", "text", false).await;
    (child, addr)
}

/// Every line the server wrote (stderr, where logs go, and stdout), as it arrives.
pub type Captured = Arc<Mutex<Vec<String>>>;

/// [`start_binary`] with `--log <level>` and `--log-format <format>`, keeping every line of
/// output (for tests that inspect the log).
pub async fn start_logged(
    args: &[&str],
    dir: &Path,
    envs: &[(&str, &str)],
    level: &str,
    format: &str,
) -> (Child, SocketAddr, Captured) {
    spawn(args, dir, envs, level, format, true).await
}

async fn spawn(
    args: &[&str],
    dir: &Path,
    envs: &[(&str, &str)],
    level: &str,
    format: &str,
    keep: bool,
) -> (Child, SocketAddr, Captured) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clarity"))
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--log", level, "--data-dir"])
        .arg(dir)
        .env_remove("CLARITY_JWT_SECRET")
        .env_remove("RUST_LOG")
        .envs(envs.iter().copied())
        .env("CLARITY_LOG_FORMAT", format)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start clarity");
    let captured: Captured = Arc::default();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if keep {
                captured.lock().unwrap().push(line.clone());
            }
            let after = line.split("listening on ").nth(1);
            if let Some(rest) = after.and_then(|r| {
                r.strip_prefix("http://")
                    .or_else(|| r.strip_prefix("https://"))
            }) {
                // Text (`... listening on http://ADDR`) or JSON (`..."listening on http://ADDR"...`);
                // `https://` with TLS.
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || ".:[]".contains(*c))
                    .collect();
                return addr.parse().unwrap();
            }
        }
        panic!("server exited before listening");
    })
    .await
    .expect("server listens within 30 s");
    // Keep draining the output so the child never blocks on a full pipe.
    // `CLARITY_TEST_CHILD_LOG=1` echoes it, for a failing test's server side.
    let echo = std::env::var_os("CLARITY_TEST_CHILD_LOG").is_some();
    let sink = captured.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if echo {
                eprintln!("[clarity] {line}");
            }
            if keep {
                sink.lock().unwrap().push(line);
            }
        }
    });
    let sink = captured.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stdout.next_line().await {
            if keep {
                sink.lock().unwrap().push(line);
            }
        }
    });
    (child, addr, captured)
}

/// Signs `email` up (with [`PASSWORD`]) on a server process and logs in: its access token.
pub async fn signup(http: &reqwest::Client, addr: SocketAddr, email: &str) -> String {
    let resp = http
        .post(format!("http://{addr}/api/v1/auth/signup"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(resp).await;
    assert_eq!(status, 201, "{body}");
    login(http, addr, email).await
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

/// Sends SIGTERM to a child started by [`start_binary`].
pub fn sigterm(child: &Child) {
    let pid = i32::try_from(child.id().expect("child still running")).unwrap();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}
