//! `clarity backup --store dynamodb` / `clarity restore --store dynamodb` through the real
//! binary against DynamoDB Local: a server's table exported to a folder in the format of
//! DynamoDB's export to S3, restored into a new table, served by a second server; a damaged
//! backup is refused naming its file and line, and nothing is written.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::backend::Backend;
use crate::common::*;

fn fresh_prefix() -> String {
    format!("t{}-", &Uuid::new_v4().simple().to_string()[..12])
}

/// `clarity ARGS` with the DynamoDB flags of `endpoint` and `prefix` in its environment.
async fn clarity(endpoint: &str, prefix: &str, args: &[&std::ffi::OsStr]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
        .args(args)
        .env_remove("CLARITY_DATA_DIR")
        .env("CLARITY_STORE", "dynamodb")
        .env("CLARITY_DYNAMODB_ENDPOINT", endpoint)
        .env("CLARITY_DYNAMODB_TABLE_PREFIX", prefix)
        .output()
        .await
        .expect("clarity runs")
}

async fn backup(endpoint: &str, prefix: &str, out: &Path, segments: &str) -> Value {
    let out = clarity(
        endpoint,
        prefix,
        &[
            "backup".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            "--segments".as_ref(),
            segments.as_ref(),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "backup failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn restore(endpoint: &str, prefix: &str, from: &Path) -> Output {
    clarity(
        endpoint,
        prefix,
        &["restore".as_ref(), "--from".as_ref(), from.as_os_str()],
    )
    .await
}

/// Samples of yesterday's 06:00 hour, minute `m` (activity and heart rate).
fn minute_samples(from: i64, to: i64) -> Vec<Value> {
    let t0 = yesterday() + chrono::Duration::hours(6);
    (from..to)
        .flat_map(|m| {
            let start = (t0 + chrono::Duration::minutes(m)).to_rfc3339();
            [
                json!({"id": format!("a{m}"), "kind": "activity_count", "start": start, "value": 40 + m}),
                json!({"id": format!("h{m}"), "kind": "heart_rate", "start": start, "value": 60 + m % 20}),
            ]
        })
        .collect()
}

/// Every change of the caller from 0, and the last `next_token`.
async fn feed(app: &TestApp, token: &str) -> (Vec<Value>, String) {
    let mut out = Vec::new();
    let mut since = "0".to_owned();
    loop {
        let (status, body) = app
            .get(
                &format!("/api/v1/changes?since={since}&limit=500"),
                Some(token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        out.extend(body["changes"].as_array().unwrap().iter().cloned());
        since = body["next_token"].as_str().unwrap().to_owned();
        if body["more"] != true {
            return (out, since);
        }
    }
}

/// What a user sees of their account over REST.
async fn view(app: &TestApp, token: &str) -> Vec<Value> {
    let mut out = vec![Value::Array(app.all_samples(token, "").await)];
    for path in [
        "/api/v1/analyses?limit=500",
        "/api/v1/insights?limit=500",
        "/api/v1/shares",
    ] {
        let (status, body) = app.get(path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        out.push(body);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_backed_up_and_restored_into_a_new_table_serves_the_same_history() {
    let Some(backend) = Backend::dynamodb() else {
        return;
    };
    let Backend::Dynamo { endpoint, prefix } = backend.clone() else {
        unreachable!()
    };
    let a = spawn_on(&backend, |_| {}).await;
    let owner = a.user().await;
    let viewer = a.user().await;

    // History over WebSocket, every frame acked: inserts, an update by version, a delete,
    // then an analysis and its insight.
    let mut ws = a.ws(&owner.access).await;
    ws.welcome().await;
    ws.send(&json!({"type": "samples", "seq": 1, "samples": minute_samples(0, 20)}))
        .await;
    assert_eq!(ws.recv_type("ack").await["accepted"], 40);
    ws.send(&json!({"type": "samples", "seq": 2, "samples": minute_samples(20, 30)}))
        .await;
    assert_eq!(ws.recv_type("ack").await["accepted"], 20);
    let mut updated = minute_samples(3, 4)[0].clone();
    updated["value"] = json!(7);
    updated["version"] = json!(2);
    ws.send(&json!({"type": "samples", "seq": 3, "samples": [updated]}))
        .await;
    assert_eq!(ws.recv_type("ack").await["updated"], 1);
    ws.send(&json!({"type": "delete", "seq": 4, "ids": ["h5"]}))
        .await;
    assert_eq!(ws.recv_type("ack").await["deleted"], 1);
    ws.send(&json!({"type": "analyze"})).await;
    ws.recv_type("insight").await;
    let (status, body) = a
        .post(
            "/api/v1/shares",
            &json!({"grantee_email": viewer.email, "scope": "insights"}),
            Some(&owner.access),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let before = view(&a, &owner.access).await;
    let viewer_before = view(&a, &viewer.access).await;
    let (changes_before, token_a) = feed(&a, &owner.access).await;
    assert!(
        before[1]["analyses"]
            .as_array()
            .is_some_and(|v| !v.is_empty()),
        "an analysis exists: {}",
        before[1]
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backup");
    let report = backup(&endpoint, &prefix, &dir, "4").await;
    assert_eq!(report["table"], format!("{prefix}clarity"), "{report}");
    assert_eq!(report["files"], 4, "{report}");
    assert_summary_is_aws_shaped(&dir, report["items"].as_u64().unwrap());

    let prefix_b = fresh_prefix();
    let out = restore(&endpoint, &prefix_b, &dir).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every item but the epoch.
    assert_eq!(restored["skipped"], 1, "{restored}");
    assert_eq!(
        restored["items"].as_u64().unwrap() + 1,
        report["items"].as_u64().unwrap(),
        "{restored} {report}"
    );

    let b = spawn_on(
        &Backend::Dynamo {
            endpoint: endpoint.clone(),
            prefix: prefix_b.clone(),
        },
        |_| {},
    )
    .await;
    // The account restored: its password signs in on B.
    let (access_b, _) = b.login(&owner.email).await;
    assert_eq!(view(&b, &access_b).await, before);
    let (viewer_b, _) = b.login(&viewer.email).await;
    assert_eq!(view(&b, &viewer_b).await, viewer_before);
    // The same change history, seqs and versions included, replayed from 0.
    let (changes_after, _) = feed(&b, &access_b).await;
    assert_eq!(changes_after, changes_before);
    let h3 = before[0]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "a3")
        .unwrap();
    assert_eq!(
        (h3["value"].as_f64(), h3["version"].as_i64()),
        (Some(7.0), Some(2))
    );
    // A refresh token issued by A still rotates on B (its family is in the table).
    let (status, body) = b
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": owner.refresh}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A position handed out by A is not followed on B: B has a new epoch, and a client must
    // resync rather than trust offsets of a history that may diverge after the backup.
    let (status, body) = b
        .get(&format!("/api/v1/changes?since={token_a}"), Some(&access_b))
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"]["code"], "resync_required", "{body}");
    // B takes new writes on top of the restored history.
    let mut ws = b.ws(&access_b).await;
    ws.welcome().await;
    ws.send(&json!({"type": "samples", "seq": 1, "samples": minute_samples(30, 31)}))
        .await;
    assert_eq!(ws.recv_type("ack").await["accepted"], 2);

    // A second restore into B, which now holds items, is refused and changes nothing.
    let out = restore(&endpoint, &prefix_b, &dir).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{prefix_b}clarity already holds items")),
        "{stderr}"
    );
    assert_eq!(
        b.all_samples(&access_b, "").await.len(),
        before[0].as_array().unwrap().len() + 2
    );
}

/// The folder is laid out as DynamoDB's export to S3: manifests and gzip NDJSON
/// `{"Item":{...}}` lines, as many as the manifests say.
fn assert_summary_is_aws_shaped(dir: &Path, items: u64) {
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest-summary.json")).unwrap()).unwrap();
    assert_eq!(summary["outputFormat"], "DYNAMODB_JSON", "{summary}");
    assert_eq!(summary["itemCount"], items, "{summary}");
    assert_eq!(
        summary["keySchema"],
        json!([{"attributeName": "pk", "keyType": "HASH"}, {"attributeName": "sk", "keyType": "RANGE"}])
    );
    let mut lines = 0;
    for entry in std::fs::read_to_string(dir.join("manifest-files.json"))
        .unwrap()
        .lines()
    {
        let entry: Value = serde_json::from_str(entry).unwrap();
        let path = dir.join(entry["dataFileS3Key"].as_str().unwrap());
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
        for line in std::io::BufReader::new(gz).lines() {
            let line: Value = serde_json::from_str(&line.unwrap()).unwrap();
            let item = line["Item"].as_object().unwrap();
            assert!(
                item["pk"]["S"].is_string() && item["sk"]["S"].is_string(),
                "{line}"
            );
            lines += 1;
        }
    }
    assert_eq!(lines, items);
}

/// A copy of the backup folder `dir` whose only data file is `transform`ed; the manifest
/// loses its SHA-256 when `keep_checksum` is false (as an AWS export has none).
fn damaged(
    dir: &Path,
    name: &str,
    keep_checksum: bool,
    transform: impl FnOnce(Vec<u8>) -> Vec<u8>,
) -> PathBuf {
    let copy = dir.with_file_name(name);
    std::fs::create_dir_all(copy.join("data")).unwrap();
    std::fs::copy(
        dir.join("manifest-summary.json"),
        copy.join("manifest-summary.json"),
    )
    .unwrap();
    let manifest = std::fs::read_to_string(dir.join("manifest-files.json")).unwrap();
    let mut entry: Value = serde_json::from_str(manifest.trim()).unwrap();
    if !keep_checksum {
        entry.as_object_mut().unwrap().remove("sha256Checksum");
    }
    std::fs::write(copy.join("manifest-files.json"), format!("{entry}\n")).unwrap();
    let key = entry["dataFileS3Key"].as_str().unwrap();
    let bytes = std::fs::read(dir.join(key)).unwrap();
    std::fs::write(copy.join(key), transform(bytes)).unwrap();
    copy
}

fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut s)
        .unwrap();
    s
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

fn replace_line(bytes: Vec<u8>, n: usize, with: Option<&str>) -> Vec<u8> {
    let text = gunzip(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    match with {
        Some(w) => lines[n - 1] = w,
        None => {
            lines.remove(n - 1);
        }
    }
    gzip(&(lines.join("\n") + "\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_backup_is_refused_naming_its_file_and_line_and_writes_nothing() {
    let Some(backend) = Backend::dynamodb() else {
        return;
    };
    let Backend::Dynamo { endpoint, prefix } = backend.clone() else {
        unreachable!()
    };
    let a = spawn_on(&backend, |_| {}).await;
    let u = a.user().await;
    let (status, body) = a
        .post(
            "/api/v1/health-data",
            &json!({"samples": minute_samples(0, 60)}),
            Some(&u.access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backup");
    backup(&endpoint, &prefix, &dir, "1").await;
    // The output is never overwritten.
    let out = clarity(
        &endpoint,
        &prefix,
        &["backup".as_ref(), "--out".as_ref(), dir.as_os_str()],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let file = "segment-0000-of-0001.json.gz";
    let cases: Vec<(PathBuf, String)> = vec![
        (
            damaged(&dir, "garbled", false, |b| {
                replace_line(b, 3, Some(r#"{"Item":{"pk":{"S":"x"}"#))
            }),
            format!("{file} line 3: not a JSON object"),
        ),
        (
            damaged(&dir, "bad-attribute", false, |b| {
                replace_line(b, 5, Some(r#"{"Item":{"pk":{"S":"x"},"sk":{"N":"ten"}}}"#))
            }),
            format!("{file} line 5: attribute sk: N must be a decimal number"),
        ),
        (
            damaged(&dir, "truncated", false, |b| b[..b.len() / 2].to_vec()),
            format!("{file} line "),
        ),
        (
            damaged(&dir, "short", false, |b| replace_line(b, 2, None)),
            format!("{file}: holds "),
        ),
        (
            damaged(&dir, "changed", true, |b| replace_line(b, 2, None)),
            format!("{file}: SHA-256 is "),
        ),
    ];
    let prefix_b = fresh_prefix();
    for (copy, want) in &cases {
        let out = restore(&endpoint, &prefix_b, copy).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{want}: {stderr}");
        assert!(stderr.contains("is not a sound backup"), "{stderr}");
        assert!(stderr.contains(want.as_str()), "want {want:?} in {stderr}");
    }
    let truncated =
        String::from_utf8_lossy(&restore(&endpoint, &prefix_b, &cases[2].0).await.stderr)
            .into_owned();
    assert!(
        truncated.contains("the file ends early or is damaged"),
        "{truncated}"
    );

    // Nothing was written: the intact backup still restores into that table name.
    let out = restore(&endpoint, &prefix_b, &dir).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = spawn_on(
        &Backend::Dynamo {
            endpoint,
            prefix: prefix_b,
        },
        |_| {},
    )
    .await;
    let (access, _) = b.login(&u.email).await;
    assert_eq!(
        b.all_samples(&access, "").await,
        a.all_samples(&u.access, "").await
    );
}
