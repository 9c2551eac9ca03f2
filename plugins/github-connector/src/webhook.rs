//! GitHub webhook deliveries turned into partial batches.
//!
//! The host has already checked the delivery's signature. Each mapped event
//! yields the records it names, with only the properties the payload
//! carries; a removal is reported by covering the one node or edge and
//! leaving it out. Events and actions the twin has no use for are answered
//! 202 with an empty batch, since GitHub retries and flags a hook that
//! fails; a malformed body of a mapped event is refused, naming the field.

use serde_json::json;

use org_mesh_plugin::connector::IncomingRequest;
use org_mesh_plugin::log::Level;
use org_mesh_plugin::rest::header;
use org_mesh_plugin::types::{Batch, Coverage, NodeRef, PluginError, Value};

use crate::config::Config;
use crate::github::{Invitation, Membership, ProtectionRule, Repository, Team, User};
use crate::messages;
use crate::payload::Payload;
use crate::records::{self, BatchBuilder, BranchProtection};
use crate::scan::Note;

/// What one delivery gives: the answer for GitHub, the records and the log
/// lines the plugin glue writes.
#[derive(Debug)]
pub struct Handled {
    pub status: u16,
    pub body: String,
    pub batch: Batch,
    pub notes: Vec<Note>,
}

/// The events this version maps; every other one is acknowledged and
/// dropped.
pub const EVENTS: [&str; 12] = [
    "organization",
    "membership",
    "member",
    "team",
    "repository",
    "branch_protection_rule",
    "issues",
    "issue_comment",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "push",
];

enum Mapping {
    Records(BatchBuilder),
    Ignored(&'static str),
}

pub fn handle(req: &IncomingRequest) -> Result<Handled, PluginError> {
    let config = Config::parse(&req.config)?;
    let event = header(&req.headers, "x-github-event")
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| {
            PluginError::InvalidInput(
                "x-github-event: the header is missing or empty; is this a GitHub webhook delivery?"
                    .into(),
            )
        })?;
    if !EVENTS.contains(&event) {
        return Ok(ignored(event, "an event this connector does not map"));
    }
    let payload = Payload::parse(event, &req.body)?;
    // One secret may serve several organisations' hooks, or an app
    // installed in several; what another organisation does is not this
    // twin's to record. GitHub compares logins without case.
    if let Some(other) = payload
        .opt_text("organization.login")
        .filter(|login| !login.eq_ignore_ascii_case(&config.org))
    {
        return Ok(foreign(payload.what(), other, &config.org));
    }
    let mapping = match event {
        "organization" => organization(&payload)?,
        "membership" => team_membership(&payload)?,
        "member" => collaborator(&payload)?,
        "team" => team(&payload)?,
        "repository" => repository(&payload)?,
        "branch_protection_rule" => branch_protection_rule(&payload)?,
        _ => activity(event, &payload, config.messages)?,
    };
    Ok(match mapping {
        Mapping::Records(out) => recorded(payload.what(), out.build_partial()),
        Mapping::Ignored(reason) => ignored(payload.what(), reason),
    })
}

fn recorded(what: &str, batch: Batch) -> Handled {
    let fields = vec![
        ("event".to_string(), what.to_string()),
        ("nodes".to_string(), batch.nodes.len().to_string()),
        ("edges".to_string(), batch.edges.len().to_string()),
        ("covered".to_string(), batch.complete.len().to_string()),
    ];
    Handled {
        status: 202,
        body: json!({"event": what, "recorded": true}).to_string(),
        batch,
        notes: vec![Note {
            level: Level::Debug,
            message: "Mapped a webhook delivery".into(),
            fields,
        }],
    }
}

fn ignored(what: &str, reason: &str) -> Handled {
    acknowledged(what, reason, Level::Debug, "Ignored a webhook delivery")
}

/// A delivery about another organisation than the configured one:
/// acknowledged, so that GitHub does not retry it, recorded nowhere, and
/// warned about, since it means a hook or an app sends this connector
/// more than its organisation.
fn foreign(what: &str, organisation: &str, configured: &str) -> Handled {
    let reason =
        format!("an event of organisation {organisation}; this connector is for {configured}");
    acknowledged(
        what,
        &reason,
        Level::Warn,
        "Ignored a webhook delivery from another organisation",
    )
}

/// A delivery answered 202 with nothing recorded, and why.
fn acknowledged(what: &str, reason: &str, level: Level, message: &str) -> Handled {
    Handled {
        status: 202,
        body: json!({"event": what, "recorded": false, "reason": reason}).to_string(),
        batch: BatchBuilder::default().build_partial(),
        notes: vec![Note {
            level,
            message: message.into(),
            fields: vec![
                ("event".to_string(), what.to_string()),
                ("reason".to_string(), reason.to_string()),
            ],
        }],
    }
}

/// The organisation node from the payload's `organization`, and its login.
fn organisation(p: &Payload, out: &mut BatchBuilder) -> Result<String, PluginError> {
    let org = p.object("organization")?;
    let (login, node) =
        records::organisation(org).ok_or_else(|| p.error("organization", "has no login or id"))?;
    out.node(node);
    Ok(login)
}

fn account(out: &mut BatchBuilder, user: &User) -> NodeRef {
    out.account(&user.login, records::user_properties(user, None))
}

fn covered_edge(out: &mut BatchBuilder, kind: &str, from: NodeRef, to: NodeRef) {
    out.complete(Coverage::Edge((kind.to_string(), from, to)));
}

fn organization(p: &Payload) -> Result<Mapping, PluginError> {
    let mut out = BatchBuilder::default();
    if p.action() == Some("deleted") {
        let org = p.text("organization.login")?;
        out.complete(Coverage::Node(records::org_ref(org)));
        return Ok(Mapping::Records(out));
    }
    let org = organisation(p, &mut out)?;
    let org_ref = records::org_ref(&org);
    match p.action() {
        Some("member_added") => {
            let user: User = p.read("membership.user")?;
            let membership: Membership = p.read("membership")?;
            let from = account(&mut out, &user);
            // GitHub sends member_added for an invitation too, with state
            // `pending`: the state is copied, never assumed active.
            let props =
                records::role_state(membership.role.as_deref(), membership.state.as_deref());
            out.edge(records::edge("MEMBER_OF", from, org_ref, props));
        }
        Some("member_removed") => {
            let user: User = p.read("membership.user")?;
            let from = account(&mut out, &user);
            covered_edge(&mut out, "MEMBER_OF", from, org_ref);
        }
        Some("member_invited") => {
            let invitation: Invitation = p.read("invitation")?;
            let invitee: Option<User> = p.opt_read("user")?;
            let from = match (&invitee, invitation.login.as_deref()) {
                (Some(user), _) => account(&mut out, user),
                (None, Some(login)) if !login.is_empty() => {
                    out.account(login, records::login_properties(login))
                }
                _ => {
                    return Ok(Mapping::Ignored(
                        "an invitation sent to an email address only",
                    ));
                }
            };
            let role = records::invitation_role(&invitation);
            let props = records::role_state(role.as_deref(), Some("pending"));
            out.edge(records::edge("MEMBER_OF", from, org_ref, props));
        }
        Some("renamed") => {
            // The key holds the login, so the old key is gone. Memberships
            // and repositories move to the new key with the next sync.
            if let Some(old) = p.opt_text("changes.login.from")
                && old != org
            {
                out.complete(Coverage::Node(records::org_ref(old)));
            }
        }
        _ => {
            return Ok(Mapping::Ignored(
                "an organization action this connector does not map",
            ));
        }
    }
    Ok(Mapping::Records(out))
}

fn team_membership(p: &Payload) -> Result<Mapping, PluginError> {
    if p.opt_text("scope") != Some("team") {
        return Ok(Mapping::Ignored("a membership outside a team"));
    }
    // A membership ended by deleting the team names the team without its
    // slug, so it cannot be keyed; the team's own `deleted` event covers it.
    if p.at("team.slug").is_none() && p.at("team.deleted").is_some() {
        return Ok(Mapping::Ignored("a membership of a deleted team"));
    }
    let mut out = BatchBuilder::default();
    let org = organisation(p, &mut out)?;
    let team: Team = p.read("team")?;
    let user: User = p.read("member")?;
    let team_ref = records::team_ref(&org, &team.slug);
    out.node(records::team(&org, &team));
    let from = account(&mut out, &user);
    match p.action() {
        Some("added") => {
            // Role as the sync gives team members: the team listing does
            // not tell maintainers apart either.
            let props = records::role_state(Some("member"), None);
            out.edge(records::edge("MEMBER_OF", from, team_ref, props));
        }
        Some("removed") => covered_edge(&mut out, "MEMBER_OF", from, team_ref),
        _ => {
            return Ok(Mapping::Ignored(
                "a membership action this connector does not map",
            ));
        }
    }
    Ok(Mapping::Records(out))
}

/// The repository node with what the payload says of it, and the owning
/// organisation's OWNS edge when an organisation owns it.
fn add_repository(p: &Payload, out: &mut BatchBuilder, repo: &Repository) -> NodeRef {
    let repo_ref = records::repo_ref(&repo.full_name);
    out.node(records::repository(repo, &BranchProtection::Unknown));
    if let Some(org) = owning_org(p) {
        out.edge(records::edge(
            "OWNS",
            records::org_ref(org),
            repo_ref.clone(),
            Vec::new(),
        ));
    }
    repo_ref
}

fn owning_org(p: &Payload) -> Option<&str> {
    (p.opt_text("repository.owner.type") == Some("Organization"))
        .then(|| p.opt_text("repository.owner.login"))
        .flatten()
}

fn collaborator(p: &Payload) -> Result<Mapping, PluginError> {
    let user: User = p.read("member")?;
    let repo: Repository = p.read("repository")?;
    let mut out = BatchBuilder::default();
    let from = account(&mut out, &user);
    let repo_ref = add_repository(p, &mut out, &repo);
    match p.action() {
        Some("added" | "edited") => {
            // Without a new permission in `changes` the role is left out, so
            // the merge keeps the stored one.
            let role = p
                .opt_text("changes.permission.to")
                .or_else(|| p.opt_text("changes.role_name.to"))
                .map(records::permission_role);
            let props = records::role_state(role.as_deref(), None);
            out.edge(records::edge("HAS_PERMISSION", from, repo_ref, props));
        }
        Some("removed") => covered_edge(&mut out, "HAS_PERMISSION", from, repo_ref),
        _ => {
            return Ok(Mapping::Ignored(
                "a collaborator action this connector does not map",
            ));
        }
    }
    Ok(Mapping::Records(out))
}

fn team(p: &Payload) -> Result<Mapping, PluginError> {
    let mut out = BatchBuilder::default();
    let org = organisation(p, &mut out)?;
    let team: Team = p.read("team")?;
    let org_ref = records::org_ref(&org);
    let team_ref = records::team_ref(&org, &team.slug);
    match p.action() {
        Some("deleted") => {
            out.complete(Coverage::Node(team_ref.clone()));
            covered_edge(&mut out, "OWNS", org_ref, team_ref);
            return Ok(Mapping::Records(out));
        }
        // A renamed team gets a new slug and so a new key; the old key is
        // left to the next sync, since the payload gives the old name but
        // not the old slug.
        Some("created" | "edited") => {}
        Some("added_to_repository" | "removed_from_repository") => {}
        _ => {
            return Ok(Mapping::Ignored(
                "a team action this connector does not map",
            ));
        }
    }
    out.node(records::team(&org, &team));
    out.edge(records::edge("OWNS", org_ref, team_ref.clone(), Vec::new()));
    let added = match p.action() {
        Some("added_to_repository") => true,
        Some("removed_from_repository") => false,
        _ => return Ok(Mapping::Records(out)),
    };
    let repo: Repository = p.read("repository")?;
    let repo_ref = add_repository(p, &mut out, &repo);
    if added {
        let role = p.opt_text("team.permission").map(records::permission_role);
        let props = records::role_state(role.as_deref(), None);
        out.edge(records::edge("HAS_PERMISSION", team_ref, repo_ref, props));
    } else {
        covered_edge(&mut out, "HAS_PERMISSION", team_ref, repo_ref);
    }
    Ok(Mapping::Records(out))
}

fn repository(p: &Payload) -> Result<Mapping, PluginError> {
    let repo: Repository = p.read("repository")?;
    let mut out = BatchBuilder::default();
    match p.action() {
        Some("deleted") => {
            let repo_ref = records::repo_ref(&repo.full_name);
            out.complete(Coverage::Node(repo_ref.clone()));
            if let Some(org) = owning_org(p) {
                covered_edge(&mut out, "OWNS", records::org_ref(org), repo_ref);
            }
            return Ok(Mapping::Records(out));
        }
        Some("renamed") => {
            let old_name = p.text("changes.repository.name.from")?;
            let owner = p.text("repository.owner.login")?;
            cover_old_repository(
                &mut out,
                &repo,
                &format!("{owner}/{old_name}"),
                owning_org(p),
            );
        }
        Some("transferred") => {
            let from_org = p.opt_text("changes.owner.from.organization.login");
            let old_owner = from_org
                .or_else(|| p.opt_text("changes.owner.from.user.login"))
                .ok_or_else(|| p.error("changes.owner.from", "names no organization or user"))?;
            cover_old_repository(
                &mut out,
                &repo,
                &format!("{old_owner}/{}", repo.name),
                from_org,
            );
        }
        Some("created" | "edited" | "archived" | "unarchived" | "publicized" | "privatized") => {}
        _ => {
            return Ok(Mapping::Ignored(
                "a repository action this connector does not map",
            ));
        }
    }
    add_repository(p, &mut out, &repo);
    Ok(Mapping::Records(out))
}

/// A renamed or transferred repository is keyed anew; the old key is
/// covered as gone, with its owner's OWNS edge.
fn cover_old_repository(
    out: &mut BatchBuilder,
    repo: &Repository,
    old_full_name: &str,
    old_org: Option<&str>,
) {
    if old_full_name == repo.full_name {
        return;
    }
    let old_ref = records::repo_ref(old_full_name);
    out.complete(Coverage::Node(old_ref.clone()));
    if let Some(org) = old_org {
        covered_edge(out, "OWNS", records::org_ref(org), old_ref);
    }
}

fn branch_protection_rule(p: &Payload) -> Result<Mapping, PluginError> {
    let rule: ProtectionRule = p.read("rule")?;
    let repo: Repository = p.read("repository")?;
    let pattern = rule
        .pattern()
        .ok_or_else(|| p.error("rule.name", "is missing"))?;
    // Only a rule naming the default branch exactly is read. A wildcard
    // rule that also matches it is not, so its protection stays as the
    // last sync saw it.
    if repo.default_branch.as_deref() != Some(pattern) {
        return Ok(Mapping::Ignored(
            "a rule for a branch other than the default one",
        ));
    }
    let node = match p.action() {
        Some("created" | "edited") => {
            records::repository(&repo, &BranchProtection::Protected(rule.protection()))
        }
        Some("deleted") => {
            let mut node = records::repository(&repo, &BranchProtection::Unprotected);
            node.properties.extend(
                records::PROTECTION_PROPERTIES
                    .iter()
                    .map(|name| ((*name).to_string(), Value::Null)),
            );
            node
        }
        _ => {
            return Ok(Mapping::Ignored(
                "a rule action this connector does not map",
            ));
        }
    };
    let mut out = BatchBuilder::default();
    out.node(node);
    if let Some(org) = owning_org(p) {
        let repo_ref = records::repo_ref(&repo.full_name);
        out.edge(records::edge(
            "OWNS",
            records::org_ref(org),
            repo_ref,
            Vec::new(),
        ));
    }
    Ok(Mapping::Records(out))
}

/// Issues, pull requests, comments, reviews and pushes: who acted and
/// where, and, unless the operator turned it off, what they wrote.
fn activity(event: &str, p: &Payload, record_text: bool) -> Result<Mapping, PluginError> {
    let author = match event {
        "issue_comment" | "pull_request_review_comment" => "comment.user",
        "issues" => "issue.user",
        "pull_request" => "pull_request.user",
        "pull_request_review" => "review.user",
        // A push names its pusher by name and email only; `sender` is the
        // same person as an account.
        _ => "sender",
    };
    let user: User = p.read(author)?;
    let repo: Repository = p.read("repository")?;
    let mut out = BatchBuilder::default();
    account(&mut out, &user);
    add_repository(p, &mut out, &repo);
    if record_text {
        if p.action() == Some("deleted") {
            if let Some((kind, id)) = messages::deleted_target(event, p) {
                messages::deleted(&mut out, &repo.full_name, kind, &id);
            }
        } else if let Some(found) = messages::from_delivery(event, p)? {
            for message in &found {
                messages::record(&mut out, message);
            }
        }
    }
    Ok(Mapping::Records(out))
}
