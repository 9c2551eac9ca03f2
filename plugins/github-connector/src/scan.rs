//! One pass over a GitHub organisation, in a fixed request order: the
//! replay tests hold the connector to exactly this sequence.
//!
//! 1. the organisation;
//! 2. its members, every page;
//! 3. each member's membership (role and state);
//! 4. members without two-factor authentication;
//! 5. pending invitations;
//! 6. teams;
//! 7. each team's members;
//! 8. repositories;
//! 9. for each repository its collaborators, then its default branch's
//!    protection;
//! 10. when `comments_since` is configured, for each repository the issue
//!     and pull request comments written or edited since the cursor (or,
//!     on the first sync, since the configured time).
//!
//! Listings that a token may lack the scope for (two-factor status,
//! invitations, teams, repositories, collaborators, protection) are recorded
//! as unknown and the scan goes on; coverage is only claimed for what was
//! read in full, so nothing read partially is ever marked as gone.

use std::collections::BTreeSet;

use serde_json::{Map, Value as Json};

use org_mesh_plugin::log::Level;
use org_mesh_plugin::rest::{Client, RestError, Transport, encode_segment};
use org_mesh_plugin::types::{Batch, Coverage, Node, PluginError};

use crate::config::Config;
use crate::github::{Collaborator, Invitation, Membership, Protection, Repository, Team, User};
use crate::records::{self, BatchBuilder, BranchProtection};

/// A log line the scan wants written; the plugin glue emits these, tests
/// read them.
#[derive(Debug, Clone)]
pub struct Note {
    pub level: Level,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Scan {
    pub batch: Batch,
    pub notes: Vec<Note>,
    /// Where the next sync resumes reading comments: the newest `updated_at`
    /// seen, or where this one started when it saw none.
    pub cursor: Option<String>,
}

/// A member, and what their membership said, when it could be read.
struct Member {
    user: User,
    membership: Option<Membership>,
}

struct TeamListing {
    team: Team,
    members: Option<Vec<User>>,
}

struct RepoListing {
    repo: Repository,
    collaborators: Option<Vec<Collaborator>>,
    protection: BranchProtection,
}

struct Scanner<'a, T> {
    api: &'a Client<T>,
    org: String,
    per_page: u32,
    notes: Vec<Note>,
}

pub fn scan<T: Transport>(
    api: &Client<T>,
    config: &Config,
    cursor: Option<&str>,
) -> Result<Scan, PluginError> {
    let mut scanner = Scanner {
        api,
        org: encode_segment(&config.org),
        per_page: config.per_page,
        notes: Vec::new(),
    };
    let (org_login, org_node) = scanner.organisation(&config.org)?;
    let members = scanner.members()?;
    let no_mfa = scanner.two_factor_disabled()?;
    let invitations = scanner.invitations()?;
    let teams = scanner.teams()?;
    let repos = scanner.repositories()?;
    // A cursor this version wrote is a time; anything else (an older
    // version's, or a hand edit) starts again from the configured time.
    let since = cursor
        .filter(|c| crate::config::is_rfc3339(c))
        .or(config.comments_since.as_deref());
    let comments = match (since, &repos) {
        (Some(since), Some(repos)) if config.messages => Some(scanner.comments(repos, since)?),
        _ => None,
    };

    let mut out = BatchBuilder::default();
    out.node(org_node);
    let mut notes = scanner.notes;
    add_members(&mut out, &org_login, &members, no_mfa.as_ref());
    if let Some(invitations) = &invitations {
        let skipped = add_invitations(&mut out, &org_login, invitations);
        if skipped > 0 {
            notes.push(note(
                Level::Info,
                "Skipped invitations sent to an email address only",
                &[("count", skipped.to_string())],
            ));
        }
        out.complete(Coverage::EdgesTo((
            "MEMBER_OF".into(),
            records::org_ref(&org_login),
        )));
    }
    if let Some(teams) = &teams {
        add_teams(&mut out, &org_login, teams);
    }
    if let Some(repos) = &repos {
        add_repositories(&mut out, &org_login, repos);
    }
    if teams.is_some() && repos.is_some() {
        out.complete(Coverage::EdgesFrom((
            "OWNS".into(),
            records::org_ref(&org_login),
        )));
    }
    let mut next = since.map(str::to_string);
    if let Some(listed) = comments {
        for (repository, comment) in &listed {
            if let Some(updated) = comment.get("updated_at").and_then(Json::as_str)
                && next.as_deref().is_none_or(|n| updated > n)
            {
                next = Some(updated.to_string());
            }
            if let Some(message) = crate::messages::from_listed_comment(repository, comment) {
                crate::messages::record(&mut out, &message);
            }
        }
        notes.push(note(
            Level::Debug,
            "Read repository comments",
            &[
                ("count", listed.len().to_string()),
                ("since", since.unwrap_or_default().to_string()),
            ],
        ));
    }
    Ok(Scan {
        batch: out.build(),
        notes,
        cursor: next,
    })
}

fn note(level: Level, message: &str, fields: &[(&str, String)]) -> Note {
    Note {
        level,
        message: message.to_string(),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect(),
    }
}

impl<T: Transport> Scanner<'_, T> {
    fn list_path(&self, path: &str) -> String {
        let join = if path.contains('?') { '&' } else { '?' };
        format!("{path}{join}per_page={}", self.per_page)
    }

    /// Turns the listed statuses into "unknown" with a warning, and every
    /// other failure into the sync's error.
    fn tolerate<V>(
        &mut self,
        what: &str,
        result: Result<V, RestError>,
        statuses: &[u16],
    ) -> Result<Option<V>, PluginError> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status().is_some_and(|s| statuses.contains(&s)) => {
                self.notes.push(note(
                    Level::Warn,
                    "Could not read a listing; its records are left as they were",
                    &[("listing", what.to_string()), ("reason", e.to_string())],
                ));
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn organisation(&mut self, configured: &str) -> Result<(String, Node), PluginError> {
        let path = format!("/orgs/{}", self.org);
        let org: Map<String, Json> = match self.api.get_json(&path) {
            Ok(org) => org,
            Err(e) if e.status() == Some(404) => {
                return Err(PluginError::InvalidConfig(format!(
                    "org: GitHub shows this token no organisation {configured:?}"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        records::organisation(&org).ok_or_else(|| {
            PluginError::Upstream(format!("GET {path}: the answer has no login or id"))
        })
    }

    fn members(&mut self) -> Result<Vec<Member>, PluginError> {
        let users: Vec<User> = self
            .api
            .get_all(&self.list_path(&format!("/orgs/{}/members", self.org)))?;
        let mut members = Vec::with_capacity(users.len());
        for user in users {
            let path = format!(
                "/orgs/{}/memberships/{}",
                self.org,
                encode_segment(&user.login)
            );
            // A 404 means the member left since the listing: no edge. A 403
            // keeps the member, with role and state unknown.
            let membership = match self.api.get_json::<Membership>(&path) {
                Ok(m) => Some(m),
                Err(e) if e.status() == Some(404) => continue,
                Err(e) => self.tolerate("membership", Err(e), &[403])?,
            };
            members.push(Member { user, membership });
        }
        Ok(members)
    }

    fn two_factor_disabled(&mut self) -> Result<Option<BTreeSet<String>>, PluginError> {
        let path = self.list_path(&format!("/orgs/{}/members?filter=2fa_disabled", self.org));
        let result = self.api.get_all::<User>(&path);
        let users = self.tolerate("members without two-factor", result, &[403, 404, 422])?;
        Ok(users.map(|users| users.into_iter().map(|u| u.login.to_lowercase()).collect()))
    }

    fn invitations(&mut self) -> Result<Option<Vec<Invitation>>, PluginError> {
        let path = self.list_path(&format!("/orgs/{}/invitations", self.org));
        let result = self.api.get_all(&path);
        self.tolerate("invitations", result, &[403, 404])
    }

    fn teams(&mut self) -> Result<Option<Vec<TeamListing>>, PluginError> {
        let path = self.list_path(&format!("/orgs/{}/teams", self.org));
        let result = self.api.get_all::<Team>(&path);
        let Some(teams) = self.tolerate("teams", result, &[403, 404])? else {
            return Ok(None);
        };
        let mut listings = Vec::with_capacity(teams.len());
        for team in teams {
            let path = self.list_path(&format!(
                "/orgs/{}/teams/{}/members",
                self.org,
                encode_segment(&team.slug)
            ));
            let result = self.api.get_all(&path);
            let members = self.tolerate("team members", result, &[403, 404])?;
            listings.push(TeamListing { team, members });
        }
        Ok(Some(listings))
    }

    fn repositories(&mut self) -> Result<Option<Vec<RepoListing>>, PluginError> {
        let path = self.list_path(&format!("/orgs/{}/repos", self.org));
        let result = self.api.get_all::<Repository>(&path);
        let Some(repos) = self.tolerate("repositories", result, &[403, 404])? else {
            return Ok(None);
        };
        let mut listings = Vec::with_capacity(repos.len());
        for repo in repos {
            let path = self.list_path(&format!(
                "/repos/{}/collaborators?affiliation=all",
                repo.full_name
            ));
            let result = self.api.get_all(&path);
            let collaborators = self.tolerate("collaborators", result, &[403, 404])?;
            let protection = self.protection(&repo)?;
            listings.push(RepoListing {
                repo,
                collaborators,
                protection,
            });
        }
        Ok(Some(listings))
    }

    /// Every repository's issue and pull request comments written or
    /// edited since `since`, with the repository each came from. A
    /// repository whose comments cannot be read is skipped with a note.
    fn comments(
        &mut self,
        repos: &[RepoListing],
        since: &str,
    ) -> Result<Vec<(String, Json)>, PluginError> {
        let mut out = Vec::new();
        for listing in repos {
            // A `+` offset would read as a space in a query string.
            let path = self.list_path(&format!(
                "/repos/{}/issues/comments?since={}",
                listing.repo.full_name,
                since.replace('+', "%2B")
            ));
            let result = self.api.get_all::<Json>(&path);
            for comment in self
                .tolerate("comments", result, &[403, 404, 410])?
                .into_iter()
                .flatten()
            {
                out.push((listing.repo.full_name.clone(), comment));
            }
        }
        Ok(out)
    }

    fn protection(&mut self, repo: &Repository) -> Result<BranchProtection, PluginError> {
        let Some(branch) = repo.default_branch.as_deref() else {
            return Ok(BranchProtection::Unknown);
        };
        let path = format!(
            "/repos/{}/branches/{}/protection",
            repo.full_name,
            encode_segment(branch)
        );
        match self.api.get_json::<Protection>(&path) {
            Ok(p) => Ok(BranchProtection::Protected(p)),
            Err(e) if e.status() == Some(404) && is_not_protected(e.message()) => {
                Ok(BranchProtection::Unprotected)
            }
            Err(e) => {
                self.tolerate("branch protection", Err::<(), _>(e), &[403, 404])?;
                Ok(BranchProtection::Unknown)
            }
        }
    }
}

fn is_not_protected(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.to_ascii_lowercase().contains("not protected"))
}

fn add_members(
    out: &mut BatchBuilder,
    org: &str,
    members: &[Member],
    no_mfa: Option<&BTreeSet<String>>,
) {
    let org_ref = records::org_ref(org);
    for member in members {
        let mfa = no_mfa.map(|set| !set.contains(&member.user.login.to_lowercase()));
        let account = out.account(
            &member.user.login,
            records::user_properties(&member.user, mfa),
        );
        let (role, state) = match &member.membership {
            Some(m) => (m.role.as_deref(), m.state.as_deref()),
            None => (None, None),
        };
        out.edge(records::edge(
            "MEMBER_OF",
            account,
            org_ref.clone(),
            records::role_state(role, state),
        ));
    }
}

/// Adds invitations for a login; returns how many were sent to an email
/// address only, which cannot be tied to an account until accepted.
fn add_invitations(out: &mut BatchBuilder, org: &str, invitations: &[Invitation]) -> usize {
    let mut email_only = 0;
    for invitation in invitations {
        let Some(login) = invitation.login.as_deref().filter(|l| !l.is_empty()) else {
            email_only += 1;
            continue;
        };
        let account = out.account(login, records::login_properties(login));
        let role = records::invitation_role(invitation);
        out.edge(records::edge(
            "MEMBER_OF",
            account,
            records::org_ref(org),
            records::role_state(role.as_deref(), Some("pending")),
        ));
    }
    email_only
}

fn add_teams(out: &mut BatchBuilder, org: &str, teams: &[TeamListing]) {
    for listing in teams {
        let team_ref = records::team_ref(org, &listing.team.slug);
        out.node(records::team(org, &listing.team));
        out.edge(records::edge(
            "OWNS",
            records::org_ref(org),
            team_ref.clone(),
            Vec::new(),
        ));
        let Some(members) = &listing.members else {
            continue;
        };
        for user in members {
            let account = out.account(&user.login, records::user_properties(user, None));
            out.edge(records::edge(
                "MEMBER_OF",
                account,
                team_ref.clone(),
                records::role_state(Some("member"), None),
            ));
        }
        out.complete(Coverage::EdgesTo(("MEMBER_OF".into(), team_ref)));
    }
}

fn add_repositories(out: &mut BatchBuilder, org: &str, repos: &[RepoListing]) {
    for listing in repos {
        let repo_ref = records::repo_ref(&listing.repo.full_name);
        out.node(records::repository(&listing.repo, &listing.protection));
        out.edge(records::edge(
            "OWNS",
            records::org_ref(org),
            repo_ref.clone(),
            Vec::new(),
        ));
        let Some(collaborators) = &listing.collaborators else {
            continue;
        };
        for collaborator in collaborators {
            let user = &collaborator.user;
            let account = out.account(&user.login, records::user_properties(user, None));
            let role = collaborator.role();
            out.edge(records::edge(
                "HAS_PERMISSION",
                account,
                repo_ref.clone(),
                records::role_state(role.as_deref(), None),
            ));
        }
        out.complete(Coverage::EdgesTo(("HAS_PERMISSION".into(), repo_ref)));
    }
}
