use super::*;
use crate::samples::Timestamp;

const NOW: i64 = 1_800_000_000_000;

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
        value: 60.0,
        source: None,
        extra: None,
    }
}

fn put(id: &str, minute: i64, version: Option<i64>) -> SampleOp {
    SampleOp::Put(sample(id, minute, version))
}

fn del(id: &str) -> SampleOp {
    SampleOp::Delete(id.to_owned())
}

fn stored(minute: i64, version: Option<i64>) -> State {
    State::Live {
        chunk: (
            Kind::HeartRate,
            codec::bucket_of(sample("x", minute, None).start.utc_ms),
        ),
        version,
        sample: None,
    }
}

#[test]
fn versions_decide_updates_and_tombstones_refuse_stale_resends() {
    use OpOutcome::*;
    let states = HashMap::from([
        ("live".to_owned(), stored(0, Some(3))),
        ("plain".to_owned(), stored(0, None)),
        (
            "gone".to_owned(),
            State::Tomb {
                version: Some(5),
                deleted_ms: NOW - 1000,
            },
        ),
        (
            "old-tomb".to_owned(),
            State::Tomb {
                version: Some(5),
                deleted_ms: NOW - TOMBSTONE_MS,
            },
        ),
    ]);
    let ops = vec![
        put("live", 0, Some(3)),
        put("live", 0, None),
        put("live", 0, Some(4)),
        put("plain", 0, None),
        put("plain", 0, Some(0)),
        put("gone", 0, Some(5)),
        put("gone", 0, None),
        put("gone", 0, Some(6)),
        put("old-tomb", 0, None),
        del("nope"),
        del("plain"),
        del("plain"),
    ];
    let p = plan(&ops, states, 10, NOW);
    assert_eq!(
        p.outcomes,
        vec![
            Duplicate, Duplicate, Updated, Duplicate, Updated, Duplicate, Duplicate, Inserted,
            Inserted, NotFound, Deleted, NotFound
        ]
    );
    assert_eq!(p.seqs, vec![11, 12, 13, 14, 15]);
    assert_eq!(
        p.removed.len(),
        3,
        "two updates and a delete of stored samples"
    );
    assert_eq!(p.parts.len(), 1);
    let part = &p.parts[0];
    // "plain" was updated then deleted: one index write, a tombstone keeping version 0.
    assert_eq!(
        part.index["plain"],
        (
            State::Tomb {
                version: Some(0),
                deleted_ms: NOW
            },
            15
        )
    );
    let edit = part.chunks.values().next().unwrap();
    assert!(edit.remove.contains("plain") && !edit.set.contains_key("plain"));
    assert_eq!(edit.set["live"].version, Some(4));
}

#[test]
fn a_put_then_delete_in_one_batch_and_a_move_between_chunks() {
    let ops = vec![
        put("a", 0, None),
        del("a"),
        put("a", 0, None),
        put("b", 0, Some(1)),
        put("b", 600, Some(2)),
    ];
    let p = plan(&ops, HashMap::new(), 0, NOW);
    use OpOutcome::*;
    assert_eq!(
        p.outcomes,
        vec![Inserted, Deleted, Duplicate, Inserted, Updated]
    );
    assert_eq!(
        p.removed,
        vec![
            Removed::Known(sample("a", 0, None)),
            Removed::Known(sample("b", 0, Some(1)))
        ]
    );
    let part = &p.parts[0];
    assert_eq!(part.changes.len(), 4);
    // Only b's final chunk is set; a never reaches a chunk.
    let sets: Vec<_> = part.chunks.values().flat_map(|e| e.set.keys()).collect();
    assert_eq!(sets, vec!["b"]);
    assert!(part.chunks.values().all(|e| e.remove.is_empty()));
}

#[test]
fn big_batches_split_into_parts_that_fit_a_transaction() {
    // 500 new ids over 5 hours: every part within the limits, ops covered in order.
    let ops: Vec<SampleOp> = (0..500)
        .map(|i| put(&format!("s{i}"), i % 300, None))
        .collect();
    let p = plan(&ops, HashMap::new(), 0, NOW);
    assert!(p.parts.len() >= 6);
    let mut seqs = Vec::new();
    for part in &p.parts {
        assert!(part.index.len() + part.chunks.len() <= MAX_PART_ITEMS);
        seqs.extend(part.changes.iter().map(|c| c.seq));
    }
    assert_eq!(seqs, (1..=500).collect::<Vec<u64>>());
    assert_eq!(p.parts.last().unwrap().end, 500);
    // A batch of duplicates plans no write at all.
    let states = ops
        .iter()
        .map(|o| (o.id().to_owned(), stored(0, None)))
        .collect();
    assert!(plan(&ops, states, 7, NOW).parts.is_empty());
}
