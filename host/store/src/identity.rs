//! Identity resolution: which person each account belongs to.
//!
//! Identity-provider accounts (Okta, Entra ID, SCIM) define the people: each
//! distinct email is a `Person`. Code-host accounts (GitHub, GitLab) are then
//! linked to at most one person by the strongest evidence that matches. What
//! differs from the twin is applied as one batch, with coverage of each
//! person and link that no longer holds, so it becomes not observed instead
//! of lingering.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use org_mesh_model::{
    Batch, Coverage, Edge, Node, NodeRef, Properties, Provenance, StoredNode, Timestamp, Value,
    edge_kind, label,
};
use serde::Deserialize;

use crate::{Applied, GraphStore, NodePages, Skipped, StoreError};

/// The source name of everything identity resolution writes.
pub const SOURCE: &str = "identity-resolution";

const IDP_PROVIDERS: [&str; 3] = ["okta", "azure-ad", "scim"];
const CODE_HOST_PROVIDERS: [&str; 2] = ["github", "gitlab"];

/// An operator's statement that a code-host login belongs to a person, for
/// accounts no automatic rule can link.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplicitMapping {
    /// `github` or `gitlab`.
    pub provider: String,
    pub login: String,
    /// The person's email.
    pub person: String,
}

/// Why an account was linked, strongest first.
#[derive(Debug, Clone, Copy)]
enum Evidence {
    IdpAccount,
    ExplicitMapping,
    ScimExternalId,
    SamlIdentity,
    VerifiedEmail,
}

impl Evidence {
    fn name(self) -> &'static str {
        match self {
            Evidence::IdpAccount => "idp-account",
            Evidence::ExplicitMapping => "explicit-mapping",
            Evidence::ScimExternalId => "scim-external-id",
            Evidence::SamlIdentity => "saml-identity",
            Evidence::VerifiedEmail => "verified-email",
        }
    }

    fn confidence(self) -> f64 {
        match self {
            Evidence::IdpAccount | Evidence::ExplicitMapping => 1.0,
            Evidence::ScimExternalId => 0.95,
            Evidence::SamlIdentity => 0.9,
            Evidence::VerifiedEmail => 0.8,
        }
    }
}

/// Links accounts to people and applies the result with source
/// [`SOURCE`].
///
/// Only observed accounts are linked. People, and the `IDENTITY_OF` edges
/// of every account with a known provider (observed or not), that no
/// longer hold become not observed.
/// Explicit mappings that name no person are returned in
/// [`Applied::skipped`] and create no person. Running it twice on the same
/// twin changes nothing the second time.
///
/// Accounts and people are read a page at a time and only what the rules
/// read is kept of each, so that resolving a twin of hundreds of thousands
/// of accounts holds a few small records per account rather than the
/// accounts themselves.
#[tracing::instrument(name = "org_mesh.store.resolve", skip_all)]
pub async fn resolve(
    store: &dyn GraphStore,
    mappings: &[ExplicitMapping],
    at: Timestamp,
) -> Result<Applied, StoreError> {
    resolve_in_pages(store, mappings, at, PAGE, WRITE).await
}

/// How many accounts or people one read takes.
const PAGE: usize = 1000;

async fn resolve_in_pages(
    store: &dyn GraphStore,
    mappings: &[ExplicitMapping],
    at: Timestamp,
    page: usize,
    write: usize,
) -> Result<Applied, StoreError> {
    // Stored links first, so that the full read of them is dropped before
    // the accounts are read.
    let stored_links = StoredLinks::read(store).await?;
    let accounts = Accounts::read(store, page).await?;
    let directory = &accounts.directory;
    let (explicit, mut skipped) = explicit_links(mappings, directory);
    let mut wanted: BTreeMap<NodeRef, (&str, Evidence)> = directory
        .idp_links
        .iter()
        .map(|(account, person)| {
            (
                account_ref(account),
                (person.as_str(), Evidence::IdpAccount),
            )
        })
        .collect();
    for account in &accounts.code_hosts {
        if let Some(link) = directory.link(account, &explicit) {
            wanted.insert(account_ref(&account.key), link);
        }
    }
    let mut batch = people_differences(store, directory, page).await?;
    stored_links.differences(&wanted, &accounts.resolvable, &mut batch);
    let mut applied = apply_in_parts(store, batch, at, write).await?;
    tracing::debug!(
        people = directory.people.len(),
        links = wanted.len(),
        changed = applied.changes.nodes.len() + applied.changes.edges.len(),
        "Resolved identities"
    );
    skipped.append(&mut applied.skipped);
    applied.skipped = skipped;
    Ok(applied)
}

/// How many records one write of resolution's changes takes at most.
const WRITE: usize = 10_000;

/// Applies `batch` as writes of at most `write` records, people before
/// the links that need them and coverage last, so that the first
/// resolution of a large twin (every person and link new) holds one part's
/// records and pending pages at a time rather than all of them. A reader
/// can see some parts before the others; a resolution stopped between two
/// writes is completed by the next one, since each resolution writes
/// whatever still differs.
async fn apply_in_parts(
    store: &dyn GraphStore,
    batch: Batch,
    at: Timestamp,
    write: usize,
) -> Result<Applied, StoreError> {
    let write = write.max(1);
    let mut applied = Applied::default();
    let mut nodes = batch.nodes.into_iter().peekable();
    let mut edges = batch.edges.into_iter().peekable();
    let mut complete = batch.complete.into_iter().peekable();
    while nodes.peek().is_some() || edges.peek().is_some() || complete.peek().is_some() {
        let mut part = Batch {
            partial: false,
            ..Batch::default()
        };
        part.nodes.extend(nodes.by_ref().take(write));
        let room = write - part.nodes.len();
        part.edges.extend(edges.by_ref().take(room));
        let room = room - part.edges.len();
        part.complete.extend(complete.by_ref().take(room));
        let mut written = store.apply(SOURCE, at, part).await?;
        applied.changes.extend(written.changes);
        applied.skipped.append(&mut written.skipped);
    }
    Ok(applied)
}

fn account_ref(key: &str) -> NodeRef {
    NodeRef::new(label::ACCOUNT, key)
}

/// What resolution keeps of the twin's accounts.
#[derive(Debug, Default)]
struct Accounts {
    directory: Directory,
    /// The observed code-host accounts.
    code_hosts: Vec<CodeHostAccount>,
    /// The keys of the accounts whose links resolution decides: every
    /// account with a known provider. Accounts that are no longer observed
    /// are included, so their links lapse with them.
    resolvable: BTreeSet<String>,
}

impl Accounts {
    async fn read(store: &dyn GraphStore, page: usize) -> Result<Accounts, StoreError> {
        let mut out = Accounts::default();
        let mut pages = NodePages::new(label::ACCOUNT, page);
        while let Some(accounts) = pages.next(store).await? {
            for account in accounts {
                let props = &account.node.properties;
                let provider = text(props, "provider");
                let idp = IDP_PROVIDERS.contains(&provider);
                let code_host = CODE_HOST_PROVIDERS.contains(&provider);
                if idp || code_host {
                    out.resolvable.insert(account.node.key.clone());
                }
                if !account.provenance.observed() {
                    continue;
                }
                if idp {
                    out.directory.add_idp_account(&account);
                } else if code_host {
                    out.code_hosts.push(CodeHostAccount::new(&account));
                }
            }
        }
        Ok(out)
    }
}

/// What the rules read of an observed code-host account.
#[derive(Debug)]
struct CodeHostAccount {
    key: String,
    /// Provider and login, lower-cased, as explicit mappings name them.
    login: (String, String),
    scim_external_id: String,
    saml_name_id: String,
    /// Lower-cased, in order, without repeats.
    verified_emails: Vec<String>,
}

impl CodeHostAccount {
    fn new(account: &StoredNode) -> Self {
        let props = &account.node.properties;
        let verified_emails = match props.get("verified_emails") {
            Some(Value::Texts(emails)) => emails
                .iter()
                .map(|e| e.to_lowercase())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        CodeHostAccount {
            key: account.node.key.clone(),
            login: (
                text(props, "provider").to_lowercase(),
                text(props, "login").to_lowercase(),
            ),
            scim_external_id: text(props, "scim_external_id").to_owned(),
            saml_name_id: text(props, "saml_name_id").to_owned(),
            verified_emails,
        }
    }
}

/// What the identity-provider accounts say about people.
///
/// Where two accounts say different things (two display names for one
/// person, one external id on two people), the account with the smaller
/// key wins, whatever order the accounts are read in.
#[derive(Debug, Default)]
struct Directory {
    /// Person key (the lower-cased email) to its display name and the
    /// account that gave it.
    people: BTreeMap<String, Option<(String, String)>>,
    /// IdP account key and the person it defines.
    idp_links: Vec<(String, String)>,
    /// External id to the person and the account that says so.
    by_external_id: BTreeMap<String, (String, String)>,
    /// Lower-cased IdP user name to the person and the account that says
    /// so.
    by_user_name: BTreeMap<String, (String, String)>,
}

impl Directory {
    /// Takes in an observed IdP account.
    fn add_idp_account(&mut self, account: &StoredNode) {
        let props = &account.node.properties;
        let email = text(props, "email");
        if email.is_empty() {
            return;
        }
        let key = &account.node.key;
        let person = email.to_lowercase();
        let display_name = text(props, "display_name");
        let named = self.people.entry(person.clone()).or_default();
        if !display_name.is_empty() {
            earliest(named, key, display_name);
        }
        let external_id = text(props, "external_id");
        if !external_id.is_empty() {
            let said = self
                .by_external_id
                .entry(external_id.to_owned())
                .or_insert_with(|| (key.clone(), person.clone()));
            if key < &said.0 {
                *said = (key.clone(), person.clone());
            }
        }
        let user_name = text(props, "user_name");
        if !user_name.is_empty() {
            let said = self
                .by_user_name
                .entry(user_name.to_lowercase())
                .or_insert_with(|| (key.clone(), person.clone()));
            if key < &said.0 {
                *said = (key.clone(), person.clone());
            }
        }
        self.idp_links.push((key.clone(), person));
    }

    /// A person's properties as resolution writes them.
    fn person(key: &str, named: &Option<(String, String)>) -> Properties {
        let mut props = Properties::from([("email".to_owned(), Value::Text(key.to_owned()))]);
        if let Some((_, display_name)) = named {
            props.insert("display_name".to_owned(), Value::Text(display_name.clone()));
        }
        props
    }

    /// The person a code-host account belongs to, by the first rule that
    /// matches.
    fn link<'d>(
        &'d self,
        account: &CodeHostAccount,
        explicit: &'d BTreeMap<(String, String), String>,
    ) -> Option<(&'d str, Evidence)> {
        if let Some(person) = explicit.get(&account.login) {
            return Some((person, Evidence::ExplicitMapping));
        }
        if let Some((_, person)) = self.by_external_id.get(&account.scim_external_id) {
            return Some((person, Evidence::ScimExternalId));
        }
        if let Some(person) = self.saml_person(&account.saml_name_id) {
            return Some((person, Evidence::SamlIdentity));
        }
        account
            .verified_emails
            .iter()
            .find_map(|email| self.people.get_key_value(email))
            .map(|(key, _)| (key.as_str(), Evidence::VerifiedEmail))
    }

    fn saml_person(&self, name_id: &str) -> Option<&str> {
        if name_id.is_empty() {
            return None;
        }
        let name_id = name_id.to_lowercase();
        if let Some((key, _)) = self.people.get_key_value(&name_id) {
            return Some(key);
        }
        self.by_user_name
            .get(&name_id)
            .map(|(_, person)| person.as_str())
    }
}

/// Keeps `value` in `slot` if `account` comes before the account that gave
/// the value there now.
fn earliest(slot: &mut Option<(String, String)>, account: &str, value: &str) {
    if slot.as_ref().is_none_or(|(by, _)| account < by.as_str()) {
        *slot = Some((account.to_owned(), value.to_owned()));
    }
}

/// Whether a stored record must be written again to be what resolution
/// wants: it is not resolution's own observed record, or its properties
/// differ.
fn rewrite(ours: bool, stored: &Properties, wanted: &Properties) -> bool {
    !ours || stored != wanted
}

/// Whether a stored record is resolution's and observed: one that must be
/// marked not observed when resolution no longer wants it.
fn ours(provenance: &Provenance) -> bool {
    provenance.observed() && provenance.source == SOURCE
}

/// The people that are new, changed or observed again, and coverage of
/// exactly those resolution wrote that no longer hold, reading the stored
/// people a page at a time. An unchanged person is not written again and
/// keeps the `last_seen` of the resolution that last changed it.
async fn people_differences(
    store: &dyn GraphStore,
    directory: &Directory,
    page: usize,
) -> Result<Batch, StoreError> {
    let mut out = Batch {
        partial: false,
        ..Batch::default()
    };
    let mut stored_keys = BTreeSet::new();
    let mut pages = NodePages::new(label::PERSON, page);
    while let Some(people) = pages.next(store).await? {
        for stored in people {
            let key = stored.node.key;
            match directory.people.get(&key) {
                Some(named) => {
                    let wanted = Directory::person(&key, named);
                    if rewrite(ours(&stored.provenance), &stored.node.properties, &wanted) {
                        out.nodes.push(person_node(&key, wanted));
                    }
                    stored_keys.insert(key);
                }
                None if ours(&stored.provenance) => out
                    .complete
                    .push(Coverage::Node(NodeRef::new(label::PERSON, key))),
                None => {}
            }
        }
    }
    for (key, named) in &directory.people {
        if !stored_keys.contains(key) {
            out.nodes
                .push(person_node(key, Directory::person(key, named)));
        }
    }
    Ok(out)
}

fn person_node(key: &str, properties: Properties) -> Node {
    Node {
        label: label::PERSON.to_owned(),
        key: key.to_owned(),
        properties,
    }
}

/// What resolution needs of each stored `IDENTITY_OF` edge.
#[derive(Debug)]
struct StoredLink {
    properties: Properties,
    ours: bool,
}

/// The stored identity links, by account and person.
#[derive(Debug)]
struct StoredLinks(BTreeMap<(NodeRef, NodeRef), StoredLink>);

impl StoredLinks {
    async fn read(store: &dyn GraphStore) -> Result<StoredLinks, StoreError> {
        let links = store
            .edges(edge_kind::IDENTITY_OF)
            .await?
            .into_iter()
            .map(|e| {
                let link = StoredLink {
                    ours: ours(&e.provenance),
                    properties: e.edge.properties,
                };
                ((e.edge.from, e.edge.to), link)
            })
            .collect();
        Ok(StoredLinks(links))
    }

    /// Adds to `out` the links that are new, changed or observed again, and
    /// coverage of exactly those resolution wrote, from an account it
    /// decides for, that no longer hold.
    fn differences(
        &self,
        wanted: &BTreeMap<NodeRef, (&str, Evidence)>,
        resolvable: &BTreeSet<String>,
        out: &mut Batch,
    ) {
        for (account, (person, evidence)) in wanted {
            let edge = identity_edge(account, person, *evidence);
            let stored = self.0.get(&(edge.from.clone(), edge.to.clone()));
            if stored.is_none_or(|s| rewrite(s.ours, &s.properties, &edge.properties)) {
                out.edges.push(edge);
            }
        }
        for ((from, to), stored) in &self.0 {
            let decided = from.label == label::ACCOUNT && resolvable.contains(&from.key);
            let still = wanted
                .get(from)
                .is_some_and(|(person, _)| to.label == label::PERSON && to.key == *person);
            if stored.ours && decided && !still {
                out.complete.push(Coverage::Edge(
                    edge_kind::IDENTITY_OF.to_owned(),
                    from.clone(),
                    to.clone(),
                ));
            }
        }
    }
}

/// The explicit mappings that name a known person, keyed by lower-cased
/// provider and login, and a skip for each of the others.
fn explicit_links(
    mappings: &[ExplicitMapping],
    directory: &Directory,
) -> (BTreeMap<(String, String), String>, Vec<Skipped>) {
    let mut links = BTreeMap::new();
    let mut skipped = Vec::new();
    for mapping in mappings {
        let record = format!(
            "explicit mapping {}/{} -> {}",
            mapping.provider, mapping.login, mapping.person
        );
        let person = mapping.person.to_lowercase();
        let account = (
            mapping.provider.to_lowercase(),
            mapping.login.to_lowercase(),
        );
        let reason = if !directory.people.contains_key(&person) {
            format!("no person has the email {person}")
        } else if let Entry::Vacant(slot) = links.entry(account) {
            slot.insert(person);
            continue;
        } else {
            "an earlier mapping for the same account comes first".to_owned()
        };
        tracing::warn!(%record, %reason, "Ignoring an explicit identity mapping");
        skipped.push(Skipped { record, reason });
    }
    (links, skipped)
}

fn identity_edge(account: &NodeRef, person: &str, evidence: Evidence) -> Edge {
    Edge {
        kind: edge_kind::IDENTITY_OF.to_owned(),
        from: account.clone(),
        to: NodeRef::new(label::PERSON, person),
        properties: Properties::from([
            (
                "evidence".to_owned(),
                Value::Text(evidence.name().to_owned()),
            ),
            ("confidence".to_owned(), Value::Float(evidence.confidence())),
        ]),
    }
}

/// A text property, or "" when absent or not text.
fn text<'p>(props: &'p Properties, name: &str) -> &'p str {
    props.get(name).and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmbeddedStore;

    fn account(key: &str, props: &[(&str, &str)]) -> Node {
        let mut properties: Properties = props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::Text((*v).to_owned())))
            .collect();
        if let Some(Value::Text(emails)) = properties.remove("verified_emails") {
            let emails = emails.split(',').map(str::to_owned).collect();
            properties.insert("verified_emails".to_owned(), Value::Texts(emails));
        }
        Node {
            label: label::ACCOUNT.to_owned(),
            key: key.to_owned(),
            properties,
        }
    }

    /// IdP accounts that disagree (one email with two display names, one
    /// external id and one user name on two people) and code-host accounts
    /// that each rule links.
    fn accounts() -> Vec<Node> {
        vec![
            account(
                "okta:b",
                &[
                    ("provider", "okta"),
                    ("email", "Ada@Example.com"),
                    ("display_name", "Ada B"),
                    ("external_id", "e-1"),
                    ("user_name", "ada"),
                ],
            ),
            account(
                "okta:a",
                &[
                    ("provider", "okta"),
                    ("email", "ada@example.com"),
                    ("display_name", "Ada A"),
                ],
            ),
            account(
                "okta:c",
                &[
                    ("provider", "okta"),
                    ("email", "cy@example.com"),
                    ("external_id", "e-1"),
                    ("user_name", "ADA"),
                ],
            ),
            account(
                "okta:d",
                &[("provider", "okta"), ("email", "dee@example.com")],
            ),
            account(
                "github:1",
                &[
                    ("provider", "github"),
                    ("login", "one"),
                    ("scim_external_id", "e-1"),
                ],
            ),
            account(
                "github:2",
                &[
                    ("provider", "github"),
                    ("login", "two"),
                    ("saml_name_id", "Ada"),
                ],
            ),
            account(
                "gitlab:3",
                &[
                    ("provider", "gitlab"),
                    ("login", "three"),
                    ("verified_emails", "zed@example.com,DEE@example.com"),
                ],
            ),
            account("github:4", &[("provider", "github"), ("login", "four")]),
        ]
    }

    /// The people and links the twin holds, as (key, properties).
    async fn resolved(store: &EmbeddedStore) -> Vec<(String, Properties)> {
        let mut out: Vec<(String, Properties)> = store
            .nodes(label::PERSON)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.node.key, p.node.properties))
            .collect();
        let links = store
            .edges(edge_kind::IDENTITY_OF)
            .await
            .unwrap_or_default();
        out.extend(links.into_iter().map(|l| {
            let key = format!("{} -> {}", l.edge.from.key, l.edge.to.key);
            (key, l.edge.properties)
        }));
        out
    }

    #[tokio::test]
    async fn every_page_and_write_size_resolves_alike_and_the_smaller_key_wins_ties() {
        let mut results = Vec::new();
        for (page, write) in [(1, 1), (2, 3), (3, 2), (PAGE, WRITE)] {
            let store = EmbeddedStore::in_memory().unwrap_or_else(|e| panic!("{e}"));
            let batch = Batch {
                nodes: accounts(),
                ..Batch::default()
            };
            let at = Timestamp::now_utc();
            store
                .apply("okta", at, batch)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            resolve_in_pages(&store, &[], at, page, write)
                .await
                .unwrap_or_else(|e| panic!("page {page}: {e}"));
            let again = resolve_in_pages(&store, &[], at, page, write)
                .await
                .unwrap_or_else(|e| panic!("page {page}: {e}"));
            assert!(again.changes.nodes.is_empty() && again.changes.edges.is_empty());
            results.push(resolved(&store).await);
        }
        let first = &results[0];
        for other in &results[1..] {
            assert_eq!(other, first);
        }
        let find = |key: &str| {
            first
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, props)| props.clone())
                .unwrap_or_else(|| panic!("{key} not resolved: {first:?}"))
        };
        let person = find("ada@example.com");
        assert_eq!(
            person.get("display_name"),
            Some(&Value::Text("Ada A".into()))
        );
        let evidence = |key: &str| find(key).get("evidence").cloned();
        let text = |s: &str| Some(Value::Text(s.to_owned()));
        // okta:b, not okta:c, says who e-1 and the user name "ada" are.
        assert_eq!(
            evidence("github:1 -> ada@example.com"),
            text("scim-external-id")
        );
        assert_eq!(
            evidence("github:2 -> ada@example.com"),
            text("saml-identity")
        );
        assert_eq!(
            evidence("gitlab:3 -> dee@example.com"),
            text("verified-email")
        );
        assert!(!first.iter().any(|(k, _)| k.starts_with("github:4 ->")));
        assert_eq!(first.len(), 3 + 4 + 3);
    }
}
