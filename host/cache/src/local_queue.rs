//! [`LocalQueue`]: accepted work in a redb file beside the twin, for a
//! single replica.
//!
//! The file holds each item's payload and how often it was handed out;
//! which consumer holds an item and since when is kept in the process. So
//! after a restart every item not acknowledged is handed out again, with
//! its count of deliveries going on from where it was, which lets a caller
//! set aside an item that keeps crashing the process.
//!
//! Tables: `items` (id to payload), `deliveries` (id to times handed out)
//! and `meta` (schema version, next id). Ids are never reused, so a late
//! acknowledgement cannot remove a newer item.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::{CacheError, Work, WorkQueue};

const BACKEND: &str = "local-queue";

/// Bumped when a table or value layout changes; a file of another version
/// is refused rather than misread.
const SCHEMA_VERSION: u64 = 1;
const VERSION_KEY: &str = "schema_version";
const NEXT_ID_KEY: &str = "next_id";

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ITEMS: TableDefinition<u64, &[u8]> = TableDefinition::new("items");
const DELIVERIES: TableDefinition<u64, u64> = TableDefinition::new("deliveries");

/// A durable [`WorkQueue`] in one redb file.
pub struct LocalQueue {
    db: Arc<Database>,
    path: Arc<Path>,
    state: Mutex<State>,
    /// Woken by every push, so a waiting `next` looks again.
    pushed: Notify,
}

/// Who holds what, in this process.
#[derive(Debug, Default)]
struct State {
    /// Items nobody holds, oldest first, with how often each was handed out.
    waiting: BTreeMap<u64, u64>,
    held: BTreeMap<u64, Held>,
}

#[derive(Debug)]
struct Held {
    since: Instant,
    deliveries: u64,
}

impl fmt::Debug for LocalQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalQueue")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Names the file and the step in every redb error.
trait During<T> {
    fn during(self, path: &Path, what: &str) -> Result<T, CacheError>;
}

impl<T, E: fmt::Display> During<T> for Result<T, E> {
    fn during(self, path: &Path, what: &str) -> Result<T, CacheError> {
        self.map_err(|e| CacheError::Backend {
            backend: BACKEND,
            message: format!("{what} in {}: {e}", path.display()),
        })
    }
}

impl LocalQueue {
    /// Opens the queue at `path`, creating the file and its folders when
    /// missing. Every item in it is waiting again: whoever held one before
    /// is gone with the process that held it.
    ///
    /// The whole file is checked on opening, since redb may otherwise panic
    /// on a file damaged outside it.
    pub fn open(path: &Path) -> Result<LocalQueue, CacheError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).during(parent, "creating the folder")?;
        }
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create(path)
            .during(path, "opening the queue")?;
        initialise(&db, path)?;
        let waiting = load(&db, path)?;
        tracing::info!(path = %path.display(), waiting = waiting.len(), "Opened the local work queue");
        Ok(LocalQueue {
            db: Arc::new(db),
            path: Arc::from(path),
            state: Mutex::new(State {
                waiting,
                held: BTreeMap::new(),
            }),
            pushed: Notify::new(),
        })
    }

    // Each critical section leaves both maps consistent, so what a
    // panicking holder left behind is still good to use.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs blocking redb work off the async threads.
    async fn run<T, F>(&self, job: F) -> Result<T, CacheError>
    where
        T: Send + 'static,
        F: FnOnce(&Database, &Path) -> Result<T, CacheError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let path = Arc::clone(&self.path);
        tokio::task::spawn_blocking(move || job(&db, &path))
            .await
            .during(&self.path, "running a queue operation")?
    }

    /// Records the hand-out of `taken` (id, deliveries this time included)
    /// in the file and reads their payloads. Items acknowledged meanwhile
    /// are left out.
    async fn hand_out(&self, taken: Vec<(u64, u64)>) -> Result<Vec<Work>, CacheError> {
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |db, path| {
            let txn = db.begin_write().during(path, "starting a write")?;
            let mut work = Vec::with_capacity(taken.len());
            {
                let items = txn.open_table(ITEMS).during(path, "opening items")?;
                let mut deliveries = txn
                    .open_table(DELIVERIES)
                    .during(path, "opening deliveries")?;
                for (id, count) in taken {
                    let Some(payload) = items.get(id).during(path, "reading an item")? else {
                        continue;
                    };
                    work.push(Work {
                        id: id.to_string(),
                        payload: payload.value().to_vec(),
                        deliveries: count,
                    });
                    deliveries
                        .insert(id, count)
                        .during(path, "counting a delivery")?;
                }
            }
            // Durable before the caller starts on it, so a crash while
            // handling an item still counts this delivery.
            txn.commit().during(path, "committing a delivery")?;
            Ok(work)
        })
        .await
    }

    /// Takes the oldest waiting item for a consumer, if any.
    async fn take(&self) -> Result<Option<Work>, CacheError> {
        loop {
            let taken = {
                let mut state = self.state();
                let Some((id, before)) = state.waiting.pop_first() else {
                    return Ok(None);
                };
                let deliveries = before.saturating_add(1);
                state.held.insert(
                    id,
                    Held {
                        since: Instant::now(),
                        deliveries,
                    },
                );
                (id, deliveries)
            };
            match self.hand_out(vec![taken]).await {
                Ok(mut work) => match work.pop() {
                    Some(work) => return Ok(Some(work)),
                    // Acknowledged meanwhile: look for the next.
                    None => {
                        self.state().held.remove(&taken.0);
                    }
                },
                Err(e) => {
                    // Not handed out after all: it waits for the next call.
                    let mut state = self.state();
                    if state.held.remove(&taken.0).is_some() {
                        state.waiting.insert(taken.0, taken.1.saturating_sub(1));
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// Creates the tables of a new file, or checks that an existing one is a
/// queue of this schema version.
fn initialise(db: &Database, path: &Path) -> Result<(), CacheError> {
    let txn = db.begin_write().during(path, "starting a write")?;
    let tables = txn.list_tables().during(path, "listing tables")?.count();
    {
        let mut meta = txn.open_table(META).during(path, "opening meta")?;
        let found = meta
            .get(VERSION_KEY)
            .during(path, "reading the schema version")?
            .map(|v| v.value());
        match found {
            Some(SCHEMA_VERSION) => {}
            Some(found) => {
                return Err(CacheError::Corrupt {
                    key: path.display().to_string(),
                    message: format!(
                        "queue schema version {found}, this build reads {SCHEMA_VERSION}"
                    ),
                });
            }
            None if tables > 0 => {
                return Err(CacheError::Corrupt {
                    key: path.display().to_string(),
                    message: "a redb file that is not an org-mesh work queue".to_owned(),
                });
            }
            None => {
                meta.insert(VERSION_KEY, SCHEMA_VERSION)
                    .during(path, "writing the schema version")?;
                meta.insert(NEXT_ID_KEY, 1)
                    .during(path, "writing the schema version")?;
            }
        }
    }
    txn.open_table(ITEMS).during(path, "creating tables")?;
    txn.open_table(DELIVERIES).during(path, "creating tables")?;
    txn.commit().during(path, "committing the schema")
}

/// Every item in the file with how often it was handed out.
fn load(db: &Database, path: &Path) -> Result<BTreeMap<u64, u64>, CacheError> {
    let txn = db.begin_read().during(path, "starting a read")?;
    let items = txn.open_table(ITEMS).during(path, "opening items")?;
    let deliveries = txn
        .open_table(DELIVERIES)
        .during(path, "opening deliveries")?;
    let mut waiting = BTreeMap::new();
    for entry in items.iter().during(path, "listing items")? {
        let (id, _) = entry.during(path, "listing items")?;
        let id = id.value();
        let count = deliveries
            .get(id)
            .during(path, "reading a delivery count")?
            .map_or(0, |c| c.value());
        waiting.insert(id, count);
    }
    Ok(waiting)
}

fn parse_id(id: &str) -> Result<u64, CacheError> {
    id.parse().map_err(|_| CacheError::Backend {
        backend: BACKEND,
        message: format!("{id:?} is not an id this queue hands out"),
    })
}

#[async_trait::async_trait]
impl WorkQueue for LocalQueue {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn push(&self, payload: &[u8]) -> Result<String, CacheError> {
        let payload = payload.to_vec();
        let id = self
            .run(move |db, path| {
                let txn = db.begin_write().during(path, "starting a write")?;
                let id = {
                    let mut meta = txn.open_table(META).during(path, "opening meta")?;
                    let id = meta
                        .get(NEXT_ID_KEY)
                        .during(path, "reading the next id")?
                        .map_or(1, |v| v.value());
                    meta.insert(NEXT_ID_KEY, id.saturating_add(1))
                        .during(path, "writing the next id")?;
                    let mut items = txn.open_table(ITEMS).during(path, "opening items")?;
                    items
                        .insert(id, payload.as_slice())
                        .during(path, "writing an item")?;
                    id
                };
                txn.commit().during(path, "committing an item")?;
                Ok(id)
            })
            .await?;
        self.state().waiting.insert(id, 0);
        self.pushed.notify_waiters();
        Ok(id.to_string())
    }

    async fn next(&self, consumer: &str, wait: Duration) -> Result<Option<Work>, CacheError> {
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so a push between the look and the
            // wait still wakes this call.
            let pushed = self.pushed.notified();
            tokio::pin!(pushed);
            pushed.as_mut().enable();
            if let Some(work) = self.take().await? {
                tracing::trace!(consumer, id = %work.id, "Handed out queued work");
                return Ok(Some(work));
            }
            if tokio::time::timeout_at(deadline, pushed).await.is_err() {
                return Ok(None);
            }
        }
    }

    async fn reclaim(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Work>, CacheError> {
        let taken: Vec<(u64, u64)> = {
            let now = Instant::now();
            let mut state = self.state();
            state
                .held
                .iter_mut()
                .filter(|(_, held)| now.duration_since(held.since) >= min_idle)
                .take(count)
                .map(|(id, held)| {
                    held.since = now;
                    held.deliveries = held.deliveries.saturating_add(1);
                    (*id, held.deliveries)
                })
                .collect()
        };
        if !taken.is_empty() {
            tracing::debug!(consumer, items = taken.len(), "Took over idle queued work");
        }
        self.hand_out(taken).await
    }

    async fn ack(&self, id: &str) -> Result<(), CacheError> {
        let id = parse_id(id)?;
        {
            let mut state = self.state();
            state.held.remove(&id);
            state.waiting.remove(&id);
        }
        self.run(move |db, path| {
            let txn = db.begin_write().during(path, "starting a write")?;
            {
                let mut items = txn.open_table(ITEMS).during(path, "opening items")?;
                items.remove(id).during(path, "removing an item")?;
                let mut deliveries = txn
                    .open_table(DELIVERIES)
                    .during(path, "opening deliveries")?;
                deliveries
                    .remove(id)
                    .during(path, "removing a delivery count")?;
            }
            txn.commit().during(path, "committing an acknowledgement")
        })
        .await
    }

    async fn depth(&self) -> Result<u64, CacheError> {
        let state = self.state();
        Ok(u64::try_from(state.waiting.len() + state.held.len()).unwrap_or(u64::MAX))
    }
}
