//! The manifest that sits beside every plugin component.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::LoadError;

/// The three plugin kinds, one WIT world each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Connector,
    Detector,
    Executor,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Connector => "connector",
            Kind::Detector => "detector",
            Kind::Executor => "executor",
        }
    }

    /// The host interfaces this kind's world may import.
    pub fn importable(self) -> &'static [Capability] {
        match self {
            Kind::Connector | Kind::Executor => &[
                Capability::Log,
                Capability::Http,
                Capability::Secrets,
                Capability::Kv,
            ],
            Kind::Detector => &[Capability::Log, Capability::Graph, Capability::Kv],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host interface a plugin may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Log,
    Http,
    Secrets,
    Kv,
    Graph,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Http => "http",
            Capability::Secrets => "secrets",
            Capability::Kv => "kv",
            Capability::Graph => "graph",
        }
    }

    /// The capability behind an imported interface name such as
    /// `org-mesh:plugin/http@0.2.0`; `None` for interfaces that are not ours.
    pub fn of_import(name: &str) -> Option<Capability> {
        let rest = name.strip_prefix("org-mesh:plugin/")?;
        let iface = rest.split('@').next()?;
        match iface {
            "log" => Some(Capability::Log),
            "http" => Some(Capability::Http),
            "secrets" => Some(Capability::Secrets),
            "kv" => Some(Capability::Kv),
            "graph" => Some(Capability::Graph),
            _ => None,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    kind: Kind,
    component: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    config_schema: Option<serde_json::Value>,
    #[serde(default)]
    incremental: bool,
}

/// A plugin's manifest, checked.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub kind: Kind,
    /// The component file, resolved against the manifest's folder.
    pub component: PathBuf,
    pub summary: String,
    pub capabilities: BTreeSet<Capability>,
    pub secrets: BTreeSet<String>,
    pub config_schema: Option<serde_json::Value>,
    /// A detector that may be given only what changed (`full` false) and
    /// reads the rest of the twin through `graph`. It then reports every
    /// finding that holds about a node that changed or is an end of an
    /// edge that changed, every one whose evidence names such a node, and,
    /// for each subject it reports anything about, everything that holds
    /// about that subject. The host keeps the detector's earlier findings
    /// that none of this covers. Other detectors always see the whole twin.
    pub incremental: bool,
    /// Where the manifest was read from.
    pub path: PathBuf,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Manifest, LoadError> {
        let bad = |problem: String| LoadError::Manifest {
            path: path.to_path_buf(),
            problem,
        };
        let raw: RawManifest = serde_saphyr::from_str(text).map_err(|e| bad(e.to_string()))?;

        if !is_plugin_name(&raw.name) {
            return Err(bad(format!(
                "name {:?} must start with a lower-case letter and hold only \
                 lower-case letters, digits and dashes, at most 64",
                raw.name
            )));
        }
        if !is_version(&raw.version) {
            return Err(bad(format!(
                "version {:?} is not MAJOR.MINOR.PATCH",
                raw.version
            )));
        }
        let component_name = Path::new(&raw.component);
        if raw.component.is_empty()
            || component_name.components().count() != 1
            || component_name.extension().is_none_or(|e| e != "wasm")
        {
            return Err(bad(format!(
                "component {:?} must be a .wasm file name in the manifest's folder",
                raw.component
            )));
        }

        let mut capabilities = BTreeSet::new();
        for name in &raw.capabilities {
            let cap =
                Capability::of_import(&format!("org-mesh:plugin/{name}")).ok_or_else(|| {
                    bad(format!(
                        "unknown capability {name:?}: expected log, http, secrets, kv or graph"
                    ))
                })?;
            if !raw.kind.importable().contains(&cap) {
                return Err(bad(format!(
                    "a {} cannot ask for {cap}: its world does not import it",
                    raw.kind
                )));
            }
            capabilities.insert(cap);
        }
        if !raw.secrets.is_empty()
            && !capabilities.contains(&Capability::Secrets)
            && !capabilities.contains(&Capability::Http)
        {
            return Err(bad(
                "secrets are listed but neither http nor secrets is asked for".into(),
            ));
        }
        if raw.incremental && raw.kind != Kind::Detector {
            return Err(bad(format!(
                "incremental applies to detectors only, not to a {}",
                raw.kind
            )));
        }
        if raw.incremental && !capabilities.contains(&Capability::Graph) {
            return Err(bad(
                "an incremental detector must ask for graph: it reads what did not change from the twin".into(),
            ));
        }
        if let Some(schema) = &raw.config_schema {
            crate::config_schema::check_schema(schema)
                .map_err(|e| bad(format!("config_schema: {e}")))?;
        }

        let folder = path.parent().unwrap_or(Path::new("."));
        Ok(Manifest {
            component: folder.join(&raw.component),
            name: raw.name,
            version: raw.version,
            kind: raw.kind,
            summary: raw.summary,
            capabilities,
            secrets: raw.secrets.into_iter().collect(),
            config_schema: raw.config_schema,
            incremental: raw.incremental,
            path: path.to_path_buf(),
        })
    }
}

fn is_plugin_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_version(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, LoadError> {
        Manifest::parse(text, Path::new("/p/x/manifest.yaml"))
    }

    #[test]
    fn parses_a_full_manifest() {
        let m = parse(
            "name: github-connector\nversion: 0.1.0\nkind: connector\ncomponent: gh.wasm\ncapabilities: [log, http]\nsecrets: [token]\n",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(m.kind, Kind::Connector);
        assert_eq!(m.component, Path::new("/p/x/gh.wasm"));
        assert!(m.capabilities.contains(&Capability::Http));
    }

    #[test]
    fn incremental_is_for_detectors_that_read_the_graph() {
        let detector =
            "name: a\nversion: 0.1.0\nkind: detector\ncomponent: a.wasm\nincremental: true\n";
        let with_graph = format!("{detector}capabilities: [log, graph]\n");
        let m = parse(&with_graph).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(m.incremental);
        let err = parse(detector)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("must ask for graph"), "{err}");
        let err = parse(
            "name: a\nversion: 0.1.0\nkind: connector\ncomponent: a.wasm\nincremental: true\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("detectors only"), "{err}");
        let plain = parse("name: a\nversion: 0.1.0\nkind: detector\ncomponent: a.wasm\n")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(!plain.incremental);
    }

    #[test]
    fn names_an_unknown_capability() {
        let err = parse(
            "name: a\nversion: 0.1.0\nkind: detector\ncomponent: a.wasm\ncapabilities: [sockets]\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("unknown capability \"sockets\""), "{err}");
        assert!(err.contains("/p/x/manifest.yaml"), "{err}");
    }

    #[test]
    fn refuses_a_capability_outside_the_world() {
        let err = parse(
            "name: a\nversion: 0.1.0\nkind: detector\ncomponent: a.wasm\ncapabilities: [http]\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("a detector cannot ask for http"), "{err}");
    }

    #[test]
    fn refuses_unknown_fields_and_paths() {
        assert!(
            parse("name: a\nversion: 0.1.0\nkind: detector\ncomponent: a.wasm\ncolour: red\n")
                .is_err()
        );
        assert!(parse("name: a\nversion: 0.1.0\nkind: detector\ncomponent: ../a.wasm\n").is_err());
        assert!(parse("name: A\nversion: 0.1.0\nkind: detector\ncomponent: a.wasm\n").is_err());
        assert!(parse("name: a\nversion: 1\nkind: detector\ncomponent: a.wasm\n").is_err());
    }
}
