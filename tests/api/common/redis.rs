//! A real `redis-server` on a free loopback port for bus tests.
//!
//! The server binary comes from `CLARITY_TEST_REDIS_SERVER` or `PATH` (Debian's
//! `redis-server` package, which `.ci/run` installs); without one the bus tests are skipped
//! with a message, unless `CLARITY_TEST_REQUIRE_REDIS=1` (CI) makes that a failure.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub struct RedisServer {
    pub port: u16,
    bin: PathBuf,
    child: Option<Child>,
}

fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CLARITY_TEST_REDIS_SERVER") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
    })
}

impl RedisServer {
    /// A fresh server, or `None` (test skipped) when there is no redis-server.
    pub async fn start() -> Option<RedisServer> {
        let Some(bin) = binary() else {
            assert!(
                std::env::var_os("CLARITY_TEST_REQUIRE_REDIS").is_none(),
                "CLARITY_TEST_REQUIRE_REDIS is set but no redis-server was found \
                 (apt-get install redis-server, or set CLARITY_TEST_REDIS_SERVER)"
            );
            eprintln!("skipping: no redis-server on PATH (apt-get install redis-server)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer {
            port,
            bin,
            child: None,
        };
        server.restart().await;
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data is gone: it keeps nothing on disk).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Starts it (again) on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let child = Command::new(&self.bin)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not listen on {} within 5 s", self.port);
    }
}
