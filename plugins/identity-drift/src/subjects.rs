//! Which nodes a detect call looks at.
//!
//! The subjects are every node of a full scan, or else the nodes that
//! changed and both ends of the edges that changed. An account subject
//! also brings in the people it is linked to, so that a change on either
//! side of an identity (an IdP account deactivated, a GitHub membership
//! added) re-evaluates the person.

use std::collections::BTreeSet;

use org_mesh_plugin::detector::{ChangeKind, DetectRequest};
use org_mesh_plugin::graph::Direction;
use org_mesh_plugin::types::{NodeRef, PluginError, StoredNode};

use crate::graph::Graph;

fn changed(kind: ChangeKind) -> bool {
    !matches!(kind, ChangeKind::Unchanged)
}

/// The subject references, in request order, without repeats.
pub fn subjects(req: &DetectRequest) -> Vec<NodeRef> {
    let mut refs = Vec::new();
    for change in &req.nodes {
        if req.full || changed(change.kind) {
            refs.push(NodeRef {
                label: change.node.label.clone(),
                key: change.node.key.clone(),
            });
        }
    }
    if !req.full {
        for change in req.edges.iter().filter(|c| changed(c.kind)) {
            refs.push(change.edge.from.clone());
            refs.push(change.edge.to.clone());
        }
    }
    let mut seen = BTreeSet::new();
    refs.retain(|r| seen.insert((r.label.clone(), r.key.clone())));
    refs
}

/// The nodes the rules run on: each subject as the twin holds it (or as
/// the request carries it, if the twin does not have it), and the people
/// its account is linked to.
pub fn anchors<G: Graph>(graph: &G, req: &DetectRequest) -> Result<Vec<StoredNode>, PluginError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |node: StoredNode, out: &mut Vec<StoredNode>| {
        if seen.insert((node.node.label.clone(), node.node.key.clone())) {
            out.push(node);
        }
    };
    for subject in subjects(req) {
        let Some(node) = graph
            .node(&subject)?
            .or_else(|| from_request(req, &subject))
        else {
            continue;
        };
        let is_account = node.node.label == "Account";
        push(node, &mut out);
        if is_account {
            for link in graph.neighbours(&subject, "IDENTITY_OF", Direction::Outgoing)? {
                if link.node.node.label == "Person" {
                    push(link.node, &mut out);
                }
            }
        }
    }
    Ok(out)
}

fn from_request(req: &DetectRequest, subject: &NodeRef) -> Option<StoredNode> {
    req.nodes
        .iter()
        .find(|c| c.node.label == subject.label && c.node.key == subject.key)
        .map(|c| StoredNode {
            node: c.node.clone(),
            provenance: c.provenance.clone(),
        })
}
