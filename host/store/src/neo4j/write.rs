//! `apply` as one Neo4j transaction: lock the counter, read what the batch
//! touches, decide every change in Rust with the same rules as the embedded
//! store, then write with a few `UNWIND` statements.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use neo4rs::{BoltType, Row, query};
use org_mesh_model::{
    ChangeKind, ChangeLogEntry, ChangeSet, Coverage, Edge, EdgeChange, EntityId, NodeChange,
    NodeRef, Properties, StoredEdge, StoredNode, Timestamp,
};

use super::{Neo4jStore, Transaction, encode, entity_key, quoted_name};
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
        // One read for the batch's nodes and its edges' ends together.
        let named: BTreeSet<&NodeRef> = batch
            .nodes
            .keys()
            .chain(batch.edges.values().flat_map(|e| [&e.from, &e.to]))
            .collect();
        let refs: Vec<NodeRef> = named.into_iter().cloned().collect();
        let mut stored_nodes = fetch_nodes(self.store, txn, &refs).await?;
        batch.drop_dangling_edges(|end| Ok(stored_nodes.contains_key(end)))?;
        // Neo4j keeps no relationship without both its nodes, so only an edge
        // between two stored nodes can be stored. A first sync reads none.
        let keys: Vec<EdgeKey> = batch
            .edges
            .iter()
            .filter(|(_, e)| stored_nodes.contains_key(&e.from) && stored_nodes.contains_key(&e.to))
            .map(|(key, _)| key.clone())
            .collect();
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
            let text = "UNWIND $rows AS row \
                        MERGE (n:Entity {label: row.label, key: row.key}) \
                        SET n:$(row.label), n.record = row.record";
            run_in_parts(store, txn, "writing nodes", text, rows).await?;
        }
        for (kind, edges) in by_kind(&self.edges, |e| &e.edge.kind) {
            let rows = edges.into_iter().map(edge_row).collect::<Result<_, _>>()?;
            let text = format!(
                "UNWIND $rows AS row \
                 MATCH (a:Entity {{label: row.from_label, key: row.from_key}}) \
                 USING INDEX a:Entity(label, key) \
                 MATCH (b:Entity {{label: row.to_label, key: row.to_key}}) \
                 USING INDEX b:Entity(label, key) \
                 MERGE (a)-[r:{}]->(b) \
                 SET r.kind = row.kind, r.record = row.record",
                quoted_name(kind)
            );
            run_in_parts(store, txn, "writing edges", &text, rows).await?;
        }
        if !self.log.is_empty() {
            let rows = self.log.iter().map(log_row).collect::<Result<_, _>>()?;
            let text = "UNWIND $rows AS row \
                        CREATE (:ChangeLog {seq: row.seq, entity: row.entity, entry: row.entry})";
            run_in_parts(store, txn, "writing the change log", text, rows).await?;
            let q = query("MATCH (c:ChangeLogCounter {name: 'change_log'}) SET c.next = $next")
                .param("next", seq_param(self.next_seq));
            store.run(txn, "advancing the change log", q).await?;
        }
        Ok(())
    }
}

/// `items` grouped by edge kind, each group in the order given.
fn by_kind<T>(items: &[T], kind: impl Fn(&T) -> &String) -> BTreeMap<&str, Vec<&T>> {
    let mut groups: BTreeMap<&str, Vec<&T>> = BTreeMap::new();
    for item in items {
        groups.entry(kind(item).as_str()).or_default().push(item);
    }
    groups
}

/// The most bytes one request may take. neo4rs writes through an 8 KiB
/// buffer and leaves Nagle's algorithm on: a longer request goes out as two
/// writes, the kernel holds back the second until the server acknowledges
/// the first, and Linux delays that acknowledgement by up to 40 ms. Every
/// large statement waited that long, far more than running it in parts
/// costs.
const REQUEST_BYTES: usize = 8 * 1024;

/// Room in a request for what is not the rows: the framing, the request's
/// other fields and the pull sent with it.
const REQUEST_FRAMING: usize = 512;

/// Runs `text` once for each part of `rows`, bound to `$rows`, in order.
pub(super) async fn run_in_parts(
    store: &Neo4jStore,
    txn: &mut Transaction,
    operation: &'static str,
    text: &str,
    rows: Vec<Params>,
) -> Result<(), StoreError> {
    rows_in_parts(store, txn, operation, text, rows)
        .await
        .map(drop)
}

/// Runs `text` once for each part of `rows`, bound to `$rows`, and returns
/// every part's result rows in order.
pub(super) async fn rows_in_parts(
    store: &Neo4jStore,
    txn: &mut Transaction,
    operation: &'static str,
    text: &str,
    rows: Vec<Params>,
) -> Result<Vec<Row>, StoreError> {
    let mut found = Vec::new();
    for part in parts(text, rows) {
        let q = query(text).param("rows", BoltType::from(part));
        found.extend(store.rows(txn, operation, q).await?);
    }
    Ok(found)
}

/// `rows` cut, in order, into parts that each fit one request with `text`.
/// A row that fits no request goes alone.
fn parts(text: &str, rows: Vec<Params>) -> Vec<Vec<Params>> {
    let room = REQUEST_BYTES.saturating_sub(text.len() + REQUEST_FRAMING);
    let mut parts = Vec::new();
    let mut part = Vec::new();
    let mut used = 0;
    for row in rows {
        let size = row_bytes(&row);
        if !part.is_empty() && used + size > room {
            parts.push(std::mem::take(&mut part));
            used = 0;
        }
        used += size;
        part.push(row);
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

/// At least the bytes a row takes in a request: each map entry and string
/// counted with the longest header PackStream gives it.
fn row_bytes(row: &Params) -> usize {
    let entries: usize = row
        .iter()
        .map(|(name, value)| name.len() + 5 + value_bytes(value))
        .sum();
    entries + 5
}

fn value_bytes(value: &BoltType) -> usize {
    match value {
        BoltType::String(text) => text.value.len() + 5,
        BoltType::Integer(_) | BoltType::Float(_) | BoltType::Boolean(_) | BoltType::Null(_) => 9,
        // Rows hold only texts and numbers; anything else is taken to fill
        // a request, so it goes alone rather than overfilling one.
        _ => REQUEST_BYTES,
    }
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

/// The stored nodes among `refs`.
async fn fetch_nodes(
    store: &Neo4jStore,
    txn: &mut Transaction,
    refs: &[NodeRef],
) -> Result<BTreeMap<NodeRef, StoredNode>, StoreError> {
    if refs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let text = "UNWIND $rows AS row \
                MATCH (n:Entity {label: row.label, key: row.key}) \
                USING INDEX n:Entity(label, key) \
                RETURN n.record AS record";
    let found = rows_in_parts(store, txn, "reading nodes", text, ref_rows(refs)).await?;
    let mut out = BTreeMap::new();
    for row in &found {
        let node: StoredNode = store.decode(row, "record")?;
        out.insert(node.node.reference(), node);
    }
    Ok(out)
}

/// The stored edges among `keys`.
async fn fetch_edges(
    store: &Neo4jStore,
    txn: &mut Transaction,
    keys: &[EdgeKey],
) -> Result<BTreeMap<EdgeKey, StoredEdge>, StoreError> {
    if keys.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut out = BTreeMap::new();
    for (kind, keys) in by_kind(keys, |(kind, _, _)| kind) {
        let rows: Vec<Params> = keys
            .into_iter()
            .map(|(_, from, to)| {
                let mut row = Params::new();
                ref_row("from_", from, &mut row);
                ref_row("to_", to, &mut row);
                row
            })
            .collect();
        let text = format!(
            "UNWIND $rows AS row \
             MATCH (a:Entity {{label: row.from_label, key: row.from_key}}) \
                   -[r:{}]-> \
                   (b:Entity {{label: row.to_label, key: row.to_key}}) \
             USING INDEX a:Entity(label, key) \
             USING INDEX b:Entity(label, key) \
             RETURN r.record AS record",
            quoted_name(kind)
        );
        for row in &rows_in_parts(store, txn, "reading edges", &text, rows).await? {
            let edge: StoredEdge = store.decode(row, "record")?;
            out.insert(edge_key(&edge.edge), edge);
        }
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
    let (text, params): (String, Vec<(&str, &str)>) = match coverage {
        Coverage::Nodes(label) => {
            let q = "MATCH (n:Entity {label: $label}) RETURN n.record AS record";
            (q.to_owned(), vec![("label", label.as_str())])
        }
        Coverage::Node(node) => {
            let refs = std::slice::from_ref(node);
            let found = fetch_nodes(store, txn, refs).await?;
            return Ok((found.into_values().collect(), Vec::new()));
        }
        Coverage::EdgesFrom(kind, node) => {
            let q = format!(
                "MATCH (:Entity {{label: $label, key: $key}})-[r:{}]->(:Entity) \
                 RETURN r.record AS record",
                quoted_name(kind)
            );
            (q, vec![("label", &node.label), ("key", &node.key)])
        }
        Coverage::EdgesTo(kind, node) => {
            let q = format!(
                "MATCH (:Entity)-[r:{}]->(:Entity {{label: $label, key: $key}}) \
                 RETURN r.record AS record",
                quoted_name(kind)
            );
            (q, vec![("label", &node.label), ("key", &node.key)])
        }
        Coverage::Edge(kind, from, to) => {
            let key = (kind.clone(), from.clone(), to.clone());
            let found = fetch_edges(store, txn, std::slice::from_ref(&key)).await?;
            return Ok((Vec::new(), found.into_values().collect()));
        }
    };
    let q = query(&text).params(params);
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

pub(super) fn edge_key(edge: &Edge) -> EdgeKey {
    (edge.kind.clone(), edge.from.clone(), edge.to.clone())
}

pub(super) fn edge_entity(edge: &Edge) -> EntityId {
    EntityId::Edge {
        kind: edge.kind.clone(),
        from: edge.from.clone(),
        to: edge.to.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, record_len: usize) -> Params {
        let mut row = Params::new();
        ref_row("", &NodeRef::new("Account", key), &mut row);
        row.insert("record".to_owned(), "r".repeat(record_len).into());
        row
    }

    fn key(row: &Params) -> String {
        match row.get("key") {
            Some(BoltType::String(key)) => key.value.clone(),
            other => panic!("no key in {other:?}"),
        }
    }

    #[test]
    fn parts_keep_every_row_in_order_and_each_fits_a_request() {
        let text = "UNWIND $rows AS row RETURN row";
        let rows: Vec<Params> = (0..500).map(|i| row(&format!("k{i}"), i % 300)).collect();
        let keys: Vec<String> = rows.iter().map(key).collect();
        let parts = parts(text, rows);
        assert!(parts.len() > 1, "500 rows fit one request");
        let room = REQUEST_BYTES - text.len() - REQUEST_FRAMING;
        for part in &parts {
            let bytes: usize = part.iter().map(row_bytes).sum();
            assert!(bytes <= room, "a part of {bytes} bytes");
        }
        let after: Vec<String> = parts.iter().flatten().map(key).collect();
        assert_eq!(after, keys);
    }

    #[test]
    fn a_row_too_long_for_any_request_goes_alone() {
        let text = "UNWIND $rows AS row RETURN row";
        let rows = vec![row("a", 10), row("b", 20_000), row("c", 10)];
        let parts = parts(text, rows);
        let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert!(super::parts(text, Vec::new()).is_empty());
    }

    #[test]
    fn a_kind_is_one_quoted_type_name() {
        assert_eq!(quoted_name("MEMBER_OF"), "`MEMBER_OF`");
        assert_eq!(
            quoted_name("A`]->(x) DETACH DELETE x//"),
            "`A``]->(x) DETACH DELETE x//`"
        );
    }
}
