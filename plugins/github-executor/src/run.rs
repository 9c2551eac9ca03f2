//! Plans and carries out actions against the GitHub REST API.
//!
//! `plan` makes no request: it lists the calls from the action alone. For a
//! branch protection that is a read of the current protection, then a PUT
//! whose body comes from the action's parameters. Because the PUT replaces
//! the whole protection, `execute` checks what it read before writing: it
//! writes nothing when the branch already has what the action asks, and
//! refuses, naming the settings, when the planned body would drop or
//! weaken something the branch has now. So `execute` either sends exactly
//! the planned body or sends nothing.

use serde_json::Value as Json;

use org_mesh_plugin::executor::{ActionPlan, Outcome, PlannedCall};
use org_mesh_plugin::rest::{Client, Transport, encode_segment};
use org_mesh_plugin::types::PluginError;

use crate::actions::Action;
use crate::protection::{Protection, Requested};

fn call(method: &str, url: String, body: Option<String>, effect: String) -> PlannedCall {
    PlannedCall {
        method: method.to_string(),
        url,
        body,
        effect,
    }
}

fn repo_path(repository: &str) -> String {
    repository
        .split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

fn protection_path(repository: &str, branch: &str) -> String {
    format!(
        "/repos/{}/branches/{}/protection",
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

/// The calls an action leads to, as planned from its parameters.
struct Steps {
    read: Option<PlannedCall>,
    writes: Vec<PlannedCall>,
    expected: String,
}

fn steps<T: Transport>(api: &Client<T>, action: &Action) -> Steps {
    match action {
        Action::RemoveOrgMember { org, login } => Steps {
            read: None,
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
        read: Some(call(
            "GET",
            api.url(&path),
            None,
            "reads the current protection; changes nothing".into(),
        )),
        writes,
        expected: format!(
            "{branch} in {repository} is protected at least as: {}",
            planned.body.to_json()
        ),
    }
}

/// Reads the branch's protection; none when it has none.
fn current_protection<T: Transport>(
    api: &Client<T>,
    url: &str,
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
        Err(e) => Err(e.into()),
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

pub fn plan<T: Transport>(api: &Client<T>, action: &Action) -> ActionPlan {
    let steps = steps(api, action);
    ActionPlan {
        calls: steps.read.into_iter().chain(steps.writes).collect(),
        expected: steps.expected,
    }
}

pub fn execute<T: Transport>(api: &Client<T>, action: &Action) -> Result<Outcome, PluginError> {
    let steps = steps(api, action);
    let mut made: Vec<PlannedCall> = Vec::new();
    let mut writes = steps.writes;
    if let Some(read) = steps.read {
        let current = current_protection(api, &read.url)?;
        made.push(read);
        if let Action::RestoreBranchProtection { requested, .. } = action {
            writes = needed_writes(writes, current.as_ref(), requested)?;
        }
    }
    let removal = matches!(action, Action::RemoveOrgMember { .. });
    let mut changed = false;
    for write in writes {
        match api.send(&write.method, &write.url, write.body.as_deref()) {
            Ok(_) => changed = true,
            // Removing someone who is no longer there changes nothing.
            Err(e) if removal && e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
        made.push(write);
    }
    let detail = if changed {
        steps.expected
    } else {
        format!("already so: {}", steps.expected)
    };
    Ok(Outcome {
        changed,
        calls: made,
        detail,
    })
}
