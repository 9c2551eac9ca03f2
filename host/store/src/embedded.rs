//! [`EmbeddedStore`]: the twin in one redb file, no server needed.
//!
//! Tables, all keyed by strings from [`keys`]:
//! - `nodes`: `label\0key` to a `StoredNode`;
//! - `edges`: `from_label\0from_key\0kind\0to_label\0to_key` to a
//!   `StoredEdge`, and `edges_in`, the same edge keyed `to\0kind\0from`,
//!   pointing at its `edges` key;
//! - `change_log`: seq to a `ChangeLogEntry`, and `history`, entity to seqs;
//! - `meta`: the schema version and the next seq.
//!
//! Values are serde_json: simple and readable with any redb tool. It is the
//! first thing to change if ingest speed ever matters.

mod forget;
mod keys;
mod read;
mod write;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use org_mesh_model::{
    Batch, ChangeLogEntry, ChangeSet, Direction, EntityId, NodeRef, StoredEdge, StoredNode,
    Timestamp,
};
use redb::backends::InMemoryBackend;
use redb::{
    Database, MultimapTableDefinition, MultimapTableHandle, ReadableTable, Table, TableDefinition,
    TableHandle, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::prepare::{Prepared, check_time};
use crate::{Applied, Forgotten, GraphStore, StoreError};

/// Bumped whenever a table or value layout changes; a file with another
/// version is refused rather than misread. Version 2 added `label_counts`;
/// a version 1 file is brought up to it when opened.
const SCHEMA_VERSION: u64 = 2;
const VERSION_KEY: &str = "schema_version";
const NEXT_SEQ_KEY: &str = "next_seq";

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
const EDGES: TableDefinition<&str, &[u8]> = TableDefinition::new("edges");
const EDGES_IN: TableDefinition<&str, &str> = TableDefinition::new("edges_in");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("change_log");
const HISTORY: MultimapTableDefinition<&str, u64> = MultimapTableDefinition::new("history");
/// How many nodes of each label `nodes` holds, kept in the transaction
/// that adds or removes one, so that counting the twin (after every
/// evaluation, for the metrics) reads a few entries instead of every node.
const LABEL_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("label_counts");

/// The durable default backend: a redb database in one file.
///
/// Cheap to clone; clones share the database. redb allows one writer at a
/// time, so concurrent `apply` calls queue up rather than interleave.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    location: Location,
}

impl EmbeddedStore {
    /// The memory [`EmbeddedStore::open`] lets redb keep of the file's pages.
    /// redb's own default is 1 GiB, which a twin of a hundred thousand people
    /// fills on open (the integrity check reads every page) and keeps: a pod's
    /// whole memory budget spent on a copy of what the kernel's page cache holds
    /// anyway. Pages outside it are read from the file again, which is what
    /// the kernel's cache makes cheap.
    pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

    /// Opens the store at `path`, creating the file and its parent folders
    /// when missing.
    ///
    /// Every open verifies the checksum of every page, which reads the whole
    /// file once: redb may otherwise panic on a file damaged outside it, and
    /// a corrupt twin must be an error naming the file.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_cache(path, Self::DEFAULT_CACHE_BYTES).await
    }

    /// [`EmbeddedStore::open`] with redb keeping up to `cache_bytes` of the
    /// file in memory.
    pub async fn open_with_cache(
        path: impl AsRef<Path>,
        cache_bytes: usize,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let location = Location(path.display().to_string().into());
        let worker_location = location.clone();
        let opened =
            tokio::task::spawn_blocking(move || open_file(&path, &worker_location, cache_bytes))
                .instrument(tracing::info_span!("org_mesh.store.open", %location))
                .await;
        let db = opened.map_err(|source| StoreError::Worker {
            location: location.to_string(),
            source,
        })??;
        tracing::info!(%location, "Opened the embedded store");
        Ok(EmbeddedStore {
            db: Arc::new(db),
            location,
        })
    }

    /// A store that lives in memory and is gone when dropped, for tests and
    /// benchmarks.
    pub fn in_memory() -> Result<Self, StoreError> {
        let location = Location("(in memory)".into());
        let db = Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .during(&location, "creating the database")?;
        initialise(&db, &location)?;
        Ok(EmbeddedStore {
            db: Arc::new(db),
            location,
        })
    }

    /// Runs blocking redb work off the async threads, inside the caller's
    /// span.
    async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database, &Location) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let location = self.location.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| job(&db, &location)))
            .await
            .map_err(|source| StoreError::Worker {
                location: self.location.to_string(),
                source,
            })?
    }
}

fn open_file(path: &Path, location: &Location, cache_bytes: usize) -> Result<Database, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let db = Database::builder()
        .set_check_integrity_on_open(true)
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|source| StoreError::Open {
            path: PathBuf::from(path),
            source: source.into(),
        })?;
    initialise(&db, location)?;
    Ok(db)
}

/// Creates the tables of a new file, or checks that an existing one is an
/// org-mesh store of this schema version.
fn initialise(db: &Database, location: &Location) -> Result<(), StoreError> {
    let txn = db.begin_write().during(location, "starting a write")?;
    let mut names: Vec<String> = txn
        .list_tables()
        .during(location, "listing tables")?
        .map(|t| t.name().to_owned())
        .collect();
    names.extend(
        txn.list_multimap_tables()
            .during(location, "listing tables")?
            .map(|t| t.name().to_owned()),
    );
    {
        let mut meta = txn.open_table(META).during(location, "opening meta")?;
        let found = meta
            .get(VERSION_KEY)
            .during(location, "reading the schema version")?
            .map(|v| v.value());
        match found {
            Some(SCHEMA_VERSION) => {}
            Some(1) => {
                count_labels(&txn, location)?;
                meta.insert(VERSION_KEY, SCHEMA_VERSION)
                    .during(location, "writing the schema version")?;
            }
            Some(found) => {
                return Err(StoreError::SchemaVersion {
                    path: location.to_string(),
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
            None if !names.is_empty() => {
                return Err(StoreError::NotAStore {
                    path: location.to_string(),
                });
            }
            None => {
                meta.insert(VERSION_KEY, SCHEMA_VERSION)
                    .during(location, "writing the schema version")?;
                meta.insert(NEXT_SEQ_KEY, 1)
                    .during(location, "writing the schema version")?;
            }
        }
    }
    // Opening a table creates it, so later reads never meet a missing one.
    txn.open_table(NODES).during(location, "creating tables")?;
    txn.open_table(EDGES).during(location, "creating tables")?;
    txn.open_table(EDGES_IN)
        .during(location, "creating tables")?;
    txn.open_table(LOG).during(location, "creating tables")?;
    txn.open_multimap_table(HISTORY)
        .during(location, "creating tables")?;
    txn.open_table(LABEL_COUNTS)
        .during(location, "creating tables")?;
    txn.commit().during(location, "committing the schema")
}

/// Fills `label_counts` from the nodes of a file written before it existed.
fn count_labels(txn: &WriteTransaction, location: &Location) -> Result<(), StoreError> {
    let nodes = txn.open_table(NODES).during(location, "opening nodes")?;
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for item in nodes.iter().during(location, "counting nodes")? {
        let (key, _) = item.during(location, "counting nodes")?;
        *counted.entry(keys::label_of(key.value())).or_insert(0) += 1;
    }
    let mut counts = txn
        .open_table(LABEL_COUNTS)
        .during(location, "opening label counts")?;
    for (label, n) in counted {
        counts
            .insert(label.as_str(), n)
            .during(location, "writing label counts")?;
    }
    Ok(())
}

/// Adds one node of `label` to `label_counts`, or takes one away; a label
/// with none left is removed.
fn count_node(
    counts: &mut Table<'_, &'static str, u64>,
    label: &str,
    added: bool,
    location: &Location,
) -> Result<(), StoreError> {
    let now = counts
        .get(label)
        .during(location, "reading a label count")?
        .map_or(0, |v| v.value());
    let next = if added {
        now.saturating_add(1)
    } else {
        now.saturating_sub(1)
    };
    if next == 0 {
        counts
            .remove(label)
            .during(location, "writing a label count")?;
    } else {
        counts
            .insert(label, next)
            .during(location, "writing a label count")?;
    }
    Ok(())
}

#[async_trait]
impl GraphStore for EmbeddedStore {
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
        let source = source.to_owned();
        let prepared = Prepared::new(batch);
        let applied = self
            .run(move |db, location| write::apply(db, location, &source, at, prepared))
            .await?;
        tracing::debug!(
            changes = applied.changes.nodes.len() + applied.changes.edges.len(),
            skipped = applied.skipped.len(),
            "Applied a batch"
        );
        Ok(applied)
    }

    #[tracing::instrument(name = "org_mesh.store.forget", skip_all, fields(nodes = nodes.len()))]
    async fn forget(&self, nodes: &[NodeRef]) -> Result<Forgotten, StoreError> {
        let nodes = nodes.to_vec();
        let forgotten = self
            .run(move |db, location| forget::forget(db, location, &nodes))
            .await?;
        Ok(forgotten.logged())
    }

    // A node and a node's edges of one kind are read on the calling thread,
    // unlike the scans: each is a few B-tree lookups, mostly in memory, and
    // detectors make thousands of them per call, for which handing each to
    // the blocking pool and waking the caller again cost more than the read
    // (most of a whole-twin scan's time went to those thread switches). The
    // caller is typically a plugin call, itself CPU work on the same thread.
    async fn node(&self, node: &NodeRef) -> Result<Option<StoredNode>, StoreError> {
        read::node(&self.db, &self.location, node)
    }

    async fn neighbours(
        &self,
        node: &NodeRef,
        kind: &str,
        dir: Direction,
    ) -> Result<Vec<(StoredEdge, StoredNode)>, StoreError> {
        read::neighbours(&self.db, &self.location, node, kind, dir)
    }

    async fn nodes(&self, label: &str) -> Result<Vec<StoredNode>, StoreError> {
        let label = label.to_owned();
        self.run(move |db, location| read::nodes(db, location, &label))
            .await
    }

    async fn nodes_page(
        &self,
        label: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredNode>, StoreError> {
        let label = label.to_owned();
        let after = after.map(str::to_owned);
        self.run(move |db, location| {
            read::nodes_page(db, location, &label, after.as_deref(), limit)
        })
        .await
    }

    async fn edges(&self, kind: &str) -> Result<Vec<StoredEdge>, StoreError> {
        let kind = kind.to_owned();
        self.run(move |db, location| read::edges(db, location, &kind))
            .await
    }

    async fn snapshot(&self) -> Result<ChangeSet, StoreError> {
        self.run(read::snapshot).await
    }

    async fn history(&self, entity: &EntityId) -> Result<Vec<ChangeLogEntry>, StoreError> {
        let entity = entity.clone();
        self.run(move |db, location| read::history(db, location, &entity))
            .await
    }

    async fn counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        self.run(read::counts).await
    }

    /// Always ready: the database is a file this process holds open, and a
    /// failing disk shows in the calls that touch it.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Where the database lives, for error messages.
#[derive(Debug, Clone)]
struct Location(Arc<str>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names the file and the step in a redb error.
trait During<T> {
    fn during(self, location: &Location, operation: &'static str) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> During<T> for Result<T, E> {
    fn during(self, location: &Location, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database {
            location: location.to_string(),
            operation,
            source: source.into(),
        })
    }
}

fn encode(record: impl FnOnce() -> String, value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|source| StoreError::Encode {
        record: record(),
        source,
    })
}

fn decode<R: DeserializeOwned>(
    location: &Location,
    key: &str,
    bytes: &[u8],
) -> Result<R, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        location: location.to_string(),
        key: key.to_owned(),
        source,
    })
}

/// One JSON record of a string-keyed table.
fn get_json<R, T>(table: &T, location: &Location, key: &str) -> Result<Option<R>, StoreError>
where
    R: DeserializeOwned,
    T: ReadableTable<&'static str, &'static [u8]>,
{
    let found = table.get(key).during(location, "reading a record")?;
    found
        .map(|bytes| decode(location, key, bytes.value()))
        .transpose()
}

/// The edges whose incoming-index key starts with `prefix`, each with its
/// key in the edges table.
fn scan_incoming<I, E>(
    index: &I,
    edges: &E,
    location: &Location,
    prefix: &str,
) -> Result<Vec<(String, StoredEdge)>, StoreError>
where
    I: ReadableTable<&'static str, &'static str>,
    E: ReadableTable<&'static str, &'static [u8]>,
{
    const SCANNING: &str = "scanning incoming edges";
    let mut out_keys = Vec::new();
    for item in index.range(prefix..).during(location, SCANNING)? {
        let (key, out_key) = item.during(location, SCANNING)?;
        if !key.value().starts_with(prefix) {
            break;
        }
        out_keys.push(out_key.value().to_owned());
    }
    let mut found = Vec::with_capacity(out_keys.len());
    for key in out_keys {
        if let Some(edge) = get_json(edges, location, &key)? {
            found.push((key, edge));
        }
    }
    Ok(found)
}

/// Every JSON record whose key starts with `prefix`, in key order.
fn scan_json<R, T>(
    table: &T,
    location: &Location,
    prefix: &str,
) -> Result<Vec<(String, R)>, StoreError>
where
    R: DeserializeOwned,
    T: ReadableTable<&'static str, &'static [u8]>,
{
    let mut out = Vec::new();
    for item in table.range(prefix..).during(location, "scanning records")? {
        let (key, bytes) = item.during(location, "scanning records")?;
        let key = key.value();
        if !key.starts_with(prefix) {
            break;
        }
        out.push((key.to_owned(), decode(location, key, bytes.value())?));
    }
    Ok(out)
}
