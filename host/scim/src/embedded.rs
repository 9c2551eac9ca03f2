//! The durable repository: one redb file, resources stored as JSON under
//! `connector / kind / id` keys, an index from each resource's unique name
//! (in lower case) to its id under `connector / kind / name` keys, the
//! creation sequence and write counters, and the changes not yet taken by
//! the sink under the resources' keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition};

use crate::ResourceKind;
use crate::repository::{RepositoryError, ScimRepository, StoredResource, Unsent};

const RESOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("scim_resources");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("scim_counters");
const UNSENT: TableDefinition<&str, &[u8]> = TableDefinition::new("scim_unsent");
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("scim_names");
const NEXT_SEQ: &str = "next_seq";
/// Counts the writes that noted an unsent change; see [`Unsent::written`].
const WRITES: &str = "writes";
/// Set once the name index covers every resource; files written before the
/// index existed get it built when opened.
const NAMES_INDEXED: &str = "names_indexed";
/// Separates the parts of a key; connector names and ids never contain it
/// in practice, and a prefix scan ending in it cannot match a longer
/// connector name.
const SEP: char = '\u{1f}';

/// SCIM resources in a redb file, kept across restarts.
#[derive(Debug, Clone)]
pub struct EmbeddedRepository {
    db: Arc<Database>,
    path: PathBuf,
}

trait Step<T> {
    fn step(self, path: &Path, step: &'static str) -> Result<T, RepositoryError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Step<T> for Result<T, E> {
    fn step(self, path: &Path, step: &'static str) -> Result<T, RepositoryError> {
        self.map_err(|source| RepositoryError::Embedded {
            path: path.display().to_string(),
            step,
            source: Box::new(source),
        })
    }
}

fn prefix(connector: &str, kind: ResourceKind) -> String {
    format!("{connector}{SEP}{}{SEP}", kind.name())
}

fn key(connector: &str, kind: ResourceKind, id: &str) -> String {
    format!("{}{id}", prefix(connector, kind))
}

impl EmbeddedRepository {
    /// Opens the store at `path`, creating the file and its tables if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RepositoryError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).step(&path, "creating its folder")?;
        }
        let db = Database::create(&path).step(&path, "opening")?;
        let txn = db.begin_write().step(&path, "starting a write")?;
        txn.open_table(RESOURCES).step(&path, "creating tables")?;
        txn.open_table(COUNTERS).step(&path, "creating tables")?;
        txn.open_table(UNSENT).step(&path, "creating tables")?;
        index_names(&txn, &path)?;
        txn.commit().step(&path, "committing tables")?;
        Ok(Self {
            db: Arc::new(db),
            path,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Database, &Path) -> Result<T, RepositoryError> + Send + 'static,
    ) -> Result<T, RepositoryError> {
        let db = Arc::clone(&self.db);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || job(&db, &path))
            .await
            .map_err(RepositoryError::Worker)?
    }
}

fn decode(bytes: &[u8]) -> Result<StoredResource, RepositoryError> {
    serde_json::from_slice(bytes).map_err(RepositoryError::Decode)
}

/// An unsent change as kept: whether it deleted the resource, the
/// resource, and the count of writes when it was written (absent, so 0, in
/// notes kept before writes were counted).
#[derive(serde::Serialize, serde::Deserialize)]
struct Change {
    deleted: bool,
    resource: StoredResource,
    #[serde(default)]
    written: u64,
}

/// Notes `resource`'s change as unsent, within the write that makes it.
fn note_unsent(
    txn: &redb::WriteTransaction,
    path: &Path,
    key: &str,
    deleted: bool,
    resource: StoredResource,
) -> Result<(), RepositoryError> {
    let written = {
        let mut counters = txn.open_table(COUNTERS).step(path, "opening counters")?;
        let written = counters
            .get(WRITES)
            .step(path, "reading the write count")?
            .map_or(0, |v| v.value())
            + 1;
        counters
            .insert(WRITES, written)
            .step(path, "counting a write")?;
        written
    };
    let change = Change {
        deleted,
        resource,
        written,
    };
    let bytes = serde_json::to_vec(&change).map_err(RepositoryError::Decode)?;
    txn.open_table(UNSENT)
        .step(path, "opening unsent changes")?
        .insert(key, bytes.as_slice())
        .step(path, "noting an unsent change")?;
    Ok(())
}

/// The connector and kind of a key.
fn parts(key: &str) -> Option<(String, ResourceKind)> {
    let mut parts = key.split(SEP);
    let connector = parts.next()?.to_owned();
    let kind = match parts.next()? {
        "User" => ResourceKind::User,
        "Group" => ResourceKind::Group,
        _ => return None,
    };
    Some((connector, kind))
}

/// Builds the name index of a file that has none yet.
fn index_names(txn: &redb::WriteTransaction, path: &Path) -> Result<(), RepositoryError> {
    let mut counters = txn.open_table(COUNTERS).step(path, "creating tables")?;
    if counters
        .get(NAMES_INDEXED)
        .step(path, "reading the name index's state")?
        .is_some()
    {
        return Ok(());
    }
    let resources = txn.open_table(RESOURCES).step(path, "creating tables")?;
    let mut names = txn.open_table(NAMES).step(path, "creating tables")?;
    let mut indexed = 0usize;
    for entry in resources.iter().step(path, "indexing names")? {
        let (k, v) = entry.step(path, "indexing names")?;
        let Some((connector, kind)) = parts(k.value()) else {
            continue;
        };
        let stored = decode(v.value())?;
        if let Some(name) = kind.name_key(&stored.resource) {
            names
                .insert(
                    name_key(&connector, kind, &name).as_str(),
                    stored.id.as_str(),
                )
                .step(path, "indexing names")?;
            indexed += 1;
        }
    }
    counters
        .insert(NAMES_INDEXED, 1)
        .step(path, "indexing names")?;
    if indexed > 0 {
        tracing::info!(indexed, path = %path.display(), "Indexed the names of stored SCIM resources");
    }
    Ok(())
}

fn name_key(connector: &str, kind: ResourceKind, lower_name: &str) -> String {
    format!("{}{lower_name}", prefix(connector, kind))
}

/// Removes `name`'s index entry if it still points at `id`.
fn unindex(
    names: &mut Table<&str, &str>,
    key: &str,
    id: &str,
    path: &Path,
) -> Result<(), RepositoryError> {
    let points_here = names
        .get(key)
        .step(path, "reading the name index")?
        .is_some_and(|v| v.value() == id);
    if points_here {
        names.remove(key).step(path, "updating the name index")?;
    }
    Ok(())
}

/// A write whose loss in a crash costs nothing: it is made durable by the
/// next durable commit, and until then repeating it is harmless.
fn begin_light_write(
    db: &Database,
    path: &Path,
) -> Result<redb::WriteTransaction, RepositoryError> {
    let mut txn = db.begin_write().step(path, "starting a write")?;
    txn.set_durability(Durability::None)
        .step(path, "starting a write")?;
    Ok(txn)
}

// A resource read by id or by name is read on the calling thread, unlike
// writes and listings: it is a few B-tree lookups, mostly in redb's cache,
// and handing it to the blocking pool costs two wake-ups of parked threads,
// which on an otherwise idle machine took longer than the read. An
// identity provider's import is mostly such look-ups.
#[async_trait]
impl ScimRepository for EmbeddedRepository {
    async fn next_seq(&self) -> Result<u64, RepositoryError> {
        // Not synced on its own: a number is only used in a resource's
        // durable write, which makes it durable too.
        self.run(|db, path| {
            let txn = begin_light_write(db, path)?;
            let next = {
                let mut table = txn.open_table(COUNTERS).step(path, "opening counters")?;
                let current = table
                    .get(NEXT_SEQ)
                    .step(path, "reading the sequence")?
                    .map_or(0, |v| v.value());
                let next = current + 1;
                table
                    .insert(NEXT_SEQ, next)
                    .step(path, "writing the sequence")?;
                next
            };
            txn.commit().step(path, "committing the sequence")?;
            Ok(next)
        })
        .await
    }

    async fn put(
        &self,
        connector: &str,
        kind: ResourceKind,
        resource: &StoredResource,
    ) -> Result<(), RepositoryError> {
        let key = key(connector, kind, &resource.id);
        let bytes = serde_json::to_vec(resource).map_err(RepositoryError::Decode)?;
        let resource = resource.clone();
        let id = resource.id.clone();
        let name = kind
            .name_key(&resource.resource)
            .map(|n| name_key(connector, kind, &n));
        let connector = connector.to_owned();
        self.run(move |db, path| {
            let txn = db.begin_write().step(path, "starting a write")?;
            let old_name = {
                let mut resources = txn.open_table(RESOURCES).step(path, "opening resources")?;
                let old = resources
                    .insert(key.as_str(), bytes.as_slice())
                    .step(path, "writing a resource")?;
                old.map(|v| decode(v.value()))
                    .transpose()?
                    .and_then(|old| kind.name_key(&old.resource))
                    .map(|n| name_key(&connector, kind, &n))
            };
            {
                let mut names = txn.open_table(NAMES).step(path, "opening the name index")?;
                if let Some(old_name) = old_name.filter(|o| Some(o) != name.as_ref()) {
                    unindex(&mut names, &old_name, &id, path)?;
                }
                if let Some(name) = &name {
                    names
                        .insert(name.as_str(), id.as_str())
                        .step(path, "updating the name index")?;
                }
            }
            note_unsent(&txn, path, &key, false, resource)?;
            txn.commit().step(path, "committing a resource")
        })
        .await
    }

    async fn get(
        &self,
        connector: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, RepositoryError> {
        let key = key(connector, kind, id);
        let (db, path) = (&self.db, self.path.as_path());
        let txn = db.begin_read().step(path, "starting a read")?;
        let table = txn.open_table(RESOURCES).step(path, "opening resources")?;
        let found = table.get(key.as_str()).step(path, "reading a resource")?;
        found.map(|v| decode(v.value())).transpose()
    }

    async fn delete(
        &self,
        connector: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, RepositoryError> {
        let key = key(connector, kind, id);
        let (connector, id) = (connector.to_owned(), id.to_owned());
        self.run(move |db, path| {
            let txn = db.begin_write().step(path, "starting a write")?;
            let removed = {
                let mut table = txn.open_table(RESOURCES).step(path, "opening resources")?;
                let old = table
                    .remove(key.as_str())
                    .step(path, "removing a resource")?;
                old.map(|v| decode(v.value())).transpose()?
            };
            if let Some(name) = removed.as_ref().and_then(|r| kind.name_key(&r.resource)) {
                let mut names = txn.open_table(NAMES).step(path, "opening the name index")?;
                unindex(&mut names, &name_key(&connector, kind, &name), &id, path)?;
            }
            if let Some(last) = &removed {
                note_unsent(&txn, path, &key, true, last.clone())?;
            }
            txn.commit().step(path, "committing a removal")?;
            Ok(removed)
        })
        .await
    }

    async fn find_by_name(
        &self,
        connector: &str,
        kind: ResourceKind,
        name: &str,
    ) -> Result<Option<StoredResource>, RepositoryError> {
        let name = name_key(connector, kind, &name.to_lowercase());
        let (db, path) = (&self.db, self.path.as_path());
        let txn = db.begin_read().step(path, "starting a read")?;
        let names = txn.open_table(NAMES).step(path, "opening the name index")?;
        let Some(id) = names
            .get(name.as_str())
            .step(path, "reading the name index")?
        else {
            return Ok(None);
        };
        let resources = txn.open_table(RESOURCES).step(path, "opening resources")?;
        let found = resources
            .get(key(connector, kind, id.value()).as_str())
            .step(path, "reading a resource")?;
        found.map(|v| decode(v.value())).transpose()
    }

    async fn list(
        &self,
        connector: &str,
        kind: ResourceKind,
    ) -> Result<Vec<StoredResource>, RepositoryError> {
        let prefix = prefix(connector, kind);
        self.run(move |db, path| {
            let txn = db.begin_read().step(path, "starting a read")?;
            let table = txn.open_table(RESOURCES).step(path, "opening resources")?;
            let mut found = Vec::new();
            for entry in table
                .range(prefix.as_str()..)
                .step(path, "scanning resources")?
            {
                let (k, v) = entry.step(path, "scanning resources")?;
                if !k.value().starts_with(&prefix) {
                    break;
                }
                found.push(decode(v.value())?);
            }
            found.sort_by_key(|r| r.seq);
            Ok(found)
        })
        .await
    }

    async fn unsent(&self) -> Result<Vec<Unsent>, RepositoryError> {
        self.run(|db, path| {
            let txn = db.begin_read().step(path, "starting a read")?;
            let table = txn
                .open_table(UNSENT)
                .step(path, "opening unsent changes")?;
            let mut found = Vec::new();
            for entry in table.iter().step(path, "scanning unsent changes")? {
                let (k, v) = entry.step(path, "scanning unsent changes")?;
                let Some((connector, kind)) = parts(k.value()) else {
                    tracing::warn!(
                        key = k.value(),
                        "Unsent SCIM change under a key of no kind; left as it is"
                    );
                    continue;
                };
                let change: Change =
                    serde_json::from_slice(v.value()).map_err(RepositoryError::Decode)?;
                found.push(Unsent {
                    connector,
                    kind,
                    deleted: change.deleted,
                    resource: change.resource,
                    written: change.written,
                });
            }
            // Notes kept before writes were counted all have 0; among
            // them, creation order is the best order left.
            found.sort_by_key(|u| (u.written, u.resource.seq));
            Ok(found)
        })
        .await
    }

    async fn sent(&self, changes: &[Unsent]) -> Result<(), RepositoryError> {
        let notes: Vec<(String, u64)> = changes
            .iter()
            .map(|c| (key(&c.connector, c.kind, &c.resource.id), c.written))
            .collect();
        // Not synced: a note lost in a crash only hands the change over
        // once more, which the sink takes as the same state again.
        self.run(move |db, path| {
            let txn = begin_light_write(db, path)?;
            {
                let mut table = txn
                    .open_table(UNSENT)
                    .step(path, "opening unsent changes")?;
                for (key, written) in &notes {
                    let still_this = match table.get(key.as_str()).step(path, "reading a change")? {
                        Some(v) => {
                            let noted: Change = serde_json::from_slice(v.value())
                                .map_err(RepositoryError::Decode)?;
                            noted.written == *written
                        }
                        None => false,
                    };
                    if still_this {
                        table
                            .remove(key.as_str())
                            .step(path, "marking a change sent")?;
                    }
                }
            }
            txn.commit().step(path, "committing sent changes")
        })
        .await
    }
}
