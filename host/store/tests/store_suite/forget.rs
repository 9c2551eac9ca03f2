//! Generic checks of `forget`: what it removes, what it leaves alone, and
//! that a forgotten node can come back.

use std::collections::BTreeSet;

use org_mesh_model::{ChangeLogEntry, Direction};
use org_mesh_store::Forgotten;

use super::*;

/// A word that appears only in the text of the message to forget.
const CANARY: &str = "marrowquill4412";

fn message(key: &str) -> NodeRef {
    NodeRef::new("Message", format!("github:acme/app/issue-comment/{key}"))
}

fn account(login: &str) -> NodeRef {
    NodeRef::new("Account", format!("github:{login}"))
}

fn repo() -> NodeRef {
    NodeRef::new("Repository", "github:acme/app")
}

fn message_node(key: &str, body: &str) -> Node {
    let m = message(key);
    node(
        &m.label,
        &m.key,
        &[("kind", text("issue-comment")), ("body", text(body))],
    )
}

/// The edges a connector records with a message.
fn said(key: &str, author: &str, mentioned: &str) -> Vec<Edge> {
    let m = message(key);
    vec![
        edge("AUTHORED", &account(author), &m, &[]),
        edge("POSTED_IN", &m, &repo(), &[]),
        edge("MENTIONS", &m, &account(mentioned), &[]),
    ]
}

/// Two accounts, a repository, two messages by ann mentioning bo, ann's
/// permission on the repository, and a reply from the second message to
/// the first.
fn conversation() -> Batch {
    let mut edges = said("1", "ann", "bo");
    edges.extend(said("2", "ann", "bo"));
    edges.push(edge("HAS_PERMISSION", &account("ann"), &repo(), &[]));
    edges.push(edge("REPLIES_TO", &message("2"), &message("1"), &[]));
    batch(
        vec![
            node("Account", "github:ann", &[("login", text("ann"))]),
            node("Account", "github:bo", &[("login", text("bo"))]),
            node("Repository", "github:acme/app", &[]),
            message_node("1", &format!("hand over the keys {CANARY}")),
            message_node("2", "please answer"),
        ],
        edges,
        vec![],
    )
}

async fn forget(store: &Arc<dyn GraphStore>, nodes: &[NodeRef]) -> Forgotten {
    store.forget(nodes).await.expect("forget")
}

/// The history of every entity of the snapshot.
async fn all_history(store: &Arc<dyn GraphStore>) -> BTreeMap<String, Vec<ChangeLogEntry>> {
    let snapshot = store.snapshot().await.expect("snapshot");
    let mut entities: Vec<EntityId> = snapshot
        .nodes
        .iter()
        .map(|c| EntityId::Node(c.node.node.reference()))
        .collect();
    entities.extend(snapshot.edges.iter().map(|c| {
        let e = &c.edge.edge;
        edge_id(&e.kind, &e.from, &e.to)
    }));
    let mut out = BTreeMap::new();
    for entity in entities {
        let history = store.history(&entity).await.expect("history");
        out.insert(format!("{entity:?}"), history);
    }
    out
}

fn mentions(entity: &EntityId, node: &NodeRef) -> bool {
    match entity {
        EntityId::Node(n) => n == node,
        EntityId::Edge { from, to, .. } => from == node || to == node,
    }
}

/// The message goes with its edges both ways and all their history, and
/// its text is nowhere the queries reach.
pub async fn forgetting_removes_a_node_its_edges_and_their_history(store: Arc<dyn GraphStore>) {
    store
        .apply("github", at(0), conversation())
        .await
        .expect("apply");
    // A second version of the message, and its mention reported gone, so
    // that the node and an edge each have more than one entry.
    let edited = batch(
        vec![message_node("1", &format!("hand it over now {CANARY}"))],
        vec![],
        vec![Coverage::Edge(
            "MENTIONS".into(),
            message("1"),
            account("bo"),
        )],
    );
    store.apply("github", at(1), edited).await.expect("apply");
    let before = all_history(&store).await;
    let gone = message("1");

    let forgotten = forget(&store, std::slice::from_ref(&gone)).await;
    assert_eq!(
        forgotten,
        Forgotten {
            nodes: 1,
            // AUTHORED, POSTED_IN and MENTIONS out, REPLIES_TO in.
            edges: 4,
            // Added and Updated for the node, Added for each edge and
            // NotObserved for MENTIONS.
            history: 7,
        }
    );

    assert!(store.node(&gone).await.expect("node").is_none());
    assert!(
        store
            .history(&EntityId::Node(gone.clone()))
            .await
            .expect("history")
            .is_empty()
    );
    for (kind, from, to) in [
        ("AUTHORED", account("ann"), gone.clone()),
        ("POSTED_IN", gone.clone(), repo()),
        ("MENTIONS", gone.clone(), account("bo")),
        ("REPLIES_TO", message("2"), gone.clone()),
    ] {
        let id = edge_id(kind, &from, &to);
        let history = store.history(&id).await.expect("history");
        assert!(history.is_empty(), "{id:?}: {history:?}");
    }
    let authored = store
        .neighbours(&account("ann"), "AUTHORED", Direction::Outgoing)
        .await
        .expect("neighbours");
    let ends: Vec<NodeRef> = authored.iter().map(|(e, _)| e.edge.to.clone()).collect();
    assert_eq!(ends, [message("2")]);
    let replies = store
        .neighbours(&message("2"), "REPLIES_TO", Direction::Outgoing)
        .await
        .expect("neighbours");
    assert!(replies.is_empty(), "{replies:?}");
    let mentioned = store
        .neighbours(&account("bo"), "MENTIONS", Direction::Incoming)
        .await
        .expect("neighbours");
    assert_eq!(mentioned.len(), 1, "{mentioned:?}");
    let messages = store.nodes("Message").await.expect("nodes");
    let keys: Vec<NodeRef> = messages.iter().map(|n| n.node.reference()).collect();
    assert_eq!(keys, [message("2")]);
    for kind in ["AUTHORED", "POSTED_IN", "MENTIONS", "REPLIES_TO"] {
        let edges = store.edges(kind).await.expect("edges");
        assert!(
            edges
                .iter()
                .all(|e| e.edge.from != gone && e.edge.to != gone),
            "{kind}: {edges:?}"
        );
    }
    assert_eq!(store.counts().await.expect("counts")["Message"], 1);

    // Everything else, history included, is as it was.
    let after = all_history(&store).await;
    let expected: BTreeMap<String, Vec<ChangeLogEntry>> = before
        .into_iter()
        .filter(|(_, h)| !h.iter().any(|e| mentions(&e.entity, &gone)))
        .collect();
    assert_eq!(after, expected);
    assert_eq!(after.len(), 8, "{:?}", after.keys());

    let snapshot = store.snapshot().await.expect("snapshot");
    let everything = serde_json::to_string(&(&snapshot, &after)).expect("json");
    assert!(!everything.contains(CANARY), "{everything}");
    assert!(!everything.contains(&gone.key), "{everything}");
}

/// Forgetting what is already gone, or was never there, changes nothing.
pub async fn forgetting_twice_or_unknown_nodes_is_harmless(store: Arc<dyn GraphStore>) {
    store
        .apply("github", at(0), conversation())
        .await
        .expect("apply");
    assert_eq!(forget(&store, &[]).await, Forgotten::default());
    let unknown = NodeRef::new("Message", "github:acme/app/issue-comment/404");
    assert_eq!(
        forget(&store, std::slice::from_ref(&unknown)).await,
        Forgotten::default()
    );

    // Both messages at once, one named twice: the reply between them is
    // one edge, counted once.
    let both = [message("1"), message("2"), message("1")];
    let first = forget(&store, &both).await;
    assert_eq!(
        first,
        Forgotten {
            nodes: 2,
            edges: 7,
            history: 9
        }
    );
    let snapshot = store.snapshot().await.expect("snapshot");
    assert_eq!(forget(&store, &both).await, Forgotten::default());
    assert_eq!(store.snapshot().await.expect("snapshot"), snapshot);
    assert_eq!(snapshot.nodes.len(), 3);
    assert_eq!(snapshot.edges.len(), 1, "only the permission is left");
}

/// A batch after the forget that reports the node again adds it as new.
pub async fn a_forgotten_node_comes_back_afresh(store: Arc<dyn GraphStore>) {
    store
        .apply("github", at(0), conversation())
        .await
        .expect("apply");
    forget(&store, &[message("1")]).await;

    let again = batch(
        vec![message_node("1", "said again")],
        said("1", "ann", "bo"),
        vec![],
    );
    let applied = store.apply("github", at(5), again).await.expect("apply");
    assert_eq!(kinds(&applied).len(), 4);
    assert!(all(&applied, ChangeKind::Added), "{:?}", kinds(&applied));
    let back = store
        .node(&message("1"))
        .await
        .expect("node")
        .expect("back");
    assert_eq!(back.provenance.first_seen, at(5));
    let history = store
        .history(&EntityId::Node(message("1")))
        .await
        .expect("history");
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].kind, ChangeKind::Added);
    assert_eq!(history[0].before, None);
    let earlier = history[0].seq;
    let ann = store
        .history(&EntityId::Node(account("ann")))
        .await
        .expect("history");
    assert!(
        ann[0].seq < earlier,
        "seqs are never reused: {ann:?} {history:?}"
    );
}

/// Forgets and applies that race leave no edge without both of its ends.
pub async fn forget_and_apply_never_leave_a_dangling_edge(store: Arc<dyn GraphStore>) {
    store
        .apply("github", at(0), conversation())
        .await
        .expect("apply");
    let mut tasks = Vec::new();
    for i in 0..6_i64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                store.forget(&[message("1")]).await.map(drop)
            } else {
                let login = format!("user{i}");
                let b = batch(
                    vec![
                        node("Account", &format!("github:{login}"), &[]),
                        message_node("1", "again"),
                    ],
                    said("1", &login, "bo"),
                    vec![],
                );
                store.apply("github", at(i), b).await.map(drop)
            }
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("store call");
    }
    let snapshot = store.snapshot().await.expect("snapshot");
    let nodes: BTreeSet<NodeRef> = snapshot
        .nodes
        .iter()
        .map(|c| c.node.node.reference())
        .collect();
    for c in &snapshot.edges {
        let e = &c.edge.edge;
        assert!(
            nodes.contains(&e.from) && nodes.contains(&e.to),
            "dangling {} {} -> {}",
            e.kind,
            e.from,
            e.to
        );
    }
}
