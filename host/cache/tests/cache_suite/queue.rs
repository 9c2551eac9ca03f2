//! Generic checks of the `WorkQueue` contract, on one queue handle; the
//! backends add checks with several handles where they can have them.

use std::collections::BTreeSet;

use super::*;

/// How long a `next` that should find nothing waits.
const BRIEFLY: Duration = Duration::from_millis(100);
/// How long a `next` that should find something may wait.
const PATIENTLY: Duration = Duration::from_secs(10);

pub async fn next(q: &Arc<dyn WorkQueue>, consumer: &str) -> Work {
    q.next(consumer, PATIENTLY)
        .await
        .expect("next")
        .expect("an item is waiting")
}

pub async fn nothing_next(q: &Arc<dyn WorkQueue>, consumer: &str) {
    let got = q.next(consumer, BRIEFLY).await.expect("next");
    assert_eq!(got, None, "nothing should be waiting");
}

pub async fn work_is_handed_out_once_and_gone_when_acked(q: Arc<dyn WorkQueue>) {
    assert!(!q.backend().is_empty());
    assert_eq!(q.depth().await.expect("depth"), 0);
    nothing_next(&q, "c").await;

    let a = q.push(b"a").await.expect("push");
    let b = q.push(b"b").await.expect("push");
    assert_ne!(a, b);
    assert_eq!(q.depth().await.expect("depth"), 2);

    let first = next(&q, "c").await;
    assert_eq!(
        (first.id.as_str(), first.payload.as_slice()),
        (a.as_str(), &b"a"[..])
    );
    assert_eq!(first.deliveries, 1);
    let second = next(&q, "c").await;
    assert_eq!(
        (second.id.as_str(), second.payload.as_slice()),
        (b.as_str(), &b"b"[..])
    );
    nothing_next(&q, "c").await;
    nothing_next(&q, "another").await;
    assert_eq!(
        q.depth().await.expect("depth"),
        2,
        "handed out but not acknowledged still counts"
    );

    q.ack(&a).await.expect("ack");
    assert_eq!(q.depth().await.expect("depth"), 1);
    q.ack(&b).await.expect("ack");
    assert_eq!(q.depth().await.expect("depth"), 0);
    nothing_next(&q, "c").await;
}

pub async fn payloads_round_trip_as_bytes(q: Arc<dyn WorkQueue>) {
    let every_byte: Vec<u8> = (0..=255).collect();
    for payload in [every_byte, Vec::new(), vec![0xA5; 256 << 10]] {
        let id = q.push(&payload).await.expect("push");
        let work = next(&q, "c").await;
        assert_eq!(work.id, id);
        assert_eq!(work.payload, payload);
        q.ack(&id).await.expect("ack");
    }
}

pub async fn next_wakes_up_for_a_push(q: Arc<dyn WorkQueue>) {
    let waiting = {
        let q = q.clone();
        tokio::spawn(async move { q.next("c", PATIENTLY).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = q.push(b"late").await.expect("push");
    // Had the push not woken it, the wait would end with nothing.
    let work = waiting
        .await
        .expect("the waiting task")
        .expect("next")
        .expect("the pushed item");
    assert_eq!(work.id, id);
    q.ack(&id).await.expect("ack");
}

pub async fn concurrent_consumers_get_different_items(q: Arc<dyn WorkQueue>) {
    let mut pushed = BTreeSet::new();
    for n in 0..20 {
        pushed.insert(q.push(format!("item {n}").as_bytes()).await.expect("push"));
    }
    let consumers: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|name| {
            let q = q.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(work) = q.next(name, BRIEFLY).await.expect("next") {
                    got.push(work.id);
                }
                got
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for consumer in consumers {
        for id in consumer.await.expect("a consumer task") {
            assert!(seen.insert(id.clone()), "{id} was handed out twice");
        }
    }
    assert_eq!(seen, pushed, "every item was handed out");
    for id in &seen {
        q.ack(id).await.expect("ack");
    }
    assert_eq!(q.depth().await.expect("depth"), 0);
}

pub async fn a_dead_consumers_work_is_reclaimed_after_min_idle(q: Arc<dyn WorkQueue>) {
    let min_idle = Duration::from_millis(300);
    let id = q.push(b"orphan").await.expect("push");
    let held = next(&q, "dies").await;
    assert_eq!((held.id.as_str(), held.deliveries), (id.as_str(), 1));

    assert_eq!(
        q.reclaim("lives", min_idle, 10).await.expect("reclaim"),
        Vec::new(),
        "not idle long enough yet"
    );
    nothing_next(&q, "lives").await;

    tokio::time::sleep(min_idle * 2).await;
    let taken = q.reclaim("lives", min_idle, 10).await.expect("reclaim");
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].id, id);
    assert_eq!(taken[0].payload, b"orphan");
    assert_eq!(taken[0].deliveries, 2);
    assert_eq!(
        q.reclaim("third", min_idle, 10).await.expect("reclaim"),
        Vec::new(),
        "taking it over made it busy again"
    );

    q.ack(&id).await.expect("ack");
    assert_eq!(q.depth().await.expect("depth"), 0);
    tokio::time::sleep(min_idle * 2).await;
    assert_eq!(
        q.reclaim("lives", min_idle, 10).await.expect("reclaim"),
        Vec::new(),
        "acknowledged work is never handed out again"
    );
}

pub async fn acknowledging_twice_is_harmless(q: Arc<dyn WorkQueue>) {
    let id = q.push(b"x").await.expect("push");
    let work = next(&q, "c").await;
    q.ack(&work.id).await.expect("ack");
    q.ack(&id).await.expect("a second ack");
    let other = q.push(b"y").await.expect("push");
    assert_eq!(q.depth().await.expect("depth"), 1);
    assert_eq!(next(&q, "c").await.id, other);
    q.ack(&other).await.expect("ack");
}
