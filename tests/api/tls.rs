//! HTTPS and WSS from the real binary with a test CA (`--tls-cert`/`--tls-key`): REST and
//! WebSocket over TLS, HSTS, the per-address cap and the handshake deadline over TLS, a
//! certificate replaced on disk served to new connections without a restart (a broken
//! replacement keeping the one in use), and clear start-up errors for a bad pair.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SerialNumber,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::process::{Captured, start_logged};
use crate::common::*;

/// A throwaway CA that issues server certificates for 127.0.0.1.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key, PEM, and the certificate's DER (what a client sees).
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Clarity test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn issue(&self, common_name: &str, serial: u64) -> Leaf {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// Puts `leaf` at the paths the server watches, each file replaced in one rename (as cert
/// managers do), the key first.
fn install(leaf: &Leaf, cert: &Path, key: &Path) {
    for (path, text) in [(key, &leaf.key_pem), (cert, &leaf.cert_pem)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
}

/// A fresh client (so a fresh connection and handshake) trusting only the test CA.
fn https_client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .tls_info(true)
        .build()
        .unwrap()
}

/// The certificate the server presented on `resp`'s connection.
fn served_cert(resp: &reqwest::Response) -> Vec<u8> {
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a TLS response carries the peer certificate")
        .to_vec()
}

fn rustls_client(ca: &CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    ca: &CertificateDer<'static>,
    addr: SocketAddr,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    rustls_client(ca)
        .connect(ServerName::IpAddress(Ipv4Addr::LOCALHOST.into()), tcp)
        .await
}

/// A WebSocket over TLS (`wss://`), logged in, past its `welcome`; and the certificate the
/// server presented.
async fn wss(
    ca: &CertificateDer<'static>,
    addr: SocketAddr,
    token: &str,
) -> (WebSocketStream<TlsStream<TcpStream>>, Vec<u8>) {
    let tls = tls_connect(ca, addr).await.expect("TLS handshake");
    let served = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let mut req = format!("wss://{addr}/api/v1/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::client_async(req, tls)
        .await
        .expect("wss handshake");
    assert_eq!(resp.status(), 101);
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    (ws, served)
}

async fn next_json(ws: &mut WebSocketStream<TlsStream<TcpStream>>) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("connection open")
            .expect("frame");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            validate_server_frame(&v);
            return v;
        }
    }
}

/// Sends one frame of samples and returns its ack.
async fn ingest(ws: &mut WebSocketStream<TlsStream<TcpStream>>, seq: u64, id: &str) -> Value {
    let frame = json!({"type": "samples", "seq": seq, "samples": [hr(id, seq as i64, 60)]});
    ws.send(Message::text(frame.to_string())).await.unwrap();
    loop {
        let v = next_json(ws).await;
        if v["type"] == "ack" {
            return v;
        }
    }
}

/// Waits (bounded) for a log line containing `needle`.
async fn logged(log: &Captured, needle: &str) {
    for _ in 0..300 {
        if log.lock().unwrap().iter().any(|l| l.contains(needle)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no log line with {needle:?}:\n{}",
        log.lock().unwrap().join("\n")
    );
}

struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn files(leaf: &Leaf) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    install(leaf, &cert, &key);
    Files {
        _dir: dir,
        cert,
        key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_serve_a_certificate_replaced_on_disk_without_a_restart() {
    let ca = TestCa::new();
    let first = ca.issue("clarity-one", 1);
    let f = files(&first);
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr, log) = start_logged(
        &[
            "--tls-cert",
            f.cert.to_str().unwrap(),
            "--tls-key",
            f.key.to_str().unwrap(),
            "--tls-reload-secs",
            "1",
        ],
        data.path(),
        &[],
        "info",
        "text",
    )
    .await;
    let base = format!("https://{addr}");

    // REST over HTTPS, with HSTS; the account made here logs in for the WebSocket.
    let http = https_client(&ca.pem());
    let email = "tls@example.com";
    let resp = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(served_cert(&resp), first.der.to_vec());
    assert_eq!(
        resp.headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap()),
        Some("max-age=31536000")
    );
    let resp = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    // Plain HTTP on the TLS port gets no answer.
    assert!(
        reqwest::get(format!("http://{addr}/api/health"))
            .await
            .is_err()
    );

    // WSS: ingest and ack.
    let ca_der = ca.issuer.der().clone();
    let (mut old_ws, served) = wss(&ca_der, addr, &token).await;
    assert_eq!(served, first.der.to_vec());
    assert_eq!(ingest(&mut old_ws, 0, "t0").await["accepted"], 1);

    // A new certificate (another key, serial and name) written over the files.
    let second = ca.issue("clarity-two", 2);
    install(&second, &f.cert, &f.key);
    logged(&log, "TLS certificate reloaded").await;
    let resp = https_client(&ca.pem())
        .get(format!("{base}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        served_cert(&resp) == second.der.to_vec(),
        "a new HTTPS connection gets the certificate now on disk"
    );
    let (mut new_ws, served) = wss(&ca_der, addr, &token).await;
    assert!(
        served == second.der.to_vec(),
        "a new WSS connection gets the certificate now on disk"
    );
    assert_eq!(ingest(&mut new_ws, 1, "t1").await["accepted"], 1);
    // The connection opened before the swap goes on with its own session.
    assert_eq!(ingest(&mut old_ws, 2, "t2").await["accepted"], 1);

    // curl, as an operator would check it.
    let ca_file = f.cert.with_file_name("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(&ca_file)
        .arg(format!("{base}/api/health"))
        .output()
        .await;
    match out {
        Ok(out) => {
            let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(headers.starts_with("http/1.1 200"), "{headers}");
            assert!(headers.contains("strict-transport-security: max-age=31536000"));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("curl: {e}"),
    }

    // A broken replacement is refused and logged; the certificate in use stays.
    std::fs::write(&f.cert, "not a certificate").unwrap();
    logged(&log, "TLS certificate not reloaded").await;
    let resp = https_client(&ca.pem())
        .get(format!("{base}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(served_cert(&resp), second.der.to_vec());
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server keeps running"
    );
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_cap_and_the_handshake_deadline_hold_over_tls() {
    let ca = TestCa::new();
    let leaf = ca.issue("clarity", 1);
    let f = files(&leaf);
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr, _log) = start_logged(
        &[
            "--tls-cert",
            f.cert.to_str().unwrap(),
            "--tls-key",
            f.key.to_str().unwrap(),
            "--max-connections-per-ip",
            "1",
            "--handshake-timeout-ms",
            "500",
        ],
        data.path(),
        &[],
        "info",
        "text",
    )
    .await;

    // A client that connects and never starts TLS is closed at the deadline.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buf))
        .await
        .expect("closed at the handshake deadline, not held");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    drop(silent);

    // One open TLS connection (a client's kept-alive one) uses the address's only slot: the
    // next is answered 429 over TLS, with the JSON error. The closed connection's slot comes
    // back just after it closes, hence the bounded retry for the holder.
    let holder = https_client(&ca.pem());
    let mut held = false;
    for _ in 0..50 {
        let resp = holder
            .get(format!("https://{addr}/api/health"))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::OK {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(held, "the slot of the timed-out connection is given back");
    // The refusal is written as soon as TLS is up, before any request (as on plain HTTP).
    let mut refused = tls_connect(&ca.issuer.der().clone(), addr).await.unwrap();
    let mut sent = String::new();
    tokio::time::timeout(Duration::from_secs(10), refused.read_to_string(&mut sent))
        .await
        .expect("answered and closed")
        .unwrap();
    assert!(sent.starts_with("HTTP/1.1 429"), "{sent}");
    let body: Value = serde_json::from_str(sent.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections");
    drop(holder);
    let _ = child.kill().await;
}

async fn start_fails(args: &[&std::ffi::OsStr]) -> String {
    let data = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
        .args(args)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("CLARITY_TLS_CERT")
        .env_remove("CLARITY_TLS_KEY")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("the start fails at once, not serves")
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_bad_certificate_or_key_fails_the_start_with_a_message_naming_it() {
    let ca = TestCa::new();
    let good = ca.issue("clarity", 1);
    let other = ca.issue("other", 2);
    let f = files(&good);
    let dir = f.cert.parent().unwrap().to_owned();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "hello").unwrap();
    let other_key = dir.join("other-key.pem");
    std::fs::write(&other_key, &other.key_pem).unwrap();

    let err = start_fails(&[
        "--tls-cert".as_ref(),
        garbage.as_os_str(),
        "--tls-key".as_ref(),
        f.key.as_os_str(),
    ])
    .await;
    assert!(
        err.contains("--tls-cert")
            && err.contains("garbage.pem")
            && err.contains("no PEM certificate"),
        "{err}"
    );

    let err = start_fails(&[
        "--tls-cert".as_ref(),
        f.cert.as_os_str(),
        "--tls-key".as_ref(),
        garbage.as_os_str(),
    ])
    .await;
    assert!(
        err.contains("--tls-key") && err.contains("no PEM private key"),
        "{err}"
    );

    let err = start_fails(&[
        "--tls-cert".as_ref(),
        f.cert.as_os_str(),
        "--tls-key".as_ref(),
        other_key.as_os_str(),
    ])
    .await;
    assert!(
        err.contains("other-key.pem is not the key of the certificate"),
        "{err}"
    );

    let missing = dir.join("missing.pem");
    let err = start_fails(&[
        "--tls-cert".as_ref(),
        missing.as_os_str(),
        "--tls-key".as_ref(),
        f.key.as_os_str(),
    ])
    .await;
    assert!(
        err.contains("missing.pem") && err.contains("cannot read"),
        "{err}"
    );

    let err = start_fails(&["--tls-cert".as_ref(), f.cert.as_os_str()]).await;
    assert!(err.contains("--tls-key"), "{err}");
}
