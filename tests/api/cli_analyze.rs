//! `clarity analyze` through the real binary: every golden case, every minute.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::analysis::{check_golden, golden_dir};

fn analyze(args: &[&std::ffi::OsStr]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
        .arg("analyze")
        .args(args)
        .output()
        .expect("clarity runs")
}

#[test]
fn every_golden_case_matches_the_references_minute_by_minute() {
    let Some(golden) = golden_dir() else { return };
    let out_dir = tempfile::tempdir().unwrap();
    for case in [
        "synth_clean_7d",
        "real_pyact_test_sample",
        "real_actilife_gt3xplus_day01",
    ] {
        let dir = golden.join(case);
        let per_minute = out_dir.path().join(format!("{case}.csv"));
        let out = analyze(&[
            "--input".as_ref(),
            dir.join("input.csv").as_os_str(),
            "--per-minute".as_ref(),
            per_minute.as_os_str(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        check_golden(case, &dir, &result);
        compare_minutes(case, &dir, &per_minute);
    }
}

fn compare_minutes(case: &str, dir: &Path, ours: &Path) {
    let reference = std::fs::read_to_string(dir.join("sleep_wake_per_minute.csv")).unwrap();
    let mut lines = reference.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (ck, sadeh) = (col("ck_actilife"), col("sadeh_actilife"));
    let ours = std::fs::read_to_string(ours).unwrap();
    let mut our_lines = ours.lines();
    assert_eq!(
        our_lines.next(),
        Some("timestamp_utc_iso8601,cole_kripke,sadeh")
    );
    let mut n = 0;
    for (r, o) in lines.zip(our_lines.by_ref()) {
        let r: Vec<&str> = r.split(',').collect();
        let o: Vec<&str> = o.split(',').collect();
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(o[0]).unwrap(),
            chrono::DateTime::parse_from_rfc3339(r[0]).unwrap(),
            "{case} line {n}"
        );
        assert_eq!((o[1], o[2]), (r[ck], r[sadeh]), "{case} minute {}", r[0]);
        n += 1;
    }
    assert_eq!(
        our_lines.next(),
        None,
        "{case}: as many minutes as the reference"
    );
    assert!(n > 1000);
}

#[test]
fn a_malformed_csv_is_exit_code_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(
        &path,
        "timestamp_utc_iso8601,activity_count\n2024-01-01T00:00:00Z,5\n2024-01-01T00:01:00Z,lots\n",
    )
    .unwrap();
    let out = analyze(&["--input".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert!(out.stdout.is_empty());

    let out = analyze(&[
        "--input".as_ref(),
        dir.path().join("missing.csv").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
