//! Which nodes a detect call looks at.
//!
//! A full scan looks at every node it is given. An incremental call looks
//! at the nodes that changed and at both ends of the edges that changed,
//! and widens that to every node whose findings could name one of them, so
//! that the host may keep the findings it already holds about everything
//! else:
//!
//! - an account brings in the people it is linked to and a person the
//!   accounts linked to it, across the whole identity, so that a change on
//!   either side of an identity (an IdP account deactivated, a GitHub
//!   membership added) re-evaluates the person, and every finding about an
//!   account is raised together (the host takes a subject some finding is
//!   raised about to have been evaluated whole);
//! - a repository brings in the accounts with a permission on it, whose
//!   findings name it: a change of its owner or of another account's
//!   permission on it can turn access from inside an organisation into
//!   access from outside;
//! - an organisation that changed itself brings in its members and the
//!   accounts with a permission on its repositories, whose findings name
//!   it.
//!
//! An organisation at the end of a membership that changed needs none of
//! the widening: the account at the other end is re-evaluated, and that is
//! where the membership's findings are.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use org_mesh_plugin::detector::{ChangeKind, DetectRequest};
use org_mesh_plugin::graph::Direction;
use org_mesh_plugin::types::{NodeRef, PluginError, StoredNode};

use crate::graph::Graph;

fn changed(kind: ChangeKind) -> bool {
    !matches!(kind, ChangeKind::Unchanged)
}

/// A node a call starts from, and whether it changed itself rather than
/// being the end of an edge that changed.
#[derive(Debug, Clone)]
pub struct Subject {
    pub node: NodeRef,
    pub changed_itself: bool,
}

/// The nodes an incremental call starts from: those that changed and both
/// ends of the edges that changed, in request order, without repeats.
fn subjects(req: &DetectRequest) -> Vec<Subject> {
    let mut out: Vec<Subject> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut push = |node: NodeRef, changed_itself: bool| match index
        .entry((node.label.clone(), node.key.clone()))
    {
        Entry::Occupied(at) => out[*at.get()].changed_itself |= changed_itself,
        Entry::Vacant(slot) => {
            slot.insert(out.len());
            out.push(Subject {
                node,
                changed_itself,
            });
        }
    };
    for change in req.nodes.iter().filter(|c| changed(c.kind)) {
        let node = NodeRef {
            label: change.node.label.clone(),
            key: change.node.key.clone(),
        };
        push(node, true);
    }
    for change in req.edges.iter().filter(|c| changed(c.kind)) {
        push(change.edge.from.clone(), false);
        push(change.edge.to.clone(), false);
    }
    out
}

/// The nodes the rules run on. A full call carries each node as the twin
/// holds it, and those are taken as they are: reading them again would cost
/// a host call per node for nothing. In an incremental call each subject is
/// read as the twin holds it (or taken as the request carries it, if the
/// twin does not have it), widened as the module describes.
pub fn anchors<G: Graph>(graph: &G, req: &DetectRequest) -> Result<Vec<StoredNode>, PluginError> {
    let mut anchors = Anchors {
        graph,
        widening: !req.full,
        out: Vec::new(),
        seen: BTreeSet::new(),
    };
    if req.full {
        for change in &req.nodes {
            anchors.push(StoredNode {
                node: change.node.clone(),
                provenance: change.provenance.clone(),
            })?;
        }
    }
    let subjects = if req.full { Vec::new() } else { subjects(req) };
    for subject in subjects {
        let Some(node) = graph
            .node(&subject.node)?
            .or_else(|| from_request(req, &subject.node))
        else {
            continue;
        };
        let label = node.node.label.clone();
        anchors.push(node)?;
        match label.as_str() {
            "Repository" => anchors.permitted(&subject.node)?,
            "Organisation" if subject.changed_itself => {
                for member in graph.neighbours(&subject.node, "MEMBER_OF", Direction::Incoming)? {
                    anchors.push(member.node)?;
                }
                for repo in graph.neighbours(&subject.node, "OWNS", Direction::Outgoing)? {
                    anchors.permitted(&crate::graph::reference(&repo.node))?;
                }
            }
            _ => {}
        }
    }
    // Rules run in one order whichever nodes a call starts from, so that
    // where two anchors raise the same finding the same one wins.
    let mut out = anchors.out;
    out.sort_by(|a, b| (&a.node.label, &a.node.key).cmp(&(&b.node.label, &b.node.key)));
    Ok(out)
}

struct Anchors<'g, G> {
    graph: &'g G,
    /// Whether identities are followed: only in an incremental call, since
    /// a full scan is given every node.
    widening: bool,
    out: Vec<StoredNode>,
    seen: BTreeSet<(String, String)>,
}

impl<G: Graph> Anchors<'_, G> {
    /// Adds a node once. In an incremental call an account brings in the
    /// people it is linked to and a person the accounts linked to it, and
    /// so on across the whole identity: every finding about an account is
    /// then raised together, whichever side of the identity changed.
    fn push(&mut self, node: StoredNode) -> Result<(), PluginError> {
        let mut pending = vec![node];
        while let Some(node) = pending.pop() {
            if !self
                .seen
                .insert((node.node.label.clone(), node.node.key.clone()))
            {
                continue;
            }
            let at = crate::graph::reference(&node);
            let direction = match node.node.label.as_str() {
                "Account" => Some(Direction::Outgoing),
                "Person" => Some(Direction::Incoming),
                _ => None,
            };
            self.out.push(node);
            if let Some(direction) = direction.filter(|_| self.widening) {
                for link in self.graph.neighbours(&at, "IDENTITY_OF", direction)? {
                    pending.push(link.node);
                }
            }
        }
        Ok(())
    }

    /// Adds the accounts with a permission on the repository.
    fn permitted(&mut self, repo: &NodeRef) -> Result<(), PluginError> {
        for holder in self
            .graph
            .neighbours(repo, "HAS_PERMISSION", Direction::Incoming)?
        {
            self.push(holder.node)?;
        }
        Ok(())
    }
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
