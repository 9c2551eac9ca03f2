//! Shared state and coordination for org-mesh replicas.
//!
//! One node needs none of this to be shared: [`memory`] keeps it in the
//! process and [`LocalQueue`] keeps accepted work in a file beside the twin.
//! Several replicas share it through Redis ([`redis`]): which webhook
//! deliveries were applied, plugin key-value state, per-connector sync
//! locks, rate-limit budgets of upstream APIs, and a stream whose consumer
//! group spreads accepted changes across replicas, so that each is handled
//! once even when a replica dies holding some.

use std::time::{Duration, SystemTime};

pub mod local_queue;
pub mod memory;
pub mod redis;

pub use local_queue::LocalQueue;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The backend could not be reached or answered with an error.
    #[error("cache backend {backend}: {message}")]
    Backend {
        backend: &'static str,
        message: String,
    },
    /// Stored data could not be read back.
    #[error("cache entry {key}: {message}")]
    Corrupt { key: String, message: String },
}

/// What a claim on a webhook delivery found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody holds it: the caller now does and must finish or release it.
    New,
    /// Another caller holds it and has not finished.
    InProgress,
    /// It was applied before.
    Done,
}

/// Proof of holding a lock; releasing or extending needs it, so a holder
/// whose lock expired cannot release the next holder's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockToken(pub String);

/// What an upstream API last said about a rate-limit budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub remaining: u64,
    /// When the budget refills.
    pub reset: SystemTime,
}

#[async_trait::async_trait]
pub trait Coordination: Send + Sync + std::fmt::Debug {
    /// Which backend this is, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Whether the backend answers.
    async fn ping(&self) -> Result<(), CacheError>;

    /// Claims a delivery id. A claim not finished within `hold` lapses, so
    /// a replica that died holding it does not block a redelivery for ever.
    async fn claim_delivery(&self, id: &str, hold: Duration) -> Result<Claim, CacheError>;
    /// Marks a claimed delivery applied; it is remembered for `keep`.
    async fn finish_delivery(&self, id: &str, keep: Duration) -> Result<(), CacheError>;
    /// Gives up a claim, so the delivery can be sent again.
    async fn release_delivery(&self, id: &str) -> Result<(), CacheError>;

    /// Plugin key-value state, scoped by plugin instance.
    async fn kv_get(&self, scope: &str, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    async fn kv_set(&self, scope: &str, key: &str, value: &[u8]) -> Result<(), CacheError>;
    async fn kv_delete(&self, scope: &str, key: &str) -> Result<(), CacheError>;

    /// Takes a named lock for `ttl` if nobody holds it.
    async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<LockToken>, CacheError>;
    /// Extends a held lock; false if it was lost.
    async fn extend_lock(
        &self,
        name: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool, CacheError>;
    /// Releases a held lock; false if it was no longer held by `token`.
    async fn unlock(&self, name: &str, token: &LockToken) -> Result<bool, CacheError>;

    /// Records what an upstream said about the budget named `scope`.
    async fn record_budget(&self, scope: &str, budget: Budget) -> Result<(), CacheError>;
    /// The last recorded budget of `scope`, if it has not reset yet.
    async fn budget(&self, scope: &str) -> Result<Option<Budget>, CacheError>;

    /// Counts a change of the shared twin and returns the new count.
    async fn bump_twin_version(&self) -> Result<u64, CacheError>;
    /// How many changes of the shared twin were counted.
    async fn twin_version(&self) -> Result<u64, CacheError>;
}

/// One accepted piece of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    pub id: String,
    pub payload: Vec<u8>,
    /// How many times it was handed out, this time included.
    pub deliveries: u64,
}

/// Accepted work waiting to be applied. An item stays pending until it is
/// acknowledged; one handed to a consumer that never acknowledges it can be
/// reclaimed by another after it has been idle long enough.
#[async_trait::async_trait]
pub trait WorkQueue: Send + Sync + std::fmt::Debug {
    fn backend(&self) -> &'static str;
    /// Adds work; durable when this returns.
    async fn push(&self, payload: &[u8]) -> Result<String, CacheError>;
    /// The next item nobody has been handed, waiting up to `wait` for one.
    async fn next(&self, consumer: &str, wait: Duration) -> Result<Option<Work>, CacheError>;
    /// Takes over items handed out to any consumer and idle for `min_idle`.
    async fn reclaim(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Work>, CacheError>;
    /// Marks an item done.
    async fn ack(&self, id: &str) -> Result<(), CacheError>;
    /// Items not yet acknowledged, handed out or not.
    async fn depth(&self) -> Result<u64, CacheError>;
    /// Forgets consumers that hold nothing and have not been heard from for
    /// `min_idle`, such as replicas long gone, so the list of consumers
    /// does not grow with every restart. Returns how many were forgotten.
    /// A consumer forgotten while alive is recreated by its next read.
    async fn forget_idle_consumers(&self, min_idle: Duration) -> Result<usize, CacheError> {
        let _ = min_idle;
        Ok(0)
    }
}
