//! The queue suite on a redb file, and what only a file can show: work
//! outlives the process that accepted it.

use std::path::Path;

use org_mesh_cache::LocalQueue;
use tempfile::TempDir;

use super::*;
use crate::queue::{next, nothing_next};

fn open(path: &Path) -> Arc<dyn WorkQueue> {
    Arc::new(LocalQueue::open(path).expect("opening the queue"))
}

async fn queue(_test: &str) -> (TempDir, Arc<dyn WorkQueue>) {
    let dir = TempDir::new().expect("a temporary folder");
    let q = open(&dir.path().join("queue.redb"));
    (dir, q)
}

queue_suite!(queue);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_work_is_handed_out_again_after_reopening() {
    let dir = TempDir::new().expect("a temporary folder");
    let path = dir.path().join("nested/folder/queue.redb");
    let q = open(&path);
    let a = q.push(b"a").await.expect("push");
    let b = q.push(b"b").await.expect("push");
    let c = q.push(b"c").await.expect("push");
    assert_eq!(next(&q, "c1").await.id, a);
    q.ack(&a).await.expect("ack");
    assert_eq!(next(&q, "c1").await.id, b, "held, never acknowledged");
    drop(q);

    let q = open(&path);
    assert_eq!(q.depth().await.expect("depth"), 2);
    let again = next(&q, "c2").await;
    assert_eq!(
        (again.id.as_str(), again.payload.as_slice()),
        (b.as_str(), &b"b"[..])
    );
    assert_eq!(again.deliveries, 2, "the count goes on across restarts");
    let fresh = next(&q, "c2").await;
    assert_eq!((fresh.id.as_str(), fresh.deliveries), (c.as_str(), 1));
    nothing_next(&q, "c2").await;
    q.ack(&b).await.expect("ack");
    q.ack(&c).await.expect("ack");
    let d = q.push(b"d").await.expect("push");
    drop(q);

    let q = open(&path);
    assert_eq!(
        q.depth().await.expect("depth"),
        1,
        "acknowledged work never comes back"
    );
    let left = next(&q, "c3").await;
    assert_eq!(left.id, d);
    let e = q.push(b"e").await.expect("push");
    for old in [&a, &b, &c, &d] {
        assert_ne!(&e, old, "ids are never reused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_queue_is_refused() {
    let dir = TempDir::new().expect("a temporary folder");
    let path = dir.path().join("queue.redb");
    std::fs::write(&path, vec![0x5A; 8192]).expect("writing garbage");
    let err = LocalQueue::open(&path).expect_err("garbage must not open");
    assert!(
        err.to_string().contains("queue.redb"),
        "the error names the file: {err}"
    );
}
