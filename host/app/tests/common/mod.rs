//! What the app's integration tests share: a twin opened on a fresh state
//! folder with the shipped policies and only the plugins a test uses, so
//! that it compiles nothing else.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of these helpers"
)]

use std::path::Path;
use std::sync::Arc;

use org_mesh_app::config::Config;
use org_mesh_app::pipeline::{Progress, Twin};
use org_mesh_cache::memory::MemoryCoordination;
use org_mesh_harness::root;

/// Reports no progress.
pub struct Quiet;

impl Progress for Quiet {
    fn step(&self, _what: &str) {}
}

/// Copies the built plugin folder `dist` (relative to the repository, as
/// `plugins/dist/identity-drift`) into `state/plugins`.
pub fn copy_plugin(state: &Path, dist: &str) -> Result<(), String> {
    let from = root().join(dist);
    let name = from
        .file_name()
        .ok_or_else(|| format!("{dist}: no folder name"))?;
    let to = state.join("plugins").join(name);
    std::fs::create_dir_all(&to).map_err(|e| e.to_string())?;
    let entries =
        std::fs::read_dir(&from).map_err(|e| format!("{dist}: {e}: run .ci/build-plugins"))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))
            .map_err(|e| format!("{}: {e}", entry.path().display()))?;
    }
    Ok(())
}

/// Opens a twin on `state` with the shipped policies, the plugins copied
/// into `state/plugins`, and `instances`: the configuration's connector,
/// detector and executor sections, as YAML. Nothing may be left out.
pub async fn open_twin(state: &Path, instances: &str) -> Result<Twin, String> {
    let yaml = format!(
        "state_dir: {state}\nplugins: {{dirs: [{plugins}]}}\npolicies: {{dir: {policies}}}\n{instances}",
        state = state.display(),
        plugins = state.join("plugins").display(),
        policies = root().join("policies").display(),
    );
    let path = state.join("org-mesh.yaml");
    std::fs::write(&path, yaml).map_err(|e| e.to_string())?;
    let config = Config::load(&path).map_err(|e| e.to_string())?;
    let twin = Twin::open(&config, Arc::new(MemoryCoordination::default()), &Quiet)
        .await
        .map_err(|e| format!("{e:#}"))?;
    if !twin.skipped.is_empty() {
        return Err(format!("left out: {:?}", twin.skipped));
    }
    Ok(twin)
}
