//! Pushed changes, from webhooks and SCIM, on their way into the twin.
//!
//! A route accepts a change once its connector has turned it into records:
//! the records are queued, durably, and the sender is answered. Workers on
//! every replica take changes from the queue, apply them and evaluate, and
//! acknowledge each only once it is in the twin and evaluated. A worker
//! takes the changes already waiting together, up to a batch, and
//! evaluates once after applying them all. A change a worker took and
//! never acknowledged, because its replica died, is taken over by another
//! after it has been idle for `cache.reclaim_after_secs`. While the graph
//! store is unreachable or busy a worker holds its change and retries, so
//! accepted changes wait in the queue rather than being lost; applying a
//! change twice is harmless, since a repeated observation changes nothing.

use std::sync::Arc;
use std::time::Duration;

use org_mesh_cache::Work;
use org_mesh_model::{Batch, ChangeSet, Timestamp};
use serde::{Deserialize, Serialize};

use super::Service;

/// One accepted change as it waits in the queue.
#[derive(Debug, Serialize, Deserialize)]
pub struct Change {
    /// The connector instance whose records these are.
    pub source: String,
    /// When the change was accepted: the time the twin records it was
    /// observed, however long it waited.
    #[serde(with = "time::serde::rfc3339")]
    pub accepted_at: Timestamp,
    pub batch: Batch,
}

/// How long an idle worker waits on the queue before it looks for work
/// abandoned by a dead replica again.
const POLL: Duration = Duration::from_secs(1);
/// The longest pause between retries while a backend is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often a change the store refuses as such (not for being unreachable
/// or busy) is tried before it is dropped as unappliable.
const ATTEMPTS_WHEN_REFUSED: u32 = 3;
/// The most changes a worker takes, applies and evaluates together. Each
/// round re-resolves identities, which reads every account, so under a
/// backlog a large round spreads that over many changes; a round's first
/// change waits for the others' writes, a few milliseconds each.
const MAX_BATCH: usize = 256;

impl Service {
    /// Queues a change; it is durable when this returns.
    pub async fn accept(&self, source: &str, batch: Batch) -> anyhow::Result<String> {
        let change = Change {
            source: source.to_string(),
            accepted_at: time::OffsetDateTime::now_utc(),
            batch,
        };
        let payload = serde_json::to_vec(&change)?;
        let id = self.shared.queue.push(&payload).await.map_err(|e| {
            self.health.cache_failed(&e);
            anyhow::anyhow!("queueing the change: {e}")
        })?;
        self.health.cache_ok();
        tracing::debug!(%source, id = %id, "Change accepted");
        Ok(id)
    }

    /// Applies one change, retrying while the store is unreachable, and
    /// returns what it changed in the twin. When this returns the change
    /// may be acknowledged: it is applied, or it can never be.
    async fn settle(&self, work: &Work) -> ChangeSet {
        let change: Change = match serde_json::from_slice(&work.payload) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(id = %work.id, error = %e, "Dropped a queued change that cannot be read");
                self.metrics
                    .changes
                    .with_label_values(&["unreadable"])
                    .inc();
                return ChangeSet::default();
            }
        };
        let mut changed = ChangeSet::default();
        let applied = self
            .retrying(
                &work.id,
                &change.source,
                "Applying a queued change",
                || async {
                    let applied = self
                        .apply(&change.source, change.accepted_at, change.batch.clone())
                        .await?;
                    log_left_out(&change.source, &applied.skipped);
                    Ok(applied.changes)
                },
            )
            .await;
        let outcome = match applied {
            Some(changes) => {
                changed = changes;
                "applied"
            }
            None => "failed",
        };
        self.metrics.changes.with_label_values(&[outcome]).inc();
        changed
    }

    /// Evaluates the twin after changes were applied, retrying while the
    /// store is unreachable, so that the changes stay unacknowledged until
    /// their findings are known.
    async fn settle_evaluation(&self, first: &Work, changes: &ChangeSet) {
        self.retrying(
            &first.id,
            "queue",
            "Evaluating after queued changes",
            || self.evaluate_changed(changes),
        )
        .await;
    }

    /// Runs `step` until it succeeds, or until the store has refused it
    /// (rather than been unreachable or busy) a few times; returns what it
    /// gave when it succeeded.
    async fn retrying<T, F, Fut>(
        &self,
        id: &str,
        source: &str,
        what: &str,
        mut step: F,
    ) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let mut backoff = Duration::from_millis(250);
        let mut refusals = 0;
        loop {
            let e = match step().await {
                Ok(done) => {
                    self.health.graph_ok();
                    return Some(done);
                }
                Err(e) => e,
            };
            let transient = e
                .chain()
                .find_map(|c| c.downcast_ref::<org_mesh_store::StoreError>())
                .is_some_and(org_mesh_store::StoreError::is_transient);
            if !transient {
                refusals += 1;
                if refusals >= ATTEMPTS_WHEN_REFUSED {
                    tracing::error!(
                        id,
                        source,
                        error = %format!("{e:#}"),
                        "{what} failed: the store refuses it; dropped"
                    );
                    return None;
                }
            } else if self.twin.store.ping().await.is_err() {
                self.health.graph_failed(&format!("{e:#}"));
            }
            tracing::warn!(
                id,
                source,
                error = %format!("{e:#}"),
                retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                "{what} failed; it stays queued"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn acknowledge(&self, work: &Work) {
        let mut backoff = Duration::from_millis(250);
        // An acknowledgement that never lands only means the change is
        // applied again by whoever reclaims it, which changes nothing; a
        // few tries are enough.
        for _ in 0..5 {
            match self.shared.queue.ack(&work.id).await {
                Ok(()) => return,
                Err(e) => {
                    self.health.cache_failed(&e);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        tracing::warn!(id = %work.id, "Could not acknowledge an applied change; it will be applied again");
    }

    pub(super) async fn refresh_depth(&self) {
        if let Ok(depth) = self.shared.queue.depth().await {
            self.metrics
                .queue_depth
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
    }
}

/// How long a consumer of the shared queue may go unheard before it is
/// forgotten. Replicas read every second, so this is a replica long gone.
const FORGET_CONSUMERS_AFTER: Duration = Duration::from_secs(3600);
/// How often the list of consumers is tidied.
const TIDY_EVERY: Duration = Duration::from_secs(600);

/// Takes changes from the queue until the task is stopped.
pub async fn work(service: Arc<Service>) {
    let consumer = service.replica.clone();
    let reclaim_after = Duration::from_secs(service.config.cache.reclaim_after_secs);
    let mut backoff = Duration::from_millis(250);
    let mut tidied = std::time::Instant::now();
    loop {
        if tidied.elapsed() >= TIDY_EVERY {
            tidied = std::time::Instant::now();
            match service
                .shared
                .queue
                .forget_idle_consumers(FORGET_CONSUMERS_AFTER)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(forgotten = n, "Forgot consumers of replicas long gone"),
                Err(e) => tracing::warn!(error = %e, "Cannot tidy the queue's consumers"),
            }
        }
        // Work a dead replica took and never finished comes first: it was
        // accepted before anything still waiting unread.
        let taken = match service
            .shared
            .queue
            .reclaim(&consumer, reclaim_after, 16)
            .await
        {
            Ok(reclaimed) if !reclaimed.is_empty() => {
                tracing::info!(
                    count = reclaimed.len(),
                    "Took over changes another worker left"
                );
                Ok(reclaimed)
            }
            Ok(_) => service
                .shared
                .queue
                .next(&consumer, POLL)
                .await
                .map(|w| w.into_iter().collect()),
            Err(e) => Err(e),
        };
        let taken = match taken {
            Ok(t) => {
                service.health.cache_ok();
                backoff = Duration::from_millis(250);
                t
            }
            Err(e) => {
                service.health.cache_failed(&e);
                tracing::warn!(error = %e, "Cannot read the change queue");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let mut taken = taken;
        // Under a backlog, evaluating the whole twin after every change is
        // what limits throughput; changes already waiting are applied
        // together and evaluated once.
        while !taken.is_empty() && taken.len() < MAX_BATCH {
            match service.shared.queue.next(&consumer, Duration::ZERO).await {
                Ok(Some(w)) => taken.push(w),
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "No more queued changes for this batch");
                    break;
                }
            }
        }
        let mut changes = ChangeSet::default();
        for w in &taken {
            let applied = service.settle(w).await;
            changes.nodes.extend(applied.nodes);
            changes.edges.extend(applied.edges);
        }
        if let Some(first) = taken.first() {
            service.settle_evaluation(first, &changes).await;
        }
        for w in &taken {
            service.acknowledge(w).await;
        }
        service.refresh_depth().await;
    }
}

/// How many records left out of one change are logged one by one; the
/// rest are counted in one line, so that a request naming thousands of
/// members the twin does not have writes a few lines, not thousands.
const LEFT_OUT_SHOWN: usize = 5;

fn log_left_out(source: &str, skipped: &[org_mesh_store::Skipped]) {
    for s in skipped.iter().take(LEFT_OUT_SHOWN) {
        tracing::warn!(%source, record = %s.record, reason = %s.reason, "Record left out");
    }
    if skipped.len() > LEFT_OUT_SHOWN {
        tracing::warn!(
            %source,
            more = skipped.len() - LEFT_OUT_SHOWN,
            total = skipped.len(),
            "More records of the same change left out"
        );
    }
}
