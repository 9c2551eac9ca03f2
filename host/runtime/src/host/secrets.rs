use crate::bindings::secrets::{Error, Host};
use crate::host::CallState;
use crate::manifest::Capability;

/// Reads a granted secret's value. Errors say which secret and why, never
/// the value.
pub(crate) fn read(state: &CallState, name: &str) -> Result<String, Error> {
    let Some(source) = state.grants.secrets.get(name) else {
        return Err(Error::Denied(format!("secret {name:?} is not granted")));
    };
    source
        .read()
        .map_err(|e| Error::Unavailable(format!("secret {name:?}: {e}")))
}

impl Host for CallState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        self.require(Capability::Secrets)?;
        Ok(read(self, &name))
    }
}
