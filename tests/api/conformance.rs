//! One suite for every `Store` backend: the same tests run on SQLite and on a real DynamoDB
//! server (`conformance::sqlite::*`, `conformance::dynamodb::*`). Every store operation is
//! covered here; a new operation gets its tests here for both backends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use clarity::samples::{Extra, Kind, Sample, Timestamp};
use clarity::store::{
    AuditRecord, Cursor, DocKind, DocQuery, DocRecord, RefreshTokenRecord, RotateOutcome,
    SampleQuery, ShareRecord, Store, StoreError, UserRecord,
};
use futures_util::future::join_all;
use uuid::Uuid;

use crate::common::Backend;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(b) = crate::common::Backend::dynamodb() {
                        super::$name(b).await;
                    }
                }
            )*
        }
    };
}
/// `conformance_sync` runs its tests on both backends the same way.
pub(crate) use conformance;

conformance!(
    ping_answers,
    accounts_are_unique_by_email,
    concurrent_signups_with_one_email_create_one_account,
    refresh_tokens_rotate_once_and_replays_revoke_the_family,
    concurrent_rotations_of_one_token_succeed_once,
    logout_revokes_the_whole_family_of_the_owners_token,
    sample_writes_are_idempotent,
    samples_round_trip_every_field,
    extra_fields_round_trip_and_survive_a_reopen,
    queries_order_filter_and_page,
    concurrent_duplicate_batches_from_two_handles_store_once,
    users_never_see_each_others_samples,
    documents_are_stored_once_listed_in_order_and_private,
    shares_are_unique_listed_both_ways_and_deletable,
    stream_offsets_are_dense_replayable_and_bounded,
    two_server_processes_share_one_store,
    audit_entries_are_private_newest_first_paged_and_expire,
);

pub(crate) async fn open(backend: &Backend) -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.open(dir.path()).await;
    (dir, store)
}

pub(crate) fn user(email: &str) -> UserRecord {
    UserRecord {
        id: Uuid::new_v4(),
        email: email.to_owned(),
        display_name: None,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        // Stores keep milliseconds.
        created_at: Utc.timestamp_millis_opt(1_780_000_000_123).unwrap(),
    }
}

pub(crate) fn token(user: Uuid, ttl_secs: i64) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: rand::random(),
        user_id: user,
        family_id: Uuid::new_v4(),
        expires_at: Utc
            .timestamp_millis_opt(Utc::now().timestamp_millis() + ttl_secs * 1000)
            .unwrap(),
    }
}

/// 2026-11-01T00:00:00Z plus `minute` minutes.
pub(crate) fn at(minute: i64) -> Timestamp {
    Timestamp {
        utc_ms: 1_793_491_200_000 + minute * 60_000,
        offset_secs: 3600,
    }
}

pub(crate) fn sample(id: &str, kind: Kind, minute: i64, value: f64) -> Sample {
    Sample {
        version: None,
        id: id.to_owned(),
        kind,
        start: at(minute),
        end: None,
        value,
        source: None,
        extra: None,
    }
}

pub(crate) fn query(kind: Option<Kind>, limit: usize) -> SampleQuery {
    SampleQuery {
        kind,
        from_ms: None,
        to_ms: None,
        after: None,
        limit,
    }
}

/// Every page of `q`, following cursors.
pub(crate) async fn all(store: &dyn Store, user: Uuid, mut q: SampleQuery) -> Vec<Sample> {
    let mut out = Vec::new();
    loop {
        let page = store.query_samples(user, q.clone()).await.unwrap();
        assert!(page.samples.len() <= q.limit);
        out.extend(page.samples);
        match page.next {
            Some(c) => q.after = Some(c),
            None => return out,
        }
    }
}

async fn ping_answers(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    store.ping().await.expect("ping");
}

async fn accounts_are_unique_by_email(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let mut a = user("a@example.com");
    a.display_name = Some("Ada Ü".into());
    store.create_user(a.clone()).await.unwrap();
    let clash = user("a@example.com");
    assert!(matches!(
        store.create_user(clash.clone()).await,
        Err(StoreError::EmailTaken)
    ));
    assert_eq!(
        store.user_by_id(clash.id).await.unwrap(),
        None,
        "no half account"
    );
    assert_eq!(
        store.user_by_email("a@example.com").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.user_by_id(a.id).await.unwrap(), Some(a));
    assert_eq!(store.user_by_email("b@example.com").await.unwrap(), None);
    assert_eq!(store.user_by_id(Uuid::new_v4()).await.unwrap(), None);
    let b = user("b@example.com");
    store.create_user(b.clone()).await.unwrap();
    assert_eq!(store.user_by_email("b@example.com").await.unwrap(), Some(b));
}

async fn concurrent_signups_with_one_email_create_one_account(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let attempts: Vec<UserRecord> = (0..8).map(|_| user("race@example.com")).collect();
    let results = join_all(attempts.iter().map(|u| store.create_user(u.clone()))).await;
    let winners: Vec<&UserRecord> = attempts
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(u, _)| u)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::EmailTaken)))
    );
    let stored = store.user_by_email("race@example.com").await.unwrap();
    assert_eq!(stored.as_ref(), Some(winners[0]));
}

async fn refresh_tokens_rotate_once_and_replays_revoke_the_family(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let u = user("t@example.com");
    store.create_user(u.clone()).await.unwrap();
    let first = token(u.id, 3600);
    store.insert_refresh_token(first.clone()).await.unwrap();
    let now = Utc::now();

    // The backend takes user and family from the old token, whatever the caller put.
    let mut second = token(Uuid::new_v4(), 3600);
    second.family_id = Uuid::new_v4();
    let out = store
        .rotate_refresh_token(first.token_hash, second.clone(), now)
        .await
        .unwrap();
    assert_eq!(
        out,
        RotateOutcome::Rotated {
            user_id: u.id,
            family_id: first.family_id
        }
    );

    let third = token(u.id, 3600);
    let out = store
        .rotate_refresh_token(second.token_hash, third.clone(), now)
        .await
        .unwrap();
    assert_eq!(
        out,
        RotateOutcome::Rotated {
            user_id: u.id,
            family_id: first.family_id
        }
    );

    // Replaying a spent token revokes the whole family, the live `third` included.
    let out = store
        .rotate_refresh_token(first.token_hash, token(u.id, 3600), now)
        .await
        .unwrap();
    assert_eq!(
        out,
        RotateOutcome::Reused {
            user_id: u.id,
            family_id: first.family_id
        }
    );
    let out = store
        .rotate_refresh_token(third.token_hash, token(u.id, 3600), now)
        .await
        .unwrap();
    assert_eq!(out, RotateOutcome::Invalid);

    let unknown = store
        .rotate_refresh_token(rand::random(), token(u.id, 3600), now)
        .await
        .unwrap();
    assert_eq!(unknown, RotateOutcome::Invalid);

    let expired = token(u.id, -1);
    store.insert_refresh_token(expired.clone()).await.unwrap();
    let out = store
        .rotate_refresh_token(expired.token_hash, token(u.id, 3600), now)
        .await
        .unwrap();
    assert_eq!(out, RotateOutcome::Invalid);

    // Another login's family is untouched by the revocation.
    let other = token(u.id, 3600);
    store.insert_refresh_token(other.clone()).await.unwrap();
    let out = store
        .rotate_refresh_token(other.token_hash, token(u.id, 3600), now)
        .await
        .unwrap();
    assert_eq!(
        out,
        RotateOutcome::Rotated {
            user_id: u.id,
            family_id: other.family_id
        }
    );
}

async fn logout_revokes_the_whole_family_of_the_owners_token(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let u = user("logout@example.com");
    store.create_user(u.clone()).await.unwrap();
    let now = Utc::now();
    let keep = now + chrono::Duration::days(30);
    let first = token(u.id, 3600);
    store.insert_refresh_token(first.clone()).await.unwrap();
    let second = token(u.id, 3600);
    let out = store
        .rotate_refresh_token(first.token_hash, second.clone(), now)
        .await
        .unwrap();
    assert!(matches!(out, RotateOutcome::Rotated { .. }), "{out:?}");
    let other_login = token(u.id, 3600);
    store
        .insert_refresh_token(other_login.clone())
        .await
        .unwrap();

    // Someone else's token, or an unknown one, revokes nothing.
    let stranger = Uuid::new_v4();
    assert_eq!(
        store
            .revoke_refresh_family(second.token_hash, stranger, keep)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .revoke_refresh_family(rand::random(), u.id, keep)
            .await
            .unwrap(),
        None
    );
    // Presenting the spent first token names the same family as the live second one.
    assert_eq!(
        store
            .revoke_refresh_family(first.token_hash, u.id, keep)
            .await
            .unwrap(),
        Some(first.family_id)
    );
    let out = store
        .rotate_refresh_token(second.token_hash, token(u.id, 3600), now)
        .await
        .unwrap();
    assert_eq!(out, RotateOutcome::Invalid);
    // Again is fine (a repeated logout), and the other login is untouched.
    assert_eq!(
        store
            .revoke_refresh_family(second.token_hash, u.id, keep)
            .await
            .unwrap(),
        Some(first.family_id)
    );
    let out = store
        .rotate_refresh_token(other_login.token_hash, token(u.id, 3600), now)
        .await
        .unwrap();
    assert!(matches!(out, RotateOutcome::Rotated { .. }), "{out:?}");
}

async fn concurrent_rotations_of_one_token_succeed_once(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let u = user("r@example.com");
    store.create_user(u.clone()).await.unwrap();
    let t = token(u.id, 3600);
    store.insert_refresh_token(t.clone()).await.unwrap();
    let news: Vec<RefreshTokenRecord> = (0..6).map(|_| token(u.id, 3600)).collect();
    let now = Utc::now();
    let outs = join_all(
        news.iter()
            .map(|n| store.rotate_refresh_token(t.token_hash, n.clone(), now)),
    )
    .await;
    let outs: Vec<RotateOutcome> = outs.into_iter().map(Result::unwrap).collect();
    let won: Vec<usize> = (0..outs.len())
        .filter(|i| matches!(outs[*i], RotateOutcome::Rotated { .. }))
        .collect();
    assert_eq!(won.len(), 1, "{outs:?}");
    assert!(
        outs.contains(&RotateOutcome::Reused {
            user_id: u.id,
            family_id: t.family_id
        }),
        "{outs:?}"
    );
    // The race was a replay: the winner's token belongs to a revoked family.
    let out = store
        .rotate_refresh_token(news[won[0]].token_hash, token(u.id, 3600), now)
        .await
        .unwrap();
    assert_eq!(out, RotateOutcome::Invalid);
}

async fn sample_writes_are_idempotent(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let u = Uuid::new_v4();
    // Three hours of heart rate and steps: several chunks on a chunked backend.
    let batch: Vec<Sample> = (0..180)
        .flat_map(|m| {
            [
                sample(
                    &format!("hr-{m}"),
                    Kind::HeartRate,
                    m,
                    60.0 + (m % 7) as f64,
                ),
                sample(&format!("st-{m}"), Kind::StepCount, m, m as f64),
            ]
        })
        .collect();
    let new = store.insert_samples(u, batch.clone()).await.unwrap();
    assert_eq!(new, vec![true; batch.len()]);
    let again = store.insert_samples(u, batch.clone()).await.unwrap();
    assert_eq!(
        again,
        vec![false; batch.len()],
        "a retried batch is all duplicates"
    );

    // Overlap: half old, half new, and an id twice within the batch (first one wins).
    let mut mixed: Vec<Sample> = batch[..10].to_vec();
    mixed.extend((200..210).map(|m| sample(&format!("hr-{m}"), Kind::HeartRate, m, 70.0)));
    mixed.push(sample("hr-205", Kind::HeartRate, 205, 99.0));
    let new = store.insert_samples(u, mixed).await.unwrap();
    let mut want = vec![false; 10];
    want.extend(vec![true; 10]);
    want.push(false);
    assert_eq!(new, want);

    let stored = all(&*store, u, query(None, 1000)).await;
    assert_eq!(stored.len(), batch.len() + 10);
    let hr205 = stored.iter().find(|s| s.id == "hr-205").unwrap();
    assert_eq!(
        hr205.value, 70.0,
        "the first of two same-id samples is kept"
    );
    assert_eq!(
        store.insert_samples(u, Vec::new()).await.unwrap(),
        Vec::<bool>::new()
    );
}

/// Blood pressure's diastolic and a workout's activity are stored with the sample on every
/// backend, read back by kind and in time order, and still there after the store is reopened.
async fn extra_fields_round_trip_and_survive_a_reopen(backend: Backend) {
    let (dir, store) = open(&backend).await;
    let u = Uuid::new_v4();
    let extra = |diastolic: Option<f64>, activity: Option<&str>| {
        Some(Box::new(Extra {
            provenance: None,
            diastolic,
            activity: activity.map(str::to_owned),
        }))
    };
    let samples = vec![
        Sample {
            extra: extra(Some(78.756465), None),
            source: Some("Omron".into()),
            ..sample("bp-1", Kind::BloodPressure, 20, 120.009852)
        },
        Sample {
            end: Some(at(62)),
            extra: extra(None, Some("traditional_strength_training")),
            ..sample("workout-1", Kind::Workout, 21, 298.75717)
        },
        sample("glucose-1", Kind::BloodGlucose, 22, 99.0858),
        sample("hr-1", Kind::HeartRate, 23, 61.0),
    ];
    let fresh = store.insert_samples(u, samples.clone()).await.unwrap();
    assert_eq!(fresh, vec![true; 4]);
    assert_eq!(all(&*store, u, query(None, 2)).await, samples);
    assert_eq!(
        all(&*store, u, query(Some(Kind::Workout), 10)).await,
        vec![samples[1].clone()]
    );
    // Stored again (a retry): duplicates, and the stored fields are unchanged.
    assert_eq!(
        store.insert_samples(u, samples.clone()).await.unwrap(),
        vec![false; 4]
    );
    drop(store);
    let store = backend.open(dir.path()).await;
    assert_eq!(all(&*store, u, query(None, 10)).await, samples);
}

async fn samples_round_trip_every_field(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let u = Uuid::new_v4();
    let samples = vec![
        Sample {
            version: None,
            id: "steps-interval".into(),
            kind: Kind::StepCount,
            start: at(10),
            end: Some(Timestamp {
                utc_ms: at(25).utc_ms,
                offset_secs: -5 * 3600,
            }),
            value: 1234.0,
            source: Some("com.apple.health.Ünïcode/iPhone".into()),
            extra: None,
        },
        Sample {
            start: Timestamp {
                utc_ms: at(11).utc_ms + 123,
                offset_secs: 19800,
            },
            ..sample("hrv-1", Kind::HeartRateVariability, 0, 42.125)
        },
        sample("sleep-1", Kind::SleepStage, 12, 3.0),
        Sample {
            source: Some(String::new()),
            ..sample("act-1", Kind::ActivityCount, 13, 0.0)
        },
    ];
    store.insert_samples(u, samples.clone()).await.unwrap();
    let stored = all(&*store, u, query(None, 10)).await;
    assert_eq!(stored, samples);
}

async fn queries_order_filter_and_page(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let u = Uuid::new_v4();
    let mut samples = Vec::new();
    for m in 0..150i64 {
        // Two kinds at the same instant: order falls back to the id.
        samples.push(sample(&format!("b{m:03}"), Kind::HeartRate, m * 3, 60.0));
        samples.push(sample(
            &format!("a{m:03}"),
            Kind::ActivityCount,
            m * 3,
            m as f64,
        ));
        if m % 10 == 0 {
            samples.push(sample(
                &format!("c{m:03}"),
                Kind::SleepStage,
                m * 3 + 1,
                2.0,
            ));
        }
    }
    store.insert_samples(u, samples.clone()).await.unwrap();
    let mut sorted = samples.clone();
    sorted.sort_by(|a, b| (a.start.utc_ms, &a.id).cmp(&(b.start.utc_ms, &b.id)));

    for limit in [1, 7, 100, 1000] {
        let got = all(&*store, u, query(None, limit)).await;
        assert_eq!(
            got.iter().map(|s| &s.id).collect::<Vec<_>>(),
            sorted.iter().map(|s| &s.id).collect::<Vec<_>>(),
            "limit {limit}"
        );
    }
    let hr = all(&*store, u, query(Some(Kind::HeartRate), 13)).await;
    assert_eq!(hr.len(), 150);
    assert!(hr.iter().all(|s| s.kind == Kind::HeartRate));
    assert!(
        all(&*store, u, query(Some(Kind::HeartRateVariability), 5))
            .await
            .is_empty()
    );

    let mut window = query(None, 1000);
    window.from_ms = Some(at(30).utc_ms);
    window.to_ms = Some(at(90).utc_ms);
    let got = all(&*store, u, window).await;
    let want: Vec<&Sample> = sorted
        .iter()
        .filter(|s| s.start.utc_ms >= at(30).utc_ms && s.start.utc_ms < at(90).utc_ms)
        .collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), want);

    // A cursor continues strictly after its position, across a same-instant tie.
    let mut after = query(None, 3);
    after.after = Some(Cursor {
        start_ms: at(30).utc_ms,
        id: "a010".into(),
    });
    let page = store.query_samples(u, after).await.unwrap();
    let ids: Vec<&str> = page.samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["b010", "c010", "a011"]);
    assert!(page.next.is_some());

    let mut empty = query(None, 10);
    empty.from_ms = Some(at(1000).utc_ms);
    let page = store.query_samples(u, empty).await.unwrap();
    assert!(page.samples.is_empty() && page.next.is_none());
}

async fn concurrent_duplicate_batches_from_two_handles_store_once(backend: Backend) {
    let (dir, one) = open(&backend).await;
    // A second, independent handle on the same data, as a second node would have.
    let config = backend.config(dir.path());
    let two = clarity::app::open_store(&config).await.unwrap();
    let u = Uuid::new_v4();
    let batches: Vec<Vec<Sample>> = (0..6)
        .map(|b| {
            (0..60)
                .map(|i| sample(&format!("d{b}-{i}"), Kind::HeartRate, b * 45 + i, 61.0))
                .collect()
        })
        .collect();
    let writes = batches.iter().flat_map(|batch| {
        [
            one.insert_samples(u, batch.clone()),
            two.insert_samples(u, batch.clone()),
        ]
    });
    let results = join_all(writes).await;
    let mut new_count: HashMap<String, usize> = HashMap::new();
    for (k, res) in results.into_iter().enumerate() {
        let flags = res.unwrap();
        for (s, is_new) in batches[k / 2].iter().zip(flags) {
            *new_count.entry(s.id.clone()).or_default() += usize::from(is_new);
        }
    }
    assert_eq!(new_count.len(), 360);
    assert!(
        new_count.values().all(|n| *n == 1),
        "each sample reported new exactly once across both handles"
    );
    let stored = all(&*one, u, query(None, 1000)).await;
    let ids: HashSet<&str> = stored.iter().map(|s| s.id.as_str()).collect();
    assert_eq!((stored.len(), ids.len()), (360, 360));
}

async fn users_never_see_each_others_samples(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    store
        .insert_samples(a, vec![sample("same-id", Kind::HeartRate, 1, 50.0)])
        .await
        .unwrap();
    // The same id for another user is another sample.
    let new = store
        .insert_samples(b, vec![sample("same-id", Kind::HeartRate, 1, 90.0)])
        .await
        .unwrap();
    assert_eq!(new, [true]);
    let seen_by_a = all(&*store, a, query(None, 10)).await;
    assert_eq!(seen_by_a.len(), 1);
    assert_eq!(seen_by_a[0].value, 50.0);
    assert!(
        all(&*store, Uuid::new_v4(), query(None, 10))
            .await
            .is_empty()
    );
}

pub(crate) fn doc(user: Uuid, to_minute: i64) -> DocRecord {
    DocRecord {
        superseded_by: None,
        id: Uuid::new_v4(),
        user_id: user,
        created_at: Utc
            .timestamp_millis_opt(1_790_000_000_000 + to_minute)
            .unwrap(),
        window_from_ms: at(to_minute - 10_080).utc_ms,
        window_to_ms: at(to_minute).utc_ms,
        body: format!("{{\"to\":{to_minute},\"text\":\"Ünïcode ✓\"}}"),
    }
}

async fn documents_are_stored_once_listed_in_order_and_private(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    for kind in [DocKind::Analysis, DocKind::Insight] {
        documents_of_one_kind(&*store, kind).await;
    }
    // Kinds are separate collections: an analysis id is not an insight.
    let u = Uuid::new_v4();
    let d = doc(u, 100);
    assert!(store.put_doc(DocKind::Analysis, d.clone()).await.unwrap());
    assert_eq!(
        store.get_doc(DocKind::Insight, u, d.id).await.unwrap(),
        None
    );
    assert!(store.put_doc(DocKind::Insight, d.clone()).await.unwrap());
}

async fn documents_of_one_kind(store: &dyn Store, kind: DocKind) {
    let (u, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut records: Vec<DocRecord> = [3000, 1000, 2000, 2000, 5000, 4000]
        .iter()
        .map(|m| doc(u, *m))
        .collect();
    for r in &records {
        assert!(store.put_doc(kind, r.clone()).await.unwrap(), "new");
    }
    // The same id again (the same data analysed twice) is not stored twice.
    let mut again = records[0].clone();
    again.body = "{\"changed\":true}".into();
    assert!(!store.put_doc(kind, again).await.unwrap());
    assert_eq!(
        store
            .get_doc(kind, u, records[0].id)
            .await
            .unwrap()
            .as_ref(),
        Some(&records[0])
    );
    assert_eq!(
        store.get_doc(kind, other, records[0].id).await.unwrap(),
        None,
        "private"
    );
    assert_eq!(store.get_doc(kind, u, Uuid::new_v4()).await.unwrap(), None);
    store.put_doc(kind, doc(other, 2500)).await.unwrap();

    records.sort_by_key(|r| (r.window_to_ms, r.id));
    for limit in [1, 2, 100] {
        let mut q = DocQuery {
            from_ms: None,
            to_ms: None,
            after: None,
            limit,
        };
        let mut got = Vec::new();
        loop {
            let page = store.list_docs(kind, u, q.clone()).await.unwrap();
            assert!(page.docs.len() <= limit);
            got.extend(page.docs);
            match page.next {
                Some(c) => q.after = Some(c),
                None => break,
            }
        }
        assert_eq!(got, records, "limit {limit}");
    }
    let q = DocQuery {
        from_ms: Some(at(2000).utc_ms),
        to_ms: Some(at(4000).utc_ms),
        after: None,
        limit: 10,
    };
    let page = store.list_docs(kind, u, q).await.unwrap();
    let ends: Vec<i64> = page.docs.iter().map(|a| a.window_to_ms).collect();
    assert_eq!(ends, [at(2000).utc_ms, at(2000).utc_ms, at(3000).utc_ms]);
    assert!(page.next.is_none());
}

/// Two real `clarity` processes on one store; a device's batches reach both at once.
async fn two_server_processes_share_one_store(backend: Backend) {
    crate::conformance_nodes::two_nodes_store_each_sample_once(backend).await;
}

pub(crate) fn share(owner: Uuid, grantee: Uuid, scope: DocKind) -> ShareRecord {
    ShareRecord {
        id: Uuid::new_v4(),
        owner_id: owner,
        grantee_id: grantee,
        scope,
        created_at: Utc.timestamp_millis_opt(1_780_000_000_456).unwrap(),
    }
}

async fn shares_are_unique_listed_both_ways_and_deletable(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let first = share(a, b, DocKind::Insight);
    assert_eq!(store.put_share(first.clone()).await.unwrap(), first);
    // The same grant again (even racing) is the stored share.
    let again = join_all((0..6).map(|_| store.put_share(share(a, b, DocKind::Insight)))).await;
    for r in again {
        assert_eq!(r.unwrap().id, first.id);
    }
    let other_scope = share(a, b, DocKind::Analysis);
    store.put_share(other_scope.clone()).await.unwrap();
    let reverse = share(b, a, DocKind::Insight);
    store.put_share(reverse.clone()).await.unwrap();

    assert!(store.has_share(a, b, DocKind::Insight).await.unwrap());
    assert!(store.has_share(a, b, DocKind::Analysis).await.unwrap());
    assert!(!store.has_share(a, c, DocKind::Insight).await.unwrap());
    assert!(!store.has_share(c, b, DocKind::Insight).await.unwrap());
    assert_eq!(
        store.get_share(first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.get_share(Uuid::new_v4()).await.unwrap(), None);

    let ids = |v: Vec<ShareRecord>| v.into_iter().map(|s| s.id).collect::<HashSet<_>>();
    let want: HashSet<_> = [first.id, other_scope.id, reverse.id].into();
    assert_eq!(ids(store.shares_of(a).await.unwrap()), want);
    assert_eq!(ids(store.shares_of(b).await.unwrap()), want);
    assert!(store.shares_of(c).await.unwrap().is_empty());

    assert!(store.delete_share(&first).await.unwrap());
    assert!(!store.delete_share(&first).await.unwrap());
    assert!(!store.has_share(a, b, DocKind::Insight).await.unwrap());
    assert!(store.has_share(a, b, DocKind::Analysis).await.unwrap());
    assert_eq!(store.get_share(first.id).await.unwrap(), None);
    assert_eq!(
        ids(store.shares_of(b).await.unwrap()),
        [other_scope.id, reverse.id].into()
    );
    // Granting again after a revoke is a new share.
    let renewed = store
        .put_share(share(a, b, DocKind::Insight))
        .await
        .unwrap();
    assert_ne!(renewed.id, first.id);
}

async fn stream_offsets_are_dense_replayable_and_bounded(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let epoch = store.epoch().await.unwrap();
    assert!(!epoch.is_empty());
    assert_eq!(store.epoch().await.unwrap(), epoch);
    let (u, v) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(store.stream_head(u, DocKind::Insight).await.unwrap(), 0);
    assert!(
        store
            .read_events(u, DocKind::Insight, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Concurrent appends get distinct, dense offsets.
    let offsets = join_all(
        (0..5).map(|i| store.append_event(u, DocKind::Insight, format!("{{\"n\":{i}}}"), 100)),
    )
    .await;
    let mut offsets: Vec<u64> = offsets.into_iter().map(Result::unwrap).collect();
    offsets.sort();
    assert_eq!(offsets, vec![1, 2, 3, 4, 5]);
    assert_eq!(store.stream_head(u, DocKind::Insight).await.unwrap(), 5);
    let all = store.read_events(u, DocKind::Insight, 0, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.offset).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let bodies: HashSet<_> = all.iter().map(|e| e.body.clone()).collect();
    assert_eq!(bodies.len(), 5);
    let page = store.read_events(u, DocKind::Insight, 3, 1).await.unwrap();
    assert_eq!(page.iter().map(|e| e.offset).collect::<Vec<_>>(), vec![4]);

    // Streams are per user and kind.
    assert_eq!(store.stream_head(u, DocKind::Analysis).await.unwrap(), 0);
    assert_eq!(store.stream_head(v, DocKind::Insight).await.unwrap(), 0);
    assert_eq!(
        store
            .append_event(v, DocKind::Insight, "{}".into(), 100)
            .await
            .unwrap(),
        1
    );

    // History beyond `keep` is dropped; offsets continue.
    assert_eq!(
        store
            .append_event(u, DocKind::Insight, "{}".into(), 3)
            .await
            .unwrap(),
        6
    );
    let kept = store.read_events(u, DocKind::Insight, 0, 10).await.unwrap();
    let kept: Vec<u64> = kept.iter().map(|e| e.offset).collect();
    assert!(
        kept.ends_with(&[4, 5, 6]),
        "the last `keep` events stay: {kept:?}"
    );
}

pub(crate) fn audit_entry(owner: Uuid, n: i64) -> AuditRecord {
    let at = Utc
        .timestamp_millis_opt(Utc::now().timestamp_millis() - 60_000 + n)
        .unwrap();
    AuditRecord {
        // Time-ordered ids, as the server makes them.
        id: Uuid::now_v7(),
        owner_id: owner,
        actor_id: (n % 2 == 0).then(Uuid::new_v4),
        action: if n % 3 == 0 { "login" } else { "data_read" }.into(),
        target: (n % 2 == 1).then(|| format!("insights/{}", Uuid::new_v4())),
        at,
        ip: (n % 4 != 3).then(|| ["127.0.0.1", "2001:db8::7"][(n % 2) as usize].into()),
        user_agent: (n % 5 != 4).then(|| format!("Ünïcode agent/{n} ✓")),
        expires_at: at + chrono::Duration::days(365),
    }
}

async fn audit_entries_are_private_newest_first_paged_and_expire(backend: Backend) {
    let (_dir, store) = open(&backend).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(
        store
            .list_audit(a, None, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );

    let mut written = Vec::new();
    for n in 0..12 {
        let e = audit_entry(a, n);
        store.append_audit(e.clone()).await.unwrap();
        written.push(e);
        // Another owner's entries, interleaved.
        store.append_audit(audit_entry(b, n)).await.unwrap();
    }
    // An expired entry (retention passed, not yet deleted) is not listed.
    let mut expired = audit_entry(a, 99);
    expired.expires_at = Utc
        .timestamp_millis_opt(Utc::now().timestamp_millis() - 1000)
        .unwrap();
    store.append_audit(expired.clone()).await.unwrap();
    // Concurrent appends all land.
    let more: Vec<AuditRecord> = (12..18).map(|n| audit_entry(a, n)).collect();
    for r in join_all(more.iter().map(|e| store.append_audit(e.clone()))).await {
        r.unwrap();
    }
    written.extend(more);
    written.sort_by_key(|e| std::cmp::Reverse(e.id));

    for limit in [1, 5, 18, 100] {
        let mut got = Vec::new();
        let mut before = None;
        loop {
            let page = store.list_audit(a, before, limit).await.unwrap();
            assert!(page.entries.len() <= limit);
            got.extend(page.entries);
            match page.next {
                Some(id) => before = Some(id),
                None => break,
            }
        }
        assert_eq!(
            got, written,
            "limit {limit}: every field, newest first, no expired"
        );
    }
    let theirs = store.list_audit(b, None, 100).await.unwrap().entries;
    assert_eq!(theirs.len(), 12);
    assert!(
        theirs.iter().all(|e| e.owner_id == b),
        "private to the owner"
    );
    // `before` is exclusive.
    let page = store.list_audit(a, Some(written[2].id), 2).await.unwrap();
    assert_eq!(
        page.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        [written[3].id, written[4].id]
    );
    assert_eq!(page.next, Some(written[4].id));
    let last = written.last().unwrap().id;
    let page = store.list_audit(a, Some(last), 10).await.unwrap();
    assert!(page.entries.is_empty() && page.next.is_none());
}
