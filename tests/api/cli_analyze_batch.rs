//! `clarity analyze` on many inputs (a directory of CSVs, an NDJSON of user-weeks) through the
//! real binary: one line per input in input order, each exactly what the single-file
//! command prints for it; a malformed input is an error line naming it, never a stop.

use std::fmt::Write as _;
use std::process::Output;

use serde_json::{Value, json};

fn clarity(args: &[&std::ffi::OsStr]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
        .arg("analyze")
        .args(args)
        .output()
        .expect("clarity runs")
}

/// A week of counts: a daily rhythm that differs per user, a few missing minutes.
fn week(user: u32) -> Vec<Option<f64>> {
    (0..10_080u32)
        .map(|m| {
            if (m + user * 37).is_multiple_of(997) {
                return None;
            }
            let hour = f64::from((m / 60 + user) % 24);
            let awake = (7.0..23.0).contains(&hour);
            let base = if awake { 300.0 } else { 5.0 };
            Some((base + f64::from((m * 7919 + user * 104_729) % 97)).round())
        })
        .collect()
}

const START: &str = "2026-11-02T00:00:00Z";

fn csv(counts: &[Option<f64>]) -> String {
    let start = chrono::DateTime::parse_from_rfc3339(START).unwrap();
    let mut out = String::from("timestamp_utc_iso8601,activity_count\n");
    for (i, c) in counts.iter().enumerate() {
        let t = (start + chrono::Duration::minutes(i as i64))
            .to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match c {
            Some(c) => writeln!(out, "{t},{c}").unwrap(),
            None => writeln!(out, "{t},").unwrap(),
        }
    }
    out
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn many_inputs_give_one_line_each_equal_to_the_single_file_result() {
    let dir = tempfile::tempdir().unwrap();
    let csvs = dir.path().join("weeks");
    std::fs::create_dir(&csvs).unwrap();
    let mut ndjson = String::new();
    let mut single = Vec::new();
    for user in 0..5 {
        let counts = week(user);
        let file = csvs.join(format!("user{user}.csv"));
        std::fs::write(&file, csv(&counts)).unwrap();
        let out = clarity(&["--input".as_ref(), file.as_os_str()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        single.push(serde_json::from_slice::<Value>(&out.stdout).unwrap());
        writeln!(
            ndjson,
            "{}",
            json!({"id": format!("u{user}"), "start": START, "counts": counts})
        )
        .unwrap();
        if user == 1 {
            // Malformed inputs in between: errors naming their line, the rest goes on.
            ndjson.push_str("not json\n\n");
            writeln!(
                ndjson,
                "{}",
                json!({"id": "neg", "start": START, "counts": [1, -3]})
            )
            .unwrap();
        }
    }
    std::fs::write(
        csvs.join("broken.csv"),
        "timestamp_utc_iso8601,activity_count\nyesterday,3\n",
    )
    .unwrap();
    let batch = dir.path().join("weeks.ndjson");
    std::fs::write(&batch, &ndjson).unwrap();

    let out = clarity(&[
        "--batch".as_ref(),
        batch.as_os_str(),
        "--jobs".as_ref(),
        "2".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2), "a malformed input is exit 2");
    let got = lines(&out);
    let ids: Vec<Value> = got.iter().map(|l| l["id"].clone()).collect();
    assert_eq!(
        ids,
        [
            json!("u0"),
            json!("u1"),
            Value::Null,
            json!("neg"),
            json!("u2"),
            json!("u3"),
            json!("u4")
        ]
    );
    assert!(
        got[2]["error"]
            .as_str()
            .unwrap()
            .starts_with("line 3: not a user-week"),
        "{}",
        got[2]
    );
    assert!(
        got[3]["error"].as_str().unwrap().starts_with("line 5: "),
        "{}",
        got[3]
    );
    let results: Vec<&Value> = got.iter().filter_map(|l| l.get("result")).collect();
    assert_eq!(results, single.iter().collect::<Vec<_>>());

    let out = clarity(&["--input".as_ref(), csvs.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let got = lines(&out);
    let ids: Vec<&str> = got.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "broken.csv",
            "user0.csv",
            "user1.csv",
            "user2.csv",
            "user3.csv",
            "user4.csv"
        ]
    );
    assert!(
        got[0]["error"].as_str().unwrap().starts_with("line 2: "),
        "{}",
        got[0]
    );
    let results: Vec<&Value> = got[1..].iter().map(|l| &l["result"]).collect();
    assert_eq!(results, single.iter().collect::<Vec<_>>());

    // All good: exit 0.
    std::fs::remove_file(csvs.join("broken.csv")).unwrap();
    let out = clarity(&[
        "--input".as_ref(),
        csvs.as_os_str(),
        "--jobs".as_ref(),
        "3".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&out).len(), 5);
}
