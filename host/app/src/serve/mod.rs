//! `org-mesh serve`: the twin running continuously. It syncs connectors on
//! a schedule, takes pushed changes on webhook and SCIM routes, evaluates
//! detectors and policy after every change, and answers the API and
//! `/metrics`.
//!
//! Changes are applied and evaluated one at a time, so every finding set
//! the API shows comes from one consistent state of the twin. Each
//! evaluation runs the detectors over the whole twin: simple and correct,
//! and the first thing to make incremental when twins grow large.

mod api;
mod auth;
mod metrics;
mod openapi;
mod scim;
mod webhooks;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use org_mesh_model::Batch;
use tokio::sync::{Mutex, RwLock};

use crate::config::{Config, Role, WebhookProvider};
use crate::pipeline::{Evaluation, Progress, Twin};

pub use metrics::Metrics;

struct Quiet;

impl Progress for Quiet {
    fn step(&self, what: &str) {
        tracing::info!(step = what, "Starting");
    }
}

/// Delivery ids seen recently, so a redelivered webhook is applied once.
#[derive(Debug, Default)]
struct Deliveries {
    order: VecDeque<String>,
    seen: BTreeSet<String>,
}

const DELIVERIES_REMEMBERED: usize = 10_000;

impl Deliveries {
    fn seen(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    /// Remembers an applied delivery; false if it was already known.
    fn remember(&mut self, id: &str) -> bool {
        if !self.seen.insert(id.to_string()) {
            return false;
        }
        self.order.push_back(id.to_string());
        if self.order.len() > DELIVERIES_REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
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
    tokens: Vec<auth::Token>,
    webhooks: BTreeMap<String, (WebhookProvider, String)>,
    deliveries: std::sync::Mutex<Deliveries>,
    ready: AtomicBool,
    /// The SCIM routes, when a connector serves SCIM.
    scim: Option<Arc<org_mesh_scim::ScimService>>,
}

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
        for t in &config.serve.tokens {
            if let Some(secret) = read(format!("serve.tokens.{}", t.name), &t.secret) {
                tokens.push(auth::Token::new(&t.name, t.role, &secret));
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
        if !problems.is_empty() {
            anyhow::bail!("{}", problems.join("; "));
        }
        let twin = Twin::open(&config, &Quiet).await?;
        for s in &twin.skipped {
            tracing::error!(skipped = %s, "Left out of the service");
        }
        let metrics = Metrics::new(&twin.metrics).context("registering metrics")?;
        let sink = Arc::new(scim::TwinSink::default());
        let scim = Self::scim(&config, scim_tokens, sink.clone())?;
        let service = Arc::new(Service {
            twin,
            config,
            metrics,
            findings: RwLock::new(Evaluation::default()),
            pipeline: Mutex::new(()),
            tokens,
            webhooks,
            deliveries: std::sync::Mutex::new(Deliveries::default()),
            ready: AtomicBool::new(false),
            scim,
        });
        sink.attach(&service);
        Ok(service)
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

    /// Whether a delivery was applied before. Only applied deliveries are
    /// remembered, so one that failed can be redelivered with its id.
    fn delivered(&self, id: &str) -> bool {
        match self.deliveries.lock() {
            Ok(d) => d.seen(id),
            Err(poisoned) => poisoned.into_inner().seen(id),
        }
    }

    fn remember_delivery(&self, id: &str) {
        match self.deliveries.lock() {
            Ok(mut d) => d.remember(id),
            Err(poisoned) => poisoned.into_inner().remember(id),
        };
    }

    /// Applies a batch from a connector and re-evaluates the twin.
    pub async fn ingest(&self, source: &str, batch: Batch) -> anyhow::Result<Vec<String>> {
        self.metrics.queue_depth.inc();
        let _turn = self.pipeline.lock().await;
        self.metrics.queue_depth.dec();
        let started = Instant::now();
        let applied = self.twin.ingest(source, batch).await?;
        self.metrics
            .ingest_duration
            .with_label_values(&[source])
            .observe(started.elapsed().as_secs_f64());
        let skipped = applied
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.record, s.reason))
            .collect();
        self.evaluate_locked().await?;
        Ok(skipped)
    }

    /// Syncs every pulled connector, then evaluates once. Returns each
    /// connector's run, failures included.
    pub async fn sync_all(&self) -> anyhow::Result<Vec<crate::pipeline::ConnectorRun>> {
        let _turn = self.pipeline.lock().await;
        let mut skipped = Vec::new();
        let mut runs = Vec::new();
        for index in 0.. {
            let started = Instant::now();
            let Some(pulled) = self.twin.sync(index, &mut skipped).await else {
                break;
            };
            let Some(run) = pulled else {
                continue;
            };
            self.metrics
                .ingest_duration
                .with_label_values(&[run.name.as_str()])
                .observe(started.elapsed().as_secs_f64());
            match &run.error {
                Some(e) => tracing::warn!(connector = %run.name, error = %e, "Sync failed"),
                None => tracing::info!(
                    connector = %run.name,
                    added = run.added,
                    updated = run.updated,
                    not_observed = run.not_observed,
                    "Synced"
                ),
            }
            runs.push(run);
        }
        for s in skipped {
            tracing::warn!(skipped = %s, "Record left out");
        }
        self.twin.resolve_identities().await?;
        self.evaluate_locked().await?;
        Ok(runs)
    }

    async fn evaluate_locked(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        let evaluation = self.twin.evaluate().await?;
        self.metrics
            .evaluation_duration
            .observe(started.elapsed().as_secs_f64());
        let mut current = self.findings.write().await;
        let before: BTreeSet<&str> = current
            .findings
            .iter()
            .map(|r| r.finding.fingerprint.as_str())
            .collect();
        for r in &evaluation.findings {
            if !before.contains(r.finding.fingerprint.as_str()) {
                self.metrics
                    .drift_detections
                    .with_label_values(&[r.finding.rule.as_str(), r.severity.as_str()])
                    .inc();
            }
        }
        for s in &evaluation.skipped {
            tracing::warn!(skipped = %s, "Left out of evaluation");
        }
        *current = evaluation;
        drop(current);
        self.refresh_counts().await;
        Ok(())
    }

    async fn refresh_counts(&self) {
        match self.twin.store.counts().await {
            Ok(counts) => {
                for (label, n) in counts {
                    self.metrics
                        .nodes
                        .with_label_values(&[label.as_str()])
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            Err(e) => tracing::warn!(error = %e, "Cannot count the twin's nodes"),
        }
    }

    fn role_of(&self, bearer: &str) -> Option<(Role, &str)> {
        auth::find(&self.tokens, bearer)
    }
}

/// The HTTP routes of the service.
pub fn router(service: Arc<Service>) -> Router {
    let limit = service.config.serve.body_limit_bytes;
    let scim = service.scim.clone();
    let mut app = Router::new()
        .merge(webhooks::routes())
        .merge(api::routes())
        .layer(axum::middleware::map_response(api::one_error_shape))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(service);
    if let Some(scim) = scim {
        app = app.merge(org_mesh_scim::routes(scim));
    }
    app.fallback(not_found)
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

    let syncer = service.clone();
    let sync_task = tokio::spawn(async move {
        loop {
            match syncer.sync_all().await {
                Err(e) => tracing::error!(error = %format!("{e:#}"), "Scheduled sync failed"),
                Ok(runs) if runs.iter().any(|r| r.error.is_some()) => {
                    tracing::warn!("Some connectors failed to sync; see above and /api/v1/sync")
                }
                Ok(_) => {}
            }
            syncer.ready.store(true, Ordering::Relaxed);
            if interval == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(interval)).await;
        }
    });

    let app = router(service.clone());
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        shutdown.await;
        let _ = stopping.send(());
    };
    let serving = axum::serve(listener, app).with_graceful_shutdown(graceful);
    // Requests in flight get a bounded time to finish: one stalled client
    // must not hold a pod's termination for ever.
    let deadline = async {
        if stopped.await.is_ok() {
            tokio::time::sleep(DRAIN_DEADLINE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let served = tokio::select! {
        result = serving => result.context("serving HTTP"),
        () = deadline => {
            tracing::warn!(secs = DRAIN_DEADLINE.as_secs(), "Requests still in flight at the drain deadline; stopping anyway");
            Ok(())
        }
    };
    sync_task.abort();
    tracing::info!("Stopped");
    served
}

impl Service {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}
