//! The Neo4j store when the network fails: a connection that goes silent in
//! the middle of a query, a server that stops answering, a server that
//! restarts. The store talks to the real test Neo4j through a
//! [`FaultProxy`], which breaks the network on command.
//!
//! Each test asserts that store calls end in an error rather than hang, and
//! that the same store, not a new one, works again once the network heals,
//! with what was written before the fault intact and what was cut off not
//! written at all. No wall-clock bound is asserted: every wait of the test
//! itself is only guarded by a generous [`GUARD`], so a hang fails loudly
//! instead of blocking the suite.

use std::future::Future;
use std::time::Duration;

use neo4rs::{Graph, query};
use org_mesh_store::{Neo4jOptions, Neo4jStore, StoreError};
use tokio::task::JoinHandle;

use super::neo4j::{exclusive, server_url};
use super::*;
use org_mesh_harness::FaultProxy;

/// Short, so a fault shows quickly; the store derives its other limits
/// from it.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the test waits for anything before calling it a hang. Far
/// above any limit of the store, so it never decides a result by timing.
const GUARD: Duration = Duration::from_secs(60);

/// Awaits `future`, failing the test if it has not finished after
/// [`GUARD`]. Boxes it first, so callers' futures stay small.
fn guarded<T>(what: &str, future: impl Future<Output = T>) -> impl Future<Output = T> {
    let future = Box::pin(future);
    async move {
        tokio::time::timeout(GUARD, future)
            .await
            .unwrap_or_else(|_| panic!("{what} still had not returned after {GUARD:?}"))
    }
}

async fn store_behind(proxy: &FaultProxy) -> Neo4jStore {
    let options = Neo4jOptions {
        query_timeout: QUERY_TIMEOUT,
        ..Neo4jOptions::local(proxy.url("bolt"))
    };
    let store = guarded("connecting", Neo4jStore::connect(options))
        .await
        .expect("connecting to Neo4j through the proxy");
    guarded("wiping", store.wipe()).await.expect("wiping Neo4j");
    store
}

fn one_account(login: &str) -> Batch {
    batch(
        vec![node(
            "Account",
            &format!("github:{login}"),
            &[("login", text(login))],
        )],
        vec![],
        vec![],
    )
}

fn account(login: &str) -> NodeRef {
    NodeRef::new("Account", format!("github:{login}"))
}

async fn write_account(store: &Neo4jStore, login: &str, hour: i64) {
    guarded(
        "applying",
        store.apply("github", at(hour), one_account(login)),
    )
    .await
    .expect("applying a batch while the network is healthy");
}

/// The seq of the one change log entry `login`'s node has.
async fn only_seq(store: &Neo4jStore, login: &str) -> u64 {
    let history = guarded(
        "reading history",
        store.history(&EntityId::Node(account(login))),
    )
    .await
    .expect("reading history");
    assert_eq!(history.len(), 1, "{login} has one change log entry");
    history[0].seq
}

/// Starts applying `login`'s account in the background.
fn apply_in_background(
    store: &Neo4jStore,
    login: &str,
    hour: i64,
) -> JoinHandle<Result<Applied, StoreError>> {
    let store = store.clone();
    let batch = one_account(login);
    tokio::spawn(async move { store.apply("github", at(hour), batch).await })
}

/// A transaction straight to the server, around the proxy, that holds the
/// write lock of the change log counter. Every `apply` takes that lock
/// first, so an `apply` started meanwhile waits inside the server with its
/// query sent and unanswered: a query in flight, at a moment the test
/// chooses.
struct CounterLock {
    graph: Graph,
    txn: neo4rs::Txn,
}

impl CounterLock {
    async fn take() -> CounterLock {
        let graph = Graph::new(server_url(), "neo4j", "").expect("a direct connection");
        let mut txn = guarded("beginning the lock", graph.start_txn())
            .await
            .expect("beginning the lock's transaction");
        guarded(
            "locking the counter",
            txn.run(query(
                "MATCH (c:ChangeLogCounter {name: 'change_log'}) SET c.locked = true",
            )),
        )
        .await
        .expect("locking the change log counter");
        CounterLock { graph, txn }
    }

    /// Returns once another transaction waits for the lock.
    async fn wait_for_a_waiter(&self) {
        let waiting = async {
            loop {
                let mut rows = self
                    .graph
                    .execute(query(
                        "SHOW TRANSACTIONS YIELD status WHERE status STARTS WITH 'Blocked' \
                         RETURN count(*) AS blocked",
                    ))
                    .await
                    .expect("listing transactions");
                let row = rows.next().await.expect("reading transactions");
                let blocked: i64 = row.map(|r| r.get("blocked").expect("a count")).unwrap_or(0);
                if blocked > 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        guarded("waiting for the apply to block on the lock", waiting).await;
    }

    async fn release(self) {
        guarded("releasing the lock", self.txn.rollback())
            .await
            .expect("releasing the change log counter");
    }
}

/// The connection an `apply` is using goes silent while the server works on
/// its query. The driver's own receive timeout ends the call with an error;
/// once the network heals the same store answers, the earlier write is
/// there, and the cut-off batch left nothing behind, not even a change log
/// seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_goes_silent_mid_query_errors_and_the_store_recovers() {
    let _server = exclusive().await;
    let mut proxy = FaultProxy::start(&server_url()).await;
    let store = store_behind(&proxy).await;
    write_account(&store, "ann", 1).await;

    let lock = CounterLock::take().await;
    let cut_off = apply_in_background(&store, "bo", 2);
    lock.wait_for_a_waiter().await;
    proxy.black_hole();
    // The server now answers the apply, into the black hole.
    lock.release().await;

    let error = guarded("the apply cut off mid-query", cut_off)
        .await
        .expect("the apply task")
        .expect_err("an apply whose connection went silent fails");
    assert!(
        matches!(
            error,
            StoreError::Neo4j {
                source: neo4rs::Error::ConnectionTimedOut,
                ..
            }
        ),
        "the driver's receive timeout ends the call, got {error:?}"
    );

    proxy.heal().await;
    let ann = guarded("reading after the fault", store.node(&account("ann")))
        .await
        .expect("the first call after healing succeeds");
    assert!(ann.is_some(), "what was written before the fault is intact");
    let bo = guarded("reading the cut-off batch", store.node(&account("bo")))
        .await
        .expect("reading after healing");
    assert!(bo.is_none(), "the cut-off apply wrote nothing");

    write_account(&store, "cy", 3).await;
    assert_eq!(
        only_seq(&store, "cy").await,
        only_seq(&store, "ann").await + 1,
        "the cut-off apply used up no change log seq"
    );
}

/// The server stops answering while the store is idle, and keeps accepting
/// connections it never answers, as a hung server does. Every call in that
/// time, not only the first, ends with an error; after healing the same
/// store works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_while_the_server_is_silent_error_and_the_store_recovers() {
    let _server = exclusive().await;
    let mut proxy = FaultProxy::start(&server_url()).await;
    let store = store_behind(&proxy).await;
    write_account(&store, "ann", 1).await;

    proxy.black_hole();
    let error = guarded(
        "reading a node in the black hole",
        store.node(&account("ann")),
    )
    .await
    .expect_err("reading from a silent server fails");
    // The idle connection fails the pool's check, and the new one hangs in
    // the Bolt handshake, which only the store's backstop bounds.
    assert!(
        matches!(error, StoreError::TimedOut { .. }),
        "the store's backstop ends a call stuck opening a connection, got {error:?}"
    );
    guarded("listing nodes in the black hole", store.nodes("Account"))
        .await
        .expect_err("a second call to a silent server fails too");
    guarded(
        "applying in the black hole",
        store.apply("github", at(2), one_account("bo")),
    )
    .await
    .expect_err("writing to a silent server fails");
    guarded("pinging in the black hole", store.ping())
        .await
        .expect_err("a silent server is not ready");

    proxy.heal().await;
    guarded("pinging after the fault", store.ping())
        .await
        .expect("a server that answers again is ready");
    let ann = guarded("reading after the fault", store.node(&account("ann")))
        .await
        .expect("the first call after healing succeeds");
    assert!(ann.is_some(), "what was written before the fault is intact");
    write_account(&store, "cy", 3).await;
    let accounts = guarded("listing after the fault", store.nodes("Account"))
        .await
        .expect("listing after healing");
    let keys: Vec<_> = accounts.iter().map(|n| n.node.key.as_str()).collect();
    assert_eq!(
        keys,
        ["github:ann", "github:cy"],
        "the failed apply wrote nothing"
    );
}

/// The server goes away in the middle of an `apply`, as in a restart: every
/// connection is reset and new ones are refused for a while. Calls fail
/// while it is away; when it is back the same store reconnects on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_query_errors_and_the_store_reconnects() {
    let _server = exclusive().await;
    let mut proxy = FaultProxy::start(&server_url()).await;
    let store = store_behind(&proxy).await;
    write_account(&store, "ann", 1).await;

    let lock = CounterLock::take().await;
    let cut_off = apply_in_background(&store, "bo", 2);
    lock.wait_for_a_waiter().await;
    proxy.go_down().await;
    guarded("the apply cut off by the restart", cut_off)
        .await
        .expect("the apply task")
        .expect_err("an apply whose connection was reset fails");
    lock.release().await;

    guarded(
        "reading while the server is away",
        store.node(&account("ann")),
    )
    .await
    .expect_err("reading while connections are refused fails");
    guarded("pinging while the server is away", store.ping())
        .await
        .expect_err("a server that refuses connections is not ready");

    let accepted_before = proxy.accepted();
    proxy.heal().await;
    let ann = guarded("reading after the restart", store.node(&account("ann")))
        .await
        .expect("the first call after the server is back succeeds");
    assert!(
        ann.is_some(),
        "what was written before the restart is intact"
    );
    assert!(
        proxy.accepted() > accepted_before,
        "the store opened a new connection rather than reusing a reset one"
    );
    guarded("pinging after the restart", store.ping())
        .await
        .expect("a server that is back is ready");
    let bo = guarded("reading the cut-off batch", store.node(&account("bo")))
        .await
        .expect("reading after the restart");
    assert!(bo.is_none(), "the cut-off apply wrote nothing");
    write_account(&store, "cy", 3).await;
    assert_eq!(
        only_seq(&store, "cy").await,
        only_seq(&store, "ann").await + 1,
        "the cut-off apply used up no change log seq"
    );
}
