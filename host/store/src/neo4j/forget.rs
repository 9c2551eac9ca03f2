//! `forget` as one Neo4j transaction: lock the counter as `apply` does,
//! find the edges at the nodes, then delete the history of all of them and
//! the nodes with their relationships.

use std::collections::{BTreeMap, BTreeSet};

use org_mesh_model::{EntityId, NodeRef, StoredEdge};

use super::write::{Params, edge_entity, edge_key, lock_counter, ref_rows, rows_in_parts};
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
    let named = unique
        .iter()
        .map(|node| EntityId::Node((*node).clone()))
        .chain(edges.iter().map(|edge| edge_entity(&edge.edge)));
    for entity in named {
        let key = entity_key(&entity)?;
        entities.push(Params::from([("entity".to_owned(), key.into())]));
    }
    let text = "UNWIND $rows AS row \
                MATCH (e:ChangeLog {entity: row.entity}) DELETE e RETURN count(e) AS removed";
    let history = removed(store, &mut txn, "removing history", text, entities).await?;
    let text = "UNWIND $rows AS row \
                MATCH (n:Entity {label: row.label, key: row.key}) \
                USING INDEX n:Entity(label, key) \
                DETACH DELETE n \
                RETURN count(n) AS removed";
    let nodes = removed(store, &mut txn, "removing nodes", text, rows).await?;
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
    let text = "UNWIND $rows AS row \
                MATCH (n:Entity {label: row.label, key: row.key})-[r]-(:Entity) \
                USING INDEX n:Entity(label, key) \
                RETURN DISTINCT r.record AS record";
    const READING: &str = "reading the edges to forget";
    let found = rows_in_parts(store, txn, READING, text, rows).await?;
    // Parts are distinct each on their own, not from one another.
    let mut edges = BTreeMap::new();
    for row in &found {
        let edge: StoredEdge = store.decode(row, "record")?;
        edges.insert(edge_key(&edge.edge), edge);
    }
    Ok(edges.into_values().collect())
}

/// Runs a deleting statement that returns `count(...) AS removed` over
/// `rows`, and adds up what each part removed.
async fn removed(
    store: &Neo4jStore,
    txn: &mut Transaction,
    operation: &'static str,
    text: &str,
    rows: Vec<Params>,
) -> Result<u64, StoreError> {
    let mut total = 0;
    for row in rows_in_parts(store, txn, operation, text, rows).await? {
        let removed = row
            .get::<u64>("removed")
            .map_err(|e| store.fail(operation, neo4rs::Error::DeserializationError(e)))?;
        total += removed;
    }
    Ok(total)
}
