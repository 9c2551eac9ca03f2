//! Checks that the Helm chart (`helm/org-mesh`) and the operating runbook
//! (`docs/runbook.md`) describe the org-mesh that exists: its metrics, its
//! commands and flags, its configuration keys, its variables and its routes
//! are read from the sources here, never listed by hand, so a rename in the
//! product fails these checks instead of leaving stale documentation.
//!
//! The tests themselves live in `tests/chart.rs` and `tests/runbook.rs`.

pub mod facts;
pub mod keys;
pub mod runbook;
pub mod tools;

use std::path::{Path, PathBuf};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Reads a file, with its path in the error.
pub fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Drops everything from the first `#[cfg(test)]` on: unit tests name
/// things on purpose that do not exist (an unknown variable, a bad metric).
pub fn without_tests(source: &str) -> &str {
    source
        .find("#[cfg(test)]")
        .map_or(source, |at| &source[..at])
}
