//! Identity resolution, on any backend.

use org_mesh_model::Direction;
use org_mesh_store::{ExplicitMapping, identity::SOURCE, resolve};

use super::*;

fn idp(key: &str, email: &str, extra: &[(&str, Value)]) -> Node {
    let mut n = node("Account", key, extra);
    n.properties.insert("provider".to_owned(), text("okta"));
    n.properties.insert("email".to_owned(), text(email));
    n.properties
        .insert("active".to_owned(), Value::Boolean(true));
    n
}

fn github(login: &str, extra: &[(&str, Value)]) -> Node {
    let mut n = node("Account", &format!("github:{login}"), extra);
    n.properties.insert("provider".to_owned(), text("github"));
    n.properties.insert("login".to_owned(), text(login));
    n.properties.insert("id".to_owned(), Value::Integer(1000));
    n
}

fn texts(items: &[&str]) -> Value {
    Value::Texts(items.iter().map(|s| (*s).to_owned()).collect())
}

fn idp_accounts() -> Vec<Node> {
    vec![
        idp(
            "okta:alice",
            "Alice@Example.com",
            &[
                ("user_name", text("alice@corp")),
                ("external_id", text("ext-alice")),
                ("display_name", text("Alice A")),
            ],
        ),
        idp(
            "okta:bob",
            "bob@example.com",
            &[
                ("user_name", text("bob.user")),
                ("external_id", text("ext-bob")),
            ],
        ),
        idp("okta:carol", "carol@example.com", &[]),
        idp("okta:dave", "dave@example.com", &[]),
    ]
}

/// Fills `store` with four IdP accounts and `code_host` from a second
/// source.
async fn twin(store: Arc<dyn GraphStore>, code_host: Vec<Node>) -> Arc<dyn GraphStore> {
    let idp = batch(idp_accounts(), vec![], vec![]);
    store.apply("okta", at(0), idp).await.expect("apply okta");
    store
        .apply("github", at(0), batch(code_host, vec![], vec![]))
        .await
        .expect("apply github");
    store
}

fn mapping(login: &str, person: &str) -> ExplicitMapping {
    ExplicitMapping {
        provider: "github".to_owned(),
        login: login.to_owned(),
        person: person.to_owned(),
    }
}

/// The observed link of `login`: (person key, evidence, confidence).
async fn link(store: &Arc<dyn GraphStore>, login: &str) -> Option<(String, Value, Value)> {
    let account = NodeRef::new("Account", format!("github:{login}"));
    let links = store
        .neighbours(&account, "IDENTITY_OF", Direction::Outgoing)
        .await
        .expect("neighbours");
    let observed: Vec<_> = links
        .into_iter()
        .filter(|(e, _)| e.provenance.observed())
        .collect();
    assert!(observed.len() <= 1, "at most one person per account");
    observed.into_iter().next().map(|(edge, person)| {
        let p = &edge.edge.properties;
        let evidence = p.get("evidence").cloned().expect("evidence");
        let confidence = p.get("confidence").cloned().expect("confidence");
        (person.node.key, evidence, confidence)
    })
}

fn expect_link(person: &str, evidence: &str, confidence: f64) -> Option<(String, Value, Value)> {
    Some((person.to_owned(), text(evidence), Value::Float(confidence)))
}

pub async fn people_come_from_idp_accounts(store: Arc<dyn GraphStore>) {
    let store = twin(store, vec![]).await;
    let applied = resolve(store.as_ref(), &[], at(1)).await.expect("resolve");
    assert!(applied.skipped.is_empty());
    let people = store.nodes("Person").await.expect("people");
    let keys: Vec<&str> = people.iter().map(|p| p.node.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "alice@example.com",
            "bob@example.com",
            "carol@example.com",
            "dave@example.com"
        ]
    );
    let alice = &people[0];
    assert_eq!(alice.provenance.source, SOURCE);
    assert_eq!(
        alice.node.properties.get("display_name"),
        Some(&text("Alice A"))
    );
    let from_okta = store
        .neighbours(
            &NodeRef::new("Account", "okta:alice"),
            "IDENTITY_OF",
            Direction::Outgoing,
        )
        .await
        .expect("neighbours");
    let p = &from_okta[0].0.edge.properties;
    assert_eq!(p.get("evidence"), Some(&text("idp-account")));
    assert_eq!(p.get("confidence"), Some(&Value::Float(1.0)));
}

pub async fn explicit_mapping(store: Arc<dyn GraphStore>) {
    let store = twin(store, vec![github("zed", &[])]).await;
    resolve(
        store.as_ref(),
        &[mapping("ZED", "Carol@example.com")],
        at(1),
    )
    .await
    .expect("resolve");
    assert_eq!(
        link(&store, "zed").await,
        expect_link("carol@example.com", "explicit-mapping", 1.0)
    );
}

pub async fn scim_external_id(store: Arc<dyn GraphStore>) {
    let store = twin(
        store,
        vec![github("al", &[("scim_external_id", text("ext-alice"))])],
    )
    .await;
    resolve(store.as_ref(), &[], at(1)).await.expect("resolve");
    assert_eq!(
        link(&store, "al").await,
        expect_link("alice@example.com", "scim-external-id", 0.95)
    );
}

pub async fn saml_identity(store: Arc<dyn GraphStore>) {
    let store = twin(
        store,
        vec![
            github("bobby", &[("saml_name_id", text("BOB.USER"))]),
            github("dd", &[("saml_name_id", text("Dave@Example.com"))]),
        ],
    )
    .await;
    resolve(store.as_ref(), &[], at(1)).await.expect("resolve");
    assert_eq!(
        link(&store, "bobby").await,
        expect_link("bob@example.com", "saml-identity", 0.9)
    );
    assert_eq!(
        link(&store, "dd").await,
        expect_link("dave@example.com", "saml-identity", 0.9)
    );
}

pub async fn verified_email(store: Arc<dyn GraphStore>) {
    let emails = texts(&["someone@else.org", "CAROL@example.com"]);
    let store = twin(store, vec![github("cc", &[("verified_emails", emails)])]).await;
    resolve(store.as_ref(), &[], at(1)).await.expect("resolve");
    assert_eq!(
        link(&store, "cc").await,
        expect_link("carol@example.com", "verified-email", 0.8)
    );
}

/// When several rules match, the strongest wins.
pub async fn precedence(store: Arc<dyn GraphStore>) {
    let everything = [
        ("scim_external_id", text("ext-bob")),
        ("saml_name_id", text("alice@corp")),
        ("verified_emails", texts(&["carol@example.com"])),
    ];
    let saml_over_email = [
        ("saml_name_id", text("alice@corp")),
        ("verified_emails", texts(&["carol@example.com"])),
    ];
    let accounts = vec![
        github("multi", &everything),
        github("mapped", &everything),
        github("two", &saml_over_email),
    ];
    let store = twin(store, accounts).await;
    let mappings = [mapping("mapped", "dave@example.com")];
    resolve(store.as_ref(), &mappings, at(1))
        .await
        .expect("resolve");
    assert_eq!(
        link(&store, "multi").await,
        expect_link("bob@example.com", "scim-external-id", 0.95)
    );
    assert_eq!(
        link(&store, "mapped").await,
        expect_link("dave@example.com", "explicit-mapping", 1.0)
    );
    assert_eq!(
        link(&store, "two").await,
        expect_link("alice@example.com", "saml-identity", 0.9)
    );
}

/// No rule matches: no edge; a mapping to an unknown person creates
/// nobody and is reported.
pub async fn unlinked_and_unknown_person(store: Arc<dyn GraphStore>) {
    let store = twin(
        store,
        vec![github("eve", &[("email", text("eve@example.com"))])],
    )
    .await;
    let applied = resolve(store.as_ref(), &[mapping("eve", "eve@example.com")], at(1))
        .await
        .expect("resolve");
    assert_eq!(link(&store, "eve").await, None);
    assert_eq!(applied.skipped.len(), 1);
    assert!(applied.skipped[0].record.contains("github/eve"));
    assert!(applied.skipped[0].reason.contains("eve@example.com"));
    let eve = store
        .node(&NodeRef::new("Person", "eve@example.com"))
        .await
        .expect("node");
    assert_eq!(eve, None);
}

/// Resolving twice changes nothing; dropping a mapping makes its link
/// not observed; a vanished IdP account takes its person and links.
pub async fn links_lapse(store: Arc<dyn GraphStore>) {
    let store = twin(
        store,
        vec![
            github("zed", &[]),
            github("dd", &[("saml_name_id", text("dave@example.com"))]),
        ],
    )
    .await;
    let mappings = [mapping("zed", "carol@example.com")];
    resolve(store.as_ref(), &mappings, at(1))
        .await
        .expect("resolve");
    let again = resolve(store.as_ref(), &mappings, at(2))
        .await
        .expect("resolve");
    assert!(again.changes.is_quiet(), "resolution is idempotent");
    // Nothing that stayed the same is written again: the second
    // resolution reports no record at all, and a person keeps the time
    // of the resolution that made it.
    assert!(
        again.changes.nodes.is_empty() && again.changes.edges.is_empty(),
        "{:?}",
        again.changes
    );
    let carol = store
        .node(&NodeRef::new("Person", "carol@example.com"))
        .await
        .expect("node")
        .expect("carol");
    assert_eq!(carol.provenance.last_seen, at(1));

    let applied = resolve(store.as_ref(), &[], at(3)).await.expect("resolve");
    assert_eq!(link(&store, "zed").await, None);
    let lapsed: Vec<_> = applied
        .changes
        .edges
        .iter()
        .filter(|c| c.kind == ChangeKind::NotObserved)
        .map(|c| c.edge.edge.from.key.as_str())
        .collect();
    assert_eq!(lapsed, ["github:zed"]);

    let without_dave: Vec<Node> = idp_accounts()
        .into_iter()
        .filter(|n| n.key != "okta:dave")
        .collect();
    let okta_sync = batch(
        without_dave,
        vec![],
        vec![Coverage::Nodes("Account".to_owned())],
    );
    store
        .apply("okta", at(4), okta_sync)
        .await
        .expect("apply okta");
    resolve(store.as_ref(), &[], at(5)).await.expect("resolve");
    let dave = store
        .node(&NodeRef::new("Person", "dave@example.com"))
        .await
        .expect("node")
        .expect("kept");
    assert_eq!(dave.provenance.not_observed_since, Some(at(5)));
    assert_eq!(link(&store, "dd").await, None);
    let okta_dave = NodeRef::new("Account", "okta:dave");
    let links = store
        .neighbours(&okta_dave, "IDENTITY_OF", Direction::Outgoing)
        .await
        .expect("neighbours");
    assert!(links.iter().all(|(e, _)| !e.provenance.observed()));
}

/// The CLI reads mappings from a file; a misspelt field must fail loudly.
#[test]
fn mappings_reject_unknown_fields() {
    let ok: Result<Vec<ExplicitMapping>, _> =
        serde_json::from_str(r#"[{"provider":"github","login":"zed","person":"z@x.org"}]"#);
    assert_eq!(ok.expect("valid mapping"), [mapping("zed", "z@x.org")]);
    let typo: Result<Vec<ExplicitMapping>, _> =
        serde_json::from_str(r#"[{"provider":"github","login":"zed","persn":"z@x.org"}]"#);
    assert!(typo.is_err());
}
