//! The layers: no module below the HTTP/WebSocket edge may use axum (issue 17). `http/`,
//! `ws/`, `server/`, `app.rs` and `error.rs` are the edge; everything listed here is below it
//! and must stay testable without a socket.

use std::path::{Path, PathBuf};

/// Source below the edge, relative to `src/`.
const BELOW_THE_EDGE: [&str; 11] = [
    "protocol",
    "streams",
    "bus",
    "window",
    "insights",
    "ingest.rs",
    "audit.rs",
    "store",
    "analytics",
    "scoring",
    "samples.rs",
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

#[test]
fn no_module_below_the_edge_uses_axum() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for part in BELOW_THE_EDGE {
        let path = src.join(part);
        assert!(
            path.exists(),
            "{} is gone: update this list",
            path.display()
        );
        rust_files(&path, &mut files);
    }
    assert!(files.len() > 20, "found the sources ({})", files.len());
    let offenders: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let name = f.strip_prefix(&src).unwrap().display().to_string();
            text.lines()
                .enumerate()
                .filter(|(_, l)| l.contains("axum"))
                .map(|(i, l)| format!("src/{name}:{}: {}", i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "axum below the HTTP/WebSocket edge (convert at ws/ or http/ instead):\n{}",
        offenders.join("\n")
    );
}
