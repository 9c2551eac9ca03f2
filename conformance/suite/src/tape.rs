//! The host calls a cassette holds besides HTTP: key-value calls and clock
//! readings. A [`Tape`] stands in the runtime for both the coordination
//! backend and the clocks. Recording, it passes key-value calls to an
//! in-memory store and reads the system clocks, writing each call and
//! reading down. Replaying, it answers from the cassette in order, and a
//! call the cassette does not expect is answered with a backend error (a
//! clock cannot fail, so it gets the last reading instead) and noted, so
//! [`Tape::check`] can name the first difference.
//!
//! Keys and values often hold URLs of the server the plugin talked to, whose
//! port differs between recording and replay; as in the HTTP exchanges, that
//! server's base URL is written as [`BASE`] and put back on replay.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use org_mesh_cache::memory::MemoryCoordination;
use org_mesh_cache::{Budget, CacheError, Claim, Coordination, LockToken};
use org_mesh_plugin_testkit::cassette::{BASE, Bytes, Cassette, ClockReading, KvCall};
use org_mesh_runtime::Clock;

/// What the tape has seen so far.
#[derive(Debug, Default)]
struct Log {
    kv: Vec<KvCall>,
    clock: Vec<ClockReading>,
    /// Replay only: how far into each recorded list the plugin has come.
    kv_next: usize,
    clock_next: usize,
    /// Replay only: calls that differed from the cassette, in order.
    differences: Vec<String>,
    /// The base URL of the server the plugin talks to, if one was named.
    base: Option<String>,
}

#[derive(Debug)]
enum Mode {
    Recording {
        started: Instant,
    },
    Replaying {
        kv: Vec<KvCall>,
        clock: Vec<ClockReading>,
    },
}

/// Key-value calls and clock readings of plugin calls, recorded or replayed.
/// Cheap to clone; clones share the log.
#[derive(Debug, Clone)]
pub struct Tape {
    mode: Arc<Mode>,
    log: Arc<Mutex<Log>>,
    /// Keeps what key-value calls leave behind while recording, and serves
    /// every coordination call a cassette does not hold (locks, budgets).
    store: Arc<MemoryCoordination>,
}

const BACKEND: &str = "tape";

impl Tape {
    pub fn recording() -> Tape {
        Tape::new(Mode::Recording {
            started: Instant::now(),
        })
    }

    pub fn replaying(cassette: &Cassette) -> Tape {
        Tape::new(Mode::Replaying {
            kv: cassette.kv.clone(),
            clock: cassette.clock.clone(),
        })
    }

    fn new(mode: Mode) -> Tape {
        Tape {
            mode: Arc::new(mode),
            log: Arc::default(),
            store: Arc::default(),
        }
    }

    /// Names the base URL of the server the plugin is pointed at, so that
    /// it is written as [`BASE`] in what is recorded, and `BASE` in the
    /// cassette reads as it on replay.
    pub fn set_base(&self, base: &str) {
        self.log().base = Some(base.trim_end_matches('/').to_string());
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What was recorded: the key-value calls and the clock readings.
    pub fn recorded(&self) -> (Vec<KvCall>, Vec<ClockReading>) {
        let log = self.log();
        (log.kv.clone(), log.clock.clone())
    }

    /// On replay: `Ok` when the plugin made exactly the recorded key-value
    /// calls and clock readings, otherwise the first difference.
    pub fn check(&self) -> Result<(), String> {
        let Mode::Replaying { kv, clock } = &*self.mode else {
            return Ok(());
        };
        let log = self.log();
        if let Some(first) = log.differences.first() {
            return Err(first.clone());
        }
        if let Some(left) = kv.get(log.kv_next) {
            return Err(format!(
                "{} recorded key-value call(s) were not made, first: {}",
                kv.len() - log.kv_next,
                left.describe()
            ));
        }
        if log.clock_next < clock.len() {
            return Err(format!(
                "the plugin read the clocks {} time(s); the cassette holds {} readings",
                log.clock_next,
                clock.len()
            ));
        }
        Ok(())
    }

    /// The answer to one key-value call: the recorded one on replay, after
    /// checking the call is the one recorded.
    async fn kv(&self, call: KvCall) -> Result<Option<Vec<u8>>, CacheError> {
        match &*self.mode {
            Mode::Recording { .. } => self.record_kv(call).await,
            Mode::Replaying { kv, .. } => {
                let mut log = self.log();
                let index = log.kv_next;
                let expected = kv
                    .get(index)
                    .map(|e| rebase(e, BASE, log.base.as_deref().unwrap_or(BASE)));
                let same = expected.as_ref().is_some_and(|e| same_call(e, &call));
                let answer = match &expected {
                    Some(KvCall::Get { found, .. }) if same => {
                        Ok(found.as_ref().and_then(Bytes::raw))
                    }
                    Some(_) if same => Ok(None),
                    _ => {
                        let wanted = expected
                            .as_ref()
                            .map_or("nothing more".into(), KvCall::describe);
                        let problem = format!(
                            "key-value call {} was {}, expected {wanted}",
                            index + 1,
                            call.describe()
                        );
                        log.differences.push(problem.clone());
                        Err(CacheError::Backend {
                            backend: BACKEND,
                            message: problem,
                        })
                    }
                };
                log.kv_next += 1;
                log.kv.push(call);
                answer
            }
        }
    }

    async fn record_kv(&self, call: KvCall) -> Result<Option<Vec<u8>>, CacheError> {
        const SCOPE: &str = "recorded";
        let (answer, call) = match call {
            KvCall::Get { key, .. } => {
                let found = self.store.kv_get(SCOPE, &key).await?;
                let recorded = KvCall::Get {
                    key,
                    found: found.as_deref().map(Bytes::new),
                };
                (found, recorded)
            }
            KvCall::Set { key, value } => {
                let raw = value.raw().unwrap_or_default();
                self.store.kv_set(SCOPE, &key, &raw).await?;
                (None, KvCall::Set { key, value })
            }
            KvCall::Delete { key } => {
                self.store.kv_delete(SCOPE, &key).await?;
                (None, KvCall::Delete { key })
            }
        };
        let mut log = self.log();
        let call = match &log.base {
            Some(base) => rebase(&call, base, BASE),
            None => call,
        };
        log.kv.push(call);
        Ok(answer)
    }

    fn read_clock(&self, now: ClockReading) -> ClockReading {
        let mut log = self.log();
        match &*self.mode {
            Mode::Recording { .. } => {
                log.clock.push(now);
                now
            }
            Mode::Replaying { clock, .. } => {
                let index = log.clock_next;
                log.clock_next += 1;
                match clock.get(index) {
                    Some(recorded) if recorded.kind() == now.kind() => *recorded,
                    other => {
                        let wanted = other.map_or("no more readings", ClockReading::kind);
                        log.differences.push(format!(
                            "clock reading {} was of the {} clock, the cassette has {wanted}",
                            index + 1,
                            now.kind()
                        ));
                        // The latest recorded reading of the same clock keeps
                        // time from running backwards for the plugin.
                        clock
                            .iter()
                            .take(index)
                            .rev()
                            .find(|r| r.kind() == now.kind())
                            .copied()
                            .unwrap_or(now)
                    }
                }
            }
        }
    }
}

/// The call with one base URL written as another in its key and text.
fn rebase(call: &KvCall, from: &str, to: &str) -> KvCall {
    let text = |b: &Bytes| match b {
        Bytes::Text(t) => Bytes::Text(t.replace(from, to)),
        hex @ Bytes::Hex { .. } => hex.clone(),
    };
    match call {
        KvCall::Get { key, found } => KvCall::Get {
            key: key.replace(from, to),
            found: found.as_ref().map(text),
        },
        KvCall::Set { key, value } => KvCall::Set {
            key: key.replace(from, to),
            value: text(value),
        },
        KvCall::Delete { key } => KvCall::Delete {
            key: key.replace(from, to),
        },
    }
}

/// Whether a call is the recorded one; a get's answer is not part of it.
fn same_call(recorded: &KvCall, made: &KvCall) -> bool {
    match (recorded, made) {
        (KvCall::Get { key: a, .. }, KvCall::Get { key: b, .. }) => a == b,
        (a, b) => a == b,
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Clock for Tape {
    fn wall(&self) -> Duration {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        match self.read_clock(ClockReading::WallNs(nanos(now))) {
            ClockReading::WallNs(ns) | ClockReading::MonotonicNs(ns) => Duration::from_nanos(ns),
        }
    }

    fn monotonic_ns(&self) -> u64 {
        let now = match &*self.mode {
            Mode::Recording { started } => nanos(started.elapsed()),
            Mode::Replaying { .. } => 0,
        };
        match self.read_clock(ClockReading::MonotonicNs(now)) {
            ClockReading::WallNs(ns) | ClockReading::MonotonicNs(ns) => ns,
        }
    }
}

#[async_trait::async_trait]
impl Coordination for Tape {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    async fn claim_delivery(&self, id: &str, hold: Duration) -> Result<Claim, CacheError> {
        self.store.claim_delivery(id, hold).await
    }

    async fn finish_delivery(&self, id: &str, keep: Duration) -> Result<(), CacheError> {
        self.store.finish_delivery(id, keep).await
    }

    async fn release_delivery(&self, id: &str) -> Result<(), CacheError> {
        self.store.release_delivery(id).await
    }

    // The scope is the plugin instance's name, which a replay may bind
    // differently; a cassette holds one call's keys, so it is not kept.
    async fn kv_get(&self, _scope: &str, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.kv(KvCall::Get {
            key: key.to_string(),
            found: None,
        })
        .await
    }

    async fn kv_set(&self, _scope: &str, key: &str, value: &[u8]) -> Result<(), CacheError> {
        self.kv(KvCall::Set {
            key: key.to_string(),
            value: Bytes::new(value),
        })
        .await
        .map(|_| ())
    }

    async fn kv_delete(&self, _scope: &str, key: &str) -> Result<(), CacheError> {
        self.kv(KvCall::Delete {
            key: key.to_string(),
        })
        .await
        .map(|_| ())
    }

    async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<LockToken>, CacheError> {
        self.store.try_lock(name, ttl).await
    }

    async fn extend_lock(
        &self,
        name: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        self.store.extend_lock(name, token, ttl).await
    }

    async fn unlock(&self, name: &str, token: &LockToken) -> Result<bool, CacheError> {
        self.store.unlock(name, token).await
    }

    async fn record_budget(&self, scope: &str, budget: Budget) -> Result<(), CacheError> {
        self.store.record_budget(scope, budget).await
    }

    async fn budget(&self, scope: &str) -> Result<Option<Budget>, CacheError> {
        self.store.budget(scope).await
    }

    async fn bump_twin_version(&self) -> Result<u64, CacheError> {
        self.store.bump_twin_version().await
    }

    async fn twin_version(&self) -> Result<u64, CacheError> {
        self.store.twin_version().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cassette(kv: Vec<KvCall>, clock: Vec<ClockReading>) -> Cassette {
        Cassette {
            exchanges: Vec::new(),
            kv,
            clock,
        }
    }

    #[tokio::test]
    async fn a_recording_replays_to_the_same_answers() {
        let tape = Tape::recording();
        assert_eq!(tape.kv_get("a", "cursor").await.ok(), Some(None));
        assert!(tape.kv_set("a", "cursor", b"page-2").await.is_ok());
        assert_eq!(
            tape.kv_get("a", "cursor").await.ok(),
            Some(Some(b"page-2".to_vec()))
        );
        assert!(tape.kv_set("a", "raw", &[0xff, 0x00]).await.is_ok());
        assert!(tape.kv_delete("a", "cursor").await.is_ok());
        let wall = tape.wall();
        let (kv, clock) = tape.recorded();
        assert_eq!(kv.len(), 5);
        assert_eq!(clock, vec![ClockReading::WallNs(nanos(wall))]);

        let replay = Tape::replaying(&cassette(kv, clock));
        assert_eq!(replay.kv_get("other", "cursor").await.ok(), Some(None));
        assert!(replay.kv_set("other", "cursor", b"page-2").await.is_ok());
        assert_eq!(
            replay.kv_get("other", "cursor").await.ok(),
            Some(Some(b"page-2".to_vec()))
        );
        assert!(replay.kv_set("other", "raw", &[0xff, 0x00]).await.is_ok());
        assert!(replay.kv_delete("other", "cursor").await.is_ok());
        assert_eq!(replay.wall(), wall, "the recorded time, not today's");
        assert_eq!(replay.check(), Ok(()));
    }

    #[tokio::test]
    async fn the_server_base_url_is_recorded_as_a_placeholder_and_replayed_as_the_new_one() {
        let tape = Tape::recording();
        tape.set_base("http://127.0.0.1:1000/");
        let key = "etag http://127.0.0.1:1000/orgs/o";
        assert!(
            tape.kv_set("a", key, b"see http://127.0.0.1:1000/x")
                .await
                .is_ok()
        );
        let (kv, _) = tape.recorded();
        assert_eq!(
            kv,
            vec![KvCall::Set {
                key: "etag {base}/orgs/o".into(),
                value: Bytes::Text("see {base}/x".into()),
            }]
        );
        let replay = Tape::replaying(&cassette(kv, Vec::new()));
        replay.set_base("http://127.0.0.1:2000");
        let moved = replay
            .kv_set(
                "a",
                "etag http://127.0.0.1:2000/orgs/o",
                b"see http://127.0.0.1:2000/x",
            )
            .await;
        assert!(moved.is_ok(), "{moved:?}");
        assert_eq!(replay.check(), Ok(()));
    }

    #[tokio::test]
    async fn a_call_the_cassette_does_not_expect_is_refused_and_named() {
        let recorded = vec![KvCall::Set {
            key: "cursor".into(),
            value: Bytes::Text("page-2".into()),
        }];
        let replay = Tape::replaying(&cassette(recorded, Vec::new()));
        let refused = replay.kv_set("a", "cursor", b"page-3").await;
        assert!(refused.is_err(), "a different value is a different call");
        let why = replay.check().err().unwrap_or_default();
        assert!(
            why.contains(r#"set "cursor" to "page-3", expected set "cursor" to "page-2""#),
            "{why}"
        );
    }

    #[tokio::test]
    async fn unmade_calls_and_extra_readings_fail_the_check() {
        let recorded = vec![KvCall::Delete {
            key: "cursor".into(),
        }];
        let unmade = Tape::replaying(&cassette(recorded, Vec::new()));
        let why = unmade.check().err().unwrap_or_default();
        assert!(why.contains("first: delete \"cursor\""), "{why}");

        let at = ClockReading::WallNs(1_800_000_000_000_000_000);
        let replay = Tape::replaying(&cassette(Vec::new(), vec![at]));
        assert_eq!(nanos(replay.wall()), 1_800_000_000_000_000_000);
        assert_eq!(
            nanos(replay.wall()),
            1_800_000_000_000_000_000,
            "an extra reading repeats the last one"
        );
        let _ = replay.monotonic_ns();
        let why = replay.check().err().unwrap_or_default();
        assert!(
            why.contains(
                "clock reading 2 was of the wall clock, the cassette has no more readings"
            ),
            "{why}"
        );
    }
}
