//! The actions this executor carries out, read from an action's
//! parameters. Parameters are checked strictly: an unknown name or a wrong
//! type is refused rather than ignored, since a typo in a remedy must not
//! silently weaken what gets applied.

use org_mesh_plugin::props::required_text as text;
use org_mesh_plugin::types::{PluginError, Properties, Value};

use crate::protection::{Requested, Restrictions};

pub const REMOVE_ORG_MEMBER: &str = "github.remove-org-member";
pub const RESTORE_BRANCH_PROTECTION: &str = "github.restore-branch-protection";
pub const REMOVE_REPO_COLLABORATOR: &str = "github.remove-repo-collaborator";
pub const CONVERT_TO_OUTSIDE_COLLABORATOR: &str = "github.convert-to-outside-collaborator";
pub const OPEN_ISSUE: &str = "github.open-issue";
pub const CAMPAIGN_RESPONSE: &str = "github.campaign-response";

/// Every action kind this executor handles, in the order `describe` lists
/// them.
pub const ACTIONS: [&str; 6] = [
    REMOVE_ORG_MEMBER,
    RESTORE_BRANCH_PROTECTION,
    REMOVE_REPO_COLLABORATOR,
    CONVERT_TO_OUTSIDE_COLLABORATOR,
    OPEN_ISSUE,
    CAMPAIGN_RESPONSE,
];

/// Approving reviews a campaign response requires when the remedy does not
/// say: one established maintainer besides the author.
pub const DEFAULT_RESPONSE_REVIEWS: i64 = 2;

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
    RemoveRepoCollaborator {
        /// `owner/name`.
        repository: String,
        login: String,
    },
    ConvertToOutsideCollaborator {
        organisation: String,
        login: String,
    },
    OpenIssue {
        /// `owner/name`.
        repository: String,
        title: String,
        /// The body as the remedy gave it, without the marker.
        body: String,
        labels: Vec<String>,
        /// The hidden line that ties the issue to its fix; see [`marker`].
        marker: String,
    },
    /// The response to a pressure campaign on a repository: an issue that
    /// tells its maintainers (and the security contact, when configured)
    /// what was seen, and, when the default branch is known, reviews from
    /// code owners on it, fresh after every new commit.
    CampaignResponse {
        /// `owner/name`.
        repository: String,
        title: String,
        body: String,
        marker: String,
        branch: Option<String>,
        /// At least this many approving reviews.
        reviews: i64,
    },
}

/// The line that makes an issue findable again by the fix that opened it.
/// GitHub has no idempotency key for issues, so the key travels inside the
/// body, as an HTML comment that GitHub does not render.
pub fn marker(idempotency_key: &str) -> Result<String, PluginError> {
    // A key that could end the comment early would put text on the page
    // and make the marker match other issues' bodies.
    let unsafe_char = |c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>';
    if idempotency_key.is_empty()
        || idempotency_key.contains("--")
        || idempotency_key.chars().any(unsafe_char)
    {
        return Err(invalid(format!(
            "idempotency key {idempotency_key:?} cannot be carried in an issue body: it must be \
             non-empty, without spaces, '<', '>' or \"--\""
        )));
    }
    Ok(format!("<!-- org-mesh:{idempotency_key} -->"))
}

fn invalid(message: String) -> PluginError {
    PluginError::InvalidInput(message)
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

fn repository(name: &str, value: &Value) -> Result<String, PluginError> {
    let full_name = text(name, value)?;
    let parts: Vec<&str> = full_name.split('/').collect();
    if parts.len() != 2 || parts.iter().any(|p| p.trim().is_empty()) {
        return Err(invalid(format!(
            "parameter {name}: {full_name:?} is not owner/name"
        )));
    }
    Ok(full_name)
}

fn unknown(kind: &str, name: &str) -> PluginError {
    invalid(format!("{kind} has no parameter {name}"))
}

impl Action {
    /// The action an executor request asks for. The idempotency key is only
    /// needed by actions that must find their own earlier work again.
    pub fn parse(
        kind: &str,
        parameters: &Properties,
        idempotency_key: &str,
    ) -> Result<Self, PluginError> {
        match kind {
            REMOVE_ORG_MEMBER => remove_org_member(parameters),
            RESTORE_BRANCH_PROTECTION => restore_branch_protection(parameters),
            REMOVE_REPO_COLLABORATOR => remove_repo_collaborator(parameters),
            CONVERT_TO_OUTSIDE_COLLABORATOR => convert_to_outside_collaborator(parameters),
            OPEN_ISSUE => open_issue(parameters, idempotency_key),
            CAMPAIGN_RESPONSE => campaign_response(parameters, idempotency_key),
            other => Err(invalid(format!(
                "action {other:?} is not one this executor handles ({})",
                ACTIONS.join(", ")
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
            other => return Err(unknown(REMOVE_ORG_MEMBER, other)),
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
                repository = Some(self::repository(name, value)?);
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
            other => return Err(unknown(RESTORE_BRANCH_PROTECTION, other)),
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

fn remove_repo_collaborator(parameters: &Properties) -> Result<Action, PluginError> {
    let (mut repository, mut login) = (None, None);
    for (name, value) in parameters {
        match name.as_str() {
            "repository" => repository = Some(self::repository(name, value)?),
            "login" => login = Some(text(name, value)?),
            other => return Err(unknown(REMOVE_REPO_COLLABORATOR, other)),
        }
    }
    Ok(Action::RemoveRepoCollaborator {
        repository: required(repository, REMOVE_REPO_COLLABORATOR, "repository")?,
        login: required(login, REMOVE_REPO_COLLABORATOR, "login")?,
    })
}

fn convert_to_outside_collaborator(parameters: &Properties) -> Result<Action, PluginError> {
    let (mut organisation, mut login) = (None, None);
    for (name, value) in parameters {
        match name.as_str() {
            "organisation" => organisation = Some(text(name, value)?),
            "login" => login = Some(text(name, value)?),
            other => return Err(unknown(CONVERT_TO_OUTSIDE_COLLABORATOR, other)),
        }
    }
    Ok(Action::ConvertToOutsideCollaborator {
        organisation: required(
            organisation,
            CONVERT_TO_OUTSIDE_COLLABORATOR,
            "organisation",
        )?,
        login: required(login, CONVERT_TO_OUTSIDE_COLLABORATOR, "login")?,
    })
}

fn open_issue(parameters: &Properties, idempotency_key: &str) -> Result<Action, PluginError> {
    let (mut repository, mut title, mut body) = (None, None, None);
    let mut labels = Vec::new();
    for (name, value) in parameters {
        match name.as_str() {
            "repository" => repository = Some(self::repository(name, value)?),
            "title" => title = Some(text(name, value)?),
            // An empty body is allowed: the marker alone is a valid body.
            "body" => match value {
                Value::Text(s) => body = Some(s.clone()),
                other => {
                    return Err(invalid(format!(
                        "parameter {name}: {other:?} is not a text"
                    )));
                }
            },
            "labels" => {
                labels = texts(name, value)?;
                if labels.iter().any(|l| l.trim().is_empty()) {
                    return Err(invalid(format!(
                        "parameter {name}: {labels:?} holds an empty label"
                    )));
                }
            }
            other => return Err(unknown(OPEN_ISSUE, other)),
        }
    }
    Ok(Action::OpenIssue {
        repository: required(repository, OPEN_ISSUE, "repository")?,
        title: required(title, OPEN_ISSUE, "title")?,
        body: required(body, OPEN_ISSUE, "body")?,
        labels,
        marker: marker(idempotency_key)?,
    })
}

fn campaign_response(
    parameters: &Properties,
    idempotency_key: &str,
) -> Result<Action, PluginError> {
    let (mut repository, mut title, mut body, mut branch) = (None, None, None, None);
    let mut reviews = DEFAULT_RESPONSE_REVIEWS;
    for (name, value) in parameters {
        match name.as_str() {
            "repository" => repository = Some(self::repository(name, value)?),
            "title" => title = Some(text(name, value)?),
            "body" => body = Some(text(name, value)?),
            "branch" => branch = Some(text(name, value)?),
            "required_approving_review_count" => match value {
                Value::Integer(n) if (1..=6).contains(n) => reviews = *n,
                other => {
                    return Err(invalid(format!(
                        "parameter {name}: {other:?} is not a count from 1 to 6"
                    )));
                }
            },
            other => return Err(unknown(CAMPAIGN_RESPONSE, other)),
        }
    }
    Ok(Action::CampaignResponse {
        repository: required(repository, CAMPAIGN_RESPONSE, "repository")?,
        title: required(title, CAMPAIGN_RESPONSE, "title")?,
        body: required(body, CAMPAIGN_RESPONSE, "body")?,
        marker: marker(idempotency_key)?,
        branch,
        reviews,
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
            "k",
        );
        assert_eq!(
            ok.ok(),
            Some(Action::RemoveOrgMember {
                org: "acme".into(),
                login: "octocat".into()
            })
        );
        let missing = Action::parse(
            REMOVE_ORG_MEMBER,
            &Props::new().text("org", "acme").build(),
            "k",
        );
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
            let result = Action::parse(RESTORE_BRANCH_PROTECTION, &props.build(), "k");
            assert!(
                matches!(&result, Err(PluginError::InvalidInput(m)) if m.contains(expected)),
                "{result:?}"
            );
        }
        let other = Action::parse("github.delete-repo", &Vec::new(), "k");
        assert!(matches!(other, Err(PluginError::InvalidInput(_))));
    }

    #[test]
    fn the_marker_carries_the_key_as_an_html_comment() {
        let key = "5f0c1a2b3c4d5e6f7a8b9c0d:github.open-issue";
        assert_eq!(marker(key).ok(), Some(format!("<!-- org-mesh:{key} -->")));
        for bad in ["", "a-->b", "a b", "a>b", "x--y", "a\nb"] {
            assert!(
                matches!(marker(bad), Err(PluginError::InvalidInput(m)) if m.contains("idempotency key")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_issue_needs_repository_title_and_body() {
        let base = || {
            Props::new()
                .text("repository", "acme/api")
                .text("title", "Restore protection")
        };
        let ok = Action::parse(OPEN_ISSUE, &base().text("body", "").build(), "k1");
        assert!(
            matches!(&ok, Ok(Action::OpenIssue { body, labels, marker, .. })
                if body.is_empty() && labels.is_empty() && marker == "<!-- org-mesh:k1 -->"),
            "{ok:?}"
        );
        for (props, expected) in [
            (base(), "needs the parameter body"),
            (
                base().text("body", "b").text("labels", "drift"),
                "parameter labels",
            ),
            (
                base().text("body", "b").texts("labels", vec![" ".into()]),
                "empty label",
            ),
            (
                base().text("body", "b").text("assignee", "x"),
                "no parameter assignee",
            ),
            (
                Props::new()
                    .text("repository", "acme/")
                    .text("title", "t")
                    .text("body", "b"),
                "parameter repository",
            ),
            (
                Props::new()
                    .text("repository", "acme/api")
                    .text("body", "b"),
                "needs the parameter title",
            ),
        ] {
            let result = Action::parse(OPEN_ISSUE, &props.build(), "k1");
            assert!(
                matches!(&result, Err(PluginError::InvalidInput(m)) if m.contains(expected)),
                "{expected}: {result:?}"
            );
        }
    }

    #[test]
    fn collaborator_actions_name_what_is_wrong() {
        for (kind, props, expected) in [
            (
                REMOVE_REPO_COLLABORATOR,
                Props::new()
                    .text("repository", "acme/api/x")
                    .text("login", "o"),
                "parameter repository",
            ),
            (
                REMOVE_REPO_COLLABORATOR,
                Props::new()
                    .text("repository", "acme/api")
                    .integer("login", 1),
                "parameter login",
            ),
            (
                REMOVE_REPO_COLLABORATOR,
                Props::new().text("repository", "acme/api"),
                "needs the parameter login",
            ),
            (
                CONVERT_TO_OUTSIDE_COLLABORATOR,
                Props::new().text("org", "acme").text("login", "o"),
                "no parameter org",
            ),
            (
                CONVERT_TO_OUTSIDE_COLLABORATOR,
                Props::new().text("login", "o"),
                "needs the parameter organisation",
            ),
        ] {
            let result = Action::parse(kind, &props.build(), "k");
            assert!(
                matches!(&result, Err(PluginError::InvalidInput(m)) if m.contains(expected)),
                "{kind} {expected}: {result:?}"
            );
        }
    }
}
