//! The org-mesh configuration file.
//!
//! One YAML file, every part a typed struct with unknown fields refused.
//! Relative paths are resolved against the file's folder. String values in
//! plugin `config` and `grants` may name environment variables as
//! `${NAME}`, so one file serves every environment; an unset variable is an
//! error naming it. Top-level settings can be overridden by `ORG_MESH_*`
//! environment variables (see [`Config::apply_env`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use org_mesh_runtime::Grants;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where org-mesh keeps its twin and compiled-plugin cache.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default)]
    pub store: StoreConfig,
    pub plugins: PluginsConfig,
    pub policies: PoliciesConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub connectors: Vec<Instance>,
    #[serde(default)]
    pub detectors: Vec<Instance>,
    #[serde(default)]
    pub executors: Vec<Instance>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(".org-mesh")
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// A durable database file under the state folder; no server needed.
    #[default]
    Embedded,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub backend: Backend,
    /// The database file; defaults to `twin.redb` in the state folder.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Folders whose subfolders each hold a plugin's `manifest.yaml`.
    pub dirs: Vec<PathBuf>,
    /// Sandbox limits; defaults suit the first-party plugins.
    #[serde(default)]
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub memory_mib: Option<u64>,
    pub cpu_ms: Option<u64>,
    pub call_timeout_ms: Option<u64>,
    pub host_call_timeout_ms: Option<u64>,
    pub output_mib: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    /// The folder of `.rego` files and `drift-rules.yaml`.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// A YAML list of `{provider, login, person}` explicit mappings.
    pub mappings: Option<PathBuf>,
}

/// One configured use of a plugin: a connector, detector or executor
/// instance with its own name, config and grants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Names the instance; a connector's name is the source of its records.
    pub name: String,
    /// The plugin's manifest name.
    pub plugin: String,
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub grants: Grants,
    /// Files handed to a connector's sync, by name.
    #[serde(default)]
    pub attachments: BTreeMap<String, PathBuf>,
}

/// Everything wrong with a configuration, each problem naming its field.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {}", problems.join("; "))]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |problems: Vec<String>| ConfigError {
            path: path.to_path_buf(),
            problems,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| err(vec![format!("cannot read: {e}")]))?;
        let mut config: Config =
            serde_saphyr::from_str(&text).map_err(|e| err(vec![e.to_string()]))?;
        let mut problems = Vec::new();
        config.apply_env();
        config.expand_variables(&mut problems);
        config.check(&mut problems);
        if !problems.is_empty() {
            return Err(err(problems));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// `ORG_MESH_STATE_DIR`, `ORG_MESH_STORE_PATH`, `ORG_MESH_POLICIES_DIR`
    /// and `ORG_MESH_PLUGINS_DIRS` (colon-separated) replace the file's
    /// values.
    fn apply_env(&mut self) {
        if let Ok(v) = std::env::var("ORG_MESH_STATE_DIR") {
            self.state_dir = v.into();
        }
        if let Ok(v) = std::env::var("ORG_MESH_STORE_PATH") {
            self.store.path = Some(v.into());
        }
        if let Ok(v) = std::env::var("ORG_MESH_POLICIES_DIR") {
            self.policies.dir = v.into();
        }
        if let Ok(v) = std::env::var("ORG_MESH_PLUGINS_DIRS") {
            self.plugins.dirs = v
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect();
        }
    }

    fn expand_variables(&mut self, problems: &mut Vec<String>) {
        for (kind, list) in [
            ("connectors", &mut self.connectors),
            ("detectors", &mut self.detectors),
            ("executors", &mut self.executors),
        ] {
            for inst in list.iter_mut() {
                let at = format!("{kind}.{}", inst.name);
                expand_json(&mut inst.config, &format!("{at}.config"), problems);
                for host in &mut inst.grants.http_hosts {
                    match expand(host) {
                        Ok(v) => *host = v,
                        Err(var) => problems.push(format!(
                            "{at}.grants.http_hosts: environment variable {var} is not set"
                        )),
                    }
                }
            }
        }
    }

    fn check(&self, problems: &mut Vec<String>) {
        if self.plugins.dirs.is_empty() {
            problems.push("plugins.dirs: at least one folder is needed".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (kind, list) in [
            ("connectors", &self.connectors),
            ("detectors", &self.detectors),
            ("executors", &self.executors),
        ] {
            for inst in list {
                let ok = !inst.name.is_empty()
                    && inst
                        .name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !ok {
                    problems.push(format!(
                        "{kind}.{}: name must be lower-case letters, digits and dashes",
                        inst.name
                    ));
                }
                if !names.insert(inst.name.clone()) {
                    problems.push(format!("{kind}.{}: the name is used twice", inst.name));
                }
                if kind != "connectors" && !inst.attachments.is_empty() {
                    problems.push(format!(
                        "{kind}.{}.attachments: only connectors take attachments",
                        inst.name
                    ));
                }
            }
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.state_dir);
        if let Some(p) = &mut self.store.path {
            abs(p);
        }
        self.plugins.dirs.iter_mut().for_each(abs);
        abs(&mut self.policies.dir);
        if let Some(p) = &mut self.identity.mappings {
            abs(p);
        }
        for inst in self.connectors.iter_mut() {
            inst.attachments.values_mut().for_each(abs);
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.store
            .path
            .clone()
            .unwrap_or_else(|| self.state_dir.join("twin.redb"))
    }

    pub fn limits(&self) -> org_mesh_runtime::Limits {
        let mut limits = org_mesh_runtime::Limits::default();
        let l = &self.plugins.limits;
        if let Some(v) = l.memory_mib {
            limits.memory_bytes = v << 20;
        }
        if let Some(v) = l.cpu_ms {
            limits.cpu = std::time::Duration::from_millis(v);
        }
        if let Some(v) = l.call_timeout_ms {
            limits.call_timeout = std::time::Duration::from_millis(v);
        }
        if let Some(v) = l.host_call_timeout_ms {
            limits.host_call_timeout = std::time::Duration::from_millis(v);
        }
        if let Some(v) = l.output_mib {
            limits.output_bytes = v << 20;
        }
        limits
    }
}

/// Replaces every `${NAME}` in `s`; the error names the first unset one.
fn expand(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        out.push_str(&std::env::var(name).map_err(|_| name.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand_json(value: &mut serde_json::Value, at: &str, problems: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => match expand(s) {
            Ok(v) => *s = v,
            Err(var) => problems.push(format!("{at}: environment variable {var} is not set")),
        },
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_json(item, &format!("{at}[{i}]"), problems);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                expand_json(v, &format!("{at}.{k}"), problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().map_err(|e| ConfigError {
            path: PathBuf::new(),
            problems: vec![e.to_string()],
        })?;
        let path = dir.path().join("org-mesh.yaml");
        std::fs::write(&path, text).map_err(|e| ConfigError {
            path: path.clone(),
            problems: vec![e.to_string()],
        })?;
        Config::load(&path)
    }

    #[test]
    fn unknown_fields_are_refused_with_the_file_named() {
        let err = load("plugins: {dirs: [p]}\npolicies: {dir: q}\ncolour: red\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("org-mesh.yaml"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = load(
            "plugins: {dirs: []}\npolicies: {dir: q}\ndetectors:\n  - {name: Bad_Name, plugin: x}\n  - {name: d, plugin: y, attachments: {a: b}}\nconnectors:\n  - {name: d, plugin: z, config: {url: '${ORG_MESH_TEST_SURELY_UNSET}'}}\n",
        )
        .err()
        .map(|e| e.problems)
        .unwrap_or_default();
        assert_eq!(err.len(), 5, "{err:?}");
        assert!(
            err.iter()
                .any(|p| p.contains("ORG_MESH_TEST_SURELY_UNSET is not set"))
        );
    }

    #[test]
    fn variables_expand_and_paths_resolve_against_the_file() {
        let config = load(
            "plugins: {dirs: [p]}\npolicies: {dir: q}\nconnectors:\n  - {name: c, plugin: z, config: {home: '${HOME}/x'}, attachments: {users: u.json}}\n",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(config.connectors[0].config["home"], format!("{home}/x"));
        assert!(config.connectors[0].attachments["users"].is_absolute());
        assert!(config.policies.dir.is_absolute());
    }
}
