//! DynamoDB-only behaviour, against DynamoDB Local (`CLARITY_TEST_DYNAMODB`; skipped without
//! it): the start-up indexing of samples written before sync v2, and an erasure interrupted
//! halfway. The semantics both backends share are in tests/api/conformance*.rs.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::ReturnValue;
use futures_util::{StreamExt, TryStreamExt, stream};
use uuid::Uuid;

use super::codec::{self, SAMPLE_ATTR_PREFIX, s};
use super::{DynamoOptions, DynamoStore, Item, map_err, schema};
use crate::samples::{Kind, Sample, Timestamp};
use crate::store::{
    ChangeOp, DocKind, DocQuery, DocRecord, OpOutcome, SampleOp, SampleQuery, ShareRecord, Store,
    StoreResult, UserRecord,
};

/// Samples per UpdateItem: keeps the update expression under DynamoDB's 4 KB limit
/// (`#iNN = if_not_exists(#iNN, :vNN), ` is ~35 bytes).
const UPDATE_SAMPLES: usize = 100;

/// UpdateItem calls of one batch in flight at once.
const UPDATE_CONCURRENCY: usize = 16;

impl DynamoStore {
    /// The insert-only write of before sync v2 (no index, no change log): legacy data.
    pub(super) async fn put_samples(
        &self,
        user: Uuid,
        samples: Vec<Sample>,
    ) -> StoreResult<Vec<bool>> {
        let mut new = vec![false; samples.len()];
        // (kind, hour) → indices into `samples`, first occurrence of each id only.
        let mut chunks: HashMap<(Kind, i64), Vec<usize>> = HashMap::new();
        let mut seen = HashSet::with_capacity(samples.len());
        for (i, sample) in samples.iter().enumerate() {
            if seen.insert(sample.id.as_str()) {
                let key = (sample.kind, codec::bucket_of(sample.start.utc_ms));
                chunks.entry(key).or_default().push(i);
            }
        }
        let pk = codec::samples_pk(user);
        let updates = chunks.into_iter().flat_map(|((kind, bucket), idx)| {
            let sk = codec::chunk_sk(kind, bucket);
            idx.chunks(UPDATE_SAMPLES)
                .map(|part| (sk.clone(), part.to_vec()))
                .collect::<Vec<_>>()
        });
        let results: Vec<(Vec<usize>, Item)> = stream::iter(updates)
            .map(|(sk, part)| {
                let req = self.chunk_update(&pk, sk, &part, &samples);
                async move {
                    let _slot = self.inflight.acquire().await.map_err(|_| {
                        crate::store::StoreError::Unavailable("store closed".into())
                    })?;
                    let out = req.send().await.map_err(map_err)?;
                    Ok::<_, crate::store::StoreError>((part, out.attributes.unwrap_or_default()))
                }
            })
            .buffer_unordered(UPDATE_CONCURRENCY)
            .try_collect()
            .await?;
        for (part, old) in results {
            for i in part {
                new[i] = !old.contains_key(&format!("{SAMPLE_ATTR_PREFIX}{}", samples[i].id));
            }
        }
        Ok(new)
    }

    fn chunk_update(
        &self,
        pk: &str,
        sk: String,
        part: &[usize],
        samples: &[Sample],
    ) -> UpdateItemFluentBuilder {
        let mut expr = String::with_capacity(part.len() * 36 + 4);
        expr.push_str("SET ");
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .return_values(ReturnValue::UpdatedOld);
        for (j, &i) in part.iter().enumerate() {
            if j > 0 {
                expr.push_str(", ");
            }
            expr.push_str(&format!("#i{j} = if_not_exists(#i{j}, :v{j})"));
            req = req
                .expression_attribute_names(
                    format!("#i{j}"),
                    format!("{SAMPLE_ATTR_PREFIX}{}", samples[i].id),
                )
                .expression_attribute_values(format!(":v{j}"), codec::encode_sample(&samples[i]));
        }
        req.update_expression(expr)
    }
}

fn options() -> Option<DynamoOptions> {
    let Ok(endpoint) = std::env::var("CLARITY_TEST_DYNAMODB") else {
        eprintln!(
            "skipping: CLARITY_TEST_DYNAMODB is not set (scripts/test starts DynamoDB Local)"
        );
        return None;
    };
    Some(DynamoOptions {
        table_prefix: format!("u{}-", &Uuid::new_v4().simple().to_string()[..12]),
        endpoint: Some(endpoint),
        max_attempts: 3,
        timeout: Duration::from_secs(20),
        max_pending_samples: 100_000,
        max_inflight: 64,
    })
}

/// A migrated table with a store on it that has not run the start-up indexing.
async fn bare(opts: &DynamoOptions) -> DynamoStore {
    let client = super::client(opts).await.expect("client");
    schema::migrate(&client, &opts.table())
        .await
        .expect("table");
    DynamoStore::with_client(client, opts)
}

fn sample(id: &str, minute: i64, version: Option<i64>) -> Sample {
    Sample {
        version,
        id: id.to_owned(),
        kind: Kind::HeartRate,
        start: Timestamp {
            utc_ms: 1_793_491_200_000 + minute * 60_000,
            offset_secs: 0,
        },
        end: None,
        value: 60.0 + minute as f64,
        source: Some("watch".into()),
        extra: None,
    }
}

async fn all(store: &dyn Store, user: Uuid) -> Vec<Sample> {
    let q = SampleQuery {
        kind: None,
        from_ms: None,
        to_ms: None,
        after: None,
        limit: 1000,
    };
    crate::store::all_samples(store, user, q).await.unwrap()
}

/// Replays the whole change feed onto an empty set.
async fn replay(store: &dyn Store, user: Uuid) -> Vec<Sample> {
    let mut state: HashMap<String, Sample> = HashMap::new();
    let mut after = 0;
    loop {
        let page = store.changes(user, after, 7).await.unwrap();
        for c in &page.changes {
            assert!(c.seq > after, "seqs increase");
            after = c.seq;
            match &c.op {
                ChangeOp::Upsert(s) => {
                    state.insert(s.id.clone(), s.clone());
                }
                ChangeOp::Delete { id } => {
                    state.remove(id);
                }
            }
        }
        if !page.more {
            break;
        }
    }
    let mut out: Vec<Sample> = state.into_values().collect();
    out.sort_by(|a, b| (a.start.utc_ms, &a.id).cmp(&(b.start.utc_ms, &b.id)));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_written_before_the_index_are_indexed_at_start_and_can_be_edited() {
    let Some(opts) = options() else { return };
    let old = bare(&opts).await;
    let user = Uuid::new_v4();
    // Two hours, two kinds: what the insert-only path stored before sync v2.
    let mut legacy: Vec<Sample> = (0..150)
        .map(|i| sample(&format!("hr-{i}"), i, None))
        .collect();
    legacy.push(Sample {
        kind: Kind::StepCount,
        ..sample("steps-1", 5, None)
    });
    let new = old.put_samples(user, legacy.clone()).await.unwrap();
    assert!(new.iter().all(|n| *n));
    assert_eq!(
        old.changes(user, 0, 10).await.unwrap().head,
        0,
        "no index yet"
    );

    // A node of this version starts: it indexes them (and only once).
    let store = DynamoStore::connect(&opts).await.expect("connects");
    assert_eq!(store.migrate_legacy().await.unwrap(), 0, "done once");
    let mut expected = legacy.clone();
    expected.sort_by(|a, b| (a.start.utc_ms, &a.id).cmp(&(b.start.utc_ms, &b.id)));
    assert_eq!(
        replay(&store, user).await,
        expected,
        "the feed lists the old samples"
    );

    let moved = Sample {
        version: Some(1),
        ..sample("hr-3", 200, None)
    };
    let done = store
        .write_samples(
            user,
            vec![
                SampleOp::Put(sample("hr-1", 1, None)),
                SampleOp::Put(moved.clone()),
                SampleOp::Delete("hr-2".into()),
                SampleOp::Delete("steps-1".into()),
            ],
        )
        .await
        .unwrap();
    use OpOutcome::*;
    assert_eq!(done.outcomes, vec![Duplicate, Updated, Deleted, Deleted]);
    assert_eq!(
        done.removed,
        vec![legacy[3].clone(), legacy[2].clone(), legacy[150].clone()]
    );
    let now = all(&store, user).await;
    let ids: Vec<&str> = now.iter().map(|s| s.id.as_str()).collect();
    assert!(!ids.contains(&"hr-2") && !ids.contains(&"steps-1"));
    assert_eq!(ids.iter().filter(|i| **i == "hr-3").count(), 1);
    assert_eq!(now.last(), Some(&moved), "the update sits in its new hour");
    assert_eq!(now.len(), 149);
    assert_eq!(replay(&store, user).await, now);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_interrupted_halfway_is_pending_and_a_second_one_finishes_it() {
    let Some(opts) = options() else { return };
    let store = bare(&opts).await;
    let (u, other) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, email) in [(u, "gone@example.com"), (other, "stays@example.com")] {
        store
            .create_user(UserRecord {
                id,
                email: email.into(),
                display_name: None,
                password_hash: "x".into(),
                created_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        let ops = (0..60).map(|i| SampleOp::Put(sample(&format!("s{i}"), i * 7, Some(1))));
        store.write_samples(id, ops.collect()).await.unwrap();
        store
            .write_samples(id, vec![SampleOp::Delete("s0".into())])
            .await
            .unwrap();
        for kind in [DocKind::Analysis, DocKind::Insight] {
            let doc = DocRecord {
                id: Uuid::new_v4(),
                user_id: id,
                created_at: chrono::Utc::now(),
                window_from_ms: 0,
                window_to_ms: 1000,
                body: "{}".into(),
                superseded_by: None,
            };
            store.put_doc(kind, doc).await.unwrap();
            store
                .append_event(id, kind, "{}".into(), 100)
                .await
                .unwrap();
        }
    }
    let share = ShareRecord {
        id: Uuid::new_v4(),
        owner_id: other,
        grantee_id: u,
        scope: DocKind::Analysis,
        created_at: chrono::Utc::now(),
    };
    store.put_share(share.clone()).await.unwrap();

    // A crash after a few deletions: the marker stays.
    assert!(store.erase(u, Some(20)).await.is_err());
    assert_eq!(store.pending_erasures().await.unwrap(), vec![u]);
    assert!(
        store.user_by_id(u).await.unwrap().is_some(),
        "the profile goes last"
    );
    let erased = store.erase_user(u).await.unwrap();
    assert!(erased.account);
    assert!(store.pending_erasures().await.unwrap().is_empty());

    assert!(store.user_by_id(u).await.unwrap().is_none());
    assert!(
        store
            .user_by_email("gone@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(all(&store, u).await.is_empty());
    let feed = store.changes(u, 0, 100).await.unwrap();
    assert!(feed.changes.is_empty() && feed.head == 0);
    let q = || DocQuery {
        from_ms: None,
        to_ms: None,
        after: None,
        limit: 10,
    };
    for kind in [DocKind::Analysis, DocKind::Insight] {
        assert!(store.list_docs(kind, u, q()).await.unwrap().docs.is_empty());
        assert_eq!(store.stream_head(u, kind).await.unwrap(), 0);
        assert!(store.read_events(u, kind, 0, 10).await.unwrap().is_empty());
    }
    assert!(store.shares_of(u).await.unwrap().is_empty());
    assert!(
        store.shares_of(other).await.unwrap().is_empty(),
        "the grant is gone both ways"
    );
    assert!(!store.has_share(other, u, DocKind::Analysis).await.unwrap());
    assert!(store.get_share(share.id).await.unwrap().is_none());
    // Nothing more is stored for the erased account...
    let late = store
        .write_samples(u, vec![SampleOp::Put(sample("s0", 0, Some(1)))])
        .await;
    assert!(
        matches!(late, Err(crate::store::StoreError::AccountErased)),
        "{late:?}"
    );
    // ...until the id is provisioned again (a Cognito `sub`): then a deleted sample re-sent
    // is new again, its tombstone went too.
    store
        .create_user(UserRecord {
            id: u,
            email: "back@example.com".into(),
            display_name: None,
            password_hash: "x".into(),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let again = store
        .write_samples(u, vec![SampleOp::Put(sample("s0", 0, Some(1)))])
        .await
        .unwrap();
    assert_eq!(again.outcomes, vec![OpOutcome::Inserted]);

    // The other user is untouched.
    assert!(
        store
            .user_by_email("stays@example.com")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(all(&store, other).await.len(), 59);
    assert_eq!(replay(&store, other).await.len(), 59);
    for kind in [DocKind::Analysis, DocKind::Insight] {
        assert_eq!(
            store.list_docs(kind, other, q()).await.unwrap().docs.len(),
            1
        );
        assert_eq!(store.stream_head(other, kind).await.unwrap(), 1);
    }
    // The account provisioned again is erased like any other; a further erase finds nothing.
    assert!(store.erase_user(u).await.unwrap().account);
    assert!(!store.erase_user(u).await.unwrap().account);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_one_user_get_distinct_seqs_and_a_consistent_feed() {
    let Some(opts) = options() else { return };
    let a = std::sync::Arc::new(bare(&opts).await);
    let b = std::sync::Arc::new(bare(&opts).await);
    let user = Uuid::new_v4();
    let writes = (0..12).map(|w| {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            // Every writer also bumps the shared id "x" to its own version.
            let mut ops: Vec<SampleOp> = (0..40)
                .map(|i| SampleOp::Put(sample(&format!("w{w}-{i}"), i, None)))
                .collect();
            ops.push(SampleOp::Put(sample("x", 3, Some(w))));
            store.write_samples(user, ops).await
        }
    });
    let results: Vec<_> = stream::iter(writes)
        .buffer_unordered(12)
        .try_collect()
        .await
        .unwrap();
    let mut seqs = HashSet::new();
    for r in &results {
        assert_eq!(
            r.seqs.len(),
            r.outcomes.iter().filter(|o| o.changed()).count()
        );
        for s in &r.seqs {
            assert!(seqs.insert(*s), "seq {s} given twice");
        }
    }
    let now = all(&*a, user).await;
    assert_eq!(now.len(), 12 * 40 + 1);
    assert_eq!(now.iter().find(|s| s.id == "x").unwrap().version, Some(11));
    assert_eq!(replay(&*b, user).await, now);
}
