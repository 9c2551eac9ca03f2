//! Where SCIM resources are kept: the trait the service writes through and
//! the in-memory implementation. The durable one is in `embedded`.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ResourceKind;

/// One stored resource: its `id`, the creation sequence number that orders
/// list answers, and the resource as served (without `meta.location`, which
/// depends on the address the request came in on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResource {
    pub id: String,
    pub seq: u64,
    pub resource: Value,
}

/// A stored change the sink has not taken yet: the resource as written, or
/// the last of it when `deleted`. Kept in the same write as the change, so
/// that a sink failure or a crash between the two loses nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsent {
    pub connector: String,
    pub kind: ResourceKind,
    pub deleted: bool,
    pub resource: StoredResource,
    /// The store's count of writes when this change was written: changes
    /// are handed over in this order, and a later change of the same
    /// resource has a higher one. Changes noted by a version of the store
    /// that did not count have 0.
    pub written: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("scim store {path}: {step}")]
    Embedded {
        path: String,
        step: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("decoding a stored scim resource")]
    Decode(#[source] serde_json::Error),
    #[error("the scim storage worker stopped")]
    Worker(#[source] tokio::task::JoinError),
}

/// Storage of SCIM resources, partitioned by connector and resource kind.
/// Uniqueness and validation are the service's job; a repository only keeps
/// what it is given.
#[async_trait]
pub trait ScimRepository: Send + Sync + std::fmt::Debug {
    /// A creation sequence number never handed out before by this store.
    async fn next_seq(&self) -> Result<u64, RepositoryError>;
    /// Stores `resource`, replacing any with the same id, and in the same
    /// write notes it as unsent, replacing any earlier unsent change of it.
    async fn put(
        &self,
        connector: &str,
        kind: ResourceKind,
        resource: &StoredResource,
    ) -> Result<(), RepositoryError>;
    async fn get(
        &self,
        connector: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, RepositoryError>;
    /// Removes a resource, returning what was stored, and in the same write
    /// notes its deletion as unsent.
    async fn delete(
        &self,
        connector: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, RepositoryError>;
    /// The resource of one kind of one connector whose unique name
    /// ([`ResourceKind::unique_attribute`]) is `name`, compared
    /// case-insensitively. Identity providers look users up this way before
    /// every assignment, so it must not read the whole collection.
    async fn find_by_name(
        &self,
        connector: &str,
        kind: ResourceKind,
        name: &str,
    ) -> Result<Option<StoredResource>, RepositoryError>;
    /// Every resource of one kind of one connector, in creation order.
    async fn list(
        &self,
        connector: &str,
        kind: ResourceKind,
    ) -> Result<Vec<StoredResource>, RepositoryError>;
    /// Every change not yet marked [`sent`](ScimRepository::sent), the
    /// latest of each resource, in the order they were written.
    async fn unsent(&self) -> Result<Vec<Unsent>, RepositoryError>;
    /// Marks `changes` as taken by the sink, in one write, except those of
    /// which a later change has been written since they were read: that
    /// one stays unsent.
    async fn sent(&self, changes: &[Unsent]) -> Result<(), RepositoryError>;
}

/// A resource's identity across connectors: connector, kind and id.
pub(crate) type Key = (String, ResourceKind, String);

/// Keeps resources in memory only: for tests and for trying org-mesh out.
#[derive(Debug, Default)]
pub struct MemoryRepository {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    next_seq: u64,
    writes: u64,
    resources: BTreeMap<Key, StoredResource>,
    /// Whether the change was a deletion, the resource, and the count of
    /// writes when it was written.
    unsent: BTreeMap<Key, (bool, StoredResource, u64)>,
}

impl MemoryState {
    fn note(&mut self, key: Key, deleted: bool, resource: StoredResource) {
        self.writes += 1;
        self.unsent.insert(key, (deleted, resource, self.writes));
    }
}

impl MemoryRepository {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, job: impl FnOnce(&mut MemoryState) -> T) -> T {
        // A panic elsewhere while holding the lock leaves whole entries
        // behind, never half-written ones, so the state stays usable.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        job(&mut state)
    }
}

pub(crate) fn key(connector: &str, kind: ResourceKind, id: &str) -> Key {
    (connector.to_owned(), kind, id.to_owned())
}

#[async_trait]
impl ScimRepository for MemoryRepository {
    async fn next_seq(&self) -> Result<u64, RepositoryError> {
        Ok(self.with(|s| {
            s.next_seq += 1;
            s.next_seq
        }))
    }

    async fn put(
        &self,
        connector: &str,
        kind: ResourceKind,
        resource: &StoredResource,
    ) -> Result<(), RepositoryError> {
        self.with(|s| {
            let key = key(connector, kind, &resource.id);
            s.note(key.clone(), false, resource.clone());
            s.resources.insert(key, resource.clone())
        });
        Ok(())
    }

    async fn get(
        &self,
        connector: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, RepositoryError> {
        Ok(self.with(|s| s.resources.get(&key(connector, kind, id)).cloned()))
    }

    async fn delete(
        &self,
        connector: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, RepositoryError> {
        Ok(self.with(|s| {
            let key = key(connector, kind, id);
            let removed = s.resources.remove(&key);
            if let Some(last) = &removed {
                s.note(key, true, last.clone());
            }
            removed
        }))
    }

    /// Reads every resource of the kind: this store is for tests and small
    /// trials, where an index would only be more code to get wrong.
    async fn find_by_name(
        &self,
        connector: &str,
        kind: ResourceKind,
        name: &str,
    ) -> Result<Option<StoredResource>, RepositoryError> {
        let wanted = name.to_lowercase();
        Ok(self.with(|s| {
            s.resources
                .iter()
                .find(|((c, k, _), r)| {
                    c == connector
                        && *k == kind
                        && kind.name_key(&r.resource).as_deref() == Some(wanted.as_str())
                })
                .map(|(_, r)| r.clone())
        }))
    }

    async fn list(
        &self,
        connector: &str,
        kind: ResourceKind,
    ) -> Result<Vec<StoredResource>, RepositoryError> {
        let mut found: Vec<StoredResource> = self.with(|s| {
            s.resources
                .iter()
                .filter(|((c, k, _), _)| c == connector && *k == kind)
                .map(|(_, r)| r.clone())
                .collect()
        });
        found.sort_by_key(|r| r.seq);
        Ok(found)
    }

    async fn unsent(&self) -> Result<Vec<Unsent>, RepositoryError> {
        let mut found: Vec<Unsent> = self.with(|s| {
            s.unsent
                .iter()
                .map(
                    |((connector, kind, _), (deleted, resource, written))| Unsent {
                        connector: connector.clone(),
                        kind: *kind,
                        deleted: *deleted,
                        resource: resource.clone(),
                        written: *written,
                    },
                )
                .collect()
        });
        found.sort_by_key(|u| u.written);
        Ok(found)
    }

    async fn sent(&self, changes: &[Unsent]) -> Result<(), RepositoryError> {
        self.with(|s| {
            for change in changes {
                let key = key(&change.connector, change.kind, &change.resource.id);
                if s.unsent.get(&key).is_some_and(|n| n.2 == change.written) {
                    s.unsent.remove(&key);
                }
            }
        });
        Ok(())
    }
}
