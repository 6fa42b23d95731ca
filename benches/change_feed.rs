//! Change-feed read throughput on SQLite: changes/s read by `Store::changes` from 0 in pages
//! of 1000 (the REST maximum), the read behind both `GET /api/v1/changes` and a `samples`
//! subscription's replay. One user with 20,000 samples, of which 10% were updated and 1%
//! deleted (so the feed mixes upserts and tombstones). Run: `cargo bench --bench change_feed`.

use std::hint::black_box;
use std::sync::Arc;

use clarity::samples::{Sample, parse_batch};
use clarity::store::sqlite::{SqliteOptions, SqliteStore};
use clarity::store::{SampleOp, Store};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use uuid::Uuid;

const SAMPLES: usize = 20_000;
const PAGE: usize = 1000;

fn sample(i: usize, version: Option<i64>) -> Sample {
    let start =
        chrono::Utc::now() - chrono::Duration::days(15) + chrono::Duration::minutes(i as i64);
    let text = format!(
        r#"{{"id":"s{i}","kind":"heart_rate","start":"{}","value":{}}}"#,
        start.to_rfc3339(),
        50 + i % 60
    );
    let raw = serde_json::value::RawValue::from_string(text).unwrap();
    let (mut ok, _) = parse_batch(&[&*raw], chrono::Utc::now().timestamp_millis());
    let mut s = ok.remove(0).1;
    s.version = version;
    s
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
    let user = Uuid::now_v7();
    let total = rt.block_on(async {
        for chunk in (0..SAMPLES).collect::<Vec<_>>().chunks(1000) {
            let ops = chunk
                .iter()
                .map(|&i| SampleOp::Put(sample(i, None)))
                .collect();
            store.write_samples(user, ops).await.unwrap();
        }
        let mut ops: Vec<SampleOp> = (0..SAMPLES)
            .step_by(10)
            .map(|i| SampleOp::Put(sample(i, Some(1))))
            .collect();
        ops.extend(
            (5..SAMPLES)
                .step_by(100)
                .map(|i| SampleOp::Delete(format!("s{i}"))),
        );
        store.write_samples(user, ops).await.unwrap();
        read_all(&*store, user).await
    });
    let mut g = c.benchmark_group("change_feed");
    g.throughput(Throughput::Elements(total as u64));
    g.bench_function("sqlite_read_from_0_pages_of_1000", |b| {
        b.iter(|| black_box(rt.block_on(read_all(&*store, user))))
    });
    g.finish();
}

/// Reads the whole feed from 0; returns how many changes it listed.
async fn read_all(store: &dyn Store, user: Uuid) -> usize {
    let (mut after, mut n) = (0, 0);
    loop {
        let page = store.changes(user, after, PAGE).await.unwrap();
        n += page.changes.len();
        match page.changes.last() {
            Some(c) if page.more => after = c.seq,
            _ => return n,
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
