//! People the identity provider has offboarded who still hold code-host
//! access.
//!
//! A person is offboarded when every identity-provider account linked to
//! them is deactivated (`active` false) or no longer reported at all. Links
//! are followed whether or not they are still observed: identity resolution
//! drops the links of an account that vanished from the identity provider,
//! and that vanishing is exactly the offboarding to catch.

use std::collections::BTreeMap;

use org_mesh_plugin::detector::{Evidence, Finding, Remedy};
use org_mesh_plugin::graph::{Direction, Neighbour};
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{PluginError, Provenance, StoredNode};

use super::{
    ACTION_REMOVE_ORG_MEMBER, OFFBOARDED_HAS_ACCESS, OFFBOARDED_HAS_ADMIN, is_admin_role,
    memberships, name_of, owners, permissions, role,
};
use crate::finding::{Draft, evidence};
use crate::graph::{self, CODE_HOST_PROVIDERS, Graph, IDP_PROVIDERS, boolean, observed};

/// What makes the person offboarded, for evidence and attributes.
struct Offboarding<'a> {
    person: &'a StoredNode,
    idp_accounts: Vec<String>,
    evidence: Vec<Evidence>,
    /// The weakest of the identity-provider links.
    confidence: f64,
}

fn confidence(link: &Neighbour) -> f64 {
    graph::number(&link.edge.edge.properties, "confidence")
        .unwrap_or(1.0)
        .clamp(0.0, 1.0)
}

pub fn offboarded<G: Graph>(graph: &G, person: &StoredNode) -> Result<Vec<Finding>, PluginError> {
    let links = graph.neighbours(
        &graph::reference(person),
        "IDENTITY_OF",
        Direction::Incoming,
    )?;
    let Some(offboarding) = offboarding(person, &links) else {
        return Ok(Vec::new());
    };
    let mut findings = Vec::new();
    for link in links
        .iter()
        .filter(|l| graph::is_account_of(&l.node, &CODE_HOST_PROVIDERS))
    {
        if !observed(&link.edge.provenance) && linked_elsewhere(graph, &link.node, person)? {
            continue;
        }
        findings.extend(account_access(graph, &offboarding, link)?);
    }
    Ok(findings)
}

/// The offboarding, if every identity-provider account says so; none when
/// the person has no such account or one is still active (or silent).
fn offboarding<'a>(person: &'a StoredNode, links: &[Neighbour]) -> Option<Offboarding<'a>> {
    let idp: Vec<&Neighbour> = links
        .iter()
        .filter(|l| graph::is_account_of(&l.node, &IDP_PROVIDERS))
        .collect();
    if idp.is_empty() {
        return None;
    }
    let mut out = Offboarding {
        person,
        idp_accounts: Vec::new(),
        evidence: Vec::new(),
        confidence: 1.0,
    };
    let person_name = name_of(person);
    for link in idp {
        let account = &link.node;
        let provider = graph::provider(account);
        let name = graph::text(&account.node.properties, "user_name").unwrap_or(&account.node.key);
        let statement = if !observed(&account.provenance) {
            format!("{name} is no longer reported by {provider}")
        } else if boolean(&account.node.properties, "active") == Some(false) {
            format!("{name} is deactivated in {provider}")
        } else {
            return None;
        };
        let subject = graph::reference(account);
        out.evidence
            .push(evidence(statement, subject.clone(), &account.provenance));
        out.evidence.push(evidence(
            format!("{name} is {person_name}'s {provider} account"),
            subject,
            &link.edge.provenance,
        ));
        out.idp_accounts.push(account.node.key.clone());
        out.confidence = out.confidence.min(confidence(link));
    }
    Some(out)
}

/// Whether a lapsed link is stale because the account now belongs to
/// someone else.
fn linked_elsewhere<G: Graph>(
    graph: &G,
    account: &StoredNode,
    person: &StoredNode,
) -> Result<bool, PluginError> {
    let links = graph.neighbours(
        &graph::reference(account),
        "IDENTITY_OF",
        Direction::Outgoing,
    )?;
    Ok(links
        .iter()
        .any(|l| observed(&l.edge.provenance) && l.node.node.key != person.node.key))
}

/// One finding per organisation the account belongs to, and one per
/// repository it reaches from outside those organisations. Admin rights on
/// a repository of an organisation the account belongs to make that
/// organisation's finding the admin variant rather than a finding of their
/// own, since removal from the organisation ends both.
fn account_access<G: Graph>(
    graph: &G,
    offboarding: &Offboarding<'_>,
    link: &Neighbour,
) -> Result<Vec<Finding>, PluginError> {
    let account = &link.node;
    let orgs = memberships(graph, account)?;
    // Each admin permission inside an organisation, with the ownership
    // that puts it inside.
    let mut admin_repos: BTreeMap<String, Vec<(Neighbour, Provenance)>> = BTreeMap::new();
    let mut outside = Vec::new();
    for permission in permissions(graph, account)? {
        let owned_by = owners(graph, &permission.node)?;
        let inside = owned_by
            .iter()
            .find(|o| orgs.iter().any(|m| m.node.node.key == o.node.node.key));
        match inside {
            Some(org) if role(&permission) == Some("admin") => admin_repos
                .entry(org.node.node.key.clone())
                .or_default()
                .push((permission, org.edge.provenance.clone())),
            Some(_) => {}
            None => outside.push(permission),
        }
    }
    let score = confidence(link) * offboarding.confidence;
    let mut findings = Vec::new();
    for membership in &orgs {
        let repos = admin_repos
            .get(&membership.node.node.key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        findings.push(org_finding(offboarding, link, membership, repos, score));
    }
    for permission in &outside {
        findings.push(repo_finding(offboarding, link, permission, score));
    }
    Ok(findings)
}

fn base_draft(
    offboarding: &Offboarding<'_>,
    link: &Neighbour,
    admin: bool,
    key: &str,
    title: String,
    score: f64,
) -> Draft {
    let rule = if admin {
        OFFBOARDED_HAS_ADMIN
    } else {
        OFFBOARDED_HAS_ACCESS
    };
    let account = &link.node;
    let mut draft = Draft::new(rule, graph::reference(account), key, title);
    draft.score = score;
    draft.evidence = offboarding.evidence.clone();
    let person_name = name_of(offboarding.person);
    let how = graph::text(&link.edge.edge.properties, "evidence").unwrap_or("a link");
    draft.evidence.push(evidence(
        format!(
            "{} belongs to {person_name} by {how} (confidence {:.2})",
            graph::login(account),
            confidence(link)
        ),
        graph::reference(account),
        &link.edge.provenance,
    ));
    draft
}

fn attributes(
    offboarding: &Offboarding<'_>,
    link: &Neighbour,
    role: Option<&str>,
    score: f64,
) -> Props {
    let account = &link.node;
    let mut props = Props::new()
        .opt_text("role", role)
        .text("person", &offboarding.person.node.key)
        .text("provider", graph::provider(account))
        .text("login", graph::login(account))
        .value("confidence", org_mesh_plugin::types::Value::Float(score));
    if let Some(first) = offboarding.idp_accounts.first() {
        props = props.text("idp_account", first);
    }
    if offboarding.idp_accounts.len() > 1 {
        props = props.texts("idp_accounts", offboarding.idp_accounts.clone());
    }
    props
}

fn org_finding(
    offboarding: &Offboarding<'_>,
    link: &Neighbour,
    membership: &Neighbour,
    admin_repos: &[(Neighbour, Provenance)],
    score: f64,
) -> Finding {
    let account = &link.node;
    let org = &membership.node;
    let login = graph::login(account);
    let org_login = graph::login(org);
    let org_role = role(membership);
    let admin = is_admin_role(org_role) || !admin_repos.is_empty();
    let pending = graph::text(&membership.edge.edge.properties, "state") == Some("pending");
    let person = name_of(offboarding.person);
    let title = match (pending, admin) {
        (true, _) => {
            format!("{login} has a pending invitation to {org_login} after {person} was offboarded")
        }
        (false, true) => {
            format!("{login} still has admin rights in {org_login} after {person} was offboarded")
        }
        (false, false) => {
            format!("{login} is still a member of {org_login} after {person} was offboarded")
        }
    };
    let mut draft = base_draft(offboarding, link, admin, &org.node.key, title, score);
    let state = graph::text(&membership.edge.edge.properties, "state").unwrap_or("active");
    let statement = match org_role {
        Some(r) => format!("{login} is an {state} member of {org_login} with role {r}"),
        None => format!("{login} is an {state} member of {org_login}"),
    };
    draft.evidence.push(evidence(
        statement,
        graph::reference(account),
        &membership.edge.provenance,
    ));
    let mut props = attributes(offboarding, link, org_role, score)
        .text("organisation", org_login)
        .text("state", state);
    if !admin_repos.is_empty() {
        let names: Vec<String> = admin_repos.iter().map(|(r, _)| name_of(&r.node)).collect();
        for ((repo, owned), name) in admin_repos.iter().zip(&names) {
            draft.evidence.push(evidence(
                format!("{login} has admin permission on {name}"),
                graph::reference(account),
                &repo.edge.provenance,
            ));
            draft.evidence.push(evidence(
                format!("{org_login} owns {name}"),
                graph::reference(&repo.node),
                owned,
            ));
        }
        props = props.texts("admin_repositories", names);
    }
    draft.attributes = props.build();
    if graph::provider(account) == "github" {
        draft.remedy = Some(Remedy {
            action: ACTION_REMOVE_ORG_MEMBER.into(),
            target: graph::reference(account),
            parameters: Props::new()
                .text("org", org_login)
                .text("login", login)
                .build(),
        });
    }
    draft.build()
}

/// Access that does not come with membership of the owning organisation;
/// removal from an organisation would not end it, and no executor removes
/// a collaborator yet, so the finding carries no remedy.
fn repo_finding(
    offboarding: &Offboarding<'_>,
    link: &Neighbour,
    permission: &Neighbour,
    score: f64,
) -> Finding {
    let account = &link.node;
    let repo = &permission.node;
    let login = graph::login(account);
    let repo_name = name_of(repo);
    let repo_role = role(permission);
    let admin = repo_role == Some("admin");
    let person = name_of(offboarding.person);
    let title = if admin {
        format!("{login} still has admin rights on {repo_name} after {person} was offboarded")
    } else {
        format!("{login} still has access to {repo_name} after {person} was offboarded")
    };
    let mut draft = base_draft(offboarding, link, admin, &repo.node.key, title, score);
    let statement = match repo_role {
        Some(r) => format!("{login} has {r} permission on {repo_name}"),
        None => format!("{login} has a permission on {repo_name}"),
    };
    draft.evidence.push(evidence(
        statement,
        graph::reference(account),
        &permission.edge.provenance,
    ));
    draft.evidence.push(evidence(
        format!("{repo_name} belongs to no organisation {login} is a member of"),
        graph::reference(repo),
        &repo.provenance,
    ));
    draft.attributes = attributes(offboarding, link, repo_role, score)
        .text("repository", repo_name)
        .build();
    draft.build()
}
