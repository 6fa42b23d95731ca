//! The layers (issue 17): no module below the HTTP/WebSocket edge may use axum, nor name
//! the application object (`App`, `AppState`). For axum, `http/`, `ws/`, `server/`, `app.rs`
//! and `error.rs` are the edge and everything listed here is below it, so it stays testable
//! without a socket; for the app, see [`APP_EDGE`].

use std::path::{Path, PathBuf};

/// Source below the edge, relative to `src/`.
const BELOW_THE_EDGE: [&str; 12] = [
    "pipeline.rs",
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

/// The edge for the application object: the only places that may name `App` or `AppState`
/// (relative to `src/`). Everything else gets narrow handles (audit log, fan-out, window
/// service, ingest, pipeline, subscriptions) and can be built and tested without the app.
const APP_EDGE: [&str; 6] = ["http", "ws", "server", "app.rs", "main.rs", "cli.rs"];

#[test]
fn no_module_below_the_edge_names_the_app() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for part in APP_EDGE {
        assert!(
            src.join(part).exists(),
            "src/{part} is gone: update this list"
        );
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !APP_EDGE.contains(&name.as_str()) {
            rust_files(&path, &mut files);
        }
    }
    assert!(files.len() > 40, "found the sources ({})", files.len());
    let offenders: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let name = f.strip_prefix(&src).unwrap().display().to_string();
            text.lines()
                .enumerate()
                .filter(|(_, l)| {
                    l.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|word| word == "App" || word == "AppState")
                })
                .map(|(i, l)| format!("src/{name}:{}: {}", i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "App below the edge (pass the narrow handle the code uses instead):\n{}",
        offenders.join("\n")
    );
}
