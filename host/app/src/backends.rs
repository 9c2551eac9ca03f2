//! The shared-state backends a configuration names: where coordination
//! state and the queue of accepted changes live.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use org_mesh_cache::{Coordination, LocalQueue, WorkQueue, memory::MemoryCoordination};

use crate::config::{CacheBackend, Config, RedisConfig, redacted};

/// Coordination state and the queue of accepted changes, shared by every
/// replica when they live in Redis.
#[derive(Debug, Clone)]
pub struct Shared {
    pub coordination: Arc<dyn Coordination>,
    pub queue: Arc<dyn WorkQueue>,
}

/// The Redis stream accepted changes wait in, and the consumer group of
/// the replicas that apply them.
const STREAM: &str = "changes";
const GROUP: &str = "appliers";

impl Shared {
    /// Connects to the configured backend. Redis must answer at start: a
    /// replica that cannot reach it would accept changes no other replica
    /// can see.
    pub async fn open(config: &Config) -> anyhow::Result<Shared> {
        match (config.cache.backend, &config.cache.redis) {
            (CacheBackend::Redis, Some(redis)) => {
                let settings = redis_settings(redis)?;
                let coordination = org_mesh_cache::redis::RedisCoordination::connect(&settings)
                    .await
                    .with_context(|| format!("connecting to Redis at {}", redacted(&redis.url)))?;
                let queue = org_mesh_cache::redis::RedisQueue::connect(&settings, STREAM, GROUP)
                    .await
                    .with_context(|| {
                        format!(
                            "opening the change stream on Redis at {}",
                            redacted(&redis.url)
                        )
                    })?;
                Ok(Shared {
                    coordination: Arc::new(coordination),
                    queue: Arc::new(queue),
                })
            }
            _ => {
                std::fs::create_dir_all(&config.state_dir).with_context(|| {
                    format!("creating the state folder {}", config.state_dir.display())
                })?;
                let path = config.state_dir.join("queue.redb");
                let queue = LocalQueue::open(&path)
                    .with_context(|| format!("opening the change queue at {}", path.display()))?;
                Ok(Shared {
                    coordination: Arc::new(MemoryCoordination::default()),
                    queue: Arc::new(queue),
                })
            }
        }
    }
}

fn redis_settings(redis: &RedisConfig) -> anyhow::Result<org_mesh_cache::redis::RedisSettings> {
    let mut url = redis.url.clone();
    if let Some(source) = &redis.password {
        let password = source
            .read()
            .map_err(|e| anyhow::anyhow!("cache.redis.password: {e}"))?;
        url = with_password(&url, &password)
            .context("cache.redis: the URL cannot carry the password")?;
    }
    Ok(org_mesh_cache::redis::RedisSettings {
        url,
        prefix: redis.prefix.clone(),
        timeout: Duration::from_secs(redis.timeout_secs.max(1)),
    })
}

/// Puts a password into a `redis://` URL, percent-encoded, keeping any user
/// name it already has.
fn with_password(url: &str, password: &str) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).with_context(|| format!("{:?}", redacted(url)))?;
    parsed
        .set_password(Some(password))
        .map_err(|()| anyhow::anyhow!("{:?} has no host", redacted(url)))?;
    Ok(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_encoded_into_the_url() {
        let url = with_password("redis://10.0.0.1:6379/2", "p@ss/word")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(url, "redis://:p%40ss%2Fword@10.0.0.1:6379/2");
        assert_eq!(redacted(&url), "redis://***@10.0.0.1:6379/2");
    }
}
