//! The single-table layout and `clarity migrate`.
//!
//! One table, keys `pk` (S) and `sk` (S), on-demand billing, TTL on `ttl` (epoch seconds).
//! Every access is by a known key, so there is no GSI to pay for or to wait on:
//!
//! | item            | pk                 | sk                    | attributes                               |
//! |-----------------|--------------------|-----------------------|------------------------------------------|
//! | account         | `USER#<uuid>`      | `PROFILE`             | email, name, pw, created                 |
//! | email claim     | `EMAIL#<email>`    | `EMAIL`               | uid + a copy of the account (one read at login) |
//! | refresh token   | `RT#<sha256 hex>`  | `RT`                  | uid, fam, exp, used?, ttl                |
//! | revoked family  | `RTF#<uuid>`       | `RTF`                 | revoked, ttl                             |
//! | token listing   | `USER#<uuid>`      | `RT#<sha256 hex>`     | ttl (erasure finds the tokens)           |
//! | sample chunk    | `SAMPLES#<uuid>`   | `<kind:02>#<hour:010>`| `i:<sample id>` → binary sample          |
//! | sample index    | `SID#<uuid>`       | `<sample id>`         | k, b (chunk), v, q; tombstone: del, ttl  |
//! | change head     | `CHG#<uuid>`       | `HEAD`                | seq (last change seq)                    |
//! | change log      | `CHG#<uuid>`       | `C#<first seq:020>`   | c (changes of one transaction), last     |
//! | pending erasure | `ERASURES`         | `<uuid>`              | since, email                             |
//! | audit entry     | `AUDIT#<owner>`    | `E#<UUIDv7>`          | actor, action, target, at, ip, ua, exp, ttl |
//!
//! Why: the account and its email claim are written in one transaction, so an email is unique
//! without a GSI (GSIs are eventually consistent and could not enforce it). A sample chunk
//! holds one user's samples of one kind for one UTC hour; a sample is an attribute named by
//! its id. Which chunk holds an id, its version or its tombstone is in the id index, written
//! in the same transaction as the chunk and the change log (see `writes`). A week of minute
//! activity is 168 items to read, not 10,080. Tombstones expire by TTL (`TOMBSTONE_DAYS`).

use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};

/// Name of the TTL attribute (epoch seconds): spent refresh tokens, revoked families, stream
/// events and audit entries past retention expire.
pub const TTL_ATTR: &str = "ttl";

/// Creates the table and enables TTL; succeeds when both already exist.
pub async fn migrate(client: &Client, table: &str) -> anyhow::Result<()> {
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .send()
        .await;
    match created {
        Ok(_) => tracing::info!(table, "created table"),
        Err(e) if e.code() == Some("ResourceInUseException") => {
            tracing::info!(table, "table already exists");
        }
        Err(e) => {
            return Err(sdk_err(e)).with_context(|| format!("creating table {table}"));
        }
    }
    wait_active(client, table).await?;

    let ttl = client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTR)
                .enabled(true)
                .build()?,
        )
        .send()
        .await;
    match ttl {
        Ok(_) => {}
        // Enabling twice is refused with a ValidationException naming the current state.
        Err(e)
            if e.code() == Some("ValidationException")
                && e.message().is_some_and(|m| m.contains("already enabled")) => {}
        Err(e) => {
            return Err(sdk_err(e)).with_context(|| format!("enabling TTL on {table}"));
        }
    }
    Ok(())
}

async fn wait_active(client: &Client, table: &str) -> anyhow::Result<()> {
    for _ in 0..120 {
        let desc = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(sdk_err)
            .with_context(|| format!("describing table {table}"))?;
        if desc.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("table {table} did not become ACTIVE within 60 s")
}

/// Whether the table exists (used to give a clear start-up error instead of failing later).
pub async fn exists(client: &Client, table: &str) -> anyhow::Result<bool> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(false),
        Err(e) => Err(sdk_err(e)).with_context(|| format!("describing table {table}")),
    }
}

/// An SDK error with its whole cause chain in the message (its `Display` alone says little).
pub fn sdk_err<E: std::error::Error>(e: E) -> anyhow::Error {
    anyhow::anyhow!("{}", DisplayErrorContext(e))
}
