//! The parts of GitHub's REST answers the connector reads. Every other field
//! is ignored, and every field GitHub may leave out is optional, so a newer
//! or older API version does not fail the sync.

use serde::Deserialize;

/// A user as listed by members, team members and collaborators.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub login: String,
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub site_admin: Option<bool>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Membership {
    pub state: Option<String>,
    pub role: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Invitation {
    pub login: Option<String>,
    pub role: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub privacy: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub id: i64,
    pub name: String,
    pub full_name: String,
    pub private: Option<bool>,
    pub visibility: Option<String>,
    pub archived: Option<bool>,
    pub default_branch: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Collaborator {
    #[serde(flatten)]
    pub user: User,
    pub role_name: Option<String>,
    pub permissions: Option<Permissions>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Permissions {
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub maintain: bool,
    #[serde(default)]
    pub push: bool,
    #[serde(default)]
    pub triage: bool,
    #[serde(default)]
    pub pull: bool,
}

impl Collaborator {
    /// The collaborator's role on the repository: the named role GitHub
    /// reports, else the strongest permission flag that is set.
    pub fn role(&self) -> Option<String> {
        if let Some(name) = self.role_name.as_deref().filter(|n| !n.is_empty()) {
            return Some(name.to_string());
        }
        let p = self.permissions.as_ref()?;
        let role = if p.admin {
            "admin"
        } else if p.maintain {
            "maintain"
        } else if p.push {
            "write"
        } else if p.triage {
            "triage"
        } else if p.pull {
            "read"
        } else {
            return None;
        };
        Some(role.to_string())
    }
}

/// A branch protection document as `GET .../branches/B/protection` returns
/// it. GitHub leaves out a whole rule object when that rule is switched off.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Protection {
    pub required_status_checks: Option<StatusChecks>,
    pub required_pull_request_reviews: Option<Reviews>,
    pub enforce_admins: Option<Toggle>,
    pub allow_force_pushes: Option<Toggle>,
    pub allow_deletions: Option<Toggle>,
    pub required_linear_history: Option<Toggle>,
    pub required_signatures: Option<Toggle>,
    pub required_conversation_resolution: Option<Toggle>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusChecks {
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reviews {
    pub required_approving_review_count: Option<i64>,
    pub dismiss_stale_reviews: Option<bool>,
    pub require_code_owner_reviews: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Toggle {
    pub enabled: Option<bool>,
}

/// A branch protection rule as `branch_protection_rule` webhooks carry it.
/// Its settings are enforcement levels (`off`, `non_admins`, `everyone`)
/// where the REST protection document has on/off rule objects.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProtectionRule {
    /// The branch name pattern; webhooks call it `name`, the REST API and
    /// GraphQL `pattern`.
    pub name: Option<String>,
    pub pattern: Option<String>,
    pub admin_enforced: Option<bool>,
    pub pull_request_reviews_enforcement_level: Option<String>,
    pub required_approving_review_count: Option<i64>,
    pub dismiss_stale_reviews_on_push: Option<bool>,
    pub require_code_owner_review: Option<bool>,
    pub required_status_checks_enforcement_level: Option<String>,
    pub strict_required_status_checks_policy: Option<bool>,
    pub allow_force_pushes_enforcement_level: Option<String>,
    pub allow_deletions_enforcement_level: Option<String>,
    #[serde(alias = "required_linear_history_enforcement_level")]
    pub linear_history_requirement_enforcement_level: Option<String>,
    pub signature_requirement_enforcement_level: Option<String>,
    pub required_conversation_resolution_level: Option<String>,
}

/// Whether a rule with this enforcement level is in force for anyone. An
/// unknown level is taken as in force: for `allow_*` rules that reads as
/// the riskier setting, which drift rules would rather see than miss.
fn enforced(level: Option<&str>) -> Option<bool> {
    level.map(|l| !l.eq_ignore_ascii_case("off"))
}

impl ProtectionRule {
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_deref().or(self.name.as_deref())
    }

    /// The rule in the shape of the REST protection document, so that one
    /// function flattens both into the same properties. A level of `off`
    /// is a rule object GitHub would leave out; a missing level leaves the
    /// rule unknown.
    pub fn protection(&self) -> Protection {
        let toggle = |level: &Option<String>| {
            Some(Toggle {
                enabled: enforced(level.as_deref()),
            })
        };
        let reviews = match enforced(self.pull_request_reviews_enforcement_level.as_deref()) {
            Some(false) => None,
            _ => Some(Reviews {
                required_approving_review_count: self.required_approving_review_count,
                dismiss_stale_reviews: self.dismiss_stale_reviews_on_push,
                require_code_owner_reviews: self.require_code_owner_review,
            }),
        };
        let checks = match enforced(self.required_status_checks_enforcement_level.as_deref()) {
            Some(false) => None,
            _ => Some(StatusChecks {
                strict: self.strict_required_status_checks_policy,
            }),
        };
        Protection {
            required_status_checks: checks,
            required_pull_request_reviews: reviews,
            enforce_admins: Some(Toggle {
                enabled: self.admin_enforced,
            }),
            allow_force_pushes: toggle(&self.allow_force_pushes_enforcement_level),
            allow_deletions: toggle(&self.allow_deletions_enforcement_level),
            required_linear_history: toggle(&self.linear_history_requirement_enforcement_level),
            required_signatures: toggle(&self.signature_requirement_enforcement_level),
            required_conversation_resolution: toggle(&self.required_conversation_resolution_level),
        }
    }
}
