//! Conversions between the WIT types and the host's entity model. What comes
//! from a plugin is checked here; what goes to a plugin cannot fail.

use org_mesh_model as model;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::bindings::types;

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub(crate) fn node_ref_in(r: types::NodeRef) -> model::NodeRef {
    model::NodeRef {
        label: r.label,
        key: r.key,
    }
}

pub(crate) fn node_ref_out(r: &model::NodeRef) -> types::NodeRef {
    types::NodeRef {
        label: r.label.clone(),
        key: r.key.clone(),
    }
}

fn value_in(v: types::Value) -> Result<model::Value, String> {
    Ok(match v {
        types::Value::Null => model::Value::Null,
        types::Value::Boolean(b) => model::Value::Boolean(b),
        types::Value::Integer(i) => model::Value::Integer(i),
        types::Value::Float(f) if f.is_finite() => model::Value::Float(f),
        types::Value::Float(f) => return Err(format!("float {f} is not finite")),
        types::Value::Text(s) => model::Value::Text(s),
        types::Value::Timestamp(s) => model::Value::Timestamp(
            OffsetDateTime::parse(&s, &Rfc3339)
                .map_err(|e| format!("timestamp {s:?} is not RFC 3339: {e}"))?,
        ),
        types::Value::Texts(v) => model::Value::Texts(v),
    })
}

fn value_out(v: &model::Value) -> types::Value {
    match v {
        model::Value::Null => types::Value::Null,
        model::Value::Boolean(b) => types::Value::Boolean(*b),
        model::Value::Integer(i) => types::Value::Integer(*i),
        model::Value::Float(f) => types::Value::Float(*f),
        model::Value::Text(s) => types::Value::Text(s.clone()),
        model::Value::Timestamp(t) => types::Value::Timestamp(rfc3339(*t)),
        model::Value::Texts(v) => types::Value::Texts(v.clone()),
    }
}

pub(crate) fn properties_in(props: types::Properties) -> Result<model::Properties, String> {
    let mut out = model::Properties::new();
    for (name, value) in props {
        let value = value_in(value).map_err(|e| format!("property {name:?}: {e}"))?;
        if out.insert(name.clone(), value).is_some() {
            return Err(format!("property {name:?} appears twice"));
        }
    }
    Ok(out)
}

pub(crate) fn properties_out(props: &model::Properties) -> types::Properties {
    props
        .iter()
        .map(|(k, v)| (k.clone(), value_out(v)))
        .collect()
}

fn node_out(n: &model::Node) -> types::Node {
    types::Node {
        label: n.label.clone(),
        key: n.key.clone(),
        properties: properties_out(&n.properties),
    }
}

fn edge_out(e: &model::Edge) -> types::Edge {
    types::Edge {
        kind: e.kind.clone(),
        from: node_ref_out(&e.from),
        to: node_ref_out(&e.to),
        properties: properties_out(&e.properties),
    }
}

pub(crate) fn provenance_out(p: &model::Provenance) -> types::Provenance {
    types::Provenance {
        source: p.source.clone(),
        first_seen: rfc3339(p.first_seen),
        last_seen: rfc3339(p.last_seen),
        not_observed_since: p.not_observed_since.map(rfc3339),
    }
}

pub(crate) fn provenance_in(p: types::Provenance) -> Result<model::Provenance, String> {
    let parse = |s: &str| {
        OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("provenance time {s:?}: {e}"))
    };
    Ok(model::Provenance {
        first_seen: parse(&p.first_seen)?,
        last_seen: parse(&p.last_seen)?,
        not_observed_since: p.not_observed_since.as_deref().map(parse).transpose()?,
        source: p.source,
    })
}

pub(crate) fn stored_node_out(n: &model::StoredNode) -> types::StoredNode {
    types::StoredNode {
        node: node_out(&n.node),
        provenance: provenance_out(&n.provenance),
    }
}

pub(crate) fn stored_edge_out(e: &model::StoredEdge) -> types::StoredEdge {
    types::StoredEdge {
        edge: edge_out(&e.edge),
        provenance: provenance_out(&e.provenance),
    }
}

/// A batch from a connector. Records that cannot be converted are left out
/// and described in the second list; the store checks the rest.
pub(crate) fn batch_in(b: types::Batch) -> (model::Batch, Vec<String>) {
    let mut skipped = Vec::new();
    let mut batch = model::Batch::default();
    for n in b.nodes {
        let what = format!("node {}({})", n.label, n.key);
        match properties_in(n.properties) {
            Ok(properties) => batch.nodes.push(model::Node {
                label: n.label,
                key: n.key,
                properties,
            }),
            Err(e) => skipped.push(format!("{what}: {e}")),
        }
    }
    for e in b.edges {
        let what = format!(
            "edge {} {}({}) -> {}({})",
            e.kind, e.from.label, e.from.key, e.to.label, e.to.key
        );
        match properties_in(e.properties) {
            Ok(properties) => batch.edges.push(model::Edge {
                kind: e.kind,
                from: node_ref_in(e.from),
                to: node_ref_in(e.to),
                properties,
            }),
            Err(err) => skipped.push(format!("{what}: {err}")),
        }
    }
    batch.partial = b.partial;
    batch.complete = b
        .complete
        .into_iter()
        .map(|c| match c {
            types::Coverage::Nodes(label) => model::Coverage::Nodes(label),
            types::Coverage::EdgesTo((kind, node)) => {
                model::Coverage::EdgesTo(kind, node_ref_in(node))
            }
            types::Coverage::EdgesFrom((kind, node)) => {
                model::Coverage::EdgesFrom(kind, node_ref_in(node))
            }
            types::Coverage::Node(node) => model::Coverage::Node(node_ref_in(node)),
            types::Coverage::Edge((kind, from, to)) => {
                model::Coverage::Edge(kind, node_ref_in(from), node_ref_in(to))
            }
        })
        .collect();
    (batch, skipped)
}

pub(crate) fn change_kind_out(
    k: model::ChangeKind,
) -> crate::bindings::detector::exports::org_mesh::plugin::detector::ChangeKind {
    use crate::bindings::detector::exports::org_mesh::plugin::detector::ChangeKind;
    match k {
        model::ChangeKind::Added => ChangeKind::Added,
        model::ChangeKind::Updated => ChangeKind::Updated,
        model::ChangeKind::Unchanged => ChangeKind::Unchanged,
        model::ChangeKind::NotObserved => ChangeKind::NotObserved,
    }
}

pub(crate) fn plugin_error_in(e: types::PluginError) -> crate::error::PluginFailure {
    use crate::error::PluginFailure as F;
    match e {
        types::PluginError::InvalidConfig(m) => F::InvalidConfig(m),
        types::PluginError::InvalidInput(m) => F::InvalidInput(m),
        types::PluginError::Upstream(m) => F::Upstream(m),
        types::PluginError::Forbidden(m) => F::Forbidden(m),
        types::PluginError::RateLimited(s) => F::RateLimited(s),
        types::PluginError::Denied(m) => F::Denied(m),
        types::PluginError::Internal(m) => F::Internal(m),
    }
}

/// A rough size of what a plugin returned, to enforce the output cap without
/// serialising it.
pub(crate) trait ApproxSize {
    fn approx_size(&self) -> u64;
}

impl ApproxSize for model::Properties {
    fn approx_size(&self) -> u64 {
        self.iter()
            .map(|(k, v)| {
                k.len() as u64
                    + 16
                    + match v {
                        model::Value::Text(s) => s.len() as u64,
                        model::Value::Texts(v) => v.iter().map(|s| s.len() as u64 + 16).sum(),
                        _ => 8,
                    }
            })
            .sum()
    }
}

impl ApproxSize for model::NodeRef {
    fn approx_size(&self) -> u64 {
        (self.label.len() + self.key.len()) as u64 + 16
    }
}

impl ApproxSize for model::Batch {
    fn approx_size(&self) -> u64 {
        let nodes: u64 = self
            .nodes
            .iter()
            .map(|n| n.reference().approx_size() + n.properties.approx_size())
            .sum();
        let edges: u64 = self
            .edges
            .iter()
            .map(|e| {
                e.kind.len() as u64
                    + e.from.approx_size()
                    + e.to.approx_size()
                    + e.properties.approx_size()
            })
            .sum();
        nodes + edges + 32 * self.complete.len() as u64
    }
}

impl ApproxSize for model::Finding {
    fn approx_size(&self) -> u64 {
        (self.rule.len() + self.key.len() + self.title.len()) as u64
            + self.subject.approx_size()
            + self.attributes.approx_size()
            + self
                .evidence
                .iter()
                .map(|e| e.statement.len() as u64 + e.subject.approx_size() + 64)
                .sum::<u64>()
            + self
                .remedy
                .as_ref()
                .map(|r| {
                    r.action.len() as u64 + r.target.approx_size() + r.parameters.approx_size()
                })
                .unwrap_or(0)
    }
}
