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
    /// True the first time an id is seen.
    fn first(&mut self, id: &str) -> bool {
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
        let twin = Twin::open(&config, &Quiet).await?;
        for s in &twin.skipped {
            tracing::error!(skipped = %s, "Left out of the service");
        }
        let metrics = Metrics::new(&twin.metrics).context("registering metrics")?;
        let mut tokens = Vec::new();
        for t in &config.serve.tokens {
            let secret = t
                .secret
                .read()
                .map_err(|e| anyhow::anyhow!("serve.tokens.{}: {e}", t.name))?;
            tokens.push(auth::Token::new(&t.name, t.role, &secret));
        }
        let mut webhooks = BTreeMap::new();
        for c in &config.connectors {
            if let Some(w) = &c.webhook {
                let secret = w
                    .secret
                    .read()
                    .map_err(|e| anyhow::anyhow!("connectors.{}.webhook.secret: {e}", c.name))?;
                if secret.is_empty() {
                    anyhow::bail!("connectors.{}.webhook.secret is empty", c.name);
                }
                webhooks.insert(c.name.clone(), (w.provider, secret));
            }
        }
        let sink = Arc::new(scim::TwinSink::default());
        let scim = Self::scim(&config, sink.clone())?;
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
        sink: Arc<scim::TwinSink>,
    ) -> anyhow::Result<Option<Arc<org_mesh_scim::ScimService>>> {
        let mut endpoints = BTreeMap::new();
        for c in &config.connectors {
            if let Some(s) = &c.scim {
                let token = s
                    .token
                    .read()
                    .map_err(|e| anyhow::anyhow!("connectors.{}.scim.token: {e}", c.name))?;
                if token.is_empty() {
                    anyhow::bail!("connectors.{}.scim.token is empty", c.name);
                }
                endpoints.insert(c.name.clone(), org_mesh_scim::Endpoint { token });
            }
        }
        if endpoints.is_empty() {
            return Ok(None);
        }
        let path = config.state_dir.join("scim.redb");
        let repository = org_mesh_scim::EmbeddedRepository::open(&path)
            .with_context(|| format!("opening the SCIM store at {}", path.display()))?;
        let service = org_mesh_scim::ScimService::new(Arc::new(repository), sink, endpoints)
            .with_body_limit(config.serve.body_limit_bytes);
        Ok(Some(Arc::new(service)))
    }

    fn first_delivery(&self, id: &str) -> bool {
        match self.deliveries.lock() {
            Ok(mut d) => d.first(id),
            Err(poisoned) => poisoned.into_inner().first(id),
        }
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

    /// Syncs every connector, then evaluates once.
    pub async fn sync_all(&self) -> anyhow::Result<()> {
        let _turn = self.pipeline.lock().await;
        let mut skipped = Vec::new();
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
        }
        for s in skipped {
            tracing::warn!(skipped = %s, "Record left out");
        }
        self.twin.resolve_identities().await?;
        self.evaluate_locked().await
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
            if let Err(e) = syncer.sync_all().await {
                tracing::error!(error = %format!("{e:#}"), "Scheduled sync failed");
            }
            syncer.ready.store(true, Ordering::Relaxed);
            if interval == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(interval)).await;
        }
    });

    let app = router(service.clone());
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP");
    sync_task.abort();
    tracing::info!("Stopped");
    served
}

impl Service {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}
