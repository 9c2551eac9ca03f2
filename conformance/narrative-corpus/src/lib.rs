//! The labelled corpus for narrative-risk detectors: conversations on GitHub
//! in which a group of accounts pushes a maintainer towards handing over
//! access or cutting corners (campaigns), next to conversations that look
//! alike but are legitimate (benign hard negatives).
//!
//! The committed scenarios live in `conformance/narrative` ([`corpus_dir`]);
//! [`load_dir`] reads and validates them, [`generate`] makes any number of
//! further seeded ones, and [`to_records`] turns a scenario into the node and
//! edge changes the GitHub connector would hand a detector.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod generate;
mod records;
mod webhooks;

pub use generate::generate;
pub use records::{Records, message_key, thread_key, to_records};
pub use webhooks::load_webhook_examples;

/// One conversation (or several, across threads and repositories) with its
/// label and what a detector is expected to find in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub label: Label,
    /// The public incident the scenario follows and which of its facts are
    /// kept; generated scenarios name their generator and seed.
    pub modelled_on: String,
    pub accounts: Vec<Account>,
    pub maintainers: Vec<String>,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Campaign,
    Benign,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub login: String,
    /// RFC 3339; absent when the account's age is unknown, which a detector
    /// must treat as neither fresh nor established.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(rename = "type")]
    pub kind: AccountKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountKind {
    User,
    Bot,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "User",
            AccountKind::Bot => "Bot",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Unique within the scenario; also the last part of the message's key.
    pub id: String,
    /// `owner/name`.
    pub repository: String,
    pub kind: MessageKind,
    pub thread: Thread,
    pub author: String,
    pub author_association: Association,
    /// RFC 3339 with its offset.
    pub at: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageKind {
    Issue,
    PullRequest,
    IssueComment,
    ReviewComment,
    Review,
    Commit,
}

impl MessageKind {
    pub const ALL: [MessageKind; 6] = [
        MessageKind::Issue,
        MessageKind::PullRequest,
        MessageKind::IssueComment,
        MessageKind::ReviewComment,
        MessageKind::Review,
        MessageKind::Commit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Issue => "issue",
            MessageKind::PullRequest => "pull-request",
            MessageKind::IssueComment => "issue-comment",
            MessageKind::ReviewComment => "review-comment",
            MessageKind::Review => "review",
            MessageKind::Commit => "commit",
        }
    }
}

/// An issue or pull request number, or for a commit the branch it was
/// pushed to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Thread {
    Number(u64),
    Branch(String),
}

impl fmt::Display for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Thread::Number(n) => write!(f, "{n}"),
            Thread::Branch(b) => f.write_str(b),
        }
    }
}

/// GitHub's `author_association`, plus `FIRST_TIMER` which GitHub reports
/// for someone whose first contribution anywhere this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Association {
    None,
    FirstTimer,
    FirstTimeContributor,
    Contributor,
    Collaborator,
    Member,
    Owner,
}

impl Association {
    pub fn as_str(self) -> &'static str {
        match self {
            Association::None => "NONE",
            Association::FirstTimer => "FIRST_TIMER",
            Association::FirstTimeContributor => "FIRST_TIME_CONTRIBUTOR",
            Association::Contributor => "CONTRIBUTOR",
            Association::Collaborator => "COLLABORATOR",
            Association::Member => "MEMBER",
            Association::Owner => "OWNER",
        }
    }
}

/// A permission on a repository that an account received during the
/// scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub account: String,
    pub repository: String,
    pub role: Role,
    pub at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Triage => "triage",
            Role::Write => "write",
            Role::Maintain => "maintain",
            Role::Admin => "admin",
        }
    }
}

/// What a detector should conclude. For a campaign, `participants` are the
/// accounts that took part in it and `beneficiaries` those who gain (or were
/// pushed to gain) access. For a benign scenario both are empty and
/// `signals` lists what is legitimately present (a burst during an outage,
/// near-duplicates from a bot) and must not on its own raise a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub campaign: bool,
    #[serde(default)]
    pub participants: Vec<String>,
    #[serde(default)]
    pub signals: Vec<Signal>,
    #[serde(default)]
    pub beneficiaries: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signal {
    /// Several messages say the same thing in slightly different words.
    NearDuplicate,
    /// Authors whose accounts are days or weeks old.
    FreshAccount,
    /// Authors whose accounts were created close together.
    Cohort,
    /// Far more messages in a short time than the repository's baseline.
    Burst,
    /// Urgency, blame or deadlines aimed at a maintainer.
    Pressure,
    /// An ask for access, a new maintainer, a credential or a weaker check.
    PrivilegeAsk,
    /// Several accounts address the same maintainer across threads.
    Convergence,
    /// Access actually granted to a beneficiary after the pressure.
    PrivilegeGrant,
}

/// A scenario file that cannot be used, naming the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {field}: {message}", path.display())]
    Parse {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{}: {field}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

impl Error {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Read { path, .. } | Error::Parse { path, .. } | Error::Invalid { path, .. } => {
                path
            }
        }
    }

    /// The field the error is about, as a path such as `messages[3].author`.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Read { .. } => None,
            Error::Parse { field, .. } | Error::Invalid { field, .. } => Some(field),
        }
    }
}

/// A validation failure without a file: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// `conformance/narrative` in this checkout.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../narrative")
}

/// Reads and validates one scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let scenario: Scenario =
        serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            field: field_path(e.path()),
            message: e.into_inner().to_string(),
        })?;
    validate(&scenario).map_err(|e| Error::Invalid {
        path: path.to_path_buf(),
        field: e.field,
        message: e.message,
    })?;
    // The name is how results are reported; the file name is how people find
    // the scenario. Keeping them equal keeps both lookups trivial.
    if path.file_stem().and_then(|s| s.to_str()) != Some(scenario.name.as_str()) {
        return Err(Error::Invalid {
            path: path.to_path_buf(),
            field: "name".into(),
            message: format!("{:?} differs from the file name", scenario.name),
        });
    }
    Ok(scenario)
}

/// The root of a document is `.` to serde_path_to_error; `(root)` reads
/// better in a message.
fn field_path(path: &serde_path_to_error::Path) -> String {
    let s = path.to_string();
    if s == "." { "(root)".into() } else { s }
}

/// Every `*.json` scenario directly in `dir`, in file-name order.
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<Scenario>, Error> {
    let dir = dir.as_ref();
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            paths.push(path);
        }
    }
    paths.sort();
    paths.iter().map(|p| load_file(p)).collect()
}

/// Parses an RFC 3339 time; the offset is required.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn check_time(field: String, s: &str) -> Result<OffsetDateTime, Invalid> {
    parse_time(s).ok_or_else(|| invalid(field, format!("{s:?} is not an RFC 3339 time")))
}

fn check_repository(field: String, s: &str) -> Result<(), Invalid> {
    let mut parts = s.split('/');
    let ok = matches!((parts.next(), parts.next(), parts.next()),
        (Some(o), Some(n), None) if !o.is_empty() && !n.is_empty());
    if ok {
        Ok(())
    } else {
        Err(invalid(field, format!("{s:?} is not owner/name")))
    }
}

/// Checks that a scenario is self-consistent: every login it uses is one of
/// its accounts, ids are unique, times parse, threads fit their kinds and
/// the expectation fits the label.
pub fn validate(s: &Scenario) -> Result<(), Invalid> {
    if s.name.trim().is_empty() {
        return Err(invalid("name", "empty"));
    }
    let mut logins = BTreeSet::new();
    for (i, a) in s.accounts.iter().enumerate() {
        if a.login.trim().is_empty() {
            return Err(invalid(format!("accounts[{i}].login"), "empty"));
        }
        if !logins.insert(a.login.as_str()) {
            return Err(invalid(
                format!("accounts[{i}].login"),
                format!("{:?} appears twice", a.login),
            ));
        }
        if let Some(t) = &a.created_at {
            check_time(format!("accounts[{i}].created_at"), t)?;
        }
    }
    let known = |field: String, login: &str| -> Result<(), Invalid> {
        if logins.contains(login) {
            Ok(())
        } else {
            Err(invalid(field, format!("{login:?} is not in accounts")))
        }
    };
    if s.maintainers.is_empty() {
        return Err(invalid("maintainers", "empty"));
    }
    for (i, m) in s.maintainers.iter().enumerate() {
        known(format!("maintainers[{i}]"), m)?;
    }
    if s.messages.is_empty() {
        return Err(invalid("messages", "empty"));
    }
    let mut ids = BTreeSet::new();
    for (i, m) in s.messages.iter().enumerate() {
        let f = |name: &str| format!("messages[{i}].{name}");
        if m.id.trim().is_empty() || m.id.contains(['/', '#', '@', ' ']) {
            return Err(invalid(
                f("id"),
                format!("{:?} is empty or has / # @ or a space", m.id),
            ));
        }
        if !ids.insert(m.id.as_str()) {
            return Err(invalid(f("id"), format!("{:?} appears twice", m.id)));
        }
        check_repository(f("repository"), &m.repository)?;
        match (&m.thread, m.kind) {
            (Thread::Branch(b), MessageKind::Commit) if !b.trim().is_empty() => {}
            (Thread::Number(n), k) if k != MessageKind::Commit && *n > 0 => {}
            (t, k) => {
                return Err(invalid(
                    f("thread"),
                    format!(
                        "{t} does not fit a {}: commits need a branch name, the rest a number above 0",
                        k.as_str()
                    ),
                ));
            }
        }
        known(f("author"), &m.author)?;
        check_time(f("at"), &m.at)?;
        if m.body.trim().is_empty() {
            return Err(invalid(f("body"), "empty"));
        }
        for (j, login) in m.mentions.iter().enumerate() {
            known(format!("messages[{i}].mentions[{j}]"), login)?;
        }
    }
    // The twin holds one permission edge per account and repository, and a
    // maintainer already holds admin on every repository of the scenario.
    let mut granted_pairs = BTreeSet::new();
    for (i, g) in s.grants.iter().enumerate() {
        known(format!("grants[{i}].account"), &g.account)?;
        if s.maintainers.contains(&g.account) {
            return Err(invalid(
                format!("grants[{i}].account"),
                format!("{:?} is a maintainer and already holds admin", g.account),
            ));
        }
        check_repository(format!("grants[{i}].repository"), &g.repository)?;
        if !granted_pairs.insert((g.account.as_str(), g.repository.as_str())) {
            return Err(invalid(
                format!("grants[{i}]"),
                "a second grant for the same account and repository",
            ));
        }
        check_time(format!("grants[{i}].at"), &g.at)?;
    }
    let e = &s.expect;
    for (i, p) in e.participants.iter().enumerate() {
        known(format!("expect.participants[{i}]"), p)?;
    }
    for (i, b) in e.beneficiaries.iter().enumerate() {
        known(format!("expect.beneficiaries[{i}]"), b)?;
    }
    match (s.label, e.campaign) {
        (Label::Campaign, true) => {
            if e.participants.is_empty() {
                return Err(invalid(
                    "expect.participants",
                    "a campaign needs participants",
                ));
            }
            if e.signals.is_empty() {
                return Err(invalid("expect.signals", "a campaign needs signals"));
            }
        }
        (Label::Benign, false) => {
            if !e.participants.is_empty() || !e.beneficiaries.is_empty() {
                return Err(invalid(
                    "expect.participants",
                    "a benign scenario has no participants or beneficiaries",
                ));
            }
        }
        _ => {
            return Err(invalid("expect.campaign", "contradicts label"));
        }
    }
    let granted: BTreeSet<&str> = s.grants.iter().map(|g| g.account.as_str()).collect();
    if e.signals.contains(&Signal::PrivilegeGrant)
        && !e.beneficiaries.iter().any(|b| granted.contains(b.as_str()))
    {
        return Err(invalid(
            "expect.signals",
            "privilege-grant needs a grant to one of the beneficiaries",
        ));
    }
    let mut seen = BTreeMap::new();
    for (i, sig) in e.signals.iter().enumerate() {
        if seen.insert(*sig, i).is_some() {
            return Err(invalid(format!("expect.signals[{i}]"), "appears twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
