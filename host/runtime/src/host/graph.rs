use org_mesh_model::{Direction, NodeRef, StoredEdge, StoredNode};

use crate::bindings::graph::{self, Error, Host, Neighbour};
use crate::bindings::types;
use crate::convert;
use crate::host::CallState;
use crate::manifest::Capability;

/// Read access to the twin for detectors. The graph store implements it;
/// the runtime does not depend on any particular backend.
#[async_trait::async_trait]
pub trait GraphReader: Send + Sync + std::fmt::Debug {
    async fn node(&self, node: &NodeRef) -> Result<Option<StoredNode>, String>;
    async fn neighbours(
        &self,
        node: &NodeRef,
        kind: &str,
        dir: Direction,
    ) -> Result<Vec<(StoredEdge, StoredNode)>, String>;
}

impl Host for CallState {
    async fn get_node(
        &mut self,
        node: types::NodeRef,
    ) -> wasmtime::Result<Result<Option<types::StoredNode>, Error>> {
        self.require(Capability::Graph)?;
        let Some(reader) = self.services.graph.clone() else {
            return Ok(Err(Error::Denied(
                "no graph is attached to this run".into(),
            )));
        };
        let node = convert::node_ref_in(node);
        Ok(match self.timed(reader.node(&node)).await {
            Some(Ok(found)) => Ok(found.as_ref().map(convert::stored_node_out)),
            Some(Err(e)) => Err(Error::Backend(e)),
            None => Err(Error::Backend("graph query timed out".into())),
        })
    }

    async fn neighbours(
        &mut self,
        node: types::NodeRef,
        kind: String,
        dir: graph::Direction,
    ) -> wasmtime::Result<Result<Vec<Neighbour>, Error>> {
        self.require(Capability::Graph)?;
        let Some(reader) = self.services.graph.clone() else {
            return Ok(Err(Error::Denied(
                "no graph is attached to this run".into(),
            )));
        };
        let node = convert::node_ref_in(node);
        let dir = match dir {
            graph::Direction::Outgoing => Direction::Outgoing,
            graph::Direction::Incoming => Direction::Incoming,
        };
        let limit = self.limits.graph_items_per_query;
        Ok(
            match self.timed(reader.neighbours(&node, &kind, dir)).await {
                Some(Ok(found)) if found.len() > limit => Err(Error::TooLarge(limit as u64)),
                Some(Ok(found)) => Ok(found
                    .iter()
                    .map(|(edge, node)| Neighbour {
                        edge: convert::stored_edge_out(edge),
                        node: convert::stored_node_out(node),
                    })
                    .collect()),
                Some(Err(e)) => Err(Error::Backend(e)),
                None => Err(Error::Backend("graph query timed out".into())),
            },
        )
    }
}
