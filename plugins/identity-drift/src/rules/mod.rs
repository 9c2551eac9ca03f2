//! The rules, their ids and default severities, and which rules look at
//! which kind of node.

mod accounts;
mod organisations;
mod people;
mod repositories;

use org_mesh_plugin::detector::Finding;
use org_mesh_plugin::graph::{Direction, Neighbour};
use org_mesh_plugin::types::{PluginError, StoredNode};

use crate::config::Config;
use crate::graph::{self, CODE_HOST_PROVIDERS, Graph};

pub const OFFBOARDED_HAS_ACCESS: &str = "idp-offboarded-has-access";
pub const OFFBOARDED_HAS_ADMIN: &str = "idp-offboarded-has-admin";
pub const ACCOUNT_UNLINKED: &str = "account-unlinked";
pub const ACCOUNT_WITHOUT_MFA: &str = "account-without-mfa";
pub const OUTSIDE_COLLABORATOR_ADMIN: &str = "outside-collaborator-admin";
pub const DEFAULT_BRANCH_UNPROTECTED: &str = "default-branch-unprotected";
pub const BELOW_BASELINE: &str = "branch-protection-below-baseline";
pub const ORG_2FA_NOT_REQUIRED: &str = "org-2fa-not-required";

/// Every rule: id, title, default severity.
pub const RULES: [(&str, &str, &str); 8] = [
    (
        OFFBOARDED_HAS_ACCESS,
        "Person offboarded in the identity provider still has code-host access",
        "high",
    ),
    (
        OFFBOARDED_HAS_ADMIN,
        "Person offboarded in the identity provider still has code-host admin rights",
        "critical",
    ),
    (
        ACCOUNT_UNLINKED,
        "Organisation member linked to no person",
        "medium",
    ),
    (
        ACCOUNT_WITHOUT_MFA,
        "Organisation member without two-factor authentication",
        "medium",
    ),
    (
        OUTSIDE_COLLABORATOR_ADMIN,
        "Outside collaborator with admin rights on a repository",
        "high",
    ),
    (
        DEFAULT_BRANCH_UNPROTECTED,
        "Default branch without branch protection",
        "high",
    ),
    (
        BELOW_BASELINE,
        "Default branch protection weaker than the baseline",
        "medium",
    ),
    (
        ORG_2FA_NOT_REQUIRED,
        "Organisation does not require two-factor authentication",
        "medium",
    ),
];

pub const ACTION_REMOVE_ORG_MEMBER: &str = "github.remove-org-member";
pub const ACTION_RESTORE_PROTECTION: &str = "github.restore-branch-protection";

/// Runs every rule that applies to a node of this label.
pub fn evaluate<G: Graph>(
    graph: &G,
    node: &StoredNode,
    config: &Config,
) -> Result<Vec<Finding>, PluginError> {
    match node.node.label.as_str() {
        "Person" => people::offboarded(graph, node),
        "Account" if graph::is_account_of(node, &CODE_HOST_PROVIDERS) => {
            let mut findings = accounts::unlinked(graph, node)?;
            findings.extend(accounts::without_mfa(graph, node)?);
            findings.extend(accounts::outside_collaborator_admin(graph, node)?);
            Ok(findings)
        }
        "Account" => accounts::without_mfa(graph, node),
        "Repository" => Ok(repositories::evaluate(node, &config.baseline)),
        "Organisation" => Ok(organisations::two_factor_not_required(node)),
        _ => Ok(Vec::new()),
    }
}

/// A node's name for people: its display name, login or name, else its key.
pub fn name_of(node: &StoredNode) -> String {
    let props = &node.node.properties;
    ["display_name", "full_name", "login", "name", "email"]
        .into_iter()
        .find_map(|p| graph::text(props, p))
        .unwrap_or(&node.node.key)
        .to_string()
}

/// The organisations the account belongs to or is invited to, by observed
/// edges.
pub fn memberships<G: Graph>(
    graph: &G,
    account: &StoredNode,
) -> Result<Vec<Neighbour>, PluginError> {
    let edges = graph.neighbours(&graph::reference(account), "MEMBER_OF", Direction::Outgoing)?;
    Ok(edges
        .into_iter()
        .filter(|n| {
            n.node.node.label == "Organisation"
                && graph::observed(&n.edge.provenance)
                && graph::is_live_membership(&n.edge.edge.properties)
        })
        .collect())
}

/// The repositories the account has a permission on, by observed edges.
pub fn permissions<G: Graph>(
    graph: &G,
    account: &StoredNode,
) -> Result<Vec<Neighbour>, PluginError> {
    let edges = graph.neighbours(
        &graph::reference(account),
        "HAS_PERMISSION",
        Direction::Outgoing,
    )?;
    Ok(edges
        .into_iter()
        .filter(|n| n.node.node.label == "Repository" && graph::observed(&n.edge.provenance))
        .collect())
}

/// The organisations that own the repository, by observed edges.
pub fn owners<G: Graph>(graph: &G, repo: &StoredNode) -> Result<Vec<Neighbour>, PluginError> {
    let edges = graph.neighbours(&graph::reference(repo), "OWNS", Direction::Incoming)?;
    Ok(edges
        .into_iter()
        .filter(|n| n.node.node.label == "Organisation" && graph::observed(&n.edge.provenance))
        .collect())
}

pub fn role(neighbour: &Neighbour) -> Option<&str> {
    graph::text(&neighbour.edge.edge.properties, "role")
}

pub fn is_admin_role(role: Option<&str>) -> bool {
    matches!(role, Some("admin") | Some("owner"))
}
