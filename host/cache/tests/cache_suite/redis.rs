//! The suites on a Redis server. They need `ORG_MESH_TEST_REDIS_URL` and
//! fail without it: start a server with `conformance/redis/run start DIR`
//! and export `ORG_MESH_TEST_REDIS_URL=$(cat DIR/url)`.
//!
//! Tests share the server; each works under a prefix of its own, so they
//! neither see nor disturb each other and need no wiping.

use org_mesh_cache::CacheError;
use org_mesh_cache::redis::{RedisCoordination, RedisQueue, RedisSettings};

use super::*;
use crate::queue::{next, nothing_next};

const URL_VARIABLE: &str = "ORG_MESH_TEST_REDIS_URL";

fn settings(test: &str) -> RedisSettings {
    let url = std::env::var(URL_VARIABLE).unwrap_or_default();
    assert!(
        !url.is_empty(),
        "{URL_VARIABLE} is not set: start Redis with conformance/redis/run start DIR \
         and set {URL_VARIABLE} to the contents of DIR/url"
    );
    RedisSettings {
        url,
        prefix: format!("org-mesh-test:{test}:{}:", uuid::Uuid::new_v4()),
        timeout: Duration::from_secs(2),
    }
}

async fn coordination(test: &str) -> ((), Arc<dyn Coordination>) {
    let c = RedisCoordination::connect(&settings(test))
        .await
        .expect("connecting to Redis");
    ((), Arc::new(c))
}

async fn queue(test: &str) -> ((), Arc<dyn WorkQueue>) {
    let q = RedisQueue::connect(&settings(test), "work", "replicas")
        .await
        .expect("connecting to Redis");
    ((), Arc::new(q))
}

coordination_suite!(coordination);
queue_suite!(queue);

/// Two replicas, each with its own connection to the same stream and
/// group, split the work between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_get_different_items() {
    let settings = settings("two_replicas");
    let one: Arc<dyn WorkQueue> = Arc::new(
        RedisQueue::connect(&settings, "work", "replicas")
            .await
            .expect("connecting"),
    );
    let two: Arc<dyn WorkQueue> = Arc::new(
        RedisQueue::connect(&settings, "work", "replicas")
            .await
            .expect("connecting"),
    );
    let a = one.push(b"a").await.expect("push");
    let b = one.push(b"b").await.expect("push");
    assert_eq!(next(&two, "replica-2").await.id, a);
    assert_eq!(next(&one, "replica-1").await.id, b);
    nothing_next(&one, "replica-1").await;
    nothing_next(&two, "replica-2").await;
    two.ack(&a).await.expect("ack");
    one.ack(&b).await.expect("ack");
    assert_eq!(two.depth().await.expect("depth"), 0);
}

/// What a restart without persistence looks like to a queue: the stream
/// and its group are gone. `next` creates the group again and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stream_is_recreated_by_next() {
    let settings = settings("deleted_stream");
    let q: Arc<dyn WorkQueue> = Arc::new(
        RedisQueue::connect(&settings, "work", "replicas")
            .await
            .expect("connecting"),
    );
    q.push(b"lost").await.expect("push");

    let client = ::redis::Client::open(settings.url.as_str()).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("a raw connection");
    let _: u64 = ::redis::cmd("DEL")
        .arg(format!("{}stream:work", settings.prefix))
        .query_async(&mut conn)
        .await
        .expect("deleting the stream");

    nothing_next(&q, "c").await;
    let id = q.push(b"after").await.expect("push");
    let work = next(&q, "c").await;
    assert_eq!(
        (work.id.as_str(), work.payload.as_slice()),
        (id.as_str(), &b"after"[..])
    );
    q.ack(&id).await.expect("ack");
    assert!(
        q.reclaim("c", Duration::ZERO, 10)
            .await
            .expect("reclaim")
            .is_empty()
    );
}

#[test]
fn settings_never_show_the_password() {
    let settings = RedisSettings {
        url: "redis://default:hunter2-secret@redis.internal:6379/0".into(),
        prefix: "org-mesh:".into(),
        timeout: Duration::from_secs(1),
    };
    let shown = format!("{settings:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redis.internal:6379"), "{shown}");
    assert!(!settings.redacted_url().contains("hunter2"));
}

/// Connecting where no server listens fails, with an error that says so
/// and does not quote the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_no_server_fails_without_leaking_the_password() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address").port()
    };
    let settings = RedisSettings {
        url: format!("redis://default:hunter2-secret@127.0.0.1:{port}/"),
        prefix: "org-mesh-test:".into(),
        timeout: Duration::from_millis(500),
    };
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        RedisCoordination::connect(&settings),
    )
    .await
    .expect("connect gives up by itself")
    .expect_err("nothing listens there");
    assert!(matches!(err, CacheError::Backend { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("connecting"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_consumers_holding_nothing_are_forgotten_and_busy_ones_kept() {
    let (_, q) = queue("forget").await;
    q.push(b"one").await.expect("push");
    q.push(b"two").await.expect("push");
    let done = next(&q, "gone-replica").await;
    q.ack(&done.id).await.expect("ack");
    let _held = next(&q, "busy-replica").await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Not idle long enough: nobody is forgotten.
    assert_eq!(
        q.forget_idle_consumers(Duration::from_secs(3600))
            .await
            .expect("tidy"),
        0
    );
    // The one holding nothing goes; the one holding work stays, and its
    // work can still be taken over.
    assert_eq!(
        q.forget_idle_consumers(Duration::from_millis(10))
            .await
            .expect("tidy"),
        1
    );
    let reclaimed = q
        .reclaim("rescuer", Duration::from_millis(10), 10)
        .await
        .expect("reclaim");
    assert_eq!(reclaimed.len(), 1, "{reclaimed:?}");
    assert_eq!(reclaimed[0].payload, b"two");
}
