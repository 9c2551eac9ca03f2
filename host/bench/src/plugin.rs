//! The identity-drift detector over one small twin, two ways: as the
//! sandboxed component the host runs (a fresh instance per call, graph
//! reads crossing into the host) and as the same Rust compiled natively,
//! reading the same twin directly.
//!
//! The twin holds one person the identity provider has offboarded whose
//! GitHub account is still an organisation admin; the change set is the
//! deactivation, so a call reads the graph several times and raises the
//! finding a real deactivation would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use org_mesh_model as model;
use org_mesh_plugin::detector as sdk_detect;
use org_mesh_plugin::graph::{Direction as SdkDirection, Neighbour};
use org_mesh_plugin::types as sdk;
use org_mesh_runtime::{Grants, GraphReader, Manifest, Plugin, Runtime, RuntimeOptions};
use time::format_description::well_known::Rfc3339;

/// An in-memory twin both sides read.
#[derive(Debug, Default)]
pub struct Twin {
    nodes: BTreeMap<model::NodeRef, model::StoredNode>,
    edges: Vec<model::StoredEdge>,
    changed: Vec<model::NodeRef>,
}

fn seen(source: &str) -> anyhow::Result<model::Provenance> {
    let at = time::OffsetDateTime::parse("2026-11-30T09:00:00Z", &Rfc3339)?;
    Ok(model::Provenance {
        source: source.into(),
        first_seen: at,
        last_seen: at,
        not_observed_since: None,
    })
}

fn props(pairs: &[(&str, model::Value)]) -> model::Properties {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

impl Twin {
    /// The offboarded admin described in the module docs.
    pub fn offboarded_admin() -> anyhow::Result<Twin> {
        use model::Value::{Boolean, Text};
        let mut twin = Twin::default();
        twin.add_node(
            "Person",
            "person:alice",
            &[("display_name", Text("Alice".into()))],
        )?;
        twin.add_node(
            "Account",
            "okta:alice",
            &[
                ("active", Boolean(false)),
                ("email", Text("alice@acme.test".into())),
            ],
        )?;
        twin.add_node(
            "Account",
            "github:alice",
            &[
                ("login", Text("alice".into())),
                ("two_factor", Boolean(true)),
            ],
        )?;
        twin.add_node(
            "Organisation",
            "github:acme",
            &[("two_factor_required", Boolean(true))],
        )?;
        let person = model::NodeRef::new("Person", "person:alice");
        let okta = model::NodeRef::new("Account", "okta:alice");
        let github = model::NodeRef::new("Account", "github:alice");
        let org = model::NodeRef::new("Organisation", "github:acme");
        twin.add_edge("IDENTITY_OF", &okta, &person, &[])?;
        twin.add_edge("IDENTITY_OF", &github, &person, &[])?;
        twin.add_edge(
            "MEMBER_OF",
            &github,
            &org,
            &[
                ("role", Text("admin".into())),
                ("state", Text("active".into())),
            ],
        )?;
        twin.changed.push(okta);
        Ok(twin)
    }

    fn add_node(
        &mut self,
        label: &str,
        key: &str,
        p: &[(&str, model::Value)],
    ) -> anyhow::Result<()> {
        let node = model::Node {
            label: label.into(),
            key: key.into(),
            properties: props(p),
        };
        let source = key.split(':').next().unwrap_or_default();
        self.nodes.insert(
            node.reference(),
            model::StoredNode {
                node,
                provenance: seen(source)?,
            },
        );
        Ok(())
    }

    fn add_edge(
        &mut self,
        kind: &str,
        from: &model::NodeRef,
        to: &model::NodeRef,
        p: &[(&str, model::Value)],
    ) -> anyhow::Result<()> {
        self.edges.push(model::StoredEdge {
            edge: model::Edge {
                kind: kind.into(),
                from: from.clone(),
                to: to.clone(),
                properties: props(p),
            },
            provenance: seen("identity")?,
        });
        Ok(())
    }

    /// What the host hands the component: the changed nodes, as updated.
    pub fn change_set(&self) -> model::ChangeSet {
        model::ChangeSet {
            nodes: self
                .changed
                .iter()
                .filter_map(|r| self.nodes.get(r))
                .map(|n| model::NodeChange {
                    node: n.clone(),
                    kind: model::ChangeKind::Updated,
                })
                .collect(),
            edges: Vec::new(),
        }
    }

    /// The same change set as the native detector takes it.
    pub fn request(&self) -> sdk_detect::DetectRequest {
        sdk_detect::DetectRequest {
            config: "{}".into(),
            full: false,
            nodes: self
                .change_set()
                .nodes
                .iter()
                .map(|c| sdk_detect::NodeChange {
                    node: node_out(&c.node.node),
                    kind: sdk_detect::ChangeKind::Updated,
                    provenance: provenance_out(&c.node.provenance),
                })
                .collect(),
            edges: Vec::new(),
        }
    }

    fn around(
        &self,
        node: &model::NodeRef,
        kind: &str,
        outgoing: bool,
    ) -> Vec<(model::StoredEdge, model::StoredNode)> {
        self.edges
            .iter()
            .filter(|e| e.edge.kind == kind)
            .filter_map(|e| {
                let (here, there) = if outgoing {
                    (&e.edge.from, &e.edge.to)
                } else {
                    (&e.edge.to, &e.edge.from)
                };
                (here == node).then(|| self.nodes.get(there).map(|n| (e.clone(), n.clone())))?
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl GraphReader for Twin {
    async fn node(&self, node: &model::NodeRef) -> Result<Option<model::StoredNode>, String> {
        Ok(self.nodes.get(node).cloned())
    }

    async fn neighbours(
        &self,
        node: &model::NodeRef,
        kind: &str,
        dir: model::Direction,
    ) -> Result<Vec<(model::StoredEdge, model::StoredNode)>, String> {
        Ok(self.around(node, kind, dir == model::Direction::Outgoing))
    }
}

/// The twin as the native detector reads it, converted on every read as
/// the host converts what it hands the component.
#[derive(Debug)]
pub struct Native<'a>(pub &'a Twin);

impl identity_drift::Graph for Native<'_> {
    fn node(&self, node: &sdk::NodeRef) -> Result<Option<sdk::StoredNode>, sdk::PluginError> {
        let key = model::NodeRef::new(&node.label, &node.key);
        Ok(self.0.nodes.get(&key).map(stored_node_out))
    }

    fn neighbours(
        &self,
        node: &sdk::NodeRef,
        kind: &str,
        dir: SdkDirection,
    ) -> Result<Vec<Neighbour>, sdk::PluginError> {
        let key = model::NodeRef::new(&node.label, &node.key);
        let outgoing = matches!(dir, SdkDirection::Outgoing);
        Ok(self
            .0
            .around(&key, kind, outgoing)
            .iter()
            .map(|(e, n)| Neighbour {
                edge: sdk::StoredEdge {
                    edge: sdk::Edge {
                        kind: e.edge.kind.clone(),
                        from: ref_out(&e.edge.from),
                        to: ref_out(&e.edge.to),
                        properties: props_out(&e.edge.properties),
                    },
                    provenance: provenance_out(&e.provenance),
                },
                node: stored_node_out(n),
            })
            .collect())
    }
}

/// The native detector's findings as `(rule, subject, key)`, sorted, to
/// compare with the component's.
pub fn native_findings(twin: &Twin) -> anyhow::Result<Vec<(String, String, String)>> {
    let findings = identity_drift::detect(&Native(twin), &twin.request())
        .map_err(|e| anyhow::anyhow!("native detect: {e:?}"))?;
    let mut out: Vec<_> = findings
        .into_iter()
        .map(|f| {
            let subject = format!("{}({})", f.subject.label, f.subject.key);
            (f.rule, subject, f.key)
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The component's findings in the same shape.
pub fn sandboxed_findings(out: &org_mesh_runtime::DetectOutput) -> Vec<(String, String, String)> {
    let mut found: Vec<_> = out
        .findings
        .iter()
        .map(|f| (f.rule.clone(), f.subject.to_string(), f.key.clone()))
        .collect();
    found.sort();
    found
}

/// Where `.ci/build-plugins` puts the detector.
pub fn dist() -> PathBuf {
    org_mesh_harness::root().join("plugins/dist/identity-drift")
}

/// A runtime whose graph is `twin`, with the identity-drift component
/// loaded and bound with the graph granted, as the host runs it.
pub async fn sandboxed(twin: Arc<Twin>) -> anyhow::Result<(Runtime, Plugin)> {
    let runtime = Runtime::new(
        RuntimeOptions::default(),
        Arc::new(org_mesh_cache::memory::MemoryCoordination::default()),
        Some(twin),
        &prometheus::Registry::new(),
    )?;
    let manifest = Manifest::load(&dist().join("manifest.yaml"))
        .with_context(|| format!("loading {} (run .ci/build-plugins)", dist().display()))?;
    let plugin = runtime.load(manifest).await?;
    let grants = Grants {
        graph: true,
        ..Grants::default()
    };
    let bound = plugin
        .bind("identity-drift", &serde_json::json!({}), grants)
        .map_err(|problems| anyhow::anyhow!("binding: {}", problems.join("; ")))?;
    Ok((runtime, bound))
}

fn ref_out(r: &model::NodeRef) -> sdk::NodeRef {
    sdk::NodeRef {
        label: r.label.clone(),
        key: r.key.clone(),
    }
}

fn time_out(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn props_out(p: &model::Properties) -> sdk::Properties {
    p.iter()
        .map(|(k, v)| {
            let value = match v {
                model::Value::Null => sdk::Value::Null,
                model::Value::Boolean(b) => sdk::Value::Boolean(*b),
                model::Value::Integer(i) => sdk::Value::Integer(*i),
                model::Value::Float(f) => sdk::Value::Float(*f),
                model::Value::Text(s) => sdk::Value::Text(s.clone()),
                model::Value::Timestamp(t) => sdk::Value::Timestamp(time_out(*t)),
                model::Value::Texts(v) => sdk::Value::Texts(v.clone()),
            };
            (k.clone(), value)
        })
        .collect()
}

fn node_out(n: &model::Node) -> sdk::Node {
    sdk::Node {
        label: n.label.clone(),
        key: n.key.clone(),
        properties: props_out(&n.properties),
    }
}

fn provenance_out(p: &model::Provenance) -> sdk::Provenance {
    sdk::Provenance {
        source: p.source.clone(),
        first_seen: time_out(p.first_seen),
        last_seen: time_out(p.last_seen),
        not_observed_since: p.not_observed_since.map(time_out),
    }
}

fn stored_node_out(n: &model::StoredNode) -> sdk::StoredNode {
    sdk::StoredNode {
        node: node_out(&n.node),
        provenance: provenance_out(&n.provenance),
    }
}

/// Whether the component has been built.
pub fn built() -> bool {
    Path::new(&dist()).join("identity_drift.wasm").is_file()
}
