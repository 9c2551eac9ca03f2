//! One pass of the main job: sync every connector into the twin, resolve
//! identities, detect, ask policy, plan fixes, and collect a report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;
use org_mesh_model::{
    ChangeKind, ChangeSet, Direction, Finding, NodeChange, NodeRef, Remedy, Severity, StoredEdge,
    StoredNode,
};
use org_mesh_policy::{Decision, DecisionInput, PolicySet};
use org_mesh_runtime::{
    ActionPlan, ActionRequest, Attachment, DetectOutput, GraphReader, Kind, Plugin, Registry,
    Runtime, RuntimeOptions,
};
use org_mesh_store::{EmbeddedStore, ExplicitMapping, GraphStore};
use serde::Serialize;

use crate::config::{Backend, Config, Instance};

/// How many times a connector may ask to be called again in one scan, so a
/// connector whose cursor never ends cannot hold the scan for ever.
const MAX_SYNC_ROUNDS: usize = 1000;

/// The twin as the runtime's graph import sees it.
#[derive(Debug)]
pub struct StoreGraph(pub Arc<dyn GraphStore>);

#[async_trait::async_trait]
impl GraphReader for StoreGraph {
    async fn node(&self, node: &NodeRef) -> Result<Option<StoredNode>, String> {
        self.0.node(node).await.map_err(|e| e.to_string())
    }

    async fn neighbours(
        &self,
        node: &NodeRef,
        kind: &str,
        dir: Direction,
    ) -> Result<Vec<(StoredEdge, StoredNode)>, String> {
        self.0
            .neighbours(node, kind, dir)
            .await
            .map_err(|e| e.to_string())
    }
}

#[derive(Debug, Default, Serialize)]
pub struct ConnectorRun {
    pub name: String,
    pub plugin: String,
    pub version: String,
    pub nodes: usize,
    pub edges: usize,
    pub added: usize,
    pub updated: usize,
    pub not_observed: usize,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProposedAction {
    pub executor: String,
    pub kind: String,
    pub target: NodeRef,
    pub parameters: serde_json::Value,
    /// The dry run: the exact calls the executor would make.
    pub plan: Option<ActionPlan>,
    /// Why there is no plan, when there is none.
    pub unplanned: Option<String>,
    /// What the approval policy says of running the fix now, as a
    /// proposal of it would be told; `None` without a plan or policies.
    pub approval: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecisionView {
    /// The version of the policy folder that made the decision.
    pub policy_version: String,
    pub severity: Option<Severity>,
    pub suppressed: Option<bool>,
    pub suppress_reason: Option<String>,
    pub auto_fix: Option<bool>,
    /// The decisions policy left undefined; an undefined decision never
    /// lets a fix run.
    pub undefined: Vec<&'static str>,
    pub may_act: bool,
}

#[derive(Debug, Clone)]
pub struct Reported {
    pub finding: Finding,
    /// The severity that counts: policy's, or the rule's default where
    /// policy said nothing.
    pub severity: Severity,
    pub decision: Option<DecisionView>,
    pub action: Option<ProposedAction>,
    /// The detector instance that raised the finding.
    pub instance: String,
    /// The version of the detector that raised the finding.
    pub detector_version: String,
}

impl Reported {
    pub fn suppressed(&self) -> bool {
        self.decision
            .as_ref()
            .and_then(|d| d.suppressed)
            .unwrap_or(false)
    }
}

#[derive(Debug, Default)]
pub struct ScanReport {
    pub connectors: Vec<ConnectorRun>,
    pub detectors: Vec<String>,
    pub findings: Vec<Reported>,
    /// What was left out of the scan and why: plugins, policies, records.
    pub skipped: Vec<String>,
}

/// The plugin instances in service, by kind: one generation, replaced
/// whole when plugins are reloaded, so a call holds the instances it
/// started with.
#[derive(Debug, Clone, Default)]
pub(crate) struct Instances {
    /// Each connector with its attachments and whether it is pulled.
    pub(crate) connectors: Vec<(Plugin, Vec<Attachment>, bool)>,
    pub(crate) detectors: Vec<Plugin>,
    pub(crate) executors: Vec<Plugin>,
}

/// The policy set in service and the version of the folder it came from.
/// One evaluation decides every finding with one of these.
#[derive(Debug)]
pub struct Policies {
    pub set: Option<PolicySet>,
    /// The content hash of the policy folder the set was loaded from.
    pub version: String,
}

/// Reports what a scan is doing, for a progress display.
pub trait Progress {
    fn step(&self, what: &str);
}

/// The twin with everything that works on it: the store, the loaded and
/// configured plugins, the policies and the identity mappings. `org-mesh
/// scan` opens one for a single pass; `org-mesh serve` keeps one running.
pub struct Twin {
    pub store: Arc<dyn GraphStore>,
    pub metrics: prometheus::Registry,
    /// Time policy takes to decide on one finding.
    policy_latency: prometheus::Histogram,
    /// Loads new versions of plugins on reload.
    pub(crate) runtime: Runtime,
    /// What the instances and the policy folder are configured as.
    pub(crate) config: Config,
    pub(crate) instances: std::sync::RwLock<Arc<Instances>>,
    pub(crate) policy: std::sync::RwLock<Arc<Policies>>,
    /// A candidate policy version deciding beside the serving one before
    /// it may be promoted.
    pub(crate) shadow: std::sync::RwLock<Option<Arc<crate::reload::Shadow>>>,
    /// `None` when the mappings file could not be read: identities are then
    /// left as they are rather than resolved without it, which would drop
    /// every explicit link.
    identities: Option<tokio::sync::Mutex<org_mesh_store::Resolver>>,
    /// What could not be loaded or configured, and why.
    pub skipped: Vec<String>,
    /// Where each pulled connector resumes: the cursor its last sync
    /// returned, shared by replicas.
    cursors: Arc<dyn org_mesh_cache::Coordination>,
}

impl std::fmt::Debug for Twin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twin")
            .field("store", &self.store)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

/// What one round of detection found, decided and planned.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// The version of the policy folder every decision came from.
    pub policy_version: Option<String>,
    pub detectors: Vec<String>,
    /// Each detector whose findings are all here, with its version: one
    /// that failed this round is missing.
    pub detected_by: BTreeMap<String, String>,
    /// The detectors that were given only what changed this round.
    pub incremental: Vec<String>,
    /// Each detector that failed this round, with why. Where the round
    /// followed an earlier one, that detector's earlier findings are
    /// carried into this one: a detector that fails has not found them
    /// fixed.
    pub failed: BTreeMap<String, String>,
    pub findings: Vec<Reported>,
    pub skipped: Vec<String>,
}

impl Twin {
    /// Opens the store, loads every plugin folder, binds the configured
    /// instances, and loads policies and identity mappings. Broken plugins
    /// and policies are listed in `skipped`; only an unusable store or
    /// plugin folder is an error.
    pub async fn open(
        config: &Config,
        coordination: Arc<dyn org_mesh_cache::Coordination>,
        progress: &dyn Progress,
    ) -> anyhow::Result<Twin> {
        let mut report = ScanReport::default();
        progress.step("opening the twin");
        let store_path = config.store_path();
        let store: Arc<dyn GraphStore> = match (&config.graph.backend, &config.graph.neo4j) {
            (Backend::Neo4j, Some(neo4j)) => {
                let password = match &neo4j.password {
                    Some(source) => source
                        .read()
                        .map_err(|e| anyhow::anyhow!("graph.neo4j.password: {e}"))?,
                    None => String::new(),
                };
                let options = org_mesh_store::Neo4jOptions {
                    user: neo4j.user.clone(),
                    password,
                    database: neo4j.database.clone(),
                    query_timeout: std::time::Duration::from_secs(neo4j.timeout_secs),
                    ..org_mesh_store::Neo4jOptions::local(neo4j.uri.clone())
                };
                Arc::new(
                    org_mesh_store::Neo4jStore::connect(options)
                        .await
                        .with_context(|| format!("connecting to Neo4j at {}", neo4j.uri))?,
                )
            }
            _ => Arc::new(
                EmbeddedStore::open_with_cache(&store_path, config.store_cache_bytes())
                    .await
                    .with_context(|| format!("opening the twin at {}", store_path.display()))?,
            ),
        };

        progress.step("loading plugins");
        let metrics = prometheus::Registry::new();
        let runtime = Runtime::new(
            RuntimeOptions {
                limits: config.limits(),
                cache_dir: Some(config.plugin_cache_dir()),
                ..RuntimeOptions::default()
            },
            coordination.clone(),
            Some(Arc::new(StoreGraph(store.clone()))),
            &metrics,
        )
        .context("starting the plugin runtime")?;
        let mut plugins = BTreeMap::new();
        let mut unused = Vec::new();
        let wanted = config.plugin_names();
        for dir in &config.plugins.dirs {
            let loaded = Registry::load_dir_where(&runtime, dir, |name| wanted.contains(name))
                .await
                .with_context(|| format!("reading the plugin folder {}", dir.display()))?;
            report
                .skipped
                .extend(loaded.failed.iter().map(|e| e.to_string()));
            plugins.extend(loaded.plugins);
            unused.extend(loaded.unused);
        }
        let instances = bind_all(config, &plugins, &unused, &mut report.skipped);
        let policy = load_policy(config, &mut report);
        let mappings = load_mappings(config, &mut report);
        let policy_latency = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "org_mesh_policy_evaluation_duration_seconds",
                "Time policy takes to decide on one finding",
            )
            .buckets(vec![1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2]),
        )
        .context("creating the policy latency metric")?;
        metrics
            .register(Box::new(policy_latency.clone()))
            .context("registering the policy latency metric")?;
        Ok(Twin {
            store,
            metrics,
            policy_latency,
            runtime,
            config: config.clone(),
            instances: std::sync::RwLock::new(Arc::new(instances)),
            policy: std::sync::RwLock::new(Arc::new(policy)),
            shadow: std::sync::RwLock::new(None),
            identities: mappings.map(|m| tokio::sync::Mutex::new(org_mesh_store::Resolver::new(m))),
            skipped: report.skipped,
            cursors: coordination,
        })
    }

    /// Every configured plugin instance, as `(kind, name)`, with whether
    /// a plugin serves it now: one left out at start, and not loaded by a
    /// reload since, is not.
    pub fn instances_loaded(&self) -> Vec<(&'static str, String, bool)> {
        let instances = self.instances();
        let connectors: Vec<&Plugin> = instances.connectors.iter().map(|(p, _, _)| p).collect();
        let detectors: Vec<&Plugin> = instances.detectors.iter().collect();
        let executors: Vec<&Plugin> = instances.executors.iter().collect();
        let configured = [
            ("connector", &self.config.connectors, &connectors),
            ("detector", &self.config.detectors, &detectors),
            ("executor", &self.config.executors, &executors),
        ];
        let mut out = Vec::new();
        for (kind, list, loaded) in configured {
            for instance in list {
                let serving = loaded.iter().any(|p| p.instance() == instance.name);
                out.push((kind, instance.name.clone(), serving));
            }
        }
        out
    }

    /// The plugin instances in service now. A caller keeps the generation
    /// it took for the whole of its work, even if a reload replaces it.
    pub(crate) fn instances(&self) -> Arc<Instances> {
        match self.instances.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The policy set in service now, with its version.
    pub fn policy(&self) -> Arc<Policies> {
        match self.policy.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The configured connector named `name`, as it is now.
    pub fn connector(&self, name: &str) -> Option<Plugin> {
        self.instances()
            .connectors
            .iter()
            .map(|(p, _, _)| p)
            .find(|p| p.instance() == name)
            .cloned()
    }

    /// The instance name of the connector at `index` and whether it is
    /// pulled; `None` past the last one.
    pub fn connector_at(&self, index: usize) -> Option<(String, bool)> {
        self.instances()
            .connectors
            .get(index)
            .map(|(p, _, pulled)| (p.instance().to_string(), *pulled))
    }

    /// Every plugin instance in service: connectors, detectors, executors.
    pub fn plugins(&self) -> Vec<Plugin> {
        let instances = self.instances();
        instances
            .connectors
            .iter()
            .map(|(p, _, _)| p.clone())
            .chain(instances.detectors.iter().cloned())
            .chain(instances.executors.iter().cloned())
            .collect()
    }

    /// Syncs one connector into the twin; `Some(None)` for a connector that
    /// is only pushed to, `None` past the last one.
    pub async fn sync(
        &self,
        index: usize,
        skipped: &mut Vec<String>,
    ) -> Option<Option<ConnectorRun>> {
        let instances = self.instances();
        let (connector, attachments, pulled) = instances.connectors.get(index)?;
        if !pulled {
            return Some(None);
        }
        Some(Some(
            sync(
                connector,
                attachments,
                self.store.as_ref(),
                self.cursors.as_ref(),
                skipped,
            )
            .await,
        ))
    }

    /// Applies a batch `source` observed at `at`, then re-resolves
    /// identities if an account changed.
    pub async fn ingest(
        &self,
        source: &str,
        at: org_mesh_model::Timestamp,
        batch: org_mesh_model::Batch,
    ) -> anyhow::Result<org_mesh_store::Applied> {
        let mut applied = self.apply(source, at, batch).await?;
        let identity = self.resolve_after(&applied.changes).await?;
        applied.changes.extend(identity.changes);
        applied.skipped.extend(identity.skipped);
        Ok(applied)
    }

    /// Applies a batch `source` observed at `at`, leaving identities as
    /// they are: for a caller that applies several batches and then calls
    /// [`Twin::resolve_after`] once for all of them.
    pub async fn apply(
        &self,
        source: &str,
        at: org_mesh_model::Timestamp,
        batch: org_mesh_model::Batch,
    ) -> anyhow::Result<org_mesh_store::Applied> {
        self.store
            .apply(source, at, batch)
            .await
            .with_context(|| format!("applying records from {source}"))
    }

    /// Re-resolves identities after `changes`: from the changed accounts
    /// alone when the resolver keeps its index, and not at all when no
    /// account changed, since resolution reads nothing else that changes.
    pub async fn resolve_after(
        &self,
        changes: &ChangeSet,
    ) -> anyhow::Result<org_mesh_store::Applied> {
        let Some(identities) = &self.identities else {
            return Ok(org_mesh_store::Applied::default());
        };
        identities
            .lock()
            .await
            .resolve_changes(self.store.as_ref(), changes, now())
            .await
            .context("resolving identities")
    }

    /// Re-resolves every identity from a full read of the twin.
    pub async fn resolve_identities(&self) -> anyhow::Result<org_mesh_store::Applied> {
        let Some(identities) = &self.identities else {
            return Ok(org_mesh_store::Applied::default());
        };
        identities
            .lock()
            .await
            .resolve(self.store.as_ref(), now())
            .await
            .context("resolving identities")
    }

    /// Makes later resolutions find what changed from the changed accounts
    /// alone, keeping an index of every account's identity properties in
    /// memory. Only for a process that is the twin's only writer: another
    /// writer's account changes would never reach the index.
    pub async fn keep_identity_index(&self) {
        if let Some(identities) = &self.identities {
            identities.lock().await.keep();
        }
    }

    /// Runs every detector over the whole twin, asks policy about each
    /// finding and plans a dry run of each proposed fix.
    pub async fn evaluate(&self) -> anyhow::Result<Evaluation> {
        self.evaluate_from(None, None).await
    }

    /// Evaluates the whole twin again after `previous`. The same as
    /// [`Twin::evaluate`], except that a detector that fails keeps the
    /// findings it had in `previous`, decided again by the current
    /// policies, instead of losing them until it runs again.
    pub async fn evaluate_after(&self, previous: &Evaluation) -> anyhow::Result<Evaluation> {
        self.evaluate_from(Some(previous), None).await
    }

    /// Evaluates again after `changes` were made to the twin that
    /// `previous` was evaluated on. Incremental detectors are given only
    /// what changed; an earlier finding of theirs that names none of it,
    /// and whose subject they raised nothing about this time, is kept with
    /// the decision and plan it had. Every other detector sees the whole
    /// twin. Falls back to a whole-twin evaluation when the
    /// policies or a detector changed since `previous`, or when a detector
    /// fails on the changes alone. A detector that fails on the whole
    /// twin too keeps its findings from `previous`, as
    /// [`Twin::evaluate_after`] does.
    ///
    /// `changes` must hold every change since `previous`: a change left
    /// out is not seen by incremental detectors until the next whole-twin
    /// evaluation.
    pub async fn evaluate_changes(
        &self,
        previous: &Evaluation,
        changes: &ChangeSet,
    ) -> anyhow::Result<Evaluation> {
        self.evaluate_from(Some(previous), Some(changes)).await
    }

    async fn evaluate_from(
        &self,
        before: Option<&Evaluation>,
        changes: Option<&ChangeSet>,
    ) -> anyhow::Result<Evaluation> {
        let since = before.zip(changes);
        let mut out = Evaluation::default();
        // One generation of plugins and one policy set for the whole
        // evaluation, whatever a reload does meanwhile.
        let instances = self.instances();
        let policies = self.policy();
        let shadow = self.shadowing();
        out.policy_version = Some(policies.version.clone());
        // Earlier decisions are kept only if the same policies made them.
        let since = since.filter(|(previous, _)| {
            previous.policy_version.as_deref() == Some(policies.version.as_str())
        });
        let changed = since.map(|(_, c)| Changed::new(c)).unwrap_or_default();
        let mut snapshot: Option<ChangeSet> = None;
        let mut found: BTreeMap<String, Found> = BTreeMap::new();
        for detector in &instances.detectors {
            let instance = detector.instance().to_string();
            let version = plugin_version(detector);
            out.detectors.push(instance.clone());
            let previous = since.map(|(previous, _)| previous).filter(|p| {
                detector.incremental() && p.detected_by.get(&instance) == Some(&version)
            });
            let mut result = None;
            if let Some(previous) = previous {
                let attempt = if changed.set.nodes.is_empty() && changed.set.edges.is_empty() {
                    Ok(DetectOutput::default())
                } else {
                    detector.detect(false, &changed.set).await
                };
                match attempt {
                    Ok(output) => {
                        // An earlier finding stands unless it was raised
                        // again, rests on something that changed, or is
                        // about a subject the detector has just decided on
                        // afresh.
                        let reraised: BTreeSet<&str> = output
                            .findings
                            .iter()
                            .map(|f| f.fingerprint.as_str())
                            .collect();
                        let decided: BTreeSet<&NodeRef> =
                            output.findings.iter().map(|f| &f.subject).collect();
                        for earlier in previous.findings.iter().filter(|r| {
                            r.instance == instance
                                && !reraised.contains(r.finding.fingerprint.as_str())
                                && !decided.contains(&r.finding.subject)
                                && !changed.named_by(&r.finding)
                        }) {
                            found
                                .entry(earlier.finding.fingerprint.clone())
                                .or_insert_with(|| Found::Kept(Box::new(earlier.clone())));
                        }
                        out.incremental.push(instance.clone());
                        result = Some(output);
                    }
                    Err(e) => tracing::warn!(
                        detector = %instance,
                        error = %e,
                        "The detector failed on the changes alone; giving it the whole twin"
                    ),
                }
            }
            let result = match result {
                Some(output) => Ok(output),
                None if detector.incremental() => self.detect_in_pages(detector).await,
                None => {
                    let whole = match snapshot.take() {
                        Some(whole) => whole,
                        None => self.store.snapshot().await.context("reading the twin")?,
                    };
                    let output = detector.detect(true, &whole).await;
                    snapshot = Some(whole);
                    output.map_err(|e| e.to_string())
                }
            };
            match result {
                Ok(output) => {
                    // Only these findings are left out, not the detector;
                    // a few name the fault, the rest are counted.
                    out.skipped.extend(
                        output
                            .rejected
                            .iter()
                            .take(REFUSALS_NAMED)
                            .map(|r| format!("detector {instance}: a finding was refused: {r}")),
                    );
                    if let Some(more) = output.rejected.len().checked_sub(REFUSALS_NAMED)
                        && more > 0
                    {
                        out.skipped.push(format!(
                            "detector {instance}: {more} more findings were refused"
                        ));
                    }
                    for f in output.findings {
                        found.entry(f.fingerprint.clone()).or_insert(Found::Raised {
                            finding: Box::new(f),
                            instance: instance.clone(),
                            version: version.clone(),
                        });
                    }
                    out.detected_by.insert(instance, version);
                }
                Err(e) => {
                    out.skipped.push(format!("detector {instance}: {e}"));
                    // Decided again below, since the policies may have
                    // changed since; the detector version stays the one
                    // that raised them.
                    for earlier in before
                        .iter()
                        .flat_map(|b| &b.findings)
                        .filter(|r| r.instance == instance)
                    {
                        found
                            .entry(earlier.finding.fingerprint.clone())
                            .or_insert_with(|| Found::Raised {
                                finding: Box::new(earlier.finding.clone()),
                                instance: instance.clone(),
                                version: earlier.detector_version.clone(),
                            });
                    }
                    out.failed.insert(instance, e);
                }
            }
        }

        let at = now();
        for entry in found.into_values() {
            let (finding, instance, detector_version) = match entry {
                Found::Kept(reported) => {
                    out.findings.push(*reported);
                    continue;
                }
                Found::Raised {
                    finding,
                    instance,
                    version,
                } => (*finding, instance, version),
            };
            let timer = self.policy_latency.start_timer();
            let input = DecisionInput::from_finding(&finding, at);
            let decided = policies.set.as_ref().map(|p| p.decide(&input));
            timer.observe_duration();
            if let Some(shadow) = &shadow {
                shadow.compare(&input, decided.as_ref().and_then(|d| d.as_ref().ok()));
            }
            let decision = match decided {
                Some(result) => match result {
                    Ok(d) => Some(d),
                    Err(e) => {
                        out.skipped
                            .push(format!("policy on {}: {e}", finding.fingerprint));
                        None
                    }
                },
                None => None,
            };
            let action = match &finding.remedy {
                Some(remedy) => Some(plan(&finding, remedy, &instances.executors).await),
                None => None,
            };
            let mut reported = Reported {
                severity: decision
                    .as_ref()
                    .map(|d| d.effective_severity(finding.default_severity))
                    .unwrap_or(finding.default_severity),
                decision: decision.as_ref().map(|d| view(d, &policies.version)),
                action,
                instance,
                detector_version,
                finding,
            };
            if let Some(set) = &policies.set {
                reported.action = reported.action.take().map(|mut action| {
                    action.approval = approval_now(set, &action, &reported, at);
                    action
                });
            }
            out.findings.push(reported);
        }
        out.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.finding.rule.cmp(&b.finding.rule))
                .then_with(|| a.finding.subject.cmp(&b.finding.subject))
        });
        Ok(out)
    }
}

impl Twin {
    /// A whole-twin scan for an incremental detector: a page of nodes per
    /// call, each marked as part of a full scan, and no edges, since such
    /// a detector reads what it needs beyond its nodes through the graph.
    /// Neither the host nor the plugin then holds the whole twin at once,
    /// which a single call cannot do for a large organisation within a
    /// plugin's memory cap.
    async fn detect_in_pages(&self, detector: &Plugin) -> Result<DetectOutput, String> {
        let labels = self
            .store
            .counts()
            .await
            .map_err(|e| format!("reading the twin: {e}"))?;
        let mut out = DetectOutput::default();
        for label in labels.keys() {
            let mut pages = org_mesh_store::NodePages::new(label, DETECT_PAGE);
            while let Some(page) = pages
                .next(self.store.as_ref())
                .await
                .map_err(|e| format!("reading the twin: {e}"))?
            {
                let nodes = page
                    .into_iter()
                    .map(|node| NodeChange {
                        kind: if node.provenance.observed() {
                            ChangeKind::Unchanged
                        } else {
                            ChangeKind::NotObserved
                        },
                        node,
                    })
                    .collect();
                let part = ChangeSet {
                    nodes,
                    edges: Vec::new(),
                };
                let found = detector
                    .detect(true, &part)
                    .await
                    .map_err(|e| e.to_string())?;
                out.findings.extend(found.findings);
                out.rejected.extend(found.rejected);
            }
        }
        Ok(out)
    }
}

/// How many nodes one call of a paged whole-twin scan carries: small
/// enough that a page and what the detector reads for it stay far inside a
/// plugin's memory and time limits, large enough that the cost of a call
/// is spread over many nodes.
const DETECT_PAGE: usize = 1000;

/// How many refused findings of one detector are named in a round.
const REFUSALS_NAMED: usize = 5;

/// A finding of this round: raised by a detector now (or carried from the
/// previous round for a detector that failed, to be decided again), or
/// kept from the previous round because nothing it names changed.
enum Found {
    Raised {
        finding: Box<Finding>,
        instance: String,
        version: String,
    },
    Kept(Box<Reported>),
}

/// What changed since the previous evaluation, as incremental detectors
/// are given it: only records added, updated or no longer observed, each
/// once as it was last applied.
#[derive(Debug, Default)]
struct Changed {
    set: ChangeSet,
    /// The changed nodes and both ends of the changed edges.
    touched: BTreeSet<NodeRef>,
}

impl Changed {
    fn new(changes: &ChangeSet) -> Changed {
        let mut nodes: BTreeMap<NodeRef, &NodeChange> = BTreeMap::new();
        for change in changes
            .nodes
            .iter()
            .filter(|c| c.kind != ChangeKind::Unchanged)
        {
            nodes.insert(change.node.node.reference(), change);
        }
        let mut edges: BTreeMap<(String, NodeRef, NodeRef), &org_mesh_model::EdgeChange> =
            BTreeMap::new();
        for change in changes
            .edges
            .iter()
            .filter(|c| c.kind != ChangeKind::Unchanged)
        {
            let edge = &change.edge.edge;
            edges.insert(
                (edge.kind.clone(), edge.from.clone(), edge.to.clone()),
                change,
            );
        }
        let mut touched: BTreeSet<NodeRef> = nodes.keys().cloned().collect();
        for (_, from, to) in edges.keys() {
            touched.insert(from.clone());
            touched.insert(to.clone());
        }
        Changed {
            set: ChangeSet {
                nodes: nodes.into_values().cloned().collect(),
                edges: edges.into_values().cloned().collect(),
            },
            touched,
        }
    }

    /// Whether the finding is about, or rests on, something that changed.
    fn named_by(&self, finding: &Finding) -> bool {
        self.touched.contains(&finding.subject)
            || finding
                .evidence
                .iter()
                .any(|e| self.touched.contains(&e.subject))
    }
}

/// One pass of the main job.
pub async fn run(config: &Config, progress: &dyn Progress) -> anyhow::Result<ScanReport> {
    // One pass shares nothing with other processes, so its plugins' state
    // stays in this one.
    let coordination = Arc::new(org_mesh_cache::memory::MemoryCoordination::default());
    let twin = Twin::open(config, coordination, progress).await?;
    let mut report = ScanReport {
        skipped: twin.skipped.clone(),
        ..ScanReport::default()
    };
    for (index, (connector, _, _)) in twin.instances().connectors.iter().enumerate() {
        progress.step(&format!("syncing {}", connector.instance()));
        if let Some(Some(run)) = twin.sync(index, &mut report.skipped).await {
            report.connectors.push(run);
        }
    }

    progress.step("resolving identities");
    let applied = twin.resolve_identities().await?;
    report.skipped.extend(
        applied
            .skipped
            .iter()
            .map(|s| format!("identity: {}: {}", s.record, s.reason)),
    );

    // Before detection, so that no finding rests on text past its time.
    if config.retention.message_days > 0 {
        progress.step("forgetting expired messages");
        let swept = crate::retention::sweep_once(twin.store.as_ref(), &config.retention, now());
        if let Err(e) = swept.await {
            report.skipped.push(format!("retention: {e}"));
        }
    }

    progress.step("detecting, deciding and planning");
    let evaluation = twin.evaluate().await?;
    if let Err(e) = crate::campaigns::record(twin.store.as_ref(), &evaluation.findings, now()).await
    {
        report.skipped.push(format!("{e:#}"));
    }
    report.detectors = evaluation.detectors;
    report.findings = evaluation.findings;
    report.skipped.extend(evaluation.skipped);
    Ok(report)
}

fn now() -> org_mesh_model::Timestamp {
    time::OffsetDateTime::now_utc()
}

/// A plugin's version as findings and reloads report it: its manifest's
/// version and the start of its component's digest, since a rebuilt
/// component may keep the version it had.
pub(crate) fn plugin_version(plugin: &Plugin) -> String {
    format!("{}@{}", plugin.version(), &plugin.digest()[..12])
}

fn view(d: &Decision, policy_version: &str) -> DecisionView {
    DecisionView {
        policy_version: policy_version.to_string(),
        severity: d.severity,
        suppressed: d.suppressed,
        suppress_reason: d.suppress_reason.clone(),
        auto_fix: d.auto_fix,
        undefined: d.undefined_fields(),
        may_act: d.may_act(),
    }
}

/// Binds every configured instance to its plugin. `unused` names the
/// plugins found in the folders but not loaded, for the message about an
/// instance whose plugin is missing (usually a misspelt name).
pub(crate) fn bind_all(
    config: &Config,
    plugins: &BTreeMap<String, Plugin>,
    unused: &[String],
    skipped: &mut Vec<String>,
) -> Instances {
    let mut out = Instances {
        connectors: Vec::new(),
        detectors: Vec::new(),
        executors: Vec::new(),
    };
    let mut bind = |inst: &Instance, kind: Kind| -> Option<Plugin> {
        let Some(plugin) = plugins.get(&inst.plugin) else {
            let loaded: Vec<&str> = plugins.keys().map(String::as_str).collect();
            let also = if unused.is_empty() {
                String::new()
            } else {
                format!(
                    "; in the plugin folders, used by no instance: {}",
                    unused.join(", ")
                )
            };
            let loaded = if loaded.is_empty() {
                "none loaded from the plugin folders".to_owned()
            } else {
                format!("loaded: {}", loaded.join(", "))
            };
            skipped.push(format!(
                "{kind} {}: plugin {:?} is not loaded ({loaded}{also})",
                inst.name, inst.plugin,
            ));
            return None;
        };
        if plugin.kind() != kind {
            skipped.push(format!(
                "{kind} {}: plugin {} is a {}",
                inst.name,
                plugin.name(),
                plugin.kind()
            ));
            return None;
        }
        match plugin.bind(&inst.name, &inst.config, inst.grants.clone()) {
            Ok(bound) => {
                // Not refused: a plugin may use a capability only on some
                // paths. But each call that does use it fails.
                for capability in bound.ungranted() {
                    tracing::warn!(
                        instance = %inst.name,
                        plugin = plugin.name(),
                        %capability,
                        "The plugin asks for {capability}, which the instance's grants do not \
                         allow; its calls that use it will fail"
                    );
                }
                Some(bound)
            }
            Err(problems) => {
                skipped.push(format!(
                    "{kind} {} ({} {}): {}",
                    inst.name,
                    plugin.name(),
                    plugin.version(),
                    problems.join("; ")
                ));
                None
            }
        }
    };
    let mut unreadable = Vec::new();
    for inst in &config.connectors {
        if let Some(p) = bind(inst, Kind::Connector) {
            match read_attachments(inst) {
                Ok(files) => out.connectors.push((p, files, inst.sync)),
                Err(e) => unreadable.push(format!("connector {}: {e}", inst.name)),
            }
        }
    }
    for inst in &config.detectors {
        out.detectors.extend(bind(inst, Kind::Detector));
    }
    for inst in &config.executors {
        out.executors.extend(bind(inst, Kind::Executor));
    }
    skipped.extend(unreadable);
    out
}

fn read_attachments(inst: &Instance) -> Result<Vec<Attachment>, String> {
    inst.attachments
        .iter()
        .map(|(name, path)| {
            std::fs::read(path)
                .map(|content| Attachment {
                    name: name.clone(),
                    content,
                })
                .map_err(|e| format!("attachment {name}: cannot read {}: {e}", path.display()))
        })
        .collect()
}

fn load_policy(config: &Config, report: &mut ScanReport) -> Policies {
    let dir = &config.policies.dir;
    let version = folder_version(dir);
    let set = match PolicySet::load_with(dir, config.policies.evaluator) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(error = %e, "Policies not loaded; findings stay undecided");
            report.skipped.push(format!(
                "policies: {e}; every finding is undecided and no fix may run"
            ));
            None
        }
    };
    Policies { set, version }
}

/// The content version of a folder, or what kept it from being read.
pub fn folder_version(dir: &std::path::Path) -> String {
    match org_mesh_watch::content_hash(dir) {
        Ok((hash, _)) => hash.to_string(),
        Err(e) => format!("unreadable ({e})"),
    }
}

fn load_mappings(config: &Config, report: &mut ScanReport) -> Option<Vec<ExplicitMapping>> {
    let Some(path) = &config.identity.mappings else {
        return Some(Vec::new());
    };
    let parsed = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            serde_saphyr::from_str::<Vec<ExplicitMapping>>(&text).map_err(|e| e.to_string())
        });
    match parsed {
        Ok(m) => Some(m),
        Err(e) => {
            report.skipped.push(format!(
                "identity mappings {}: {e}; identities are left as they were",
                path.display()
            ));
            None
        }
    }
}

/// The coordination scope sync cursors are kept under, by instance name;
/// instance names hold no `/`, so no plugin instance shares it.
const CURSOR_SCOPE: &str = "org-mesh/sync-cursors";

async fn sync(
    connector: &Plugin,
    attachments: &[Attachment],
    store: &dyn GraphStore,
    cursors: &dyn org_mesh_cache::Coordination,
    skipped: &mut Vec<String>,
) -> ConnectorRun {
    let mut run = ConnectorRun {
        name: connector.instance().to_string(),
        plugin: connector.name().to_string(),
        version: connector.version().to_string(),
        ..ConnectorRun::default()
    };
    // A cursor that cannot be read only costs a sync from the start.
    let mut cursor = match cursors.kv_get(CURSOR_SCOPE, &run.name).await {
        Ok(kept) => kept.and_then(|bytes| String::from_utf8(bytes).ok()),
        Err(e) => {
            tracing::warn!(connector = %run.name, error = %e, "Cannot read where the last sync ended; syncing from the start");
            None
        }
    };
    for _ in 0..MAX_SYNC_ROUNDS {
        let out = match connector.sync(cursor.take(), attachments).await {
            Ok(out) => out,
            Err(e) => {
                run.error = Some(e.to_string());
                return run;
            }
        };
        let label = |s: &String| format!("connector {}: {s}", run.name);
        skipped.extend(out.skipped.iter().map(label));
        run.nodes += out.batch.nodes.len();
        run.edges += out.batch.edges.len();
        match store.apply(&run.name, now(), out.batch).await {
            Ok(applied) => {
                for s in &applied.skipped {
                    skipped.push(format!(
                        "connector {}: {}: {}",
                        run.name, s.record, s.reason
                    ));
                }
                let kinds = applied
                    .changes
                    .nodes
                    .iter()
                    .map(|c| c.kind)
                    .chain(applied.changes.edges.iter().map(|c| c.kind));
                for kind in kinds {
                    match kind {
                        ChangeKind::Added => run.added += 1,
                        ChangeKind::Updated => run.updated += 1,
                        ChangeKind::NotObserved => run.not_observed += 1,
                        ChangeKind::Unchanged => {}
                    }
                }
            }
            Err(e) => {
                run.error = Some(format!("applying its records: {e}"));
                return run;
            }
        }
        if !out.more {
            // Kept only once the records are applied, so a failed sync is
            // read again from where the last good one ended.
            if let Some(next) = &out.cursor
                && let Err(e) = cursors
                    .kv_set(CURSOR_SCOPE, &run.name, next.as_bytes())
                    .await
            {
                tracing::warn!(connector = %run.name, error = %e, "Cannot keep where this sync ended; the next one starts from the start");
            }
            return run;
        }
        cursor = out.cursor;
    }
    run.error = Some(format!(
        "still asking for more after {MAX_SYNC_ROUNDS} rounds; stopped"
    ));
    run
}

/// What the approval policy says of running `action` now, for reports: a
/// proposal of the fix is asked the same question when it is made.
fn approval_now(
    set: &PolicySet,
    action: &ProposedAction,
    reported: &Reported,
    at: org_mesh_model::Timestamp,
) -> Option<String> {
    action.plan.as_ref()?;
    let input = crate::actions::approval_input(
        org_mesh_policy::ActionFacts {
            executor: action.executor.clone(),
            kind: action.kind.clone(),
            target: action.target.clone(),
            parameters: action.parameters.clone(),
        },
        reported,
        at,
    );
    Some(match crate::actions::ask_approval(set, &input) {
        Ok(approval) => crate::actions::approval_said(&approval),
        Err(why) => why,
    })
}

async fn plan(finding: &Finding, remedy: &Remedy, executors: &[Plugin]) -> ProposedAction {
    let mut proposed = ProposedAction {
        executor: String::new(),
        kind: remedy.action.clone(),
        target: remedy.target.clone(),
        parameters: org_mesh_model::properties_to_json(&remedy.parameters),
        plan: None,
        unplanned: None,
        approval: None,
    };
    let Some(executor) = executors
        .iter()
        .find(|e| e.description().actions.contains(&remedy.action))
    else {
        proposed.unplanned = Some(format!(
            "no loaded and configured executor handles {}; see SKIPPED",
            remedy.action
        ));
        return proposed;
    };
    proposed.executor = executor.instance().to_string();
    let request = ActionRequest {
        kind: remedy.action.clone(),
        target: remedy.target.clone(),
        parameters: remedy.parameters.clone(),
        idempotency_key: format!("{}:{}", finding.fingerprint, remedy.action),
    };
    match executor.plan(&request).await {
        Ok(plan) => proposed.plan = Some(plan),
        Err(e) => proposed.unplanned = Some(e.to_string()),
    }
    proposed
}
