//! Account erasure against writes on their way, on every backend
//! (`conformance_erase::sqlite::*`, `conformance_erase::dynamodb::*`): once `erase_user` has
//! run, nothing more is stored for the account (samples, documents, stream events), each such
//! write failing with `AccountErased`; writes racing the erasure either land before it (and
//! are erased) or fail, never leaving rows behind. An account created again with the erased
//! id (a Cognito user's `sub`, provisioned again) is a new account and takes writes.

use std::sync::Arc;

use clarity::samples::{Kind, Sample};
use clarity::store::{DocKind, DocQuery, SampleOp, Store, StoreError};
use uuid::Uuid;

use crate::common::Backend;
use crate::conformance::{all, conformance, doc, open, query, sample, user};

conformance!(
    writes_after_an_erasure_store_nothing_and_say_so,
    writes_racing_an_erasure_leave_nothing_behind,
    an_erased_id_provisioned_again_takes_writes,
);

fn puts(prefix: &str, n: i64) -> Vec<SampleOp> {
    (0..n)
        .map(|i| {
            SampleOp::Put(Sample {
                version: Some(1),
                ..sample(&format!("{prefix}{i}"), Kind::HeartRate, i, 60.0)
            })
        })
        .collect()
}

/// Nothing of `u` is readable: samples, changes, revisions, documents, events.
async fn nothing_left(store: &dyn Store, u: Uuid) {
    assert!(
        all(store, u, query(None, 1000)).await.is_empty(),
        "samples left"
    );
    let feed = store.changes(u, 0, 1000).await.unwrap();
    assert!(feed.changes.is_empty(), "changes left: {:?}", feed.changes);
    assert!(store.pending_revisions(u).await.unwrap().is_empty());
    for kind in [DocKind::Analysis, DocKind::Insight] {
        let q = DocQuery {
            from_ms: None,
            to_ms: None,
            after: None,
            limit: 100,
        };
        let docs = store.list_docs(kind, u, q).await.unwrap().docs;
        assert!(docs.is_empty(), "{} left: {docs:?}", kind.as_str());
        let events = store.read_events(u, kind, 0, 100).await.unwrap();
        assert!(events.is_empty(), "{} events left", kind.as_str());
    }
}

async fn writes_after_an_erasure_store_nothing_and_say_so(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let a = user("erased@example.com");
    store.create_user(a.clone()).await.unwrap();
    store.write_samples(a.id, puts("s", 5)).await.unwrap();
    store.erase_user(a.id).await.unwrap();

    let late = store.write_samples(a.id, puts("late", 3)).await;
    assert!(matches!(late, Err(StoreError::AccountErased)), "{late:?}");
    let delete = store
        .write_samples(a.id, vec![SampleOp::Delete("s0".into())])
        .await;
    assert!(
        matches!(delete, Err(StoreError::AccountErased)),
        "{delete:?}"
    );
    let d = store.put_doc(DocKind::Analysis, doc(a.id, 20_000)).await;
    assert!(matches!(d, Err(StoreError::AccountErased)), "{d:?}");
    let e = store
        .append_event(a.id, DocKind::Insight, "{\"n\":1}".into(), 100)
        .await;
    assert!(matches!(e, Err(StoreError::AccountErased)), "{e:?}");
    nothing_left(&*store, a.id).await;
    // Erasing again (a resumed or repeated request) still succeeds.
    store.erase_user(a.id).await.unwrap();

    // Other accounts are untouched by the mark.
    let b = user("kept@example.com");
    store.create_user(b.clone()).await.unwrap();
    store.write_samples(b.id, puts("s", 5)).await.unwrap();
    assert!(
        store
            .put_doc(DocKind::Analysis, doc(b.id, 20_000))
            .await
            .unwrap()
    );
    store
        .append_event(b.id, DocKind::Analysis, "{\"n\":1}".into(), 100)
        .await
        .unwrap();
    assert_eq!(all(&*store, b.id, query(None, 100)).await.len(), 5);
}

async fn writes_racing_an_erasure_leave_nothing_behind(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let a = user("racing@example.com");
    store.create_user(a.clone()).await.unwrap();
    store.write_samples(a.id, puts("first", 10)).await.unwrap();
    // Writers keep writing batches, documents and events until each meets the erasure.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store: Arc<dyn Store> = store.clone();
            tokio::spawn(async move {
                for round in 0..100_000 {
                    let tag = format!("w{w}r{round}-");
                    let ops = puts(&tag, 5);
                    let res = match round % 3 {
                        0 | 1 => store.write_samples(a.id, ops).await.map(|_| ()),
                        _ => store
                            .put_doc(DocKind::Analysis, doc(a.id, 20_000 + round))
                            .await
                            .map(|_| ()),
                    };
                    match res {
                        Ok(()) => {}
                        Err(StoreError::AccountErased) => return round,
                        // Four writers of one user race for its head: a writer that loses too
                        // often is told to retry, as a client would be.
                        Err(e) if e.is_transient() => {}
                        Err(e) => panic!("writer {w}: {e:?}"),
                    }
                }
                panic!("writer {w} never met the erasure");
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    store.erase_user(a.id).await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
    nothing_left(&*store, a.id).await;
}

async fn an_erased_id_provisioned_again_takes_writes(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let a = user("cognito@example.com");
    store.create_user(a.clone()).await.unwrap();
    store.write_samples(a.id, puts("s", 3)).await.unwrap();
    store.erase_user(a.id).await.unwrap();
    store.create_user(a.clone()).await.unwrap();

    let done = store.write_samples(a.id, puts("again", 3)).await.unwrap();
    assert_eq!(done.seqs.len(), 3, "{done:?}");
    assert!(
        store
            .put_doc(DocKind::Insight, doc(a.id, 20_000))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .append_event(a.id, DocKind::Insight, "{\"n\":1}".into(), 100)
            .await
            .unwrap(),
        1
    );
    let ids: Vec<String> = all(&*store, a.id, query(None, 100))
        .await
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["again0", "again1", "again2"]);
}
