//! `forget` as one redb write transaction.

use std::collections::BTreeSet;

use org_mesh_model::{EntityId, NodeRef, StoredEdge};
use redb::{Database, MultimapTable, Table};

use super::{
    During, EDGES, EDGES_IN, HISTORY, LABEL_COUNTS, LOG, Location, NODES, count_node, keys,
    scan_incoming, scan_json,
};
use crate::{Forgotten, StoreError};

pub(super) fn forget(
    db: &Database,
    location: &Location,
    nodes: &[NodeRef],
) -> Result<Forgotten, StoreError> {
    // redb has one writer at a time, so this waits for any apply in
    // progress and no apply starts until it commits.
    let txn = db.begin_write().during(location, "starting a write")?;
    let mut forgotten = Forgotten::default();
    {
        const OPENING: &str = "opening tables";
        let mut eraser = Eraser {
            location,
            nodes: txn.open_table(NODES).during(location, OPENING)?,
            edges: txn.open_table(EDGES).during(location, OPENING)?,
            incoming: txn.open_table(EDGES_IN).during(location, OPENING)?,
            log: txn.open_table(LOG).during(location, OPENING)?,
            history: txn.open_multimap_table(HISTORY).during(location, OPENING)?,
            counts: txn.open_table(LABEL_COUNTS).during(location, OPENING)?,
            forgotten: &mut forgotten,
        };
        let unique: BTreeSet<&NodeRef> = nodes.iter().collect();
        for node in unique {
            eraser.node(node)?;
        }
    }
    txn.commit().during(location, "committing a forget")?;
    Ok(forgotten)
}

struct Eraser<'t, 'f> {
    location: &'t Location,
    nodes: Table<'t, &'static str, &'static [u8]>,
    edges: Table<'t, &'static str, &'static [u8]>,
    incoming: Table<'t, &'static str, &'static str>,
    log: Table<'t, u64, &'static [u8]>,
    history: MultimapTable<'t, &'static str, u64>,
    counts: Table<'t, &'static str, u64>,
    forgotten: &'f mut Forgotten,
}

impl Eraser<'_, '_> {
    /// Removes one node with its edges and history. A node that is not
    /// stored has no edges, but its leftovers are looked for all the same:
    /// the lookups are cheap and leave nothing behind whatever happened
    /// before.
    fn node(&mut self, node: &NodeRef) -> Result<(), StoreError> {
        for (key, edge) in self.edges_at(node)? {
            self.edge(&key, &edge)?;
        }
        let removed = self
            .nodes
            .remove(keys::node(node).as_str())
            .during(self.location, "removing a node")?
            .is_some();
        if removed {
            self.forgotten.nodes += 1;
            count_node(&mut self.counts, &node.label, false, self.location)?;
        }
        self.history(&EntityId::Node(node.clone()))
    }

    /// Every stored edge leaving or reaching `node`, each once.
    fn edges_at(&self, node: &NodeRef) -> Result<Vec<(String, StoredEdge)>, StoreError> {
        let prefix = keys::node_prefix(node);
        let mut found = scan_json(&self.edges, self.location, &prefix)?;
        let incoming = scan_incoming(&self.incoming, &self.edges, self.location, &prefix)?;
        // An edge from the node to itself is in both tables.
        let outgoing: BTreeSet<String> = found.iter().map(|(key, _)| key.clone()).collect();
        found.extend(
            incoming
                .into_iter()
                .filter(|(key, _)| !outgoing.contains(key)),
        );
        Ok(found)
    }

    fn edge(&mut self, key: &str, stored: &StoredEdge) -> Result<(), StoreError> {
        let edge = &stored.edge;
        let removed = self
            .edges
            .remove(key)
            .during(self.location, "removing an edge")?
            .is_some();
        if removed {
            self.forgotten.edges += 1;
        }
        let incoming = keys::edge_in(&edge.kind, &edge.from, &edge.to);
        self.incoming
            .remove(incoming.as_str())
            .during(self.location, "removing an edge")?;
        self.history(&EntityId::Edge {
            kind: edge.kind.clone(),
            from: edge.from.clone(),
            to: edge.to.clone(),
        })
    }

    /// Removes every change log entry of `entity` and its index.
    fn history(&mut self, entity: &EntityId) -> Result<(), StoreError> {
        const REMOVING: &str = "removing history";
        let mut seqs = Vec::new();
        let removed = self
            .history
            .remove_all(keys::entity(entity).as_str())
            .during(self.location, REMOVING)?;
        for seq in removed {
            seqs.push(seq.during(self.location, REMOVING)?.value());
        }
        for seq in seqs {
            let removed = self
                .log
                .remove(seq)
                .during(self.location, "removing a change log entry")?
                .is_some();
            if removed {
                self.forgotten.history += 1;
            }
        }
        Ok(())
    }
}
