//! [`RedisQueue`]: a [`WorkQueue`] in a Redis stream, read through a
//! consumer group so that each item goes to one replica, and an item whose
//! replica died before acknowledging it can be taken over by another.
//!
//! Acknowledging an item also deletes it from the stream, so the stream's
//! length is exactly the work not yet done, handed out or not.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use ::redis::{AsyncConnectionConfig, Client, RedisError, Value};
use tokio::time::Instant;

use super::{BACKEND, Link, RedisSettings, failed, px, timed_out};
use crate::{CacheError, Work, WorkQueue};

/// The stream entry field holding an item's payload.
const PAYLOAD: &str = "p";

/// Connections kept for blocking reads between calls.
const MAX_IDLE_READERS: usize = 4;

/// A stream and its consumer group in Redis.
///
/// `push` is as durable as the server's persistence makes it: with the
/// append-only file and its default `appendfsync everysec`, an item can be
/// lost only when the machine itself fails within a second of the push.
pub struct RedisQueue {
    client: Client,
    link: Link,
    stream: String,
    group: String,
    endpoint: String,
    /// `next` blocks in Redis, and a blocked command holds up every command
    /// queued behind it on the same connection, so blocking reads get
    /// connections of their own, with no response timeout: each read is
    /// bounded by its wait plus the timeout instead.
    idle_readers: Mutex<Vec<MultiplexedConnection>>,
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("endpoint", &self.endpoint)
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("timeout", &self.link.timeout)
            .finish_non_exhaustive()
    }
}

/// What reading from the group found.
enum Read<T> {
    Got(T),
    /// The group (or the whole stream) is gone: the server restarted
    /// without persistence, or someone deleted it.
    NoGroup,
}

fn is_no_group(e: &RedisError) -> bool {
    e.code() == Some("NOGROUP")
}

impl RedisQueue {
    /// Connects and creates the stream `{prefix}stream:{stream}` and its
    /// consumer group `group` unless they exist. A new group starts at the
    /// beginning of the stream, so work pushed before it existed is handed
    /// out too.
    pub async fn connect(
        settings: &RedisSettings,
        stream: &str,
        group: &str,
    ) -> Result<RedisQueue, CacheError> {
        let (client, link) = Link::open(settings).await?;
        let queue = RedisQueue {
            client,
            link,
            stream: format!("{}stream:{stream}", settings.prefix),
            group: group.to_owned(),
            endpoint: settings.redacted_url(),
            idle_readers: Mutex::new(Vec::new()),
        };
        queue.create_group().await?;
        Ok(queue)
    }

    async fn create_group(&self) -> Result<(), CacheError> {
        let mut cmd = ::redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(&self.stream)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM");
        let mut conn = self.link.manager.clone();
        let create = async {
            match cmd.query_async::<()>(&mut conn).await {
                Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
                other => other,
            }
        };
        let what = format!("creating consumer group {} of {}", self.group, self.stream);
        self.link.bounded(&what, create).await
    }

    /// A connection for one blocking read: an idle one, or a new one.
    async fn reader(&self, deadline: Instant) -> Result<(MultiplexedConnection, bool), CacheError> {
        let idle = self
            .idle_readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some(conn) = idle {
            return Ok((conn, true));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.link.timeout))
            .set_response_timeout(None);
        let what = format!("connecting to {} to read {}", self.endpoint, self.stream);
        match tokio::time::timeout_at(
            deadline,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Ok(Ok(conn)) => Ok((conn, false)),
            Ok(Err(e)) => Err(failed(&what, &e)),
            Err(_) => Err(timed_out(&what, self.link.timeout)),
        }
    }

    fn keep_reader(&self, conn: MultiplexedConnection) {
        let mut idle = self
            .idle_readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }

    /// One XREADGROUP for one new item, blocking up to `wait`.
    async fn read(&self, consumer: &str, wait: Duration) -> Result<Read<Option<Work>>, CacheError> {
        let mut cmd = ::redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(consumer)
            .arg("COUNT")
            .arg(1);
        // BLOCK 0 would wait for ever; without BLOCK the read returns at once.
        let block = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        if block > 0 {
            cmd.arg("BLOCK").arg(block);
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(">");

        let what = format!("reading {} as {consumer}", self.stream);
        let deadline = Instant::now() + wait + self.link.timeout;
        // A kept connection may have died with the server since it was last
        // used; it fails at once, and one new connection is tried before
        // giving up.
        let mut retried = false;
        loop {
            let (mut conn, kept) = self.reader(deadline).await?;
            let reply = tokio::time::timeout_at(
                deadline,
                cmd.query_async::<Option<StreamReadReply>>(&mut conn),
            )
            .await;
            match reply {
                Ok(Ok(reply)) => {
                    self.keep_reader(conn);
                    let entry = reply
                        .and_then(|r| r.keys.into_iter().next())
                        .and_then(|k| k.ids.into_iter().next());
                    return match entry {
                        Some(entry) => Ok(Read::Got(Some(self.work(entry, 1)?))),
                        None => Ok(Read::Got(None)),
                    };
                }
                Ok(Err(e)) if is_no_group(&e) => {
                    self.keep_reader(conn);
                    return Ok(Read::NoGroup);
                }
                Ok(Err(e)) if kept && !retried && e.is_unrecoverable_error() => {
                    // The others kept went to the same server and are most
                    // likely dead too.
                    tracing::debug!(stream = %self.stream, error = %e, "A kept Redis reader had dropped; opening another");
                    self.idle_readers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clear();
                    retried = true;
                }
                Ok(Err(e)) => return Err(failed(&what, &e)),
                // Dropped, not kept: the server may still hold it blocked.
                Err(_) => return Err(timed_out(&what, wait + self.link.timeout)),
            }
        }
    }

    fn work(&self, entry: StreamId, deliveries: u64) -> Result<Work, CacheError> {
        match entry.map.get(PAYLOAD) {
            Some(Value::BulkString(payload)) => Ok(Work {
                id: entry.id,
                payload: payload.clone(),
                deliveries,
            }),
            _ => Err(CacheError::Corrupt {
                key: self.stream.clone(),
                message: format!("entry {} has no payload field {PAYLOAD:?}", entry.id),
            }),
        }
    }

    /// How many times each of `ids` was delivered, as XPENDING says; one
    /// round trip for all of them.
    async fn delivery_counts(&self, ids: &[String]) -> Result<Vec<Option<u64>>, CacheError> {
        let mut pipe = ::redis::pipe();
        for id in ids {
            pipe.cmd("XPENDING")
                .arg(&self.stream)
                .arg(&self.group)
                .arg(id)
                .arg(id)
                .arg(1);
        }
        let mut conn = self.link.manager.clone();
        let replies: Vec<StreamPendingCountReply> = self
            .link
            .bounded(
                &format!("counting deliveries in {}", self.stream),
                pipe.query_async(&mut conn),
            )
            .await?;
        Ok(replies
            .into_iter()
            .map(|r| {
                r.ids
                    .first()
                    .map(|p| u64::try_from(p.times_delivered).unwrap_or(u64::MAX))
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl WorkQueue for RedisQueue {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn push(&self, payload: &[u8]) -> Result<String, CacheError> {
        let mut cmd = ::redis::cmd("XADD");
        cmd.arg(&self.stream).arg("*").arg(PAYLOAD).arg(payload);
        self.link
            .query(&format!("adding to {}", self.stream), &cmd)
            .await
    }

    async fn next(&self, consumer: &str, wait: Duration) -> Result<Option<Work>, CacheError> {
        if let Read::Got(work) = self.read(consumer, wait).await? {
            return Ok(work);
        }
        tracing::warn!(
            stream = %self.stream,
            group = %self.group,
            "The consumer group is gone, as after a Redis restart without persistence; creating it again"
        );
        self.create_group().await?;
        match self.read(consumer, wait).await? {
            Read::Got(work) => Ok(work),
            Read::NoGroup => Err(CacheError::Backend {
                backend: BACKEND,
                message: format!(
                    "reading {}: consumer group {} vanished again right after it was created",
                    self.stream, self.group
                ),
            }),
        }
    }

    async fn reclaim(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Work>, CacheError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = ::redis::cmd("XAUTOCLAIM");
        cmd.arg(&self.stream)
            .arg(&self.group)
            .arg(consumer)
            .arg(px(min_idle))
            .arg("0-0")
            .arg("COUNT")
            .arg(count);
        let mut conn = self.link.manager.clone();
        let claim = async {
            match cmd.query_async::<StreamAutoClaimReply>(&mut conn).await {
                Ok(reply) => Ok(Read::Got(reply)),
                Err(e) if is_no_group(&e) => Ok(Read::NoGroup),
                Err(e) => Err(e),
            }
        };
        let what = format!("reclaiming from {} as {consumer}", self.stream);
        let reply = match self.link.bounded(&what, claim).await? {
            Read::Got(reply) => reply,
            Read::NoGroup => {
                // A new group has nothing handed out, so nothing to take
                // over: everything left is read again by `next`.
                self.create_group().await?;
                return Ok(Vec::new());
            }
        };
        if !reply.deleted_ids.is_empty() {
            tracing::debug!(
                stream = %self.stream,
                deleted = reply.deleted_ids.len(),
                "Pending entries that were deleted from the stream were dropped"
            );
        }
        let ids: Vec<String> = reply.claimed.iter().map(|e| e.id.clone()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let counts = self.delivery_counts(&ids).await?;
        reply
            .claimed
            .into_iter()
            .zip(counts)
            // Acknowledged between the two calls: it was handed out before
            // this time at least.
            .map(|(entry, count)| self.work(entry, count.unwrap_or(2)))
            .collect()
    }

    async fn ack(&self, id: &str) -> Result<(), CacheError> {
        // In one transaction, so that a crash between the two cannot leave
        // an acknowledged entry counted in the depth for ever.
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .cmd("XACK")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(id)
            .ignore()
            .cmd("XDEL")
            .arg(&self.stream)
            .arg(id)
            .ignore();
        let mut conn = self.link.manager.clone();
        self.link
            .bounded(
                &format!("acknowledging {id} in {}", self.stream),
                pipe.query_async::<()>(&mut conn),
            )
            .await
    }

    async fn forget_idle_consumers(&self, min_idle: Duration) -> Result<usize, CacheError> {
        let mut conn = self.link.manager.clone();
        let mut info = ::redis::cmd("XINFO");
        info.arg("CONSUMERS").arg(&self.stream).arg(&self.group);
        let listing = async {
            match info
                .query_async::<::redis::streams::StreamInfoConsumersReply>(&mut conn)
                .await
            {
                Ok(reply) => Ok(Read::Got(reply)),
                Err(e) if is_no_group(&e) => Ok(Read::NoGroup),
                Err(e) => Err(e),
            }
        };
        let what = format!("listing the consumers of {}", self.stream);
        let Read::Got(reply) = self.link.bounded(&what, listing).await? else {
            return Ok(0);
        };
        let limit = u128::from(px(min_idle));
        let mut forgotten = 0;
        for consumer in reply.consumers {
            let idle = u128::try_from(consumer.idle).unwrap_or(u128::MAX);
            if consumer.pending > 0 || idle < limit {
                continue;
            }
            let mut delete = ::redis::cmd("XGROUP");
            delete
                .arg("DELCONSUMER")
                .arg(&self.stream)
                .arg(&self.group)
                .arg(&consumer.name);
            let mut conn = self.link.manager.clone();
            let what = format!("forgetting consumer {} of {}", consumer.name, self.stream);
            let dropped: i64 = self
                .link
                .bounded(&what, async { delete.query_async(&mut conn).await })
                .await?;
            // Only a consumer that took work between the listing and now
            // has pending entries to drop. Replicas read every second under
            // unique names, so one idle for `min_idle` with nothing pending
            // is gone; if it was not, say so, since its entries are then
            // pending for nobody.
            if dropped > 0 {
                tracing::error!(
                    consumer = %consumer.name,
                    dropped,
                    stream = %self.stream,
                    "Forgot a consumer that had just taken work; those entries are no longer pending for any consumer"
                );
            }
            forgotten += 1;
        }
        Ok(forgotten)
    }

    async fn depth(&self) -> Result<u64, CacheError> {
        let mut cmd = ::redis::cmd("XLEN");
        cmd.arg(&self.stream);
        self.link
            .query(&format!("measuring {}", self.stream), &cmd)
            .await
    }
}
