//! The host side of the plugin imports and the per-call state they share.

mod clock;
mod graph;
mod http;
mod kv;
mod log;
mod resolve;
mod secrets;
mod stderr;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use org_mesh_cache::Coordination;
use serde::Deserialize;
use wasmtime::{ResourceLimiter, component::ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::engine::Limits;
use crate::manifest::Capability;
use crate::plugin::PlannedCall;

pub use clock::Clock;
pub use graph::GraphReader;
pub(crate) use resolve::Clients;

/// Where the host reads a secret from when a plugin uses it. The value is
/// read at use, never kept in configuration or logs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// An environment variable of the org-mesh process.
    Env(String),
    /// A file, such as a mounted Kubernetes Secret; one trailing newline is
    /// dropped.
    File(std::path::PathBuf),
}

impl SecretSource {
    /// Reads the secret now. The error names the source, never the value.
    pub fn read(&self) -> Result<String, String> {
        match self {
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.strip_suffix('\n').map(str::to_string).unwrap_or(s))
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
        }
    }
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(var) => write!(f, "env:{var}"),
            SecretSource::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// What the operator allows one plugin instance. A capability is usable only
/// when the manifest asks for it and the grant allows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Hosts outgoing HTTP may reach: `name` (default port of the scheme) or
    /// `name:port`. A name is reached only at the public addresses it
    /// resolves to, unless `private_networks` is set; a literal address is
    /// reached as written, except a link-local or cloud metadata one.
    #[serde(default)]
    pub http_hosts: Vec<String>,
    /// Lets the names in `http_hosts` resolve to loopback, private (RFC 1918,
    /// fc00::/7) and carrier-grade NAT (100.64.0.0/10) addresses, for an API
    /// inside the cluster such as a self-hosted GitLab. Link-local, cloud
    /// metadata and unspecified addresses stay refused.
    #[serde(default)]
    pub private_networks: bool,
    /// Secret names, as the manifest declares them, and where to read them.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    #[serde(default)]
    pub kv: bool,
    #[serde(default)]
    pub graph: bool,
}

impl Grants {
    /// The capabilities this grant allows, before intersecting with the
    /// manifest's.
    pub(crate) fn allows(&self) -> BTreeSet<Capability> {
        let mut caps = BTreeSet::from([Capability::Log]);
        if !self.http_hosts.is_empty() {
            caps.insert(Capability::Http);
        }
        if !self.secrets.is_empty() {
            caps.insert(Capability::Secrets);
        }
        if self.kv {
            caps.insert(Capability::Kv);
        }
        if self.graph {
            caps.insert(Capability::Graph);
        }
        caps
    }
}

/// Shared services behind the imports, one set per runtime.
#[derive(Debug)]
pub(crate) struct Services {
    pub http: Clients,
    /// Plugin key-value state and the rate-limit budgets of upstream APIs,
    /// shared with other replicas when the backend is.
    pub coordination: Arc<dyn Coordination>,
    pub graph: Option<Arc<dyn GraphReader>>,
    /// Replaces the system clocks for every call when set.
    pub clock: Option<Arc<dyn Clock>>,
}

/// Everything one call's store holds.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub plugin: Arc<str>,
    pub version: Arc<str>,
    /// The plugin instance name, scoping its key-value store and its
    /// rate-limit budgets.
    pub scope: Arc<str>,
    pub grants: Arc<Grants>,
    pub granted: BTreeSet<Capability>,
    pub services: Arc<Services>,
    pub limits: Limits,
    pub started: Instant,
    /// Time spent inside host calls, which does not count against the CPU
    /// budget.
    pub host_time: Duration,
    /// Nanoseconds the guest spent paused for other tasks on its thread,
    /// which do not count either. Shared with the pauses, which cannot
    /// reach the store.
    pub waited: Arc<AtomicU64>,
    pub memory_denied: bool,
    pub ungranted: Option<Capability>,
    pub log_budget: u32,
    /// While an approved plan runs: the calls it announced. Requests that
    /// could change something (any method but GET and HEAD) must be among
    /// them.
    pub approved: Option<Arc<[PlannedCall]>>,
    /// The first request refused for not being in the approved plan, as
    /// it may be shown.
    pub unplanned: Option<String>,
    /// The end of what the call wrote to standard error.
    pub stderr: stderr::Tail,
}

impl std::fmt::Debug for CallState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallState")
            .field("plugin", &self.plugin)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl CallState {
    pub fn new(
        plugin: Arc<str>,
        version: Arc<str>,
        scope: Arc<str>,
        grants: Arc<Grants>,
        granted: BTreeSet<Capability>,
        services: Arc<Services>,
        limits: Limits,
    ) -> Self {
        // No preopened folders, no environment, no arguments, and sockets
        // denied: the only ways out are the org-mesh imports.
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Some(clock) = &services.clock {
            wasi.wall_clock(clock::Wall(clock.clone()))
                .monotonic_clock(clock::Monotonic(clock.clone()));
        }
        let stderr = stderr::Tail::default();
        wasi.stderr(stderr.clone());
        let wasi = wasi.build();
        CallState {
            wasi,
            table: ResourceTable::new(),
            plugin,
            version,
            scope,
            grants,
            granted,
            services,
            log_budget: limits.log_events_per_call,
            limits,
            started: Instant::now(),
            host_time: Duration::ZERO,
            waited: Arc::new(AtomicU64::new(0)),
            memory_denied: false,
            ungranted: None,
            approved: None,
            unplanned: None,
            stderr,
        }
    }

    /// Fails the call with a trap when the capability is not granted, and
    /// remembers why so the caller can name it.
    pub fn require(&mut self, cap: Capability) -> wasmtime::Result<()> {
        if self.granted.contains(&cap) {
            Ok(())
        } else {
            self.ungranted = Some(cap);
            Err(wasmtime::format_err!("{cap} is not granted"))
        }
    }

    /// The time the guest's own code has run: the call so far, less its
    /// host calls and its pauses for other tasks.
    pub fn guest_time(&self) -> Duration {
        self.started
            .elapsed()
            .saturating_sub(self.host_time)
            .saturating_sub(Duration::from_nanos(self.waited.load(Ordering::Relaxed)))
    }

    /// Runs one host call under the host-call timeout, keeping its duration
    /// out of the guest's CPU budget.
    pub async fn timed<F, T>(&mut self, fut: F) -> Option<T>
    where
        F: Future<Output = T>,
    {
        let start = Instant::now();
        let out = tokio::time::timeout(self.limits.host_call_timeout, fut)
            .await
            .ok();
        self.host_time += start.elapsed();
        out
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.memory_bytes {
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.limits.table_elements)
    }
}

impl crate::bindings::types::Host for CallState {}
