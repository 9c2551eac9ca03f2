//! What people write on GitLab as the twin's `Message` nodes: notes on
//! issues, merge requests, commits and snippets, issue and merge request
//! descriptions, and commit messages. Each is linked to its author
//! (`AUTHORED`), its project (`POSTED_IN`) and the accounts it mentions
//! (`MENTIONS`), as the GitHub connector does, so one narrative detector
//! reads both. The text is stored, never logged.

use org_mesh_plugin::text::{gitlab_mentions, truncate};
use org_mesh_plugin::types::{NodeRef, PluginError};

use crate::hooks::{Hook, Out};
use crate::records::{self, PROVIDER, account_ref, project_ref};

/// Longer text is cut at this many bytes, as the GitHub connector does.
const MAX_BODY_BYTES: usize = 16 * 1024;

struct Message<'a> {
    kind: &'static str,
    id: String,
    project: &'a str,
    /// `#<iid>` for an issue, `!<iid>` for a merge request, `@<ref>` for a
    /// commit or a branch, `$<id>` for a snippet.
    thread: String,
    author: &'a str,
    created_at: Option<String>,
    url: Option<&'a str>,
    title: Option<&'a str>,
    body: &'a str,
}

/// The message of a note, issue or merge request delivery. Issues and merge
/// requests are recorded when opened, since later deliveries name whoever
/// changed them rather than their author.
pub fn record(hook: &Hook, name: &str, author: &str, out: &mut Out) -> Result<(), PluginError> {
    let project = hook.text("project.path_with_namespace")?;
    let id = |path: &str| {
        hook.opt_id(path)
            .map(|n| n.to_string())
            .ok_or_else(|| hook.error(path, "is missing or not a number"))
    };
    let message = match name {
        "note" => {
            let (kind, thread) = match hook.opt_text("object_attributes.noteable_type") {
                Some("Issue") => ("issue-comment", format!("#{}", id("issue.iid")?)),
                Some("MergeRequest") => (
                    "merge-request-comment",
                    format!("!{}", id("merge_request.iid")?),
                ),
                Some("Commit") => ("commit-comment", format!("@{}", hook.text("commit.id")?)),
                Some("Snippet") => ("snippet-comment", format!("${}", id("snippet.id")?)),
                _ => return Ok(()),
            };
            Message {
                kind,
                id: id("object_attributes.id")?,
                project,
                thread,
                author,
                created_at: hook
                    .opt_text("object_attributes.created_at")
                    .and_then(rfc3339),
                url: hook.opt_text("object_attributes.url"),
                title: None,
                body: hook.opt_text("object_attributes.note").unwrap_or_default(),
            }
        }
        "issue" | "merge_request" => {
            if !matches!(
                hook.opt_text("object_attributes.action"),
                None | Some("open")
            ) {
                return Ok(());
            }
            let (kind, sigil) = if name == "issue" {
                ("issue", '#')
            } else {
                ("merge-request", '!')
            };
            Message {
                kind,
                id: id("object_attributes.id")?,
                project,
                thread: format!("{sigil}{}", id("object_attributes.iid")?),
                author,
                created_at: hook
                    .opt_text("object_attributes.created_at")
                    .and_then(rfc3339),
                url: hook.opt_text("object_attributes.url"),
                title: hook.opt_text("object_attributes.title"),
                body: hook
                    .opt_text("object_attributes.description")
                    .unwrap_or_default(),
            }
        }
        _ => return Ok(()),
    };
    add(hook, out, &message);
    Ok(())
}

/// Each commit message of a push, spoken for by the pusher: GitLab names a
/// commit's author only by name and email, which key no account.
pub fn commits(hook: &Hook, pusher: &str, out: &mut Out) -> Result<(), PluginError> {
    let project = hook.text("project.path_with_namespace")?;
    let branch = hook
        .opt_text("ref")
        .map(|r| r.strip_prefix("refs/heads/").unwrap_or(r))
        .unwrap_or_default();
    let Some(list) = hook.at("commits") else {
        return Ok(());
    };
    let list = list
        .as_array()
        .ok_or_else(|| hook.error("commits", "is not a list"))?;
    for (index, commit) in list.iter().enumerate() {
        let field = |name: &str| commit.get(name).and_then(|v| v.as_str());
        let sha = field("id")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| hook.error(&format!("commits.{index}.id"), "is missing"))?;
        add(
            hook,
            out,
            &Message {
                kind: "commit",
                id: sha.to_string(),
                project,
                thread: format!("@{branch}"),
                author: pusher,
                created_at: field("timestamp").and_then(rfc3339),
                url: field("url"),
                title: None,
                body: field("message").unwrap_or_default(),
            },
        );
    }
    Ok(())
}

fn add(hook: &Hook, out: &mut Out, m: &Message<'_>) {
    if m.body.trim().is_empty() && m.title.is_none_or(|t| t.trim().is_empty()) {
        return;
    }
    let reference = NodeRef {
        label: "Message".into(),
        key: format!("{PROVIDER}:{}/{}/{}", m.project, m.kind, m.id),
    };
    let mut props = records::base(hook.instance)
        .text("kind", m.kind)
        .text("body", truncate(m.body, MAX_BODY_BYTES))
        .opt_text("title", m.title.map(|t| truncate(t, MAX_BODY_BYTES)))
        .text("thread", format!("{PROVIDER}:{}{}", m.project, m.thread))
        .opt_text("url", m.url);
    if let Some(at) = &m.created_at {
        props = props.timestamp("created_at", at.clone());
    }
    out.nodes
        .push(records::node(reference.clone(), props.build()));
    out.edges.push(records::edge(
        "AUTHORED",
        account_ref(m.author),
        reference.clone(),
        None,
    ));
    out.edges.push(records::edge(
        "POSTED_IN",
        reference.clone(),
        project_ref(m.project),
        None,
    ));
    let text = format!("{}\n{}", m.title.unwrap_or_default(), m.body);
    for username in gitlab_mentions(&text) {
        if username.eq_ignore_ascii_case(m.author) {
            continue;
        }
        out.nodes.push(records::node(
            account_ref(username),
            records::base(hook.instance)
                .text("username", username)
                .build(),
        ));
        out.edges.push(records::edge(
            "MENTIONS",
            reference.clone(),
            account_ref(username),
            None,
        ));
    }
}

/// GitLab writes times as RFC 3339 in newer hooks and as
/// `2015-05-17 17:06:40 UTC` or `2015-05-17 17:06:40 +0200` in older ones;
/// the twin takes RFC 3339 only. An unreadable time is left out rather
/// than guessed.
fn rfc3339(text: &str) -> Option<String> {
    let text = text.trim();
    if text.as_bytes().get(10) == Some(&b'T') {
        return Some(text.to_string());
    }
    let (date, rest) = text.split_once(' ')?;
    let (clock, zone) = rest.split_once(' ')?;
    let well_formed = date.len() == 10 && clock.len() == 8;
    let zone = match zone {
        "UTC" | "Z" => "Z".to_string(),
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            format!("{}:{}", &z[..3], &z[3..])
        }
        _ => return None,
    };
    well_formed.then(|| format!("{date}T{clock}{zone}"))
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn older_gitlab_times_become_rfc3339() {
        assert_eq!(
            rfc3339("2015-05-17 17:06:40 UTC").as_deref(),
            Some("2015-05-17T17:06:40Z")
        );
        assert_eq!(
            rfc3339("2015-05-17 17:06:40 +0200").as_deref(),
            Some("2015-05-17T17:06:40+02:00")
        );
        assert_eq!(
            rfc3339("2011-12-12T14:27:31+02:00").as_deref(),
            Some("2011-12-12T14:27:31+02:00")
        );
        assert_eq!(rfc3339("yesterday"), None);
        assert_eq!(rfc3339("2015-05-17 17:06 UTC"), None);
    }
}
