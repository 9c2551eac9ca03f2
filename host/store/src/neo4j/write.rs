//! `apply` as one Neo4j transaction: lock the counter, read what the batch
//! touches, decide every change in Rust with the same rules as the embedded
//! store, then write with a few `UNWIND` statements.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use neo4rs::{BoltType, query};
use org_mesh_model::{
    ChangeKind, ChangeLogEntry, ChangeSet, Coverage, Edge, EdgeChange, EntityId, NodeChange,
    NodeRef, Properties, StoredEdge, StoredNode, Timestamp,
};

use super::{Neo4jStore, Transaction, encode, entity_key};
use crate::prepare::{EdgeKey, Prepared, covered, edge_record, node_record, settle};
use crate::{Applied, StoreError};

pub(super) type Params = HashMap<String, BoltType>;

pub(super) async fn apply(
    store: &Neo4jStore,
    source: &str,
    at: Timestamp,
    batch: Prepared,
) -> Result<Applied, StoreError> {
    let mut txn = store.begin().await?;
    // On an error the transaction is dropped unfinished. The driver rolls it
    // back when it recycles the connection, or the server does when the
    // connection closes, so nothing is half written.
    let mut writer = Writer {
        store,
        source,
        at,
        next_seq: lock_counter(store, &mut txn).await?,
        nodes: Vec::new(),
        edges: Vec::new(),
        log: Vec::new(),
        changes: ChangeSet::default(),
    };
    let batch = writer.plan(&mut txn, batch).await?;
    writer.write(&mut txn).await?;
    store.commit(txn).await?;
    Ok(Applied {
        changes: writer.changes,
        skipped: batch.skipped,
    })
}

/// Takes the write lock of the counter and reads the next seq. Every apply
/// and every forget starts here, so they run one after the other.
pub(super) async fn lock_counter(
    store: &Neo4jStore,
    txn: &mut Transaction,
) -> Result<u64, StoreError> {
    let q = query(
        "MERGE (c:ChangeLogCounter {name: 'change_log'}) ON CREATE SET c.next = 1 \
         SET c.locked = true REMOVE c.locked RETURN c.next AS next",
    );
    let rows = store.rows(txn, "locking the change log", q).await?;
    let next = rows.first().map(|row| row.get::<u64>("next")).transpose();
    next.map(|n| n.unwrap_or(1)).map_err(|e| {
        store.fail(
            "locking the change log",
            neo4rs::Error::DeserializationError(e),
        )
    })
}

struct Writer<'a> {
    store: &'a Neo4jStore,
    source: &'a str,
    at: Timestamp,
    next_seq: u64,
    nodes: Vec<StoredNode>,
    edges: Vec<StoredEdge>,
    log: Vec<ChangeLogEntry>,
    changes: ChangeSet,
}

impl Writer<'_> {
    /// Decides every change of the batch; nothing is written yet.
    async fn plan(
        &mut self,
        txn: &mut Transaction,
        mut batch: Prepared,
    ) -> Result<Prepared, StoreError> {
        let ends = self.stored_ends(txn, &batch).await?;
        batch.drop_dangling_edges(|end| Ok(ends.contains(end)))?;

        let refs: Vec<NodeRef> = batch.nodes.keys().cloned().collect();
        let mut stored_nodes = fetch_nodes(self.store, txn, &refs).await?;
        for (reference, mut node) in std::mem::take(&mut batch.nodes) {
            let previous = stored_nodes.remove(&reference);
            let cleared = batch.partial.then(|| batch.cleared_nodes.get(&reference));
            let (kind, provenance) = settle(
                previous
                    .as_ref()
                    .map(|p| (&p.node.properties, &p.provenance)),
                &mut node.properties,
                cleared,
                self.source,
                self.at,
            );
            let stored = StoredNode { node, provenance };
            if kind != ChangeKind::Unchanged {
                let before = previous.map(|p| p.node.properties);
                let after = Some(stored.node.properties.clone());
                self.log(EntityId::Node(reference), kind, before, after);
            }
            self.nodes.push(stored.clone());
            self.changes.nodes.push(NodeChange { node: stored, kind });
        }

        let keys: Vec<EdgeKey> = batch.edges.keys().cloned().collect();
        let mut stored_edges = fetch_edges(self.store, txn, &keys).await?;
        for (key, mut edge) in std::mem::take(&mut batch.edges) {
            let previous = stored_edges.remove(&key);
            let cleared = batch.partial.then(|| batch.cleared_edges.get(&key));
            let (kind, provenance) = settle(
                previous
                    .as_ref()
                    .map(|p| (&p.edge.properties, &p.provenance)),
                &mut edge.properties,
                cleared,
                self.source,
                self.at,
            );
            let stored = StoredEdge { edge, provenance };
            if kind != ChangeKind::Unchanged {
                let before = previous.map(|p| p.edge.properties);
                let after = Some(stored.edge.properties.clone());
                self.log(edge_entity(&stored.edge), kind, before, after);
            }
            self.edges.push(stored.clone());
            self.changes.edges.push(EdgeChange { edge: stored, kind });
        }

        let complete = std::mem::take(&mut batch.complete);
        let mut marked_nodes = BTreeSet::new();
        let mut marked_edges = BTreeSet::new();
        for coverage in &complete {
            let (nodes, edges) = covered_records(self.store, txn, coverage).await?;
            for node in nodes {
                let reference = node.node.reference();
                if !batch.held_nodes.contains(&reference) && marked_nodes.insert(reference) {
                    self.mark_node(node);
                }
            }
            for edge in edges {
                let key = edge_key(&edge.edge);
                if !batch.held_edges.contains(&key) && marked_edges.insert(key) {
                    self.mark_edge(edge);
                }
            }
        }
        Ok(batch)
    }

    /// The ends of the batch's edges that are stored, among those the batch
    /// does not itself hold.
    async fn stored_ends(
        &self,
        txn: &mut Transaction,
        batch: &Prepared,
    ) -> Result<BTreeSet<NodeRef>, StoreError> {
        let wanted: BTreeSet<NodeRef> = batch
            .edges
            .values()
            .flat_map(|e| [&e.from, &e.to])
            .filter(|end| !batch.nodes.contains_key(*end))
            .cloned()
            .collect();
        let wanted: Vec<NodeRef> = wanted.into_iter().collect();
        let found = fetch_nodes(self.store, txn, &wanted).await?;
        Ok(found.into_keys().collect())
    }

    fn mark_node(&mut self, mut node: StoredNode) {
        if !covered(&node.provenance, self.source, self.at) {
            return;
        }
        node.provenance.not_observed_since = Some(self.at);
        let before = Some(node.node.properties.clone());
        let entity = EntityId::Node(node.node.reference());
        self.log(entity, ChangeKind::NotObserved, before, None);
        self.nodes.push(node.clone());
        let kind = ChangeKind::NotObserved;
        self.changes.nodes.push(NodeChange { node, kind });
    }

    fn mark_edge(&mut self, mut edge: StoredEdge) {
        if !covered(&edge.provenance, self.source, self.at) {
            return;
        }
        edge.provenance.not_observed_since = Some(self.at);
        let before = Some(edge.edge.properties.clone());
        self.log(
            edge_entity(&edge.edge),
            ChangeKind::NotObserved,
            before,
            None,
        );
        self.edges.push(edge.clone());
        let kind = ChangeKind::NotObserved;
        self.changes.edges.push(EdgeChange { edge, kind });
    }

    fn log(
        &mut self,
        entity: EntityId,
        kind: ChangeKind,
        before: Option<Properties>,
        after: Option<Properties>,
    ) {
        self.log.push(ChangeLogEntry {
            seq: self.next_seq,
            at: self.at,
            source: self.source.to_owned(),
            entity,
            kind,
            before,
            after,
        });
        self.next_seq += 1;
    }

    /// Writes what `plan` decided: nodes before edges, as edges match their
    /// ends, then the log and the counter.
    async fn write(&self, txn: &mut Transaction) -> Result<(), StoreError> {
        let store = self.store;
        if !self.nodes.is_empty() {
            let rows = self.nodes.iter().map(node_row).collect::<Result<_, _>>()?;
            let q = query(
                "UNWIND $rows AS row \
                 MERGE (n:Entity {label: row.label, key: row.key}) \
                 SET n:$(row.label), n.record = row.record",
            );
            store
                .run(txn, "writing nodes", q.param("rows", rows_param(rows)))
                .await?;
        }
        if !self.edges.is_empty() {
            let rows = self.edges.iter().map(edge_row).collect::<Result<_, _>>()?;
            let q = query(
                "UNWIND $rows AS row \
                 MATCH (a:Entity {label: row.from_label, key: row.from_key}) \
                 USING INDEX a:Entity(label, key) \
                 MATCH (b:Entity {label: row.to_label, key: row.to_key}) \
                 USING INDEX b:Entity(label, key) \
                 MERGE (a)-[r:$(row.kind)]->(b) \
                 SET r.kind = row.kind, r.record = row.record",
            );
            store
                .run(txn, "writing edges", q.param("rows", rows_param(rows)))
                .await?;
        }
        if !self.log.is_empty() {
            let rows = self.log.iter().map(log_row).collect::<Result<_, _>>()?;
            let q = query(
                "UNWIND $rows AS row \
                 CREATE (:ChangeLog {seq: row.seq, entity: row.entity, entry: row.entry})",
            );
            store
                .run(
                    txn,
                    "writing the change log",
                    q.param("rows", rows_param(rows)),
                )
                .await?;
            let q = query("MATCH (c:ChangeLogCounter {name: 'change_log'}) SET c.next = $next")
                .param("next", seq_param(self.next_seq));
            store.run(txn, "advancing the change log", q).await?;
        }
        Ok(())
    }
}

pub(super) fn rows_param(rows: Vec<Params>) -> BoltType {
    BoltType::from(rows)
}

/// Seqs start at 1 and grow by one per change; they leave i64 only after
/// more changes than any store will hold.
fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn ref_row(prefix: &str, node: &NodeRef, row: &mut Params) {
    row.insert(format!("{prefix}label"), node.label.as_str().into());
    row.insert(format!("{prefix}key"), node.key.as_str().into());
}

/// One `{label, key}` row per node.
pub(super) fn ref_rows<'a>(refs: impl IntoIterator<Item = &'a NodeRef>) -> Vec<Params> {
    refs.into_iter()
        .map(|r| {
            let mut row = Params::new();
            ref_row("", r, &mut row);
            row
        })
        .collect()
}

fn node_row(node: &StoredNode) -> Result<Params, StoreError> {
    let reference = node.node.reference();
    let mut row = Params::new();
    ref_row("", &reference, &mut row);
    let record = encode(|| node_record(&reference), node)?;
    row.insert("record".to_owned(), record.into());
    Ok(row)
}

fn edge_row(edge: &StoredEdge) -> Result<Params, StoreError> {
    let e = &edge.edge;
    let mut row = Params::new();
    ref_row("from_", &e.from, &mut row);
    ref_row("to_", &e.to, &mut row);
    row.insert("kind".to_owned(), e.kind.as_str().into());
    let record = encode(|| edge_record(e), edge)?;
    row.insert("record".to_owned(), record.into());
    Ok(row)
}

fn log_row(entry: &ChangeLogEntry) -> Result<Params, StoreError> {
    let mut row = Params::new();
    row.insert("seq".to_owned(), seq_param(entry.seq).into());
    row.insert("entity".to_owned(), entity_key(&entry.entity)?.into());
    let text = encode(|| format!("change log entry {}", entry.seq), entry)?;
    row.insert("entry".to_owned(), text.into());
    Ok(row)
}

/// The stored nodes among `refs`, in one query.
async fn fetch_nodes(
    store: &Neo4jStore,
    txn: &mut Transaction,
    refs: &[NodeRef],
) -> Result<BTreeMap<NodeRef, StoredNode>, StoreError> {
    if refs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows = ref_rows(refs);
    let q = query(
        "UNWIND $rows AS row \
         MATCH (n:Entity {label: row.label, key: row.key}) \
         USING INDEX n:Entity(label, key) \
         RETURN n.record AS record",
    )
    .param("rows", rows_param(rows));
    let found = store.rows(txn, "reading nodes", q).await?;
    let mut out = BTreeMap::new();
    for row in &found {
        let node: StoredNode = store.decode(row, "record")?;
        out.insert(node.node.reference(), node);
    }
    Ok(out)
}

/// The stored edges among `keys`, in one query.
async fn fetch_edges(
    store: &Neo4jStore,
    txn: &mut Transaction,
    keys: &[EdgeKey],
) -> Result<BTreeMap<EdgeKey, StoredEdge>, StoreError> {
    if keys.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<Params> = keys
        .iter()
        .map(|(kind, from, to)| {
            let mut row = Params::new();
            ref_row("from_", from, &mut row);
            ref_row("to_", to, &mut row);
            row.insert("kind".to_owned(), kind.as_str().into());
            row
        })
        .collect();
    let q = query(
        "UNWIND $rows AS row \
         MATCH (a:Entity {label: row.from_label, key: row.from_key}) \
               -[r:$(row.kind)]-> \
               (b:Entity {label: row.to_label, key: row.to_key}) \
         USING INDEX a:Entity(label, key) \
         USING INDEX b:Entity(label, key) \
         RETURN r.record AS record",
    )
    .param("rows", rows_param(rows));
    let found = store.rows(txn, "reading edges", q).await?;
    let mut out = BTreeMap::new();
    for row in &found {
        let edge: StoredEdge = store.decode(row, "record")?;
        out.insert(edge_key(&edge.edge), edge);
    }
    Ok(out)
}

/// The stored records that `coverage` names, observed or not; the caller
/// keeps those to mark.
async fn covered_records(
    store: &Neo4jStore,
    txn: &mut Transaction,
    coverage: &Coverage,
) -> Result<(Vec<StoredNode>, Vec<StoredEdge>), StoreError> {
    const READING: &str = "reading covered records";
    let (text, params): (&str, Vec<(&str, &str)>) = match coverage {
        Coverage::Nodes(label) => {
            let q = "MATCH (n:Entity {label: $label}) RETURN n.record AS record";
            (q, vec![("label", label.as_str())])
        }
        Coverage::Node(node) => {
            let refs = std::slice::from_ref(node);
            let found = fetch_nodes(store, txn, refs).await?;
            return Ok((found.into_values().collect(), Vec::new()));
        }
        Coverage::EdgesFrom(kind, node) => {
            let q = "MATCH (:Entity {label: $label, key: $key})-[r:$($kind)]->(:Entity) \
                     RETURN r.record AS record";
            (
                q,
                vec![("label", &node.label), ("key", &node.key), ("kind", kind)],
            )
        }
        Coverage::EdgesTo(kind, node) => {
            let q = "MATCH (:Entity)-[r:$($kind)]->(:Entity {label: $label, key: $key}) \
                     RETURN r.record AS record";
            (
                q,
                vec![("label", &node.label), ("key", &node.key), ("kind", kind)],
            )
        }
        Coverage::Edge(kind, from, to) => {
            let key = (kind.clone(), from.clone(), to.clone());
            let found = fetch_edges(store, txn, std::slice::from_ref(&key)).await?;
            return Ok((Vec::new(), found.into_values().collect()));
        }
    };
    let q = query(text).params(params);
    let rows = store.rows(txn, READING, q).await?;
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for row in &rows {
        if matches!(coverage, Coverage::Nodes(_)) {
            nodes.push(store.decode(row, "record")?);
        } else {
            edges.push(store.decode(row, "record")?);
        }
    }
    // Marked in key order, as the embedded store does.
    nodes.sort_by(|a: &StoredNode, b: &StoredNode| a.node.key.cmp(&b.node.key));
    edges.sort_by_key(|e: &StoredEdge| edge_key(&e.edge));
    Ok((nodes, edges))
}

fn edge_key(edge: &Edge) -> EdgeKey {
    (edge.kind.clone(), edge.from.clone(), edge.to.clone())
}

fn edge_entity(edge: &Edge) -> EntityId {
    EntityId::Edge {
        kind: edge.kind.clone(),
        from: edge.from.clone(),
        to: edge.to.clone(),
    }
}
