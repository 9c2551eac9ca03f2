//! `org-mesh serve`: the twin running continuously. It syncs connectors on
//! a schedule, takes pushed changes on webhook and SCIM routes, evaluates
//! detectors and policy after every change, and answers the API and
//! `/metrics`.
//!
//! Pushed changes are queued and applied by workers (see [`changes`]);
//! several replicas share the queue, the twin and the coordination state
//! when the cache is Redis and the graph Neo4j. Within a replica, changes
//! are applied and evaluated one at a time, so every finding set the API
//! shows comes from one consistent state of the twin; a replica whose twin
//! another replica changed evaluates again before it answers. After pushed
//! changes, detectors whose manifest says `incremental` are given only what
//! changed and the findings they raised before about anything else are
//! kept; a sync, a reload, another replica's change and a timer evaluate
//! the whole twin.

mod api;
mod auth;
mod changes;
mod console;
mod events;
mod health;
mod http;
mod metrics;
mod openapi;
mod reloads;
mod retention;
mod scim;
mod webhooks;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use org_mesh_model::{Batch, ChangeSet, Timestamp};
use tokio::sync::{Mutex, RwLock, RwLockReadGuard};

use crate::backends::Shared;
use crate::config::{Config, Role, WebhookProvider};
use crate::pipeline::{Evaluation, Progress, Twin};

pub use metrics::Metrics;

struct Quiet;

impl Progress for Quiet {
    fn step(&self, what: &str) {
        tracing::info!(step = what, "Starting");
    }
}

/// The key-value scope of the service's own shared state; plugin scopes
/// are instance names, which cannot contain `/`.
const HOST_SCOPE: &str = "org-mesh/serve";

/// Held while one replica runs a round of fixes.
const ACTIONS_LOCK: &str = "actions";
/// Longer than a round of fixes takes; a replica that dies mid-round holds
/// the others back no longer than this.
const ACTIONS_LOCK_TTL: Duration = Duration::from_secs(300);

/// How long a sync lock lasts without being extended; a replica that dies
/// mid-sync holds its connector no longer than this.
const SYNC_LOCK_TTL: Duration = Duration::from_secs(120);
/// Between pushed changes, incremental detectors see only what changed;
/// the whole twin is evaluated again at least this often, so that a
/// decision that depends on time (days since an offboarding) and anything
/// an incremental detector could not tie to a change are brought up to
/// date.
const WHOLE_EVALUATION_EVERY: Duration = Duration::from_secs(600);

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A name for this process among the replicas: the pod's name where there
/// is one, made unique so a restarted pod does not inherit its old work.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "org-mesh".into());
    let unique = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &unique[..8])
}

/// A held sync lock, extended in the background while the sync runs.
struct SyncLock {
    held: Option<(
        Arc<dyn org_mesh_cache::Coordination>,
        String,
        org_mesh_cache::LockToken,
    )>,
    keeper: Option<tokio::task::JoinHandle<()>>,
}

impl SyncLock {
    fn none() -> SyncLock {
        SyncLock {
            held: None,
            keeper: None,
        }
    }

    fn hold(
        coordination: Arc<dyn org_mesh_cache::Coordination>,
        name: String,
        token: org_mesh_cache::LockToken,
    ) -> SyncLock {
        let keeper = {
            let (coordination, name, token) = (coordination.clone(), name.clone(), token.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(SYNC_LOCK_TTL / 3).await;
                    match coordination.extend_lock(&name, &token, SYNC_LOCK_TTL).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(lock = %name, "Lost a sync lock; another replica may sync the same connector");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(lock = %name, error = %e, "Cannot extend a sync lock")
                        }
                    }
                }
            })
        };
        SyncLock {
            held: Some((coordination, name, token)),
            keeper: Some(keeper),
        }
    }

    async fn release(mut self) {
        if let Some(keeper) = self.keeper.take() {
            keeper.abort();
        }
        if let Some((coordination, name, token)) = self.held.take()
            && let Err(e) = coordination.unlock(&name, &token).await
        {
            tracing::warn!(lock = %name, error = %e, "Cannot release a sync lock; it lapses by itself");
        }
    }
}

/// Everything the routes share.
pub struct Service {
    pub twin: Twin,
    pub config: Config,
    pub metrics: Metrics,
    findings: RwLock<Evaluation>,
    /// Held while a change is applied and evaluated.
    pipeline: Mutex<()>,
    /// The twin version (counted in the shared state) `findings` were
    /// evaluated at.
    evaluated_at: AtomicU64,
    /// When the whole twin was last evaluated; changes alone are
    /// evaluated in between.
    last_whole: Mutex<Instant>,
    tokens: Vec<auth::Token>,
    webhooks: BTreeMap<String, (WebhookProvider, String)>,
    shared: Shared,
    health: health::Health,
    /// Names this process among the replicas, as a consumer of the queue.
    replica: String,
    /// Set once the first sync has finished.
    synced: AtomicBool,
    reloads: reloads::Reloads,
    /// Held while a reload builds and swaps in a new version, so two
    /// reloads never build from the same old version.
    reloading: Mutex<()>,
    /// Woken after a fix succeeded, so the twin observes its target again.
    reobserve: tokio::sync::Notify,
    /// The SCIM routes, when a connector serves SCIM.
    scim: Option<Arc<org_mesh_scim::ScimService>>,
    /// Live updates for the console.
    events: events::Feed,
    /// When the twin's nodes were last counted for the gauge, and whether
    /// an evaluation has changed them since.
    counted: std::sync::Mutex<Counted>,
}

#[derive(Debug, Default)]
struct Counted {
    at: Option<Instant>,
    stale: bool,
}

impl Counted {
    /// Whether to count the nodes at `now`: an evaluation may have changed
    /// them, and the last count is at least [`COUNT_EVERY`] old. Notes the
    /// count as made, before it is, so that an evaluation finishing
    /// meanwhile is counted by a later call.
    fn due(&mut self, now: Instant) -> bool {
        let recent = self
            .at
            .is_some_and(|at| now.saturating_duration_since(at) < COUNT_EVERY);
        if !self.stale || recent {
            return false;
        }
        *self = Counted {
            at: Some(now),
            stale: false,
        };
        true
    }
}

/// The least time between two counts of the twin's nodes. Neo4j counts by
/// reading every entity (about 90 ms at 450,000), and during an import an
/// evaluation can follow every few milliseconds; the gauge lags by at most
/// this plus one probe.
const COUNT_EVERY: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    /// Opens the twin and reads every secret the routes need. A webhook
    /// route whose secret cannot be read is a start-up error: a route that
    /// accepts unauthenticated deliveries must never exist.
    pub async fn open(config: Config) -> anyhow::Result<Arc<Service>> {
        // Every unreadable secret is reported at once, before the twin and
        // the plugins are loaded for nothing.
        let mut problems = Vec::new();
        let mut read = |what: String, source: &org_mesh_runtime::SecretSource| match source.read() {
            Ok(s) if s.is_empty() => {
                problems.push(format!("{what} is empty"));
                None
            }
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(format!("{what}: {e}"));
                None
            }
        };
        let mut tokens = Vec::new();
        let mut secrets: Vec<(&str, String)> = Vec::new();
        for t in &config.serve.tokens {
            if let Some(secret) = read(format!("serve.tokens.{}", t.name), &t.secret) {
                tokens.push(auth::Token::new(&t.name, t.role, &secret));
                secrets.push((&t.name, secret));
            }
        }
        let mut webhooks = BTreeMap::new();
        let mut scim_tokens = BTreeMap::new();
        for c in &config.connectors {
            if let Some(w) = &c.webhook
                && let Some(secret) =
                    read(format!("connectors.{}.webhook.secret", c.name), &w.secret)
            {
                webhooks.insert(c.name.clone(), (w.provider, secret));
            }
            if let Some(s) = &c.scim
                && let Some(token) = read(format!("connectors.{}.scim.token", c.name), &s.token)
            {
                scim_tokens.insert(c.name.clone(), org_mesh_scim::Endpoint { token });
            }
        }
        // One secret for two tokens makes whoever holds it the stronger
        // of the two, whatever the weaker was handed out for.
        for (i, (name, secret)) in secrets.iter().enumerate() {
            if let Some((other, _)) = secrets[..i].iter().find(|(_, s)| s == secret) {
                problems.push(format!(
                    "serve.tokens.{other} and serve.tokens.{name} have the same secret; each token needs its own"
                ));
            }
        }
        if !problems.is_empty() {
            anyhow::bail!("{}", problems.join("; "));
        }
        let shared = Shared::open(&config).await?;
        let mut twin = Twin::open(&config, shared.coordination.clone(), &Quiet).await?;
        twin.take_out_failing_detectors().await;
        if config.graph.backend == crate::config::Backend::Embedded {
            // The embedded twin is locked to this process, so every account
            // change passes through here; Neo4j may have other writers.
            twin.keep_identity_index().await;
        }
        for s in &twin.skipped {
            tracing::error!(skipped = %s, "Left out of the service");
        }
        let metrics = Metrics::new(&twin.metrics).context("registering metrics")?;
        metrics.expect_rules(
            twin.plugins()
                .iter()
                .flat_map(|p| p.description().rules.iter().map(|r| r.id.clone())),
        );
        let health = health::Health::new(metrics.backend_up.clone());
        let replica = replica_name();
        tracing::info!(
            %replica,
            graph = ?config.graph.backend,
            cache = shared.coordination.backend(),
            "Opened the twin"
        );
        let sink = Arc::new(scim::TwinSink::default());
        let scim = Self::scim(&config, scim_tokens, sink.clone())?;
        let service = Arc::new(Service {
            twin,
            config,
            metrics,
            findings: RwLock::new(Evaluation::default()),
            pipeline: Mutex::new(()),
            evaluated_at: AtomicU64::new(0),
            last_whole: Mutex::new(Instant::now()),
            tokens,
            webhooks,
            shared,
            health,
            replica,
            synced: AtomicBool::new(false),
            reloads: reloads::Reloads::default(),
            reloading: Mutex::new(()),
            reobserve: tokio::sync::Notify::new(),
            counted: std::sync::Mutex::default(),
            scim,
            events: events::Feed::default(),
        });
        sink.attach(&service);
        service.count_loaded();
        Ok(service)
    }

    /// Sets `org_mesh_instance_loaded` from what serves now.
    fn count_loaded(&self) {
        for (kind, name, loaded) in self.twin.instances_loaded() {
            self.metrics
                .instance_loaded
                .with_label_values(&[kind, name.as_str()])
                .set(i64::from(loaded));
        }
    }

    /// The SCIM service provider for the connectors that serve SCIM, with
    /// its resources kept beside the twin.
    fn scim(
        config: &Config,
        endpoints: BTreeMap<String, org_mesh_scim::Endpoint>,
        sink: Arc<scim::TwinSink>,
    ) -> anyhow::Result<Option<Arc<org_mesh_scim::ScimService>>> {
        if endpoints.is_empty() {
            return Ok(None);
        }
        let path = config.state_dir.join("scim.redb");
        let repository = org_mesh_scim::EmbeddedRepository::open(&path)
            .with_context(|| format!("opening the SCIM store at {}", path.display()))?;
        let mut service = org_mesh_scim::ScimService::new(Arc::new(repository), sink, endpoints)
            .with_body_limit(config.serve.body_limit_bytes);
        if let Some(url) = &config.serve.public_url {
            service = service.with_base_url(url.clone());
        }
        Ok(Some(Arc::new(service)))
    }

    /// Applies a batch `source` observed at `at`, without resolving
    /// identities or evaluating. Pushed changes reach this through the
    /// queue, which does both once after the changes it took together.
    async fn apply(
        &self,
        source: &str,
        at: Timestamp,
        batch: Batch,
    ) -> anyhow::Result<org_mesh_store::Applied> {
        let _turn = self.pipeline.lock().await;
        let started = Instant::now();
        let applied = self.twin.apply(source, at, batch).await?;
        self.metrics
            .ingest_duration
            .with_label_values(&[source])
            .observe(started.elapsed().as_secs_f64());
        Ok(applied)
    }

    /// Re-resolves identities after the applied `changes`, once for all of
    /// them, then counts a change of the twin and evaluates what they and
    /// the resolution did.
    async fn evaluate_changed(&self, changes: &ChangeSet) -> anyhow::Result<()> {
        let _turn = self.pipeline.lock().await;
        let identity = self.twin.resolve_after(changes).await?;
        for s in &identity.skipped {
            tracing::warn!(record = %s.record, reason = %s.reason, "Identity left unresolved");
        }
        let mut changes = changes.clone();
        changes.extend(identity.changes);
        let version = self.changed().await;
        self.evaluate_locked(true, version, Some(&changes)).await
    }

    async fn changed(&self) -> u64 {
        match self.shared.coordination.bump_twin_version().await {
            Ok(v) => v,
            Err(e) => {
                // Other replicas then miss this change until the next one
                // they hear of; this replica's own findings stay right.
                self.health.cache_failed(&e);
                self.evaluated_at.load(Ordering::Relaxed)
            }
        }
    }

    /// Syncs every pulled connector, then evaluates once. Returns each
    /// connector's run, failures included.
    ///
    /// With several replicas, one connector is synced by one replica at a
    /// time, under a lock in the shared state. A scheduled sync also skips
    /// a connector another replica synced within the interval; a requested
    /// one (`scheduled` false) does not.
    pub async fn sync_all(
        &self,
        scheduled: bool,
    ) -> anyhow::Result<Vec<crate::pipeline::ConnectorRun>> {
        let _turn = self.pipeline.lock().await;
        let mut skipped = Vec::new();
        let mut runs = Vec::new();
        for index in 0.. {
            let Some((name, pulled)) = self.twin.connector_at(index) else {
                break;
            };
            if !pulled {
                continue;
            }
            let name = name.to_string();
            let Some(lock) = self.sync_lock(&name, scheduled).await else {
                continue;
            };
            let started = Instant::now();
            let pulled = self.twin.sync(index, &mut skipped).await;
            lock.release().await;
            let Some(Some(run)) = pulled else {
                continue;
            };
            self.metrics
                .ingest_duration
                .with_label_values(&[run.name.as_str()])
                .observe(started.elapsed().as_secs_f64());
            match &run.error {
                Some(e) => tracing::warn!(connector = %run.name, error = %e, "Sync failed"),
                None => {
                    self.mark_synced(&name).await;
                    tracing::info!(
                        connector = %run.name,
                        added = run.added,
                        updated = run.updated,
                        not_observed = run.not_observed,
                        "Synced"
                    );
                }
            }
            runs.push(run);
        }
        for s in skipped {
            tracing::warn!(skipped = %s, "Record left out");
        }
        self.twin.resolve_identities().await?;
        let version = self.changed().await;
        self.evaluate_locked(true, version, None).await?;
        Ok(runs)
    }

    /// Takes the sync lock of a connector, or says why not.
    async fn sync_lock(&self, connector: &str, scheduled: bool) -> Option<SyncLock> {
        let coordination = &self.shared.coordination;
        if scheduled && let Some(interval) = self.sync_interval() {
            let last = coordination
                .kv_get(HOST_SCOPE, &format!("synced/{connector}"))
                .await
                .ok()
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(last) = last
                && unix_now().saturating_sub(last) < interval.as_secs() * 9 / 10
            {
                tracing::debug!(%connector, "Synced by another replica within the interval");
                return None;
            }
        }
        let name = format!("sync/{connector}");
        match coordination.try_lock(&name, SYNC_LOCK_TTL).await {
            Ok(Some(token)) => Some(SyncLock::hold(coordination.clone(), name, token)),
            Ok(None) => {
                tracing::info!(%connector, "Another replica is syncing this connector");
                None
            }
            Err(e) => {
                // Without the shared state no replica can tell who syncs;
                // syncing anyway at worst repeats work another replica does.
                self.health.cache_failed(&e);
                tracing::warn!(%connector, error = %e, "Syncing without the shared lock");
                Some(SyncLock::none())
            }
        }
    }

    async fn mark_synced(&self, connector: &str) {
        let now = unix_now().to_string();
        if let Err(e) = self
            .shared
            .coordination
            .kv_set(HOST_SCOPE, &format!("synced/{connector}"), now.as_bytes())
            .await
        {
            tracing::warn!(%connector, error = %e, "Cannot record the sync in the shared state");
        }
    }

    fn sync_interval(&self) -> Option<Duration> {
        match self.config.serve.sync_interval_secs {
            0 => None,
            n => Some(Duration::from_secs(n)),
        }
    }

    /// The findings, evaluated again first when another replica changed
    /// the twin since this one last evaluated.
    async fn fresh_findings(&self) -> RwLockReadGuard<'_, Evaluation> {
        if let Ok(shared) = self.shared.coordination.twin_version().await
            && shared > self.evaluated_at.load(Ordering::Relaxed)
        {
            let _turn = self.pipeline.lock().await;
            if shared > self.evaluated_at.load(Ordering::Relaxed)
                && let Err(e) = self.evaluate_locked(false, shared, None).await
            {
                tracing::warn!(error = %format!("{e:#}"), "Cannot evaluate the twin again; answering with the last findings");
            }
        }
        self.findings.read().await
    }

    /// Runs detection and policy over the twin. `count` is false when the
    /// change was made, and its new findings counted, by another replica.
    /// With `changes`, the findings in service are brought up to date with
    /// them, if they are all that happened since those findings: no other
    /// replica changed the twin meanwhile (the version moved by one) and
    /// the last whole-twin evaluation is recent. Otherwise the whole twin
    /// is evaluated.
    async fn evaluate_locked(
        &self,
        count: bool,
        version: u64,
        changes: Option<&ChangeSet>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let only_these = version == self.evaluated_at.load(Ordering::Relaxed) + 1
            && self.last_whole.lock().await.elapsed() < WHOLE_EVALUATION_EVERY;
        let (evaluation, scope) = match changes.filter(|_| only_these) {
            Some(changes) => {
                let current = self.findings.read().await;
                let evaluation = self.twin.evaluate_changes(&current, changes).await?;
                // Only a round in which no detector was given the changes
                // alone brings every finding up to date.
                let whole = evaluation.incremental.is_empty();
                (evaluation, if whole { "twin" } else { "changes" })
            }
            None => {
                let current = self.findings.read().await;
                (self.twin.evaluate_after(&current).await?, "twin")
            }
        };
        if scope == "twin" {
            *self.last_whole.lock().await = Instant::now();
        }
        self.metrics.evaluations.with_label_values(&[scope]).inc();
        self.metrics
            .evaluation_duration
            .observe(started.elapsed().as_secs_f64());
        if count
            && let Err(e) = crate::campaigns::record(
                self.twin.store.as_ref(),
                &evaluation.findings,
                time::OffsetDateTime::now_utc(),
            )
            .await
        {
            tracing::warn!(error = %format!("{e:#}"), "Campaigns are not in the twin this round");
        }
        let mut current = self.findings.write().await;
        let before: BTreeSet<&str> = current
            .findings
            .iter()
            .map(|r| r.finding.fingerprint.as_str())
            .collect();
        let signals_before = crate::campaigns::signal_keys(&current.findings);
        for r in &evaluation.findings {
            if count && !before.contains(r.finding.fingerprint.as_str()) {
                self.metrics
                    .drift_detections
                    .with_label_values(&[r.finding.rule.as_str(), r.severity.as_str()])
                    .inc();
            }
        }
        // Each signal of a campaign counts once, when it first appears, so
        // that re-evaluating an unchanged twin adds nothing.
        if count {
            for (_, kind) in
                crate::campaigns::signal_keys(&evaluation.findings).difference(&signals_before)
            {
                self.metrics
                    .narrative_signals
                    .with_label_values(&[kind.as_str()])
                    .inc();
            }
        }
        for s in &evaluation.skipped {
            tracing::warn!(skipped = %s, "Left out of evaluation");
        }
        *current = evaluation;
        self.evaluated_at.fetch_max(version, Ordering::Relaxed);
        drop(current);
        self.counted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .stale = true;
        self.refresh_counts().await;
        // Fixes follow the changes this replica made; an evaluation made
        // only to catch up with another replica leaves them to it.
        if count {
            self.act().await;
        }
        Ok(())
    }

    /// Runs one round of the fix lifecycle over the current findings:
    /// propose, expire, verify, execute. One replica at a time.
    pub(super) async fn act(&self) {
        let lock = match self
            .shared
            .coordination
            .try_lock(ACTIONS_LOCK, ACTIONS_LOCK_TTL)
            .await
        {
            Ok(Some(token)) => token,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "No fixes this round: the shared lock cannot be taken");
                return;
            }
        };
        let findings = self.findings.read().await;
        let instances = self.twin.instances();
        let policies = self.twin.policy();
        let engine = crate::actions::Engine {
            proposals: crate::actions::Proposals {
                store: self.twin.store.as_ref(),
            },
            policy: policies.set.as_ref(),
            executors: &instances.executors,
            config: &self.config.actions,
        };
        let round = engine
            .round(&findings, time::OffsetDateTime::now_utc())
            .await;
        drop(findings);
        if let Err(e) = self.shared.coordination.unlock(ACTIONS_LOCK, &lock).await {
            tracing::warn!(error = %e, "Cannot release the fix lock; it lapses by itself");
        }
        match round {
            Ok(round) => {
                for p in &round.changed {
                    let last = p.events.last();
                    tracing::info!(
                        proposal = %p.id,
                        action = %p.kind,
                        target = %p.target,
                        state = ?p.state,
                        reason = last.map(|e| e.reason.as_str()).unwrap_or(""),
                        "Fix proposal changed"
                    );
                }
                for (executor, ok) in &round.executed {
                    self.metrics.count_action(executor, *ok);
                }
                if round.executed.iter().any(|(_, ok)| *ok) {
                    self.reobserve.notify_one();
                }
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "The fix round failed"),
        }
    }

    /// Sets the node gauge from the store, if an evaluation may have
    /// changed the counts and they were not read within [`COUNT_EVERY`].
    async fn refresh_counts(&self) {
        let due = self
            .counted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .due(Instant::now());
        if !due {
            return;
        }
        match self.twin.store.counts().await {
            Ok(counts) => {
                for (label, n) in counts {
                    self.metrics
                        .nodes
                        .with_label_values(&[label.as_str()])
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot count the twin's nodes");
                self.counted
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .stale = true;
            }
        }
    }

    fn role_of(&self, bearer: &str) -> Option<(Role, &str)> {
        auth::find(&self.tokens, bearer)
    }
}

/// The HTTP routes of the service.
pub fn router(service: Arc<Service>) -> Router {
    let limit = service.config.serve.body_limit_bytes;
    let body_deadline = Duration::from_secs(service.config.serve.body_timeout_secs);
    let scim = service
        .scim
        .clone()
        .map(|s| scim::timed(org_mesh_scim::routes(s), &service));
    let mut app = Router::new()
        .merge(webhooks::routes())
        .merge(api::routes())
        .layer(axum::middleware::map_response(api::one_error_shape))
        .merge(console::routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(service);
    if let Some(scim) = scim {
        app = app.merge(scim);
    }
    app.fallback(not_found)
        .layer(axum::middleware::from_fn(move |request, next| {
            http::take_in(limit, body_deadline, request, next)
        }))
}

/// Unknown paths get the error shape of the part of the service they aim
/// at: SCIM clients expect the SCIM error schema.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/scim/") {
        org_mesh_scim::not_found().into_response()
    } else {
        api::not_found().await.into_response()
    }
}

/// How long requests in flight may take to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

/// Runs the service until `shutdown` resolves, then drains requests in
/// flight and returns.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listen = config.serve.listen.clone();
    let interval = config.serve.sync_interval_secs;
    let service = Service::open(config).await?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%address, "Serving");

    let worker = tokio::spawn(changes::work(service.clone()));
    let mut watches = reloads::watch(&service);
    watches.push(tokio::spawn(reobserve(service.clone())));
    watches.push(tokio::spawn(expire_suppressions(service.clone())));
    watches.push(tokio::spawn(reloads::settle_shadows(service.clone())));
    watches.push(tokio::spawn(retention::run(service.clone())));
    watches.push(tokio::spawn(events::watch_state(service.clone())));
    watches.push(tokio::spawn(scim::hand_over_unsent(Arc::downgrade(
        &service,
    ))));
    let probe = tokio::spawn(probe(service.clone()));
    let syncer = service.clone();
    let sync_task = tokio::spawn(async move {
        loop {
            match syncer.sync_all(true).await {
                Err(e) => tracing::error!(error = %format!("{e:#}"), "Scheduled sync failed"),
                Ok(runs) if runs.iter().any(|r| r.error.is_some()) => {
                    tracing::warn!(
                        "Some connectors failed to sync; see the lines above, or POST /api/v1/sync (admin) to sync again and read each connector's error"
                    )
                }
                Ok(_) => {}
            }
            syncer.synced.store(true, Ordering::Relaxed);
            if interval == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(interval)).await;
        }
    });

    let app = router(service.clone());
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let feed = service.clone();
    let graceful = async move {
        shutdown.await;
        feed.events.close();
        let _ = stopping.send(());
    };
    let head_deadline = Duration::from_secs(service.config.serve.head_timeout_secs);
    let serving = http::serve(listener, app, head_deadline, graceful);
    // Requests in flight get a bounded time to finish: one stalled client
    // must not hold a pod's termination for ever.
    let deadline = async {
        if stopped.await.is_ok() {
            tokio::time::sleep(DRAIN_DEADLINE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = serving => {}
        () = deadline => {
            tracing::warn!(secs = DRAIN_DEADLINE.as_secs(), "Requests still in flight at the drain deadline; stopping anyway");
        }
    }
    sync_task.abort();
    // A change the worker holds stays unacknowledged and is taken over by
    // another replica, or by this one after a restart.
    worker.abort();
    probe.abort();
    for w in watches {
        w.abort();
    }
    tracing::info!("Stopped");
    Ok(())
}

/// Syncs again after a fix ran, so that its verification rests on what the
/// outside system now says rather than on what the executor reported.
async fn reobserve(service: Arc<Service>) {
    loop {
        service.reobserve.notified().await;
        tracing::info!("Observing again after a fix");
        if let Err(e) = service.sync_all(false).await {
            tracing::warn!(error = %format!("{e:#}"), "Observing again after a fix failed");
        }
    }
}

/// How often `serve` looks for a suppression that has expired since it
/// last looked: the most a finding stays hidden past its suppression's
/// expiry when nothing else makes the findings be decided again.
const EXPIRY_CHECK: Duration = Duration::from_secs(5);

/// Decides the findings again once a suppression in the tuning file has
/// expired. Findings are otherwise decided when the twin or the policies
/// change, and a finding its suppression hid should come back when the
/// suppression says, not at the next change, which may be days away.
async fn expire_suppressions(service: Arc<Service>) {
    let mut looked = time::OffsetDateTime::now_utc();
    loop {
        tokio::time::sleep(EXPIRY_CHECK).await;
        let now = time::OffsetDateTime::now_utc();
        let policies = service.twin.policy();
        let expired = policies
            .set
            .as_ref()
            .and_then(|set| set.tuning())
            .is_some_and(|tuning| {
                tuning
                    .suppressions
                    .iter()
                    .any(|s| s.expires > looked && s.expires <= now)
            });
        looked = now;
        if expired {
            tracing::info!("A suppression has expired; deciding the findings again");
            let _turn = service.pipeline.lock().await;
            let version = service.evaluated_at.load(Ordering::Relaxed);
            if let Err(e) = service.evaluate_locked(true, version, None).await {
                tracing::warn!(
                    error = %format!("{e:#}"),
                    "Cannot decide the findings again after a suppression expired"
                );
            }
        }
    }
}

/// How often the backends are asked whether they answer, besides the
/// answers every use of them gives.
const PROBE_EVERY: Duration = Duration::from_secs(2);

async fn probe(service: Arc<Service>) {
    loop {
        match service.twin.store.ping().await {
            Ok(()) => service.health.graph_ok(),
            Err(e) => service.health.graph_failed(&e.to_string()),
        }
        match service.shared.coordination.ping().await {
            Ok(()) => service.health.cache_ok(),
            Err(e) => service.health.cache_failed(&e),
        }
        service.refresh_depth().await;
        // The counts of evaluations made within COUNT_EVERY of the last
        // count, which nothing else may set once the changes stop.
        service.refresh_counts().await;
        // Here rather than after each change: it reads every note, and
        // during an import there can be hundreds.
        if let Some(scim) = &service.scim
            && let Ok(unsent) = scim.unsent().await
        {
            service
                .metrics
                .scim_unsent
                .set(i64::try_from(unsent).unwrap_or(i64::MAX));
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

impl Service {
    /// Why the service should not get traffic now, if it should not.
    pub fn not_ready(&self) -> Option<String> {
        let mut why = Vec::new();
        if !self.synced.load(Ordering::Relaxed) {
            why.push("the first sync has not finished".to_string());
        }
        if let Some(e) = self.health.graph() {
            why.push(format!("the graph store does not answer: {e}"));
        }
        if let Some(e) = self.health.cache() {
            why.push(format!("the cache does not answer: {e}"));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{COUNT_EVERY, Counted};

    #[test]
    fn nodes_are_counted_after_an_evaluation_at_most_once_per_period() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut counted = Counted::default();
        assert!(!counted.due(at(0)), "nothing evaluated yet");

        counted.stale = true;
        assert!(
            counted.due(at(0)),
            "the first evaluation is counted at once"
        );
        assert!(!counted.due(at(1)), "and not again without a new one");

        counted.stale = true;
        assert!(!counted.due(at(1)), "a second one within the period waits");
        assert!(
            !counted.due(at(COUNT_EVERY.as_secs() - 1)),
            "still within the period"
        );
        assert!(
            counted.due(at(COUNT_EVERY.as_secs())),
            "and is counted once it is over"
        );
        assert!(!counted.due(at(COUNT_EVERY.as_secs() * 5)), "only once");
    }
}
