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

pub async fn store() -> (MutexGuard<'static, ()>, Arc<dyn GraphStore>) {
    let url = std::env::var(URL_VARIABLE).unwrap_or_default();
    assert!(
        !url.is_empty(),
        "{URL_VARIABLE} is not set: start Neo4j with conformance/neo4j/run start DIR \
         and set {URL_VARIABLE} to the contents of DIR/bolt-url"
    );
    let guard = SERVER.lock().await;
    let store = Neo4jStore::connect(Neo4jOptions::local(url))
        .await
        .expect("connecting to Neo4j");
    store.wipe().await.expect("wiping Neo4j");
    (guard, Arc::new(store))
}

backend_suite_async!(
    store;
    suite::idempotency,
    suite::replace_semantics_and_null_is_absent,
    suite::not_observed_needs_coverage,
    suite::single_records_can_be_reported_gone,
    suite::a_partial_batch_merges_properties,
    suite::reobservation,
    suite::invalid_records_are_skipped,
    suite::edge_to_unknown_node_is_skipped,
    suite::history_tells_when_admin_was_gained,
    suite::values_round_trip,
    suite::counts,
    suite::concurrent_applies_all_land,
    identity::people_come_from_idp_accounts,
    identity::explicit_mapping,
    identity::scim_external_id,
    identity::saml_identity,
    identity::verified_email,
    identity::precedence,
    identity::unlinked_and_unknown_person,
    identity::links_lapse,
);
