//! A loaded plugin: its compiled component pre-instantiated for its world,
//! and the calls of that world, each under the sandbox limits.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use org_mesh_model::{self as model, Severity};
use wasmtime::component::Component;
use wasmtime::{Store, Trap, UpdateDeadline};

use crate::bindings::connector::exports::org_mesh::plugin::connector as wc;
use crate::bindings::detector::exports::org_mesh::plugin::detector as wd;
use crate::bindings::executor::exports::org_mesh::plugin::executor as we;
use crate::bindings::{connector, detector, executor, types};
use crate::cache::{self, CacheOutcome};
use crate::convert::{self, ApproxSize};
use crate::engine::{Runtime, Shared};
use crate::error::{CallError, Failure, LoadError};
use crate::host::{CallState, Grants};
use crate::manifest::{Capability, Kind, Manifest};
use crate::registry::PluginStats;

/// A rule a detector may emit.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    pub default_severity: Severity,
}

/// A plugin's checked account of itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub rules: Vec<RuleInfo>,
    pub actions: Vec<String>,
}

/// A file handed to a connector's sync.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub content: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct SyncOutput {
    pub batch: model::Batch,
    /// Records the host could not convert, each with the reason.
    pub skipped: Vec<String>,
    pub cursor: Option<String>,
    pub more: bool,
}

/// An HTTP request routed to a connector, already authenticated.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub method: String,
    /// Below the connector's route, with the query string.
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A connector's answer to a pushed request, and the records it yields.
#[derive(Debug, Clone)]
pub struct HandleOutput {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub batch: model::Batch,
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DetectOutput {
    pub findings: Vec<model::Finding>,
    /// Findings the host refused (unknown rule, bad evidence), with reasons.
    pub rejected: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub kind: String,
    pub target: model::NodeRef,
    pub parameters: model::Properties,
    pub idempotency_key: String,
}

/// One call of a plan, or one a plan's execution made. A planned URL may
/// leave parts open (see [`PlannedCall::covers`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlannedCall {
    pub method: String,
    pub url: String,
    pub body: Option<String>,
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActionPlan {
    pub calls: Vec<PlannedCall>,
    pub expected: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub changed: bool,
    pub calls: Vec<PlannedCall>,
    pub detail: String,
}

enum Pre {
    Connector(connector::ConnectorPluginPre<CallState>),
    Detector(detector::DetectorPluginPre<CallState>),
    Executor(executor::ExecutorPluginPre<CallState>),
}

struct Inner {
    manifest: Manifest,
    /// SHA-256 of the component, hex: tells two builds of one version
    /// apart.
    digest: String,
    description: Description,
    pre: Pre,
    shared: Arc<Shared>,
    stats: PluginStats,
    cache: CacheOutcome,
    imports: Vec<String>,
    exports: Vec<String>,
}

/// A loaded plugin bound to one instance configuration: its name (scoping its
/// key-value store and naming its records' source), its config and grants.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Inner>,
    instance: Arc<str>,
    config: Arc<str>,
    grants: Arc<Grants>,
    granted: BTreeSet<Capability>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.manifest.name)
            .field("version", &self.inner.manifest.version)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Loads the plugin a manifest describes: compiles (or takes from the
    /// cache) its component, checks its imports against the manifest,
    /// pre-instantiates it for its kind's world and runs its self-check.
    pub async fn load(&self, manifest: Manifest) -> Result<Plugin, LoadError> {
        let plugin = manifest.name.clone();
        let bytes = std::fs::read(&manifest.component).map_err(|error| LoadError::Read {
            path: manifest.component.clone(),
            error,
        })?;
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let shared = self.shared.clone();
        let compiled = tokio::task::spawn_blocking(move || {
            cache::compile(&shared.engine, shared.cache.as_ref(), &bytes)
        })
        .await
        .map_err(|e| LoadError::Compile {
            plugin: plugin.clone(),
            path: manifest.component.clone(),
            message: e.to_string(),
        })?;
        let (component, cache) = compiled.map_err(|e| LoadError::Compile {
            plugin: plugin.clone(),
            path: manifest.component.clone(),
            message: format!("{e:#}"),
        })?;

        check_contract(&self.shared.engine, &component, &manifest)?;
        let pre = self.pre_instantiate(&component, &manifest)?;
        check_imports(&self.shared.engine, &component, &manifest)?;
        let ty = component.component_type();
        let engine = &self.shared.engine;
        let imports = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
        let exports = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
        let stub = Inner {
            description: Description {
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                summary: String::new(),
                rules: Vec::new(),
                actions: Vec::new(),
            },
            manifest,
            digest,
            pre,
            shared: self.shared.clone(),
            stats: PluginStats::default(),
            cache,
            imports,
            exports,
        };
        let probe = Plugin::bind_inner(Arc::new(stub), "self-check", Grants::default());
        let description = probe
            .describe()
            .await
            .map_err(|e| self_check(&probe, e.to_string()))?;
        validate_description(&probe, &description)?;

        let Ok(mut inner) = Arc::try_unwrap(probe.inner) else {
            return Err(self_check_plain(
                &plugin,
                "self-check instance still in use",
            ));
        };
        inner.description = description;
        tracing::info!(
            plugin = %inner.manifest.name,
            version = %inner.manifest.version,
            kind = %inner.manifest.kind,
            cache = ?inner.cache,
            "Loaded plugin"
        );
        Ok(Plugin::bind_inner(
            Arc::new(inner),
            "unbound",
            Grants::default(),
        ))
    }

    fn pre_instantiate(
        &self,
        component: &Component,
        manifest: &Manifest,
    ) -> Result<Pre, LoadError> {
        // What the component does export tells a manifest with the wrong
        // `kind` from a component that is no plugin at all.
        let ty = component.component_type();
        let exported: Vec<&str> = ty
            .exports(&self.shared.engine)
            .map(|(name, _)| name)
            .filter(|name| name.starts_with("org-mesh:plugin/"))
            .collect();
        let wrong = |e: wasmtime::Error| LoadError::WrongWorld {
            plugin: manifest.name.clone(),
            kind: manifest.kind.to_string(),
            message: if exported.is_empty() {
                format!("{e:#}; it exports no org-mesh interface")
            } else {
                format!("{e:#}; it exports {}", exported.join(", "))
            },
        };
        let instance_pre = self
            .shared
            .linker
            .instantiate_pre(component)
            .map_err(wrong)?;
        Ok(match manifest.kind {
            Kind::Connector => {
                Pre::Connector(connector::ConnectorPluginPre::new(instance_pre).map_err(wrong)?)
            }
            Kind::Detector => {
                Pre::Detector(detector::DetectorPluginPre::new(instance_pre).map_err(wrong)?)
            }
            Kind::Executor => {
                Pre::Executor(executor::ExecutorPluginPre::new(instance_pre).map_err(wrong)?)
            }
        })
    }
}

/// The longest finding title the host takes.
const MAX_TITLE_BYTES: usize = 4096;
/// The longest finding key the host takes.
const MAX_KEY_BYTES: usize = 1024;

/// The version of the WIT package this host speaks.
pub const CONTRACT: &str = "0.2.0";

/// A component built against another version of the contract cannot be
/// linked; say so plainly rather than with a type mismatch.
fn check_contract(
    engine: &wasmtime::Engine,
    component: &Component,
    manifest: &Manifest,
) -> Result<(), LoadError> {
    let ty = component.component_type();
    let names = ty
        .imports(engine)
        .map(|(n, _)| n)
        .chain(ty.exports(engine).map(|(n, _)| n));
    for name in names {
        if let Some(rest) = name.strip_prefix("org-mesh:plugin/") {
            let found = rest.split_once('@').map(|(_, v)| v).unwrap_or("none");
            if found != CONTRACT {
                return Err(LoadError::Contract {
                    plugin: manifest.name.clone(),
                    found: found.to_string(),
                    expected: CONTRACT.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Every `org-mesh:plugin` interface the component imports must be one its
/// manifest asks for; anything else that is not WASI is refused.
fn check_imports(
    engine: &wasmtime::Engine,
    component: &Component,
    manifest: &Manifest,
) -> Result<(), LoadError> {
    for (name, _) in component.component_type().imports(engine) {
        if name.starts_with("wasi:") {
            continue;
        }
        match Capability::of_import(name) {
            Some(cap) if manifest.capabilities.contains(&cap) || cap == Capability::Log => {}
            Some(cap) => {
                return Err(LoadError::UndeclaredImport {
                    plugin: manifest.name.clone(),
                    import: name.to_string(),
                    capability: cap.to_string(),
                });
            }
            None if name.starts_with("org-mesh:plugin/types") => {}
            None => {
                return Err(LoadError::UnknownImport {
                    plugin: manifest.name.clone(),
                    import: name.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn self_check(p: &Plugin, problem: String) -> LoadError {
    LoadError::SelfCheck {
        plugin: p.name().to_string(),
        version: p.version().to_string(),
        problem,
    }
}

fn self_check_plain(plugin: &str, problem: &str) -> LoadError {
    LoadError::SelfCheck {
        plugin: plugin.to_string(),
        version: String::new(),
        problem: problem.to_string(),
    }
}

fn validate_description(p: &Plugin, d: &Description) -> Result<(), LoadError> {
    let m = &p.inner.manifest;
    if d.name != m.name || d.version != m.version {
        return Err(self_check(
            p,
            format!(
                "describe says {} {} but the manifest says {} {}",
                d.name, d.version, m.name, m.version
            ),
        ));
    }
    match m.kind {
        Kind::Detector if d.rules.is_empty() => {
            return Err(self_check(
                p,
                "a detector must describe at least one rule".into(),
            ));
        }
        Kind::Executor if d.actions.is_empty() => {
            return Err(self_check(
                p,
                "an executor must describe at least one action".into(),
            ));
        }
        _ => {}
    }
    let mut seen = BTreeSet::new();
    for rule in &d.rules {
        let ok = !rule.id.is_empty()
            && rule
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok || !seen.insert(rule.id.as_str()) {
            return Err(self_check(
                p,
                format!("rule id {:?} is malformed or repeated", rule.id),
            ));
        }
    }
    Ok(())
}

fn description_in(d: types::Description) -> Result<Description, String> {
    let rules = d
        .rules
        .into_iter()
        .map(|r| {
            let default_severity = r
                .default_severity
                .parse::<Severity>()
                .map_err(|e| format!("rule {}: {e}", r.id))?;
            Ok(RuleInfo {
                id: r.id,
                title: r.title,
                default_severity,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Description {
        name: d.name,
        version: d.version,
        summary: d.summary,
        rules,
        actions: d.actions,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn classify(error: &wasmtime::Error, state: &CallState) -> Failure {
    if let Some(cap) = state.ungranted {
        return Failure::Ungranted {
            capability: cap.to_string(),
        };
    }
    if state.memory_denied {
        return Failure::Memory {
            limit_bytes: state.limits.memory_bytes,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::CpuDeadline {
            limit_ms: millis(state.limits.cpu),
        },
        Some(Trap::StackOverflow) => Failure::StackOverflow,
        Some(trap) => Failure::Trap(with_last_words(trap.to_string(), state)),
        None => Failure::Trap(with_last_words(format!("{error:#}"), state)),
    }
}

/// A trap's message with what the plugin last wrote to standard error,
/// where a panic leaves its message and location.
fn with_last_words(trap: String, state: &CallState) -> String {
    match state.stderr.last_words() {
        Some(words) => format!("{trap}; it last wrote to stderr: {words}"),
        None => trap,
    }
}

impl Plugin {
    fn bind_inner(inner: Arc<Inner>, instance: &str, grants: Grants) -> Plugin {
        let granted = grants
            .allows()
            .intersection(&inner.manifest.capabilities)
            .copied()
            .chain([Capability::Log])
            .collect();
        Plugin {
            inner,
            instance: instance.into(),
            config: "{}".into(),
            grants: Arc::new(grants),
            granted,
        }
    }

    /// This plugin configured as the named instance. Every problem with the
    /// config or the grants is returned at once, each naming its field.
    pub fn bind(
        &self,
        instance: &str,
        config: &serde_json::Value,
        grants: Grants,
    ) -> Result<Plugin, Vec<String>> {
        let m = &self.inner.manifest;
        // An instance without `config` has no settings: an empty object,
        // so that a plugin whose settings all have defaults needs none.
        let empty = serde_json::Value::Object(serde_json::Map::new());
        let config = if config.is_null() { &empty } else { config };
        let mut problems = match &m.config_schema {
            Some(schema) => crate::config_schema::validate(schema, config),
            None if config.as_object().is_some_and(|o| o.is_empty()) => Vec::new(),
            None => vec!["config: this plugin takes no configuration".into()],
        };
        for name in grants.secrets.keys() {
            if !m.secrets.contains(name) {
                problems.push(format!(
                    "secrets.{name}: the manifest does not declare this secret"
                ));
            }
        }
        if !grants.http_hosts.is_empty() && !m.capabilities.contains(&Capability::Http) {
            problems.push("grants.http_hosts: the plugin does not ask for http".into());
        }
        if grants.private_networks && grants.http_hosts.is_empty() {
            // Alone it grants nothing; most likely the hosts were forgotten.
            problems.push("grants.private_networks: no http_hosts are granted".into());
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut bound = Plugin::bind_inner(self.inner.clone(), instance, grants);
        bound.config = config.to_string().into();
        Ok(bound)
    }

    /// What the manifest asks for that this instance's grants do not
    /// allow: a call that uses one fails.
    pub fn ungranted(&self) -> Vec<Capability> {
        self.inner
            .manifest
            .capabilities
            .iter()
            .filter(|c| !self.granted.contains(c))
            .copied()
            .collect()
    }

    pub fn name(&self) -> &str {
        &self.inner.manifest.name
    }

    /// SHA-256 of the plugin's component, in hex.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    pub fn version(&self) -> &str {
        &self.inner.manifest.version
    }

    pub fn kind(&self) -> Kind {
        self.inner.manifest.kind
    }

    /// Whether this detector may be given only what changed; see
    /// [`Manifest::incremental`].
    pub fn incremental(&self) -> bool {
        self.inner.manifest.incremental
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    pub fn description(&self) -> &Description {
        &self.inner.description
    }

    pub fn granted(&self) -> &BTreeSet<Capability> {
        &self.granted
    }

    pub fn stats(&self) -> &PluginStats {
        &self.inner.stats
    }

    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// The interfaces the component imports, as it names them, WASI
    /// included: what `org-mesh plugin inspect` shows and what the
    /// conformance suite compares with the manifest's capabilities.
    pub fn imports(&self) -> &[String] {
        &self.inner.imports
    }

    /// The interfaces the component exports.
    pub fn exports(&self) -> &[String] {
        &self.inner.exports
    }

    fn error(&self, function: &'static str, failure: Failure) -> CallError {
        CallError {
            plugin: self.name().to_string(),
            version: self.version().to_string(),
            function,
            failure,
        }
    }

    fn new_store(&self) -> Store<CallState> {
        let shared = &self.inner.shared;
        let limits = shared.options.limits;
        let state = CallState::new(
            self.name().into(),
            self.version().into(),
            self.instance.clone(),
            self.grants.clone(),
            self.granted.clone(),
            shared.services.clone(),
            limits,
        );
        let mut store = Store::new(&shared.engine, state);
        store.limiter(|s| s);
        // Guest code runs on an async thread, which it shares with request
        // handlers and other calls. It lets them run at every epoch tick,
        // instead of only when its CPU budget runs out: a whole-twin
        // detector call held its thread for hundreds of milliseconds, and
        // SCIM answers queued behind it. Time spent waiting for the thread
        // back is not the guest's, so it is kept out of the budget.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            let state = ctx.data();
            if state.guest_time() >= state.limits.cpu {
                return Ok(UpdateDeadline::Interrupt);
            }
            let waited = Arc::clone(&state.waited);
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(async move {
                    let paused = Instant::now();
                    tokio::task::yield_now().await;
                    let nanos = u64::try_from(paused.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    waited.fetch_add(nanos, std::sync::atomic::Ordering::Relaxed);
                }),
            ))
        });
        store
    }

    /// Runs one call in a fresh store and turns every way it can fail into a
    /// [`CallError`] naming this plugin.
    async fn call<R>(
        &self,
        function: &'static str,
        f: impl AsyncFnOnce(&mut Store<CallState>) -> wasmtime::Result<Result<R, types::PluginError>>,
    ) -> Result<R, CallError> {
        let stats = &self.inner.stats;
        let options = &self.inner.shared.options;
        if let Some(left) = stats.quarantine_left() {
            let failure = Failure::Quarantined {
                until_secs: left.as_secs(),
            };
            self.inner
                .shared
                .metrics
                .failure(self.name(), failure.reason());
            return Err(self.error(function, failure));
        }

        let _running = self.inner.shared.ticker.running();
        let started = Instant::now();
        let mut store = self.new_store();
        let limits = options.limits;
        let outcome = tokio::time::timeout(limits.call_timeout, f(&mut store)).await;
        let unplanned = store.data_mut().unplanned.take();
        let result = match outcome {
            // Whatever the plugin made of the refusal, a request outside the
            // approved plan fails the call.
            _ if unplanned.is_some() => Err(Failure::Unplanned {
                request: unplanned.unwrap_or_default(),
            }),
            Err(_) => Err(Failure::WallClock {
                limit_ms: millis(limits.call_timeout),
            }),
            Ok(Err(trap)) => Err(classify(&trap, store.data())),
            Ok(Ok(Err(plugin_error))) => {
                Err(Failure::Plugin(convert::plugin_error_in(plugin_error)))
            }
            Ok(Ok(Ok(value))) => Ok(value),
        };

        let metrics = &self.inner.shared.metrics;
        metrics.call(self.name(), function, started.elapsed());
        match result {
            Ok(value) => {
                stats.record_success();
                Ok(value)
            }
            Err(failure) => {
                metrics.failure(self.name(), failure.reason());
                let sandbox = !matches!(failure, Failure::Plugin(_));
                if let Some(backoff) = stats.record_failure(failure.reason(), sandbox, options) {
                    tracing::warn!(
                        plugin = self.name(),
                        version = self.version(),
                        backoff_secs = backoff.as_secs(),
                        "Plugin quarantined after repeated failures"
                    );
                }
                tracing::warn!(
                    plugin = self.name(),
                    version = self.version(),
                    function,
                    reason = failure.reason(),
                    "Plugin call failed: {failure}"
                );
                Err(self.error(function, failure))
            }
        }
    }

    fn check_size(&self, function: &'static str, size: u64) -> Result<(), CallError> {
        let limit = self.inner.shared.options.limits.output_bytes;
        if size > limit {
            let failure = Failure::OutputTooLarge { size, limit };
            self.inner
                .shared
                .metrics
                .failure(self.name(), failure.reason());
            self.inner
                .stats
                .record_failure(failure.reason(), true, &self.inner.shared.options);
            return Err(self.error(function, failure));
        }
        Ok(())
    }

    fn wrong_kind(&self, function: &'static str, wanted: Kind) -> CallError {
        self.error(
            function,
            Failure::Host(format!("it is a {}, not a {wanted}", self.kind())),
        )
    }

    /// The plugin's own description, checked.
    pub async fn describe(&self) -> Result<Description, CallError> {
        let raw = match &self.inner.pre {
            Pre::Connector(pre) => {
                self.call("describe", async |store| {
                    let p = pre.instantiate_async(&mut *store).await?;
                    Ok(Ok(p
                        .org_mesh_plugin_connector()
                        .call_describe(&mut *store)
                        .await?))
                })
                .await?
            }
            Pre::Detector(pre) => {
                self.call("describe", async |store| {
                    let p = pre.instantiate_async(&mut *store).await?;
                    Ok(Ok(p
                        .org_mesh_plugin_detector()
                        .call_describe(&mut *store)
                        .await?))
                })
                .await?
            }
            Pre::Executor(pre) => {
                self.call("describe", async |store| {
                    let p = pre.instantiate_async(&mut *store).await?;
                    Ok(Ok(p
                        .org_mesh_plugin_executor()
                        .call_describe(&mut *store)
                        .await?))
                })
                .await?
            }
        };
        description_in(raw).map_err(|e| self.error("describe", Failure::InvalidOutput(e)))
    }

    /// Pulls one chunk from a connector.
    pub async fn sync(
        &self,
        cursor: Option<String>,
        attachments: &[Attachment],
    ) -> Result<SyncOutput, CallError> {
        let Pre::Connector(pre) = &self.inner.pre else {
            return Err(self.wrong_kind("sync", Kind::Connector));
        };
        let req = wc::SyncRequest {
            config: self.config.to_string(),
            cursor,
            attachments: attachments
                .iter()
                .map(|a| wc::Attachment {
                    name: a.name.clone(),
                    content: a.content.clone(),
                })
                .collect(),
        };
        let resp = self
            .call("sync", async |store| {
                let p = pre.instantiate_async(&mut *store).await?;
                p.org_mesh_plugin_connector()
                    .call_sync(&mut *store, &req)
                    .await
            })
            .await?;
        let (batch, skipped) = convert::batch_in(resp.batch);
        self.check_size("sync", batch.approx_size())?;
        Ok(SyncOutput {
            batch,
            skipped,
            cursor: resp.cursor,
            more: resp.more,
        })
    }

    /// Hands a pushed request (a webhook delivery, a SCIM change) to a
    /// connector.
    pub async fn handle(&self, request: &Incoming) -> Result<HandleOutput, CallError> {
        let Pre::Connector(pre) = &self.inner.pre else {
            return Err(self.wrong_kind("handle", Kind::Connector));
        };
        let req = wc::IncomingRequest {
            config: self.config.to_string(),
            method: request.method.clone(),
            path: request.path.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
        };
        let resp = self
            .call("handle", async |store| {
                let p = pre.instantiate_async(&mut *store).await?;
                p.org_mesh_plugin_connector()
                    .call_handle(&mut *store, &req)
                    .await
            })
            .await?;
        let (batch, skipped) = convert::batch_in(resp.batch);
        let size = batch.approx_size() + resp.response.body.len() as u64;
        self.check_size("handle", size)?;
        Ok(HandleOutput {
            status: resp.response.status,
            headers: resp.response.headers,
            body: resp.response.body,
            batch,
            skipped,
        })
    }

    /// Asks a detector for findings over a change set.
    pub async fn detect(
        &self,
        full: bool,
        changes: &model::ChangeSet,
    ) -> Result<DetectOutput, CallError> {
        let Pre::Detector(pre) = &self.inner.pre else {
            return Err(self.wrong_kind("detect", Kind::Detector));
        };
        let req = wd::DetectRequest {
            config: self.config.to_string(),
            full,
            nodes: changes
                .nodes
                .iter()
                .map(|c| wd::NodeChange {
                    node: types::Node {
                        label: c.node.node.label.clone(),
                        key: c.node.node.key.clone(),
                        properties: convert::properties_out(&c.node.node.properties),
                    },
                    kind: convert::change_kind_out(c.kind),
                    provenance: convert::provenance_out(&c.node.provenance),
                })
                .collect(),
            edges: changes
                .edges
                .iter()
                .map(|c| wd::EdgeChange {
                    edge: types::Edge {
                        kind: c.edge.edge.kind.clone(),
                        from: convert::node_ref_out(&c.edge.edge.from),
                        to: convert::node_ref_out(&c.edge.edge.to),
                        properties: convert::properties_out(&c.edge.edge.properties),
                    },
                    kind: convert::change_kind_out(c.kind),
                    provenance: convert::provenance_out(&c.edge.provenance),
                })
                .collect(),
        };
        let raw = self
            .call("detect", async |store| {
                let p = pre.instantiate_async(&mut *store).await?;
                p.org_mesh_plugin_detector()
                    .call_detect(&mut *store, &req)
                    .await
            })
            .await?;

        let mut out = DetectOutput {
            findings: Vec::new(),
            rejected: Vec::new(),
        };
        for f in raw {
            match self.finding_in(f) {
                Ok(finding) => out.findings.push(finding),
                Err(e) => out.rejected.push(e),
            }
        }
        let size = out.findings.iter().map(ApproxSize::approx_size).sum();
        self.check_size("detect", size)?;
        Ok(out)
    }

    fn finding_in(&self, f: wd::Finding) -> Result<model::Finding, String> {
        let Some(rule) = self.description().rules.iter().find(|r| r.id == f.rule) else {
            return Err(format!("finding with undescribed rule {:?}", f.rule));
        };
        // A title or key is a line in lists, logs and the console; past
        // these sizes it is a plugin bug, and every read of the findings
        // would carry it.
        for (field, value, limit) in [
            ("title", &f.title, MAX_TITLE_BYTES),
            ("key", &f.key, MAX_KEY_BYTES),
        ] {
            if value.len() > limit {
                return Err(format!(
                    "rule {}: a {field} of {} bytes is over the limit of {limit}",
                    f.rule,
                    value.len()
                ));
            }
        }
        if !(0.0..=1.0).contains(&f.score) {
            return Err(format!(
                "rule {}: score {} is outside 0..1",
                f.rule, f.score
            ));
        }
        let subject = convert::node_ref_in(f.subject);
        let evidence = f
            .evidence
            .into_iter()
            .map(|e| {
                Ok(model::Evidence {
                    statement: e.statement,
                    subject: convert::node_ref_in(e.subject),
                    provenance: convert::provenance_in(e.provenance)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| format!("rule {}: evidence: {e}", f.rule))?;
        let remedy = f
            .remedy
            .map(|r| {
                Ok::<_, String>(model::Remedy {
                    action: r.action,
                    target: convert::node_ref_in(r.target),
                    parameters: convert::properties_in(r.parameters)?,
                })
            })
            .transpose()
            .map_err(|e| format!("rule {}: remedy: {e}", f.rule))?;
        Ok(model::Finding {
            detector: self.name().to_string(),
            fingerprint: model::fingerprint(&f.rule, &subject, &f.key),
            default_severity: rule.default_severity,
            attributes: convert::properties_in(f.attributes)
                .map_err(|e| format!("rule {}: attributes: {e}", f.rule))?,
            rule: f.rule,
            subject,
            key: f.key,
            title: f.title,
            score: f.score,
            evidence,
            remedy,
        })
    }

    fn action_out(&self, action: &ActionRequest) -> we::ActionRequest {
        we::ActionRequest {
            config: self.config.to_string(),
            action: we::Action {
                kind: action.kind.clone(),
                target: convert::node_ref_out(&action.target),
                parameters: convert::properties_out(&action.parameters),
                idempotency_key: action.idempotency_key.clone(),
            },
        }
    }

    /// An executor's dry run.
    pub async fn plan(&self, action: &ActionRequest) -> Result<ActionPlan, CallError> {
        let Pre::Executor(pre) = &self.inner.pre else {
            return Err(self.wrong_kind("plan", Kind::Executor));
        };
        let req = self.action_out(action);
        let plan = self
            .call("plan", async |store| {
                let p = pre.instantiate_async(&mut *store).await?;
                p.org_mesh_plugin_executor()
                    .call_plan(&mut *store, &req)
                    .await
            })
            .await?;
        Ok(ActionPlan {
            calls: plan.calls.into_iter().map(planned_call_in).collect(),
            expected: plan.expected,
        })
    }

    /// Carries an action out through an executor, with no plan to hold it
    /// to: for checks that feed an executor inputs nobody planned or
    /// approved (the conformance suite's malformed and oversized actions),
    /// and for tests. `serve` runs fixes with [`Plugin::execute_within`].
    pub async fn execute(&self, action: &ActionRequest) -> Result<Outcome, CallError> {
        self.execute_inner(action, None).await
    }

    /// Carries out an action whose plan was approved. Every request that
    /// could change something (any method but GET and HEAD) must be one
    /// of the plan's calls (see [`PlannedCall::covers`]); any other is not
    /// sent, and the call fails with [`Failure::Unplanned`] however the
    /// executor takes the refusal. What was approved is the most that runs,
    /// even if the executor changed since it made the plan.
    pub async fn execute_within(
        &self,
        action: &ActionRequest,
        plan: &ActionPlan,
    ) -> Result<Outcome, CallError> {
        self.execute_inner(action, Some(plan.calls.clone().into()))
            .await
    }

    async fn execute_inner(
        &self,
        action: &ActionRequest,
        approved: Option<Arc<[PlannedCall]>>,
    ) -> Result<Outcome, CallError> {
        let Pre::Executor(pre) = &self.inner.pre else {
            return Err(self.wrong_kind("execute", Kind::Executor));
        };
        let req = self.action_out(action);
        let outcome = self
            .call("execute", async |store| {
                store.data_mut().approved = approved;
                let p = pre.instantiate_async(&mut *store).await?;
                p.org_mesh_plugin_executor()
                    .call_execute(&mut *store, &req)
                    .await
            })
            .await?;
        Ok(Outcome {
            changed: outcome.changed,
            calls: outcome.calls.into_iter().map(planned_call_in).collect(),
            detail: outcome.detail,
        })
    }
}

fn planned_call_in(c: we::PlannedCall) -> PlannedCall {
    PlannedCall {
        method: c.method,
        url: c.url,
        body: c.body,
        effect: c.effect,
    }
}
