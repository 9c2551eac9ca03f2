//! The `kv` import: a small key-value store per plugin instance, kept by the
//! runtime's [`Coordination`](org_mesh_cache::Coordination) backend. Every
//! key is scoped to one plugin instance by the host; a plugin cannot name
//! another's keys. The size limits are the runtime's, whatever the backend.

use crate::bindings::kv::{Error, Host};
use crate::host::CallState;
use crate::manifest::Capability;

const MAX_KEY: usize = 512;
const MAX_VALUE: usize = 1 << 20;

fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > MAX_KEY {
        return Err(Error::TooLarge(MAX_KEY as u64));
    }
    Ok(())
}

fn backend(e: &org_mesh_cache::CacheError) -> Error {
    Error::Backend(e.to_string())
}

const TIMED_OUT: &str = "key-value store timed out";

impl Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.require(Capability::Kv)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let store = self.services.coordination.clone();
        let scope = self.scope.clone();
        Ok(match self.timed(store.kv_get(&scope, &key)).await {
            Some(r) => r.map_err(|e| backend(&e)),
            None => Err(Error::Backend(TIMED_OUT.into())),
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
        let store = self.services.coordination.clone();
        let scope = self.scope.clone();
        Ok(match self.timed(store.kv_set(&scope, &key, &value)).await {
            Some(r) => r.map_err(|e| backend(&e)),
            None => Err(Error::Backend(TIMED_OUT.into())),
        })
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), Error>> {
        self.require(Capability::Kv)?;
        let store = self.services.coordination.clone();
        let scope = self.scope.clone();
        Ok(match self.timed(store.kv_delete(&scope, &key)).await {
            Some(r) => r.map_err(|e| backend(&e)),
            None => Err(Error::Backend(TIMED_OUT.into())),
        })
    }
}
