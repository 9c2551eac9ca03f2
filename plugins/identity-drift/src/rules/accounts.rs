//! Rules about a single account: unlinked members, members without
//! two-factor authentication, and admins from outside the organisation.

use org_mesh_plugin::detector::Finding;
use org_mesh_plugin::graph::Direction;
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{PluginError, StoredNode};

use super::{
    ACCOUNT_UNLINKED, ACCOUNT_WITHOUT_MFA, OUTSIDE_COLLABORATOR_ADMIN, memberships, name_of,
    owners, permissions, role,
};
use crate::finding::{Draft, evidence};
use crate::graph::{self, Graph, boolean, is_active_membership, observed};

fn membership_statement(login: &str, org: &StoredNode, edge_role: Option<&str>) -> String {
    match edge_role {
        Some(r) => format!("{login} is a member of {} with role {r}", name_of(org)),
        None => format!("{login} is a member of {}", name_of(org)),
    }
}

/// A code-host account in an organisation that identity resolution could
/// tie to no person: nobody can tell whose access it is.
pub fn unlinked<G: Graph>(graph: &G, account: &StoredNode) -> Result<Vec<Finding>, PluginError> {
    if !observed(&account.provenance) {
        return Ok(Vec::new());
    }
    let active: Vec<_> = memberships(graph, account)?
        .into_iter()
        .filter(|m| is_active_membership(&m.edge.edge.properties))
        .collect();
    if active.is_empty() {
        return Ok(Vec::new());
    }
    let links = graph.neighbours(
        &graph::reference(account),
        "IDENTITY_OF",
        Direction::Outgoing,
    )?;
    if links.iter().any(|l| observed(&l.edge.provenance)) {
        return Ok(Vec::new());
    }
    let login = graph::login(account);
    let subject = graph::reference(account);
    let orgs: Vec<String> = active
        .iter()
        .map(|m| graph::login(&m.node).to_string())
        .collect();
    let mut draft = Draft::new(
        ACCOUNT_UNLINKED,
        subject.clone(),
        "",
        format!(
            "{login} is a member of {} but is linked to no person",
            orgs.join(", ")
        ),
    );
    draft.attributes = Props::new()
        .text("provider", graph::provider(account))
        .text("login", login)
        .texts("organisations", orgs)
        .build();
    draft.evidence.push(evidence(
        format!("{login} has no identity link to a person"),
        subject.clone(),
        &account.provenance,
    ));
    for m in &active {
        draft.evidence.push(evidence(
            membership_statement(login, &m.node, role(m)),
            subject.clone(),
            &m.edge.provenance,
        ));
    }
    Ok(vec![draft.build()])
}

pub fn without_mfa<G: Graph>(graph: &G, account: &StoredNode) -> Result<Vec<Finding>, PluginError> {
    if boolean(&account.node.properties, "mfa_enabled") != Some(false) {
        return Ok(Vec::new());
    }
    let active: Vec<_> = memberships(graph, account)?
        .into_iter()
        .filter(|m| is_active_membership(&m.edge.edge.properties))
        .collect();
    if active.is_empty() {
        return Ok(Vec::new());
    }
    let login = graph::login(account);
    let subject = graph::reference(account);
    let orgs: Vec<String> = active
        .iter()
        .map(|m| graph::login(&m.node).to_string())
        .collect();
    let mut draft = Draft::new(
        ACCOUNT_WITHOUT_MFA,
        subject.clone(),
        "",
        format!(
            "{login} is a member of {} without two-factor authentication",
            orgs.join(", ")
        ),
    );
    let admin = active.iter().any(|m| super::is_admin_role(role(m)));
    draft.attributes = Props::new()
        .text("provider", graph::provider(account))
        .text("login", login)
        .texts("organisations", orgs)
        .boolean("org_admin", admin)
        .text("role", if admin { "admin" } else { "member" })
        .build();
    draft.evidence.push(evidence(
        format!("{login} has two-factor authentication switched off"),
        subject.clone(),
        &account.provenance,
    ));
    for m in &active {
        draft.evidence.push(evidence(
            membership_statement(login, &m.node, role(m)),
            subject.clone(),
            &m.edge.provenance,
        ));
    }
    Ok(vec![draft.build()])
}

/// Admin rights on a repository of an organisation the account is not an
/// active member of: such access survives removal from the organisation.
pub fn outside_collaborator_admin<G: Graph>(
    graph: &G,
    account: &StoredNode,
) -> Result<Vec<Finding>, PluginError> {
    let admin_on: Vec<_> = permissions(graph, account)?
        .into_iter()
        .filter(|p| role(p) == Some("admin"))
        .collect();
    if admin_on.is_empty() {
        return Ok(Vec::new());
    }
    let member_of: Vec<String> = memberships(graph, account)?
        .into_iter()
        .filter(|m| is_active_membership(&m.edge.edge.properties))
        .map(|m| m.node.node.key)
        .collect();
    let login = graph::login(account);
    let subject = graph::reference(account);
    let mut findings = Vec::new();
    for permission in admin_on {
        let repo = &permission.node;
        let owners = owners(graph, repo)?;
        // A repository without a known owning organisation (a personal one)
        // has no inside to be outside of.
        let Some(owner) = owners.first() else {
            continue;
        };
        if owners.iter().any(|o| member_of.contains(&o.node.node.key)) {
            continue;
        }
        let repo_name = name_of(repo);
        let org_name = graph::login(&owner.node);
        let mut draft = Draft::new(
            OUTSIDE_COLLABORATOR_ADMIN,
            subject.clone(),
            &repo.node.key,
            format!("{login} is an admin of {repo_name} without being a member of {org_name}"),
        );
        draft.attributes = Props::new()
            .text("role", "admin")
            .text("login", login)
            .text("repository", &repo_name)
            .text("organisation", org_name)
            .build();
        draft.evidence.push(evidence(
            format!("{login} has admin permission on {repo_name}"),
            subject.clone(),
            &permission.edge.provenance,
        ));
        draft.evidence.push(evidence(
            format!("{org_name} owns {repo_name}, and {login} is not an active member of it"),
            graph::reference(repo),
            &owner.edge.provenance,
        ));
        findings.push(draft.build());
    }
    Ok(findings)
}
