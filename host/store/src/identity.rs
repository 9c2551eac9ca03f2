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
    Batch, Coverage, Edge, Node, NodeRef, Properties, Provenance, StoredEdge, StoredNode,
    Timestamp, Value, edge_kind, label,
};
use serde::Deserialize;

use crate::{Applied, GraphStore, Skipped, StoreError};

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
#[tracing::instrument(name = "org_mesh.store.resolve", skip_all)]
pub async fn resolve(
    store: &dyn GraphStore,
    mappings: &[ExplicitMapping],
    at: Timestamp,
) -> Result<Applied, StoreError> {
    let mut accounts = store.nodes(label::ACCOUNT).await?;
    accounts.sort_by(|a, b| a.node.key.cmp(&b.node.key));

    let directory = Directory::from_idp_accounts(&accounts);
    let (explicit, mut skipped) = explicit_links(mappings, &directory);
    let mut batch = directory.batch();
    for account in &accounts {
        let provider = text(&account.node.properties, "provider");
        if !CODE_HOST_PROVIDERS.contains(&provider) {
            continue;
        }
        if let Some((person, evidence)) = directory.link(account, &explicit) {
            batch.edges.push(identity_edge(account, person, evidence));
        }
    }
    let linked = batch.edges.len();
    let batch = differences(store, batch, &accounts).await?;
    let mut applied =
        if batch.nodes.is_empty() && batch.edges.is_empty() && batch.complete.is_empty() {
            Applied::default()
        } else {
            store.apply(SOURCE, at, batch).await?
        };
    tracing::debug!(
        people = directory.people.len(),
        links = linked,
        changed = applied.changes.nodes.len() + applied.changes.edges.len(),
        "Resolved identities"
    );
    skipped.append(&mut applied.skipped);
    applied.skipped = skipped;
    Ok(applied)
}

/// What the identity-provider accounts say about people.
#[derive(Debug, Default)]
struct Directory<'a> {
    /// Person key (the lower-cased email) to its properties.
    people: BTreeMap<String, Properties>,
    /// IdP account and the person it defines.
    idp_links: Vec<(&'a StoredNode, String)>,
    by_external_id: BTreeMap<&'a str, String>,
    /// Lower-cased IdP user name to person key.
    by_user_name: BTreeMap<String, String>,
}

impl<'a> Directory<'a> {
    /// Reads the observed IdP accounts, in key order so that the first
    /// account wins any tie.
    fn from_idp_accounts(accounts: &'a [StoredNode]) -> Self {
        let mut directory = Directory::default();
        for account in accounts.iter().filter(|a| a.provenance.observed()) {
            let props = &account.node.properties;
            if !IDP_PROVIDERS.contains(&text(props, "provider")) {
                continue;
            }
            let email = text(props, "email");
            if email.is_empty() {
                continue;
            }
            let person = email.to_lowercase();
            directory.add_person(&person, props);
            let external_id = text(props, "external_id");
            if !external_id.is_empty() {
                directory
                    .by_external_id
                    .entry(external_id)
                    .or_insert_with(|| person.clone());
            }
            let user_name = text(props, "user_name");
            if !user_name.is_empty() {
                directory
                    .by_user_name
                    .entry(user_name.to_lowercase())
                    .or_insert_with(|| person.clone());
            }
            directory.idp_links.push((account, person));
        }
        directory
    }

    fn add_person(&mut self, person: &str, account: &Properties) {
        let props = self.people.entry(person.to_owned()).or_insert_with(|| {
            Properties::from([("email".to_owned(), Value::Text(person.to_owned()))])
        });
        // The first account with a display name gives it; later ones would
        // make the name flip with sync order.
        let display_name = text(account, "display_name");
        if !display_name.is_empty() && !props.contains_key("display_name") {
            props.insert(
                "display_name".to_owned(),
                Value::Text(display_name.to_owned()),
            );
        }
    }

    /// The people and their IdP links, as a batch to extend.
    fn batch(&self) -> Batch {
        let nodes = self
            .people
            .iter()
            .map(|(key, properties)| Node {
                label: label::PERSON.to_owned(),
                key: key.clone(),
                properties: properties.clone(),
            })
            .collect();
        let edges = self
            .idp_links
            .iter()
            .map(|(account, person)| identity_edge(account, person, Evidence::IdpAccount))
            .collect();
        Batch {
            nodes,
            edges,
            complete: Vec::new(),
            partial: false,
        }
    }

    /// The person a code-host account belongs to, by the first rule that
    /// matches.
    fn link<'d>(
        &'d self,
        account: &StoredNode,
        explicit: &'d BTreeMap<(String, String), String>,
    ) -> Option<(&'d str, Evidence)> {
        if !account.provenance.observed() {
            return None;
        }
        let props = &account.node.properties;
        let provider = text(props, "provider").to_lowercase();
        let login = text(props, "login").to_lowercase();
        if let Some(person) = explicit.get(&(provider, login)) {
            return Some((person, Evidence::ExplicitMapping));
        }
        if let Some(person) = self.by_external_id.get(text(props, "scim_external_id")) {
            return Some((person, Evidence::ScimExternalId));
        }
        if let Some(person) = self.saml_person(text(props, "saml_name_id")) {
            return Some((person, Evidence::SamlIdentity));
        }
        self.verified_email_person(props)
            .map(|person| (person, Evidence::VerifiedEmail))
    }

    fn saml_person(&self, name_id: &str) -> Option<&str> {
        if name_id.is_empty() {
            return None;
        }
        let name_id = name_id.to_lowercase();
        if let Some((key, _)) = self.people.get_key_value(&name_id) {
            return Some(key);
        }
        self.by_user_name.get(&name_id).map(String::as_str)
    }

    fn verified_email_person(&self, props: &Properties) -> Option<&str> {
        let Some(Value::Texts(emails)) = props.get("verified_emails") else {
            return None;
        };
        let emails: BTreeSet<String> = emails.iter().map(|e| e.to_lowercase()).collect();
        emails
            .iter()
            .find_map(|email| self.people.get_key_value(email))
            .map(|(key, _)| key.as_str())
    }
}

/// The part of a whole resolution (people and links, without coverage)
/// that differs from what the twin holds:
/// the people and links that are new, changed or observed again, and
/// coverage of exactly those that no longer hold. Applying it leaves the
/// twin as applying the whole resolution would, without rewriting every
/// person and link that stayed the same, which with a hundred thousand
/// people is nearly all of the work. An unchanged person or link therefore
/// keeps the `last_seen` of the resolution that last changed it.
async fn differences(
    store: &dyn GraphStore,
    whole: Batch,
    accounts: &[StoredNode],
) -> Result<Batch, StoreError> {
    let people: BTreeMap<NodeRef, StoredNode> = store
        .nodes(label::PERSON)
        .await?
        .into_iter()
        .map(|p| (p.node.reference(), p))
        .collect();
    let links: BTreeMap<(NodeRef, NodeRef), StoredEdge> = store
        .edges(edge_kind::IDENTITY_OF)
        .await?
        .into_iter()
        .map(|e| ((e.edge.from.clone(), e.edge.to.clone()), e))
        .collect();
    let differs = |stored: Option<(&Properties, &Provenance)>, wanted: &Properties| {
        stored.is_none_or(|(properties, provenance)| {
            !provenance.observed() || provenance.source != SOURCE || properties != wanted
        })
    };
    let mut out = Batch {
        partial: false,
        ..Batch::default()
    };
    let mut wanted_people = BTreeSet::new();
    for node in whole.nodes {
        let stored = people.get(&node.reference());
        wanted_people.insert(node.reference());
        if differs(
            stored.map(|p| (&p.node.properties, &p.provenance)),
            &node.properties,
        ) {
            out.nodes.push(node);
        }
    }
    let mut wanted_links = BTreeSet::new();
    for edge in whole.edges {
        let at = (edge.from.clone(), edge.to.clone());
        let stored = links.get(&at);
        wanted_links.insert(at);
        if differs(
            stored.map(|e| (&e.edge.properties, &e.provenance)),
            &edge.properties,
        ) {
            out.edges.push(edge);
        }
    }
    let gone = |provenance: &Provenance| provenance.observed() && provenance.source == SOURCE;
    for (person, stored) in &people {
        if gone(&stored.provenance) && !wanted_people.contains(person) {
            out.complete.push(Coverage::Node(person.clone()));
        }
    }
    let resolvable = resolvable_accounts(accounts);
    for ((from, to), stored) in &links {
        let at = (from.clone(), to.clone());
        if gone(&stored.provenance) && resolvable.contains(from) && !wanted_links.contains(&at) {
            out.complete.push(Coverage::Edge(
                edge_kind::IDENTITY_OF.to_owned(),
                from.clone(),
                to.clone(),
            ));
        }
    }
    Ok(out)
}

/// The explicit mappings that name a known person, keyed by lower-cased
/// provider and login, and a skip for each of the others.
fn explicit_links(
    mappings: &[ExplicitMapping],
    directory: &Directory<'_>,
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

/// The accounts whose links resolution decides: every account with a known
/// provider. Accounts that are no longer observed are included, so their
/// links lapse with them.
fn resolvable_accounts(accounts: &[StoredNode]) -> BTreeSet<NodeRef> {
    accounts
        .iter()
        .filter(|a| {
            let provider = text(&a.node.properties, "provider");
            IDP_PROVIDERS.contains(&provider) || CODE_HOST_PROVIDERS.contains(&provider)
        })
        .map(|a| a.node.reference())
        .collect()
}

fn identity_edge(account: &StoredNode, person: &str, evidence: Evidence) -> Edge {
    Edge {
        kind: edge_kind::IDENTITY_OF.to_owned(),
        from: account.node.reference(),
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
