use crate::bindings::secrets::{Error, Host};
use crate::host::{CallState, SecretSource};
use crate::manifest::Capability;

/// Reads a granted secret's value. Errors say which secret and why, never
/// the value.
pub(crate) fn read(state: &CallState, name: &str) -> Result<String, Error> {
    let Some(source) = state.grants.secrets.get(name) else {
        return Err(Error::Denied(format!("secret {name:?} is not granted")));
    };
    match source {
        SecretSource::Env(var) => std::env::var(var).map_err(|_| {
            Error::Unavailable(format!(
                "secret {name:?}: environment variable {var} is not set"
            ))
        }),
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|s| s.strip_suffix('\n').map(str::to_string).unwrap_or(s))
            .map_err(|e| {
                Error::Unavailable(format!(
                    "secret {name:?}: cannot read {}: {e}",
                    path.display()
                ))
            }),
    }
}

impl Host for CallState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        self.require(Capability::Secrets)?;
        Ok(read(self, &name))
    }
}
