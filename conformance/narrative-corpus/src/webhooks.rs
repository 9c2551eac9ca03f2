//! The real texts extracted from GitHub's published webhook examples
//! (`conformance/narrative/webhooks-examples/comments.json`, written by
//! `extract-webhook-comments.mjs`) as one benign scenario.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::{
    Account, AccountKind, Association, Error, Expect, Label, Message, MessageKind, Scenario,
    Thread, validate,
};

#[derive(Debug, Deserialize)]
struct File {
    package: String,
    version: String,
    records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
struct Record {
    event: String,
    kind: String,
    repository: String,
    thread: Thread,
    author: Option<String>,
    author_association: Option<Association>,
    created_at: String,
    body: String,
}

/// Reads the extracted webhook texts as one benign scenario named
/// `webhooks-examples`. Commit comments are left out: the record model has
/// no message kind for a comment on a commit. A commit message carries no
/// association in a push; it gets the one its author has elsewhere in the
/// same repository, or `NONE`.
pub fn load_webhook_examples(path: &Path) -> Result<Scenario, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let file: File = serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        field: e.path().to_string(),
        message: e.into_inner().to_string(),
    })?;
    let invalid = |field: String, message: String| Error::Invalid {
        path: path.to_path_buf(),
        field,
        message,
    };

    let mut association_in_repo = BTreeMap::new();
    for r in &file.records {
        if let (Some(a), Some(assoc)) = (&r.author, r.author_association) {
            association_in_repo
                .entry((a.clone(), r.repository.clone()))
                .or_insert(assoc);
        }
    }

    let mut accounts: Vec<Account> = Vec::new();
    let mut maintainers: Vec<String> = Vec::new();
    let mut messages = Vec::new();
    for (i, r) in file.records.iter().enumerate() {
        let kind = match r.kind.as_str() {
            "issue" => MessageKind::Issue,
            "pull-request" => MessageKind::PullRequest,
            "issue-comment" | "pull-request-comment" => MessageKind::IssueComment,
            "review" => MessageKind::Review,
            "review-comment" => MessageKind::ReviewComment,
            "commit" => MessageKind::Commit,
            "commit-comment" => continue,
            other => {
                return Err(invalid(
                    format!("records[{i}].kind"),
                    format!("unknown kind {other:?}"),
                ));
            }
        };
        let Some(author) = r.author.clone() else {
            // A commit whose address GitHub could not match to a login has
            // no author in the twin; it cannot be attributed.
            continue;
        };
        let association = r
            .author_association
            .or_else(|| {
                association_in_repo
                    .get(&(author.clone(), r.repository.clone()))
                    .copied()
            })
            .unwrap_or(Association::None);
        if !accounts.iter().any(|a| a.login == author) {
            accounts.push(Account {
                login: author.clone(),
                created_at: None,
                kind: if author.ends_with("[bot]") {
                    AccountKind::Bot
                } else {
                    AccountKind::User
                },
            });
        }
        if association == Association::Owner && !maintainers.contains(&author) {
            maintainers.push(author.clone());
        }
        messages.push(Message {
            id: format!("{}-{i}", r.event.replace('_', "-")),
            repository: r.repository.clone(),
            kind,
            thread: r.thread.clone(),
            author,
            author_association: association,
            at: r.created_at.clone(),
            body: r.body.clone(),
            mentions: Vec::new(),
        });
    }
    let scenario = Scenario {
        name: "webhooks-examples".into(),
        label: Label::Benign,
        modelled_on: format!(
            "real texts from the npm package {} {}, unchanged",
            file.package, file.version
        ),
        accounts,
        maintainers,
        messages,
        grants: Vec::new(),
        expect: Expect {
            campaign: false,
            participants: Vec::new(),
            signals: Vec::new(),
            beneficiaries: Vec::new(),
        },
    };
    validate(&scenario).map_err(|e| invalid(e.field, e.message))?;
    Ok(scenario)
}
