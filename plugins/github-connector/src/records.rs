//! Turns GitHub's answers into the twin's nodes and edges.
//!
//! Natural keys carry the provider: `github:<login>` for accounts and
//! organisations, `github:<org>/<slug>` for teams and `github:<full_name>`
//! for repositories.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};

use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{Batch, Coverage, Edge, Node, NodeRef, Properties};

use crate::github::{Invitation, Protection, Repository, Team, User};

pub const PROVIDER: &str = "github";

pub fn org_ref(login: &str) -> NodeRef {
    node_ref("Organisation", format!("{PROVIDER}:{login}"))
}

pub fn account_ref(login: &str) -> NodeRef {
    node_ref("Account", format!("{PROVIDER}:{login}"))
}

pub fn team_ref(org: &str, slug: &str) -> NodeRef {
    node_ref("Group", format!("{PROVIDER}:{org}/{slug}"))
}

pub fn repo_ref(full_name: &str) -> NodeRef {
    node_ref("Repository", format!("{PROVIDER}:{full_name}"))
}

fn node_ref(label: &str, key: String) -> NodeRef {
    NodeRef {
        label: label.to_string(),
        key,
    }
}

/// Organisation settings that bear on access policy, copied when present.
/// Booleans are picked by name so that settings GitHub adds later
/// (`members_can_…`, `…_enabled_for_new_repositories`) arrive without a
/// release of this connector.
fn is_policy_flag(name: &str) -> bool {
    name.starts_with("members_can_")
        || name.ends_with("_enabled_for_new_repositories")
        || matches!(
            name,
            "two_factor_requirement_enabled"
                | "web_commit_signoff_required"
                | "is_verified"
                | "deploy_keys_enabled_for_repositories"
        )
}

const POLICY_TEXTS: [&str; 2] = [
    "default_repository_permission",
    "members_allowed_repository_creation_type",
];

/// The organisation node, from `GET /orgs/O`. Returns its login too, which
/// may differ in case from the configured one.
pub fn organisation(org: &Map<String, Json>) -> Option<(String, Node)> {
    let login = org.get("login")?.as_str()?.to_string();
    let id = org.get("id")?.as_i64()?;
    let mut props = Props::new()
        .text("provider", PROVIDER)
        .text("login", &login)
        .integer("id", id)
        .opt_text("name", org.get("name").and_then(Json::as_str));
    for name in POLICY_TEXTS {
        props = props.opt_text(name, org.get(name).and_then(Json::as_str));
    }
    for (name, value) in org {
        if let (true, Some(flag)) = (is_policy_flag(name), value.as_bool()) {
            props = props.boolean(name, flag);
        }
    }
    let node = Node {
        label: "Organisation".into(),
        key: org_ref(&login).key,
        properties: props.build(),
    };
    Some((login, node))
}

/// Account properties from any of GitHub's user listings. `mfa_enabled` is
/// left out when the two-factor listing could not be read.
pub fn user_properties(user: &User, mfa_enabled: Option<bool>) -> Properties {
    let mut props = Props::new()
        .text("provider", PROVIDER)
        .text("login", &user.login)
        .integer("id", user.id)
        .opt_text("type", user.kind.as_deref());
    if let Some(site_admin) = user.site_admin {
        props = props.boolean("site_admin", site_admin);
    }
    if let Some(mfa) = mfa_enabled {
        props = props.boolean("mfa_enabled", mfa);
    }
    props
        .opt_text("email", user.email.as_deref().filter(|e| !e.is_empty()))
        .build()
}

/// What is known of an account named only by its login, such as the
/// invitee of a pending invitation.
pub fn login_properties(login: &str) -> Properties {
    Props::new()
        .text("provider", PROVIDER)
        .text("login", login)
        .build()
}

/// GitHub's invitation roles in the words org memberships use.
pub fn invitation_role(invitation: &Invitation) -> Option<String> {
    let role = invitation.role.as_deref()?;
    Some(match role {
        "direct_member" => "member".to_string(),
        other => other.to_string(),
    })
}

pub fn team(org: &str, team: &Team) -> Node {
    let props = Props::new()
        .text("provider", PROVIDER)
        .text("name", &team.name)
        .text("slug", &team.slug)
        .integer("id", team.id)
        .opt_text("privacy", team.privacy.as_deref());
    Node {
        label: "Group".into(),
        key: team_ref(org, &team.slug).key,
        properties: props.build(),
    }
}

/// What the connector learnt about a repository's default branch.
#[derive(Debug, Clone)]
pub enum BranchProtection {
    Protected(Protection),
    Unprotected,
    /// The token may not read it, or the branch is missing.
    Unknown,
}

pub fn repository(repo: &Repository, protection: &BranchProtection) -> Node {
    let mut props = Props::new()
        .text("provider", PROVIDER)
        .text("name", &repo.name)
        .text("full_name", &repo.full_name)
        .integer("id", repo.id)
        .opt_text("visibility", repo.visibility.as_deref())
        .opt_text("default_branch", repo.default_branch.as_deref());
    if let Some(private) = repo.private {
        props = props.boolean("private", private);
    }
    if let Some(archived) = repo.archived {
        props = props.boolean("archived", archived);
    }
    match protection {
        BranchProtection::Protected(p) => {
            props = props.boolean("default_branch_protected", true);
            let mut properties = props.build();
            properties.extend(protection_properties(p));
            return repo_node(repo, properties);
        }
        BranchProtection::Unprotected => {
            props = props.boolean("default_branch_protected", false);
        }
        BranchProtection::Unknown => {}
    }
    repo_node(repo, props.build())
}

fn repo_node(repo: &Repository, properties: Properties) -> Node {
    Node {
        label: "Repository".into(),
        key: repo_ref(&repo.full_name).key,
        properties,
    }
}

/// Every property [`protection_properties`] may set, so that a deleted rule
/// can clear them all.
pub const PROTECTION_PROPERTIES: [&str; 10] = [
    "protection_enforce_admins",
    "protection_required_approving_review_count",
    "protection_dismiss_stale_reviews",
    "protection_require_code_owner_reviews",
    "protection_required_status_checks_strict",
    "protection_allow_force_pushes",
    "protection_allow_deletions",
    "protection_required_linear_history",
    "protection_required_signatures",
    "protection_required_conversation_resolution",
];

/// The protection document flattened into `protection_*` properties.
///
/// A rule object GitHub leaves out is a rule that is switched off, so the
/// review and status-check settings read as off (0 approvals, no stale
/// dismissal, not strict) rather than unknown. A field missing inside a rule
/// that is on, or a whole `{enabled}` rule an older GitHub Enterprise Server
/// does not know, stays absent: unknown is not a violation.
pub fn protection_properties(p: &Protection) -> Properties {
    let mut props = Props::new();
    let flag = |props: Props, name: &str, value: Option<bool>| match value {
        Some(v) => props.boolean(&format!("protection_{name}"), v),
        None => props,
    };
    let toggle = |t: &Option<crate::github::Toggle>| t.as_ref().and_then(|t| t.enabled);
    props = flag(props, "enforce_admins", toggle(&p.enforce_admins));
    match &p.required_pull_request_reviews {
        Some(r) => {
            if let Some(count) = r.required_approving_review_count {
                props = props.integer("protection_required_approving_review_count", count);
            }
            props = flag(props, "dismiss_stale_reviews", r.dismiss_stale_reviews);
            props = flag(
                props,
                "require_code_owner_reviews",
                r.require_code_owner_reviews,
            );
        }
        None => {
            props = props.integer("protection_required_approving_review_count", 0);
            props = flag(props, "dismiss_stale_reviews", Some(false));
            props = flag(props, "require_code_owner_reviews", Some(false));
        }
    }
    let strict = match &p.required_status_checks {
        Some(checks) => checks.strict,
        None => Some(false),
    };
    props = flag(props, "required_status_checks_strict", strict);
    props = flag(props, "allow_force_pushes", toggle(&p.allow_force_pushes));
    props = flag(props, "allow_deletions", toggle(&p.allow_deletions));
    props = flag(
        props,
        "required_linear_history",
        toggle(&p.required_linear_history),
    );
    props = flag(props, "required_signatures", toggle(&p.required_signatures));
    props = flag(
        props,
        "required_conversation_resolution",
        toggle(&p.required_conversation_resolution),
    );
    props.build()
}

/// A repository permission in the role words collaborators are listed
/// with: GitHub's older names `pull` and `push` (team permissions, some
/// webhooks) become `read` and `write`; other names are kept.
pub fn permission_role(permission: &str) -> String {
    match permission {
        "pull" => "read".to_string(),
        "push" => "write".to_string(),
        other => other.to_string(),
    }
}

pub fn edge(kind: &str, from: NodeRef, to: NodeRef, properties: Properties) -> Edge {
    Edge {
        kind: kind.to_string(),
        from,
        to,
        properties,
    }
}

/// A batch under construction. An account met in several listings (member,
/// team member, collaborator) becomes one node whose properties are the
/// union of what each listing said, first listing first.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    nodes: Vec<Node>,
    accounts: BTreeMap<String, usize>,
    edges: Vec<Edge>,
    edge_ends: BTreeSet<(String, String, String)>,
    complete: Vec<Coverage>,
}

impl BatchBuilder {
    pub fn node(&mut self, node: Node) {
        self.nodes.push(node);
    }

    pub fn account(&mut self, login: &str, properties: Properties) -> NodeRef {
        let reference = account_ref(login);
        match self.accounts.get(&reference.key) {
            Some(&index) => {
                let known = &mut self.nodes[index].properties;
                for (name, value) in properties {
                    if !known.iter().any(|(k, _)| *k == name) {
                        known.push((name, value));
                    }
                }
            }
            None => {
                self.accounts
                    .insert(reference.key.clone(), self.nodes.len());
                self.nodes.push(Node {
                    label: reference.label.clone(),
                    key: reference.key.clone(),
                    properties,
                });
            }
        }
        reference
    }

    /// Adds an edge unless one of its kind already joins the same two
    /// nodes; a listing that shifts while paged can name someone twice.
    pub fn edge(&mut self, edge: Edge) {
        let ends = (
            edge.kind.clone(),
            format!("{}/{}", edge.from.label, edge.from.key),
            format!("{}/{}", edge.to.label, edge.to.key),
        );
        if self.edge_ends.insert(ends) {
            self.edges.push(edge);
        }
    }

    pub fn complete(&mut self, coverage: Coverage) {
        self.complete.push(coverage);
    }

    pub fn build(self) -> Batch {
        Batch {
            nodes: self.nodes,
            edges: self.edges,
            complete: self.complete,
            partial: false,
        }
    }

    /// The batch as a webhook reports it: only what changed, merged into
    /// what is stored.
    pub fn build_partial(self) -> Batch {
        Batch {
            partial: true,
            ..self.build()
        }
    }
}

/// A property list with just a role, and a state when given.
pub fn role_state(role: Option<&str>, state: Option<&str>) -> Properties {
    Props::new()
        .opt_text("role", role)
        .opt_text("state", state)
        .build()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::github::Collaborator;

    fn flattened(document: &serde_json::Value) -> Result<serde_json::Value, String> {
        let protection: Protection =
            serde_json::from_value(document.clone()).map_err(|e| e.to_string())?;
        let props = protection_properties(&protection);
        let mut out = Map::new();
        for (name, value) in props {
            let value = match value {
                org_mesh_plugin::types::Value::Boolean(b) => json!(b),
                org_mesh_plugin::types::Value::Integer(i) => json!(i),
                other => json!(format!("{other:?}")),
            };
            out.insert(name, value);
        }
        Ok(serde_json::Value::Object(out))
    }

    fn recorded_put_response(index: usize) -> Result<serde_json::Value, String> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/octokit-fixtures/branch-protection.json"
        );
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let all: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        Ok(all[index]["response"].clone())
    }

    #[test]
    fn rules_github_leaves_out_read_as_switched_off() -> Result<(), String> {
        // The answer to the recorded PUT that turned reviews, status checks
        // and restrictions off: GitHub omits those three objects.
        let minimal = flattened(&recorded_put_response(1)?)?;
        assert_eq!(
            minimal,
            json!({
                "protection_enforce_admins": false,
                "protection_required_approving_review_count": 0,
                "protection_dismiss_stale_reviews": false,
                "protection_require_code_owner_reviews": false,
                "protection_required_status_checks_strict": false,
                "protection_allow_force_pushes": false,
                "protection_allow_deletions": false,
                "protection_required_linear_history": false,
                "protection_required_signatures": false,
                "protection_required_conversation_resolution": false,
            })
        );
        Ok(())
    }

    #[test]
    fn rules_that_are_on_keep_their_settings() -> Result<(), String> {
        let maximal = flattened(&recorded_put_response(2)?)?;
        assert_eq!(maximal["protection_enforce_admins"], true);
        assert_eq!(maximal["protection_required_status_checks_strict"], true);
        assert_eq!(maximal["protection_dismiss_stale_reviews"], true);
        assert_eq!(maximal["protection_require_code_owner_reviews"], false);
        assert_eq!(maximal["protection_required_approving_review_count"], 1);
        Ok(())
    }

    #[test]
    fn every_property_a_full_document_sets_is_listed() -> Result<(), String> {
        let on = json!({"enabled": true});
        let full = flattened(&json!({
            "required_pull_request_reviews": {
                "required_approving_review_count": 2,
                "dismiss_stale_reviews": true,
                "require_code_owner_reviews": true,
            },
            "required_status_checks": {"strict": true},
            "enforce_admins": on, "allow_force_pushes": on, "allow_deletions": on,
            "required_linear_history": on, "required_signatures": on,
            "required_conversation_resolution": on,
        }))?;
        let mut names: Vec<&str> = full
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        names.sort_unstable();
        let mut listed = PROTECTION_PROPERTIES.to_vec();
        listed.sort_unstable();
        assert_eq!(names, listed);
        Ok(())
    }

    #[test]
    fn a_field_missing_inside_a_rule_that_is_on_stays_unknown() -> Result<(), String> {
        let partial = flattened(&json!({
            "required_pull_request_reviews": {"dismiss_stale_reviews": true},
            "required_status_checks": {"contexts": []},
        }))?;
        assert!(
            partial
                .get("protection_required_approving_review_count")
                .is_none()
        );
        assert!(
            partial
                .get("protection_required_status_checks_strict")
                .is_none()
        );
        assert!(partial.get("protection_enforce_admins").is_none());
        assert_eq!(partial["protection_dismiss_stale_reviews"], true);
        Ok(())
    }

    #[test]
    fn collaborator_role_prefers_the_named_role_then_the_strongest_flag() -> Result<(), String> {
        let parse = |v: serde_json::Value| -> Result<Option<String>, String> {
            let c: Collaborator = serde_json::from_value(v).map_err(|e| e.to_string())?;
            Ok(c.role())
        };
        let user = |extra: serde_json::Value| {
            let mut base = json!({"login": "a", "id": 1});
            if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
                base.extend(extra.clone());
            }
            base
        };
        assert_eq!(
            parse(user(
                json!({"role_name": "security-manager", "permissions": {"admin": true}})
            ))?,
            Some("security-manager".into())
        );
        let all =
            json!({"admin": true, "maintain": true, "push": true, "triage": true, "pull": true});
        assert_eq!(
            parse(user(json!({"permissions": all})))?,
            Some("admin".into())
        );
        let maintain = json!({"admin": false, "maintain": true, "push": true, "pull": true});
        assert_eq!(
            parse(user(json!({"permissions": maintain})))?,
            Some("maintain".into())
        );
        let push = json!({"admin": false, "push": true, "pull": true});
        assert_eq!(
            parse(user(json!({"permissions": push})))?,
            Some("write".into())
        );
        let triage = json!({"triage": true, "pull": true});
        assert_eq!(
            parse(user(json!({"permissions": triage})))?,
            Some("triage".into())
        );
        let pull = json!({"pull": true});
        assert_eq!(
            parse(user(json!({"permissions": pull})))?,
            Some("read".into())
        );
        assert_eq!(parse(user(json!({})))?, None);
        Ok(())
    }

    #[test]
    fn invitation_roles_use_membership_words() {
        let role = |r: Option<&str>| {
            invitation_role(&Invitation {
                login: Some("x".into()),
                role: r.map(str::to_string),
            })
        };
        assert_eq!(role(Some("direct_member")), Some("member".into()));
        assert_eq!(role(Some("admin")), Some("admin".into()));
        assert_eq!(
            role(Some("billing_manager")),
            Some("billing_manager".into())
        );
        assert_eq!(role(None), None);
    }
}
