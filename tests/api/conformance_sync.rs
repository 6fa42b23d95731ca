//! Sync v2 store operations on every backend (`conformance_sync::sqlite::*`,
//! `conformance_sync::dynamodb::*`): versioned upserts, deletions and tombstones, the change
//! sequence and feed, account erasure and superseded documents. The rules are
//! `clarity::store::changes`'s.

use std::collections::{BTreeMap, HashSet};

use clarity::samples::{Kind, Sample};
use clarity::store::{
    ChangeOp, DocKind, DocQuery, OpOutcome, SampleOp, Store, StoreError, WriteResult,
};
use futures_util::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::common::Backend;
use crate::conformance::{
    all, audit_entry, conformance, doc, open, query, sample, share, token, user,
};

conformance!(
    puts_upsert_by_version,
    deletes_leave_tombstones_that_only_a_higher_version_passes,
    ops_of_one_call_apply_in_order,
    change_seqs_increase_and_only_changes_take_one,
    the_change_feed_pages_compacts_and_replays_to_the_stored_state,
    erase_user_removes_everything_of_the_user_and_nothing_else,
    superseded_marks_round_trip,
    concurrent_writes_from_two_handles_take_unique_seqs,
    random_op_sequences_match_a_model,
);

fn versioned(id: &str, minute: i64, value: f64, version: Option<i64>) -> Sample {
    Sample {
        version,
        ..sample(id, Kind::HeartRate, minute, value)
    }
}

fn put(s: Sample) -> SampleOp {
    SampleOp::Put(s)
}

fn del(id: &str) -> SampleOp {
    SampleOp::Delete(id.to_owned())
}

async fn write(store: &dyn Store, u: Uuid, ops: Vec<SampleOp>) -> WriteResult {
    let n = ops.len();
    let done = store.write_samples(u, ops).await.unwrap();
    assert_eq!(done.outcomes.len(), n, "one outcome per op");
    let changed = done.outcomes.iter().filter(|o| o.changed()).count();
    assert_eq!(done.seqs.len(), changed, "one seq per changing op");
    done
}

async fn stored(store: &dyn Store, u: Uuid) -> BTreeMap<String, Sample> {
    all(store, u, query(None, 1000))
        .await
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect()
}

/// The user's state rebuilt from the change feed from 0, read `page` changes at a time;
/// checks the feed's order and paging on the way.
async fn replayed(store: &dyn Store, u: Uuid, page: usize) -> BTreeMap<String, Sample> {
    let mut state = BTreeMap::new();
    let mut after = 0;
    loop {
        let got = store.changes(u, after, page).await.unwrap();
        assert!(got.changes.len() <= page);
        for c in &got.changes {
            assert!(c.seq > after, "seqs increase: {} after {after}", c.seq);
            assert!(c.seq <= got.head, "seq {} beyond head {}", c.seq, got.head);
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
        if !got.more {
            return state;
        }
        assert!(!got.changes.is_empty(), "`more` with an empty page");
    }
}

async fn puts_upsert_by_version(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let u = Uuid::new_v4();
    let v1 = versioned("a", 1, 60.0, Some(1));
    let plain = versioned("p", 2, 50.0, None);
    let done = write(&*store, u, vec![put(v1.clone()), put(plain.clone())]).await;
    assert_eq!(done.outcomes, [OpOutcome::Inserted, OpOutcome::Inserted]);
    assert!(done.removed.is_empty());

    // Same and lower version, and no version: duplicates, the stored sample unchanged.
    for stale in [Some(1), Some(0), None] {
        let done = write(&*store, u, vec![put(versioned("a", 9, 99.0, stale))]).await;
        assert_eq!(done.outcomes, [OpOutcome::Duplicate], "version {stale:?}");
        assert!(done.removed.is_empty() && done.seqs.is_empty());
    }
    assert_eq!(stored(&*store, u).await["a"], v1);

    // A higher version replaces everything but the id, and hands back the old sample.
    let v5 = Sample {
        kind: Kind::StepCount,
        end: Some(crate::conformance::at(12)),
        source: Some("phone".into()),
        ..versioned("a", 10, 1234.0, Some(5))
    };
    let done = write(&*store, u, vec![put(v5.clone())]).await;
    assert_eq!(done.outcomes, [OpOutcome::Updated]);
    assert_eq!(done.removed, [v1]);
    assert_eq!(stored(&*store, u).await["a"], v5);
    assert!(
        all(&*store, u, query(Some(Kind::HeartRate), 10))
            .await
            .iter()
            .all(|s| s.id != "a"),
        "the kind index follows the update"
    );

    // A sample stored without a version counts as -1: any version replaces it, even 0.
    let p0 = versioned("p", 3, 51.0, Some(0));
    let done = write(&*store, u, vec![put(p0.clone())]).await;
    assert_eq!(done.outcomes, [OpOutcome::Updated]);
    assert_eq!(done.removed, [plain]);
    assert_eq!(stored(&*store, u).await["p"], p0);
    let big = 9_007_199_254_740_991;
    let done = write(&*store, u, vec![put(versioned("p", 3, 52.0, Some(big)))]).await;
    assert_eq!(done.outcomes, [OpOutcome::Updated]);
    assert_eq!(stored(&*store, u).await["p"].version, Some(big));
}

async fn deletes_leave_tombstones_that_only_a_higher_version_passes(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let (u, other) = (Uuid::new_v4(), Uuid::new_v4());
    let a = versioned("a", 1, 60.0, Some(3));
    let b = versioned("b", 2, 61.0, None);
    write(&*store, u, vec![put(a.clone()), put(b.clone())]).await;
    write(&*store, other, vec![put(a.clone())]).await;

    let done = write(&*store, u, vec![del("a"), del("never"), del("b")]).await;
    assert_eq!(
        done.outcomes,
        [OpOutcome::Deleted, OpOutcome::NotFound, OpOutcome::Deleted]
    );
    assert_eq!(done.removed, [a.clone(), b.clone()]);
    assert!(stored(&*store, u).await.is_empty());
    assert_eq!(
        stored(&*store, other).await.len(),
        1,
        "another user's same id is untouched"
    );
    // Deleting again is NotFound, and changes nothing.
    let done = write(&*store, u, vec![del("a"), del("b")]).await;
    assert_eq!(done.outcomes, [OpOutcome::NotFound, OpOutcome::NotFound]);
    assert!(done.removed.is_empty() && done.seqs.is_empty());

    // Late re-sends of the deleted samples do not resurrect them.
    for stale in [Some(3), Some(2), None] {
        let done = write(&*store, u, vec![put(versioned("a", 1, 70.0, stale))]).await;
        assert_eq!(done.outcomes, [OpOutcome::Duplicate], "version {stale:?}");
    }
    let done = write(&*store, u, vec![put(b.clone())]).await;
    assert_eq!(done.outcomes, [OpOutcome::Duplicate]);
    assert!(stored(&*store, u).await.is_empty());

    // A higher version than the tombstone's is a new sample (nothing removed); then the id is
    // live again and deletable again.
    let a4 = versioned("a", 5, 80.0, Some(4));
    let b0 = versioned("b", 6, 81.0, Some(0));
    let done = write(&*store, u, vec![put(a4.clone()), put(b0.clone())]).await;
    assert_eq!(done.outcomes, [OpOutcome::Inserted, OpOutcome::Inserted]);
    assert!(done.removed.is_empty());
    assert_eq!(
        stored(&*store, u).await.into_values().collect::<Vec<_>>(),
        [a4.clone(), b0]
    );
    let done = write(&*store, u, vec![del("a")]).await;
    assert_eq!(done.outcomes, [OpOutcome::Deleted]);
    assert_eq!(done.removed, [a4]);
    let done = write(&*store, u, vec![put(versioned("a", 5, 80.0, Some(4)))]).await;
    assert_eq!(
        done.outcomes,
        [OpOutcome::Duplicate],
        "the new tombstone has version 4"
    );
}

async fn ops_of_one_call_apply_in_order(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let u = Uuid::new_v4();
    let x1 = versioned("x", 1, 60.0, Some(1));
    let x2 = versioned("x", 2, 62.0, Some(2));
    let y = versioned("y", 3, 63.0, None);
    let x9 = versioned("x", 4, 69.0, Some(9));
    let done = write(
        &*store,
        u,
        vec![
            put(x1.clone()),
            put(x2.clone()),
            put(versioned("x", 9, 0.0, Some(2))),
            put(y.clone()),
            del("x"),
            del("x"),
            put(versioned("x", 9, 0.0, Some(2))),
            put(x9.clone()),
            put(y.clone()),
        ],
    )
    .await;
    assert_eq!(
        done.outcomes,
        [
            OpOutcome::Inserted,
            OpOutcome::Updated,
            OpOutcome::Duplicate,
            OpOutcome::Inserted,
            OpOutcome::Deleted,
            OpOutcome::NotFound,
            OpOutcome::Duplicate,
            OpOutcome::Inserted,
            OpOutcome::Duplicate,
        ]
    );
    assert_eq!(done.removed, [x1, x2], "the update's old and the deleted");
    assert_eq!(done.seqs.len(), 5);
    assert_eq!(
        stored(&*store, u).await.into_values().collect::<Vec<_>>(),
        [x9, y]
    );
}

async fn change_seqs_increase_and_only_changes_take_one(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let (u, v) = (Uuid::new_v4(), Uuid::new_v4());
    let mut last = 0;
    let mut all_seqs = Vec::new();
    for round in 0..4i64 {
        let done = write(
            &*store,
            u,
            vec![
                put(versioned(&format!("n{round}"), round, 60.0, None)),
                put(versioned("same", 0, 60.0, Some(round))),
                put(versioned("dup", 0, 60.0, None)),
                del(&format!("n{}", round - 1)),
                del("missing"),
            ],
        )
        .await;
        for s in &done.seqs {
            assert!(*s > last, "seq {s} after {last}");
            last = *s;
        }
        all_seqs.extend(done.seqs);
    }
    // 4 inserts of n*, 1 insert + 3 updates of `same`, 1 insert of `dup`, 3 deletes.
    assert_eq!(all_seqs.len(), 12);
    let page = store.changes(u, 0, 1000).await.unwrap();
    assert_eq!(page.head, last);
    // Another user's sequence is their own.
    let done = write(&*store, v, vec![put(versioned("n0", 0, 1.0, None))]).await;
    assert_eq!(done.seqs.len(), 1);
    assert!(done.seqs[0] >= 1);
    assert_eq!(store.changes(v, 0, 10).await.unwrap().head, done.seqs[0]);
    let empty = store.changes(Uuid::new_v4(), 0, 10).await.unwrap();
    assert!(empty.changes.is_empty() && !empty.more);
    assert_eq!((empty.head, empty.floor), (0, 0));
}

async fn the_change_feed_pages_compacts_and_replays_to_the_stored_state(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let u = Uuid::new_v4();
    let first = write(
        &*store,
        u,
        (0..10)
            .map(|i| put(versioned(&format!("s{i}"), i, 60.0 + i as f64, Some(1))))
            .collect(),
    )
    .await;
    let mid = *first.seqs.last().unwrap();
    let second = write(
        &*store,
        u,
        vec![
            put(versioned("s2", 2, 99.0, Some(2))),
            del("s5"),
            put(versioned("late", 11, 1.0, None)),
            del("late"),
            put(versioned("s7", 7, 77.0, Some(3))),
        ],
    )
    .await;
    let head = *second.seqs.last().unwrap();

    let page = store.changes(u, 0, 1000).await.unwrap();
    assert_eq!(page.head, head);
    assert!(!page.more);
    // Compacted or not, each id's last entry is its latest change, in seq order.
    let mut latest: BTreeMap<String, (u64, bool)> = BTreeMap::new();
    for c in &page.changes {
        match &c.op {
            ChangeOp::Upsert(s) => latest.insert(s.id.clone(), (c.seq, true)),
            ChangeOp::Delete { id } => latest.insert(id.clone(), (c.seq, false)),
        };
    }
    assert_eq!(latest["s2"], (second.seqs[0], true));
    assert_eq!(latest["s5"], (second.seqs[1], false));
    assert_eq!(latest["s7"], (second.seqs[4], true));
    assert_eq!(page.changes.last().unwrap().seq, head);

    let state = stored(&*store, u).await;
    assert_eq!(state.len(), 9);
    assert_eq!(state["s2"].value, 99.0);
    for limit in [1, 3, 7, 1000] {
        assert_eq!(replayed(&*store, u, limit).await, state, "pages of {limit}");
    }

    // From a mid position: only what changed after it, and applying it to the state then
    // gives the state now.
    let after_mid = store.changes(u, mid, 1000).await.unwrap();
    assert!(after_mid.changes.iter().all(|c| c.seq > mid));
    let ids: HashSet<String> = after_mid
        .changes
        .iter()
        .map(|c| match &c.op {
            ChangeOp::Upsert(s) => s.id.clone(),
            ChangeOp::Delete { id } => id.clone(),
        })
        .collect();
    assert!(ids.is_superset(&HashSet::from(["s2".into(), "s5".into(), "s7".into()])));
    assert!(!ids.contains("s0"), "unchanged since: not listed");
    // From the head: nothing, and not more.
    let at_head = store.changes(u, head, 10).await.unwrap();
    assert!(at_head.changes.is_empty() && !at_head.more);
    // A page that ends exactly at the last change may say `more`, but the next is empty.
    let n = page.changes.len();
    let exact = store.changes(u, 0, n).await.unwrap();
    assert_eq!(exact.changes.len(), n);
    if exact.more {
        assert!(store.changes(u, head, n).await.unwrap().changes.is_empty());
    }
    assert_eq!(page.floor, 0, "nothing forgotten");
}

async fn erase_user_removes_everything_of_the_user_and_nothing_else(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let (a, b, c) = (user("a@example.com"), user("b@example.com"), Uuid::new_v4());
    store.create_user(a.clone()).await.unwrap();
    store.create_user(b.clone()).await.unwrap();
    let refresh = token(a.id, 3600);
    store.insert_refresh_token(refresh.clone()).await.unwrap();
    let b_refresh = token(b.id, 3600);
    store.insert_refresh_token(b_refresh.clone()).await.unwrap();
    for u in [a.id, b.id] {
        write(
            &*store,
            u,
            (0..30)
                .map(|i| put(versioned(&format!("s{i}"), i * 90, 60.0, None)))
                .chain([del("s0"), del("s1")])
                .collect(),
        )
        .await;
    }
    let mut docs = Vec::new();
    for (kind, n) in [(DocKind::Analysis, 3), (DocKind::Insight, 2)] {
        for i in 0..n {
            for u in [a.id, b.id] {
                let d = doc(u, 20_000 + i);
                assert!(store.put_doc(kind, d.clone()).await.unwrap());
                if u == a.id {
                    docs.push((kind, d.id));
                }
            }
        }
        for u in [a.id, b.id] {
            store
                .append_event(u, kind, "{\"n\":1}".into(), 100)
                .await
                .unwrap();
        }
    }
    let owned = share(a.id, b.id, DocKind::Insight);
    let received = share(c, a.id, DocKind::Analysis);
    let bystander = share(b.id, c, DocKind::Insight);
    for s in [&owned, &received, &bystander] {
        store.put_share(s.clone()).await.unwrap();
    }
    for n in 0..3 {
        store.append_audit(audit_entry(a.id, n)).await.unwrap();
        store.append_audit(audit_entry(b.id, n)).await.unwrap();
    }
    let b_before = (
        stored(&*store, b.id).await,
        store.changes(b.id, 0, 1000).await.unwrap(),
    );

    let erased = store.erase_user(a.id).await.unwrap();
    assert!(erased.account);
    assert_eq!(erased.samples, 30, "28 samples and 2 tombstones");
    assert_eq!(erased.documents, 5 + 2, "5 documents and 2 stream events");
    assert_eq!(erased.shares, 2);
    assert!(store.pending_erasures().await.unwrap().is_empty());

    // Nothing of `a` is readable any more.
    assert_eq!(store.user_by_id(a.id).await.unwrap(), None);
    assert_eq!(store.user_by_email(&a.email).await.unwrap(), None);
    let next = token(a.id, 3600);
    assert_eq!(
        store
            .rotate_refresh_token(refresh.token_hash, next, chrono::Utc::now())
            .await
            .unwrap(),
        clarity::store::RotateOutcome::Invalid
    );
    assert!(stored(&*store, a.id).await.is_empty());
    let feed = store.changes(a.id, 0, 1000).await.unwrap();
    assert!(feed.changes.is_empty() && !feed.more);
    for (kind, id) in &docs {
        assert_eq!(store.get_doc(*kind, a.id, *id).await.unwrap(), None);
    }
    for kind in [DocKind::Analysis, DocKind::Insight] {
        let q = DocQuery {
            from_ms: None,
            to_ms: None,
            after: None,
            limit: 100,
        };
        assert!(
            store
                .list_docs(kind, a.id, q)
                .await
                .unwrap()
                .docs
                .is_empty()
        );
        assert!(
            store
                .read_events(a.id, kind, 0, 100)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.stream_head(a.id, kind).await.unwrap(), 0);
    }
    assert!(store.shares_of(a.id).await.unwrap().is_empty());
    for s in [&owned, &received] {
        assert_eq!(store.get_share(s.id).await.unwrap(), None);
        assert!(
            !store
                .has_share(s.owner_id, s.grantee_id, s.scope)
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .list_audit(a.id, None, 100)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    // The email is free again for a new account, which a tombstoned id of the old one does
    // not concern; the old account takes no writes any more (`conformance_erase`).
    let again = user("a@example.com");
    store.create_user(again.clone()).await.unwrap();
    let done = write(&*store, again.id, vec![put(versioned("s0", 0, 1.0, None))]).await;
    assert_eq!(done.outcomes, [OpOutcome::Inserted]);
    let late = store
        .write_samples(a.id, vec![put(versioned("s0", 0, 1.0, None))])
        .await;
    assert!(matches!(late, Err(StoreError::AccountErased)), "{late:?}");

    // Everyone else is untouched.
    assert_eq!(store.user_by_id(b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(stored(&*store, b.id).await, b_before.0);
    assert_eq!(store.changes(b.id, 0, 1000).await.unwrap(), b_before.1);
    assert_eq!(store.shares_of(b.id).await.unwrap(), vec![bystander]);
    assert_eq!(
        store
            .list_audit(b.id, None, 100)
            .await
            .unwrap()
            .entries
            .len(),
        3
    );
    for kind in [DocKind::Analysis, DocKind::Insight] {
        assert_eq!(store.stream_head(b.id, kind).await.unwrap(), 1);
    }
    let q = DocQuery {
        from_ms: None,
        to_ms: None,
        after: None,
        limit: 100,
    };
    assert_eq!(
        store
            .list_docs(DocKind::Analysis, b.id, q)
            .await
            .unwrap()
            .docs
            .len(),
        3
    );
    assert!(matches!(
        store
            .rotate_refresh_token(b_refresh.token_hash, token(b.id, 3600), chrono::Utc::now())
            .await
            .unwrap(),
        clarity::store::RotateOutcome::Rotated { .. }
    ));

    // A second erase finds nothing (idempotent).
    store.erase_user(c).await.unwrap();
    let twice = store.erase_user(b.id).await.unwrap();
    assert!(twice.account);
    let thrice = store.erase_user(b.id).await.unwrap();
    assert_eq!(thrice, clarity::store::Erased::default());
}

async fn superseded_marks_round_trip(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let (u, v) = (Uuid::new_v4(), Uuid::new_v4());
    for kind in [DocKind::Analysis, DocKind::Insight] {
        let old = doc(u, 20_000);
        let new = doc(u, 20_001);
        store.put_doc(kind, old.clone()).await.unwrap();
        store.put_doc(kind, new.clone()).await.unwrap();
        assert!(
            store
                .set_superseded(kind, u, old.id, Some(new.id))
                .await
                .unwrap()
        );
        let got = store.get_doc(kind, u, old.id).await.unwrap().unwrap();
        assert_eq!(got.superseded_by, Some(new.id));
        assert_eq!(got.body, old.body, "only the mark changes");
        let q = DocQuery {
            from_ms: None,
            to_ms: None,
            after: None,
            limit: 10,
        };
        let listed = store.list_docs(kind, u, q.clone()).await.unwrap().docs;
        assert_eq!(
            listed
                .iter()
                .map(|d| (d.id, d.superseded_by))
                .collect::<Vec<_>>(),
            [(old.id, Some(new.id)), (new.id, None)]
        );
        // Unknown documents, another user's id, the other kind: false, nothing changed.
        assert!(
            !store
                .set_superseded(kind, u, Uuid::new_v4(), Some(new.id))
                .await
                .unwrap()
        );
        assert!(!store.set_superseded(kind, v, old.id, None).await.unwrap());
        // Current again.
        assert!(store.set_superseded(kind, u, old.id, None).await.unwrap());
        assert_eq!(
            store
                .get_doc(kind, u, old.id)
                .await
                .unwrap()
                .unwrap()
                .superseded_by,
            None
        );
        // Storing the same document again keeps its mark (put_doc never overwrites).
        store
            .set_superseded(kind, u, old.id, Some(new.id))
            .await
            .unwrap();
        assert!(!store.put_doc(kind, old.clone()).await.unwrap());
        assert_eq!(
            store
                .get_doc(kind, u, old.id)
                .await
                .unwrap()
                .unwrap()
                .superseded_by,
            Some(new.id)
        );
    }
    let old = doc(u, 30_000);
    store.put_doc(DocKind::Analysis, old.clone()).await.unwrap();
    assert!(
        !store
            .set_superseded(DocKind::Insight, u, old.id, Some(Uuid::new_v4()))
            .await
            .unwrap()
    );
}

async fn concurrent_writes_from_two_handles_take_unique_seqs(backend: Backend) {
    let (dir, one) = open(&backend).await;
    let config = backend.config(dir.path());
    let two = clarity::app::open_store(&config).await.unwrap();
    let u = Uuid::new_v4();
    // Each batch inserts its own ids, updates a shared id and deletes one of its own, and
    // every batch goes through both handles at once.
    let batches: Vec<Vec<SampleOp>> = (0..8i64)
        .map(|b| {
            let mut ops: Vec<SampleOp> = (0..10)
                .map(|i| put(versioned(&format!("b{b}-{i}"), b * 20 + i, 60.0, None)))
                .collect();
            ops.push(put(versioned("shared", 0, b as f64, Some(b))));
            ops.push(del(&format!("b{b}-0")));
            ops
        })
        .collect();
    let results = join_all(batches.iter().flat_map(|ops| {
        [
            one.write_samples(u, ops.clone()),
            two.write_samples(u, ops.clone()),
        ]
    }))
    .await;
    let mut seqs = Vec::new();
    let mut inserted: BTreeMap<String, usize> = BTreeMap::new();
    for (k, res) in results.into_iter().enumerate() {
        let done = match res {
            Ok(d) => d,
            Err(StoreError::Overloaded) => panic!("overloaded at this size"),
            Err(e) => panic!("{e}"),
        };
        for (op, o) in batches[k / 2].iter().zip(&done.outcomes) {
            if *o == OpOutcome::Inserted {
                *inserted.entry(op.id().to_owned()).or_default() += 1;
            }
        }
        seqs.extend(done.seqs);
    }
    let unique: HashSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "no seq handed out twice");
    // Each own id inserted exactly once (the deleted b*-0 can't come back: its tombstone).
    assert_eq!(inserted.len(), 81);
    assert!(inserted.values().all(|n| *n == 1), "{inserted:?}");
    let head = one.changes(u, 0, 1).await.unwrap().head;
    assert_eq!(head, *unique.iter().max().unwrap());
    let state = stored(&*one, u).await;
    assert_eq!(state.len(), 8 * 9 + 1);
    assert_eq!(state["shared"].version, Some(7), "the highest version wins");
    assert_eq!(replayed(&*two, u, 50).await, state);
}

/// Random sequences of puts (new, re-sent, versioned up and down, unversioned), deletes
/// (stored, deleted, unknown) and mixed batches, against an in-memory model of the rules;
/// after each call the outcomes, `removed` and seqs match the model, and at the end the
/// stored samples and the change feed replayed from 0 equal the model's state. The seed is
/// printed; `CLARITY_SYNC_SEED` replays one.
async fn random_op_sequences_match_a_model(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let seed: u64 = std::env::var("CLARITY_SYNC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("random_op_sequences_match_a_model: seed {seed} (CLARITY_SYNC_SEED)");
    let mut rng = StdRng::seed_from_u64(seed);
    let u = Uuid::new_v4();
    // The model: live samples and tombstones (id -> version).
    let mut live: BTreeMap<String, Sample> = BTreeMap::new();
    let mut tombs: BTreeMap<String, Option<i64>> = BTreeMap::new();
    let mut last_seq = 0;
    let newer = |new: Option<i64>, old: Option<i64>| new.is_some_and(|v| v > old.unwrap_or(-1));
    for call in 0..30 {
        let n = rng.random_range(1..12);
        let mut ops = Vec::new();
        for _ in 0..n {
            let id = format!("i{}", rng.random_range(0..15));
            if rng.random_bool(0.25) {
                ops.push(del(&id));
            } else {
                let version = match rng.random_range(0..4) {
                    0 => None,
                    _ => Some(rng.random_range(0..6)),
                };
                let minute = rng.random_range(0..600);
                let kind = if rng.random_bool(0.5) {
                    Kind::HeartRate
                } else {
                    Kind::StepCount
                };
                ops.push(put(Sample {
                    version,
                    ..sample(&id, kind, minute, rng.random_range(0..200) as f64)
                }));
            }
        }
        // What the model says.
        let mut want = WriteResult::default();
        for op in &ops {
            let outcome = match op {
                SampleOp::Put(s) => {
                    if let Some(t) = tombs.get(&s.id) {
                        if newer(s.version, *t) {
                            tombs.remove(&s.id);
                            live.insert(s.id.clone(), s.clone());
                            OpOutcome::Inserted
                        } else {
                            OpOutcome::Duplicate
                        }
                    } else if let Some(old) = live.get(&s.id) {
                        if newer(s.version, old.version) {
                            want.removed.push(old.clone());
                            live.insert(s.id.clone(), s.clone());
                            OpOutcome::Updated
                        } else {
                            OpOutcome::Duplicate
                        }
                    } else {
                        live.insert(s.id.clone(), s.clone());
                        OpOutcome::Inserted
                    }
                }
                SampleOp::Delete(id) => match live.remove(id) {
                    Some(old) => {
                        tombs.insert(id.clone(), old.version);
                        want.removed.push(old);
                        OpOutcome::Deleted
                    }
                    None => OpOutcome::NotFound,
                },
            };
            want.outcomes.push(outcome);
        }
        let got = write(&*store, u, ops).await;
        assert_eq!(got.outcomes, want.outcomes, "seed {seed}, call {call}");
        assert_eq!(got.removed, want.removed, "seed {seed}, call {call}");
        for s in &got.seqs {
            assert!(
                *s > last_seq,
                "seed {seed}, call {call}: seq {s} after {last_seq}"
            );
            last_seq = *s;
        }
    }
    assert_eq!(stored(&*store, u).await, live, "seed {seed}");
    assert_eq!(replayed(&*store, u, 7).await, live, "seed {seed}");
    assert_eq!(store.changes(u, 0, 1).await.unwrap().head, last_seq);
}
