//! Whether the backends answer, as `/readyz`, `/api/v1/status` and the
//! `org_mesh_backend_up` series report it.

use std::sync::Mutex;

use prometheus::IntGaugeVec;

/// The last known state of the graph store and the cache: `None` while
/// they answer, the last error while they do not.
#[derive(Debug)]
pub struct Health {
    graph: Mutex<Option<String>>,
    cache: Mutex<Option<String>>,
    up: IntGaugeVec,
}

fn set(slot: &Mutex<Option<String>>, value: Option<String>) -> bool {
    let mut guard = match slot.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let changed = guard.is_some() != value.is_some();
    *guard = value;
    changed
}

fn get(slot: &Mutex<Option<String>>) -> Option<String> {
    match slot.lock() {
        Ok(g) => g.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

impl Health {
    pub fn new(up: IntGaugeVec) -> Health {
        up.with_label_values(&["graph"]).set(1);
        up.with_label_values(&["cache"]).set(1);
        Health {
            graph: Mutex::new(None),
            cache: Mutex::new(None),
            up,
        }
    }

    pub fn graph_ok(&self) {
        if set(&self.graph, None) {
            tracing::info!("The graph store answers again");
        }
        self.up.with_label_values(&["graph"]).set(1);
    }

    pub fn graph_failed(&self, error: &str) {
        if set(&self.graph, Some(error.to_string())) {
            tracing::error!(%error, "The graph store does not answer; changes wait in the queue");
        }
        self.up.with_label_values(&["graph"]).set(0);
    }

    pub fn cache_ok(&self) {
        if set(&self.cache, None) {
            tracing::info!("The cache answers again");
        }
        self.up.with_label_values(&["cache"]).set(1);
    }

    pub fn cache_failed(&self, error: &dyn std::fmt::Display) {
        let error = error.to_string();
        if set(&self.cache, Some(error.clone())) {
            tracing::error!(%error, "The cache does not answer; pushed changes are refused until it does");
        }
        self.up.with_label_values(&["cache"]).set(0);
    }

    /// The graph store's last error, if it is down.
    pub fn graph(&self) -> Option<String> {
        get(&self.graph)
    }

    /// The cache's last error, if it is down.
    pub fn cache(&self) -> Option<String> {
        get(&self.cache)
    }
}
