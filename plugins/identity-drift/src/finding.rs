//! Small builders for findings and their evidence.

use org_mesh_plugin::detector::{Evidence, Finding, Remedy};
use org_mesh_plugin::types::{NodeRef, Properties, Provenance};

pub fn evidence(statement: String, subject: NodeRef, provenance: &Provenance) -> Evidence {
    Evidence {
        statement,
        subject,
        provenance: provenance.clone(),
    }
}

/// A finding under construction; `score` starts at 1.0, for a direct fact.
#[derive(Debug)]
pub struct Draft {
    pub rule: &'static str,
    pub subject: NodeRef,
    pub key: String,
    pub title: String,
    pub score: f64,
    pub attributes: Properties,
    pub evidence: Vec<Evidence>,
    pub remedy: Option<Remedy>,
}

impl Draft {
    pub fn new(rule: &'static str, subject: NodeRef, key: &str, title: String) -> Self {
        Self {
            rule,
            subject,
            key: key.to_string(),
            title,
            score: 1.0,
            attributes: Vec::new(),
            evidence: Vec::new(),
            remedy: None,
        }
    }

    pub fn build(self) -> Finding {
        Finding {
            rule: self.rule.to_string(),
            subject: self.subject,
            key: self.key,
            title: self.title,
            score: self.score.clamp(0.0, 1.0),
            attributes: self.attributes,
            evidence: self.evidence,
            remedy: self.remedy,
        }
    }
}
