//! Message retention: the organisation's text stays in the twin only as
//! long as `retention.message_days` says, then goes with its edges and its
//! history through [`GraphStore::forget`].
//!
//! `org-mesh serve` sweeps at start and every `retention.interval_secs`;
//! `org-mesh scan` sweeps once after syncing. What a sweep logs is counts:
//! the text of a message never reaches a log line.

use org_mesh_model::{NodeRef, StoredNode, Timestamp, Value};
use org_mesh_store::{Forgotten, GraphStore, StoreError};

use crate::config::{MAX_MESSAGE_DAYS, RetentionConfig};

/// The label of the nodes retention removes.
pub const MESSAGE: &str = "Message";

/// Messages forgotten in one store call: few enough that a call stays
/// short and applies queued behind it wait little, many enough that a
/// large backlog takes few calls.
pub const CHUNK: usize = 200;

/// The moment before which a message has expired, or `None` when
/// retention is off (`message_days` 0).
pub fn cutoff(config: &RetentionConfig, now: Timestamp) -> Option<Timestamp> {
    if config.message_days == 0 {
        return None;
    }
    // The configuration refuses longer spans; the clamp only keeps a
    // configuration built by hand from overflowing.
    let days = i64::try_from(config.message_days.min(MAX_MESSAGE_DAYS)).ok()?;
    now.checked_sub(time::Duration::days(days))
}

/// When a message was written: its `created_at`, or, for a message that
/// does not say, when the twin first saw it.
pub fn written_at(message: &StoredNode) -> Timestamp {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    match message.node.properties.get("created_at") {
        Some(Value::Timestamp(at)) => *at,
        Some(Value::Text(at)) => {
            Timestamp::parse(at, rfc3339).unwrap_or(message.provenance.first_seen)
        }
        _ => message.provenance.first_seen,
    }
}

/// Whether a message was written before `cutoff`.
pub fn expired(message: &StoredNode, cutoff: Timestamp) -> bool {
    written_at(message) < cutoff
}

/// The expired messages of the twin, forgotten a chunk at a time so that
/// applies queued behind a large sweep get their turn in between.
#[derive(Debug, Default)]
pub struct Sweep {
    pending: Vec<NodeRef>,
    total: usize,
}

impl Sweep {
    /// Finds the messages written before `cutoff`.
    ///
    /// Reads every message, text included: the Neo4j layout keeps
    /// properties as JSON, so neither backend can select by date without
    /// reading them.
    pub async fn find(store: &dyn GraphStore, cutoff: Timestamp) -> Result<Sweep, StoreError> {
        let mut pending: Vec<NodeRef> = store
            .nodes(MESSAGE)
            .await?
            .iter()
            .filter(|m| expired(m, cutoff))
            .map(|m| m.node.reference())
            .collect();
        // Popped from the end, so the sweep runs in key order.
        pending.reverse();
        let total = pending.len();
        Ok(Sweep { pending, total })
    }

    /// How many messages the sweep found.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How many of them are not forgotten yet.
    pub fn left(&self) -> usize {
        self.pending.len()
    }

    /// Forgets the next chunk; `None` when nothing is left.
    pub async fn step(&mut self, store: &dyn GraphStore) -> Result<Option<Forgotten>, StoreError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let at = self.pending.len().saturating_sub(CHUNK);
        let chunk = self.pending.split_off(at);
        let forgotten = store.forget(&chunk).await?;
        tracing::debug!(
            messages = chunk.len(),
            nodes = forgotten.nodes,
            edges = forgotten.edges,
            history = forgotten.history,
            left = self.pending.len(),
            "Forgot a chunk of expired messages"
        );
        Ok(Some(forgotten))
    }

    /// Forgets everything the sweep found.
    pub async fn finish(mut self, store: &dyn GraphStore) -> Result<Forgotten, StoreError> {
        let mut total = Forgotten::default();
        while let Some(forgotten) = self.step(store).await? {
            total += forgotten;
        }
        Ok(total)
    }
}

/// One sweep from start to end, for `org-mesh scan`: no other writer runs
/// beside it, so it needs no lock and no chunk-by-chunk care.
pub async fn sweep_once(
    store: &dyn GraphStore,
    config: &RetentionConfig,
    now: Timestamp,
) -> Result<Forgotten, StoreError> {
    let Some(cutoff) = cutoff(config, now) else {
        return Ok(Forgotten::default());
    };
    let forgotten = Sweep::find(store, cutoff).await?.finish(store).await?;
    log(config, &forgotten);
    Ok(forgotten)
}

/// The one log line of a sweep that removed something.
pub fn log(config: &RetentionConfig, forgotten: &Forgotten) {
    if forgotten.nodes > 0 {
        tracing::info!(
            messages = forgotten.nodes,
            edges = forgotten.edges,
            history = forgotten.history,
            message_days = config.message_days,
            "Forgot expired messages"
        );
    }
}

#[cfg(test)]
mod tests {
    use org_mesh_model::{Node, Properties, Provenance};
    use time::macros::datetime;

    use super::*;

    fn message(created_at: Option<Value>, first_seen: Timestamp) -> StoredNode {
        let mut properties = Properties::new();
        properties.insert("body".into(), Value::Text("text".into()));
        if let Some(at) = created_at {
            properties.insert("created_at".into(), at);
        }
        StoredNode {
            node: Node {
                label: MESSAGE.into(),
                key: "github:o/r/issue/1".into(),
                properties,
            },
            provenance: Provenance {
                source: "github".into(),
                first_seen,
                last_seen: first_seen,
                not_observed_since: None,
            },
        }
    }

    fn days(message_days: u64) -> RetentionConfig {
        RetentionConfig {
            message_days,
            ..RetentionConfig::default()
        }
    }

    const NOW: Timestamp = datetime!(2025-06-30 12:00 UTC);

    #[test]
    fn the_cutoff_is_now_less_the_days_and_zero_turns_retention_off() {
        assert_eq!(
            cutoff(&days(180), NOW),
            Some(datetime!(2025-01-01 12:00 UTC))
        );
        assert_eq!(cutoff(&days(0), NOW), None);
        let far = cutoff(&days(u64::MAX), NOW);
        assert!(
            far.is_some_and(|c| c < datetime!(1926-01-01 0:00 UTC)),
            "{far:?}"
        );
    }

    #[test]
    fn created_at_decides_and_first_seen_stands_in_for_it() {
        let cutoff = datetime!(2025-01-01 12:00 UTC);
        let recent_sight = datetime!(2025-06-29 0:00 UTC);
        let old = Value::Timestamp(datetime!(2024-05-01 0:00 UTC));
        assert!(expired(&message(Some(old), recent_sight), cutoff));
        let new = Value::Timestamp(datetime!(2025-06-01 0:00 +02:00));
        assert!(!expired(
            &message(Some(new), datetime!(2020-01-01 0:00 UTC)),
            cutoff
        ));
        assert!(!expired(&message(None, recent_sight), cutoff));
        assert!(expired(
            &message(None, datetime!(2024-12-31 0:00 UTC)),
            cutoff
        ));
        let as_text = Value::Text("2024-05-01T00:00:00Z".into());
        assert!(expired(&message(Some(as_text), recent_sight), cutoff));
        let unreadable = Value::Text("last spring".into());
        assert!(!expired(&message(Some(unreadable), recent_sight), cutoff));
    }

    /// A backlog larger than a chunk goes in several calls, and only the
    /// expired messages go.
    #[tokio::test]
    async fn a_sweep_forgets_expired_messages_chunk_by_chunk() {
        let store = org_mesh_store::EmbeddedStore::in_memory().expect("store");
        let mut batch = org_mesh_model::Batch::default();
        let old = CHUNK * 2 + 7;
        for i in 0..old + 3 {
            let created = if i < old { 400 } else { 2 };
            let mut m = message(
                Some(Value::Timestamp(NOW - time::Duration::days(created))),
                NOW,
            );
            m.node.key = format!("github:o/r/issue-comment/{i}");
            batch.nodes.push(m.node);
        }
        store.apply("github", NOW, batch).await.expect("apply");

        let cutoff = cutoff(&days(180), NOW).expect("on");
        let mut sweep = Sweep::find(&store, cutoff).await.expect("find");
        assert_eq!(sweep.total(), old);
        let mut calls = Vec::new();
        while let Some(f) = sweep.step(&store).await.expect("step") {
            calls.push(f.nodes);
        }
        assert_eq!(calls, [200, 200, 7]);
        let left = store.nodes(MESSAGE).await.expect("nodes");
        assert_eq!(left.len(), 3);
        assert!(left.iter().all(|m| !expired(m, cutoff)));
        let again = sweep_once(&store, &days(180), NOW).await.expect("sweep");
        assert_eq!(again, Forgotten::default());
    }

    #[test]
    fn a_message_written_at_the_cutoff_stays() {
        let cutoff = datetime!(2025-01-01 12:00 UTC);
        let at = Value::Timestamp(datetime!(2025-01-01 13:00 +01:00));
        assert!(!expired(&message(Some(at), cutoff), cutoff));
    }
}
