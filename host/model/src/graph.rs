use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Properties, Timestamp, Value};

/// Labels of the nodes the first-party plugins and the host itself use.
/// Plugins may add labels of their own.
pub mod label {
    pub const ORGANISATION: &str = "Organisation";
    pub const PERSON: &str = "Person";
    pub const ACCOUNT: &str = "Account";
    pub const GROUP: &str = "Group";
    pub const REPOSITORY: &str = "Repository";
}

/// Kinds of the edges the first-party plugins and the host itself use.
pub mod edge_kind {
    /// Account to Organisation or Group; `role` and `state`
    /// (`active` or `pending`) are properties.
    pub const MEMBER_OF: &str = "MEMBER_OF";
    /// Account or Group to Repository; `role` is a property.
    pub const HAS_PERMISSION: &str = "HAS_PERMISSION";
    /// Organisation to Repository or Group.
    pub const OWNS: &str = "OWNS";
    /// Account to Person; `evidence` and `confidence` are properties.
    pub const IDENTITY_OF: &str = "IDENTITY_OF";
}

/// Why a record from a plugin was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("label {0:?} is not a capitalised identifier")]
    BadLabel(String),
    #[error("edge kind {0:?} is not an upper-case identifier")]
    BadEdgeKind(String),
    #[error("{label} key is empty or longer than 512 bytes")]
    BadKey { label: String },
    #[error("property name {0:?} is empty, too long, or not snake_case")]
    BadPropertyName(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeRef {
    pub label: String,
    pub key: String,
}

impl NodeRef {
    pub fn new(label: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            key: key.into(),
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        let mut chars = self.label.chars();
        let capitalised = chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && chars.all(|c| c.is_ascii_alphanumeric());
        if !capitalised || self.label.len() > 64 {
            return Err(ModelError::BadLabel(self.label.clone()));
        }
        if self.key.is_empty() || self.key.len() > 512 {
            return Err(ModelError::BadKey {
                label: self.label.clone(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.label, self.key)
    }
}

fn validate_properties(props: &Properties) -> Result<(), ModelError> {
    for name in props.keys() {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(ModelError::BadPropertyName(name.clone()));
        }
    }
    Ok(())
}

fn drop_nulls(props: &mut Properties) {
    props.retain(|_, v| *v != Value::Null);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub label: String,
    pub key: String,
    pub properties: Properties,
}

impl Node {
    pub fn reference(&self) -> NodeRef {
        NodeRef::new(&self.label, &self.key)
    }

    /// Checks the label, key and property names, and drops explicit nulls so
    /// that null and absent read back the same.
    pub fn normalised(mut self) -> Result<Self, ModelError> {
        self.reference().validate()?;
        validate_properties(&self.properties)?;
        drop_nulls(&mut self.properties);
        Ok(self)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    pub kind: String,
    pub from: NodeRef,
    pub to: NodeRef,
    pub properties: Properties,
}

impl Edge {
    /// Checks the kind, both ends and property names, and drops explicit
    /// nulls.
    pub fn normalised(mut self) -> Result<Self, ModelError> {
        let upper = !self.kind.is_empty()
            && self.kind.len() <= 64
            && self
                .kind
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !upper {
            return Err(ModelError::BadEdgeKind(self.kind.clone()));
        }
        self.from.validate()?;
        self.to.validate()?;
        validate_properties(&self.properties)?;
        drop_nulls(&mut self.properties);
        Ok(self)
    }
}

/// A statement that a batch holds every record of a set; see the WIT
/// `coverage` type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    Nodes(String),
    EdgesTo(String, NodeRef),
    EdgesFrom(String, NodeRef),
    /// One node; absent from the batch means gone.
    Node(NodeRef),
    /// One edge by kind, from and to; absent from the batch means gone.
    Edge(String, NodeRef, NodeRef),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub complete: Vec<Coverage>,
    /// Records carry only some of their properties: merge them into what is
    /// stored, and let an explicit `Null` remove one. Otherwise the stored
    /// properties are replaced.
    #[serde(default)]
    pub partial: bool,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.edges.is_empty() && self.complete.is_empty()
    }

    /// Adds `other`'s records and coverage to this batch when both are
    /// partial or both whole; otherwise hands `other` back untouched, since
    /// a merge and a replacement cannot be applied as one batch. Merged
    /// batches should not carry the same node or edge twice.
    pub fn try_extend(&mut self, other: Batch) -> Result<(), Batch> {
        if self.partial != other.partial {
            return Err(other);
        }
        self.nodes.extend(other.nodes);
        self.edges.extend(other.edges);
        self.complete.extend(other.complete);
        Ok(())
    }
}

/// Where a stored fact came from and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: Timestamp,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub not_observed_since: Option<Timestamp>,
}

impl Provenance {
    pub fn observed(&self) -> bool {
        self.not_observed_since.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredNode {
    pub node: Node,
    pub provenance: Provenance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEdge {
    pub edge: Edge,
    pub provenance: Provenance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outgoing,
    Incoming,
}
