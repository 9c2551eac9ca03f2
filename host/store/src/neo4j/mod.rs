//! [`Neo4jStore`]: the twin in a Neo4j 5 database, spoken to over Bolt with
//! `neo4rs`.
//!
//! Layout:
//! - a node is a Neo4j node labelled `Entity` and its own label, with `label`
//!   and `key` (the natural key, unique together) and `record`, the
//!   `StoredNode` as JSON;
//! - an edge is a relationship whose type is its kind, from its `from` node
//!   to its `to` node, with `kind` and `record`, the `StoredEdge` as JSON;
//! - the change log is `ChangeLog` nodes with a unique `seq`, the `entity`
//!   they are about and `entry`, the `ChangeLogEntry` as JSON; the next seq
//!   lives on the single `ChangeLogCounter` node.
//!
//! Values are JSON because the model's own encoding is the only one that
//! keeps every `Value` variant apart (a timestamp is not a string, an empty
//! list of texts is not an absent property) and round-trips integers, offsets
//! and nanoseconds exactly. The cost: Cypher run by hand cannot filter on a
//! property's value, only on labels, keys, kinds and structure.
//!
//! Run the shared suite against it with `conformance/neo4j/run start DIR`
//! and `ORG_MESH_TEST_NEO4J_URL=$(cat DIR/bolt-url) cargo test -p
//! org-mesh-store`.

mod read;
mod schema;
mod write;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use neo4rs::{ConfigBuilder, Graph, Query, Row, Txn};
use org_mesh_model::{
    Batch, ChangeLogEntry, ChangeSet, Direction, EntityId, NodeRef, StoredEdge, StoredNode,
    Timestamp,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::prepare::{Prepared, check_time};
use crate::{Applied, GraphStore, StoreError};

/// How to reach the database. Every network wait is bounded by these
/// settings, enforced inside the driver, so a call is never abandoned halfway
/// through a Bolt exchange.
#[derive(Debug, Clone)]
pub struct Neo4jOptions {
    /// `bolt://host:port` or `neo4j://host:port`.
    pub uri: String,
    pub user: String,
    pub password: String,
    /// The database to use; `None` is the server's default.
    pub database: Option<String>,
    /// Rows pulled per round trip when reading.
    pub fetch_size: usize,
    pub max_connections: usize,
    /// The longest wait for a connection, for the server to answer one
    /// message, or for a free connection from the pool.
    pub query_timeout: Duration,
}

impl Neo4jOptions {
    /// Options for a local server without authentication, as the test
    /// launcher starts it.
    pub fn local(uri: impl Into<String>) -> Self {
        Neo4jOptions {
            uri: uri.into(),
            user: "neo4j".to_owned(),
            password: String::new(),
            database: None,
            fetch_size: 500,
            max_connections: 8,
            query_timeout: Duration::from_secs(30),
        }
    }
}

/// The production backend: a Neo4j 5 database.
///
/// Cheap to clone; clones share the connection pool. Concurrent `apply`
/// calls queue on a write lock of the change log counter, which keeps seqs
/// gapless and makes each batch see the one before it.
#[derive(Clone)]
pub struct Neo4jStore {
    graph: Arc<Graph>,
    location: Arc<str>,
}

impl std::fmt::Debug for Neo4jStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The driver's pool has nothing worth printing; where it points does.
        f.debug_struct("Neo4jStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Neo4jStore {
    /// Connects and creates the constraints and indexes the store relies on,
    /// when missing.
    pub async fn connect(options: Neo4jOptions) -> Result<Self, StoreError> {
        let location: Arc<str> = options.uri.clone().into();
        let mut config = ConfigBuilder::default()
            .uri(options.uri.as_str())
            .user(options.user.as_str())
            .password(options.password.as_str())
            .fetch_size(options.fetch_size)
            .max_connections(options.max_connections)
            .connection_timeout(options.query_timeout)
            .max_lifetime(Some(options.query_timeout));
        if let Some(db) = &options.database {
            config = config.db(db.as_str());
        }
        let config = config
            .build()
            .map_err(|e| failed(&location, "reading the options", e))?;
        let graph = Graph::connect(config).map_err(|e| failed(&location, "connecting", e))?;
        let store = Neo4jStore {
            graph: Arc::new(graph),
            location,
        };
        schema::ensure(&store).await?;
        tracing::info!(location = %store.location, "Connected to Neo4j");
        Ok(store)
    }

    /// Deletes every node and relationship, for tests that need an empty
    /// twin. The schema stays.
    pub async fn wipe(&self) -> Result<(), StoreError> {
        let mut txn = self.begin().await?;
        self.run(
            &mut txn,
            "wiping",
            neo4rs::query("MATCH (n) DETACH DELETE n"),
        )
        .await?;
        self.commit(txn).await?;
        schema::ensure_counter(self).await
    }

    fn fail(&self, operation: &'static str, error: neo4rs::Error) -> StoreError {
        failed(&self.location, operation, error)
    }

    async fn begin(&self) -> Result<Txn, StoreError> {
        self.graph
            .start_txn()
            .await
            .map_err(|e| self.fail("starting a transaction", e))
    }

    async fn commit(&self, txn: Txn) -> Result<(), StoreError> {
        txn.commit()
            .await
            .map(drop)
            .map_err(|e| self.fail("committing", e))
    }

    async fn run(
        &self,
        txn: &mut Txn,
        operation: &'static str,
        query: Query,
    ) -> Result<(), StoreError> {
        txn.run(query)
            .await
            .map(drop)
            .map_err(|e| self.fail(operation, e))
    }

    /// Runs `query` in `txn` and collects every row; the stream is read to
    /// its end so the connection goes back to the pool in step.
    async fn rows(
        &self,
        txn: &mut Txn,
        operation: &'static str,
        query: Query,
    ) -> Result<Vec<Row>, StoreError> {
        let mut stream = txn
            .execute(query)
            .await
            .map_err(|e| self.fail(operation, e))?;
        let mut rows = Vec::new();
        while let Some(row) = stream
            .next(txn.handle())
            .await
            .map_err(|e| self.fail(operation, e))?
        {
            rows.push(row);
        }
        Ok(rows)
    }

    /// Runs one read query in its own transaction.
    async fn read(&self, operation: &'static str, query: Query) -> Result<Vec<Row>, StoreError> {
        let mut txn = self.begin().await?;
        let rows = self.rows(&mut txn, operation, query).await?;
        self.commit(txn).await?;
        Ok(rows)
    }

    /// The text column `column` of `row`, decoded from JSON.
    fn decode<R: DeserializeOwned>(&self, row: &Row, column: &str) -> Result<R, StoreError> {
        let text: String = row
            .get(column)
            .map_err(|e| self.fail("reading a column", neo4rs::Error::DeserializationError(e)))?;
        serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
            location: self.location.to_string(),
            key: column.to_owned(),
            source,
        })
    }
}

/// A driver error as a store error.
///
/// `StoreError` has no variant for a network database yet, so the driver's
/// error travels as the I/O cause of `Database`: the message names the
/// server and the step, and the driver's own message stays in the chain.
fn failed(location: &str, operation: &'static str, error: neo4rs::Error) -> StoreError {
    StoreError::Neo4j {
        location: location.to_owned(),
        operation,
        source: error,
    }
}

fn encode(record: impl FnOnce() -> String, value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode {
        record: record(),
        source,
    })
}

/// The `entity` property of a change log node: the entity's JSON, which is
/// the same for the same entity every time.
fn entity_key(entity: &EntityId) -> Result<String, StoreError> {
    encode(|| "a change log entity".to_owned(), entity)
}

#[async_trait]
impl GraphStore for Neo4jStore {
    #[tracing::instrument(
        name = "org_mesh.store.apply",
        skip_all,
        fields(source = %source, nodes = batch.nodes.len(), edges = batch.edges.len())
    )]
    async fn apply(
        &self,
        source: &str,
        at: Timestamp,
        batch: Batch,
    ) -> Result<Applied, StoreError> {
        check_time(at)?;
        let applied = write::apply(self, source, at, Prepared::new(batch)).await?;
        tracing::debug!(
            changes = applied.changes.nodes.len() + applied.changes.edges.len(),
            skipped = applied.skipped.len(),
            "Applied a batch"
        );
        Ok(applied)
    }

    async fn node(&self, node: &NodeRef) -> Result<Option<StoredNode>, StoreError> {
        read::node(self, node).await
    }

    async fn neighbours(
        &self,
        node: &NodeRef,
        kind: &str,
        dir: Direction,
    ) -> Result<Vec<(StoredEdge, StoredNode)>, StoreError> {
        read::neighbours(self, node, kind, dir).await
    }

    async fn nodes(&self, label: &str) -> Result<Vec<StoredNode>, StoreError> {
        read::nodes(self, label).await
    }

    async fn edges(&self, kind: &str) -> Result<Vec<StoredEdge>, StoreError> {
        read::edges(self, kind).await
    }

    async fn snapshot(&self) -> Result<ChangeSet, StoreError> {
        read::snapshot(self).await
    }

    async fn history(&self, entity: &EntityId) -> Result<Vec<ChangeLogEntry>, StoreError> {
        read::history(self, entity).await
    }

    async fn counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        read::counts(self).await
    }
}
