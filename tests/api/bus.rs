//! The bus contract, run on both implementations (in-process, and Redis when a redis-server
//! is available): messages reach the other nodes and not the sender; a lease is held by one
//! node at a time, renewed by its holder, taken over after it expires, released only by its
//! holder.

use std::sync::Arc;
use std::time::Duration;

use clarity::bus::memory::{MemoryBus, Net};
use clarity::bus::redis::RedisBus;
use clarity::bus::{Bus, Message};
use uuid::Uuid;

use crate::common::redis::RedisServer;

async fn contract(a: Arc<dyn Bus>, b: Arc<dyn Bus>) {
    let mut inbox_a = a.take_inbox().expect("inbox");
    let mut inbox_b = b.take_inbox().expect("inbox");
    assert!(a.take_inbox().is_none(), "the inbox is given once");

    let user = Uuid::new_v4();
    a.publish(Message::UserFrame {
        user,
        text: "hello".into(),
    });
    let got = tokio::time::timeout(Duration::from_secs(5), inbox_b.recv())
        .await
        .expect("delivered in time")
        .expect("inbox open");
    assert!(
        matches!(got, Message::UserFrame { user: u, ref text } if u == user && text == "hello")
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), inbox_a.recv())
            .await
            .is_err(),
        "a node does not hear itself"
    );

    let ttl = Duration::from_millis(400);
    let (u1, u2) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(a.claim(&[u1, u2], ttl).await.unwrap(), [true, true]);
    assert_eq!(b.claim(&[u1, u2], ttl).await.unwrap(), [false, false]);
    // Renewals keep it past the first period.
    for _ in 0..3 {
        tokio::time::sleep(ttl / 2).await;
        assert_eq!(a.claim(&[u1], ttl).await.unwrap(), [true]);
    }
    assert_eq!(b.claim(&[u1], ttl).await.unwrap(), [false]);
    // u2 was not renewed: it expired and moves.
    assert_eq!(b.claim(&[u2], ttl).await.unwrap(), [true]);
    assert_eq!(a.claim(&[u2], ttl).await.unwrap(), [false]);
    // Only the holder releases.
    b.release(&[u1]).await.unwrap();
    assert_eq!(b.claim(&[u1], ttl).await.unwrap(), [false]);
    a.release(&[u1]).await.unwrap();
    assert_eq!(b.claim(&[u1], ttl).await.unwrap(), [true]);
}

#[tokio::test]
async fn the_in_process_bus_keeps_the_contract() {
    let net = Net::new();
    let a: Arc<dyn Bus> = Arc::new(MemoryBus::new(Uuid::new_v4(), net.clone()));
    let b: Arc<dyn Bus> = Arc::new(MemoryBus::new(Uuid::new_v4(), net));
    contract(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_bus_keeps_the_contract() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let prefix = format!("t{}:", Uuid::new_v4().simple());
    let a: Arc<dyn Bus> = Arc::new(RedisBus::start(&redis.url(), &prefix, Uuid::new_v4()).unwrap());
    let b: Arc<dyn Bus> = Arc::new(RedisBus::start(&redis.url(), &prefix, Uuid::new_v4()).unwrap());
    for bus in [&a, &b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !bus.status().up {
            assert!(tokio::time::Instant::now() < deadline, "bus never up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    contract(a.clone(), b.clone()).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_bus_starts_without_redis_and_connects_when_it_appears() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    redis.stop().await;
    let prefix = format!("t{}:", Uuid::new_v4().simple());
    let bus = RedisBus::start(&redis.url(), &prefix, Uuid::new_v4()).unwrap();
    let mut reconnects = bus.reconnects();
    assert!(!bus.status().up);
    // Claims fail fast (the node then acts alone), never hang.
    let started = tokio::time::Instant::now();
    assert!(
        bus.claim(&[Uuid::new_v4()], Duration::from_secs(1))
            .await
            .is_err()
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    redis.restart().await;
    tokio::time::timeout(Duration::from_secs(10), reconnects.changed())
        .await
        .expect("connects once Redis is there")
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bus
        .claim(&[Uuid::new_v4()], Duration::from_secs(1))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "claims never work again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(bus.status().up);
    bus.close().await;
}
