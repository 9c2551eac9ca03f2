use std::collections::HashMap;
use std::sync::Mutex;

use crate::bindings::kv::{Error, Host};
use crate::host::CallState;
use crate::manifest::Capability;

const MAX_KEY: usize = 512;
const MAX_VALUE: usize = 1 << 20;

/// The key-value store behind the `kv` import. Every key is scoped to one
/// plugin instance by the host; a plugin cannot name another's keys.
#[async_trait::async_trait]
pub trait KvStore: Send + Sync + std::fmt::Debug {
    async fn get(&self, scope: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    async fn set(&self, scope: &str, key: &str, value: Vec<u8>) -> Result<(), String>;
    async fn delete(&self, scope: &str, key: &str) -> Result<(), String>;
}

type Entries = HashMap<(String, String), Vec<u8>>;

/// A single-process key-value store, the default when no shared backend is
/// configured. Its contents do not survive a restart.
#[derive(Debug, Default)]
pub struct MemoryKv {
    entries: Mutex<Entries>,
}

impl MemoryKv {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Entries>, String> {
        self.entries
            .lock()
            .map_err(|_| "key-value store lock poisoned".to_string())
    }
}

#[async_trait::async_trait]
impl KvStore for MemoryKv {
    async fn get(&self, scope: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .lock()?
            .get(&(scope.to_string(), key.to_string()))
            .cloned())
    }

    async fn set(&self, scope: &str, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.lock()?
            .insert((scope.to_string(), key.to_string()), value);
        Ok(())
    }

    async fn delete(&self, scope: &str, key: &str) -> Result<(), String> {
        self.lock()?.remove(&(scope.to_string(), key.to_string()));
        Ok(())
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > MAX_KEY {
        return Err(Error::TooLarge(MAX_KEY as u64));
    }
    Ok(())
}

impl Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.require(Capability::Kv)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let kv = self.services.kv.clone();
        let scope = self.scope.clone();
        Ok(match self.timed(kv.get(&scope, &key)).await {
            Some(r) => r.map_err(Error::Backend),
            None => Err(Error::Backend("key-value store timed out".into())),
        })
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        self.require(Capability::Kv)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        if value.len() > MAX_VALUE {
            return Ok(Err(Error::TooLarge(MAX_VALUE as u64)));
        }
        let kv = self.services.kv.clone();
        let scope = self.scope.clone();
        Ok(match self.timed(kv.set(&scope, &key, value)).await {
            Some(r) => r.map_err(Error::Backend),
            None => Err(Error::Backend("key-value store timed out".into())),
        })
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), Error>> {
        self.require(Capability::Kv)?;
        let kv = self.services.kv.clone();
        let scope = self.scope.clone();
        Ok(match self.timed(kv.delete(&scope, &key)).await {
            Some(r) => r.map_err(Error::Backend),
            None => Err(Error::Backend("key-value store timed out".into())),
        })
    }
}
