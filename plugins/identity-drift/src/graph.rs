//! Read access to the twin, behind a trait so that the rules run natively
//! in tests over an in-memory graph and in the plugin over the host's
//! `graph` import.

use std::cell::RefCell;
use std::collections::BTreeMap;

use org_mesh_plugin::graph::{self, Direction, Neighbour};
use org_mesh_plugin::types::{NodeRef, PluginError, Properties, Provenance, StoredNode, Value};

pub trait Graph {
    fn node(&self, node: &NodeRef) -> Result<Option<StoredNode>, PluginError>;

    fn neighbours(
        &self,
        node: &NodeRef,
        kind: &str,
        dir: Direction,
    ) -> Result<Vec<Neighbour>, PluginError>;
}

/// The twin as the host serves it to this plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostGraph;

impl Graph for HostGraph {
    fn node(&self, node: &NodeRef) -> Result<Option<StoredNode>, PluginError> {
        graph::get_node(node).map_err(graph_error)
    }

    fn neighbours(
        &self,
        node: &NodeRef,
        kind: &str,
        dir: Direction,
    ) -> Result<Vec<Neighbour>, PluginError> {
        graph::neighbours(node, kind, dir).map_err(graph_error)
    }
}

/// A graph that asks the one it wraps for each node's edges of a kind once:
/// the rules for one account read its memberships three times, and a
/// person's rules read the edges of accounts that their own rules read
/// again. Each read is a call into the host, which costs far more than the
/// copy. Lives for one detect call, so it never serves a twin older than
/// the call.
pub struct Memo<'g, G> {
    graph: &'g G,
    neighbours: RefCell<BTreeMap<Query, Vec<Neighbour>>>,
}

/// A node's label and key, an edge kind, and whether the edges go out of
/// the node.
type Query = (String, String, String, bool);

impl<'g, G: Graph> Memo<'g, G> {
    pub fn new(graph: &'g G) -> Self {
        Memo {
            graph,
            neighbours: RefCell::new(BTreeMap::new()),
        }
    }
}

impl<G: Graph> Graph for Memo<'_, G> {
    fn node(&self, node: &NodeRef) -> Result<Option<StoredNode>, PluginError> {
        self.graph.node(node)
    }

    fn neighbours(
        &self,
        node: &NodeRef,
        kind: &str,
        dir: Direction,
    ) -> Result<Vec<Neighbour>, PluginError> {
        let at = (
            node.label.clone(),
            node.key.clone(),
            kind.to_owned(),
            matches!(dir, Direction::Outgoing),
        );
        if let Some(found) = self.neighbours.borrow().get(&at) {
            return Ok(found.clone());
        }
        let found = self.graph.neighbours(node, kind, dir)?;
        self.neighbours.borrow_mut().insert(at, found.clone());
        Ok(found)
    }
}

fn graph_error(error: graph::Error) -> PluginError {
    match error {
        graph::Error::Denied(s) => PluginError::Denied(format!("graph: {s}")),
        graph::Error::TooLarge(n) => {
            PluginError::Internal(format!("graph: a query returned more than {n} items"))
        }
        graph::Error::Backend(s) => PluginError::Internal(format!("graph: {s}")),
    }
}

pub const IDP_PROVIDERS: [&str; 3] = ["okta", "azure-ad", "scim"];
pub const CODE_HOST_PROVIDERS: [&str; 2] = ["github", "gitlab"];

pub fn observed(provenance: &Provenance) -> bool {
    provenance.not_observed_since.is_none()
}

pub fn text<'a>(props: &'a Properties, name: &str) -> Option<&'a str> {
    org_mesh_plugin::props::get_text(props, name)
}

pub fn boolean(props: &Properties, name: &str) -> Option<bool> {
    org_mesh_plugin::props::get_bool(props, name)
}

pub fn integer(props: &Properties, name: &str) -> Option<i64> {
    match org_mesh_plugin::props::get(props, name) {
        Some(Value::Integer(i)) => Some(*i),
        _ => None,
    }
}

/// A number property as a float; identity links store confidence as one,
/// hand-written links may use an integer.
pub fn number(props: &Properties, name: &str) -> Option<f64> {
    match org_mesh_plugin::props::get(props, name) {
        Some(Value::Float(f)) => Some(*f),
        Some(Value::Integer(i)) => Some(*i as f64),
        _ => None,
    }
}

/// The account's provider: its `provider` property, else its key's prefix.
pub fn provider(node: &StoredNode) -> &str {
    text(&node.node.properties, "provider")
        .or_else(|| node.node.key.split_once(':').map(|(p, _)| p))
        .unwrap_or_default()
}

pub fn is_account_of(node: &StoredNode, providers: &[&str]) -> bool {
    node.node.label == "Account" && providers.contains(&provider(node))
}

/// The login of a GitHub-style node: its `login` property, else its key
/// without the provider prefix.
pub fn login(node: &StoredNode) -> &str {
    text(&node.node.properties, "login")
        .or_else(|| node.node.key.split_once(':').map(|(_, rest)| rest))
        .unwrap_or(&node.node.key)
}

pub fn reference(node: &StoredNode) -> NodeRef {
    NodeRef {
        label: node.node.label.clone(),
        key: node.node.key.clone(),
    }
}

/// A membership that grants or is about to grant access.
pub fn is_live_membership(props: &Properties) -> bool {
    // The GitHub connector leaves state out when it could not read the
    // membership; members are only listed once they have accepted.
    matches!(
        text(props, "state"),
        None | Some("active") | Some("pending")
    )
}

pub fn is_active_membership(props: &Properties) -> bool {
    matches!(text(props, "state"), None | Some("active"))
}
