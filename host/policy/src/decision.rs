use org_mesh_model::{Finding, NodeRef, Severity, Timestamp, properties_to_json};
use serde::Serialize;

use crate::error::PolicyError;

/// What a policy sees of one finding, as `input`.
///
/// Evidence and the remedy are reduced to a count and a flag: policies
/// decide on the finding's kind and attributes, and keeping provenance out
/// keeps the input small and free of data a policy has no use for.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DecisionInput {
    pub detector: String,
    pub rule: String,
    pub subject: NodeRef,
    pub key: String,
    pub title: String,
    pub score: f64,
    pub default_severity: Severity,
    pub attributes: serde_json::Value,
    pub evidence_count: usize,
    pub has_remedy: bool,
    /// The decision time, so that suppression expiry gives the same answer
    /// in a test as in production.
    #[serde(with = "time::serde::rfc3339")]
    pub now: Timestamp,
    /// Kept for error messages; policies do not see it.
    #[serde(skip)]
    pub fingerprint: String,
}

impl DecisionInput {
    pub fn from_finding(finding: &Finding, now: Timestamp) -> Self {
        Self {
            detector: finding.detector.clone(),
            rule: finding.rule.clone(),
            subject: finding.subject.clone(),
            key: finding.key.clone(),
            title: finding.title.clone(),
            score: finding.score,
            default_severity: finding.default_severity,
            attributes: properties_to_json(&finding.attributes),
            evidence_count: finding.evidence.len(),
            has_remedy: finding.remedy.is_some(),
            now,
            fingerprint: finding.fingerprint.clone(),
        }
    }

    pub(crate) fn to_rego(&self) -> Result<regorus::Value, PolicyError> {
        serde_json::to_value(self)
            .map(regorus::Value::from)
            .map_err(|source| PolicyError::Input {
                fingerprint: self.fingerprint.clone(),
                source,
            })
    }
}

/// What the policy decided about one finding. Every field is `None` when
/// the policy left the rule undefined for this finding; callers must treat
/// that as "no decision", never as a default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub severity: Option<Severity>,
    pub suppressed: Option<bool>,
    pub suppress_reason: Option<String>,
    pub auto_fix: Option<bool>,
}

impl Decision {
    /// The severity to report: the policy's when it rated the finding,
    /// otherwise `default` (usually the detector's suggestion).
    pub fn effective_severity(&self, default: Severity) -> Severity {
        self.severity.unwrap_or(default)
    }

    /// Whether the fix may run without a person. Both answers must be
    /// explicit: a policy that says nothing about suppression has not said
    /// the finding is live.
    pub fn may_act(&self) -> bool {
        self.auto_fix == Some(true) && self.suppressed == Some(false)
    }

    /// The decisions the policy should have made but did not, for logs and
    /// reports. `suppress_reason` counts only when the finding is
    /// suppressed, since otherwise there is nothing to explain.
    pub fn undefined_fields(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.severity.is_none() {
            missing.push("severity");
        }
        if self.suppressed.is_none() {
            missing.push("suppressed");
        }
        if self.suppressed == Some(true) && self.suppress_reason.is_none() {
            missing.push("suppress_reason");
        }
        if self.auto_fix.is_none() {
            missing.push("auto_fix");
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn may_act_needs_both_answers() {
        let live = Decision {
            auto_fix: Some(true),
            suppressed: Some(false),
            ..Decision::default()
        };
        assert!(live.may_act());
        let unknown_suppression = Decision {
            suppressed: None,
            ..live.clone()
        };
        assert!(!unknown_suppression.may_act());
        let suppressed = Decision {
            suppressed: Some(true),
            ..live
        };
        assert!(!suppressed.may_act());
        assert!(!Decision::default().may_act());
    }

    #[test]
    fn undefined_fields_lists_missing_decisions() {
        let decision = Decision {
            suppressed: Some(true),
            ..Decision::default()
        };
        assert_eq!(
            decision.undefined_fields(),
            ["severity", "suppress_reason", "auto_fix"]
        );
        assert_eq!(decision.effective_severity(Severity::Low), Severity::Low);
    }
}
