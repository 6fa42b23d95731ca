//! `clarity backup --store dynamodb` and `clarity restore --store dynamodb`: the table to a
//! folder in the format of DynamoDB's export to S3, and such a folder into a new table
//! (`store::dynamo::backup` holds the rules).
//!
//! Rules: the table, endpoint and retries come from the same DynamoDB flags as `serve`
//! (region and credentials from the AWS chain); exit codes as for SQLite: 2 when an input
//! breaks a rule (existing output, missing table, non-empty target, damaged backup, `--force`),
//! 1 for any other failure. The report is one JSON line on stdout.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::{BackupArgs, DynamoConfig, RestoreArgs};
use crate::store::dynamo::DynamoOptions;
use crate::store::dynamo::backup::{self, BackupError, Report};

/// Bound on one DynamoDB call (a Scan page, a BatchWriteItem), retries included: generous,
/// since an export or restore runs alone and a slow page is no reason to give up.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

fn options(config: &DynamoConfig) -> DynamoOptions {
    DynamoOptions {
        table_prefix: config.table_prefix.clone(),
        endpoint: config.endpoint.clone(),
        // Throttling of a long Scan or load is expected on a busy table: more tries.
        max_attempts: config.max_attempts.max(8),
        timeout: CALL_TIMEOUT,
        max_pending_samples: 1,
        max_inflight: 1,
    }
}

fn run(what: &str, f: impl Future<Output = Result<Report, BackupError>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("clarity {what}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(f) {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clarity {what}: {e:#}");
            if e.is_refusal() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

pub fn backup_command(args: &BackupArgs) -> ExitCode {
    let opts = options(&args.dynamodb);
    run("backup", backup::export(&opts, &args.out, args.segments))
}

pub fn restore_command(args: &RestoreArgs) -> ExitCode {
    if args.force {
        eprintln!(
            "clarity restore: --force does not apply to --store dynamodb: a restore goes into \
             a new, empty table (pick another --dynamodb-table-prefix)"
        );
        return ExitCode::from(2);
    }
    run(
        "restore",
        backup::import(&options(&args.dynamodb), &args.from),
    )
}
