//! The wasmtime engine org-mesh runs plugins on, and its limits.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use org_mesh_cache::Coordination;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings;
use crate::cache::Cache;
use crate::host::{CallState, Clock, GraphReader, Services};

/// The sandbox limits applied to every plugin call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Linear memory per instance.
    pub memory_bytes: u64,
    /// Guest CPU time per call, enforced by epoch interruption. Time spent
    /// in host calls does not count.
    pub cpu: Duration,
    /// The whole call, host calls included.
    pub call_timeout: Duration,
    /// Each host call (one HTTP request, one graph query).
    pub host_call_timeout: Duration,
    /// The size of what one call returns.
    pub output_bytes: u64,
    /// One HTTP response body.
    pub http_body_bytes: u64,
    pub log_events_per_call: u32,
    pub table_elements: usize,
    pub graph_items_per_query: usize,
    /// WebAssembly stack; deeper recursion traps as a stack overflow.
    pub stack_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu: Duration::from_secs(2),
            call_timeout: Duration::from_secs(120),
            host_call_timeout: Duration::from_secs(30),
            output_bytes: 64 << 20,
            http_body_bytes: 16 << 20,
            log_events_per_call: 1000,
            table_elements: 20_000,
            graph_items_per_query: 100_000,
            stack_bytes: 1 << 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub limits: Limits,
    /// Where compiled plugins are cached; `None` compiles at every start.
    pub cache_dir: Option<PathBuf>,
    /// How often the epoch advances: the granularity of the CPU deadline.
    pub epoch_tick: Duration,
    /// Instances that may exist at once across all plugins.
    pub max_instances: u32,
    /// Consecutive sandbox failures after which a plugin is quarantined.
    pub quarantine_after: u32,
    /// The first quarantine; each further one doubles, up to an hour.
    pub quarantine_base: Duration,
    /// The clocks plugins read; `None` gives them the system's.
    pub clock: Option<Arc<dyn Clock>>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            limits: Limits::default(),
            cache_dir: None,
            epoch_tick: Duration::from_millis(10),
            max_instances: 64,
            quarantine_after: 5,
            quarantine_base: Duration::from_secs(30),
            clock: None,
        }
    }
}

/// The thread advancing the engine's epoch, which is what interrupts a
/// plugin past its CPU limit. It ticks only while a call is running and
/// is parked otherwise, so an idle process is not woken every tick. It
/// stops when the runtime goes away.
#[derive(Debug)]
pub(crate) struct Ticker {
    state: Arc<TickerState>,
    thread: std::thread::Thread,
}

#[derive(Debug, Default)]
struct TickerState {
    stop: AtomicBool,
    running: AtomicUsize,
    ticks: AtomicU64,
}

/// A call in progress, for the ticker: while any is alive, it ticks.
pub(crate) struct Running<'a>(&'a Ticker);

impl Ticker {
    fn spawn(engine: Engine, tick: Duration) -> anyhow::Result<Self> {
        let state = Arc::new(TickerState::default());
        let shared = Arc::clone(&state);
        let handle = std::thread::Builder::new()
            .name("org-mesh-epoch".into())
            .spawn(move || {
                while !shared.stop.load(Ordering::SeqCst) {
                    // A call starting after this check unparks the thread,
                    // and an unpark before the park makes it return at once.
                    if shared.running.load(Ordering::SeqCst) == 0 {
                        std::thread::park();
                        continue;
                    }
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                    shared.ticks.fetch_add(1, Ordering::Relaxed);
                }
            })?;
        Ok(Self {
            state,
            thread: handle.thread().clone(),
        })
    }

    pub(crate) fn running(&self) -> Running<'_> {
        if self.state.running.fetch_add(1, Ordering::SeqCst) == 0 {
            self.thread.unpark();
        }
        Running(self)
    }

    /// Ticks so far; for tests of when the ticker runs.
    #[cfg(test)]
    pub(crate) fn ticks(&self) -> u64 {
        self.state.ticks.load(Ordering::Relaxed)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.state.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Shared by every loaded plugin.
pub(crate) struct Shared {
    pub engine: Engine,
    pub linker: Linker<CallState>,
    pub services: Arc<Services>,
    pub options: RuntimeOptions,
    pub cache: Option<Cache>,
    pub metrics: crate::registry::Metrics,
    pub ticker: Ticker,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("options", &self.options)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// Compiles, links and calls plugins. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) shared: Arc<Shared>,
}

impl Runtime {
    /// `coordination` keeps the plugins' key-value state and the rate-limit
    /// budgets of the APIs they call; with a shared backend, every replica
    /// sees the same.
    pub fn new(
        options: RuntimeOptions,
        coordination: Arc<dyn Coordination>,
        graph: Option<Arc<dyn GraphReader>>,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Runtime> {
        let engine = Engine::new(&engine_config(&options)?)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::imports::HostImports::add_to_linker::<_, HasSelf<CallState>>(
            &mut linker,
            |state| state,
        )?;

        // Rustls needs a process-wide crypto provider; installing one twice
        // is harmless, so a second runtime in the process ignores the error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = crate::host::Clients::new()?;

        let ticker = Ticker::spawn(engine.clone(), options.epoch_tick)?;

        let cache = options
            .cache_dir
            .as_deref()
            .map(|dir| Cache::new(dir, &engine));
        Ok(Runtime {
            shared: Arc::new(Shared {
                engine,
                linker,
                services: Arc::new(Services {
                    http,
                    coordination,
                    graph,
                    clock: options.clock.clone(),
                }),
                cache,
                metrics: crate::registry::Metrics::new(registry)?,
                options,
                ticker,
            }),
        })
    }

    pub fn limits(&self) -> Limits {
        self.shared.options.limits
    }
}

// A fresh instance per call is what keeps one call's data from the next.
// By default the pool hands a finished instance's memory back to the kernel
// with `madvise`, and the next call page-faults in every page it touches
// again: for a detector call over a small change set, that was a third of
// the call. Where the kernel has `PAGEMAP_SCAN` (Linux 6.7 and later), the
// pool instead finds the pages the call wrote and sets just those back to
// their original contents, so the next call gets the same clean memory
// without the faults, at the cost of up to this much resident memory per
// pool slot that has been used. Without the scan, keeping pages resident
// means setting the whole lowest megabyte on every call, which measured
// slower than the faults it saves, so older kernels keep the default.
const KEEP_RESIDENT_MEMORY: usize = 1 << 20;
const KEEP_RESIDENT_TABLE: usize = 64 << 10;

fn engine_config(options: &RuntimeOptions) -> anyhow::Result<Config> {
    let limits = &options.limits;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(options.max_instances)
        .total_core_instances(options.max_instances * 8)
        .total_memories(options.max_instances * 2)
        .total_tables(options.max_instances * 4)
        .total_stacks(options.max_instances)
        .max_core_instances_per_component(16)
        .max_memories_per_component(2)
        .max_tables_per_component(4)
        .max_memory_size(usize::try_from(limits.memory_bytes)?)
        .table_elements(limits.table_elements);
    let scan = PoolingAllocationConfig::is_pagemap_scan_available();
    if scan {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
            .table_keep_resident(KEEP_RESIDENT_TABLE);
    }
    tracing::debug!(
        pagemap_scan = scan,
        "Plugin memory is reset {}",
        if scan {
            "page by page, kept resident"
        } else {
            "by handing it back to the kernel"
        }
    );

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.stack_bytes)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn the_ticker_ticks_only_while_a_call_runs() {
        let ticker = Ticker::spawn(Engine::default(), Duration::from_millis(1)).expect("ticker");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(ticker.ticks(), 0, "the ticker ran with no call running");

        {
            let _running = ticker.running();
            let _nested = ticker.running();
            let deadline = Instant::now() + Duration::from_secs(10);
            while ticker.ticks() < 3 {
                assert!(Instant::now() < deadline, "no tick while a call ran");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // A tick already under way may still land; then it parks.
        std::thread::sleep(Duration::from_millis(20));
        let settled = ticker.ticks();
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            ticker.ticks() <= settled + 1,
            "the ticker kept running: {settled} then {}",
            ticker.ticks()
        );

        let _running = ticker.running();
        let deadline = Instant::now() + Duration::from_secs(10);
        while ticker.ticks() <= settled + 1 {
            assert!(Instant::now() < deadline, "no tick after waking again");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
