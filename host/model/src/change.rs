use serde::{Deserialize, Serialize};

use crate::{NodeRef, Properties, StoredEdge, StoredNode, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Updated,
    Unchanged,
    NotObserved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeChange {
    pub node: StoredNode,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeChange {
    pub edge: StoredEdge,
    pub kind: ChangeKind,
}

/// What applying a batch did, or (for a full scan) the whole twin with every
/// entry `Unchanged`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub nodes: Vec<NodeChange>,
    pub edges: Vec<EdgeChange>,
}

impl ChangeSet {
    /// True when nothing was added, updated or marked not observed.
    pub fn is_quiet(&self) -> bool {
        self.nodes.iter().all(|c| c.kind == ChangeKind::Unchanged)
            && self.edges.iter().all(|c| c.kind == ChangeKind::Unchanged)
    }

    pub fn extend(&mut self, other: ChangeSet) {
        self.nodes.extend(other.nodes);
        self.edges.extend(other.edges);
    }
}

/// Names a node or an edge in the change log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityId {
    Node(NodeRef),
    Edge {
        kind: String,
        from: NodeRef,
        to: NodeRef,
    },
}

/// One entry of the twin's change log: enough to answer "when did this
/// account gain admin" without replaying syncs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeLogEntry {
    /// Increases by one per entry, across restarts.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
    pub source: String,
    pub entity: EntityId,
    pub kind: ChangeKind,
    /// Properties before and after; `None` where the entity did not exist.
    pub before: Option<Properties>,
    pub after: Option<Properties>,
}
