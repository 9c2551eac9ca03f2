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
//! An edge's kind is written into each statement's text as its relationship
//! type, never passed as a dynamic type (`$(...)`): the planner cannot see a
//! dynamic type, so reading the edges of one kind scanned every relationship
//! of the store, and merging edges planned while the store was empty
//! scanned every relationship once per row.
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

mod forget;
mod read;
mod schema;
mod write;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use neo4rs::{Config, ConfigBuilder, Graph, Query, Row, Txn};
use org_mesh_model::{
    Batch, ChangeLogEntry, ChangeSet, Direction, EntityId, NodeRef, StoredEdge, StoredNode,
    Timestamp,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::prepare::{Prepared, check_time};
use crate::{Applied, Forgotten, GraphStore, StoreError};

/// How to reach the database, and how long to wait for it.
///
/// The driver enforces `query_timeout` on each wait it bounds: for a free
/// connection from the pool, for a TCP connection, and for each message the
/// server sends. That bound is what ends a call whose connection dies in the
/// middle of a query. The driver bounds neither the Bolt handshake of a new
/// connection (a server that accepts but never answers hangs it forever) nor
/// a write the server has stopped reading, so the store adds a backstop of
/// twice `query_timeout` on each driver step and throws the whole pool away
/// when it fires; see [`Neo4jStore`].
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
    /// The longest wait for a free connection from the pool, for a TCP
    /// connection, or for the server to answer one message. It also caps
    /// how long the server may work on one statement before the first
    /// answer. At least one second.
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

/// A zero timeout would make the driver fail every read at once and turn
/// the pool's wait into "never wait", so shorter settings are raised to this.
const MIN_QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// The backstop on one driver step, in multiples of `query_timeout`. A
/// healthy step waits at most one `query_timeout` for a free connection
/// and then a moment for the server, so twice that is never reached unless
/// a wait the driver does not bound has hung.
const STEP_LIMIT_FACTOR: u32 = 2;

/// Connections of the pool that [`GraphStore::ping`] uses. Its own pool, so
/// a readiness probe never queues behind the workload for a connection.
const PROBE_CONNECTIONS: usize = 1;

/// The production backend: a Neo4j 5 database.
///
/// Cheap to clone; clones share the connection pools. Concurrent `apply`
/// calls queue on a write lock of the change log counter, which keeps seqs
/// gapless and makes each batch see the one before it.
///
/// # Faults
///
/// A call the driver ends with an error (its receive timeout, a reset
/// connection, a refused connect) hands its connection back to the pool,
/// whose recycle check drains it or, when an exchange was cut off halfway,
/// discards it; the next call then opens a fresh one.
///
/// A driver step that outlives its backstop is a different matter: its
/// future is dropped at an arbitrary point of a Bolt exchange, and its
/// connection could go back to the pool out of step with the server. The
/// store does not count on the driver noticing that. It replaces the whole
/// pool with a new, empty one, so no connection from before the fault is
/// taken again by a later call. Calls already running on the old pool finish
/// on it, and it closes when the last of them ends.
#[derive(Clone)]
pub struct Neo4jStore {
    work: Arc<Pool>,
    probe: Arc<Pool>,
    location: Arc<str>,
    step_limit: Duration,
}

impl std::fmt::Debug for Neo4jStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The driver's pool has nothing worth printing; where it points does.
        f.debug_struct("Neo4jStore")
            .field("location", &self.location)
            .field("step_limit", &self.step_limit)
            .finish_non_exhaustive()
    }
}

/// A driver connection pool that can be thrown away and rebuilt.
struct Pool {
    config: Config,
    current: Mutex<Arc<Graph>>,
}

impl Pool {
    fn new(config: Config) -> Result<Pool, neo4rs::Error> {
        let graph = Graph::connect(config.clone())?;
        Ok(Pool {
            config,
            current: Mutex::new(Arc::new(graph)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Arc<Graph>> {
        // The guarded value is a pointer swapped whole, never left half
        // updated, so a panic elsewhere cannot have broken it.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn graph(&self) -> Arc<Graph> {
        self.lock().clone()
    }

    /// Replaces `stale` with a fresh pool. Returns `false` when a concurrent
    /// call already replaced it, so one fault does not throw away the pool
    /// that replaced it.
    fn replace(&self, stale: &Arc<Graph>) -> Result<bool, neo4rs::Error> {
        let mut current = self.lock();
        if !Arc::ptr_eq(&current, stale) {
            return Ok(false);
        }
        *current = Arc::new(Graph::connect(self.config.clone())?);
        Ok(true)
    }
}

/// A driver transaction and the pool its connection came from.
pub(super) struct Transaction {
    // Before `txn`, so it drops first: when this holds the last reference
    // to a pool thrown away after a fault, the connection is closed rather
    // than put back into that pool, even for a moment.
    graph: Arc<Graph>,
    txn: Txn,
    pool: Arc<Pool>,
}

fn driver_config(
    options: &Neo4jOptions,
    query_timeout: Duration,
    max_connections: usize,
) -> Result<Config, neo4rs::Error> {
    let mut config = ConfigBuilder::default()
        .uri(options.uri.as_str())
        .user(options.user.as_str())
        .password(options.password.as_str())
        .fetch_size(options.fetch_size)
        .max_connections(max_connections)
        // Bounds the TCP connect and every wait for a message.
        .connection_timeout(query_timeout)
        // Despite its name, the driver makes this the pool's wait for a
        // free connection, not a connection's lifetime.
        .max_lifetime(Some(query_timeout));
    if let Some(db) = &options.database {
        config = config.db(db.as_str());
    }
    config.build()
}

impl Neo4jStore {
    /// Connects and creates the constraints and indexes the store relies on,
    /// when missing.
    pub async fn connect(options: Neo4jOptions) -> Result<Self, StoreError> {
        let location: Arc<str> = options.uri.clone().into();
        let query_timeout = options.query_timeout.max(MIN_QUERY_TIMEOUT);
        if query_timeout != options.query_timeout {
            tracing::warn!(
                location = %location,
                configured_ms = options.query_timeout.as_millis(),
                used_ms = query_timeout.as_millis(),
                "Neo4j query timeout too short; using the minimum"
            );
        }
        let work = driver_config(&options, query_timeout, options.max_connections)
            .and_then(Pool::new)
            .map_err(|e| failed(&location, "reading the options", e))?;
        let probe = driver_config(&options, query_timeout, PROBE_CONNECTIONS)
            .and_then(Pool::new)
            .map_err(|e| failed(&location, "reading the options", e))?;
        let store = Neo4jStore {
            work: Arc::new(work),
            probe: Arc::new(probe),
            location,
            step_limit: query_timeout.saturating_mul(STEP_LIMIT_FACTOR),
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

    /// Awaits one driver step under the backstop. See the type's docs for
    /// why passing it costs the whole pool.
    ///
    /// Not an `async fn`, so `call` is boxed before the returned future
    /// exists: the driver's futures are large, and every caller's future
    /// would otherwise carry one inline.
    fn step<T>(
        &self,
        pool: &Pool,
        graph: &Arc<Graph>,
        operation: &'static str,
        call: impl Future<Output = Result<T, neo4rs::Error>>,
    ) -> impl Future<Output = Result<T, StoreError>> {
        let call = Box::pin(call);
        async move {
            match tokio::time::timeout(self.step_limit, call).await {
                Ok(result) => result.map_err(|e| self.fail(operation, e)),
                Err(_) => {
                    self.discard(pool, graph, operation);
                    Err(StoreError::TimedOut {
                        location: self.location.to_string(),
                        operation,
                        limit: self.step_limit,
                    })
                }
            }
        }
    }

    fn discard(&self, pool: &Pool, stale: &Arc<Graph>, operation: &'static str) {
        let limit_ms = self.step_limit.as_millis();
        match pool.replace(stale) {
            Ok(true) => tracing::warn!(
                location = %self.location,
                operation,
                limit_ms,
                "Neo4j did not answer in time; replaced the connection pool"
            ),
            Ok(false) => tracing::debug!(
                location = %self.location,
                operation,
                limit_ms,
                "Neo4j did not answer in time; the pool was already replaced"
            ),
            // Cannot happen with options that built the first pool; the old
            // pool stays, guarded only by the driver's own recycle check.
            Err(error) => tracing::error!(
                location = %self.location,
                operation,
                error = %error,
                "Neo4j did not answer in time and a new pool could not be built"
            ),
        }
    }

    async fn begin(&self) -> Result<Transaction, StoreError> {
        self.begin_on(&self.work).await
    }

    async fn begin_on(&self, pool: &Arc<Pool>) -> Result<Transaction, StoreError> {
        let graph = pool.graph();
        let txn = self
            .step(pool, &graph, "starting a transaction", graph.start_txn())
            .await?;
        Ok(Transaction {
            graph,
            txn,
            pool: pool.clone(),
        })
    }

    async fn commit(&self, txn: Transaction) -> Result<(), StoreError> {
        let Transaction { graph, txn, pool } = txn;
        self.step(&pool, &graph, "committing", async move {
            txn.commit().await.map(drop)
        })
        .await
    }

    async fn run(
        &self,
        txn: &mut Transaction,
        operation: &'static str,
        query: Query,
    ) -> Result<(), StoreError> {
        let Transaction { graph, txn, pool } = txn;
        self.step(pool, graph, operation, async {
            txn.run(query).await.map(drop)
        })
        .await
    }

    /// Runs `query` in `txn` and collects every row; the stream is read to
    /// its end so the connection goes back to the pool in step.
    async fn rows(
        &self,
        txn: &mut Transaction,
        operation: &'static str,
        query: Query,
    ) -> Result<Vec<Row>, StoreError> {
        let Transaction { graph, txn, pool } = txn;
        let mut stream = self
            .step(pool, graph, operation, txn.execute(query))
            .await?;
        let mut rows = Vec::new();
        // Each pull is its own step: a long result is many healthy round
        // trips, and only one that hangs should trip the backstop.
        while let Some(row) = self
            .step(pool, graph, operation, stream.next(txn.handle()))
            .await?
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

/// A driver error as a store error: the message names the server and the
/// step, and the driver's own error stays in the chain.
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
/// A relationship type or label in a statement's text. Kinds and labels are
/// checked identifiers before they reach the store; the quoting keeps the
/// text one name whatever a name holds.
fn quoted_name(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

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

    #[tracing::instrument(name = "org_mesh.store.forget", skip_all, fields(nodes = nodes.len()))]
    async fn forget(&self, nodes: &[NodeRef]) -> Result<Forgotten, StoreError> {
        Ok(forget::forget(self, nodes).await?.logged())
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

    async fn nodes_page(
        &self,
        label: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredNode>, StoreError> {
        read::nodes_page(self, label, after, limit).await
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

    /// One trivial query on the probe pool, bounded like any other call.
    async fn ping(&self) -> Result<(), StoreError> {
        let mut txn = self.begin_on(&self.probe).await?;
        self.rows(&mut txn, "pinging", neo4rs::query("RETURN 1"))
            .await?;
        self.commit(txn).await
    }
}
