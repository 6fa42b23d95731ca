//! The layers (issue 17). The domain is the `clarity-core` crate (crates/clarity-core): it
//! cannot name `App`, `http::` or `ws::` because it does not depend on this crate, and it
//! cannot use axum or utoipa because its manifest does not list them; the compiler enforces
//! both, and [`the_core_crate_depends_on_no_http_framework`] checks the resolved dependency
//! graph (`cargo tree -p clarity-core -e normal`) so that no new dependency brings them in
//! through the back door. In this crate, the modules that are not the edge ([`EDGE`]:
//! configuration, telemetry, the metrics exporter) follow the same rules, and the line checks
//! below cover them and the core's sources alike, so the messages say what to do instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The edge, relative to `src/`: the only places that may use axum and utoipa, name `App` or
/// `AppState`, or use `http::` and `ws::`. Everything else gets narrow handles (audit log,
/// fan-out, window service, ingest, pipeline, subscriptions) and can be built and tested
/// without the app.
const EDGE: [&str; 7] = [
    "http", "ws", "server", "app.rs", "main.rs", "cli.rs", "lib.rs",
];

/// Packages the core must not reach, directly or through another dependency.
const NOT_IN_CORE: [&str; 6] = [
    "axum",
    "utoipa",
    "utoipa-axum",
    "tungstenite",
    "clap",
    "metrics-exporter-prometheus",
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

/// Every source file below the edge: all of the core crate, and this crate's `src/` outside
/// [`EDGE`]. Returns the workspace root (names are shown relative to it) and the files.
fn below_the_edge() -> (PathBuf, Vec<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).to_owned();
    let src = root.join("src");
    for part in EDGE {
        assert!(
            src.join(part).exists(),
            "src/{part} is gone: update this list"
        );
    }
    let mut files = Vec::new();
    rust_files(&root.join("crates/clarity-core/src"), &mut files);
    assert!(
        files.len() > 40,
        "found the core's sources ({})",
        files.len()
    );
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !EDGE.contains(&name.as_str()) {
            rust_files(&path, &mut files);
        }
    }
    (root, files)
}

#[test]
fn the_core_crate_depends_on_no_http_framework() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "tree",
            "-p",
            "clarity-core",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--offline", "--format", "{p}"])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let packages: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        packages.contains(&"clarity-core") && packages.contains(&"tokio"),
        "read the tree:\n{tree}"
    );
    let found: Vec<&&str> = NOT_IN_CORE
        .iter()
        .filter(|p| packages.contains(p))
        .collect();
    assert!(
        found.is_empty(),
        "clarity-core reaches {found:?} (`cargo tree -p clarity-core -e normal -i <name>` shows \
         through what); keep the HTTP framework, OpenAPI and the command line in `clarity`"
    );
    assert!(
        !packages.contains(&"clarity"),
        "clarity-core depends on the server crate"
    );
}

/// `<file>:<line>: <text>` for each line of `files` that `bad` picks.
fn offending_lines(src: &Path, files: &[PathBuf], bad: impl Fn(&str) -> bool) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let name = f.strip_prefix(src).unwrap().display().to_string();
            text.lines()
                .enumerate()
                .filter(|(_, l)| bad(l))
                .map(|(i, l)| format!("{name}:{}: {}", i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn no_module_below_the_edge_uses_axum() {
    let (src, files) = below_the_edge();
    let offenders = offending_lines(&src, &files, |l| l.contains("axum"));
    assert!(
        offenders.is_empty(),
        "axum below the HTTP/WebSocket edge (convert at ws/ or http/ instead):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn no_module_below_the_edge_names_the_app() {
    let (src, files) = below_the_edge();
    let offenders = offending_lines(&src, &files, |l| {
        words(l).any(|word| word == "App" || word == "AppState")
    });
    assert!(
        offenders.is_empty(),
        "App below the edge (pass the narrow handle the code uses instead):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn no_module_below_the_edge_uses_utoipa() {
    let (src, files) = below_the_edge();
    let offenders = offending_lines(&src, &files, |l| l.contains("utoipa"));
    assert!(
        offenders.is_empty(),
        "utoipa below the edge (describe the type in src/http/schemas.rs instead):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn no_module_below_the_edge_reaches_into_http_or_ws() {
    let (src, files) = below_the_edge();
    // Whole files, not lines: a `use crate::{…}` group runs over several lines.
    let offenders: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let name = f.strip_prefix(&src).unwrap().display().to_string();
            edge_paths(&std::fs::read_to_string(f).unwrap())
                .into_iter()
                .map(move |p| format!("{name}: {p}"))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "a module below the edge uses http/ or ws/ (move what it needs below the edge):\n{}",
        offenders.join("\n")
    );
}

/// The checker itself: the ways a path can name `http` or `ws`.
#[test]
fn edge_paths_sees_every_spelling() {
    for bad in [
        "use crate::ws::hub::Hub;",
        "    pub own: Option<crate::ws::hub::Explicit>,",
        "#[schema(schema_with = crate::http::openapi::sample_value)]",
        "use crate :: http :: error :: ApiError;",
        "use crate::{samples::Kind, ws::rate};",
        "use crate::{http};",
        "use crate::{\n    store::{DocKind, Store},\n    http::error::ApiError,\n};",
        "use super::super::ws::rate::TokenBucket;",
        "use super::super::super::http;",
        "let b = clarity::ws::rate::TokenBucket::new(1, 1);",
    ] {
        assert!(!edge_paths(bad).is_empty(), "missed: {bad}");
    }
    for fine in [
        "use crate::streams::hub::Hub;",
        "use crate::{samples::Kind, rate::TokenBucket};",
        "use crate::{\n    store::{http_like, ws_like},\n    rate,\n};",
        "//! Converted at the edge (ws/ and http/), not here.",
        "let https = crate::config::http_timeout();",
        "use super::wsum;",
    ] {
        assert_eq!(
            edge_paths(fine),
            Vec::<String>::new(),
            "false alarm: {fine}"
        );
    }
}

/// The paths in `text` into the edge's modules: `crate::http…`, `crate::ws…`, `clarity::…`
/// the same, a `crate::{…}` group naming either, or `super::…::http`/`ws` (no module below
/// the edge has a child named `http` or `ws`, so a `super` chain that ends there climbs to
/// the crate root's).
fn edge_paths(text: &str) -> Vec<String> {
    // `crate :: http` and `{ ws, … }` are the same paths: drop spaces around the punctuation.
    let mut path = String::new();
    for word in text.split_whitespace() {
        let glued = path.ends_with([':', '{', ',']) || word.starts_with([':', '{', '}', ',']);
        if !path.is_empty() && !glued {
            path.push(' ');
        }
        path.push_str(word);
    }
    let edge = |item: &str| {
        let name = item
            .split([':', ',', '}', ';', '>', ')'])
            .next()
            .unwrap_or("");
        name == "http" || name == "ws"
    };
    let mut found = Vec::new();
    for root in ["crate::", "clarity::", "super::"] {
        for (at, _) in path.match_indices(root) {
            // Only a path's root counts: `foo::crate::` is not one.
            let before = path[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut rest = &path[at + root.len()..];
            while let Some(r) = rest.strip_prefix("super::") {
                rest = r;
            }
            let hit = match rest.strip_prefix('{') {
                Some(group) => top_level_items(group).into_iter().any(edge),
                None => edge(rest),
            };
            if hit {
                found.push(
                    path[at..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != ';')
                        .take(80)
                        .collect(),
                );
            }
        }
    }
    found
}

/// The items of a `{…}` group (after its `{`), split at its own commas, up to its `}`.
fn top_level_items(group: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
}
