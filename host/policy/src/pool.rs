use std::sync::{Mutex, MutexGuard, PoisonError};

use regorus::Engine;

/// Prepared engines for evaluating from `&self`.
///
/// regorus evaluates through `&mut Engine`. Cloning the prepared engine is
/// cheap (about 0.1 µs: the compiled policy is shared), but a fresh clone
/// copies the state it writes on first use, so reusing engines made a
/// shipped-policy decision a few percent faster (57 µs against 60 µs,
/// release build). The lock is held only to take or return an engine,
/// never while evaluating.
pub(crate) struct EnginePool {
    prepared: Engine,
    idle: Mutex<Vec<Engine>>,
    /// More idle engines than threads deciding at once would never be used.
    capacity: usize,
}

impl EnginePool {
    pub(crate) fn new(prepared: Engine) -> Self {
        let capacity = std::thread::available_parallelism().map_or(4, |n| n.get());
        Self {
            prepared,
            idle: Mutex::new(Vec::with_capacity(capacity)),
            capacity,
        }
    }

    #[cfg(test)]
    pub(crate) fn prepared(&self) -> &Engine {
        &self.prepared
    }

    pub(crate) fn take(&self) -> Engine {
        self.idle().pop().unwrap_or_else(|| self.prepared.clone())
    }

    /// Only engines whose last evaluation succeeded come back: one stopped
    /// half way, e.g. by the time limit, is dropped rather than trusted.
    pub(crate) fn give_back(&self, engine: Engine) {
        let mut idle = self.idle();
        if idle.len() < self.capacity {
            idle.push(engine);
        }
    }

    // A panic elsewhere while holding the lock leaves a plain list of
    // engines, each still whole, so the pool keeps using it.
    fn idle(&self) -> MutexGuard<'_, Vec<Engine>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
