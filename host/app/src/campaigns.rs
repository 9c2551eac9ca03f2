//! Narrative campaigns as nodes of the twin, and their signals as metrics.
//!
//! A finding that lists the narrative `signals` it rests on describes a
//! campaign. Each becomes a `Campaign` node keyed by the finding's
//! fingerprint, joined to what its evidence cites: `INVOLVES` accounts,
//! `CITES` messages, `TARGETS` repositories (and the finding's subject).
//! Graph queries can then follow a campaign to the people, text and access
//! it touched. Campaigns no longer found are marked as no longer observed,
//! like any record a complete sync leaves out.

use std::collections::BTreeSet;

use anyhow::Context;
use org_mesh_model::{Batch, Coverage, Edge, Node, NodeRef, Properties, Timestamp, Value};
use org_mesh_store::{Applied, GraphStore};

use crate::pipeline::Reported;

/// The source campaign records are stamped with.
pub const SOURCE: &str = "narrative-campaigns";
pub const LABEL: &str = "Campaign";

/// The signal kinds a finding rests on, when it is a narrative one.
pub fn signals(finding: &org_mesh_model::Finding) -> Option<&[String]> {
    match finding.attributes.get("signals") {
        Some(Value::Texts(kinds)) => Some(kinds),
        _ => None,
    }
}

/// `(fingerprint, signal kind)` for every signal of every narrative
/// finding, so that a caller can count each signal once, when it first
/// appears.
pub fn signal_keys(findings: &[Reported]) -> BTreeSet<(String, String)> {
    findings
        .iter()
        .filter_map(|r| Some((r.finding.fingerprint.as_str(), signals(&r.finding)?)))
        .flat_map(|(fp, kinds)| kinds.iter().map(move |k| (fp.to_string(), k.clone())))
        .collect()
}

/// The campaign records for these findings, covering every campaign so
/// that one no longer found is marked as such.
pub fn batch(findings: &[Reported]) -> Batch {
    let mut batch = Batch {
        complete: vec![Coverage::Nodes(LABEL.into())],
        ..Batch::default()
    };
    let mut edges: BTreeSet<(String, NodeRef)> = BTreeSet::new();
    for r in findings {
        let f = &r.finding;
        let Some(kinds) = signals(f) else {
            continue;
        };
        let mut properties = Properties::new();
        properties.insert("rule".into(), Value::Text(f.rule.clone()));
        properties.insert("title".into(), Value::Text(f.title.clone()));
        properties.insert("detector".into(), Value::Text(f.detector.clone()));
        properties.insert("severity".into(), Value::Text(r.severity.to_string()));
        properties.insert("score".into(), Value::Float(f.score));
        properties.insert("signals".into(), Value::Texts(kinds.to_vec()));
        for name in [
            "risk_score",
            "participants",
            "pressed",
            "beneficiaries",
            "messages",
            "threads",
            "first_message_at",
            "last_message_at",
            "privilege_granted",
        ] {
            if let Some(v) = f.attributes.get(name) {
                properties.insert(name.into(), v.clone());
            }
        }
        let node = Node {
            label: LABEL.into(),
            key: f.fingerprint.clone(),
            properties,
        };
        let from = node.reference();
        batch.nodes.push(node);
        let cited = std::iter::once(&f.subject).chain(f.evidence.iter().map(|e| &e.subject));
        for to in cited {
            let kind = match to.label.as_str() {
                "Account" => "INVOLVES",
                "Message" => "CITES",
                "Repository" | "Organisation" | "Group" => "TARGETS",
                _ => continue,
            };
            if edges.insert((format!("{}/{kind}", from.key), to.clone())) {
                batch.edges.push(Edge {
                    kind: kind.into(),
                    from: from.clone(),
                    to: to.clone(),
                    properties: Properties::new(),
                });
            }
        }
    }
    batch
}

/// Writes the campaigns of one evaluation into the twin.
pub async fn record(
    store: &dyn GraphStore,
    findings: &[Reported],
    at: Timestamp,
) -> anyhow::Result<Applied> {
    let applied = store
        .apply(SOURCE, at, batch(findings))
        .await
        .context("recording narrative campaigns in the twin")?;
    for s in &applied.skipped {
        // Evidence may cite a record a later sync no longer holds; the
        // campaign itself is still recorded.
        tracing::debug!(record = %s.record, reason = %s.reason, "A campaign edge was not recorded");
    }
    Ok(applied)
}
