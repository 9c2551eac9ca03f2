//! Watches a folder and reports when its content changed, for hot reload of
//! plugins and policies.
//!
//! A folder's content is the set of its visible files with their relative
//! paths and bytes, summarised as a [`ContentHash`] by [`content_hash`].
//! [`FolderWatch`] recomputes that hash after filesystem events settle and
//! sends a [`Change`] only when it differs, so the consumer sees versions,
//! not events. It survives the usual ways folders get updated: editors that
//! save through a temporary file, Kubernetes ConfigMap mounts that swap a
//! `..data` link, slow copies, and the folder itself being deleted and
//! recreated.

mod error;
mod hash;
mod watcher;

pub use error::WatchError;
pub use hash::{ContentHash, content_hash};
pub use watcher::{Change, DEFAULT_POLL_INTERVAL, FolderWatch, WatchOptions};
