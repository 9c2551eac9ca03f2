//! A scenario as the twin holds it once the GitHub connector has reported
//! it: accounts, repositories and messages as nodes; authorship, placement,
//! mentions and permissions as edges; each with the provenance of a first
//! observation.

use std::collections::BTreeSet;

use org_mesh_plugin::detector::{ChangeKind, EdgeChange, NodeChange};
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{Edge, Node, NodeRef, Provenance};
use time::Duration;
use time::format_description::well_known::Rfc3339;

use crate::{Message, MessageKind, Scenario, Thread, parse_time};

/// The connector instance every record is attributed to.
pub const SOURCE: &str = "github";

/// How long before a scenario's first event its maintainers are recorded as
/// having held admin: long enough that no rolling window a detector uses
/// reaches back to it, so maintainership reads as established.
const MAINTAINER_TENURE: Duration = Duration::days(365);

/// The node and edge changes of one scenario, in a stable order: accounts,
/// repositories and messages; then per message its authorship, placement and
/// mentions, then the maintainers' and the granted permissions.
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub nodes: Vec<NodeChange>,
    pub edges: Vec<EdgeChange>,
}

fn account_ref(login: &str) -> NodeRef {
    NodeRef {
        label: "Account".into(),
        key: format!("github:{login}"),
    }
}

fn repository_ref(full_name: &str) -> NodeRef {
    NodeRef {
        label: "Repository".into(),
        key: format!("github:{full_name}"),
    }
}

/// The key of a message node: `github:<owner/name>/<kind>/<id>`.
pub fn message_key(m: &Message) -> String {
    format!("github:{}/{}/{}", m.repository, m.kind.as_str(), m.id)
}

/// The conversation a message belongs to: `github:<owner/name>#<number>` for
/// issues, pull requests and their comments and reviews,
/// `github:<owner/name>@<branch>` for commits.
pub fn thread_key(m: &Message) -> String {
    match &m.thread {
        Thread::Number(n) => format!("github:{}#{n}", m.repository),
        Thread::Branch(b) => format!("github:{}@{b}", m.repository),
    }
}

fn message_ref(m: &Message) -> NodeRef {
    NodeRef {
        label: "Message".into(),
        key: message_key(m),
    }
}

fn provenance(first_seen: &str) -> Provenance {
    Provenance {
        source: SOURCE.into(),
        first_seen: first_seen.into(),
        last_seen: first_seen.into(),
        not_observed_since: None,
    }
}

fn node(label: &str, key: String, properties: Props, seen: &str) -> NodeChange {
    NodeChange {
        node: Node {
            label: label.into(),
            key,
            properties: properties.build(),
        },
        kind: ChangeKind::Added,
        provenance: provenance(seen),
    }
}

fn edge(kind: &str, from: NodeRef, to: NodeRef, properties: Props, seen: &str) -> EdgeChange {
    EdgeChange {
        edge: Edge {
            kind: kind.into(),
            from,
            to,
            properties: properties.build(),
        },
        kind: ChangeKind::Added,
        provenance: provenance(seen),
    }
}

/// FNV-1a: a stable hash for the made-up numeric parts of URLs, so that the
/// same message always gets the same URL.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// GitHub comment and review ids are ten-digit numbers nowadays.
fn url_number(m: &Message) -> u64 {
    1_000_000_000 + fnv(&[&m.repository, m.kind.as_str(), &m.id]) % 9_000_000_000
}

fn commit_sha(m: &Message) -> String {
    (0..3u8)
        .map(|salt| format!("{:016x}", fnv(&[&m.repository, &m.id, &salt.to_string()])))
        .collect::<String>()[..40]
        .to_string()
}

fn url(m: &Message, pull_threads: &BTreeSet<(&str, u64)>) -> String {
    let base = format!("https://github.com/{}", m.repository);
    let n = match &m.thread {
        Thread::Number(n) => *n,
        Thread::Branch(_) => return format!("{base}/commit/{}", commit_sha(m)),
    };
    let id = url_number(m);
    match m.kind {
        MessageKind::Issue => format!("{base}/issues/{n}"),
        MessageKind::PullRequest => format!("{base}/pull/{n}"),
        // A pull request's conversation comments are issue comments; their
        // URL is the pull request's when the thread is one.
        MessageKind::IssueComment if pull_threads.contains(&(m.repository.as_str(), n)) => {
            format!("{base}/pull/{n}#issuecomment-{id}")
        }
        MessageKind::IssueComment => format!("{base}/issues/{n}#issuecomment-{id}"),
        MessageKind::Review => format!("{base}/pull/{n}#pullrequestreview-{id}"),
        MessageKind::ReviewComment => format!("{base}/pull/{n}#discussion_r{id}"),
        // Only reachable for a scenario that failed validation.
        MessageKind::Commit => format!("{base}/commit/{}", commit_sha(m)),
    }
}

/// Converts a scenario into the twin's records as the GitHub connector
/// reports them. The scenario should have passed [`crate::validate`]; a time
/// that does not parse is carried through as written and ignored when
/// placing the maintainers' tenure.
///
/// Every maintainer holds admin on every repository of the scenario, from a
/// year before its first message or grant.
pub fn to_records(s: &Scenario) -> Records {
    let activity = s
        .messages
        .iter()
        .map(|m| m.at.as_str())
        .chain(s.grants.iter().map(|g| g.at.as_str()));
    let start = activity
        .clone()
        .filter_map(|t| parse_time(t).map(|p| (p, t)))
        .min_by_key(|(p, _)| *p);
    let tenure = start
        .and_then(|(p, _)| (p - MAINTAINER_TENURE).format(&Rfc3339).ok())
        .or_else(|| start.map(|(_, t)| t.to_string()))
        .unwrap_or_default();

    let mut out = Records::default();

    for a in &s.accounts {
        // An account is first seen when it was created or, when that is not
        // known, with its first message; an account that never writes is
        // seen with the scenario's first event.
        let first_message = s
            .messages
            .iter()
            .filter(|m| m.author == a.login)
            .filter_map(|m| parse_time(&m.at).map(|p| (p, m.at.as_str())))
            .min_by_key(|(p, _)| *p)
            .map(|(_, t)| t);
        let seen = a
            .created_at
            .as_deref()
            .or(first_message)
            .or(start.map(|(_, t)| t))
            .unwrap_or_default();
        let mut props = Props::new()
            .text("provider", "github")
            .text("login", a.login.as_str());
        if let Some(created) = &a.created_at {
            props = props.timestamp("created_at", created.as_str());
        }
        props = props.text("type", a.kind.as_str());
        out.nodes
            .push(node("Account", format!("github:{}", a.login), props, seen));
    }

    let repositories: BTreeSet<&str> = s
        .messages
        .iter()
        .map(|m| m.repository.as_str())
        .chain(s.grants.iter().map(|g| g.repository.as_str()))
        .collect();
    for r in &repositories {
        out.nodes.push(node(
            "Repository",
            format!("github:{r}"),
            Props::new().text("full_name", *r),
            &tenure,
        ));
    }

    let pull_threads: BTreeSet<(&str, u64)> = s
        .messages
        .iter()
        .filter(|m| {
            matches!(
                m.kind,
                MessageKind::PullRequest | MessageKind::Review | MessageKind::ReviewComment
            )
        })
        .filter_map(|m| match m.thread {
            Thread::Number(n) => Some((m.repository.as_str(), n)),
            Thread::Branch(_) => None,
        })
        .collect();
    for m in &s.messages {
        let props = Props::new()
            .text("kind", m.kind.as_str())
            .text("body", m.body.as_str())
            .timestamp("created_at", m.at.as_str())
            .text("thread", thread_key(m))
            .text("author_association", m.author_association.as_str())
            .text("url", url(m, &pull_threads));
        out.nodes
            .push(node("Message", message_key(m), props, &m.at));
    }

    for m in &s.messages {
        out.edges.push(edge(
            "AUTHORED",
            account_ref(&m.author),
            message_ref(m),
            Props::new(),
            &m.at,
        ));
        out.edges.push(edge(
            "POSTED_IN",
            message_ref(m),
            repository_ref(&m.repository),
            Props::new(),
            &m.at,
        ));
        // One edge of a kind between two nodes: a login mentioned twice in
        // a message is one mention.
        let mut mentioned = BTreeSet::new();
        for login in &m.mentions {
            if mentioned.insert(login.as_str()) {
                out.edges.push(edge(
                    "MENTIONS",
                    message_ref(m),
                    account_ref(login),
                    Props::new(),
                    &m.at,
                ));
            }
        }
    }

    for login in &s.maintainers {
        for r in &repositories {
            out.edges.push(edge(
                "HAS_PERMISSION",
                account_ref(login),
                repository_ref(r),
                Props::new().text("role", "admin"),
                &tenure,
            ));
        }
    }
    for g in &s.grants {
        out.edges.push(edge(
            "HAS_PERMISSION",
            account_ref(&g.account),
            repository_ref(&g.repository),
            Props::new().text("role", g.role.as_str()),
            &g.at,
        ));
    }
    out
}
