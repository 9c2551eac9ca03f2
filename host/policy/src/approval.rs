//! Who must approve a proposed fix: the `decision` rule of package
//! `orgmesh.approval`.
//!
//! The rule answers one of three objects:
//!
//! - `{"mode": "auto"}`: the fix may run without a person;
//! - `{"mode": "approve", "approvers": N, "role": "approver" | "admin",
//!   "expires_in_secs": S}`: N distinct people holding at least the role
//!   must approve within S seconds of the proposal;
//! - `{"mode": "deny", "reason": "..."}`: the fix must not run.
//!
//! An undefined decision, a folder without the package, or an answer of
//! any other shape means no fix runs: the caller gets `None` or an error,
//! never a default.

use org_mesh_model::{NodeRef, Severity, Timestamp};
use serde::{Deserialize, Serialize};

/// What the approval policy sees as `input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalInput {
    pub action: ActionFacts,
    pub finding: FindingFacts,
    #[serde(with = "time::serde::rfc3339")]
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionFacts {
    /// The executor instance that would run it.
    pub executor: String,
    /// The action, e.g. `github.remove-org-member`.
    pub kind: String,
    pub target: NodeRef,
    pub parameters: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingFacts {
    pub rule: String,
    pub fingerprint: String,
    pub subject: NodeRef,
    pub severity: Severity,
    pub score: f64,
    /// What the drift policy said about running its fix unattended.
    pub auto_fix: Option<bool>,
    pub suppressed: Option<bool>,
}

/// The role a person needs to approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApproverRole {
    Approver,
    Admin,
}

impl ApproverRole {
    /// The name the policy and the API use.
    pub fn name(self) -> &'static str {
        match self {
            ApproverRole::Approver => "approver",
            ApproverRole::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Approval {
    Auto,
    Approve {
        approvers: u32,
        role: ApproverRole,
        expires_in_secs: u64,
    },
    Deny {
        reason: String,
    },
}

/// What the rule must give, for error messages.
pub(crate) const APPROVAL_SHAPE: &str = "{mode: auto}, {mode: approve, approvers >= 1, role: approver|admin, expires_in_secs >= 1} or {mode: deny, reason}";

impl Approval {
    /// Reads the rule's answer; `None` when its shape is wrong.
    pub(crate) fn from_rego(value: &regorus::Value) -> Option<Approval> {
        let json: serde_json::Value = serde_json::from_str(&value.to_json_str().ok()?).ok()?;
        let approval: Approval = serde_json::from_value(json).ok()?;
        match &approval {
            Approval::Approve {
                approvers,
                expires_in_secs,
                ..
            } if *approvers == 0 || *expires_in_secs == 0 => None,
            _ => Some(approval),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_is_named_as_the_policy_spells_it() {
        for role in [ApproverRole::Approver, ApproverRole::Admin] {
            assert_eq!(
                serde_json::to_value(role).ok(),
                Some(serde_json::Value::from(role.name()))
            );
        }
    }
}
