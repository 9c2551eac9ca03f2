//! The queries of the trait, each in one redb read transaction so it sees
//! one consistent state.

use std::collections::BTreeMap;

use org_mesh_model::{
    ChangeKind, ChangeLogEntry, ChangeSet, Direction, EdgeChange, EntityId, NodeChange, NodeRef,
    StoredEdge, StoredNode,
};
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableMultimapTable,
    ReadableTable,
};

use super::{
    During, EDGES, EDGES_IN, HISTORY, LABEL_COUNTS, LOG, Location, NODES, decode, get_json, keys,
    scan_json,
};
use crate::StoreError;

type JsonTable = ReadOnlyTable<&'static str, &'static [u8]>;

fn begin(db: &Database, location: &Location) -> Result<ReadTransaction, StoreError> {
    db.begin_read().during(location, "starting a read")
}

fn json_table(
    txn: &ReadTransaction,
    location: &Location,
    definition: redb::TableDefinition<&'static str, &'static [u8]>,
) -> Result<JsonTable, StoreError> {
    txn.open_table(definition)
        .during(location, "opening a table")
}

pub(super) fn node(
    db: &Database,
    location: &Location,
    node: &NodeRef,
) -> Result<Option<StoredNode>, StoreError> {
    let txn = begin(db, location)?;
    let nodes = json_table(&txn, location, NODES)?;
    get_json(&nodes, location, &keys::node(node))
}

pub(super) fn nodes(
    db: &Database,
    location: &Location,
    label: &str,
) -> Result<Vec<StoredNode>, StoreError> {
    let txn = begin(db, location)?;
    let nodes = json_table(&txn, location, NODES)?;
    let found = scan_json(&nodes, location, &keys::label_prefix(label))?;
    Ok(found.into_iter().map(|(_, node)| node).collect())
}

pub(super) fn nodes_page(
    db: &Database,
    location: &Location,
    label: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredNode>, StoreError> {
    let txn = begin(db, location)?;
    let nodes = json_table(&txn, location, NODES)?;
    let prefix = keys::label_prefix(label);
    let after = after.map(|key| keys::node(&NodeRef::new(label, key)));
    let start = after.clone().unwrap_or_else(|| prefix.clone());
    let mut out = Vec::new();
    for item in nodes
        .range(start.as_str()..)
        .during(location, "paging nodes")?
    {
        if out.len() >= limit {
            break;
        }
        let (key, bytes) = item.during(location, "paging nodes")?;
        let key = key.value();
        if !key.starts_with(&prefix) {
            break;
        }
        if after.as_deref() == Some(key) {
            continue;
        }
        out.push(decode(location, key, bytes.value())?);
    }
    Ok(out)
}

/// Walks every edge and decodes only those of `kind`: there is no index by
/// kind, so this costs a pass over all edge keys. An index would be the fix
/// if detectors start to wait on it.
pub(super) fn edges(
    db: &Database,
    location: &Location,
    kind: &str,
) -> Result<Vec<StoredEdge>, StoreError> {
    let txn = begin(db, location)?;
    let edges = json_table(&txn, location, EDGES)?;
    let mut out = Vec::new();
    for item in edges.iter().during(location, "scanning edges")? {
        let (key, bytes) = item.during(location, "scanning edges")?;
        if keys::edge_has_kind(key.value(), kind) {
            out.push(decode(location, key.value(), bytes.value())?);
        }
    }
    Ok(out)
}

pub(super) fn neighbours(
    db: &Database,
    location: &Location,
    node: &NodeRef,
    kind: &str,
    dir: Direction,
) -> Result<Vec<(StoredEdge, StoredNode)>, StoreError> {
    let txn = begin(db, location)?;
    let nodes = json_table(&txn, location, NODES)?;
    let edges = json_table(&txn, location, EDGES)?;
    let prefix = keys::adjacency_prefix(node, kind);
    let found: Vec<StoredEdge> = match dir {
        Direction::Outgoing => scan_json(&edges, location, &prefix)?
            .into_iter()
            .map(|(_, edge)| edge)
            .collect(),
        Direction::Incoming => incoming(&txn, &edges, location, &prefix)?,
    };
    let mut out = Vec::with_capacity(found.len());
    for edge in found {
        let end = match dir {
            Direction::Outgoing => &edge.edge.to,
            Direction::Incoming => &edge.edge.from,
        };
        let Some(other) = get_json(&nodes, location, &keys::node(end))? else {
            return Err(StoreError::DanglingEdge {
                location: location.to_string(),
                edge: crate::prepare::edge_record(&edge.edge),
                end: end.clone(),
            });
        };
        out.push((edge, other));
    }
    Ok(out)
}

/// The edges whose incoming-index key starts with `prefix`.
fn incoming(
    txn: &ReadTransaction,
    edges: &JsonTable,
    location: &Location,
    prefix: &str,
) -> Result<Vec<StoredEdge>, StoreError> {
    let index = txn
        .open_table(EDGES_IN)
        .during(location, "opening a table")?;
    let mut out = Vec::new();
    for item in index.range(prefix..).during(location, "scanning edges")? {
        let (key, out_key) = item.during(location, "scanning edges")?;
        if !key.value().starts_with(prefix) {
            break;
        }
        if let Some(edge) = get_json(edges, location, out_key.value())? {
            out.push(edge);
        }
    }
    Ok(out)
}

pub(super) fn snapshot(db: &Database, location: &Location) -> Result<ChangeSet, StoreError> {
    let txn = begin(db, location)?;
    let nodes = json_table(&txn, location, NODES)?;
    let edges = json_table(&txn, location, EDGES)?;
    let nodes = scan_json::<StoredNode, _>(&nodes, location, "")?
        .into_iter()
        .map(|(_, node)| {
            let kind = snapshot_kind(node.provenance.observed());
            NodeChange { node, kind }
        })
        .collect();
    let edges = scan_json::<StoredEdge, _>(&edges, location, "")?
        .into_iter()
        .map(|(_, edge)| {
            let kind = snapshot_kind(edge.provenance.observed());
            EdgeChange { edge, kind }
        })
        .collect();
    Ok(ChangeSet { nodes, edges })
}

fn snapshot_kind(observed: bool) -> ChangeKind {
    if observed {
        ChangeKind::Unchanged
    } else {
        ChangeKind::NotObserved
    }
}

pub(super) fn history(
    db: &Database,
    location: &Location,
    entity: &EntityId,
) -> Result<Vec<ChangeLogEntry>, StoreError> {
    let txn = begin(db, location)?;
    let index = txn
        .open_multimap_table(HISTORY)
        .during(location, "opening a table")?;
    let log = txn.open_table(LOG).during(location, "opening a table")?;
    let mut out = Vec::new();
    // Multimap values come back in ascending order, which is oldest first.
    let seqs = index
        .get(keys::entity(entity).as_str())
        .during(location, "reading history")?;
    for seq in seqs {
        let seq = seq.during(location, "reading history")?.value();
        let entry = log.get(seq).during(location, "reading the change log")?;
        if let Some(bytes) = entry {
            out.push(decode(location, &seq.to_string(), bytes.value())?);
        }
    }
    Ok(out)
}

pub(super) fn counts(
    db: &Database,
    location: &Location,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let txn = begin(db, location)?;
    let counts = txn
        .open_table(LABEL_COUNTS)
        .during(location, "opening label counts")?;
    let mut out = BTreeMap::new();
    for item in counts.iter().during(location, "reading label counts")? {
        let (label, n) = item.during(location, "reading label counts")?;
        out.insert(label.value().to_owned(), n.value());
    }
    Ok(out)
}
