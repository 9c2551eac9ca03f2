//! Coordination and the work queue shared by replicas through one Redis
//! server (7.0 or later; no newer command is used).
//!
//! Every key lives under [`RedisSettings::prefix`]:
//!
//! | key | what |
//! | --- | --- |
//! | `delivery:{id}` | `pending` while claimed, `done` once applied; expires |
//! | `lock:{name}` | the holder's random token; expires |
//! | `budget:{scope}` | `{remaining} {reset in epoch ms}`; expires at the reset |
//! | `kv:{scope}` | a hash of the scope's keys to their values, binary |
//! | `twin-version` | a counter |
//! | `stream:{name}` | a work queue, see [`RedisQueue`] |
//!
//! Each call is bounded by [`RedisSettings::timeout`]. A connection that
//! drops is re-established in the background by the client's connection
//! manager: calls fail with [`CacheError::Backend`] while the server is
//! away and work again once it is back, on the same object.

mod queue;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Script};

use crate::{Budget, CacheError, Claim, Coordination, LockToken};

pub use queue::RedisQueue;

const BACKEND: &str = "redis";

/// The longest expiry set on a key: Redis refuses times whose epoch
/// milliseconds overflow, and nothing here needs to last a century.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Deletes `KEYS[1]` only while it holds `ARGV[1]`: a lock only for the
/// token that took it, a delivery claim only while it is still pending.
const DELETE_IF_EQUAL: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Sets a new expiry on `KEYS[1]` only while it holds `ARGV[1]`.
const EXPIRE_IF_EQUAL: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Where the Redis server is and how long each call may take.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port/[db]`. It may hold a password, so
    /// it is never logged: `Debug` shows it with the password masked.
    pub url: String,
    /// Put before every key, such as `org-mesh:`, so that several
    /// deployments can share a server.
    pub prefix: String,
    /// The longest one call may take, connecting included.
    pub timeout: Duration,
}

impl RedisSettings {
    /// The URL with any password replaced, fit for logs and errors.
    pub fn redacted_url(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut url) => {
                if url.password().is_some() {
                    // Setting a password fails only on URLs that cannot
                    // have one, and this one already has one.
                    let _ = url.set_password(Some("***"));
                }
                url.to_string()
            }
            Err(_) => "(an unparseable URL)".to_owned(),
        }
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.redacted_url())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A connection manager with the bound every call gets, shared by the
/// coordination and the queue.
#[derive(Clone)]
struct Link {
    manager: ConnectionManager,
    timeout: Duration,
}

impl Link {
    async fn open(settings: &RedisSettings) -> Result<(Client, Link), CacheError> {
        let endpoint = settings.redacted_url();
        let client = Client::open(settings.url.as_str()).map_err(|e| CacheError::Backend {
            backend: BACKEND,
            // The client's own message may quote the URL, password and all.
            message: format!("the URL {endpoint} is not a Redis URL ({:?})", e.kind()),
        })?;
        // Reconnection retries are kept short and few: a call waiting on a
        // reconnection is cut off at the timeout anyway, and the next call
        // after a failed reconnection starts another.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(settings.timeout.min(Duration::from_secs(1)));
        let connecting = ConnectionManager::new_with_config(client.clone(), config);
        let manager = match tokio::time::timeout(settings.timeout * 3, connecting).await {
            Ok(Ok(manager)) => manager,
            Ok(Err(e)) => return Err(failed(&format!("connecting to {endpoint}"), &e)),
            Err(_) => {
                return Err(timed_out(
                    &format!("connecting to {endpoint}"),
                    settings.timeout * 3,
                ));
            }
        };
        let link = Link {
            manager,
            timeout: settings.timeout,
        };
        link.query::<String>("PING after connecting", &::redis::cmd("PING"))
            .await?;
        tracing::info!(endpoint = %endpoint, prefix = %settings.prefix, "Connected to Redis");
        Ok((client, link))
    }

    /// Runs one command within the timeout; `what` names it in the error.
    async fn query<T: ::redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: &::redis::Cmd,
    ) -> Result<T, CacheError> {
        let mut conn = self.manager.clone();
        self.bounded(what, cmd.query_async(&mut conn)).await
    }

    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, CacheError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(failed(what, &e)),
            Err(_) => Err(timed_out(what, self.timeout)),
        }
    }
}

fn failed(what: &str, e: &RedisError) -> CacheError {
    tracing::debug!(operation = what, error = %e, "Redis call failed");
    CacheError::Backend {
        backend: BACKEND,
        message: format!("{what}: {e}"),
    }
}

fn timed_out(what: &str, after: Duration) -> CacheError {
    tracing::debug!(operation = what, ?after, "Redis call timed out");
    CacheError::Backend {
        backend: BACKEND,
        message: format!("{what}: no answer within {after:?}"),
    }
}

/// Milliseconds for `PX`, which must be at least one.
fn px(ttl: Duration) -> u64 {
    u64::try_from(ttl.min(MAX_TTL).as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn epoch_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// [`Coordination`] in a Redis server, shared by every replica using the
/// same server and prefix.
#[derive(Clone)]
pub struct RedisCoordination {
    link: Link,
    prefix: String,
    endpoint: String,
    delete_if_equal: Script,
    expire_if_equal: Script,
}

impl fmt::Debug for RedisCoordination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCoordination")
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("timeout", &self.link.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisCoordination {
    /// Connects and checks that the server answers; fails when it does not
    /// within a few timeouts.
    pub async fn connect(settings: &RedisSettings) -> Result<RedisCoordination, CacheError> {
        let (_, link) = Link::open(settings).await?;
        Ok(RedisCoordination {
            link,
            prefix: settings.prefix.clone(),
            endpoint: settings.redacted_url(),
            delete_if_equal: Script::new(DELETE_IF_EQUAL),
            expire_if_equal: Script::new(EXPIRE_IF_EQUAL),
        })
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    fn twin_version_key(&self) -> String {
        format!("{}twin-version", self.prefix)
    }

    async fn delete_if_equal(
        &self,
        what: &str,
        key: &str,
        value: &str,
    ) -> Result<bool, CacheError> {
        let mut conn = self.link.manager.clone();
        let mut call = self.delete_if_equal.prepare_invoke();
        call.key(key).arg(value);
        let deleted: u64 = self
            .link
            .bounded(what, call.invoke_async(&mut conn))
            .await?;
        Ok(deleted > 0)
    }
}

/// What a delivery key holds.
const PENDING: &str = "pending";
const DONE: &str = "done";

#[async_trait::async_trait]
impl Coordination for RedisCoordination {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.link
            .query::<String>("PING", &::redis::cmd("PING"))
            .await
            .map(drop)
    }

    async fn claim_delivery(&self, id: &str, hold: Duration) -> Result<Claim, CacheError> {
        let key = self.key("delivery", id);
        // NX with GET (Redis 7.0) sets and reports what was there in one
        // step: nothing means the claim is ours.
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(&key)
            .arg(PENDING)
            .arg("NX")
            .arg("PX")
            .arg(px(hold))
            .arg("GET");
        let what = format!("claiming delivery {id:?}");
        let before: Option<String> = self.link.query(&what, &cmd).await?;
        match before.as_deref() {
            None => Ok(Claim::New),
            Some(PENDING) => Ok(Claim::InProgress),
            Some(DONE) => Ok(Claim::Done),
            Some(other) => Err(CacheError::Corrupt {
                key,
                message: format!("a delivery holds {other:?}, not {PENDING:?} or {DONE:?}"),
            }),
        }
    }

    async fn finish_delivery(&self, id: &str, keep: Duration) -> Result<(), CacheError> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.key("delivery", id))
            .arg(DONE)
            .arg("PX")
            .arg(px(keep));
        self.link
            .query::<()>(&format!("finishing delivery {id:?}"), &cmd)
            .await
    }

    async fn release_delivery(&self, id: &str) -> Result<(), CacheError> {
        self.delete_if_equal(
            &format!("releasing delivery {id:?}"),
            &self.key("delivery", id),
            PENDING,
        )
        .await
        .map(drop)
    }

    async fn kv_get(&self, scope: &str, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut cmd = ::redis::cmd("HGET");
        cmd.arg(self.key("kv", scope)).arg(key);
        self.link
            .query(&format!("reading {key:?} of {scope:?}"), &cmd)
            .await
    }

    async fn kv_set(&self, scope: &str, key: &str, value: &[u8]) -> Result<(), CacheError> {
        let mut cmd = ::redis::cmd("HSET");
        cmd.arg(self.key("kv", scope)).arg(key).arg(value);
        self.link
            .query::<()>(&format!("writing {key:?} of {scope:?}"), &cmd)
            .await
    }

    async fn kv_delete(&self, scope: &str, key: &str) -> Result<(), CacheError> {
        let mut cmd = ::redis::cmd("HDEL");
        cmd.arg(self.key("kv", scope)).arg(key);
        self.link
            .query::<()>(&format!("deleting {key:?} of {scope:?}"), &cmd)
            .await
    }

    async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<LockToken>, CacheError> {
        let token = uuid::Uuid::new_v4().to_string();
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.key("lock", name))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(px(ttl));
        let set: Option<String> = self
            .link
            .query(&format!("taking lock {name:?}"), &cmd)
            .await?;
        Ok(set.map(|_| LockToken(token)))
    }

    async fn extend_lock(
        &self,
        name: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        let mut conn = self.link.manager.clone();
        let mut call = self.expire_if_equal.prepare_invoke();
        call.key(self.key("lock", name)).arg(&token.0).arg(px(ttl));
        let extended: u64 = self
            .link
            .bounded(
                &format!("extending lock {name:?}"),
                call.invoke_async(&mut conn),
            )
            .await?;
        Ok(extended > 0)
    }

    async fn unlock(&self, name: &str, token: &LockToken) -> Result<bool, CacheError> {
        self.delete_if_equal(
            &format!("releasing lock {name:?}"),
            &self.key("lock", name),
            &token.0,
        )
        .await
    }

    async fn record_budget(&self, scope: &str, budget: Budget) -> Result<(), CacheError> {
        let key = self.key("budget", scope);
        let what = format!("recording the budget of {scope:?}");
        let reset = epoch_millis(budget.reset);
        if budget.reset <= SystemTime::now() {
            // An announced reset already past means the budget refilled.
            let mut cmd = ::redis::cmd("DEL");
            cmd.arg(&key);
            return self.link.query::<()>(&what, &cmd).await;
        }
        // PXAT (Redis 6.2) lets the key lapse at the upstream's reset time
        // as the server's clock sees it; readers also check it against
        // their own clock.
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(&key)
            .arg(format!("{} {reset}", budget.remaining))
            .arg("PXAT")
            .arg(reset);
        self.link.query::<()>(&what, &cmd).await
    }

    async fn budget(&self, scope: &str) -> Result<Option<Budget>, CacheError> {
        let key = self.key("budget", scope);
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(&key);
        let stored: Option<String> = self
            .link
            .query(&format!("reading the budget of {scope:?}"), &cmd)
            .await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let parsed = stored.split_once(' ').and_then(|(remaining, reset)| {
            Some((remaining.parse::<u64>().ok()?, reset.parse::<u64>().ok()?))
        });
        let Some((remaining, reset_ms)) = parsed else {
            return Err(CacheError::Corrupt {
                key,
                message: format!("{stored:?} is not \"remaining reset-ms\""),
            });
        };
        let reset = UNIX_EPOCH + Duration::from_millis(reset_ms);
        Ok((reset > SystemTime::now()).then_some(Budget { remaining, reset }))
    }

    async fn bump_twin_version(&self) -> Result<u64, CacheError> {
        let mut cmd = ::redis::cmd("INCR");
        cmd.arg(self.twin_version_key());
        self.link.query("counting a twin change", &cmd).await
    }

    async fn twin_version(&self) -> Result<u64, CacheError> {
        let key = self.twin_version_key();
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(&key);
        let stored: Option<String> = self.link.query("reading the twin version", &cmd).await?;
        stored.map_or(Ok(0), |s| {
            s.parse().map_err(|_| CacheError::Corrupt {
                key,
                message: format!("{s:?} is not a count"),
            })
        })
    }
}
