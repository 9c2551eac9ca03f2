//! The queries of the trait. Each runs in one read transaction, so it sees
//! one consistent state.

use std::collections::BTreeMap;

use neo4rs::query;
use org_mesh_model::{
    ChangeKind, ChangeLogEntry, ChangeSet, Direction, EdgeChange, EntityId, NodeChange, NodeRef,
    StoredEdge, StoredNode,
};

use super::{Neo4jStore, entity_key, quoted_name};
use crate::StoreError;

pub(super) async fn node(
    store: &Neo4jStore,
    node: &NodeRef,
) -> Result<Option<StoredNode>, StoreError> {
    let q = query("MATCH (n:Entity {label: $label, key: $key}) RETURN n.record AS record")
        .param("label", node.label.as_str())
        .param("key", node.key.as_str());
    let rows = store.read("reading a node", q).await?;
    rows.first()
        .map(|row| store.decode(row, "record"))
        .transpose()
}

pub(super) async fn nodes(store: &Neo4jStore, label: &str) -> Result<Vec<StoredNode>, StoreError> {
    let q =
        query("MATCH (n:Entity {label: $label}) RETURN n.record AS record").param("label", label);
    let rows = store.read("reading nodes", q).await?;
    let mut out = rows
        .iter()
        .map(|row| store.decode::<StoredNode>(row, "record"))
        .collect::<Result<Vec<_>, _>>()?;
    // Sorted here rather than by Cypher: Neo4j orders strings by UTF-16 code
    // units, the embedded store by bytes, and both must agree.
    out.sort_by(|a, b| a.node.key.cmp(&b.node.key));
    Ok(out)
}

/// Cypher orders and compares the keys here, so a page ends where the next
/// one starts even though Neo4j's string order (by UTF-16 code units)
/// differs from the embedded store's (by bytes).
pub(super) async fn nodes_page(
    store: &Neo4jStore,
    label: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredNode>, StoreError> {
    let q = query(
        "MATCH (n:Entity {label: $label}) WHERE $after IS NULL OR n.key > $after \
         RETURN n.record AS record ORDER BY n.key LIMIT $limit",
    )
    .param("label", label)
    .param("after", after)
    .param("limit", i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = store.read("paging nodes", q).await?;
    rows.iter()
        .map(|row| store.decode::<StoredNode>(row, "record"))
        .collect()
}

pub(super) async fn edges(store: &Neo4jStore, kind: &str) -> Result<Vec<StoredEdge>, StoreError> {
    let q = query(&format!(
        "MATCH (:Entity)-[r:{}]->(:Entity) RETURN r.record AS record",
        quoted_name(kind)
    ));
    let rows = store.read("reading edges", q).await?;
    let mut out = rows
        .iter()
        .map(|row| store.decode::<StoredEdge>(row, "record"))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| edge_order(a).cmp(&edge_order(b)));
    Ok(out)
}

fn edge_order(edge: &StoredEdge) -> (&NodeRef, &str, &NodeRef) {
    (&edge.edge.from, &edge.edge.kind, &edge.edge.to)
}

pub(super) async fn neighbours(
    store: &Neo4jStore,
    node: &NodeRef,
    kind: &str,
    dir: Direction,
) -> Result<Vec<(StoredEdge, StoredNode)>, StoreError> {
    let kind = quoted_name(kind);
    let pattern = match dir {
        Direction::Outgoing => format!("(n)-[r:{kind}]->(m:Entity)"),
        Direction::Incoming => format!("(n)<-[r:{kind}]-(m:Entity)"),
    };
    let text = format!(
        "MATCH (n:Entity {{label: $label, key: $key}}) MATCH {pattern} \
         RETURN r.record AS edge, m.record AS node"
    );
    let q = query(&text)
        .param("label", node.label.as_str())
        .param("key", node.key.as_str());
    let rows = store.read("reading neighbours", q).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let edge: StoredEdge = store.decode(row, "edge")?;
        let other: StoredNode = store.decode(row, "node")?;
        out.push((edge, other));
    }
    out.sort_by(|a, b| edge_order(&a.0).cmp(&edge_order(&b.0)));
    Ok(out)
}

pub(super) async fn snapshot(store: &Neo4jStore) -> Result<ChangeSet, StoreError> {
    let mut txn = store.begin().await?;
    let node_rows = store
        .rows(
            &mut txn,
            "reading the snapshot",
            query("MATCH (n:Entity) RETURN n.record AS record"),
        )
        .await?;
    let edge_rows = store
        .rows(
            &mut txn,
            "reading the snapshot",
            query("MATCH (:Entity)-[r]->(:Entity) RETURN r.record AS record"),
        )
        .await?;
    store.commit(txn).await?;

    let mut nodes = Vec::with_capacity(node_rows.len());
    for row in &node_rows {
        let node: StoredNode = store.decode(row, "record")?;
        let kind = snapshot_kind(node.provenance.observed());
        nodes.push(NodeChange { node, kind });
    }
    nodes.sort_by_key(|c| c.node.node.reference());
    let mut edges = Vec::with_capacity(edge_rows.len());
    for row in &edge_rows {
        let edge: StoredEdge = store.decode(row, "record")?;
        let kind = snapshot_kind(edge.provenance.observed());
        edges.push(EdgeChange { edge, kind });
    }
    edges.sort_by(|a, b| edge_order(&a.edge).cmp(&edge_order(&b.edge)));
    Ok(ChangeSet { nodes, edges })
}

fn snapshot_kind(observed: bool) -> ChangeKind {
    if observed {
        ChangeKind::Unchanged
    } else {
        ChangeKind::NotObserved
    }
}

pub(super) async fn history(
    store: &Neo4jStore,
    entity: &EntityId,
) -> Result<Vec<ChangeLogEntry>, StoreError> {
    let q = query("MATCH (e:ChangeLog {entity: $entity}) RETURN e.entry AS entry ORDER BY e.seq")
        .param("entity", entity_key(entity)?);
    let rows = store.read("reading history", q).await?;
    rows.iter().map(|row| store.decode(row, "entry")).collect()
}

/// Labels of the store's own nodes. Every twin node carries `Entity`, and a
/// plugin may give twin nodes any of these as their label too; only the
/// `label` property then tells them apart.
const OWN_LABELS: [&str; 3] = ["Entity", "ChangeLog", "ChangeLogCounter"];

/// Nodes per label without reading any node: every twin node also carries
/// its own label, and Neo4j keeps a count per label, which the planner
/// reads for `MATCH (n:Label) WITH count(n) AS count` (not when the label
/// is returned beside the count in the same clause, which it plans as a
/// scan of the label). A label the store uses itself is counted through
/// the `(label, key)` index instead. Reading `n.label` of every node, as
/// this once did, read the whole twin each time `serve` refreshed its
/// figures.
pub(super) async fn counts(store: &Neo4jStore) -> Result<BTreeMap<String, u64>, StoreError> {
    const OPERATION: &str = "counting nodes";
    let unreadable = |e| store.fail(OPERATION, neo4rs::Error::DeserializationError(e));
    // Both statements in one transaction, so a label created in between
    // is either in both or in neither.
    let mut txn = store.begin().await?;
    let listed = store
        .rows(
            &mut txn,
            OPERATION,
            query("CALL db.labels() YIELD label RETURN label"),
        )
        .await?;
    let mut branches = Vec::new();
    let mut params = Vec::new();
    for label in OWN_LABELS {
        branches.push(format!(
            "MATCH (n:Entity {{label: $l{i}}}) WHERE n.key IS NOT NULL \
             RETURN $l{i} AS label, count(n) AS count",
            i = params.len()
        ));
        params.push(label.to_owned());
    }
    for row in &listed {
        let label: String = row.get("label").map_err(unreadable)?;
        if OWN_LABELS.contains(&label.as_str()) {
            continue;
        }
        branches.push(format!(
            "MATCH (n:{}) WITH count(n) AS count RETURN $l{} AS label, count",
            quoted_name(&label),
            params.len()
        ));
        params.push(label);
    }
    let mut q = query(&branches.join(" UNION ALL "));
    for (i, label) in params.into_iter().enumerate() {
        q = q.param(&format!("l{i}"), label);
    }
    let rows = store.rows(&mut txn, OPERATION, q).await?;
    store.commit(txn).await?;
    let mut out = BTreeMap::new();
    for row in &rows {
        let count: u64 = row.get("count").map_err(unreadable)?;
        if count > 0 {
            out.insert(row.get("label").map_err(unreadable)?, count);
        }
    }
    Ok(out)
}
