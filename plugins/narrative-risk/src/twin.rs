//! The part of the twin the signals read, taken from a detect request:
//! messages with their authors, repositories and mentions, accounts, and
//! repository permissions with the time they were first seen.

use std::collections::BTreeMap;

use org_mesh_plugin::detector::DetectRequest;
use org_mesh_plugin::props;
use org_mesh_plugin::types::{NodeRef, Properties, Provenance, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the Unix epoch.
pub type Time = i64;

pub const DAY: f64 = 86_400.0;

/// A configured number of days in seconds. Configuration checks that days
/// are positive and finite; a float beyond the range of `i64` saturates.
#[expect(
    clippy::cast_possible_truncation,
    reason = "float-to-int casts saturate, and a second's precision is plenty"
)]
pub fn seconds(days: f64) -> Time {
    (days * DAY) as Time
}

#[derive(Debug, Clone)]
pub struct Message {
    pub reference: NodeRef,
    pub provenance: Provenance,
    pub kind: String,
    pub thread: String,
    pub association: Option<String>,
    pub at: Time,
    /// Title and body together; never logged.
    pub text: String,
    pub url: Option<String>,
    pub author: Option<String>,
    pub repository: Option<String>,
    pub mentions: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub reference: NodeRef,
    pub provenance: Provenance,
    pub login: String,
    pub created_at: Option<Time>,
    pub bot: bool,
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub account: String,
    pub repository: String,
    pub role: String,
    pub since: Time,
    pub provenance: Provenance,
}

impl Grant {
    /// Enough to change what a release contains: GitHub's write, maintain
    /// and admin, GitLab's developer, maintainer and owner.
    pub fn can_write(&self) -> bool {
        matches!(
            self.role.as_str(),
            "write" | "push" | "maintain" | "admin" | "owner" | "developer" | "maintainer"
        )
    }
}

#[derive(Debug, Clone)]
pub struct Repository {
    pub reference: NodeRef,
    pub provenance: Provenance,
    pub default_branch: Option<String>,
}

#[derive(Debug, Default)]
pub struct Twin {
    /// Ordered by time, then key.
    pub messages: Vec<Message>,
    pub accounts: BTreeMap<String, Account>,
    pub repositories: BTreeMap<String, Repository>,
    pub grants: Vec<Grant>,
    /// Each author's message times, ascending.
    by_author: BTreeMap<String, Vec<Time>>,
    /// Per account, when it first could write anywhere, and per repository.
    /// Indexed once: every message asks whether its author and the
    /// accounts it mentions could write when it was written.
    first_write: BTreeMap<String, (Time, BTreeMap<String, Time>)>,
    /// Per author and repository, the time of their first message there.
    first_message: BTreeMap<(String, String), Time>,
    /// Indices into `grants`, by repository.
    grants_on: BTreeMap<String, Vec<usize>>,
}

impl Twin {
    pub fn from_request(req: &DetectRequest) -> Self {
        let mut twin = Twin::default();
        let mut messages: BTreeMap<String, Message> = BTreeMap::new();
        for change in &req.nodes {
            let node = &change.node;
            let reference = NodeRef {
                label: node.label.clone(),
                key: node.key.clone(),
            };
            match node.label.as_str() {
                // A message no longer observed was deleted upstream: it no
                // longer speaks.
                "Message" if change.provenance.not_observed_since.is_none() => {
                    let p = &node.properties;
                    let Some(at) =
                        time_of(p, "created_at").or_else(|| parse(&change.provenance.first_seen))
                    else {
                        continue;
                    };
                    let title = props::get_text(p, "title").unwrap_or_default();
                    let body = props::get_text(p, "body").unwrap_or_default();
                    messages.insert(
                        node.key.clone(),
                        Message {
                            reference,
                            provenance: change.provenance.clone(),
                            kind: props::get_text(p, "kind").unwrap_or("message").into(),
                            thread: props::get_text(p, "thread").unwrap_or(&node.key).into(),
                            association: props::get_text(p, "author_association").map(Into::into),
                            at,
                            text: if title.is_empty() {
                                body.to_string()
                            } else {
                                format!("{title}\n{body}")
                            },
                            url: props::get_text(p, "url").map(Into::into),
                            author: None,
                            repository: None,
                            mentions: Vec::new(),
                        },
                    );
                }
                "Account" => {
                    let p = &node.properties;
                    let login = props::get_text(p, "login")
                        .or_else(|| node.key.split_once(':').map(|(_, l)| l))
                        .unwrap_or(&node.key)
                        .to_string();
                    let bot = props::get_text(p, "type") == Some("Bot") || login.ends_with("[bot]");
                    twin.accounts.insert(
                        node.key.clone(),
                        Account {
                            reference,
                            provenance: change.provenance.clone(),
                            login,
                            created_at: time_of(p, "created_at"),
                            bot,
                        },
                    );
                }
                "Repository" => {
                    twin.repositories.insert(
                        node.key.clone(),
                        Repository {
                            reference,
                            provenance: change.provenance.clone(),
                            default_branch: props::get_text(&node.properties, "default_branch")
                                .map(Into::into),
                        },
                    );
                }
                _ => {}
            }
        }
        for change in &req.edges {
            let edge = &change.edge;
            match edge.kind.as_str() {
                "AUTHORED" => {
                    if let Some(m) = messages.get_mut(&edge.to.key) {
                        m.author = Some(edge.from.key.clone());
                    }
                }
                "POSTED_IN" => {
                    if let Some(m) = messages.get_mut(&edge.from.key) {
                        m.repository = Some(edge.to.key.clone());
                    }
                }
                "MENTIONS" => {
                    if let Some(m) = messages.get_mut(&edge.from.key) {
                        m.mentions.push(edge.to.key.clone());
                    }
                }
                "HAS_PERMISSION" if edge.to.label == "Repository" => {
                    let Some(since) = parse(&change.provenance.first_seen) else {
                        continue;
                    };
                    twin.grants.push(Grant {
                        account: edge.from.key.clone(),
                        repository: edge.to.key.clone(),
                        role: props::get_text(&edge.properties, "role")
                            .unwrap_or_default()
                            .to_string(),
                        since,
                        provenance: change.provenance.clone(),
                    });
                }
                _ => {}
            }
        }
        twin.messages = messages.into_values().collect();
        twin.messages.sort_by(|a, b| {
            a.at.cmp(&b.at)
                .then_with(|| a.reference.key.cmp(&b.reference.key))
        });
        for m in &mut twin.messages {
            m.mentions.sort();
            m.mentions.dedup();
        }
        for m in &twin.messages {
            if let Some(author) = &m.author {
                twin.by_author.entry(author.clone()).or_default().push(m.at);
                if let Some(repo) = &m.repository {
                    twin.first_message
                        .entry((author.clone(), repo.clone()))
                        .or_insert(m.at);
                }
            }
        }
        twin.grants.sort_by(|a, b| {
            a.since
                .cmp(&b.since)
                .then_with(|| a.account.cmp(&b.account))
                .then_with(|| a.repository.cmp(&b.repository))
        });
        for (i, g) in twin.grants.iter().enumerate() {
            twin.grants_on
                .entry(g.repository.clone())
                .or_default()
                .push(i);
            if g.can_write() {
                // Grants are in time order, so the first one seen is the
                // earliest.
                let (anywhere, per_repo) = twin
                    .first_write
                    .entry(g.account.clone())
                    .or_insert((g.since, BTreeMap::new()));
                *anywhere = (*anywhere).min(g.since);
                per_repo.entry(g.repository.clone()).or_insert(g.since);
            }
        }
        twin
    }

    /// The grants on one repository, in time order.
    pub fn grants_on<'a>(&'a self, repository: &str) -> impl Iterator<Item = &'a Grant> + 'a {
        self.grants_on
            .get(repository)
            .into_iter()
            .flatten()
            .map(|i| &self.grants[*i])
    }

    /// When the author first wrote in the repository, if ever.
    pub fn first_message_in(&self, author: &str, repository: &str) -> Option<Time> {
        self.first_message
            .get(&(author.to_string(), repository.to_string()))
            .copied()
    }

    /// How many messages the author wrote before `at`.
    pub fn earlier_messages(&self, author: &str, at: Time) -> usize {
        self.by_author
            .get(author)
            .map_or(0, |times| times.partition_point(|t| *t < at))
    }

    /// Whether the account held write or more on the repository before `at`.
    pub fn could_write(&self, account: &str, repository: &str, at: Time) -> bool {
        self.first_write
            .get(account)
            .and_then(|(_, per_repo)| per_repo.get(repository))
            .is_some_and(|since| *since < at)
    }

    /// Whether the account held write or more on any repository before `at`.
    pub fn could_write_anywhere(&self, account: &str, at: Time) -> bool {
        self.first_write
            .get(account)
            .is_some_and(|(since, _)| *since < at)
    }

    pub fn login<'a>(&'a self, key: &'a str) -> &'a str {
        self.accounts
            .get(key)
            .map(|a| a.login.as_str())
            .or_else(|| key.split_once(':').map(|(_, l)| l))
            .unwrap_or(key)
    }

    pub fn repository_name<'a>(&self, key: &'a str) -> &'a str {
        key.split_once(':').map_or(key, |(_, name)| name)
    }
}

fn time_of(props: &Properties, name: &str) -> Option<Time> {
    match props::get(props, name)? {
        Value::Timestamp(s) | Value::Text(s) => parse(s),
        _ => None,
    }
}

pub fn parse(text: &str) -> Option<Time> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// A time to the nanosecond, for telling apart two observations made in
/// the same second: one batch stamps all its records alike, a later batch
/// a later instant.
pub fn parse_precise(text: &str) -> Option<i128> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp_nanos)
}

/// A day as `YYYY-MM-DD`, for people.
pub fn date(at: Time) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|_| at.to_string())
}

/// A time as RFC 3339, for properties.
pub fn rfc3339(at: Time) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}
