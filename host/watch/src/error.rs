//! What can go wrong while hashing or watching a folder. Every variant names
//! the path involved, because the same process may watch several folders and
//! a message without the path cannot be acted on.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WatchError {
    #[error("{}: folder does not exist", path.display())]
    Missing { path: PathBuf },

    #[error("{}: is not a folder", path.display())]
    NotAFolder { path: PathBuf },

    /// A filesystem call failed; `action` says which one, in words.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },

    /// The platform's change notification could not be set up, and no
    /// polling fallback was allowed.
    #[error("{}: cannot watch for changes: {source}", path.display())]
    Notify {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },

    #[error("{}: invalid watch options: {reason}", path.display())]
    InvalidOptions { path: PathBuf, reason: &'static str },

    /// The watcher runs as a task, so it must be started inside a tokio
    /// runtime.
    #[error("{}: watching needs a running tokio runtime", path.display())]
    NoRuntime { path: PathBuf },
}

impl WatchError {
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Self {
        WatchError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
