//! The entity model of the org-mesh twin, as the host sees it.
//!
//! Plugins exchange the same shapes through the WIT contract in `sdk/wit`;
//! the runtime converts between the two at the boundary, validating what
//! plugins send (labels, keys, timestamps) on the way in.

mod change;
mod finding;
mod graph;
mod value;

pub use change::{ChangeKind, ChangeLogEntry, ChangeSet, EdgeChange, EntityId, NodeChange};
pub use finding::{Evidence, Finding, Remedy, Severity, fingerprint};
pub use graph::{
    Batch, Coverage, Direction, Edge, ModelError, Node, NodeRef, Provenance, StoredEdge,
    StoredNode, edge_kind, label,
};
pub use value::{Properties, Value, properties_to_json};

/// A point in time as the twin records it: UTC, RFC 3339 on the wire.
pub type Timestamp = time::OffsetDateTime;
