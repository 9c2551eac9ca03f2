//! The suite on a Neo4j server. It needs `ORG_MESH_TEST_NEO4J_URL` and fails
//! without it: start a server with `conformance/neo4j/run start DIR` and
//! export `ORG_MESH_TEST_NEO4J_URL=$(cat DIR/bolt-url)`.
//!
//! Community edition has one user database, so tests share it: each takes a
//! process-wide lock, wipes the database and holds the lock until it ends.

use org_mesh_store::{Neo4jOptions, Neo4jStore};
use tokio::sync::{Mutex, MutexGuard};

use super::*;

const URL_VARIABLE: &str = "ORG_MESH_TEST_NEO4J_URL";

/// A tokio mutex, because the guard lives across awaits and each test has
/// its own runtime; it does not poison, so one failed test does not fail
/// the rest.
static SERVER: Mutex<()> = Mutex::const_new(());

/// The test server's Bolt URL; fails the test when it is not set.
pub fn server_url() -> String {
    let url = std::env::var(URL_VARIABLE).unwrap_or_default();
    assert!(
        !url.is_empty(),
        "{URL_VARIABLE} is not set: start Neo4j with conformance/neo4j/run start DIR \
         and set {URL_VARIABLE} to the contents of DIR/bolt-url"
    );
    url
}

/// Holds the shared server for one test.
pub async fn exclusive() -> MutexGuard<'static, ()> {
    SERVER.lock().await
}

pub async fn store() -> (MutexGuard<'static, ()>, Arc<dyn GraphStore>) {
    let url = server_url();
    let guard = exclusive().await;
    let store = Neo4jStore::connect(Neo4jOptions::local(url))
        .await
        .expect("connecting to Neo4j");
    store.wipe().await.expect("wiping Neo4j");
    (guard, Arc::new(store))
}

shared_suite!(backend_suite_async, store);
