//! Constraints, indexes and the change log counter, created idempotently at
//! start-up.

use neo4rs::query;

use super::Neo4jStore;
use crate::StoreError;

/// Each statement is safe to run again; schema changes cannot share a
/// transaction with data, so each runs on its own.
///
/// Statements that look nodes up row by row name the `(label, key)` index
/// with `USING INDEX`. Neo4j plans a statement once and keeps the plan until
/// its statistics drift far enough. Plans made while the store was empty
/// (a first sync, or after a wipe) read every entity, and merged an edge by
/// reading every relationship, once per row: a batch cost the size of the
/// store times the size of the batch.
const STATEMENTS: &[&str] = &[
    "CREATE CONSTRAINT org_mesh_entity_key IF NOT EXISTS \
     FOR (n:Entity) REQUIRE (n.label, n.key) IS UNIQUE",
    "CREATE INDEX org_mesh_entity_label IF NOT EXISTS FOR (n:Entity) ON (n.label)",
    "CREATE CONSTRAINT org_mesh_change_seq IF NOT EXISTS \
     FOR (e:ChangeLog) REQUIRE e.seq IS UNIQUE",
    "CREATE INDEX org_mesh_change_entity IF NOT EXISTS FOR (e:ChangeLog) ON (e.entity)",
    "CREATE CONSTRAINT org_mesh_counter IF NOT EXISTS \
     FOR (c:ChangeLogCounter) REQUIRE c.name IS UNIQUE",
];

pub(super) async fn ensure(store: &Neo4jStore) -> Result<(), StoreError> {
    for statement in STATEMENTS {
        let mut txn = store.begin().await?;
        store
            .run(&mut txn, "creating the schema", query(statement))
            .await?;
        store.commit(txn).await?;
    }
    ensure_counter(store).await
}

/// Creates the counter before any batch needs it, so concurrent first
/// batches lock one node instead of racing to create it.
pub(super) async fn ensure_counter(store: &Neo4jStore) -> Result<(), StoreError> {
    let mut txn = store.begin().await?;
    let merge = "MERGE (c:ChangeLogCounter {name: 'change_log'}) \
                 ON CREATE SET c.next = 1";
    store
        .run(&mut txn, "creating the change log counter", query(merge))
        .await?;
    store.commit(txn).await
}
