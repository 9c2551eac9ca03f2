//! The organisation's own text as the twin's `Message` nodes: issue and pull
//! request descriptions, their comments and reviews, and commit messages.
//!
//! Each message is linked to its author (`AUTHORED`), its repository
//! (`POSTED_IN`) and every account it mentions (`MENTIONS`), so that the
//! narrative detector can join who said what, to whom, with who holds which
//! access. The text is stored, never logged.

use org_mesh_plugin::props::Props;
use org_mesh_plugin::text::{mentions, truncate};
use org_mesh_plugin::types::{Coverage, Node, NodeRef, PluginError};

use crate::payload::Payload;
use crate::records::{self, BatchBuilder, PROVIDER};

/// Longer text is cut at this many bytes: enough for any pressure a person
/// reads, and it bounds what one delivery can make the twin store.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The kinds of message, as the `kind` property names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Issue,
    PullRequest,
    IssueComment,
    ReviewComment,
    Review,
    Commit,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Issue => "issue",
            Kind::PullRequest => "pull-request",
            Kind::IssueComment => "issue-comment",
            Kind::ReviewComment => "review-comment",
            Kind::Review => "review",
            Kind::Commit => "commit",
        }
    }
}

/// One message, read from a delivery.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub kind: Kind,
    /// GitHub's id of the comment, review, issue or pull request, or the
    /// commit's SHA.
    pub id: String,
    pub repository: &'a str,
    /// `#<number>` for an issue or pull request, `@<branch>` for commits.
    pub thread: String,
    pub author: &'a str,
    pub author_association: Option<&'a str>,
    pub created_at: Option<&'a str>,
    pub url: Option<&'a str>,
    pub title: Option<&'a str>,
    pub body: &'a str,
}

pub fn message_ref(repository: &str, kind: Kind, id: &str) -> NodeRef {
    NodeRef {
        label: "Message".into(),
        key: format!("{PROVIDER}:{repository}/{}/{id}", kind.as_str()),
    }
}

/// Adds the message, its author, its repository and its mentions.
pub fn record(out: &mut BatchBuilder, m: &Message<'_>) {
    let reference = message_ref(m.repository, m.kind, &m.id);
    let props = Props::new()
        .text("kind", m.kind.as_str())
        .text("body", truncate(m.body, MAX_BODY_BYTES))
        .opt_text("title", m.title.map(|t| truncate(t, MAX_BODY_BYTES)))
        .text("thread", format!("{PROVIDER}:{}{}", m.repository, m.thread))
        .opt_text("author_association", m.author_association)
        .opt_text("url", m.url);
    let props = match m.created_at {
        Some(at) => props.timestamp("created_at", at),
        None => props,
    };
    out.node(Node {
        label: reference.label.clone(),
        key: reference.key.clone(),
        properties: props.build(),
    });
    let author = out.account(m.author, records::login_properties(m.author));
    out.edge(records::edge("AUTHORED", author, reference.clone(), vec![]));
    out.edge(records::edge(
        "POSTED_IN",
        reference.clone(),
        records::repo_ref(m.repository),
        vec![],
    ));
    for login in mentions(m.title.unwrap_or_default())
        .into_iter()
        .chain(mentions(m.body))
    {
        if login.eq_ignore_ascii_case(m.author) {
            continue;
        }
        let mentioned = out.account(login, records::login_properties(login));
        out.edge(records::edge(
            "MENTIONS",
            reference.clone(),
            mentioned,
            vec![],
        ));
    }
}

/// Reports a deleted message: the node covered and left out, so the twin
/// marks it as no longer observed.
pub fn deleted(out: &mut BatchBuilder, repository: &str, kind: Kind, id: &str) {
    out.complete(Coverage::Node(message_ref(repository, kind, id)));
}

/// The messages of one delivery of an event that carries text; `None` for
/// an event or action that carries none.
pub fn from_delivery<'a>(
    event: &str,
    p: &'a Payload,
) -> Result<Option<Vec<Message<'a>>>, PluginError> {
    let repository = p.text("repository.full_name")?;
    let one = |kind: Kind, at: &str, number: &str| -> Result<Message<'a>, PluginError> {
        Ok(Message {
            kind,
            id: id(p, &format!("{at}.id"))?,
            repository,
            thread: format!("#{}", id(p, number)?),
            author: p.text(&format!("{at}.user.login"))?,
            author_association: p.opt_text(&format!("{at}.author_association")),
            created_at: p
                .opt_text(&format!("{at}.submitted_at"))
                .or_else(|| p.opt_text(&format!("{at}.created_at"))),
            url: p.opt_text(&format!("{at}.html_url")),
            title: p.opt_text(&format!("{at}.title")),
            body: p.opt_text(&format!("{at}.body")).unwrap_or_default(),
        })
    };
    let messages = match event {
        "issues" => vec![one(Kind::Issue, "issue", "issue.number")?],
        "pull_request" => vec![one(
            Kind::PullRequest,
            "pull_request",
            "pull_request.number",
        )?],
        "issue_comment" => vec![one(Kind::IssueComment, "comment", "issue.number")?],
        "pull_request_review_comment" => {
            vec![one(Kind::ReviewComment, "comment", "pull_request.number")?]
        }
        "pull_request_review" => vec![one(Kind::Review, "review", "pull_request.number")?],
        "push" => commits(p, repository)?,
        _ => return Ok(None),
    };
    Ok(Some(
        messages
            .into_iter()
            .filter(|m| !(m.body.trim().is_empty() && m.title.is_none_or(|t| t.trim().is_empty())))
            .collect(),
    ))
}

fn commits<'a>(p: &'a Payload, repository: &'a str) -> Result<Vec<Message<'a>>, PluginError> {
    let branch = p
        .opt_text("ref")
        .map(|r| r.strip_prefix("refs/heads/").unwrap_or(r))
        .unwrap_or_default();
    let pusher = p.text("sender.login")?;
    let Some(list) = p.at("commits") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| p.error("commits", "is not a list"))?;
    let mut out = Vec::new();
    for (index, commit) in list.iter().enumerate() {
        let field = |name: &str| commit.get(name).and_then(|v| v.as_str());
        let sha = field("id")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| p.error(&format!("commits.{index}.id"), "is missing"))?;
        // A commit's author is named by login only when GitHub could tie
        // its email to an account; otherwise the pusher speaks for it.
        let author = commit
            .get("author")
            .and_then(|a| a.get("username"))
            .and_then(|u| u.as_str())
            .filter(|u| !u.is_empty())
            .unwrap_or(pusher);
        out.push(Message {
            kind: Kind::Commit,
            id: sha.to_string(),
            repository,
            thread: format!("@{branch}"),
            author,
            author_association: None,
            created_at: field("timestamp"),
            url: field("url"),
            title: None,
            body: field("message").unwrap_or_default(),
        });
    }
    Ok(out)
}

/// A numeric id or number at the path, as text.
fn id(p: &Payload, path: &str) -> Result<String, PluginError> {
    match p.at(path) {
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(p.error(path, "is not a number")),
        None => Err(p.error(path, "is missing")),
    }
}

/// A comment as `GET /repos/{repo}/issues/comments` lists it; `None` for
/// one without an id, an author or text. Its issue or pull request number
/// is the last segment of its `issue_url`.
pub fn from_listed_comment<'a>(
    repository: &'a str,
    comment: &'a serde_json::Value,
) -> Option<Message<'a>> {
    let text = |name: &str| comment.get(name).and_then(serde_json::Value::as_str);
    let id = comment.get("id").and_then(serde_json::Value::as_i64)?;
    let number = text("issue_url")?.rsplit('/').next()?;
    let body = text("body").unwrap_or_default();
    if body.trim().is_empty() {
        return None;
    }
    Some(Message {
        kind: Kind::IssueComment,
        id: id.to_string(),
        repository,
        thread: format!("#{number}"),
        author: comment.get("user")?.get("login")?.as_str()?,
        author_association: text("author_association"),
        created_at: text("created_at"),
        url: text("html_url"),
        title: None,
        body,
    })
}

/// The kind and id of the message a `deleted` action removes.
pub fn deleted_target(event: &str, p: &Payload) -> Option<(Kind, String)> {
    let (kind, at) = match event {
        "issue_comment" => (Kind::IssueComment, "comment.id"),
        "pull_request_review_comment" => (Kind::ReviewComment, "comment.id"),
        "issues" => (Kind::Issue, "issue.id"),
        _ => return None,
    };
    id(p, at).ok().map(|id| (kind, id))
}
