//! [`MemoryCoordination`]: coordination for a single replica, kept in the
//! process. Nothing is shared with other processes and nothing survives a
//! restart.
//!
//! Claims and locks expire by [`Instant`], so a jump of the wall clock
//! neither stretches nor cuts them. Budgets reset at a wall-clock time
//! because that is what upstream APIs announce.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::{Budget, CacheError, Claim, Coordination, LockToken};

/// Expired entries are dropped when read; a sweep over a whole map runs
/// only once it has doubled since the last one, so that ids nobody asks
/// about again do not pile up and no single call pays for a large map often.
const FIRST_SWEEP_AT: usize = 1024;

/// In-process [`Coordination`], the default when no shared backend is
/// configured.
#[derive(Debug, Default)]
pub struct MemoryCoordination {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    deliveries: Expiring<Claim>,
    locks: Expiring<String>,
    budgets: HashMap<String, Budget>,
    /// Scope to that scope's keys.
    kv: HashMap<String, HashMap<String, Vec<u8>>>,
    twin_version: u64,
}

/// A map whose entries lapse at a deadline.
#[derive(Debug)]
struct Expiring<T> {
    entries: HashMap<String, (T, Instant)>,
    sweep_at: usize,
}

impl<T> Default for Expiring<T> {
    fn default() -> Self {
        Expiring {
            entries: HashMap::new(),
            sweep_at: FIRST_SWEEP_AT,
        }
    }
}

impl<T> Expiring<T> {
    /// The live entry under `name`; a lapsed one is removed.
    fn get(&mut self, name: &str, now: Instant) -> Option<&T> {
        if self
            .entries
            .get(name)
            .is_some_and(|(_, until)| *until <= now)
        {
            self.entries.remove(name);
        }
        self.entries.get(name).map(|(value, _)| value)
    }

    fn insert(&mut self, name: &str, value: T, ttl: Duration, now: Instant) {
        self.entries
            .insert(name.to_owned(), (value, deadline(now, ttl)));
        if self.entries.len() >= self.sweep_at {
            self.entries.retain(|_, (_, until)| *until > now);
            self.sweep_at = (self.entries.len() * 2).max(FIRST_SWEEP_AT);
        }
    }

    fn remove(&mut self, name: &str) {
        self.entries.remove(name);
    }
}

/// `now + ttl`, or a century from now for a ttl too large to add.
fn deadline(now: Instant, ttl: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(ttl.min(CENTURY)).unwrap_or(now)
}

impl MemoryCoordination {
    // Every critical section leaves the maps consistent, so the state a
    // panicking holder left behind is still good to use.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Coordination for MemoryCoordination {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    async fn claim_delivery(&self, id: &str, hold: Duration) -> Result<Claim, CacheError> {
        let now = Instant::now();
        let mut state = self.state();
        match state.deliveries.get(id, now) {
            Some(Claim::Done) => Ok(Claim::Done),
            Some(_) => Ok(Claim::InProgress),
            None => {
                state.deliveries.insert(id, Claim::InProgress, hold, now);
                Ok(Claim::New)
            }
        }
    }

    async fn finish_delivery(&self, id: &str, keep: Duration) -> Result<(), CacheError> {
        self.state()
            .deliveries
            .insert(id, Claim::Done, keep, Instant::now());
        Ok(())
    }

    async fn release_delivery(&self, id: &str) -> Result<(), CacheError> {
        let mut state = self.state();
        if state.deliveries.get(id, Instant::now()) == Some(&Claim::InProgress) {
            state.deliveries.remove(id);
        }
        Ok(())
    }

    async fn kv_get(&self, scope: &str, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self
            .state()
            .kv
            .get(scope)
            .and_then(|keys| keys.get(key))
            .cloned())
    }

    async fn kv_set(&self, scope: &str, key: &str, value: &[u8]) -> Result<(), CacheError> {
        self.state()
            .kv
            .entry(scope.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    async fn kv_delete(&self, scope: &str, key: &str) -> Result<(), CacheError> {
        let mut state = self.state();
        if let Some(keys) = state.kv.get_mut(scope) {
            keys.remove(key);
            if keys.is_empty() {
                state.kv.remove(scope);
            }
        }
        Ok(())
    }

    async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<LockToken>, CacheError> {
        let now = Instant::now();
        let mut state = self.state();
        if state.locks.get(name, now).is_some() {
            return Ok(None);
        }
        let token = uuid::Uuid::new_v4().to_string();
        state.locks.insert(name, token.clone(), ttl, now);
        Ok(Some(LockToken(token)))
    }

    async fn extend_lock(
        &self,
        name: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut state = self.state();
        if state.locks.get(name, now) != Some(&token.0) {
            return Ok(false);
        }
        state.locks.insert(name, token.0.clone(), ttl, now);
        Ok(true)
    }

    async fn unlock(&self, name: &str, token: &LockToken) -> Result<bool, CacheError> {
        let mut state = self.state();
        if state.locks.get(name, Instant::now()) != Some(&token.0) {
            return Ok(false);
        }
        state.locks.remove(name);
        Ok(true)
    }

    async fn record_budget(&self, scope: &str, budget: Budget) -> Result<(), CacheError> {
        let now = SystemTime::now();
        let mut state = self.state();
        state.budgets.retain(|_, b| b.reset > now);
        if budget.reset > now {
            state.budgets.insert(scope.to_owned(), budget);
        } else {
            // An announced reset already past means the budget refilled.
            state.budgets.remove(scope);
        }
        Ok(())
    }

    async fn budget(&self, scope: &str) -> Result<Option<Budget>, CacheError> {
        let now = SystemTime::now();
        Ok(self
            .state()
            .budgets
            .get(scope)
            .filter(|b| b.reset > now)
            .copied())
    }

    async fn bump_twin_version(&self) -> Result<u64, CacheError> {
        let mut state = self.state();
        state.twin_version = state.twin_version.saturating_add(1);
        Ok(state.twin_version)
    }

    async fn twin_version(&self) -> Result<u64, CacheError> {
        Ok(self.state().twin_version)
    }
}
