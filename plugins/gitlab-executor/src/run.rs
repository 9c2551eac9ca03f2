//! Plans and carries out actions against the GitLab REST API v4.
//!
//! `plan` makes no request: it lists the calls from the action alone, a
//! read of the current state first, then the writes, each saying when it
//! is not sent. A user given by username is looked up first, and the calls
//! that need the user's id show `:id` (or `:user_id`) where the id found
//! goes, since the plan cannot know it without asking GitLab.
//!
//! `execute` reads before it writes and writes only what is missing, so
//! running an action twice changes GitLab once. It sends the planned
//! writes or fewer, with one exception: when a branch is unprotected to be
//! protected again at stricter levels and protecting it again fails, the
//! levels it had are restored at once rather than leaving it unprotected.

use serde_json::Value as Json;

use org_mesh_plugin::executor::{ActionPlan, Outcome, PlannedCall};
use org_mesh_plugin::rest::{Client, RestError, Transport, encode_segment};
use org_mesh_plugin::types::PluginError;

use crate::actions::{Action, Source, User};
use crate::protection::{self, Current, Decision, Level};

fn call(method: &str, url: String, body: Option<String>, effect: String) -> PlannedCall {
    PlannedCall {
        method: method.to_string(),
        url,
        body,
        effect,
    }
}

fn lookup_path(username: &str) -> String {
    format!("/users?username={}", encode_segment(username))
}

fn source_path(source: &Source) -> String {
    format!("/{}s/{}", source.kind(), encode_segment(source.id()))
}

fn member_path(source: &Source, user_id: &str) -> String {
    format!("{}/members/{user_id}", source_path(source))
}

fn protections_path(project: &str) -> String {
    format!("/projects/{}/protected_branches", encode_segment(project))
}

fn protection_path(project: &str, branch: &str) -> String {
    format!("{}/{}", protections_path(project), encode_segment(branch))
}

/// The user's id as a path segment, or GitLab's placeholder for it when
/// only the username is known.
fn id_segment(user: &User, placeholder: &str) -> String {
    match user {
        User::Id(id) => id.to_string(),
        User::Username(_) => placeholder.to_string(),
    }
}

fn lookup_call<T: Transport>(api: &Client<T>, username: &str) -> PlannedCall {
    call(
        "GET",
        api.url(&lookup_path(username)),
        None,
        format!("finds the id and state of the user {username}; changes nothing"),
    )
}

fn found_as(user: &User, placeholder: &str) -> String {
    match user {
        User::Id(_) => String::new(),
        User::Username(name) => format!(" ({placeholder} is the id found for {name})"),
    }
}

/// The state an action leaves its target in, for people and for the
/// host's verification.
fn expected(action: &Action) -> String {
    match action {
        Action::BlockUser { user } => format!("{} is blocked", user.describe()),
        Action::RemoveMember { source, user } => format!(
            "{} is not a direct member of {} {}",
            user.describe(),
            source.kind(),
            source.id()
        ),
        Action::ProtectBranch {
            project,
            branch,
            push,
            merge,
        } => format!(
            "{branch} in {project} is protected: at most {} may push and at most {} may merge",
            push.describe(),
            merge.describe()
        ),
    }
}

/// The calls an action leads to, as planned from its parameters.
fn planned<T: Transport>(api: &Client<T>, action: &Action) -> Vec<PlannedCall> {
    match action {
        Action::BlockUser { user } => {
            let who = user.describe();
            let id = id_segment(user, ":id");
            let mut calls = Vec::new();
            match user {
                User::Username(name) => calls.push(lookup_call(api, name)),
                User::Id(_) => calls.push(call(
                    "GET",
                    api.url(&format!("/users/{id}")),
                    None,
                    format!("reads the state of {who}; changes nothing"),
                )),
            }
            calls.push(call(
                "POST",
                api.url(&format!("/users/{id}/block")),
                None,
                format!(
                    "blocks {who}{}: they can no longer sign in or use their tokens, and keep \
                     their data; not sent when already blocked",
                    found_as(user, ":id")
                ),
            ));
            calls
        }
        Action::RemoveMember { source, user } => {
            let who = user.describe();
            let id = id_segment(user, ":user_id");
            let (kind, name) = (source.kind(), source.id());
            let mut calls = Vec::new();
            if let User::Username(username) = user {
                calls.push(lookup_call(api, username));
            }
            calls.push(call(
                "GET",
                api.url(&member_path(source, &id)),
                None,
                format!("reads whether {who} is a direct member of {kind} {name}; changes nothing"),
            ));
            let cascade = match source {
                Source::Group(_) => ", and from its subgroups and projects (GitLab's default)",
                Source::Project(_) => "",
            };
            calls.push(call(
                "DELETE",
                api.url(&member_path(source, &id)),
                None,
                format!(
                    "removes {who}{} from {kind} {name}{cascade}; not sent when not a direct \
                     member",
                    found_as(user, ":user_id")
                ),
            ));
            calls
        }
        Action::ProtectBranch {
            project,
            branch,
            push,
            merge,
        } => {
            let url = api.url(&protection_path(project, branch));
            vec![
                call(
                    "GET",
                    url.clone(),
                    None,
                    format!("reads the protection of {branch} in {project}; changes nothing"),
                ),
                call(
                    "DELETE",
                    url,
                    None,
                    format!(
                        "unprotects {branch} in {project} to protect it again at once, since only \
                         GitLab Premium raises levels in place; sent only when it is protected at \
                         looser levels (if protecting it again fails, the levels read are \
                         restored)"
                    ),
                ),
                call(
                    "POST",
                    api.url(&protections_path(project)),
                    Some(protection::protect_body(branch, *push, *merge, false)),
                    format!(
                        "protects {branch} in {project}: {} may push, {} may merge, nobody may \
                         force push; not sent when already at least this strict",
                        push.describe(),
                        merge.describe()
                    ),
                ),
            ]
        }
    }
}

pub fn plan<T: Transport>(api: &Client<T>, action: &Action) -> ActionPlan {
    ActionPlan {
        calls: planned(api, action),
        expected: expected(action),
    }
}

pub fn execute<T: Transport>(api: &Client<T>, action: &Action) -> Result<Outcome, PluginError> {
    let expected = expected(action);
    match action {
        Action::BlockUser { user } => block_user(api, user, expected),
        Action::RemoveMember { source, user } => remove_member(api, source, user, expected),
        Action::ProtectBranch {
            project,
            branch,
            push,
            merge,
        } => protect_branch(api, project, branch, *push, *merge, expected),
    }
}

fn outcome(changed: bool, calls: Vec<PlannedCall>, expected: String) -> Outcome {
    let detail = if changed {
        expected
    } else {
        format!("already so: {expected}")
    };
    Outcome {
        changed,
        calls,
        detail,
    }
}

/// A failed call as the host should see it, saying what was being done.
/// A 404 is spelled out, since GitLab also answers it for what the token
/// may not see.
fn failure(error: RestError, doing: &str, forbidden_hint: &str) -> PluginError {
    if let RestError::Forbidden { .. } = error {
        return PluginError::Forbidden(format!("{doing}: {error}{forbidden_hint}"));
    }
    if error.status() == Some(404) {
        return PluginError::Upstream(format!(
            "{doing}: GitLab answered 404 ({}): it does not exist, or the token cannot see it",
            error.message().unwrap_or("not found")
        ));
    }
    match PluginError::from(error) {
        PluginError::Upstream(m) => PluginError::Upstream(format!("{doing}: {m}")),
        PluginError::Denied(m) => PluginError::Denied(format!("{doing}: {m}")),
        PluginError::Internal(m) => PluginError::Internal(format!("{doing}: {m}")),
        other => other,
    }
}

/// Whether a 404 is about the group or project itself rather than about
/// what was asked of it: GitLab names the missing container in its message
/// (`404 Group Not Found`), and says only `404 Not found` for a missing
/// membership or protection.
fn container_missing(error: &RestError) -> bool {
    error.status() == Some(404)
        && error.message().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("group not found") || m.contains("project not found")
        })
}

/// A user's id and state, looked up by username.
fn lookup<T: Transport>(
    api: &Client<T>,
    username: &str,
    made: &mut Vec<PlannedCall>,
) -> Result<(i64, Option<String>), PluginError> {
    let read = lookup_call(api, username);
    let doing = format!("looking up the GitLab user {username}");
    let users: Vec<Json> = api
        .get_json(&read.url)
        .map_err(|e| failure(e, &doing, ""))?;
    made.push(read);
    // GitLab matches usernames without regard to case.
    let user = users
        .iter()
        .find(|u| {
            u.get("username")
                .and_then(Json::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(username))
        })
        .ok_or_else(|| {
            PluginError::Upstream(format!("no GitLab user has the username {username}"))
        })?;
    let id = user
        .get("id")
        .and_then(Json::as_i64)
        .ok_or_else(|| PluginError::Upstream(format!("{doing}: the answer has no numeric id")))?;
    let state = user.get("state").and_then(Json::as_str).map(str::to_string);
    Ok((id, state))
}

/// Every state that keeps the user from signing in and from Git and the
/// API counts as done: `blocked`; `ldap_blocked`, which GitLab refuses to
/// touch through the API; `banned`, a block that also hides the user's
/// content; and `blocked_pending_approval`, a sign-up no administrator has
/// approved, which GitLab treats as blocked.
fn is_blocked(state: Option<&str>) -> bool {
    matches!(
        state,
        Some("blocked" | "ldap_blocked" | "banned" | "blocked_pending_approval")
    )
}

const NEEDS_ADMIN: &str = " (blocking a user needs an administrator's token with the api scope)";

fn block_user<T: Transport>(
    api: &Client<T>,
    user: &User,
    expected: String,
) -> Result<Outcome, PluginError> {
    let who = user.describe();
    let mut made = Vec::new();
    let (id, state) = match user {
        User::Username(name) => lookup(api, name, &mut made)?,
        User::Id(id) => {
            let url = api.url(&format!("/users/{id}"));
            let doc: Json = api
                .get_json(&url)
                .map_err(|e| failure(e, &format!("reading {who}"), NEEDS_ADMIN))?;
            made.push(call("GET", url, None, format!("reads the state of {who}")));
            (
                *id,
                doc.get("state").and_then(Json::as_str).map(str::to_string),
            )
        }
    };
    if is_blocked(state.as_deref()) {
        return Ok(outcome(false, made, expected));
    }
    let url = api.url(&format!("/users/{id}/block"));
    let reply = api
        .send("POST", &url, None)
        .map_err(|e| failure(e, &format!("blocking {who}"), NEEDS_ADMIN))?;
    made.push(call("POST", url, None, format!("blocks {who} (user {id})")));
    // Older GitLab answers `false` with a 201 when the block did not take.
    if String::from_utf8_lossy(&reply.body).trim() == "false" {
        return Err(PluginError::Upstream(format!(
            "blocking {who}: GitLab answered false, so the user was not blocked"
        )));
    }
    Ok(outcome(true, made, expected))
}

fn remove_member<T: Transport>(
    api: &Client<T>,
    source: &Source,
    user: &User,
    expected: String,
) -> Result<Outcome, PluginError> {
    let who = user.describe();
    let (kind, name) = (source.kind(), source.id());
    let mut made = Vec::new();
    let id = match user {
        User::Id(id) => *id,
        User::Username(username) => lookup(api, username, &mut made)?.0,
    };
    let url = api.url(&member_path(source, &id.to_string()));
    let hint = " (removing a member needs the Owner role on a group or Maintainer on a project)";
    let doing = format!("reading the membership of {who} in {kind} {name}");
    match api.get_json::<Json>(&url) {
        Ok(_) => {}
        Err(e) if e.status() == Some(404) && !container_missing(&e) => {
            made.push(call(
                "GET",
                url,
                None,
                format!("{who} is not a direct member"),
            ));
            return Ok(outcome(false, made, expected));
        }
        Err(e) => return Err(failure(e, &doing, hint)),
    }
    made.push(call(
        "GET",
        url.clone(),
        None,
        format!("{who} is a direct member"),
    ));
    let removed = match api.send("DELETE", &url, None) {
        Ok(_) => true,
        // Gone between the read and the removal: nothing left to do.
        Err(e) if e.status() == Some(404) && !container_missing(&e) => false,
        Err(e) => {
            return Err(failure(
                e,
                &format!("removing {who} from {kind} {name}"),
                hint,
            ));
        }
    };
    made.push(call(
        "DELETE",
        url,
        None,
        format!("removes {who} (user {id}) from {kind} {name}"),
    ));
    Ok(outcome(removed, made, expected))
}

fn protect_branch<T: Transport>(
    api: &Client<T>,
    project: &str,
    branch: &str,
    push: Level,
    merge: Level,
    expected: String,
) -> Result<Outcome, PluginError> {
    let hint = " (protecting a branch needs the Maintainer role on the project)";
    let url = api.url(&protection_path(project, branch));
    let doing = format!("reading the protection of {branch} in {project}");
    let current = match api.get_json::<Json>(&url) {
        Ok(doc) => Some(
            Current::from_json(&doc).map_err(|e| PluginError::Upstream(format!("{doing}: {e}")))?,
        ),
        Err(e) if e.status() == Some(404) && !container_missing(&e) => None,
        Err(e) => return Err(failure(e, &doing, hint)),
    };
    let mut made = vec![call(
        "GET",
        url.clone(),
        None,
        "reads the current protection".into(),
    )];
    let decision = protection::decide(current.as_ref(), push, merge)
        .map_err(|e| PluginError::Upstream(format!("{doing}: {e}")))?;
    let previous = match decision {
        Decision::AlreadyStrict => return Ok(outcome(false, made, expected)),
        Decision::Refuse(why) => {
            return Err(PluginError::InvalidInput(format!(
                "not changing the protection of {branch} in {project}: {why}"
            )));
        }
        Decision::Protect => None,
        Decision::Recreate(previous) => {
            match api.send("DELETE", &url, None) {
                Ok(_) => {}
                // Unprotected meanwhile by someone else: protect it below.
                Err(e) if e.status() == Some(404) && !container_missing(&e) => {}
                Err(e) => {
                    return Err(failure(
                        e,
                        &format!("unprotecting {branch} in {project}"),
                        hint,
                    ));
                }
            }
            made.push(call(
                "DELETE",
                url,
                None,
                format!(
                    "unprotects {branch} (it let {} push and {} merge)",
                    previous.push.describe(),
                    previous.merge.describe()
                ),
            ));
            Some(previous)
        }
    };
    let create = api.url(&protections_path(project));
    let body = protection::protect_body(branch, push, merge, false);
    let protected = api.send("POST", &create, Some(&body));
    made.push(call(
        "POST",
        create.clone(),
        Some(body),
        format!(
            "protects {branch}: {} may push, {} may merge",
            push.describe(),
            merge.describe()
        ),
    ));
    let Err(error) = protected else {
        return Ok(outcome(true, made, expected));
    };
    let error = failure(error, &format!("protecting {branch} in {project}"), hint);
    let Some(previous) = previous else {
        return Err(error);
    };
    let restore = protection::protect_body(
        branch,
        previous.push,
        previous.merge,
        previous.allow_force_push,
    );
    let restored = api.send("POST", &create, Some(&restore));
    let what = match restored {
        Ok(_) => format!(
            "the previous protection was restored ({} may push, {} may merge)",
            previous.push.describe(),
            previous.merge.describe()
        ),
        Err(e) => format!(
            "restoring the previous protection failed too ({e}): {branch} in {project} is NOT \
             PROTECTED now; protect it by hand"
        ),
    };
    Err(match error {
        PluginError::Forbidden(m) => PluginError::Forbidden(format!("{m}; {what}")),
        PluginError::Upstream(m) => PluginError::Upstream(format!("{m}; {what}")),
        PluginError::Internal(m) => PluginError::Internal(format!("{m}; {what}")),
        PluginError::Denied(m) => PluginError::Denied(format!("{m}; {what}")),
        // A rate limit or other case without text: say both in one.
        other => PluginError::Upstream(format!(
            "protecting {branch} in {project}: {other:?}; {what}"
        )),
    })
}
