//! `apply` as one redb write transaction.

use std::collections::BTreeSet;

use org_mesh_model::{
    ChangeKind, ChangeLogEntry, ChangeSet, Coverage, Edge, EdgeChange, EntityId, Node, NodeChange,
    NodeRef, Properties, StoredEdge, StoredNode, Timestamp,
};
use redb::{Database, MultimapTable, ReadableTable, Table, WriteTransaction};

use super::{
    During, EDGES, EDGES_IN, HISTORY, LABEL_COUNTS, LOG, Location, META, NEXT_SEQ_KEY, NODES,
    count_node, encode, get_json, keys, scan_incoming, scan_json,
};
use crate::prepare::{Prepared, covered, edge_record, node_record, settle};
use crate::{Applied, StoreError};

pub(super) fn apply(
    db: &Database,
    location: &Location,
    source: &str,
    at: Timestamp,
    mut batch: Prepared,
) -> Result<Applied, StoreError> {
    let txn = db.begin_write().during(location, "starting a write")?;
    let mut changes = ChangeSet::default();
    {
        let mut writer = Writer::open(&txn, location, source, at)?;
        batch.drop_dangling_edges(|end| writer.node_exists(end))?;

        for (reference, node) in std::mem::take(&mut batch.nodes) {
            let cleared = batch.partial.then(|| batch.cleared_nodes.get(&reference));
            changes.nodes.push(writer.upsert_node(node, cleared)?);
        }
        for (key, edge) in std::mem::take(&mut batch.edges) {
            let cleared = batch.partial.then(|| batch.cleared_edges.get(&key));
            changes.edges.push(writer.upsert_edge(edge, cleared)?);
        }
        for coverage in &batch.complete {
            writer.mark_unseen(coverage, &batch, &mut changes)?;
        }
        writer.finish()?;
    }
    // Until this commit nothing is visible, and a crash before it loses the
    // whole batch rather than part of it.
    txn.commit().during(location, "committing a batch")?;
    Ok(Applied {
        changes,
        skipped: batch.skipped,
    })
}

type JsonTable<'t> = Table<'t, &'static str, &'static [u8]>;

struct Writer<'t> {
    location: &'t Location,
    source: &'t str,
    at: Timestamp,
    meta: Table<'t, &'static str, u64>,
    nodes: JsonTable<'t>,
    edges: JsonTable<'t>,
    incoming: Table<'t, &'static str, &'static str>,
    log: Table<'t, u64, &'static [u8]>,
    history: MultimapTable<'t, &'static str, u64>,
    counts: Table<'t, &'static str, u64>,
    next_seq: u64,
}

impl<'t> Writer<'t> {
    fn open(
        txn: &'t WriteTransaction,
        location: &'t Location,
        source: &'t str,
        at: Timestamp,
    ) -> Result<Self, StoreError> {
        const OPENING: &str = "opening tables";
        let meta = txn.open_table(META).during(location, OPENING)?;
        let next_seq = meta
            .get(NEXT_SEQ_KEY)
            .during(location, "reading the next seq")?
            .map_or(1, |v| v.value());
        Ok(Writer {
            location,
            source,
            at,
            meta,
            next_seq,
            nodes: txn.open_table(NODES).during(location, OPENING)?,
            edges: txn.open_table(EDGES).during(location, OPENING)?,
            incoming: txn.open_table(EDGES_IN).during(location, OPENING)?,
            log: txn.open_table(LOG).during(location, OPENING)?,
            history: txn.open_multimap_table(HISTORY).during(location, OPENING)?,
            counts: txn.open_table(LABEL_COUNTS).during(location, OPENING)?,
        })
    }

    fn node_exists(&self, node: &NodeRef) -> Result<bool, StoreError> {
        let found = self
            .nodes
            .get(keys::node(node).as_str())
            .during(self.location, "looking up a node")?;
        Ok(found.is_some())
    }

    /// Stores an observation of a node. `partial` is `Some` in a partial
    /// batch, with the properties the observation cleared.
    fn upsert_node(
        &mut self,
        mut node: Node,
        partial: Option<Option<&BTreeSet<String>>>,
    ) -> Result<NodeChange, StoreError> {
        let reference = node.reference();
        let key = keys::node(&reference);
        let previous: Option<StoredNode> = get_json(&self.nodes, self.location, &key)?;
        let (kind, provenance) = settle(
            previous
                .as_ref()
                .map(|p| (&p.node.properties, &p.provenance)),
            &mut node.properties,
            partial,
            self.source,
            self.at,
        );
        let stored = StoredNode { node, provenance };
        self.put_node(&key, &stored)?;
        if kind != ChangeKind::Unchanged {
            let before = previous.map(|p| p.node.properties);
            let after = Some(stored.node.properties.clone());
            self.log(EntityId::Node(reference), kind, before, after)?;
        }
        Ok(NodeChange { node: stored, kind })
    }

    /// Stores an observation of an edge; `partial` as for nodes.
    fn upsert_edge(
        &mut self,
        mut edge: Edge,
        partial: Option<Option<&BTreeSet<String>>>,
    ) -> Result<EdgeChange, StoreError> {
        let key = keys::edge_out(&edge.kind, &edge.from, &edge.to);
        let previous: Option<StoredEdge> = get_json(&self.edges, self.location, &key)?;
        let (kind, provenance) = settle(
            previous
                .as_ref()
                .map(|p| (&p.edge.properties, &p.provenance)),
            &mut edge.properties,
            partial,
            self.source,
            self.at,
        );
        let stored = StoredEdge { edge, provenance };
        self.put_edge(&key, &stored)?;
        if previous.is_none() {
            let edge = &stored.edge;
            let incoming = keys::edge_in(&edge.kind, &edge.from, &edge.to);
            self.incoming
                .insert(incoming.as_str(), key.as_str())
                .during(self.location, "indexing an edge")?;
        }
        if kind != ChangeKind::Unchanged {
            let before = previous.map(|p| p.edge.properties);
            let after = Some(stored.edge.properties.clone());
            self.log(edge_entity(&stored.edge), kind, before, after)?;
        }
        Ok(EdgeChange { edge: stored, kind })
    }

    /// Marks what `coverage` says should be there but the batch lacks.
    fn mark_unseen(
        &mut self,
        coverage: &Coverage,
        batch: &Prepared,
        changes: &mut ChangeSet,
    ) -> Result<(), StoreError> {
        match coverage {
            Coverage::Nodes(label) => {
                let prefix = keys::label_prefix(label);
                let stored: Vec<(String, StoredNode)> =
                    scan_json(&self.nodes, self.location, &prefix)?;
                for (key, mut node) in stored {
                    let held = batch.held_nodes.contains(&node.node.reference());
                    if held || !covered(&node.provenance, self.source, self.at) {
                        continue;
                    }
                    node.provenance.not_observed_since = Some(self.at);
                    self.put_node(&key, &node)?;
                    let before = Some(node.node.properties.clone());
                    self.log(
                        EntityId::Node(node.node.reference()),
                        ChangeKind::NotObserved,
                        before,
                        None,
                    )?;
                    changes.nodes.push(NodeChange {
                        node,
                        kind: ChangeKind::NotObserved,
                    });
                }
            }
            Coverage::EdgesFrom(kind, node) => {
                let prefix = keys::adjacency_prefix(node, kind);
                let stored = scan_json(&self.edges, self.location, &prefix)?;
                self.mark_edges(stored, batch, changes)?;
            }
            Coverage::EdgesTo(kind, node) => {
                let stored = self.incoming_edges(node, kind)?;
                self.mark_edges(stored, batch, changes)?;
            }
            Coverage::Node(node) => {
                let key = keys::node(node);
                let stored: Option<StoredNode> = get_json(&self.nodes, self.location, &key)?;
                if let Some(mut stored) = stored {
                    let held = batch.held_nodes.contains(node);
                    if !held && covered(&stored.provenance, self.source, self.at) {
                        stored.provenance.not_observed_since = Some(self.at);
                        self.put_node(&key, &stored)?;
                        let before = Some(stored.node.properties.clone());
                        self.log(
                            EntityId::Node(node.clone()),
                            ChangeKind::NotObserved,
                            before,
                            None,
                        )?;
                        changes.nodes.push(NodeChange {
                            node: stored,
                            kind: ChangeKind::NotObserved,
                        });
                    }
                }
            }
            Coverage::Edge(kind, from, to) => {
                let key = keys::edge_out(kind, from, to);
                let stored: Option<StoredEdge> = get_json(&self.edges, self.location, &key)?;
                self.mark_edges(
                    stored.map(|e| (key, e)).into_iter().collect(),
                    batch,
                    changes,
                )?;
            }
        }
        Ok(())
    }

    fn incoming_edges(
        &self,
        node: &NodeRef,
        kind: &str,
    ) -> Result<Vec<(String, StoredEdge)>, StoreError> {
        let prefix = keys::adjacency_prefix(node, kind);
        scan_incoming(&self.incoming, &self.edges, self.location, &prefix)
    }

    fn mark_edges(
        &mut self,
        stored: Vec<(String, StoredEdge)>,
        batch: &Prepared,
        changes: &mut ChangeSet,
    ) -> Result<(), StoreError> {
        for (key, mut edge) in stored {
            let e = &edge.edge;
            let natural = (e.kind.clone(), e.from.clone(), e.to.clone());
            if batch.held_edges.contains(&natural)
                || !covered(&edge.provenance, self.source, self.at)
            {
                continue;
            }
            edge.provenance.not_observed_since = Some(self.at);
            self.put_edge(&key, &edge)?;
            let before = Some(edge.edge.properties.clone());
            self.log(
                edge_entity(&edge.edge),
                ChangeKind::NotObserved,
                before,
                None,
            )?;
            changes.edges.push(EdgeChange {
                edge,
                kind: ChangeKind::NotObserved,
            });
        }
        Ok(())
    }

    fn put_node(&mut self, key: &str, node: &StoredNode) -> Result<(), StoreError> {
        let bytes = encode(|| node_record(&node.node.reference()), node)?;
        let existed = self
            .nodes
            .insert(key, bytes.as_slice())
            .during(self.location, "writing a node")?
            .is_some();
        if !existed {
            count_node(&mut self.counts, &node.node.label, true, self.location)?;
        }
        Ok(())
    }

    fn put_edge(&mut self, key: &str, edge: &StoredEdge) -> Result<(), StoreError> {
        let bytes = encode(|| edge_record(&edge.edge), edge)?;
        self.edges
            .insert(key, bytes.as_slice())
            .during(self.location, "writing an edge")?;
        Ok(())
    }

    fn log(
        &mut self,
        entity: EntityId,
        kind: ChangeKind,
        before: Option<Properties>,
        after: Option<Properties>,
    ) -> Result<(), StoreError> {
        let entry = ChangeLogEntry {
            seq: self.next_seq,
            at: self.at,
            source: self.source.to_owned(),
            entity,
            kind,
            before,
            after,
        };
        let bytes = encode(|| format!("change log entry {}", entry.seq), &entry)?;
        self.log
            .insert(entry.seq, bytes.as_slice())
            .during(self.location, "writing the change log")?;
        self.history
            .insert(keys::entity(&entry.entity).as_str(), entry.seq)
            .during(self.location, "indexing the change log")?;
        self.next_seq += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<(), StoreError> {
        self.meta
            .insert(NEXT_SEQ_KEY, self.next_seq)
            .during(self.location, "writing the next seq")?;
        Ok(())
    }
}

fn edge_entity(edge: &Edge) -> EntityId {
    EntityId::Edge {
        kind: edge.kind.clone(),
        from: edge.from.clone(),
        to: edge.to.clone(),
    }
}
