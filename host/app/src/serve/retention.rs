//! The retention job of the service: at start and every
//! `retention.interval_secs`, one replica forgets the messages older than
//! `retention.message_days` (see [`crate::retention`]), counts them in
//! `org_mesh_messages_forgotten_total`, and evaluates the twin again so
//! that findings and campaigns no longer rest on them.

use std::sync::Arc;
use std::time::Duration;

use org_mesh_cache::LockToken;
use org_mesh_model::Timestamp;
use org_mesh_store::{Forgotten, StoreError};

use super::{HOST_SCOPE, Service, unix_now};
use crate::retention::{self, Sweep};

/// Held while one replica sweeps.
const LOCK: &str = "retention";
/// Extended after every chunk, so only a replica that stops mid-sweep lets
/// it lapse, and then holds the others back no longer than this.
const LOCK_TTL: Duration = Duration::from_secs(120);
/// When a replica last finished a sweep, in unix seconds.
const LAST_SWEEP: &str = "retention/last";

/// Sweeps at start and then every interval, until the service stops.
pub(super) async fn run(service: Arc<Service>) {
    let config = service.config.retention;
    if config.message_days == 0 {
        tracing::info!("Message retention is off: messages stay in the twin");
        return;
    }
    loop {
        service.sweep_messages().await;
        if config.interval_secs == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(config.interval_secs)).await;
    }
}

impl Service {
    #[tracing::instrument(name = "org_mesh.retention.sweep", skip_all)]
    async fn sweep_messages(&self) {
        let config = self.config.retention;
        let Some(cutoff) = retention::cutoff(&config, time::OffsetDateTime::now_utc()) else {
            return;
        };
        if self.swept_recently().await {
            tracing::debug!("Swept by another replica within the interval");
            return;
        }
        let coordination = &self.shared.coordination;
        let token = match coordination.try_lock(LOCK, LOCK_TTL).await {
            Ok(Some(token)) => Some(token),
            Ok(None) => {
                tracing::debug!("Another replica is sweeping expired messages");
                return;
            }
            Err(e) => {
                // Forgetting is idempotent, so two replicas sweeping at once
                // repeat work but remove nothing twice.
                self.health.cache_failed(&e);
                tracing::warn!(error = %e, "Sweeping expired messages without the shared lock");
                None
            }
        };
        let swept = self.sweep(cutoff, token.as_ref()).await;
        if let Some(token) = &token
            && let Err(e) = coordination.unlock(LOCK, token).await
        {
            tracing::warn!(error = %e, "Cannot release the retention lock; it lapses by itself");
        }
        match swept {
            Ok(forgotten) => {
                self.mark_swept().await;
                retention::log(&config, &forgotten);
                if forgotten.nodes > 0 {
                    self.evaluate_after_forgetting().await;
                }
            }
            Err(e) => tracing::warn!(
                error = %e,
                "Sweeping expired messages failed; trying again at the next interval"
            ),
        }
    }

    /// Forgets the expired messages a chunk at a time. Each chunk takes the
    /// pipeline's turn, so an evaluation never reads the twin halfway
    /// through a chunk, and queued changes are applied between chunks.
    async fn sweep(
        &self,
        cutoff: Timestamp,
        token: Option<&LockToken>,
    ) -> Result<Forgotten, StoreError> {
        let store = self.twin.store.as_ref();
        let mut sweep = Sweep::find(store, cutoff).await?;
        let mut total = Forgotten::default();
        loop {
            let step = {
                let _turn = self.pipeline.lock().await;
                sweep.step(store).await?
            };
            let Some(forgotten) = step else {
                return Ok(total);
            };
            self.metrics.messages_forgotten.inc_by(forgotten.nodes);
            total += forgotten;
            if let Some(token) = token
                && !self.keep_lock(token).await
            {
                tracing::warn!(
                    left = sweep.left(),
                    "Lost the retention lock; leaving the rest of the sweep to the next one"
                );
                return Ok(total);
            }
        }
    }

    async fn keep_lock(&self, token: &LockToken) -> bool {
        match self
            .shared
            .coordination
            .extend_lock(LOCK, token, LOCK_TTL)
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot extend the retention lock");
                true
            }
        }
    }

    async fn evaluate_after_forgetting(&self) {
        let _turn = self.pipeline.lock().await;
        let version = self.changed().await;
        if let Err(e) = self.evaluate_locked(true, version, None).await {
            tracing::warn!(error = %format!("{e:#}"), "Cannot evaluate the twin after forgetting messages");
        }
    }

    /// Whether another replica finished a sweep within the last interval.
    async fn swept_recently(&self) -> bool {
        let interval = self.config.retention.interval_secs;
        if interval == 0 {
            return false;
        }
        let last = self
            .shared
            .coordination
            .kv_get(HOST_SCOPE, LAST_SWEEP)
            .await
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<u64>().ok());
        last.is_some_and(|last| unix_now().saturating_sub(last) < interval.saturating_mul(9) / 10)
    }

    async fn mark_swept(&self) {
        let now = unix_now().to_string();
        if let Err(e) = self
            .shared
            .coordination
            .kv_set(HOST_SCOPE, LAST_SWEEP, now.as_bytes())
            .await
        {
            tracing::warn!(error = %e, "Cannot record the sweep in the shared state");
        }
    }
}
