//! Pending recomputations in the store on every backend (`conformance_revisions::sqlite::*`,
//! `conformance_revisions::dynamodb::*`): a write that replaces or removes samples stores its
//! changed times with it, they stay until cleared, and erasure removes them. The rules are
//! `clarity::store::revisions`'s.

use clarity::samples::{Kind, Sample};
use clarity::store::{OpOutcome, Revision, SampleOp};
use uuid::Uuid;

use crate::common::Backend;
use crate::conformance::{at, conformance, open, sample, user};

conformance!(
    edits_and_deletes_store_their_changed_times_until_cleared,
    a_write_split_into_parts_leaves_every_changed_time,
    erasing_an_account_erases_its_revisions,
);

fn v(id: &str, minute: i64, version: i64) -> SampleOp {
    SampleOp::Put(Sample {
        version: Some(version),
        ..sample(id, Kind::HeartRate, minute, 60.0)
    })
}

fn ms(minute: i64) -> i64 {
    at(minute).utc_ms
}

async fn edits_and_deletes_store_their_changed_times_until_cleared(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let u = Uuid::new_v4();
    // New samples and duplicates change no analysis' input: no revision.
    store
        .write_samples(u, vec![v("a", 0, 1), v("b", 10, 1), v("c", 20, 1)])
        .await
        .unwrap();
    store.write_samples(u, vec![v("a", 0, 1)]).await.unwrap();
    assert_eq!(store.pending_revisions(u).await.unwrap(), vec![]);

    // An edit that moves `a` from minute 0 to 30, and a deletion of `b`: both times of `a`,
    // and `b`'s.
    let w = store
        .write_samples(
            u,
            vec![
                v("a", 30, 2),
                SampleOp::Delete("b".into()),
                SampleOp::Delete("nobody".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        w.outcomes,
        vec![OpOutcome::Updated, OpOutcome::Deleted, OpOutcome::NotFound]
    );
    let first = store.pending_revisions(u).await.unwrap();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].seq, *w.seqs.last().unwrap());
    let mut spans = first[0].spans.clone();
    spans.sort();
    assert_eq!(
        spans,
        vec![(ms(0), ms(0)), (ms(10), ms(10)), (ms(30), ms(30))]
    );

    // A second and a third; clearing the first's and the third's ranges in one call leaves
    // the second, which lies between them.
    let w2 = store
        .write_samples(u, vec![SampleOp::Delete("c".into())])
        .await
        .unwrap();
    let w3 = store
        .write_samples(u, vec![SampleOp::Delete("a".into())])
        .await
        .unwrap();
    assert_eq!(store.pending_revisions(u).await.unwrap().len(), 3);
    let (from, to) = (w.seqs[0], *w.seqs.last().unwrap());
    store
        .clear_revisions(u, vec![(from, to), (w3.seqs[0], w3.seqs[0])])
        .await
        .unwrap();
    assert_eq!(
        store.pending_revisions(u).await.unwrap(),
        vec![Revision {
            seq: w2.seqs[0],
            spans: vec![(ms(20), ms(20))],
        }]
    );
    // Clearing is idempotent, and another user's revisions are their own.
    store.clear_revisions(u, vec![(from, to)]).await.unwrap();
    assert!(
        store
            .pending_revisions(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
    store
        .clear_revisions(u, vec![(w2.seqs[0], w2.seqs[0])])
        .await
        .unwrap();
    assert!(store.pending_revisions(u).await.unwrap().is_empty());
}

async fn a_write_split_into_parts_leaves_every_changed_time(backend: Backend) {
    // 300 ids over 300 hours: more items than one DynamoDB transaction holds, so the edit of
    // all of them commits in several parts, each with its revision.
    let (_dir, store) = open(&backend).await;
    let u = Uuid::new_v4();
    let ids: Vec<String> = (0..300).map(|i| format!("h{i}")).collect();
    store
        .write_samples(
            u,
            ids.iter()
                .enumerate()
                .map(|(i, id)| v(id, i as i64 * 60, 1))
                .collect(),
        )
        .await
        .unwrap();
    let w = store
        .write_samples(
            u,
            ids.iter().map(|id| SampleOp::Delete(id.clone())).collect(),
        )
        .await
        .unwrap();
    assert_eq!(w.seqs.len(), 300);
    let pending = store.pending_revisions(u).await.unwrap();
    if !matches!(backend, Backend::Sqlite) {
        assert!(pending.len() > 1, "one revision per part: {pending:?}");
    }
    let mut spans: Vec<(i64, i64)> = pending.iter().flat_map(|r| r.spans.clone()).collect();
    spans.sort();
    let want: Vec<(i64, i64)> = (0..300).map(|i| (ms(i * 60), ms(i * 60))).collect();
    assert_eq!(spans, want);
    assert!(
        pending
            .iter()
            .all(|r| r.seq >= w.seqs[0] && r.seq <= *w.seqs.last().unwrap()),
        "{pending:?}"
    );
    store
        .clear_revisions(u, vec![(w.seqs[0], *w.seqs.last().unwrap())])
        .await
        .unwrap();
    assert!(store.pending_revisions(u).await.unwrap().is_empty());
}

async fn erasing_an_account_erases_its_revisions(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let (a, b) = (user("a@example.com"), user("b@example.com"));
    for u in [&a, &b] {
        store.create_user(u.clone()).await.unwrap();
        store.write_samples(u.id, vec![v("x", 0, 1)]).await.unwrap();
        store
            .write_samples(u.id, vec![SampleOp::Delete("x".into())])
            .await
            .unwrap();
        assert_eq!(store.pending_revisions(u.id).await.unwrap().len(), 1);
    }
    store.erase_user(a.id).await.unwrap();
    assert!(store.pending_revisions(a.id).await.unwrap().is_empty());
    assert_eq!(store.pending_revisions(b.id).await.unwrap().len(), 1);
}
