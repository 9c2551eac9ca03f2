//! Live updates: `GET /api/v1/events`, a server-sent event stream that says
//! which part of the service's state changed (findings, proposals, plugins,
//! reloads), so that a client such as the console fetches that part again.
//!
//! One task compares a digest of each part once a second while anyone is
//! listening. Comparing the state rather than hooking every place that
//! changes it also sees what other replicas did to the shared twin, which a
//! replica-local notification would miss. Each stream is bounded: a
//! heartbeat keeps idle proxies from cutting it, it ends after
//! [`STREAM_LIFETIME`] (clients reconnect), at shutdown, and at most
//! [`MAX_STREAMS`] are open per replica.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};

use super::Service;

/// How often the state is compared while a stream is open.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Comments sent on an idle stream, shorter than common proxy idle cuts.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// A stream ends after this long; the client opens a new one, and so shows
/// a revoked token's refusal within this time.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Open streams per replica; one more is refused with 503.
pub const MAX_STREAMS: usize = 64;

/// The parts of the state a client can ask to be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topic {
    Findings,
    Proposals,
    Plugins,
    Reloads,
    /// Anything may have changed: sent when watching starts afresh.
    All,
}

impl Topic {
    const ALL: [Topic; 4] = [
        Topic::Findings,
        Topic::Proposals,
        Topic::Plugins,
        Topic::Reloads,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Topic::Findings => "findings",
            Topic::Proposals => "proposals",
            Topic::Plugins => "plugins",
            Topic::Reloads => "reloads",
            Topic::All => "all",
        }
    }
}

/// The senders of every open stream.
#[derive(Debug)]
pub struct Feed {
    changes: broadcast::Sender<Topic>,
    closing: watch::Sender<bool>,
    streams: Arc<Semaphore>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            changes: broadcast::channel(32).0,
            closing: watch::channel(false).0,
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        }
    }
}

impl Feed {
    /// Ends every open stream and refuses new ones, so that a graceful
    /// shutdown does not wait for clients that would never hang up.
    pub fn close(&self) {
        self.closing.send_replace(true);
        self.streams.close();
    }

    /// A place among the open streams, or `None` when all are taken or the
    /// service is stopping.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.streams.clone().try_acquire_owned().ok()
    }
}

/// Watches the state for changes and tells the open streams. Runs until
/// aborted.
pub async fn watch_state(service: Arc<Service>) {
    let mut last: BTreeMap<Topic, u64> = BTreeMap::new();
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        if service.events.changes.receiver_count() == 0 {
            last.clear();
            continue;
        }
        // Nobody was listening, so nothing was compared: a change between a
        // client's last fetch and this first look would be missed, so every
        // client is told to fetch once more.
        if last.is_empty() {
            for topic in Topic::ALL {
                if let Ok(digest) = service.digest(topic).await {
                    last.insert(topic, digest);
                }
            }
            let _ = service.events.changes.send(Topic::All);
            continue;
        }
        for topic in Topic::ALL {
            let digest = match service.digest(topic).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::debug!(topic = topic.as_str(), error = %format!("{e:#}"), "Cannot read the state for live updates");
                    continue;
                }
            };
            if last
                .insert(topic, digest)
                .is_some_and(|before| before != digest)
            {
                tracing::debug!(
                    topic = topic.as_str(),
                    "State changed; telling live clients"
                );
                // No receiver left since the check above is fine: nobody
                // needs telling.
                let _ = service.events.changes.send(topic);
            }
        }
    }
}

fn hash_of(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

impl Service {
    /// A digest of what the API shows for `topic`: equal digests, equal
    /// answers.
    async fn digest(&self, topic: Topic) -> anyhow::Result<u64> {
        Ok(match topic {
            Topic::Findings => {
                let current = self.fresh_findings().await;
                let shown: Vec<String> = current
                    .findings
                    .iter()
                    .map(|r| super::api::reported_json(r).to_string())
                    .collect();
                hash_of(&shown)
            }
            Topic::Proposals => {
                let all = crate::actions::Proposals {
                    store: self.twin.store.as_ref(),
                }
                .all()
                .await?;
                hash_of(&serde_json::to_string(&all)?)
            }
            Topic::Plugins => {
                let shown: Vec<_> = self
                    .twin
                    .plugins()
                    .iter()
                    .map(|p| {
                        (
                            p.instance().to_string(),
                            p.digest().to_string(),
                            p.stats().failures(),
                            p.stats().quarantine_left().map(|d| d.as_secs()),
                        )
                    })
                    .collect();
                hash_of(&(shown, self.twin.policy().version.clone()))
            }
            Topic::Reloads => hash_of(&serde_json::to_string(&self.reloads.list())?),
            Topic::All => 0,
        })
    }
}

/// What a stream holds between two events.
struct Listening {
    changes: broadcast::Receiver<Topic>,
    closing: watch::Receiver<bool>,
    deadline: tokio::time::Instant,
    greeted: bool,
    _place: OwnedSemaphorePermit,
}

fn change(topic: Topic) -> Event {
    Event::default()
        .event("change")
        .data(format!(r#"{{"topic":"{}"}}"#, topic.as_str()))
}

/// The event stream of one client: `ready` once, then `change` events,
/// until shutdown or the end of its lifetime.
pub fn stream(
    service: &Service,
    place: OwnedSemaphorePermit,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>> + use<>> {
    let state = Listening {
        changes: service.events.changes.subscribe(),
        closing: service.events.closing.subscribe(),
        deadline: tokio::time::Instant::now() + STREAM_LIFETIME,
        greeted: false,
        _place: place,
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        if !s.greeted {
            s.greeted = true;
            let ready = Event::default().event("ready").data("{}");
            return Some((Ok(ready), s));
        }
        loop {
            if *s.closing.borrow() {
                return None;
            }
            tokio::select! {
                received = s.changes.recv() => match received {
                    Ok(topic) => return Some((Ok(change(topic)), s)),
                    // A client that fell behind fetches everything again.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Some((Ok(change(Topic::All)), s));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                changed = s.closing.changed() => if changed.is_err() {
                    return None;
                },
                () = tokio::time::sleep_until(s.deadline) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT))
}
