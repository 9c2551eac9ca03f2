//! Identity resolution: which person each account belongs to.
//!
//! Identity-provider accounts (Okta, Entra ID, SCIM) define the people: each
//! distinct email is a `Person`. Code-host accounts (GitHub, GitLab) are then
//! linked to at most one person by the strongest evidence that matches. What
//! differs from the twin is applied as one batch, with coverage of each
//! person and link that no longer holds, so it becomes not observed instead
//! of lingering.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use org_mesh_model::{
    Batch, ChangeKind, ChangeSet, Coverage, Edge, Node, NodeRef, Properties, Provenance,
    StoredNode, Timestamp, Value, edge_kind, label,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Links accounts to people once, from a full read of the twin; see
/// [`Resolver::resolve`].
pub async fn resolve(
    store: &dyn GraphStore,
    mappings: &[ExplicitMapping],
    at: Timestamp,
) -> Result<Applied, StoreError> {
    Resolver::new(mappings.to_vec()).resolve(store, at).await
}

/// Links accounts to people, and can keep what it read to resolve only
/// what changed next time.
///
/// A resolver that keeps its index ([`Resolver::keep`]) must be told of
/// every account change through [`Resolver::resolve_changes`]; it is meant
/// for a process that is the twin's only writer. Where other processes
/// write accounts too, their changes never reach the index, so there every
/// resolution must read the whole twin.
#[derive(Debug)]
pub struct Resolver {
    mappings: Vec<ExplicitMapping>,
    keep: bool,
    kept: Option<Index>,
}

impl Resolver {
    pub fn new(mappings: Vec<ExplicitMapping>) -> Self {
        Resolver {
            mappings,
            keep: false,
            kept: None,
        }
    }

    /// Keeps what the next full resolution reads, so that later changes
    /// resolve without reading the twin again. It costs a few small
    /// records per account for as long as the resolver lives.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Links accounts to people and applies the result with source
    /// [`SOURCE`].
    ///
    /// Only observed accounts are linked. People, and the `IDENTITY_OF`
    /// edges of every account with a known provider (observed or not),
    /// that no longer hold become not observed.
    /// Explicit mappings that name no person are returned in
    /// [`Applied::skipped`] and create no person. Running it twice on the
    /// same twin changes nothing the second time.
    ///
    /// Accounts and people are read a page at a time and only what the
    /// rules read is kept of each, so that resolving a twin of hundreds of
    /// thousands of accounts holds a few small records per account rather
    /// than the accounts themselves.
    #[tracing::instrument(name = "org_mesh.store.resolve", skip_all)]
    pub async fn resolve(
        &mut self,
        store: &dyn GraphStore,
        at: Timestamp,
    ) -> Result<Applied, StoreError> {
        self.resolve_in_pages(store, at, PAGE, WRITE).await
    }

    /// Resolves again after `changes` were applied: what a full
    /// [`Resolver::resolve`] would write, found from the changed accounts
    /// alone when the resolver keeps an index. Without one, or when the
    /// changes hold people or identity links another source wrote, it
    /// resolves in full. Changes that touch no account need nothing.
    #[tracing::instrument(name = "org_mesh.store.resolve_changes", skip_all)]
    pub async fn resolve_changes(
        &mut self,
        store: &dyn GraphStore,
        changes: &ChangeSet,
        at: Timestamp,
    ) -> Result<Applied, StoreError> {
        let accounts: BTreeSet<&str> = changes
            .nodes
            .iter()
            .filter(|c| c.kind != ChangeKind::Unchanged && c.node.node.label == label::ACCOUNT)
            .map(|c| c.node.node.key.as_str())
            .collect();
        if accounts.is_empty() {
            return Ok(Applied::default());
        }
        let foreign = changes.nodes.iter().any(|c| {
            c.kind != ChangeKind::Unchanged
                && c.node.node.label == label::PERSON
                && c.node.provenance.source != SOURCE
        }) || changes.edges.iter().any(|c| {
            c.kind != ChangeKind::Unchanged
                && c.edge.edge.kind == edge_kind::IDENTITY_OF
                && c.edge.provenance.source != SOURCE
        });
        // The index is put back only once its changes are written: after a
        // failed write it no longer says what the twin holds.
        match self.kept.take() {
            Some(mut index) if !foreign => {
                let applied = index
                    .update(store, &self.mappings, &accounts, at, WRITE)
                    .await?;
                self.kept = Some(index);
                Ok(applied)
            }
            _ => self.resolve(store, at).await,
        }
    }

    async fn resolve_in_pages(
        &mut self,
        store: &dyn GraphStore,
        at: Timestamp,
        page: usize,
        write: usize,
    ) -> Result<Applied, StoreError> {
        self.kept = None;
        // Stored links first, so that the full read of them is dropped
        // before the accounts are read.
        let stored_links = StoredLinks::read(store).await?;
        let accounts = Accounts::read(store, page).await?;
        let directory = &accounts.directory;
        let (explicit, mut skipped) = explicit_links(&self.mappings, directory);
        let mut wanted: BTreeMap<NodeRef, (&str, Evidence)> = directory
            .accounts
            .iter()
            .map(|(account, idp)| {
                (
                    account_ref(account),
                    (idp.person.as_str(), Evidence::IdpAccount),
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
        let links = wanted.len();
        let kept = if self.keep {
            let links = wanted
                .into_iter()
                .map(|(account, (person, evidence))| (account.key, (person.to_owned(), evidence)))
                .collect();
            Some(Index::new(accounts, explicit, links))
        } else {
            None
        };
        let mut applied = apply_in_parts(store, batch, at, write).await?;
        self.kept = kept;
        tracing::debug!(
            links,
            changed = applied.changes.nodes.len() + applied.changes.edges.len(),
            "Resolved identities"
        );
        skipped.append(&mut applied.skipped);
        applied.skipped = skipped;
        Ok(applied)
    }
}

/// How many accounts or people one read takes.
const PAGE: usize = 1000;

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

/// What a keeping resolver holds between resolutions: what the accounts
/// say, and the people and links resolution last wrote, which are what the
/// twin holds as long as resolution is their only writer.
struct Index {
    directory: Directory,
    /// The observed code-host accounts, by key.
    code_hosts: HashMap<String, CodeHostAccount>,
    /// The code-host accounts each reference is looked up for.
    references: BTreeMap<Reference, BTreeSet<String>>,
    /// The explicit mappings in effect, as [`explicit_links`] gives them.
    explicit: BTreeMap<(String, String), String>,
    /// Account key to the person its link is to, and why.
    links: HashMap<String, (String, Evidence)>,
}

// Sizes only: an index holds every account of the organisation.
impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("idp_accounts", &self.directory.accounts.len())
            .field("people", &self.directory.people.len())
            .field("code_hosts", &self.code_hosts.len())
            .field("links", &self.links.len())
            .finish_non_exhaustive()
    }
}

impl Index {
    fn new(
        accounts: Accounts,
        explicit: BTreeMap<(String, String), String>,
        links: HashMap<String, (String, Evidence)>,
    ) -> Self {
        let mut index = Index {
            directory: accounts.directory,
            code_hosts: HashMap::new(),
            references: BTreeMap::new(),
            explicit,
            links,
        };
        for account in accounts.code_hosts {
            index.add_code_host(account);
        }
        index
    }

    fn add_code_host(&mut self, account: CodeHostAccount) {
        for reference in account.references() {
            self.references
                .entry(reference)
                .or_default()
                .insert(account.key.clone());
        }
        self.code_hosts.insert(account.key.clone(), account);
    }

    fn remove_code_host(&mut self, key: &str) {
        let Some(account) = self.code_hosts.remove(key) else {
            return;
        };
        for reference in account.references() {
            if let Entry::Occupied(mut keys) = self.references.entry(reference) {
                keys.get_mut().remove(key);
                if keys.get().is_empty() {
                    keys.remove();
                }
            }
        }
    }

    /// Reads the current state of the changed `accounts`, and writes what
    /// that changes of people and links: the same as a full resolution
    /// would, found through the index instead of a read of every account.
    async fn update(
        &mut self,
        store: &dyn GraphStore,
        mappings: &[ExplicitMapping],
        accounts: &BTreeSet<&str>,
        at: Timestamp,
        write: usize,
    ) -> Result<Applied, StoreError> {
        // Each person's properties before the first change that touches
        // it, and what the changed IdP accounts said or say now.
        let mut people: BTreeMap<String, Option<Properties>> = BTreeMap::new();
        let mut touched: BTreeSet<Reference> = BTreeSet::new();
        let mut relink: BTreeSet<String> = BTreeSet::new();
        let mut unknown: BTreeSet<&str> = BTreeSet::new();
        for &key in accounts {
            // The twin's state, not the change's: a resolution in full may
            // have run since the change was applied, and the account may
            // have changed again after it.
            let stored = store.node(&account_ref(key)).await?;
            let now = stored.as_ref().map_or(Account::Unknown, Account::of);
            if let Some(old) = self.directory.accounts.get(key) {
                touch(&self.directory, old, &mut people, &mut touched);
            }
            self.directory.remove(key);
            self.remove_code_host(key);
            relink.insert(key.to_owned());
            match now {
                Account::Unknown => {
                    unknown.insert(key);
                }
                Account::Idp(Some(idp)) => {
                    touch(&self.directory, &idp, &mut people, &mut touched);
                    self.directory.add(key.to_owned(), idp);
                }
                Account::CodeHost(Some(host)) => self.add_code_host(host),
                Account::Idp(None) | Account::CodeHost(None) => {}
            }
        }
        let (explicit, skipped) = explicit_links(mappings, &self.directory);
        for (login, _) in self.explicit.iter().chain(&explicit) {
            if self.explicit.get(login) != explicit.get(login) {
                touched.insert(Reference::Login(login.clone()));
            }
        }
        self.explicit = explicit;
        for reference in &touched {
            if let Some(keys) = self.references.get(reference) {
                relink.extend(keys.iter().cloned());
            }
        }

        let mut batch = Batch {
            partial: false,
            ..Batch::default()
        };
        for (person, before) in &people {
            let after = self.directory.person(person);
            if after == *before {
                continue;
            }
            match after {
                Some(props) => batch.nodes.push(person_node(person, props)),
                None => batch
                    .complete
                    .push(Coverage::Node(NodeRef::new(label::PERSON, person.clone()))),
            }
        }
        for key in relink {
            let wanted = match self.directory.accounts.get(&key) {
                Some(idp) => Some((idp.person.as_str(), Evidence::IdpAccount)),
                None => self
                    .code_hosts
                    .get(&key)
                    .and_then(|host| self.directory.link(host, &self.explicit)),
            };
            let before = self.links.get(&key);
            if before.map(|(person, evidence)| (person.as_str(), *evidence)) == wanted {
                continue;
            }
            let account = account_ref(&key);
            if let Some((person, evidence)) = wanted {
                batch.edges.push(identity_edge(&account, person, evidence));
            }
            if let Some((old, _)) = before
                && wanted.is_none_or(|(person, _)| person != old)
                && !unknown.contains(key.as_str())
            {
                batch.complete.push(Coverage::Edge(
                    edge_kind::IDENTITY_OF.to_owned(),
                    account,
                    NodeRef::new(label::PERSON, old.clone()),
                ));
            }
            match wanted {
                Some((person, evidence)) => {
                    let person = person.to_owned();
                    self.links.insert(key, (person, evidence));
                }
                None => {
                    self.links.remove(&key);
                }
            }
        }
        let mut applied = apply_in_parts(store, batch, at, write).await?;
        tracing::debug!(
            accounts = accounts.len(),
            changed = applied.changes.nodes.len() + applied.changes.edges.len(),
            "Resolved the changed accounts' identities"
        );
        let mut skipped = skipped;
        skipped.append(&mut applied.skipped);
        applied.skipped = skipped;
        Ok(applied)
    }
}

/// Notes, before the directory takes in or takes back `account`, the
/// person it defines as it is now, and what code-host accounts may be
/// linked by: the person's email, the user name and the external id.
fn touch(
    directory: &Directory,
    account: &IdpAccount,
    people: &mut BTreeMap<String, Option<Properties>>,
    touched: &mut BTreeSet<Reference>,
) {
    people
        .entry(account.person.clone())
        .or_insert_with(|| directory.person(&account.person));
    touched.insert(Reference::Name(account.person.clone()));
    if !account.user_name.is_empty() {
        touched.insert(Reference::Name(account.user_name.clone()));
    }
    if !account.external_id.is_empty() {
        touched.insert(Reference::ExternalId(account.external_id.clone()));
    }
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
                let key = account.node.key.clone();
                match Account::of(&account) {
                    Account::Unknown => continue,
                    Account::Idp(Some(idp)) => out.directory.add(key.clone(), idp),
                    Account::CodeHost(Some(host)) => out.code_hosts.push(host),
                    Account::Idp(None) | Account::CodeHost(None) => {}
                }
                out.resolvable.insert(key);
            }
        }
        Ok(out)
    }
}

/// What resolution reads of a stored account.
enum Account {
    /// A provider resolution does not know: its links are left alone.
    Unknown,
    /// An identity-provider account, if observed and with an email.
    Idp(Option<IdpAccount>),
    /// A code-host account, if observed.
    CodeHost(Option<CodeHostAccount>),
}

impl Account {
    fn of(account: &StoredNode) -> Account {
        let provider = text(&account.node.properties, "provider");
        let observed = account.provenance.observed();
        if IDP_PROVIDERS.contains(&provider) {
            Account::Idp(observed.then(|| IdpAccount::new(account)).flatten())
        } else if CODE_HOST_PROVIDERS.contains(&provider) {
            Account::CodeHost(observed.then(|| CodeHostAccount::new(account)))
        } else {
            Account::Unknown
        }
    }
}

/// What the rules read of an observed identity-provider account.
#[derive(Debug, Clone)]
struct IdpAccount {
    /// The person's key: the lower-cased email.
    person: String,
    display_name: String,
    external_id: String,
    /// Lower-cased.
    user_name: String,
}

impl IdpAccount {
    /// `None` for an account without an email, which defines no person.
    fn new(account: &StoredNode) -> Option<Self> {
        let props = &account.node.properties;
        let email = text(props, "email");
        (!email.is_empty()).then(|| IdpAccount {
            person: email.to_lowercase(),
            display_name: text(props, "display_name").to_owned(),
            external_id: text(props, "external_id").to_owned(),
            user_name: text(props, "user_name").to_lowercase(),
        })
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

    /// Every value the rules look this account up by: a change to any of
    /// them in the directory can change its link.
    fn references(&self) -> Vec<Reference> {
        let mut out = vec![Reference::Login(self.login.clone())];
        if !self.scim_external_id.is_empty() {
            out.push(Reference::ExternalId(self.scim_external_id.clone()));
        }
        if !self.saml_name_id.is_empty() {
            out.push(Reference::Name(self.saml_name_id.to_lowercase()));
        }
        out.extend(self.verified_emails.iter().cloned().map(Reference::Name));
        out
    }
}

/// A value a code-host account's link is decided by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Reference {
    /// Provider and login, as explicit mappings name them.
    Login((String, String)),
    ExternalId(String),
    /// A lower-cased person email or IdP user name.
    Name(String),
}

/// What the identity-provider accounts say about people.
///
/// Every account's statement is kept, so that one can be taken back.
/// Where two accounts say different things (two display names for one
/// person, one external id on two people), the account with the smaller
/// key wins, whatever order the accounts are read in.
#[derive(Debug, Default)]
struct Directory {
    /// The observed IdP accounts with an email, by key.
    accounts: HashMap<String, IdpAccount>,
    /// Person key to the accounts that define it and the display name
    /// each gives ("" for none).
    people: BTreeMap<String, BTreeMap<String, String>>,
    /// External id to the accounts that give it and their person.
    by_external_id: BTreeMap<String, BTreeMap<String, String>>,
    /// Lower-cased IdP user name to the accounts that give it and their
    /// person.
    by_user_name: BTreeMap<String, BTreeMap<String, String>>,
}

impl Directory {
    /// Takes in an observed IdP account.
    fn add(&mut self, key: String, account: IdpAccount) {
        let person = &account.person;
        self.people
            .entry(person.clone())
            .or_default()
            .insert(key.clone(), account.display_name.clone());
        if !account.external_id.is_empty() {
            self.by_external_id
                .entry(account.external_id.clone())
                .or_default()
                .insert(key.clone(), person.clone());
        }
        if !account.user_name.is_empty() {
            self.by_user_name
                .entry(account.user_name.clone())
                .or_default()
                .insert(key.clone(), person.clone());
        }
        self.accounts.insert(key, account);
    }

    /// Takes back what an account said, returning it.
    fn remove(&mut self, key: &str) -> Option<IdpAccount> {
        let account = self.accounts.remove(key)?;
        forget(&mut self.people, &account.person, key);
        forget(&mut self.by_external_id, &account.external_id, key);
        forget(&mut self.by_user_name, &account.user_name, key);
        Some(account)
    }

    /// A person's properties as resolution writes them, or `None` when no
    /// account defines the person.
    fn person(&self, key: &str) -> Option<Properties> {
        let accounts = self.people.get(key)?;
        let mut props = Properties::from([("email".to_owned(), Value::Text(key.to_owned()))]);
        if let Some(display_name) = accounts.values().find(|name| !name.is_empty()) {
            props.insert("display_name".to_owned(), Value::Text(display_name.clone()));
        }
        Some(props)
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
        if let Some(person) = first(&self.by_external_id, &account.scim_external_id) {
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
        first(&self.by_user_name, &name_id)
    }
}

/// The person the account with the smallest key gives for `value`.
fn first<'d>(said: &'d BTreeMap<String, BTreeMap<String, String>>, value: &str) -> Option<&'d str> {
    said.get(value)?
        .first_key_value()
        .map(|(_, person)| person.as_str())
}

/// Removes `account` from what it said about `value`.
fn forget(said: &mut BTreeMap<String, BTreeMap<String, String>>, value: &str, account: &str) {
    if let Some(accounts) = said.get_mut(value) {
        accounts.remove(account);
        if accounts.is_empty() {
            said.remove(value);
        }
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
            match directory.person(&key) {
                Some(wanted) => {
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
    for key in directory.people.keys() {
        if !stored_keys.contains(key)
            && let Some(wanted) = directory.person(key)
        {
            out.nodes.push(person_node(key, wanted));
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
    use org_mesh_harness::Dice;

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
            Resolver::new(Vec::new())
                .resolve_in_pages(&store, at, page, write)
                .await
                .unwrap_or_else(|e| panic!("page {page}: {e}"));
            let again = Resolver::new(Vec::new())
                .resolve_in_pages(&store, at, page, write)
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

    /// An account drawn from small pools, so that accounts often share an
    /// email, external id, user name or login, and code-host accounts often
    /// refer to what IdP accounts say.
    fn drawn(rng: &mut Dice, key: &str) -> Node {
        let provider = key.split(':').next().unwrap_or_default();
        let mut props = vec![("provider", provider)];
        let mut draw = |name, pool: &[&'static str]| {
            let value = *rng.pick(pool);
            if !value.is_empty() {
                props.push((name, value));
            }
        };
        match provider {
            "okta" | "azure-ad" | "scim" => {
                draw("email", &["", "a@x.io", "A@x.io", "b@x.io", "c@x.io"]);
                draw("display_name", &["", "", "Ann", "Bo"]);
                draw("external_id", &["", "", "e1", "e2"]);
                draw("user_name", &["", "", "ann", "BO", "c@x.io"]);
            }
            "github" | "gitlab" => {
                draw("login", &["one", "two", "three"]);
                draw("scim_external_id", &["", "", "e1", "e2", "e3"]);
                draw("saml_name_id", &["", "", "a@x.io", "Ann", "bo", "zz"]);
                draw(
                    "verified_emails",
                    &["", "", "c@x.io", "zz@x.io,B@x.io", "b@x.io,a@x.io"],
                );
            }
            _ => draw("email", &["a@x.io", "d@x.io"]),
        }
        account(key, &props)
    }

    /// What a keeping resolver holds that a full resolution would build.
    fn held(index: &Index) -> impl PartialEq + std::fmt::Debug {
        let mut hosts: Vec<&String> = index.code_hosts.keys().collect();
        hosts.sort();
        let mut links: Vec<_> = index
            .links
            .iter()
            .map(|(account, (person, evidence))| (account, person, evidence.name()))
            .collect();
        links.sort();
        (
            index.directory.people.clone(),
            index.directory.by_external_id.clone(),
            index.directory.by_user_name.clone(),
            index.references.clone(),
            index.explicit.clone(),
            format!("{hosts:?} {links:?}"),
        )
    }

    #[tokio::test]
    async fn resolving_only_the_changed_accounts_leaves_what_a_full_resolution_would() {
        let keys = [
            "okta:1",
            "okta:2",
            "okta:3",
            "azure-ad:1",
            "scim:1",
            "github:1",
            "github:2",
            "github:3",
            "gitlab:1",
            "gitlab:2",
            "jira:1",
        ];
        let mappings = vec![
            ExplicitMapping {
                provider: "github".into(),
                login: "Two".into(),
                person: "b@x.io".into(),
            },
            ExplicitMapping {
                provider: "gitlab".into(),
                login: "three".into(),
                person: "nobody@x.io".into(),
            },
        ];
        for seed in [7_u64, 1_234_567, 987_654_321] {
            let mut rng = Dice(seed);
            let store = EmbeddedStore::in_memory().unwrap_or_else(|e| panic!("{e}"));
            let mut resolver = Resolver::new(mappings.clone());
            resolver.keep();
            let mut incremental = 0;
            for step in 0..300 {
                let at = Timestamp::now_utc();
                let key = *rng.pick(&keys);
                let batch = if rng.below(5) == 0 {
                    Batch {
                        complete: vec![Coverage::Node(account_ref(key))],
                        ..Batch::default()
                    }
                } else {
                    Batch {
                        nodes: vec![drawn(&mut rng, key)],
                        ..Batch::default()
                    }
                };
                let source = key.split(':').next().unwrap_or_default();
                let applied = store
                    .apply(source, at, batch.clone())
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                incremental += usize::from(resolver.kept.is_some() && !applied.changes.is_quiet());
                resolver
                    .resolve_changes(&store, &applied.changes, at)
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
                let full = resolve(&store, &mappings, at)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(
                    full.changes.is_quiet(),
                    "seed {seed} step {step}: after {batch:?} a full resolution still changed {:?}",
                    full.changes
                );
                let mut fresh = Resolver::new(mappings.clone());
                fresh.keep();
                fresh
                    .resolve(&store, at)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let (Some(kept), Some(built)) = (&resolver.kept, &fresh.kept) else {
                    panic!("seed {seed} step {step}: no index kept");
                };
                assert_eq!(held(kept), held(built), "seed {seed} step {step}");
            }
            assert!(incremental > 150, "seed {seed}: {incremental} incremental");
        }
    }
}
