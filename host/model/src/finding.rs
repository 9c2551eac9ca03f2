use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{NodeRef, Properties, Provenance};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown severity {s:?}: expected info, low, medium, high or critical")
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub statement: String,
    pub subject: NodeRef,
    pub provenance: Provenance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remedy {
    pub action: String,
    pub target: NodeRef,
    pub parameters: Properties,
}

/// A finding as a detector reported it, before policy decides on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The detector plugin that reported it.
    pub detector: String,
    pub rule: String,
    pub subject: NodeRef,
    pub key: String,
    pub title: String,
    pub score: f64,
    /// The severity the rule suggests; policy has the last word.
    pub default_severity: Severity,
    pub attributes: Properties,
    pub evidence: Vec<Evidence>,
    pub remedy: Option<Remedy>,
    pub fingerprint: String,
}

/// The stable identity of a finding: the same rule about the same subject and
/// key is the same finding however often it is seen.
pub fn fingerprint(rule: &str, subject: &NodeRef, key: &str) -> String {
    let mut hash = Sha256::new();
    for part in [rule, &subject.label, &subject.key, key] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hex::encode(&hash.finalize()[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_separates_parts() {
        let a = fingerprint("r", &NodeRef::new("Account", "github:ab"), "");
        let b = fingerprint("r", &NodeRef::new("Account", "github:ab"), "");
        let c = fingerprint("r", &NodeRef::new("Account", "github:a"), "b");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 24);
    }

    #[test]
    fn severity_parses_case_insensitively_and_orders() {
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!(Severity::Critical > Severity::High);
        assert!("urgent".parse::<Severity>().is_err());
    }
}
