//! The command line surface: every flag of every command, its environment variable, default
//! and kind, against a checked-in snapshot (`tests/fixtures/cli-flags.txt`), so that moving
//! settings between structs cannot silently rename, drop or re-default one. Help headings and
//! texts are free to change; the snapshot leaves them out.
//!
//! Regenerate after a deliberate change: `CLARITY_UPDATE_SNAPSHOTS=1 cargo test --test api
//! cli_flags` (then review the diff of the fixture).

use std::collections::BTreeSet;
use std::time::Duration;

use clap::CommandFactory;
use clarity::config::Cli;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cli-flags.txt");

/// Serve flags without an environment variable or without a default, each with its reason.
/// Every other serve flag has both (the house rule).
const NO_DEFAULT: &[(&str, &str)] = &[
    (
        "jwt-secret",
        "a secret: unset generates a key kept in the data folder",
    ),
    (
        "gemini-api-key",
        "a secret: unset uses the local insight generator",
    ),
    ("dynamodb-endpoint", "unset: the AWS endpoint of the region"),
    ("node-id", "unset: a fresh random id per start"),
    ("pat-model", "unset: no PAT scoring"),
    ("onnxruntime-lib", "unset: falls back to ORT_DYLIB_PATH"),
    (
        "cognito-user-pool-id",
        "deployment-specific, required only with --auth cognito",
    ),
    (
        "cognito-client-id",
        "deployment-specific, required only with --auth cognito",
    ),
    ("cognito-region", "unset: derived from the pool id"),
    (
        "cognito-jwks-url",
        "unset: derived from the region and pool id",
    ),
    (
        "allowed-origins",
        "a list: unset is the empty list (any origin, no CORS)",
    ),
    ("admin-user-ids", "a list: unset is the empty list (nobody)"),
    (
        "tls-cert",
        "unset: plain HTTP (local use, behind a load balancer)",
    ),
    ("tls-key", "unset: plain HTTP (goes with --tls-cert)"),
    ("otlp-endpoint", "unset: no tracing"),
    (
        "archive",
        "unset: uploads are kept in the data dir's imports/",
    ),
    ("archive-endpoint", "unset: the AWS endpoint of the region"),
    ("data-key-file", "unset: a plain (unencrypted) SQLite store"),
    (
        "data-key",
        "a secret: unset uses --data-key-file, or a plain store",
    ),
    (
        "admin-emails",
        "removed (hidden): given at all, the server refuses to start",
    ),
];

/// `command --flag ENV default [attributes]`, one line per long flag of every command (the
/// bare `clarity` too: its flags are serve's), sorted; `-` where there is no env or default.
fn flag_lines() -> Vec<String> {
    let mut root = Cli::command();
    root.build();
    let mut lines = BTreeSet::new();
    let mut add = |cmd_name: &str, cmd: &clap::Command| {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let flag = match arg.get_long() {
                Some(l) => format!("--{l}"),
                None => format!("<{id}>"),
            };
            let env = arg
                .get_env()
                .map_or("-".to_owned(), |e| e.to_string_lossy().into_owned());
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let default = match defaults.as_slice() {
                [] => "-".to_owned(),
                [v] if v.is_empty() => "\"\"".to_owned(),
                vs => vs.join(","),
            };
            let mut attrs = Vec::new();
            if let Some(s) = arg.get_short() {
                attrs.push(format!("short=-{s}"));
            }
            if !arg.get_action().takes_values() {
                attrs.push("switch".to_owned());
            }
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_owned())
                .collect();
            if !values.is_empty() {
                attrs.push(format!("values={}", values.join("|")));
            }
            if let Some(d) = arg.get_value_delimiter() {
                attrs.push(format!("delimiter={d}"));
            }
            if arg.is_required_set() {
                attrs.push("required".to_owned());
            }
            if arg.is_hide_set() {
                attrs.push("hidden".to_owned());
            }
            if arg.is_hide_env_values_set() {
                attrs.push("secret".to_owned());
            }
            let attrs = attrs.iter().map(|a| format!(" [{a}]")).collect::<String>();
            lines.insert(format!("{cmd_name} {flag} {env} {default}{attrs}"));
        }
    };
    add("clarity", &root);
    for sub in root.get_subcommands() {
        add(sub.get_name(), sub);
    }
    lines.into_iter().collect()
}

#[test]
fn cli_flags_match_the_snapshot() {
    let got = flag_lines();
    let text = got.iter().map(|l| format!("{l}\n")).collect::<String>();
    if std::env::var_os("CLARITY_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &text).expect("write the snapshot");
        return;
    }
    let want = std::fs::read_to_string(SNAPSHOT).expect("tests/fixtures/cli-flags.txt exists");
    let want: BTreeSet<&str> = want.lines().collect();
    let got_set: BTreeSet<&str> = got.iter().map(String::as_str).collect();
    let missing: Vec<&&str> = want.difference(&got_set).collect();
    let extra: Vec<&&str> = got_set.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the command line changed (CLARITY_UPDATE_SNAPSHOTS=1 regenerates the snapshot if \
         that is deliberate)\nin the snapshot, gone now:\n{missing:#?}\nnew:\n{extra:#?}"
    );
}

#[test]
fn every_serve_setting_has_an_env_var_and_a_default_bar_the_listed_exceptions() {
    let mut root = Cli::command();
    root.build();
    let serve = root
        .get_subcommands()
        .find(|c| c.get_name() == "serve")
        .expect("a serve command");
    let mut offenders = Vec::new();
    let mut excepted = BTreeSet::new();
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" || long == "version" {
            continue;
        }
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        assert!(env.is_some(), "--{long} has no environment variable");
        let env = env.unwrap();
        assert!(
            env.starts_with("CLARITY_") || env == "GEMINI_API_KEY",
            "--{long}: env {env} is not CLARITY_*"
        );
        if arg.get_default_values().is_empty() {
            if NO_DEFAULT.iter().any(|(f, _)| *f == long) {
                excepted.insert(long.to_owned());
            } else {
                offenders.push(long.to_owned());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "serve settings without a default (give one, or list the flag with its reason in \
         NO_DEFAULT): {offenders:?}"
    );
    let stale: Vec<&str> = NO_DEFAULT
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| !excepted.contains(*f))
        .collect();
    assert!(
        stale.is_empty(),
        "NO_DEFAULT lists flags that now have a default or are gone: {stale:?}"
    );
}

/// Each flag's value is named after the flag in upper snake case (`--store-timeout-ms
/// <STORE_TIMEOUT_MS>`), as clap derives it from the field name: a field renamed inside a
/// settings group must keep the name users see in `--help` and in error messages.
#[test]
fn every_value_is_named_after_its_flag() {
    let mut root = Cli::command();
    root.build();
    let mut wrong = Vec::new();
    let mut check = |cmd: &clap::Command| {
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if !arg.get_action().takes_values() {
                continue;
            }
            let want = long.to_uppercase().replace('-', "_");
            let got: Vec<&str> = arg
                .get_value_names()
                .unwrap_or_default()
                .iter()
                .map(|n| n.as_str())
                .collect();
            if got != [want.as_str()] {
                wrong.push(format!("{} --{long} <{}>", cmd.get_name(), got.join(" ")));
            }
        }
    };
    check(&root);
    for sub in root.get_subcommands() {
        check(sub);
    }
    assert!(
        wrong.is_empty(),
        "value names that are not the flag in upper case: {wrong:#?}"
    );
}

/// What a user reads: each command's `--help` from the real binary names each of its visible
/// flags in the snapshot (and its environment variable).
#[tokio::test]
async fn help_of_each_command_lists_its_snapshot_flags() {
    let snapshot = std::fs::read_to_string(SNAPSHOT).expect("tests/fixtures/cli-flags.txt exists");
    for command in ["clarity", "serve", "migrate", "analyze", "score"] {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_clarity"));
        if command != "clarity" {
            cmd.arg(command);
        }
        cmd.arg("--help").env_clear().kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("--help answers within 60 s")
            .expect("clarity runs");
        assert!(out.status.success(), "{command} --help fails");
        let help = String::from_utf8(out.stdout).expect("UTF-8 help");
        let mut seen = 0;
        for line in snapshot.lines() {
            let mut parts = line.split(' ');
            let (Some(name), Some(flag), Some(env)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("malformed snapshot line {line:?}");
            };
            if name != command || line.contains("[hidden]") {
                continue;
            }
            seen += 1;
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "`{command} --help` does not list {flag}:\n{help}"
            );
            if env != "-" {
                assert!(
                    help.contains(&format!("[env: {env}")),
                    "`{command} --help` does not name {env} for {flag}"
                );
            }
        }
        assert!(seen > 0, "the snapshot has no flags of {command}");
    }
}

/// docs/configuration.md, the reference for operators, names every visible serve flag.
#[test]
fn the_configuration_docs_name_every_serve_flag() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .expect("docs/configuration.md exists");
    let missing: Vec<String> = flag_lines()
        .iter()
        .filter(|l| l.starts_with("serve ") && !l.contains("[hidden]"))
        .filter_map(|l| l.split(' ').nth(1).map(str::to_owned))
        .filter(|flag| !docs.contains(&format!("`{flag}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not list {missing:?}"
    );
}
