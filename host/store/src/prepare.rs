//! The backend-independent half of `apply`: checking a batch, and deciding
//! what an observation does to a stored record.

use std::collections::{BTreeMap, BTreeSet};

use org_mesh_model::{
    Batch, ChangeKind, Coverage, Edge, ModelError, Node, NodeRef, Properties, Provenance,
    Timestamp, Value,
};
use time::format_description::well_known::Rfc3339;

use crate::{Skipped, StoreError};

/// An edge's natural key: kind, from, to.
pub(crate) type EdgeKey = (String, NodeRef, NodeRef);

/// A batch after checking, deduplicated and in key order.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    pub nodes: BTreeMap<NodeRef, Node>,
    pub edges: BTreeMap<EdgeKey, Edge>,
    /// Keys the batch holds, including records skipped only for their
    /// properties: coverage must not mark those as gone.
    pub held_nodes: BTreeSet<NodeRef>,
    pub held_edges: BTreeSet<EdgeKey>,
    pub complete: Vec<Coverage>,
    pub skipped: Vec<Skipped>,
    /// Merge properties into what is stored instead of replacing them.
    pub partial: bool,
    /// In a partial batch, the properties each record sets to null: merging
    /// removes them.
    pub cleared_nodes: BTreeMap<NodeRef, BTreeSet<String>>,
    pub cleared_edges: BTreeMap<EdgeKey, BTreeSet<String>>,
}

impl Prepared {
    /// Checks every record of `batch` on its own; ends of edges are checked
    /// by the backend, which knows what is stored.
    pub fn new(batch: Batch) -> Self {
        let mut out = Prepared {
            complete: batch.complete,
            partial: batch.partial,
            ..Prepared::default()
        };
        for node in batch.nodes {
            out.add_node(node);
        }
        for edge in batch.edges {
            out.add_edge(edge);
        }
        out
    }

    fn add_node(&mut self, node: Node) {
        let reference = node.reference();
        if self.partial {
            let nulls = nulls(&node.properties);
            if !nulls.is_empty() {
                self.cleared_nodes.insert(reference.clone(), nulls);
            }
        }
        let record = node_record(&reference);
        match node.normalised().map_err(Refusal::Model).and_then(storable) {
            Ok(node) => {
                self.held_nodes.insert(reference.clone());
                self.nodes.insert(reference, node);
            }
            Err(refusal) => {
                if refusal.identity_is_valid() {
                    self.held_nodes.insert(reference);
                }
                self.skip(record, refusal.to_string());
            }
        }
    }

    fn add_edge(&mut self, edge: Edge) {
        let key = (edge.kind.clone(), edge.from.clone(), edge.to.clone());
        if self.partial {
            let nulls = nulls(&edge.properties);
            if !nulls.is_empty() {
                self.cleared_edges.insert(key.clone(), nulls);
            }
        }
        let record = edge_record(&edge);
        match edge.normalised().map_err(Refusal::Model).and_then(storable) {
            Ok(edge) => {
                self.held_edges.insert(key.clone());
                self.edges.insert(key, edge);
            }
            Err(refusal) => {
                if refusal.identity_is_valid() {
                    self.held_edges.insert(key);
                }
                self.skip(record, refusal.to_string());
            }
        }
    }

    pub fn skip(&mut self, record: String, reason: String) {
        tracing::debug!(%record, %reason, "Skipping record");
        self.skipped.push(Skipped { record, reason });
    }

    /// Drops the edges whose ends are neither valid nodes of this batch nor
    /// stored, as `is_stored` tells.
    pub fn drop_dangling_edges(
        &mut self,
        mut is_stored: impl FnMut(&NodeRef) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut dangling = Vec::new();
        for (key, edge) in &self.edges {
            for (side, end) in [("from", &edge.from), ("to", &edge.to)] {
                if !self.nodes.contains_key(end) && !is_stored(end)? {
                    let reason = format!("its {side} end {end} is neither stored nor in the batch");
                    dangling.push((key.clone(), reason));
                    break;
                }
            }
        }
        for (key, reason) in dangling {
            if let Some(edge) = self.edges.remove(&key) {
                self.skip(edge_record(&edge), reason);
            }
        }
        Ok(())
    }
}

pub(crate) fn node_record(node: &NodeRef) -> String {
    format!("node {node}")
}

pub(crate) fn edge_record(edge: &Edge) -> String {
    format!("edge {} {} -> {}", edge.kind, edge.from, edge.to)
}

/// Why one record was refused.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error(transparent)]
    Model(ModelError),
    #[error("property {0:?} holds a float that is not finite")]
    NotFinite(String),
    #[error("property {0:?} holds a timestamp that rfc 3339 cannot express")]
    Timestamp(String),
}

impl Refusal {
    /// True when the label, kind and key were fine and only a property was
    /// not: the record was then seen, just not storable.
    fn identity_is_valid(&self) -> bool {
        !matches!(
            self,
            Refusal::Model(
                ModelError::BadLabel(_) | ModelError::BadEdgeKind(_) | ModelError::BadKey { .. }
            )
        )
    }
}

trait HasProperties {
    fn properties(&self) -> &Properties;
}

impl HasProperties for Node {
    fn properties(&self) -> &Properties {
        &self.properties
    }
}

impl HasProperties for Edge {
    fn properties(&self) -> &Properties {
        &self.properties
    }
}

/// Refuses values that would not come back as they went in: JSON has no
/// NaN or infinity, and the model's timestamps travel as RFC 3339.
fn storable<R: HasProperties>(record: R) -> Result<R, Refusal> {
    for (name, value) in record.properties() {
        match value {
            Value::Float(f) if !f.is_finite() => return Err(Refusal::NotFinite(name.clone())),
            Value::Timestamp(t) if t.format(&Rfc3339).is_err() => {
                return Err(Refusal::Timestamp(name.clone()));
            }
            _ => {}
        }
    }
    Ok(record)
}

/// Checks the observation time before anything is written, so a bad one
/// fails the call instead of half the records.
pub(crate) fn check_time(at: Timestamp) -> Result<(), StoreError> {
    at.format(&Rfc3339)
        .map(drop)
        .map_err(StoreError::BadTimestamp)
}

/// What observing `observed` does to a record stored as `previous`.
fn observe(
    previous: Option<(&Properties, &Provenance)>,
    observed: &Properties,
    source: &str,
    at: Timestamp,
) -> (ChangeKind, Provenance) {
    let Some((properties, provenance)) = previous else {
        let provenance = Provenance {
            source: source.to_owned(),
            first_seen: at,
            last_seen: at,
            not_observed_since: None,
        };
        return (ChangeKind::Added, provenance);
    };
    let kind = if !provenance.observed() || properties != observed {
        ChangeKind::Updated
    } else {
        ChangeKind::Unchanged
    };
    let provenance = Provenance {
        source: source.to_owned(),
        first_seen: provenance.first_seen,
        last_seen: at,
        not_observed_since: None,
    };
    (kind, provenance)
}

fn nulls(props: &Properties) -> BTreeSet<String> {
    props
        .iter()
        .filter(|(_, v)| **v == Value::Null)
        .map(|(k, _)| k.clone())
        .collect()
}

/// The properties a partial observation leaves: what was stored, less what
/// it cleared, overwritten by what it set.
fn merge(
    stored: Option<&Properties>,
    cleared: Option<&BTreeSet<String>>,
    observed: Properties,
) -> Properties {
    let mut merged = stored.cloned().unwrap_or_default();
    for name in cleared.into_iter().flatten() {
        merged.remove(name);
    }
    merged.extend(observed);
    merged
}

/// What observing a record does to it: in a partial batch (`cleared` is
/// `Some`) its properties are first merged into the stored ones; then the
/// change kind and the new provenance follow from the stored version.
pub(crate) fn settle(
    previous: Option<(&Properties, &Provenance)>,
    properties: &mut Properties,
    cleared: Option<Option<&BTreeSet<String>>>,
    source: &str,
    at: Timestamp,
) -> (ChangeKind, Provenance) {
    // An observation older than what the record already holds is stale:
    // changes queued or delivered out of order must not undo newer ones.
    if let Some((stored, provenance)) = previous
        && at < latest(provenance)
    {
        stored.clone_into(properties);
        return (ChangeKind::Unchanged, provenance.clone());
    }
    if let Some(cleared) = cleared {
        let observed = std::mem::take(properties);
        *properties = merge(previous.map(|(p, _)| p), cleared, observed);
    }
    observe(previous, properties, source, at)
}

/// When a record was last observed, or found no longer observed.
fn latest(provenance: &Provenance) -> Timestamp {
    provenance
        .not_observed_since
        .map_or(provenance.last_seen, |gone| gone.max(provenance.last_seen))
}

/// True when coverage by `source` at `at` marks a record with
/// `provenance`: a listing older than the record's last observation says
/// nothing about it.
pub(crate) fn covered(provenance: &Provenance, source: &str, at: Timestamp) -> bool {
    provenance.observed() && provenance.source == source && provenance.last_seen <= at
}
