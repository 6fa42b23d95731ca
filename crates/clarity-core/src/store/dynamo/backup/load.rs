//! Loading items into a table: BatchWriteItem, 25 puts a call, until DynamoDB has taken
//! every one.
//!
//! Rules: a BatchWriteItem answer of 200 may leave `UnprocessedItems` (throttling, a hot
//! partition); those are sent again, alone, after an exponential backoff with jitter (50 ms
//! doubling to 5 s), as AWS asks. A call that makes no progress [`MAX_STALLS`] times in a row
//! fails the load, naming how many items were left, rather than spinning forever. Errors of
//! the call itself are the SDK's to retry (standard retry); what survives them fails the load.

use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use rand::Rng;

use super::super::schema::sdk_err;

type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Most puts one BatchWriteItem takes.
pub const BATCH: usize = 25;
/// Calls in a row that may leave every item unprocessed before the load gives up.
pub const MAX_STALLS: u32 = 10;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Puts `items` (at most [`BATCH`]) into `table`.
pub async fn put_batch(client: &Client, table: &str, items: Vec<Item>) -> anyhow::Result<()> {
    let requests = items
        .into_iter()
        .map(|item| {
            Ok(WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                .build())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    until_processed(requests, |batch| async move {
        let out = client
            .batch_write_item()
            .request_items(table, batch)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default())
    })
    .await
}

/// Sends `pending` with `send` (which answers the unprocessed part) until nothing is left.
pub async fn until_processed<F, Fut>(
    mut pending: Vec<WriteRequest>,
    mut send: F,
) -> anyhow::Result<()>
where
    F: FnMut(Vec<WriteRequest>) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<WriteRequest>>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut stalls = 0u32;
    while !pending.is_empty() {
        let sent = pending.len();
        let left = send(pending).await?;
        if left.is_empty() {
            return Ok(());
        }
        if left.len() >= sent {
            stalls += 1;
            if stalls >= MAX_STALLS {
                anyhow::bail!(
                    "DynamoDB left {} items unprocessed {MAX_STALLS} times in a row (the table \
                     is throttling the restore); run it again into a new table later",
                    left.len()
                );
            }
        } else {
            stalls = 0;
        }
        let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
        tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        pending = left;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    fn put(id: usize) -> WriteRequest {
        WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .item("pk", AttributeValue::S(format!("P{id}")))
                    .build()
                    .unwrap(),
            )
            .build()
    }

    fn ids(batch: &[WriteRequest]) -> Vec<String> {
        batch
            .iter()
            .map(|w| match &w.put_request().unwrap().item()["pk"] {
                AttributeValue::S(s) => s.clone(),
                _ => unreachable!(),
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn unprocessed_items_are_sent_again_until_taken() {
        // DynamoDB takes 10, then 5, then nothing once, then the rest.
        let calls = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
        let log = calls.clone();
        let takes = Arc::new(Mutex::new(vec![10usize, 5, 0, usize::MAX].into_iter()));
        let started = tokio::time::Instant::now();
        until_processed((0..25).map(put).collect(), move |batch| {
            log.lock().unwrap().push(ids(&batch));
            let take = takes.lock().unwrap().next().unwrap();
            async move { Ok(batch.into_iter().skip(take).collect()) }
        })
        .await
        .unwrap();
        let calls = calls.lock().unwrap();
        let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
        assert_eq!(sizes, [25, 15, 10, 10]);
        // Only what was left is sent again: the last call carries items 15..25.
        assert_eq!(
            calls[3],
            (15..25).map(|i| format!("P{i}")).collect::<Vec<_>>()
        );
        // Backed off between calls: at least 50 + 100 + 200 ms.
        assert!(started.elapsed() >= Duration::from_millis(350));
    }

    #[tokio::test(start_paused = true)]
    async fn a_table_that_takes_nothing_fails_the_load_with_a_count() {
        let calls = Arc::new(Mutex::new(0u32));
        let n = calls.clone();
        let err = until_processed((0..3).map(put).collect(), move |batch| {
            *n.lock().unwrap() += 1;
            async move { Ok(batch) }
        })
        .await
        .unwrap_err();
        assert_eq!(*calls.lock().unwrap(), MAX_STALLS);
        assert!(
            err.to_string().contains("left 3 items unprocessed"),
            "{err}"
        );
    }
}
