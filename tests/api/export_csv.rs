//! `GET /api/v1/export/csv`: the activity minute series is exactly `clarity analyze --input`'s
//! format (the test feeds it to the real binary), and the long format has one row per sample.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::spawn_app;
use crate::export_fhir::{every_kind, get_text, upload};

#[tokio::test]
async fn the_activity_minutes_feed_clarity_analyze_and_the_long_format_has_every_sample() {
    let app = spawn_app().await;
    let user = app.user().await;
    let samples = every_kind();
    upload(&app, &user.access, &samples).await;

    let (status, ctype, text) = get_text(
        &app,
        "/api/v1/export/csv?kind=activity_count",
        &user.access,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(ctype, "text/csv; charset=utf-8");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp_utc_iso8601,activity_count"));
    let rows: Vec<&str> = lines.collect();
    let counts: Vec<&Value> = samples
        .iter()
        .filter(|s| s["kind"] == "activity_count")
        .collect();
    assert_eq!(rows.len(), counts.len());
    for (row, s) in rows.iter().zip(&counts) {
        let start = chrono::DateTime::parse_from_rfc3339(s["start"].as_str().unwrap()).unwrap();
        let utc = start
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        assert_eq!(*row, format!("{utc},{}", s["value"]));
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("minutes.csv");
    std::fs::write(&file, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
        .arg("analyze")
        .arg("--input")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert!(result.is_object(), "{result}");

    let (status, _, long) = get_text(&app, "/api/v1/export/csv", &user.access, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut lines = long.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("id,kind,start,end,value,unit,source,diastolic,activity,version"),
        "{header}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), samples.len());
    let bp = rows.iter().find(|r| r.starts_with("bp-1,")).unwrap();
    assert!(
        bp.contains(",120,mmHg,\"Omron \"\"Connect\"\", Inc\",80.5,"),
        "quoted source, diastolic: {bp}"
    );
    let sleep = rows.iter().find(|r| r.starts_with("sleep-1,")).unwrap();
    assert!(sleep.contains(",deep,,"), "stage by name, no unit: {sleep}");
}
