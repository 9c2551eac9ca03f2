//! The plugin under test: loaded by the real runtime, under the suite's
//! limits or a twin's tighter ones, bound with a config derived from its
//! own schema and every capability it asks for granted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use org_mesh_cache::Coordination;
use org_mesh_cache::memory::MemoryCoordination;
use org_mesh_model::{ChangeSet, Direction, NodeRef, StoredEdge, StoredNode};
use org_mesh_runtime::{
    Capability, Clock, Grants, GraphReader, Limits, Manifest, Plugin, Runtime, RuntimeOptions,
    SecretSource,
};
use serde_json::{Map, Value as Json};

use crate::Error;
use crate::case::{LimitsChange, ManifestChange};
use crate::tape::Tape;

/// The limits conformance runs under: the runtime's defaults, with a
/// shorter wall clock so that a hung call fails the case rather than the
/// test run.
fn suite_limits(change: LimitsChange) -> Limits {
    let mut limits = Limits {
        call_timeout: Duration::from_secs(30),
        host_call_timeout: Duration::from_secs(10),
        ..Limits::default()
    };
    if let Some(kb) = change.memory_kb {
        limits.memory_bytes = kb << 10;
    }
    if let Some(bytes) = change.output_bytes {
        limits.output_bytes = bytes;
    }
    limits
}

/// The twin a detector reads while the suite runs: what the current
/// change set holds, as it would be once the host had applied it, and
/// nothing else.
#[derive(Debug, Default)]
pub struct TwinGraph {
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    nodes: BTreeMap<NodeRef, StoredNode>,
    /// Edges by direction (true: outgoing), kind, and the node they start
    /// at (outgoing) or end at (incoming).
    edges: BTreeMap<(bool, String, NodeRef), Vec<StoredEdge>>,
}

impl TwinGraph {
    pub fn hold(&self, changes: &ChangeSet) {
        let mut held = Held::default();
        for c in &changes.nodes {
            held.nodes.insert(c.node.node.reference(), c.node.clone());
        }
        for c in &changes.edges {
            let e = &c.edge.edge;
            for (outgoing, at) in [(true, &e.from), (false, &e.to)] {
                held.edges
                    .entry((outgoing, e.kind.clone(), at.clone()))
                    .or_default()
                    .push(c.edge.clone());
            }
        }
        *self.lock() = held;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl GraphReader for TwinGraph {
    async fn node(&self, node: &NodeRef) -> Result<Option<StoredNode>, String> {
        Ok(self.lock().nodes.get(node).cloned())
    }

    async fn neighbours(
        &self,
        node: &NodeRef,
        kind: &str,
        dir: Direction,
    ) -> Result<Vec<(StoredEdge, StoredNode)>, String> {
        let held = self.lock();
        let edges = held
            .edges
            .get(&(
                matches!(dir, Direction::Outgoing),
                kind.to_string(),
                node.clone(),
            ))
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(edges
            .iter()
            .filter_map(|e| {
                let there = match dir {
                    Direction::Outgoing => &e.edge.to,
                    Direction::Incoming => &e.edge.from,
                };
                held.nodes.get(there).map(|n| (e.clone(), n.clone()))
            })
            .collect())
    }
}

/// The plugin file the suite runs against, and what it needs around it.
#[derive(Debug)]
pub struct Subject {
    pub manifest: Manifest,
    /// Compiled components, shared by every load of one suite run so the
    /// plugin is compiled once.
    cache: tempfile::TempDir,
    /// The value of every secret the manifest declares.
    secret: tempfile::NamedTempFile,
    pub graph: Arc<TwinGraph>,
}

impl Subject {
    /// `path` is a `manifest.yaml`, a folder holding one, or a component
    /// with `manifest.yaml` beside it.
    pub fn open(path: &Path) -> Result<Subject, Error> {
        let manifest_path = manifest_path(path)?;
        let manifest = Manifest::load(&manifest_path)?;
        if path.extension().is_some_and(|e| e == "wasm") && !same_file(path, &manifest.component) {
            return Err(Error::Target {
                path: path.to_path_buf(),
                problem: format!(
                    "the manifest beside it names {}, not this file",
                    manifest.component.display()
                ),
            });
        }
        let io = |error| Error::Read {
            path: std::env::temp_dir(),
            error,
        };
        let secret = tempfile::NamedTempFile::new().map_err(io)?;
        std::fs::write(secret.path(), "conformance-secret\n").map_err(io)?;
        Ok(Subject {
            manifest,
            cache: tempfile::tempdir().map_err(io)?,
            secret,
            graph: Arc::default(),
        })
    }

    /// A runtime under the suite's limits, or a twin's.
    pub fn runtime(&self, limits: LimitsChange) -> Result<Runtime, String> {
        self.runtime_on(limits, None)
    }

    /// A runtime whose key-value store and clocks are `tape`'s, to record
    /// or replay them.
    pub fn runtime_on(&self, limits: LimitsChange, tape: Option<&Tape>) -> Result<Runtime, String> {
        let options = RuntimeOptions {
            limits: suite_limits(limits),
            cache_dir: Some(self.cache.path().to_path_buf()),
            clock: tape.map(|t| Arc::new(t.clone()) as Arc<dyn Clock>),
            ..RuntimeOptions::default()
        };
        let coordination: Arc<dyn Coordination> = match tape {
            Some(tape) => Arc::new(tape.clone()),
            None => Arc::new(MemoryCoordination::default()),
        };
        Runtime::new(
            options,
            coordination,
            Some(self.graph.clone()),
            &prometheus::Registry::new(),
        )
        .map_err(|e| format!("cannot start the runtime: {e:#}"))
    }

    /// Loads the plugin with a twin's change to its manifest, if any.
    pub async fn load(&self, runtime: &Runtime, change: &ManifestChange) -> Result<Plugin, String> {
        let mut manifest = self.manifest.clone();
        if let Some(version) = &change.version {
            manifest.version.clone_from(version);
        }
        if change.ask_unused_capability {
            let probe = runtime
                .load(self.manifest.clone())
                .await
                .map_err(|e| e.to_string())?;
            let used = imported_capabilities(probe.imports());
            let unused = manifest
                .kind
                .importable()
                .iter()
                .find(|c| !used.contains(c) && **c != Capability::Log);
            match unused {
                Some(cap) => {
                    manifest.capabilities.insert(*cap);
                }
                None => return Err("the component imports every capability its kind may".into()),
            }
        }
        runtime.load(manifest).await.map_err(|e| e.to_string())
    }

    /// The plugin bound with a config that satisfies its schema, `overrides`
    /// on top, every `*url` field pointing at `server` when there is one,
    /// and every capability the manifest asks for granted.
    pub fn bind(
        &self,
        plugin: &Plugin,
        overrides: &Map<String, Json>,
        server: Option<&str>,
    ) -> Result<Plugin, String> {
        let m = plugin.manifest();
        let mut config = m
            .config_schema
            .as_ref()
            .map(|s| example(s, server))
            .unwrap_or_else(|| Json::Object(Map::new()));
        if let Some(object) = config.as_object_mut() {
            object.extend(overrides.clone());
        }
        let mut grants = Grants {
            kv: m.capabilities.contains(&Capability::Kv),
            graph: m.capabilities.contains(&Capability::Graph),
            secrets: m
                .secrets
                .iter()
                .map(|s| (s.clone(), SecretSource::File(self.secret.path().into())))
                .collect::<BTreeMap<_, _>>(),
            ..Grants::default()
        };
        if m.capabilities.contains(&Capability::Http) {
            // Only the suite's own loopback server is reachable; any other
            // host is refused by the runtime as a `denied` error the plugin
            // sees, which is the offline behaviour the suite wants.
            grants.http_hosts = vec![
                server
                    .and_then(|s| s.strip_prefix("http://"))
                    .and_then(|s| s.split('/').next())
                    .unwrap_or("127.0.0.1:9")
                    .to_string(),
            ];
        }
        plugin
            .bind("conformance", &config, grants)
            .map_err(|problems| format!("cannot bind: {}", problems.join("; ")))
    }
}

/// The org-mesh capabilities behind a component's imports.
pub fn imported_capabilities(imports: &[String]) -> std::collections::BTreeSet<Capability> {
    imports
        .iter()
        .filter_map(|i| Capability::of_import(i))
        .collect()
}

fn manifest_path(path: &Path) -> Result<PathBuf, Error> {
    let candidate = if path.is_dir() {
        path.join("manifest.yaml")
    } else if path.extension().is_some_and(|e| e == "wasm") {
        path.parent()
            .unwrap_or(Path::new("."))
            .join("manifest.yaml")
    } else {
        path.to_path_buf()
    };
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(Error::Target {
            path: path.to_path_buf(),
            problem: format!(
                "no manifest at {}: a plugin is a folder with manifest.yaml and its component, as `org-mesh plugin build` lays it out",
                candidate.display()
            ),
        })
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A value the schema accepts: its default, its first allowed value, or the
/// plainest value of its type, with the required fields of an object
/// filled. A string field whose name ends in `url` points at `server`.
fn example(schema: &Json, server: Option<&str>) -> Json {
    let mut object = Map::new();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            let is_url = name.ends_with("url") && property["type"] == "string";
            if let (true, Some(server)) = (is_url, server) {
                object.insert(name.clone(), Json::from(server));
            } else if required.contains(&name.as_str()) {
                object.insert(name.clone(), plain(property, server));
            }
        }
    }
    Json::Object(object)
}

fn plain(schema: &Json, server: Option<&str>) -> Json {
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("object") => example(schema, server),
        Some("array") => Json::Array(Vec::new()),
        Some("boolean") => Json::Bool(false),
        Some("integer" | "number") => schema.get("minimum").cloned().unwrap_or(Json::from(1)),
        _ => Json::from("conformance"),
    }
}
