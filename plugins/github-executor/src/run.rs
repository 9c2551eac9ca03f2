//! Plans and carries out actions against the GitHub REST API.
//!
//! `plan` makes no request: it lists the calls from the action alone, reads
//! first, then writes, each saying when it is skipped. `execute` makes the
//! reads, works out which planned writes are still needed, and sends only
//! those, so a second run of the same action reads and writes nothing.
//!
//! A write that fails in a way that says nothing about whether GitHub acted
//! on it (a 5xx, a timeout, a dropped connection) is not simply sent again:
//! the target is read again after a doubling wait, and only writes still
//! needed then are sent. That is what keeps a retried POST from opening a
//! second issue. Reads are retried by the REST client itself, page by page.
//!
//! For a branch protection, the PUT replaces the whole protection, so
//! `execute` checks what it read before writing: it refuses, naming the
//! settings, when the planned body would drop or weaken something the
//! branch has now. So `execute` either sends exactly the planned body or
//! sends nothing.

use serde::Serialize;
use serde_json::Value as Json;

use org_mesh_plugin::executor::{ActionPlan, Outcome, PlannedCall};
use org_mesh_plugin::http;
use org_mesh_plugin::rest::{Client, Reply, RestError, RetryPolicy, Transport, encode_segment};
use org_mesh_plugin::types::PluginError;

use crate::actions::Action;
use crate::protection::{Protection, Requested};

/// Times a write is attempted again after a failure that leaves its effect
/// unknown, each after reading the target again.
pub const WRITE_RETRIES: u32 = 3;

/// How reads are retried by the client and how long writes wait before the
/// target is read again. GitHub recommends waiting at least a second
/// between writes, and the host allows a plugin call two minutes in all.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        server_error_retries: 3,
        server_error_backoff_secs: 1,
        ..RetryPolicy::default()
    }
}

fn call(method: &str, url: String, body: Option<String>, effect: String) -> PlannedCall {
    PlannedCall {
        method: method.to_string(),
        url,
        body,
        effect,
    }
}

fn repo_path(repository: &str) -> String {
    let path = repository
        .split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/");
    format!("/repos/{path}")
}

fn protection_path(repository: &str, branch: &str) -> String {
    format!(
        "{}/branches/{}/protection",
        repo_path(repository),
        encode_segment(branch)
    )
}

/// The membership rather than the member: deleting it removes an active
/// member and also cancels a pending invitation, which the members route
/// would leave in place.
fn member_path(org: &str, login: &str) -> String {
    format!(
        "/orgs/{}/memberships/{}",
        encode_segment(org),
        encode_segment(login)
    )
}

/// Only direct collaborators: the unfiltered list also names everyone who
/// reaches the repository through a team or the organisation's base
/// permission, whom the DELETE cannot remove, so matching on it would send
/// the DELETE (with its side effects on forks and assignments) on every run.
fn collaborators_read<T: Transport>(
    api: &Client<T>,
    page_size: u32,
    repository: &str,
) -> PlannedCall {
    call(
        "GET",
        api.url(&format!(
            "{}/collaborators?affiliation=direct&per_page={page_size}",
            repo_path(repository)
        )),
        None,
        format!("reads every page of the direct collaborators of {repository}; changes nothing"),
    )
}

fn membership_read<T: Transport>(api: &Client<T>, org: &str, login: &str) -> PlannedCall {
    call(
        "GET",
        api.url(&member_path(org, login)),
        None,
        format!("reads {login}'s membership of {org}; changes nothing"),
    )
}

fn protection_read<T: Transport>(api: &Client<T>, repository: &str, branch: &str) -> PlannedCall {
    call(
        "GET",
        api.url(&protection_path(repository, branch)),
        None,
        "reads the current protection; changes nothing".into(),
    )
}

fn outside_collaborators_read<T: Transport>(
    api: &Client<T>,
    page_size: u32,
    org: &str,
    login: &str,
) -> PlannedCall {
    call(
        "GET",
        api.url(&format!(
            "/orgs/{}/outside_collaborators?per_page={page_size}",
            encode_segment(org)
        )),
        None,
        format!(
            "only when {login} is not a member: reads every page of the outside collaborators \
             of {org}, to tell an already converted member from one who has no access; changes \
             nothing"
        ),
    )
}

/// GitHub lists only open issues unless asked otherwise, which is what the
/// marker search wants; the request is also exactly the one GitHub's
/// recorded issue pagination makes.
fn issues_read<T: Transport>(
    api: &Client<T>,
    page_size: u32,
    repository: &str,
    marker: &str,
) -> PlannedCall {
    call(
        "GET",
        api.url(&format!(
            "{}/issues?per_page={page_size}",
            repo_path(repository)
        )),
        None,
        format!(
            "reads every page of the open issues of {repository}, looking for one whose body \
             carries {marker}; changes nothing"
        ),
    )
}

/// The body of `POST .../issues`, keys in the order GitHub documents them.
#[derive(Serialize)]
struct NewIssue<'a> {
    title: &'a str,
    body: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    labels: &'a [String],
}

fn issue_body(title: &str, body: &str, labels: &[String], marker: &str) -> String {
    let body = if body.trim().is_empty() {
        marker.to_string()
    } else {
        format!("{}\n\n{marker}", body.trim_end())
    };
    let issue = NewIssue {
        title,
        body,
        labels,
    };
    // Serialising strings cannot fail; the fallback keeps this total rather
    // than trusting that.
    serde_json::to_string(&issue).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The calls an action leads to, as planned from its parameters.
struct Steps {
    reads: Vec<PlannedCall>,
    writes: Vec<PlannedCall>,
    expected: String,
}

fn steps<T: Transport>(api: &Client<T>, page_size: u32, action: &Action) -> Steps {
    match action {
        Action::RemoveOrgMember { org, login } => Steps {
            reads: Vec::new(),
            writes: vec![call(
                "DELETE",
                api.url(&member_path(org, login)),
                None,
                format!(
                    "removes {login} from {org} (or cancels their invitation), with their access to its repositories"
                ),
            )],
            expected: format!("{login} is not a member of {org}"),
        },
        Action::RestoreBranchProtection {
            repository,
            branch,
            requested,
        } => protection_steps(api, repository, branch, requested),
        Action::RemoveRepoCollaborator { repository, login } => Steps {
            reads: vec![collaborators_read(api, page_size, repository)],
            writes: vec![call(
                "DELETE",
                api.url(&format!(
                    "{}/collaborators/{}",
                    repo_path(repository),
                    encode_segment(login)
                )),
                None,
                format!(
                    "removes {login}'s direct access to {repository}; GitHub also unassigns them \
                     from its issues and, as it documents, deletes their own fork of it; not \
                     sent when they are not a direct collaborator"
                ),
            )],
            expected: format!("{login} is not a direct collaborator on {repository}"),
        },
        Action::ConvertToOutsideCollaborator {
            organisation,
            login,
        } => Steps {
            reads: vec![
                membership_read(api, organisation, login),
                outside_collaborators_read(api, page_size, organisation, login),
            ],
            writes: vec![call(
                "PUT",
                api.url(&format!(
                    "/orgs/{}/outside_collaborators/{}",
                    encode_segment(organisation),
                    encode_segment(login)
                )),
                None,
                format!(
                    "makes {login} an outside collaborator: they leave {organisation} and keep \
                     access only to the repositories their current team membership allows; not \
                     sent when they are not an active member"
                ),
            )],
            expected: format!(
                "{login} is not a member of {organisation}; any access left is as an outside \
                 collaborator"
            ),
        },
        Action::OpenIssue {
            repository,
            title,
            body,
            labels,
            marker,
        } => Steps {
            reads: vec![issues_read(api, page_size, repository, marker)],
            writes: vec![call(
                "POST",
                api.url(&format!("{}/issues", repo_path(repository))),
                Some(issue_body(title, body, labels, marker)),
                format!(
                    "opens the issue {title:?} in {repository}; not sent when an open issue \
                     already carries the marker"
                ),
            )],
            expected: format!("an open issue in {repository} carries {marker}"),
        },
        Action::CampaignResponse {
            repository,
            title,
            body,
            marker,
            branch,
            reviews,
        } => {
            let mut reads = vec![issues_read(api, page_size, repository, marker)];
            let mut writes = vec![call(
                "POST",
                api.url(&format!("{}/issues", repo_path(repository))),
                Some(issue_body(title, body, &[], marker)),
                format!(
                    "opens the issue {title:?} in {repository} for its maintainers; not sent \
                     when an open issue already carries the marker"
                ),
            )];
            let mut expected = format!("an open issue in {repository} carries {marker}");
            if let Some(branch) = branch {
                reads.push(protection_read(api, repository, branch));
                writes.push(call(
                    "PATCH",
                    api.url(&reviews_path(repository, branch)),
                    Some(ReviewRule::requested(*reviews).to_json()),
                    format!(
                        "requires on {branch} in {repository} at least {reviews} approving \
                         reviews, code owner review and fresh approval after new commits; a \
                         setting already at least this strict is left out of the body, and \
                         nothing is sent when all are, or when the branch has no protection \
                         (a finding of its own)"
                    ),
                ));
                expected.push_str(&format!(
                    "; {branch} requires at least {reviews} approving reviews, code owner \
                     review and fresh approval after new commits, or has no protection"
                ));
            }
            Steps {
                reads,
                writes,
                expected,
            }
        }
    }
}

fn reviews_path(repository: &str, branch: &str) -> String {
    format!(
        "{}/required_pull_request_reviews",
        protection_path(repository, branch)
    )
}

/// The part of `PATCH .../protection/required_pull_request_reviews` a
/// campaign response sets; a field left out keeps its current value.
#[derive(Debug, Default, Serialize, PartialEq)]
struct ReviewRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    dismiss_stale_reviews: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    require_code_owner_reviews: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    required_approving_review_count: Option<i64>,
}

impl ReviewRule {
    fn requested(reviews: i64) -> Self {
        Self {
            dismiss_stale_reviews: Some(true),
            require_code_owner_reviews: Some(true),
            required_approving_review_count: Some(reviews),
        }
    }

    /// What still has to change given the branch's current review rule
    /// (`None` when it has none): only ever stricter, never looser.
    fn needed(reviews: i64, current: Option<&Json>) -> Self {
        let on = |name: &str| {
            current
                .and_then(|c| c.get(name))
                .and_then(Json::as_bool)
                .unwrap_or(false)
        };
        let count = current
            .and_then(|c| c.get("required_approving_review_count"))
            .and_then(Json::as_i64)
            .unwrap_or(0);
        Self {
            dismiss_stale_reviews: (!on("dismiss_stale_reviews")).then_some(true),
            require_code_owner_reviews: (!on("require_code_owner_reviews")).then_some(true),
            required_approving_review_count: (count < reviews).then_some(reviews),
        }
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn to_json(&self) -> String {
        // Serialising three optional scalars cannot fail; the fallback
        // keeps this total rather than trusting that.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn protection_steps<T: Transport>(
    api: &Client<T>,
    repository: &str,
    branch: &str,
    requested: &Requested,
) -> Steps {
    let path = protection_path(repository, branch);
    let planned = Protection::default().raised(requested);
    let mut writes = vec![call(
        "PUT",
        api.url(&path),
        Some(planned.body.to_json()),
        format!(
            "sets the protection of {branch} in {repository}; not sent when the branch already \
             has at least this"
        ),
    )];
    if planned.required_signatures {
        writes.push(call(
            "POST",
            api.url(&format!("{path}/required_signatures")),
            None,
            format!(
                "requires signed commits on {branch} in {repository}; not sent when already required"
            ),
        ));
    }
    Steps {
        reads: vec![protection_read(api, repository, branch)],
        writes,
        expected: format!(
            "{branch} in {repository} is protected at least as: {}",
            planned.body.to_json()
        ),
    }
}

/// A REST failure as the plugin error the host reports, saying what the
/// executor was doing when it happened.
fn failed(e: RestError, doing: &str) -> PluginError {
    match PluginError::from(e) {
        PluginError::InvalidConfig(m) => PluginError::InvalidConfig(format!("{doing}: {m}")),
        PluginError::InvalidInput(m) => PluginError::InvalidInput(format!("{doing}: {m}")),
        PluginError::Upstream(m) => PluginError::Upstream(format!("{doing}: {m}")),
        PluginError::Forbidden(m) => PluginError::Forbidden(format!("{doing}: {m}")),
        PluginError::Denied(m) => PluginError::Denied(format!("{doing}: {m}")),
        PluginError::Internal(m) => PluginError::Internal(format!("{doing}: {m}")),
        limited @ PluginError::RateLimited(_) => limited,
    }
}

/// GitHub answers 404 both for what does not exist and for what the token
/// may not see, so the message says both.
fn not_found(e: &RestError, what: &str) -> PluginError {
    PluginError::Upstream(format!(
        "{what} was not found, or the token cannot see it ({e})"
    ))
}

/// Reads the branch's protection; none when it has none.
fn current_protection<T: Transport>(
    api: &Client<T>,
    url: &str,
    repository: &str,
    branch: &str,
) -> Result<Option<Protection>, PluginError> {
    match api.get_json::<Json>(url) {
        Ok(doc) => Ok(Some(Protection::from_current(&doc))),
        Err(e)
            if e.status() == Some(404)
                && e.message()
                    .is_some_and(|m| m.to_ascii_lowercase().contains("not protected")) =>
        {
            Ok(None)
        }
        Err(e) if e.status() == Some(404) => Err(not_found(
            &e,
            &format!("branch {branch} of repository {repository}"),
        )),
        Err(e) => Err(failed(
            e,
            &format!("reading the protection of {branch} in {repository}"),
        )),
    }
}

/// The planned writes still needed given what the branch has now, or an
/// error naming what the planned body would take away.
fn needed_writes(
    writes: Vec<PlannedCall>,
    current: Option<&Protection>,
    requested: &Requested,
) -> Result<Vec<PlannedCall>, PluginError> {
    let Some(current) = current else {
        return Ok(writes);
    };
    let planned = Protection::default().raised(requested).normalised();
    let merged = current.raised(requested).normalised();
    let body_needed = merged.body != current.normalised().body;
    let signatures_needed = planned.required_signatures && !current.required_signatures;
    if !body_needed && !signatures_needed {
        return Ok(Vec::new());
    }
    let lost = differing_keys(&merged.body, &planned.body);
    if !lost.is_empty() {
        return Err(PluginError::InvalidInput(format!(
            "the planned protection would drop or weaken what the branch has now in: {}; \
             pass those settings as parameters, or change the branch by hand",
            lost.join(", ")
        )));
    }
    Ok(writes
        .into_iter()
        .filter(|w| match w.method.as_str() {
            "PUT" => body_needed,
            "POST" => signatures_needed,
            _ => true,
        })
        .collect())
}

/// The top-level body keys whose values differ.
fn differing_keys(a: &crate::protection::Body, b: &crate::protection::Body) -> Vec<String> {
    let (Ok(Json::Object(a)), Ok(Json::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return vec!["the whole body".into()];
    };
    let mut keys: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.retain(|k| a.get(k) != b.get(k));
    keys
}

/// What the reads found: the reads made, the writes still needed, and what
/// is already so when none are.
struct Found {
    reads: Vec<PlannedCall>,
    writes: Vec<PlannedCall>,
    state: String,
}

impl Found {
    fn needs(reads: Vec<PlannedCall>, writes: Vec<PlannedCall>) -> Self {
        Self {
            reads,
            writes,
            state: String::new(),
        }
    }

    fn already(reads: Vec<PlannedCall>, state: String) -> Self {
        Self {
            reads,
            writes: Vec::new(),
            state,
        }
    }
}

/// Reads the target and decides which of the planned writes are needed.
fn assess<T: Transport>(
    api: &Client<T>,
    page_size: u32,
    action: &Action,
    steps: Steps,
) -> Result<Found, PluginError> {
    let Steps {
        writes, expected, ..
    } = steps;
    match action {
        // The DELETE is its own check: a 404 answer means already gone.
        Action::RemoveOrgMember { .. } => Ok(Found::needs(Vec::new(), writes)),
        Action::RestoreBranchProtection {
            repository,
            branch,
            requested,
        } => {
            let read = protection_read(api, repository, branch);
            let current = current_protection(api, &read.url, repository, branch)?;
            let writes = needed_writes(writes, current.as_ref(), requested)?;
            Ok(Found {
                reads: vec![read],
                writes,
                state: expected,
            })
        }
        Action::RemoveRepoCollaborator { repository, login } => {
            let read = collaborators_read(api, page_size, repository);
            let listed = match api.get_all::<Json>(&read.url) {
                Ok(items) => lists(&items, login),
                Err(e) if e.status() == Some(404) => {
                    return Err(not_found(&e, &format!("repository {repository}")));
                }
                Err(e) => {
                    return Err(failed(
                        e,
                        &format!("listing the direct collaborators of {repository}"),
                    ));
                }
            };
            Ok(if listed {
                Found::needs(vec![read], writes)
            } else {
                Found::already(vec![read], expected)
            })
        }
        Action::ConvertToOutsideCollaborator {
            organisation,
            login,
        } => {
            let membership = membership_read(api, organisation, login);
            match api.get_json::<Json>(&membership.url) {
                Ok(doc) => match doc.get("state").and_then(Json::as_str) {
                    Some("active") => Ok(Found::needs(vec![membership], writes)),
                    Some("pending") => Err(PluginError::InvalidInput(format!(
                        "{login} has only a pending invitation to {organisation}, not a \
                         membership to convert; cancel the invitation instead \
                         (github.remove-org-member)"
                    ))),
                    other => Err(PluginError::Upstream(format!(
                        "{login}'s membership of {organisation} has the state {other:?}, which \
                         this executor does not know"
                    ))),
                },
                Err(e) if e.status() == Some(404) => {
                    let outside = outside_collaborators_read(api, page_size, organisation, login);
                    let converted = match api.get_all::<Json>(&outside.url) {
                        Ok(items) => lists(&items, login),
                        Err(e) if e.status() == Some(404) => {
                            return Err(not_found(&e, &format!("organisation {organisation}")));
                        }
                        Err(e) => {
                            return Err(failed(
                                e,
                                &format!("listing the outside collaborators of {organisation}"),
                            ));
                        }
                    };
                    let state = if converted {
                        format!("{login} is already an outside collaborator of {organisation}")
                    } else {
                        format!(
                            "{login} is neither a member nor an outside collaborator of \
                             {organisation}; there is nothing to convert"
                        )
                    };
                    Ok(Found::already(vec![membership, outside], state))
                }
                Err(e) => Err(failed(
                    e,
                    &format!("reading {login}'s membership of {organisation}"),
                )),
            }
        }
        Action::OpenIssue {
            repository, marker, ..
        } => {
            let (read, found) = marked_issue(api, page_size, repository, marker)?;
            Ok(match found {
                Some(issue) => Found::already(
                    vec![read],
                    format!(
                        "{} is open and carries the marker",
                        describe_issue(&issue, repository)
                    ),
                ),
                None => Found::needs(vec![read], writes),
            })
        }
        Action::CampaignResponse {
            repository,
            marker,
            branch,
            reviews,
            ..
        } => {
            let mut writes = writes.into_iter();
            let mut found = Found::needs(Vec::new(), Vec::new());
            let mut state = Vec::new();
            let (read, issue) = marked_issue(api, page_size, repository, marker)?;
            found.reads.push(read);
            let post = writes.next();
            match issue {
                Some(issue) => state.push(format!(
                    "{} is open and carries the marker",
                    describe_issue(&issue, repository)
                )),
                None => found.writes.extend(post),
            }
            if let (Some(branch), Some(mut patch)) = (branch, writes.next()) {
                let read = protection_read(api, repository, branch);
                let current = match api.get_json::<Json>(&read.url) {
                    Ok(doc) => Some(doc),
                    Err(e)
                        if e.status() == Some(404)
                            && e.message().is_some_and(|m| {
                                m.to_ascii_lowercase().contains("not protected")
                            }) =>
                    {
                        None
                    }
                    Err(e) if e.status() == Some(404) => {
                        return Err(not_found(
                            &e,
                            &format!("branch {branch} of repository {repository}"),
                        ));
                    }
                    Err(e) => {
                        return Err(failed(
                            e,
                            &format!("reading the protection of {branch} in {repository}"),
                        ));
                    }
                };
                found.reads.push(read);
                match current {
                    None => state.push(format!(
                        "{branch} in {repository} has no protection to add reviews to"
                    )),
                    Some(doc) => {
                        let needed =
                            ReviewRule::needed(*reviews, doc.get("required_pull_request_reviews"));
                        if needed.is_empty() {
                            state.push(format!(
                                "{branch} in {repository} already requires at least {reviews} \
                                 approving reviews, code owner review and fresh approval"
                            ));
                        } else {
                            patch.body = Some(needed.to_json());
                            found.writes.push(patch);
                        }
                    }
                }
            }
            found.state = state.join("; ");
            Ok(found)
        }
    }
}

/// Reads every open issue of the repository and returns the one whose body
/// carries the marker, with the read as planned.
fn marked_issue<T: Transport>(
    api: &Client<T>,
    page_size: u32,
    repository: &str,
    marker: &str,
) -> Result<(PlannedCall, Option<Json>), PluginError> {
    let read = issues_read(api, page_size, repository, marker);
    let issues = match api.get_all::<Json>(&read.url) {
        Ok(issues) => issues,
        Err(e) if e.status() == Some(404) => {
            return Err(not_found(&e, &format!("repository {repository}")));
        }
        Err(e) => {
            return Err(failed(
                e,
                &format!("listing the open issues of {repository}"),
            ));
        }
    };
    // Pull requests are listed with issues; one quoting the marker is not
    // the issue this fix opened.
    let found = issues.into_iter().find(|i| {
        i.get("pull_request").is_none()
            && i.get("body")
                .and_then(Json::as_str)
                .is_some_and(|b| b.contains(marker))
    });
    Ok((read, found))
}

/// Whether a list of users names the login; GitHub logins ignore case.
fn lists(users: &[Json], login: &str) -> bool {
    users
        .iter()
        .filter_map(|u| u.get("login").and_then(Json::as_str))
        .any(|l| l.eq_ignore_ascii_case(login))
}

fn describe_issue(issue: &Json, repository: &str) -> String {
    let number = issue.get("number").and_then(Json::as_i64).unwrap_or(0);
    match issue.get("html_url").and_then(Json::as_str) {
        Some(url) => format!("issue #{number} of {repository} ({url})"),
        None => format!("issue #{number} of {repository}"),
    }
}

/// What a successful set of writes achieved, for the outcome.
fn written(action: &Action, replies: &[Reply], expected: String) -> String {
    let (repository, labels) = match action {
        Action::OpenIssue {
            repository, labels, ..
        } => (repository, labels.as_slice()),
        Action::CampaignResponse { repository, .. } => {
            let opened = replies
                .iter()
                .filter_map(|r| serde_json::from_slice::<Json>(&r.body).ok())
                .find(|doc| doc.get("number").is_some());
            return match opened {
                Some(issue) => format!("opened {}; {expected}", describe_issue(&issue, repository)),
                None => expected,
            };
        }
        _ => return expected,
    };
    let Some(issue) = replies
        .iter()
        .find_map(|r| serde_json::from_slice::<Json>(&r.body).ok())
    else {
        return format!("opened an issue in {repository}");
    };
    let mut detail = format!("opened {}", describe_issue(&issue, repository));
    // GitHub drops labels silently when the token may not set them.
    let kept: Vec<&str> = issue
        .get("labels")
        .and_then(Json::as_array)
        .map(|ls| {
            ls.iter()
                .filter_map(|l| l.get("name").and_then(Json::as_str))
                .collect()
        })
        .unwrap_or_default();
    let dropped: Vec<&str> = labels
        .iter()
        .map(String::as_str)
        .filter(|l| !kept.iter().any(|k| k.eq_ignore_ascii_case(l)))
        .collect();
    if !dropped.is_empty() {
        detail.push_str(&format!(
            "; GitHub did not set the labels {} (the token needs push access to set labels)",
            dropped.join(", ")
        ));
    }
    detail
}

/// A failure that leaves unknown whether GitHub acted on the request.
fn unknown_effect(e: &RestError) -> bool {
    e.status().is_some_and(|s| s >= 500)
        || matches!(
            e,
            RestError::Http {
                error: http::Error::Timeout | http::Error::Transport(_),
                ..
            }
        )
}

fn removal(action: &Action) -> bool {
    matches!(
        action,
        Action::RemoveOrgMember { .. } | Action::RemoveRepoCollaborator { .. }
    )
}

pub fn plan<T: Transport>(api: &Client<T>, page_size: u32, action: &Action) -> ActionPlan {
    let steps = steps(api, page_size, action);
    ActionPlan {
        calls: steps.reads.into_iter().chain(steps.writes).collect(),
        expected: steps.expected,
    }
}

/// Carries the action out; `pause` waits between attempts and reports them.
pub fn execute<T: Transport, P: Transport>(
    api: &Client<T>,
    pause: &P,
    page_size: u32,
    action: &Action,
) -> Result<Outcome, PluginError> {
    let expected = steps(api, page_size, action).expected;
    let mut made: Vec<PlannedCall> = Vec::new();
    // Writes GitHub failed without saying whether it acted on them.
    let mut unknown: Vec<String> = Vec::new();
    let mut attempt = 0;
    loop {
        let found = assess(api, page_size, action, steps(api, page_size, action))?;
        made.extend(found.reads);
        if found.writes.is_empty() {
            let changed = !unknown.is_empty();
            let detail = if changed {
                format!(
                    "{}; the earlier {} had taken effect all the same",
                    found.state,
                    unknown.join(" and ")
                )
            } else {
                format!("already so: {}", found.state)
            };
            return Ok(Outcome {
                changed,
                calls: made,
                detail,
            });
        }
        let mut replies = Vec::new();
        let mut retry = None;
        for write in found.writes {
            let result = api.send(&write.method, &write.url, write.body.as_deref());
            let described = format!("{} {}", write.method, write.url);
            made.push(write);
            match result {
                Ok(reply) => replies.push(reply),
                // Removing someone who is no longer there changes nothing.
                Err(e) if removal(action) && e.status() == Some(404) => {}
                Err(e) if unknown_effect(&e) && attempt < WRITE_RETRIES => {
                    retry = Some((described, e));
                    break;
                }
                Err(e) => return Err(failed(e, &described)),
            }
        }
        let Some((described, error)) = retry else {
            let changed = !replies.is_empty() || !unknown.is_empty();
            let detail = if changed {
                written(action, &replies, expected)
            } else {
                format!("already so: {expected}")
            };
            return Ok(Outcome {
                changed,
                calls: made,
                detail,
            });
        };
        let wait_secs = retry_policy().server_error_wait_secs(attempt);
        pause.warn(
            "A write failed without saying whether GitHub acted on it; reading the target \
             again before retrying",
            &[
                ("call", described.clone()),
                ("error", error.to_string()),
                ("wait_secs", wait_secs.to_string()),
            ],
        );
        pause.sleep_secs(wait_secs);
        let answer = match error.status() {
            Some(status) => format!("answered {status}"),
            None => error.to_string(),
        };
        unknown.push(format!("{described} ({answer})"));
        attempt += 1;
    }
}
