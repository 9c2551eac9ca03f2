//! What a plugin file is, as the runtime sees it once loaded: the view
//! `org-mesh plugin inspect` prints.

use std::collections::BTreeSet;

use org_mesh_runtime::{Capability, Description, Kind};
use serde_json::json;

use crate::case::{LimitsChange, ManifestChange};
use crate::subject::{Subject, imported_capabilities};

/// A loaded plugin's manifest, world, imports, capabilities and size.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub name: String,
    pub version: String,
    pub kind: Kind,
    /// The WIT world the component was linked against.
    pub world: String,
    pub summary: String,
    pub component: std::path::PathBuf,
    pub size_bytes: u64,
    pub digest: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// What the manifest asks for.
    pub capabilities: BTreeSet<Capability>,
    /// What the component imports.
    pub used: BTreeSet<Capability>,
    pub secrets: BTreeSet<String>,
    pub description: Description,
}

/// Loads the plugin as the host would (compiling it, checking its imports
/// and running its self-check) and describes it.
pub async fn inspect(subject: &Subject) -> Result<Inspection, String> {
    let runtime = subject.runtime(LimitsChange::default())?;
    let plugin = subject.load(&runtime, &ManifestChange::default()).await?;
    let m = plugin.manifest();
    let size_bytes = std::fs::metadata(&m.component)
        .map_err(|e| format!("cannot read {}: {e}", m.component.display()))?
        .len();
    Ok(Inspection {
        name: m.name.clone(),
        version: m.version.clone(),
        kind: m.kind,
        world: format!("org-mesh:plugin/{}-plugin", m.kind),
        summary: m.summary.clone(),
        component: m.component.clone(),
        size_bytes,
        digest: plugin.digest().to_string(),
        imports: plugin.imports().to_vec(),
        exports: plugin.exports().to_vec(),
        capabilities: m.capabilities.clone(),
        used: imported_capabilities(plugin.imports()),
        secrets: m.secrets.clone(),
        description: plugin.description().clone(),
    })
}

impl Inspection {
    pub fn to_json(&self) -> serde_json::Value {
        let names =
            |set: &BTreeSet<Capability>| -> Vec<&str> { set.iter().map(|c| c.as_str()).collect() };
        json!({
            "name": self.name,
            "version": self.version,
            "kind": self.kind.as_str(),
            "world": self.world,
            "summary": self.summary,
            "component": self.component,
            "size_bytes": self.size_bytes,
            "sha256": self.digest,
            "capabilities": names(&self.capabilities),
            "imported_capabilities": names(&self.used),
            "secrets": self.secrets,
            "imports": self.imports,
            "exports": self.exports,
            "rules": self.description.rules.iter().map(|r| json!({
                "id": r.id, "title": r.title, "default_severity": r.default_severity,
            })).collect::<Vec<_>>(),
            "actions": self.description.actions,
        })
    }
}
