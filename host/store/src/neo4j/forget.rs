//! `forget` as one Neo4j transaction: lock the counter as `apply` does,
//! find the edges at the nodes, then delete the history of all of them and
//! the nodes with their relationships.

use std::collections::BTreeSet;

use neo4rs::query;
use org_mesh_model::{EntityId, NodeRef, StoredEdge};

use super::write::{Params, lock_counter, ref_rows, rows_param};
use super::{Neo4jStore, Transaction, entity_key};
use crate::{Forgotten, StoreError};

pub(super) async fn forget(store: &Neo4jStore, nodes: &[NodeRef]) -> Result<Forgotten, StoreError> {
    let unique: BTreeSet<&NodeRef> = nodes.iter().collect();
    if unique.is_empty() {
        return Ok(Forgotten::default());
    }
    let rows = ref_rows(unique.iter().copied());
    let mut txn = store.begin().await?;
    // As in apply, an error drops the transaction unfinished and the
    // driver or the server rolls it back.
    lock_counter(store, &mut txn).await?;
    let edges = edges_at(store, &mut txn, rows.clone()).await?;

    let mut entities = Vec::with_capacity(unique.len() + edges.len());
    for node in &unique {
        entities.push(entity_key(&EntityId::Node((*node).clone()))?);
    }
    for edge in &edges {
        let e = &edge.edge;
        entities.push(entity_key(&EntityId::Edge {
            kind: e.kind.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
        })?);
    }
    let q = query(
        "UNWIND $entities AS entity \
         MATCH (e:ChangeLog {entity: entity}) DELETE e RETURN count(e) AS removed",
    )
    .param("entities", entities);
    let history = removed(store, &mut txn, "removing history", q).await?;
    let q = query(
        "UNWIND $rows AS row \
         MATCH (n:Entity {label: row.label, key: row.key}) \
         USING INDEX n:Entity(label, key) \
         DETACH DELETE n \
         RETURN count(n) AS removed",
    )
    .param("rows", rows_param(rows));
    let nodes = removed(store, &mut txn, "removing nodes", q).await?;
    store.commit(txn).await?;
    Ok(Forgotten {
        nodes,
        edges: u64::try_from(edges.len()).unwrap_or(u64::MAX),
        history,
    })
}

/// Every edge leaving or reaching one of the nodes, each once: an edge
/// between two of them, or from one to itself, matches more than once.
async fn edges_at(
    store: &Neo4jStore,
    txn: &mut Transaction,
    rows: Vec<Params>,
) -> Result<Vec<StoredEdge>, StoreError> {
    let q = query(
        "UNWIND $rows AS row \
         MATCH (n:Entity {label: row.label, key: row.key})-[r]-(:Entity) \
         USING INDEX n:Entity(label, key) \
         RETURN DISTINCT r.record AS record",
    )
    .param("rows", rows_param(rows));
    let found = store.rows(txn, "reading the edges to forget", q).await?;
    found
        .iter()
        .map(|row| store.decode(row, "record"))
        .collect()
}

/// Runs a deleting query that returns `count(...) AS removed`.
async fn removed(
    store: &Neo4jStore,
    txn: &mut Transaction,
    operation: &'static str,
    q: neo4rs::Query,
) -> Result<u64, StoreError> {
    let rows = store.rows(txn, operation, q).await?;
    let count = rows
        .first()
        .map(|row| row.get::<u64>("removed"))
        .transpose();
    count
        .map(Option::unwrap_or_default)
        .map_err(|e| store.fail(operation, neo4rs::Error::DeserializationError(e)))
}
