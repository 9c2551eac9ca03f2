//! The graph store suite. `suite`, `forget` and `identity` take any
//! `Arc<dyn GraphStore>`, so every backend runs the same checks; the
//! `embedded` module runs them on the redb store and adds what only a file
//! can show (restarts, corruption, schema versions). The `neo4j` module runs
//! them on a Neo4j server whose Bolt URL is in `ORG_MESH_TEST_NEO4J_URL`;
//! `conformance/neo4j/run start DIR` starts one. The `neo4j_faults` module
//! breaks the network between the store and that server with the harness's
//! `FaultProxy`, and checks that calls fail instead of hanging and
//! that the store recovers.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking, with a message saying what broke"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use org_mesh_model::{
    Batch, ChangeKind, Coverage, Edge, EntityId, Node, NodeRef, Properties, Timestamp, Value,
};
use org_mesh_store::{Applied, GraphStore};
use time::Duration;
use time::macros::datetime;

/// Hour `n` of a fixed day, so tests can tell syncs apart.
fn at(n: i64) -> Timestamp {
    datetime!(2025-03-01 00:00 UTC) + Duration::hours(n)
}

fn props(pairs: &[(&str, Value)]) -> Properties {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn node(label: &str, key: &str, pairs: &[(&str, Value)]) -> Node {
    Node {
        label: label.to_owned(),
        key: key.to_owned(),
        properties: props(pairs),
    }
}

fn edge(kind: &str, from: &NodeRef, to: &NodeRef, pairs: &[(&str, Value)]) -> Edge {
    Edge {
        kind: kind.to_owned(),
        from: from.clone(),
        to: to.clone(),
        properties: props(pairs),
    }
}

fn batch(nodes: Vec<Node>, edges: Vec<Edge>, complete: Vec<Coverage>) -> Batch {
    Batch {
        nodes,
        edges,
        complete,
        partial: false,
    }
}

fn edge_id(kind: &str, from: &NodeRef, to: &NodeRef) -> EntityId {
    EntityId::Edge {
        kind: kind.to_owned(),
        from: from.clone(),
        to: to.clone(),
    }
}

/// Every change of `applied` as "Label(key)" or "KIND from -> to" to its
/// kind.
fn kinds(applied: &Applied) -> BTreeMap<String, ChangeKind> {
    let nodes = applied
        .changes
        .nodes
        .iter()
        .map(|c| (c.node.node.reference().to_string(), c.kind));
    let edges = applied.changes.edges.iter().map(|c| {
        let e = &c.edge.edge;
        (format!("{} {} -> {}", e.kind, e.from, e.to), c.kind)
    });
    nodes.chain(edges).collect()
}

fn all(applied: &Applied, kind: ChangeKind) -> bool {
    kinds(applied).values().all(|k| *k == kind)
}

/// Runs the generic checks against one backend; `$store` makes a fresh
/// store per test.
macro_rules! backend_suite {
    ($store:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $module::$name($store()).await;
            }
        )*
    };
}

/// Like `backend_suite`, for a backend whose fresh store takes async set-up
/// and a guard held for the whole test, such as a lock on a shared server.
macro_rules! backend_suite_async {
    ($setup:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_guard, store) = $setup().await;
                $module::$name(store).await;
            }
        )*
    };
}

/// The checks every backend must pass, named once: each backend expands
/// them with its own runner macro, so none can be forgotten for one of them.
macro_rules! shared_suite {
    ($runner:ident, $store:path) => {
        $runner!(
            $store;
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
        suite::pages_cover_a_label_exactly,
        suite::concurrent_applies_all_land,
        suite::a_healthy_store_answers_ping,
        suite::stale_observations_change_nothing,
        suite::pushes_gathered_into_one_batch_apply_as_one_by_one,
        suite::a_large_batch_lands_whole,
        forget::forgetting_removes_a_node_its_edges_and_their_history,
        forget::forgetting_twice_or_unknown_nodes_is_harmless,
        forget::a_forgotten_node_comes_back_afresh,
        forget::forget_and_apply_never_leave_a_dangling_edge,
        identity::people_come_from_idp_accounts,
        identity::explicit_mapping,
        identity::scim_external_id,
        identity::saml_identity,
        identity::verified_email,
        identity::precedence,
        identity::unlinked_and_unknown_person,
        identity::links_lapse,
        );
    };
}

#[path = "store_suite/suite.rs"]
mod suite;

#[path = "store_suite/forget.rs"]
mod forget;

#[path = "store_suite/identity.rs"]
mod identity;

#[path = "store_suite/embedded.rs"]
mod embedded;

#[path = "store_suite/neo4j.rs"]
mod neo4j;

#[path = "store_suite/neo4j_faults.rs"]
mod neo4j_faults;
