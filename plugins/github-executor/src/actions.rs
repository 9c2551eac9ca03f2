//! The actions this executor carries out, read from an action's
//! parameters. Parameters are checked strictly: an unknown name or a wrong
//! type is refused rather than ignored, since a typo in a remedy must not
//! silently weaken what gets applied.

use org_mesh_plugin::types::{PluginError, Properties, Value};

use crate::protection::{Requested, Restrictions};

pub const REMOVE_ORG_MEMBER: &str = "github.remove-org-member";
pub const RESTORE_BRANCH_PROTECTION: &str = "github.restore-branch-protection";

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    RemoveOrgMember {
        org: String,
        login: String,
    },
    RestoreBranchProtection {
        /// `owner/name`.
        repository: String,
        branch: String,
        requested: Requested,
    },
}

fn invalid(message: String) -> PluginError {
    PluginError::InvalidInput(message)
}

fn text(name: &str, value: &Value) -> Result<String, PluginError> {
    match value {
        Value::Text(s) if !s.trim().is_empty() => Ok(s.clone()),
        other => Err(invalid(format!(
            "parameter {name}: {other:?} is not a non-empty text"
        ))),
    }
}

fn flag(name: &str, value: &Value) -> Result<bool, PluginError> {
    match value {
        Value::Boolean(b) => Ok(*b),
        other => Err(invalid(format!(
            "parameter {name}: {other:?} is not a boolean"
        ))),
    }
}

fn texts(name: &str, value: &Value) -> Result<Vec<String>, PluginError> {
    match value {
        Value::Texts(list) => Ok(list.clone()),
        other => Err(invalid(format!(
            "parameter {name}: {other:?} is not a list of texts"
        ))),
    }
}

fn required(found: Option<String>, kind: &str, name: &str) -> Result<String, PluginError> {
    found.ok_or_else(|| invalid(format!("{kind} needs the parameter {name}")))
}

impl Action {
    pub fn parse(kind: &str, parameters: &Properties) -> Result<Self, PluginError> {
        match kind {
            REMOVE_ORG_MEMBER => remove_org_member(parameters),
            RESTORE_BRANCH_PROTECTION => restore_branch_protection(parameters),
            other => Err(invalid(format!(
                "action {other:?} is not one this executor handles ({REMOVE_ORG_MEMBER}, {RESTORE_BRANCH_PROTECTION})"
            ))),
        }
    }
}

fn remove_org_member(parameters: &Properties) -> Result<Action, PluginError> {
    let (mut org, mut login) = (None, None);
    for (name, value) in parameters {
        match name.as_str() {
            "org" => org = Some(text(name, value)?),
            "login" => login = Some(text(name, value)?),
            other => {
                return Err(invalid(format!(
                    "{REMOVE_ORG_MEMBER} has no parameter {other}"
                )));
            }
        }
    }
    Ok(Action::RemoveOrgMember {
        org: required(org, REMOVE_ORG_MEMBER, "org")?,
        login: required(login, REMOVE_ORG_MEMBER, "login")?,
    })
}

fn restore_branch_protection(parameters: &Properties) -> Result<Action, PluginError> {
    let (mut repository, mut branch) = (None, None);
    let mut r = Requested::default();
    let mut dismissal = (None, None);
    let mut push = (None, None);
    for (name, value) in parameters {
        let slot = match name.as_str() {
            "repository" => {
                let full_name = text(name, value)?;
                if full_name.split('/').filter(|p| !p.is_empty()).count() != 2 {
                    return Err(invalid(format!(
                        "parameter repository: {full_name:?} is not owner/name"
                    )));
                }
                repository = Some(full_name);
                continue;
            }
            "branch" => {
                branch = Some(text(name, value)?);
                continue;
            }
            "required_approving_review_count" => {
                match value {
                    Value::Integer(n) if (0..=6).contains(n) => {
                        r.required_approving_review_count = Some(*n);
                    }
                    other => {
                        return Err(invalid(format!(
                            "parameter {name}: {other:?} is not a count from 0 to 6"
                        )));
                    }
                }
                continue;
            }
            "required_status_checks_contexts" => {
                r.status_check_contexts = Some(texts(name, value)?);
                continue;
            }
            "dismissal_restrictions_users" => {
                dismissal.0 = Some(texts(name, value)?);
                continue;
            }
            "dismissal_restrictions_teams" => {
                dismissal.1 = Some(texts(name, value)?);
                continue;
            }
            "restrictions_users" => {
                push.0 = Some(texts(name, value)?);
                continue;
            }
            "restrictions_teams" => {
                push.1 = Some(texts(name, value)?);
                continue;
            }
            "enforce_admins" => &mut r.enforce_admins,
            "dismiss_stale_reviews" => &mut r.dismiss_stale_reviews,
            "require_code_owner_reviews" => &mut r.require_code_owner_reviews,
            "required_status_checks_strict" => &mut r.required_status_checks_strict,
            "allow_force_pushes" => &mut r.allow_force_pushes,
            "allow_deletions" => &mut r.allow_deletions,
            "required_linear_history" => &mut r.required_linear_history,
            "required_signatures" => &mut r.required_signatures,
            "required_conversation_resolution" => &mut r.required_conversation_resolution,
            other => {
                return Err(invalid(format!(
                    "{RESTORE_BRANCH_PROTECTION} has no parameter {other}"
                )));
            }
        };
        *slot = Some(flag(name, value)?);
    }
    r.dismissal_restrictions = restrictions(dismissal);
    r.push_restrictions = restrictions(push);
    Ok(Action::RestoreBranchProtection {
        repository: required(repository, RESTORE_BRANCH_PROTECTION, "repository")?,
        branch: required(branch, RESTORE_BRANCH_PROTECTION, "branch")?,
        requested: r,
    })
}

/// GitHub wants both lists whenever either is given.
fn restrictions(lists: (Option<Vec<String>>, Option<Vec<String>>)) -> Option<Restrictions> {
    match lists {
        (None, None) => None,
        (users, teams) => Some(Restrictions {
            users: users.unwrap_or_default(),
            teams: teams.unwrap_or_default(),
            apps: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use org_mesh_plugin::props::Props;

    use super::*;

    #[test]
    fn remove_needs_org_and_login() {
        let ok = Action::parse(
            REMOVE_ORG_MEMBER,
            &Props::new()
                .text("org", "acme")
                .text("login", "octocat")
                .build(),
        );
        assert_eq!(
            ok.ok(),
            Some(Action::RemoveOrgMember {
                org: "acme".into(),
                login: "octocat".into()
            })
        );
        let missing = Action::parse(REMOVE_ORG_MEMBER, &Props::new().text("org", "acme").build());
        assert!(matches!(missing, Err(PluginError::InvalidInput(m)) if m.ends_with("login")));
    }

    #[test]
    fn unknown_or_mistyped_parameters_are_refused() {
        let base = || {
            Props::new()
                .text("repository", "acme/api")
                .text("branch", "main")
        };
        for (props, expected) in [
            (
                base().boolean("enforce_admin", true),
                "has no parameter enforce_admin",
            ),
            (
                base().text("enforce_admins", "true"),
                "parameter enforce_admins",
            ),
            (
                base().integer("required_approving_review_count", 7),
                "count from 0 to 6",
            ),
            (
                Props::new()
                    .text("repository", "api")
                    .text("branch", "main"),
                "not owner/name",
            ),
        ] {
            let result = Action::parse(RESTORE_BRANCH_PROTECTION, &props.build());
            assert!(
                matches!(&result, Err(PluginError::InvalidInput(m)) if m.contains(expected)),
                "{result:?}"
            );
        }
        let other = Action::parse("github.delete-repo", &Vec::new());
        assert!(matches!(other, Err(PluginError::InvalidInput(_))));
    }
}
