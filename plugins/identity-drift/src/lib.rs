//! The identity-drift detector plugin: finds people the identity provider
//! has offboarded who keep code-host access, organisation members nobody
//! can be tied to or without two-factor authentication, outside admins,
//! and default branches whose protection is missing or below the baseline.
//!
//! Build the component with
//! `cargo build --target wasm32-wasip2 --profile plugin -p identity-drift`;
//! `cargo test -p identity-drift` runs the rules natively over an in-memory
//! graph.

mod config;
mod finding;
mod graph;
mod rules;
mod subjects;

use std::collections::BTreeSet;

use org_mesh_plugin::detector::{DetectRequest, Finding, Guest};
use org_mesh_plugin::types::{Description, PluginError, RuleInfo};

pub use config::{Baseline, Config};
pub use graph::{Graph, HostGraph};
pub use rules::RULES;

pub const NAME: &str = "identity-drift";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn description() -> Description {
    Description {
        name: NAME.into(),
        version: VERSION.into(),
        summary: "Finds offboarded people with code-host access, unlinked or two-factor-less \
                  members, outside admins and weak default-branch protection"
            .into(),
        rules: RULES
            .iter()
            .map(|(id, title, severity)| RuleInfo {
                id: (*id).into(),
                title: (*title).into(),
                default_severity: (*severity).into(),
            })
            .collect(),
        actions: Vec::new(),
    }
}

/// Runs every rule over the request's subjects.
pub fn detect<G: Graph>(graph: &G, req: &DetectRequest) -> Result<Vec<Finding>, PluginError> {
    let config = Config::parse(&req.config)?;
    let graph = graph::Memo::new(graph);
    let mut findings = Vec::new();
    let mut seen = BTreeSet::new();
    for anchor in subjects::anchors(&graph, req)? {
        for finding in rules::evaluate(&graph, &anchor, &config)? {
            let id = (
                finding.rule.clone(),
                finding.subject.label.clone(),
                finding.subject.key.clone(),
                finding.key.clone(),
            );
            if seen.insert(id) {
                findings.push(finding);
            }
        }
    }
    Ok(findings)
}

#[cfg_attr(
    not(target_arch = "wasm32"),
    expect(dead_code, reason = "only the wasm build exports the plugin")
)]
struct IdentityDrift;

impl Guest for IdentityDrift {
    fn describe() -> Description {
        description()
    }

    fn detect(req: DetectRequest) -> Result<Vec<Finding>, PluginError> {
        let findings = detect(&HostGraph, &req)?;
        org_mesh_plugin::log::emit(
            org_mesh_plugin::log::Level::Debug,
            "Evaluated identity drift rules",
            &[
                ("full".into(), req.full.to_string()),
                ("nodes".into(), req.nodes.len().to_string()),
                ("edges".into(), req.edges.len().to_string()),
                ("findings".into(), findings.len().to_string()),
            ],
        );
        Ok(findings)
    }
}

// The export macro names symbols after WIT paths (`org-mesh:plugin/...`),
// which a native linker's version script cannot express, so the exports
// exist only in the wasm build; native builds keep the impl type-checked.
#[cfg(target_arch = "wasm32")]
org_mesh_plugin::export_detector!(IdentityDrift);
