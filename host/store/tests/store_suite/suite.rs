//! Generic checks of the `apply` contract and the queries.

use std::collections::BTreeSet;

use org_mesh_model::{ChangeSet, Direction};
use time::UtcOffset;

use super::*;

pub fn org() -> NodeRef {
    NodeRef::new("Organisation", "github:acme")
}

pub fn account(login: &str) -> NodeRef {
    NodeRef::new("Account", format!("github:{login}"))
}

/// An organisation with two members.
fn acme() -> Batch {
    batch(
        vec![
            node("Organisation", "github:acme", &[("name", text("Acme"))]),
            node("Account", "github:ann", &[("login", text("ann"))]),
            node("Account", "github:bo", &[("login", text("bo"))]),
        ],
        vec![
            edge(
                "MEMBER_OF",
                &account("ann"),
                &org(),
                &[("role", text("admin"))],
            ),
            edge(
                "MEMBER_OF",
                &account("bo"),
                &org(),
                &[("role", text("member"))],
            ),
        ],
        vec![],
    )
}

async fn apply(store: &Arc<dyn GraphStore>, source: &str, n: i64, b: Batch) -> Applied {
    store.apply(source, at(n), b).await.expect("apply")
}

async fn history_len(store: &Arc<dyn GraphStore>, entity: EntityId) -> usize {
    store.history(&entity).await.expect("history").len()
}

fn without_last_seen(mut snapshot: ChangeSet) -> ChangeSet {
    for c in &mut snapshot.nodes {
        c.node.provenance.last_seen = at(0);
    }
    for c in &mut snapshot.edges {
        c.edge.provenance.last_seen = at(0);
    }
    snapshot
}

/// The same batch twice: everything is Unchanged the second time, the
/// log does not grow, and only last_seen moves.
pub async fn idempotency(store: Arc<dyn GraphStore>) {
    let first = apply(&store, "github", 0, acme()).await;
    assert_eq!(kinds(&first).len(), 5);
    assert!(all(&first, ChangeKind::Added));
    let before = store.snapshot().await.expect("snapshot");

    let second = apply(&store, "github", 1, acme()).await;
    assert_eq!(kinds(&second).len(), 5);
    assert!(all(&second, ChangeKind::Unchanged));
    assert!(second.changes.is_quiet());

    let after = store.snapshot().await.expect("snapshot");
    assert_ne!(before, after, "last_seen should move");
    assert_eq!(without_last_seen(before), without_last_seen(after));
    assert_eq!(history_len(&store, EntityId::Node(org())).await, 1);
    let member = edge_id("MEMBER_OF", &account("ann"), &org());
    assert_eq!(history_len(&store, member).await, 1);
    let stored = store.node(&org()).await.expect("node").expect("org");
    assert_eq!(stored.provenance.first_seen, at(0));
    assert_eq!(stored.provenance.last_seen, at(1));
}

/// Stored properties are exactly the last observed ones, and an explicit
/// null reads the same as an absent property.
pub async fn replace_semantics_and_null_is_absent(store: Arc<dyn GraphStore>) {
    let first = node(
        "Account",
        "github:ann",
        &[("a", Value::Integer(1)), ("b", text("x"))],
    );
    apply(&store, "github", 0, batch(vec![first], vec![], vec![])).await;

    let nulled = node(
        "Account",
        "github:ann",
        &[("a", Value::Integer(1)), ("c", Value::Null)],
    );
    let applied = apply(
        &store,
        "github",
        1,
        batch(vec![nulled.clone()], vec![], vec![]),
    )
    .await;
    assert!(all(&applied, ChangeKind::Updated));
    let stored = store
        .node(&account("ann"))
        .await
        .expect("node")
        .expect("ann");
    assert_eq!(stored.node.properties, props(&[("a", Value::Integer(1))]));

    let absent = node("Account", "github:ann", &[("a", Value::Integer(1))]);
    let applied = apply(&store, "github", 2, batch(vec![absent], vec![], vec![])).await;
    assert!(all(&applied, ChangeKind::Unchanged));
    let applied = apply(&store, "github", 3, batch(vec![nulled], vec![], vec![])).await;
    assert!(all(&applied, ChangeKind::Unchanged));

    let history = store
        .history(&EntityId::Node(account("ann")))
        .await
        .expect("history");
    assert_eq!(history.len(), 2);
    let update = &history[1];
    assert_eq!(update.kind, ChangeKind::Updated);
    let b_before = update.before.as_ref().and_then(|p| p.get("b"));
    assert_eq!(b_before, Some(&text("x")));
    assert_eq!(update.after, Some(props(&[("a", Value::Integer(1))])));
}

/// Coverage marks only its own set from its own source; without
/// coverage nothing is marked; records stay and neighbours still list
/// them.
pub async fn not_observed_needs_coverage(store: Arc<dyn GraphStore>) {
    apply(&store, "github", 0, acme()).await;
    let gitlab = batch(
        vec![node("Account", "gitlab:cy", &[])],
        vec![edge(
            "MEMBER_OF",
            &NodeRef::new("Account", "gitlab:cy"),
            &org(),
            &[],
        )],
        vec![],
    );
    apply(&store, "gitlab", 0, gitlab).await;

    let partial = batch(
        vec![node("Account", "github:ann", &[("login", text("ann"))])],
        vec![],
        vec![],
    );
    let applied = apply(&store, "github", 1, partial).await;
    assert!(
        all(&applied, ChangeKind::Unchanged),
        "a partial sync is not a deletion"
    );

    let full = batch(
        vec![node("Account", "github:ann", &[("login", text("ann"))])],
        vec![edge(
            "MEMBER_OF",
            &account("ann"),
            &org(),
            &[("role", text("admin"))],
        )],
        vec![
            Coverage::Nodes("Account".to_owned()),
            Coverage::EdgesTo("MEMBER_OF".to_owned(), org()),
        ],
    );
    let applied = apply(&store, "github", 2, full).await;
    let expected: BTreeMap<String, ChangeKind> = [
        ("Account(github:ann)", ChangeKind::Unchanged),
        ("Account(github:bo)", ChangeKind::NotObserved),
        (
            "MEMBER_OF Account(github:ann) -> Organisation(github:acme)",
            ChangeKind::Unchanged,
        ),
        (
            "MEMBER_OF Account(github:bo) -> Organisation(github:acme)",
            ChangeKind::NotObserved,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(kinds(&applied), expected);

    let bo = store
        .node(&account("bo"))
        .await
        .expect("node")
        .expect("bo is kept");
    assert_eq!(bo.provenance.not_observed_since, Some(at(2)));
    assert_eq!(bo.provenance.last_seen, at(0));
    let cy = store
        .node(&NodeRef::new("Account", "gitlab:cy"))
        .await
        .expect("node")
        .expect("cy");
    assert!(
        cy.provenance.observed(),
        "another source's record is not covered"
    );
    let acme = store.node(&org()).await.expect("node").expect("org");
    assert!(acme.provenance.observed(), "another label is not covered");

    let incoming = store
        .neighbours(&org(), "MEMBER_OF", Direction::Incoming)
        .await
        .expect("neighbours");
    let observed: Vec<bool> = incoming
        .iter()
        .map(|(e, _)| e.provenance.observed())
        .collect();
    assert_eq!(observed.len(), 3, "not-observed edges are still listed");
    assert_eq!(observed.iter().filter(|o| !**o).count(), 1);

    let history = store
        .history(&EntityId::Node(account("bo")))
        .await
        .expect("history");
    let last = history.last().expect("an entry");
    assert_eq!(
        (last.kind, last.at, last.after.clone()),
        (ChangeKind::NotObserved, at(2), None)
    );

    let from_ann = batch(
        vec![],
        vec![],
        vec![Coverage::EdgesFrom("MEMBER_OF".to_owned(), account("ann"))],
    );
    let applied = apply(&store, "github", 3, from_ann).await;
    let expected = (
        "MEMBER_OF Account(github:ann) -> Organisation(github:acme)".to_owned(),
        ChangeKind::NotObserved,
    );
    assert_eq!(
        kinds(&applied).into_iter().collect::<Vec<_>>(),
        vec![expected]
    );
}

/// A record that comes back after being not observed is Updated and
/// observed again, keeping first_seen.
pub async fn reobservation(store: Arc<dyn GraphStore>) {
    apply(&store, "github", 0, acme()).await;
    let only_org = batch(
        vec![node(
            "Organisation",
            "github:acme",
            &[("name", text("Acme"))],
        )],
        vec![],
        vec![Coverage::EdgesTo("MEMBER_OF".to_owned(), org())],
    );
    let applied = apply(&store, "github", 1, only_org).await;
    assert_eq!(applied.changes.edges.len(), 2);
    assert!(
        applied
            .changes
            .edges
            .iter()
            .all(|c| c.kind == ChangeKind::NotObserved)
    );

    let applied = apply(&store, "github", 2, acme()).await;
    let member = "MEMBER_OF Account(github:ann) -> Organisation(github:acme)";
    assert_eq!(kinds(&applied)[member], ChangeKind::Updated);
    let back = &applied.changes.edges[0].edge.provenance;
    assert!(back.observed());
    assert_eq!((back.first_seen, back.last_seen), (at(0), at(2)));

    let id = edge_id("MEMBER_OF", &account("ann"), &org());
    let history = store.history(&id).await.expect("history");
    let steps: Vec<ChangeKind> = history.iter().map(|e| e.kind).collect();
    assert_eq!(
        steps,
        [
            ChangeKind::Added,
            ChangeKind::NotObserved,
            ChangeKind::Updated
        ]
    );
}

/// Invalid records are skipped with a reason, the rest is applied, and a
/// record refused only for its properties is not taken for a removal.
pub async fn invalid_records_are_skipped(store: Arc<dyn GraphStore>) {
    apply(&store, "github", 0, acme()).await;
    // RFC 3339 offsets have no seconds.
    let offset = UtcOffset::from_hms(1, 0, 30).expect("offset");
    let odd = at(1).to_offset(offset);
    let bad = batch(
        vec![
            node("Organisation", "github:acme", &[("name", text("Acme"))]),
            node("account", "github:lower", &[]),
            node("Account", "github:ann", &[("Bad-Name", text("x"))]),
            node("Account", "github:bo", &[("score", Value::Float(f64::NAN))]),
            node("Account", "github:cy", &[("at", Value::Timestamp(odd))]),
            node("Account", "github:new", &[]),
        ],
        vec![
            edge("member-of", &account("new"), &org(), &[]),
            edge("MEMBER_OF", &account("new"), &org(), &[]),
        ],
        vec![Coverage::Nodes("Account".to_owned())],
    );
    let applied = apply(&store, "github", 1, bad).await;
    let skipped: BTreeSet<&str> = applied.skipped.iter().map(|s| s.record.as_str()).collect();
    let expected = BTreeSet::from([
        "node account(github:lower)",
        "node Account(github:ann)",
        "node Account(github:bo)",
        "node Account(github:cy)",
        "edge member-of Account(github:new) -> Organisation(github:acme)",
    ]);
    assert_eq!(skipped, expected);
    assert!(applied.skipped.iter().all(|s| !s.reason.is_empty()));

    let expected: BTreeMap<String, ChangeKind> = [
        ("Organisation(github:acme)", ChangeKind::Unchanged),
        ("Account(github:new)", ChangeKind::Added),
        (
            "MEMBER_OF Account(github:new) -> Organisation(github:acme)",
            ChangeKind::Added,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(
        kinds(&applied),
        expected,
        "ann and bo were seen, so not marked"
    );

    let ann = store
        .node(&account("ann"))
        .await
        .expect("node")
        .expect("ann");
    assert_eq!(ann.node.properties, props(&[("login", text("ann"))]));
    assert!(ann.provenance.observed());

    let refused = store.apply("github", odd, acme()).await;
    assert!(refused.is_err(), "an observation time rfc 3339 cannot hold");
    let lower = store
        .node(&NodeRef::new("account", "github:lower"))
        .await
        .expect("node");
    assert_eq!(lower, None);
}

/// An edge is applied only when both ends are stored or in the batch.
pub async fn edge_to_unknown_node_is_skipped(store: Arc<dyn GraphStore>) {
    apply(&store, "github", 0, acme()).await;
    let ghost = NodeRef::new("Repository", "github:acme/ghost");
    let b = batch(
        vec![
            node("Repository", "github:acme/web", &[]),
            node("Repository", "github:acme/bad", &[("Bad", text("x"))]),
        ],
        vec![
            edge("HAS_PERMISSION", &account("ann"), &ghost, &[]),
            edge(
                "HAS_PERMISSION",
                &account("ann"),
                &NodeRef::new("Repository", "github:acme/bad"),
                &[],
            ),
            edge(
                "HAS_PERMISSION",
                &account("ann"),
                &NodeRef::new("Repository", "github:acme/web"),
                &[],
            ),
        ],
        vec![],
    );
    let applied = apply(&store, "github", 1, b).await;
    assert_eq!(applied.changes.edges.len(), 1, "only the edge to web lands");
    let ghost_skip = applied
        .skipped
        .iter()
        .find(|s| s.record.contains("ghost"))
        .expect("the ghost edge is skipped");
    assert_eq!(
        ghost_skip.record,
        "edge HAS_PERMISSION Account(github:ann) -> Repository(github:acme/ghost)"
    );
    assert!(ghost_skip.reason.contains("Repository(github:acme/ghost)"));
    assert_eq!(
        applied.skipped.len(),
        3,
        "the invalid node and its edge too"
    );
    assert_eq!(store.node(&ghost).await.expect("node"), None);
}

/// The change log answers "when did ann gain admin on web".
pub async fn history_tells_when_admin_was_gained(store: Arc<dyn GraphStore>) {
    let web = NodeRef::new("Repository", "github:acme/web");
    let nodes = || {
        vec![
            node("Account", "github:ann", &[]),
            node("Repository", "github:acme/web", &[]),
        ]
    };
    let with_role = |role: &str| {
        batch(
            nodes(),
            vec![edge(
                "HAS_PERMISSION",
                &account("ann"),
                &web,
                &[("role", text(role))],
            )],
            vec![],
        )
    };
    apply(&store, "github", 1, with_role("write")).await;
    apply(&store, "github", 2, with_role("write")).await;
    apply(&store, "github", 5, with_role("admin")).await;
    apply(&store, "github", 6, with_role("admin")).await;

    let history = store
        .history(&edge_id("HAS_PERMISSION", &account("ann"), &web))
        .await
        .expect("history");
    assert_eq!(history.len(), 2);
    let role = |p: &Option<Properties>| p.as_ref().and_then(|p| p.get("role")).cloned();
    let gained = history
        .iter()
        .find(|e| role(&e.after) == Some(text("admin")) && role(&e.before) != Some(text("admin")))
        .expect("an entry granting admin");
    assert_eq!(gained.at, at(5));
    assert_eq!(gained.source, "github");
    assert_eq!(role(&gained.before), Some(text("write")));
    assert!(history[0].seq < history[1].seq);
}

/// Every value variant comes back exactly, on nodes and edges, and keys
/// may hold any character.
pub async fn values_round_trip(store: Arc<dyn GraphStore>) {
    let kolkata = datetime!(2024-02-29 23:59:59.123_456_789 +05:30);
    let values = [
        ("flag", Value::Boolean(true)),
        ("big", Value::Integer((1 << 53) + 1)),
        ("min", Value::Integer(i64::MIN)),
        ("ratio", Value::Float(0.1)),
        ("tiny", Value::Float(-5e-324)),
        ("name", text("Zoë \u{1} \"quoted\" \u{1F600}")),
        ("when", Value::Timestamp(kolkata)),
        (
            "list",
            Value::Texts(vec!["b".to_owned(), String::new(), "a".to_owned()]),
        ),
        ("gone", Value::Null),
    ];
    let tricky = "weird\0key\u{1}";
    let b = batch(
        vec![node("Thing", tricky, &values), node("Thing", "weird", &[])],
        vec![edge(
            "LINKS",
            &NodeRef::new("Thing", tricky),
            &NodeRef::new("Thing", "weird"),
            &values,
        )],
        vec![],
    );
    let applied = apply(&store, "test", 0, b).await;
    assert!(applied.skipped.is_empty(), "{:?}", applied.skipped);

    let mut expected = props(&values);
    expected.remove("gone");
    let stored = store
        .node(&NodeRef::new("Thing", tricky))
        .await
        .expect("node")
        .expect("thing");
    assert_eq!(stored.node.key, tricky);
    assert_eq!(stored.node.properties, expected);
    let Some(Value::Timestamp(when)) = stored.node.properties.get("when") else {
        unreachable!("compared equal above")
    };
    assert_eq!(when.offset(), kolkata.offset());

    let edges = store.edges("LINKS").await.expect("edges");
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0].edge.properties, expected);
    let things = store.nodes("Thing").await.expect("nodes");
    let keys: Vec<&str> = things.iter().map(|n| n.node.key.as_str()).collect();
    assert_eq!(keys, ["weird", tricky]);
}

/// counts gives nodes per label, not-observed ones included.
pub async fn counts(store: Arc<dyn GraphStore>) {
    assert!(store.counts().await.expect("counts").is_empty());
    apply(&store, "github", 0, acme()).await;
    let drop_bo = batch(
        vec![node("Account", "github:ann", &[("login", text("ann"))])],
        vec![],
        vec![Coverage::Nodes("Account".to_owned())],
    );
    apply(&store, "github", 1, drop_bo).await;
    let counts = store.counts().await.expect("counts");
    let expected = BTreeMap::from([("Account".to_owned(), 2), ("Organisation".to_owned(), 1)]);
    assert_eq!(counts, expected);
    assert_eq!(store.edges("MEMBER_OF").await.expect("edges").len(), 2);
    assert_eq!(store.nodes("Person").await.expect("nodes"), vec![]);
    let snapshot = store.snapshot().await.expect("snapshot");
    let unseen: Vec<_> = snapshot
        .nodes
        .iter()
        .filter(|c| c.kind == ChangeKind::NotObserved)
        .map(|c| c.node.node.key.as_str())
        .collect();
    assert_eq!(unseen, ["github:bo"]);

    // Forgetting takes a node out of the count once, however often it is
    // asked, and a node written again counts again.
    for _ in 0..2 {
        store.forget(&[account("bo")]).await.expect("forget");
    }
    let counts = store.counts().await.expect("counts");
    assert_eq!(counts.get("Account"), Some(&1));
    apply(&store, "github", 2, acme()).await;
    let counts = store.counts().await.expect("counts");
    assert_eq!(counts.get("Account"), Some(&2));

    // Labels a backend uses for its own records (Neo4j's `Entity` on every
    // node, its change log's) are ordinary labels to a plugin, and count
    // only the twin's nodes that carry them.
    let own = batch(
        vec![
            node("Entity", "e1", &[]),
            node("ChangeLog", "c1", &[]),
            node("ChangeLog", "c2", &[]),
            node("ChangeLogCounter", "n1", &[]),
        ],
        vec![],
        vec![],
    );
    apply(&store, "plugin", 3, own).await;
    let counts = store.counts().await.expect("counts");
    let expected = BTreeMap::from([
        ("Account".to_owned(), 2),
        ("ChangeLog".to_owned(), 2),
        ("ChangeLogCounter".to_owned(), 1),
        ("Entity".to_owned(), 1),
        ("Organisation".to_owned(), 1),
    ]);
    assert_eq!(counts, expected);
}

/// Paging through a label returns every node of it once, whatever the
/// page size, including keys that share a prefix with the label's
/// neighbours and a key holding NUL; nodes of other labels never appear.
pub async fn pages_cover_a_label_exactly(store: Arc<dyn GraphStore>) {
    let mut keys: Vec<String> = (0..23).map(|i| format!("github:user{i:02}")).collect();
    keys.push("github:a\0b".to_owned());
    keys.push("github:é".to_owned());
    let mut nodes: Vec<Node> = keys
        .iter()
        .map(|k| node("Account", k, &[("login", text(k))]))
        .collect();
    nodes.push(node("AccountX", "github:user00", &[]));
    nodes.push(node("Accoun", "zzz", &[]));
    apply(&store, "github", 0, batch(nodes, vec![], vec![])).await;
    let whole: BTreeSet<String> = keys.into_iter().collect();
    for limit in [1, 2, 7, 25, 100] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store
                .nodes_page("Account", after.as_deref(), limit)
                .await
                .expect("page");
            assert!(page.len() <= limit);
            let Some(last) = page.last() else { break };
            after = Some(last.node.key.clone());
            seen.extend(page.into_iter().map(|n| {
                assert_eq!(n.node.label, "Account");
                n.node.key
            }));
        }
        assert_eq!(seen.len(), whole.len(), "page size {limit}: {seen:?}");
        assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), whole);
    }
    let none = store.nodes_page("Person", None, 10).await.expect("page");
    assert!(none.is_empty());
}

/// Batches applied from many tasks at once all land, and the log's seqs
/// stay gapless.
pub async fn concurrent_applies_all_land(store: Arc<dyn GraphStore>) {
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let nodes = (0..20)
                    .map(|i| {
                        node(
                            "Account",
                            &format!("task{t}:{i}"),
                            &[("i", Value::Integer(i))],
                        )
                    })
                    .collect();
                store
                    .apply(&format!("source{t}"), at(t), batch(nodes, vec![], vec![]))
                    .await
            })
        })
        .collect();
    for task in tasks {
        let applied = task.await.expect("task").expect("apply");
        assert!(all(&applied, ChangeKind::Added));
    }
    assert_eq!(store.counts().await.expect("counts")["Account"], 160);

    let mut seqs = BTreeSet::new();
    for n in store.nodes("Account").await.expect("nodes") {
        for entry in store
            .history(&EntityId::Node(n.node.reference()))
            .await
            .expect("history")
        {
            seqs.insert(entry.seq);
        }
    }
    assert_eq!(seqs, (1..=160).collect());
}

pub async fn single_records_can_be_reported_gone(store: Arc<dyn GraphStore>) {
    apply(&store, "github", 0, acme()).await;
    let removal = batch(
        vec![],
        vec![],
        vec![
            Coverage::Edge("MEMBER_OF".to_owned(), account("bo"), org()),
            Coverage::Node(account("nobody")),
        ],
    );
    let applied = apply(&store, "gitlab", 1, removal.clone()).await;
    assert!(
        applied.changes.edges.is_empty(),
        "another source cannot retract github's edge"
    );
    let applied = apply(&store, "github", 2, removal).await;
    let expected: BTreeMap<String, ChangeKind> = [(
        "MEMBER_OF Account(github:bo) -> Organisation(github:acme)".to_owned(),
        ChangeKind::NotObserved,
    )]
    .into();
    assert_eq!(kinds(&applied), expected);
    let ann = store
        .neighbours(&account("ann"), "MEMBER_OF", Direction::Outgoing)
        .await
        .expect("ann's memberships");
    assert!(
        ann[0].0.provenance.observed(),
        "only the named edge is gone"
    );

    let gone_node = batch(vec![], vec![], vec![Coverage::Node(account("bo"))]);
    let applied = apply(&store, "github", 3, gone_node).await;
    assert_eq!(applied.changes.nodes.len(), 1);
    assert_eq!(applied.changes.nodes[0].kind, ChangeKind::NotObserved);
}

pub async fn a_partial_batch_merges_properties(store: Arc<dyn GraphStore>) {
    let full = batch(
        vec![node(
            "Repository",
            "github:acme/api",
            &[
                ("archived", Value::Boolean(false)),
                ("protected", Value::Boolean(true)),
            ],
        )],
        vec![],
        vec![],
    );
    apply(&store, "github", 0, full).await;
    let mut change = batch(
        vec![node(
            "Repository",
            "github:acme/api",
            &[
                ("archived", Value::Boolean(true)),
                ("protected", Value::Null),
            ],
        )],
        vec![],
        vec![],
    );
    change.partial = true;
    let applied = apply(&store, "github", 1, change).await;
    assert_eq!(applied.changes.nodes[0].kind, ChangeKind::Updated);
    let stored = store
        .node(&NodeRef::new("Repository", "github:acme/api"))
        .await
        .expect("reading the repository")
        .expect("the repository is stored");
    let expected: Properties = [("archived".to_owned(), Value::Boolean(true))].into();
    assert_eq!(
        stored.node.properties, expected,
        "merged, and the null removed"
    );
}

/// Pushed changes of several resources gathered into one partial batch
/// (how SCIM changes that waited reach the twin) leave what applying them
/// one by one, users before groups, would: each resource's coverage
/// reaches only its own edges, and an edge to a node the batch creates is
/// kept.
pub async fn pushes_gathered_into_one_batch_apply_as_one_by_one(store: Arc<dyn GraphStore>) {
    let group = NodeRef::new("Group", "okta:g1");
    let okta = |login: &str| NodeRef::new("Account", format!("okta:{login}"));
    let member = |login: &str| edge("MEMBER_OF", &okta(login), &group, &[]);
    let mut before = batch(
        vec![
            node("Account", "okta:ann", &[("active", Value::Boolean(true))]),
            node("Account", "okta:bo", &[("active", Value::Boolean(true))]),
            node("Account", "okta:cy", &[("active", Value::Boolean(true))]),
            node("Group", "okta:g1", &[("name", text("Admins"))]),
        ],
        vec![member("ann"), member("bo"), member("cy")],
        vec![],
    );
    before.partial = true;
    apply(&store, "okta", 0, before).await;

    let pushed = |nodes, edges, complete| Batch {
        nodes,
        edges,
        complete,
        partial: true,
    };
    let new_group = NodeRef::new("Group", "okta:g2");
    let pushes = [
        // ann deactivated.
        pushed(
            vec![node(
                "Account",
                "okta:ann",
                &[("active", Value::Boolean(false))],
            )],
            vec![],
            vec![],
        ),
        // bo deleted: the account kept, its memberships covered as gone.
        pushed(
            vec![node(
                "Account",
                "okta:bo",
                &[("active", Value::Boolean(false))],
            )],
            vec![],
            vec![Coverage::EdgesFrom("MEMBER_OF".to_owned(), okta("bo"))],
        ),
        // dee created.
        pushed(vec![node("Account", "okta:dee", &[])], vec![], vec![]),
        // g1 as last written, before bo's deletion: ann and bo, not cy.
        pushed(
            vec![node("Group", "okta:g1", &[("name", text("Admins"))])],
            vec![member("ann"), member("bo")],
            vec![Coverage::EdgesTo("MEMBER_OF".to_owned(), group.clone())],
        ),
        // g2 created with dee, who is new in this batch too.
        pushed(
            vec![node("Group", "okta:g2", &[("name", text("New"))])],
            vec![edge("MEMBER_OF", &okta("dee"), &new_group, &[])],
            vec![Coverage::EdgesTo("MEMBER_OF".to_owned(), new_group.clone())],
        ),
    ];
    let mut gathered = Batch {
        partial: true,
        ..Batch::default()
    };
    for push in pushes {
        assert!(gathered.try_extend(push).is_ok());
    }
    let applied = apply(&store, "okta", 1, gathered).await;
    let expected: BTreeMap<String, ChangeKind> = [
        ("Account(okta:ann)", ChangeKind::Updated),
        ("Account(okta:bo)", ChangeKind::Updated),
        ("Account(okta:dee)", ChangeKind::Added),
        ("Group(okta:g1)", ChangeKind::Unchanged),
        ("Group(okta:g2)", ChangeKind::Added),
        (
            "MEMBER_OF Account(okta:ann) -> Group(okta:g1)",
            ChangeKind::Unchanged,
        ),
        // Listed by g1's push, so its deletion's coverage does not end it,
        // as g1's push applied after the deletion would have restored it.
        (
            "MEMBER_OF Account(okta:bo) -> Group(okta:g1)",
            ChangeKind::Unchanged,
        ),
        (
            "MEMBER_OF Account(okta:cy) -> Group(okta:g1)",
            ChangeKind::NotObserved,
        ),
        (
            "MEMBER_OF Account(okta:dee) -> Group(okta:g2)",
            ChangeKind::Added,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(kinds(&applied), expected);

    let whole = batch(vec![node("Account", "okta:eve", &[])], vec![], vec![]);
    let mut partial = Batch {
        partial: true,
        ..Batch::default()
    };
    assert!(
        partial.try_extend(whole).is_err(),
        "a whole batch is not merged into a partial one"
    );
}

/// A healthy store answers a ping.
pub async fn a_healthy_store_answers_ping(store: Arc<dyn GraphStore>) {
    store.ping().await.expect("pinging a healthy store");
}

/// Observations that arrive out of order (a queued webhook applied after a
/// newer sync) never undo newer ones: a stale record is left as it is, and
/// a stale complete listing marks nothing seen after it.
pub async fn stale_observations_change_nothing(store: Arc<dyn GraphStore>) {
    let newer = node("Account", "github:ann", &[("role", text("admin"))]);
    apply(&store, "github", 10, batch(vec![newer], vec![], vec![])).await;

    let older = node("Account", "github:ann", &[("role", text("member"))]);
    let applied = apply(&store, "github", 5, batch(vec![older], vec![], vec![])).await;
    assert!(all(&applied, ChangeKind::Unchanged));
    let stored = store
        .node(&account("ann"))
        .await
        .expect("node")
        .expect("ann");
    assert_eq!(stored.node.properties, props(&[("role", text("admin"))]));
    assert_eq!(stored.provenance.last_seen, at(10));

    // A listing taken before ann was last seen, without her.
    let listing = batch(
        vec![node("Account", "github:bo", &[])],
        vec![],
        vec![Coverage::Nodes("Account".into())],
    );
    apply(&store, "github", 7, listing).await;
    let stored = store
        .node(&account("ann"))
        .await
        .expect("node")
        .expect("ann");
    assert!(stored.provenance.observed(), "{stored:?}");
    assert_eq!(history_len(&store, EntityId::Node(account("ann"))).await, 1);

    // A newer listing without her does mark her.
    let listing = batch(
        vec![node("Account", "github:bo", &[])],
        vec![],
        vec![Coverage::Nodes("Account".into())],
    );
    apply(&store, "github", 11, listing).await;
    let stored = store
        .node(&account("ann"))
        .await
        .expect("node")
        .expect("ann");
    assert_eq!(stored.provenance.not_observed_since, Some(at(11)));
}

/// A batch far larger than one request to a server: 330 nodes and 1,200
/// edges of two kinds, each with a long text. Every record lands and is
/// logged once, applying it again finds every node and edge stored,
/// changing every edge updates each, and forgetting half the accounts,
/// whose edges run between one another, counts each edge once.
pub async fn a_large_batch_lands_whole(store: Arc<dyn GraphStore>) {
    const ACCOUNTS: usize = 300;
    const REPOS: usize = 30;
    let bio = "x".repeat(200);
    let login = |i: usize| format!("user{i:03}");
    let repo = |i: usize| NodeRef::new("Repository", format!("github:acme/repo{i:02}"));
    let large = |permission: &str| {
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        for i in 0..REPOS {
            nodes.push(node("Repository", &repo(i).key, &[]));
        }
        for i in 0..ACCOUNTS {
            let me = account(&login(i));
            nodes.push(node(&me.label, &me.key, &[("bio", text(&bio))]));
            for r in 0..3 {
                let to = repo((i + r * 7) % REPOS);
                edges.push(edge(
                    "HAS_PERMISSION",
                    &me,
                    &to,
                    &[("permission", text(permission)), ("note", text(&bio))],
                ));
            }
            let next = account(&login((i + 1) % ACCOUNTS));
            edges.push(edge("FOLLOWS", &me, &next, &[("note", text(&bio))]));
        }
        batch(nodes, edges, vec![])
    };

    let first = apply(&store, "github", 0, large("read")).await;
    assert!(first.skipped.is_empty(), "{:?}", first.skipped.first());
    assert_eq!(first.changes.nodes.len(), ACCOUNTS + REPOS);
    assert_eq!(first.changes.edges.len(), ACCOUNTS * 4);
    assert!(all(&first, ChangeKind::Added));
    let counts = store.counts().await.expect("counts");
    assert_eq!(counts.get("Account"), Some(&(ACCOUNTS as u64)));
    assert_eq!(counts.get("Repository"), Some(&(REPOS as u64)));
    let permissions = store.edges("HAS_PERMISSION").await.expect("edges");
    assert_eq!(permissions.len(), ACCOUNTS * 3);
    assert_eq!(store.edges("FOLLOWS").await.expect("edges").len(), ACCOUNTS);

    let again = apply(&store, "github", 1, large("read")).await;
    assert_eq!(again.changes.edges.len(), ACCOUNTS * 4);
    assert!(all(&again, ChangeKind::Unchanged));
    let changed = apply(&store, "github", 2, large("write")).await;
    let updated = changed
        .changes
        .edges
        .iter()
        .filter(|c| c.kind == ChangeKind::Updated)
        .count();
    assert_eq!(updated, ACCOUNTS * 3);
    assert_eq!(
        store.edges("HAS_PERMISSION").await.expect("edges").len(),
        ACCOUNTS * 3
    );

    let half: Vec<NodeRef> = (0..ACCOUNTS / 2).map(|i| account(&login(i))).collect();
    let forgotten = store.forget(&half).await.expect("forget");
    // Each account's three permissions and the follow from it, and the
    // follow from the last account to the first.
    let edges = ACCOUNTS / 2 * 4 + 1;
    // The node's Added; every edge's Added, and Updated for permissions.
    let history = ACCOUNTS / 2 + edges + ACCOUNTS / 2 * 3;
    assert_eq!(
        forgotten,
        org_mesh_store::Forgotten {
            nodes: (ACCOUNTS / 2) as u64,
            edges: edges as u64,
            history: history as u64,
        }
    );
    let counts = store.counts().await.expect("counts");
    assert_eq!(counts.get("Account"), Some(&((ACCOUNTS / 2) as u64)));
}
