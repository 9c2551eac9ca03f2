//! The twin's graph store: the [`GraphStore`] trait every backend implements,
//! [`EmbeddedStore`] (a single redb file, the default backend) and
//! [`identity::resolve`], which links accounts to people.
//!
//! Every backend must pass the suite in `tests/store_suite.rs`; run it with
//! `cargo test -p org-mesh-store`.

mod embedded;
pub mod identity;
mod neo4j;
mod prepare;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use org_mesh_model::{
    Batch, ChangeLogEntry, ChangeSet, Direction, EntityId, NodeRef, StoredEdge, StoredNode,
    Timestamp,
};

pub use embedded::EmbeddedStore;
pub use identity::{ExplicitMapping, Resolver, resolve};
pub use neo4j::{Neo4jOptions, Neo4jStore};

/// Every node with a label, read a page at a time in the backend's key
/// order through [`GraphStore::nodes_page`].
#[derive(Debug)]
pub struct NodePages<'l> {
    label: &'l str,
    size: usize,
    after: Option<String>,
}

impl<'l> NodePages<'l> {
    pub fn new(label: &'l str, size: usize) -> Self {
        NodePages {
            label,
            size,
            after: None,
        }
    }

    /// The next page, or `None` once every node has been read.
    pub async fn next(
        &mut self,
        store: &dyn GraphStore,
    ) -> Result<Option<Vec<StoredNode>>, StoreError> {
        let page = store
            .nodes_page(self.label, self.after.as_deref(), self.size)
            .await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        self.after = Some(last.node.key.clone());
        Ok(Some(page))
    }
}

/// The twin: nodes and edges with their provenance, and a change log.
///
/// # What `apply` does
///
/// The rules below are the same for every backend.
///
/// - Each node and edge goes through the model's `normalised()`, so an
///   explicit null and an absent property read the same. A record that fails
///   it, holds a value that cannot be stored faithfully (a non-finite float,
///   a timestamp outside RFC 3339), or is an edge whose end is neither stored
///   nor a valid node of the same batch, is returned in
///   [`Applied::skipped`] with a reason. Everything else is written in one
///   atomic step: a crash leaves the store as before or as after.
/// - Records are upserted by natural key (a node by label and key, an edge by
///   kind, from and to); when a batch holds the same record twice the last
///   one counts. The stored properties become exactly the observed ones: an
///   observation says what is true now, so properties are replaced, never
///   merged. The provenance takes `source` and `last_seen = at`, keeps
///   `first_seen`, and clears `not_observed_since`.
/// - The change kind is `Added` for a new record, `Updated` when the
///   properties differ or the record comes back after being not observed,
///   and `Unchanged` otherwise.
/// - An observation older than the record's last one (`at` before its
///   `last_seen` or `not_observed_since`) is stale and changes nothing, and
///   a coverage older than a record's `last_seen` does not mark it: changes
///   applied out of order never undo newer ones.
/// - In a `partial` batch the observed properties are merged into the
///   stored ones instead of replacing them, and a property set to `Null`
///   is removed: how a webhook reports the one field that changed.
/// - For each [`Coverage`](org_mesh_model::Coverage) in `batch.complete`,
///   every record of that set whose provenance source is `source`, that is
///   currently observed and that the batch does not hold, gets
///   `not_observed_since = Some(at)` and the kind `NotObserved`. Records are
///   never deleted, and without coverage nothing is marked: a partial sync is
///   not a deletion. A record skipped only for its properties still counts as
///   held, so a bad value never reads as a removal.
/// - Every `Added`, `Updated` and `NotObserved` change gets a change log
///   entry whose `seq` is one more than the previous entry's, across
///   restarts. `before` and `after` hold the properties; `after` is `None`
///   for `NotObserved`, as the fact no longer holds as far as its source
///   knows. `Unchanged` writes no entry, so applying the same batch twice
///   leaves the log as it was.
///
/// # What `forget` does
///
/// `forget` is the one way records leave the twin: for retention, when
/// what they hold may no longer be kept. It removes each named node, every
/// edge that starts or ends at one, and every change log entry of those
/// nodes and edges, in one atomic step that runs one after the other with
/// `apply`, so no batch sees half of it. Nodes the store does not hold are
/// ignored, so forgetting twice is harmless. The seqs of removed entries
/// are not reused: the log has gaps where they were. A later batch that
/// reports a forgotten node again adds it as new, with a fresh
/// `first_seen` and history.
///
/// Removal is logical. Both backends may keep the bytes of removed records
/// in free space of their files (redb's free pages, Neo4j's store files and
/// transaction logs) until that space is reused or the files are compacted,
/// so someone who can read the files may still find them.
#[async_trait]
pub trait GraphStore: Send + Sync + std::fmt::Debug {
    /// Applies what `source` observed at `at`; see the trait docs.
    async fn apply(&self, source: &str, at: Timestamp, batch: Batch)
    -> Result<Applied, StoreError>;

    /// Removes `nodes`, their edges and all their history; see the trait
    /// docs.
    async fn forget(&self, nodes: &[NodeRef]) -> Result<Forgotten, StoreError>;

    async fn node(&self, node: &NodeRef) -> Result<Option<StoredNode>, StoreError>;

    /// The edges of `kind` leaving (`Outgoing`) or reaching (`Incoming`)
    /// `node`, each with the node at its other end. Edges that are not
    /// observed are included: callers read their provenance.
    async fn neighbours(
        &self,
        node: &NodeRef,
        kind: &str,
        dir: Direction,
    ) -> Result<Vec<(StoredEdge, StoredNode)>, StoreError>;

    /// Every node with `label`, ordered by key.
    async fn nodes(&self, label: &str) -> Result<Vec<StoredNode>, StoreError>;

    /// At most `limit` nodes with `label` whose key comes after `after`
    /// (from the first when `None`), in the backend's key order: pass the
    /// last key of one page as `after` to read the next. Reads a label of
    /// any size in bounded memory.
    async fn nodes_page(
        &self,
        label: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredNode>, StoreError>;

    /// Every edge of `kind`.
    async fn edges(&self, kind: &str) -> Result<Vec<StoredEdge>, StoreError>;

    /// The whole twin, each entry `Unchanged`, or `NotObserved` where it is
    /// not observed.
    async fn snapshot(&self) -> Result<ChangeSet, StoreError>;

    /// The change log entries of one node or edge, oldest first.
    async fn history(&self, entity: &EntityId) -> Result<Vec<ChangeLogEntry>, StoreError>;

    /// The number of nodes per label, observed or not.
    async fn counts(&self) -> Result<BTreeMap<String, u64>, StoreError>;

    /// Whether the store can answer right now, as cheaply as it can tell:
    /// for readiness checks. It waits no longer than any other call of the
    /// backend does, and it reads nothing of the twin.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// What [`GraphStore::apply`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// One entry per record written or marked, `Unchanged` ones included.
    pub changes: ChangeSet,
    pub skipped: Vec<Skipped>,
}

/// What [`GraphStore::forget`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    pub nodes: u64,
    /// Edges at the forgotten nodes, in either direction, each counted once.
    pub edges: u64,
    /// Change log entries of the forgotten nodes and edges.
    pub history: u64,
}

impl Forgotten {
    /// Logs what a backend removed, as counts: what the records held is
    /// exactly what must not reach a log.
    fn logged(self) -> Forgotten {
        tracing::debug!(
            nodes = self.nodes,
            edges = self.edges,
            history = self.history,
            "Forgot records"
        );
        self
    }
}

impl std::ops::AddAssign for Forgotten {
    fn add_assign(&mut self, other: Forgotten) {
        self.nodes += other.nodes;
        self.edges += other.edges;
        self.history += other.history;
    }
}

/// A record that was not applied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The record as a person reads it, such as
    /// `edge MEMBER_OF Account(github:x) -> Organisation(github:y)`.
    pub record: String,
    pub reason: String,
}

/// Why the store could not do what was asked. A bad record is not an error:
/// it is reported in [`Applied::skipped`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot create the folder of the store at {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the store at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
    #[error("the store at {path} has schema version {found}, this build reads version {expected}")]
    SchemaVersion {
        path: String,
        found: u64,
        expected: u64,
    },
    #[error("{path} is a redb database but not an org-mesh store")]
    NotAStore { path: String },
    #[error("the store at {location} failed while {operation}")]
    Database {
        location: String,
        operation: &'static str,
        #[source]
        source: redb::Error,
    },
    #[error("the Neo4j store at {location} failed while {operation}")]
    Neo4j {
        location: String,
        operation: &'static str,
        #[source]
        source: neo4rs::Error,
    },
    /// A step of a network backend outlived the backstop of its timeouts;
    /// the backend dropped its connections.
    #[error("the store at {location} gave up {operation} after {limit:?} without an answer")]
    TimedOut {
        location: String,
        operation: &'static str,
        limit: Duration,
    },
    #[error("the store at {location} holds a record it cannot read under {key:?}")]
    Corrupt {
        location: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the store at {location} has an edge {edge} whose end {end} is missing")]
    DanglingEdge {
        location: String,
        edge: String,
        end: NodeRef,
    },
    #[error("cannot encode {record} for the store")]
    Encode {
        record: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the observation time cannot be written as rfc 3339")]
    BadTimestamp(#[source] time::error::Format),
    #[error("a worker of the store at {location} stopped before finishing")]
    Worker {
        location: String,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl StoreError {
    /// Whether the same call may succeed later unchanged: the backend was
    /// unreachable, slow or busy, rather than the data or the store wrong.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Database { .. } | StoreError::Neo4j { .. } | StoreError::TimedOut { .. }
        )
    }
}
