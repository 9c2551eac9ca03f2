//! Several `org-mesh serve` replicas sharing one Neo4j and one Redis, and
//! what each does when one of those goes away.
//!
//! Needs `ORG_MESH_TEST_NEO4J_URL` and `ORG_MESH_TEST_REDIS_URL`, which
//! `.ci/run` sets after starting both on 127.0.0.1 (`conformance/neo4j/run`,
//! `conformance/redis/run`), and fails without them. Community Neo4j has one
//! database, so the tests take turns and each starts from an empty twin;
//! each uses a Redis key prefix of its own.
//!
//! The pushed changes are GitHub's published `organization.member_added`
//! delivery, sent for distinct people so that the order in which replicas
//! happen to apply them cannot matter.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::backends::*;
use common::*;
use org_mesh_harness::FaultProxy;
use org_mesh_model::{NodeRef, Properties};
use org_mesh_store::{EmbeddedStore, GraphStore, Neo4jOptions, Neo4jStore};
use serde_json::Value;

/// `n` deliveries, each adding a different person.
fn burst(n: usize) -> Vec<Delivery> {
    member_burst("burst", "burst-member", 7_000_000, n)
}

/// How a replica answered a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accepted,
    Duplicate,
    Refused(u16),
}

async fn send(http: &reqwest::Client, server: &Server, delivery: &Delivery) -> Answer {
    let url = format!("{}/webhooks/github/github", server.base);
    let resp = signed(
        http,
        &url,
        "organization",
        Some(&delivery.id),
        delivery.body.clone(),
    )
    .await;
    match resp.status().as_u16() {
        202 => Answer::Accepted,
        200 => {
            let body: Value = resp.json().await.unwrap_or_default();
            assert_eq!(body["duplicate"], true, "{body}");
            Answer::Duplicate
        }
        other => Answer::Refused(other),
    }
}

/// The twin without times and without fix proposals: what each record
/// says and whether it is observed, so two twins built at different
/// moments compare equal when they hold the same organisation.
#[derive(Debug, PartialEq)]
struct Shape {
    nodes: BTreeMap<NodeRef, (Properties, String, bool)>,
    edges: BTreeSet<String>,
}

async fn shape(store: &dyn GraphStore) -> Shape {
    let snapshot = store
        .snapshot()
        .await
        .unwrap_or_else(|e| panic!("reading the twin: {e}"));
    // Fix proposals carry the times of their own steps; the organisation
    // is what the twins must agree on.
    let nodes = snapshot
        .nodes
        .iter()
        .filter(|c| c.node.node.label != org_mesh_app::actions::LABEL)
        .map(|c| {
            let n = &c.node;
            (
                n.node.reference(),
                (
                    n.node.properties.clone(),
                    n.provenance.source.clone(),
                    n.provenance.observed(),
                ),
            )
        })
        .collect();
    let edges = snapshot
        .edges
        .iter()
        .filter(|c| c.edge.edge.from.label != org_mesh_app::actions::LABEL)
        .map(|c| {
            let e = &c.edge;
            format!(
                "{} {} -> {} {:?} {} {}",
                e.edge.kind,
                e.edge.from,
                e.edge.to,
                e.edge.properties,
                e.provenance.source,
                e.provenance.observed()
            )
        })
        .collect();
    Shape { nodes, edges }
}

/// The twin a single node on the embedded defaults ends with after `burst`.
async fn single_node_twin(burst: &[Delivery]) -> Shape {
    let http = client();
    let mut node = start().await;
    for d in burst {
        assert_eq!(send(&http, &node, d).await, Answer::Accepted, "{}", d.id);
    }
    settled(&http, &node.base).await;
    node.kill();
    let store = EmbeddedStore::open(&node.state.path().join("twin.redb"))
        .await
        .unwrap_or_else(|e| panic!("opening the single node's twin: {e}"));
    shape(&store).await
}

/// The changes `consumer` has taken from the shared stream and not
/// acknowledged, as Redis itself reports them.
fn pending_for(prefix: &str, consumer: &str) -> usize {
    let url = redis_url();
    let out = Command::new("redis-cli")
        .args(["-u", &url, "XPENDING"])
        .arg(format!("{prefix}stream:changes"))
        .args(["appliers", "-", "+", "100", consumer])
        .output()
        .unwrap_or_else(|e| panic!("running redis-cli: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().filter(|l| l.contains('-')).count()
}

async fn replica_name(http: &reqwest::Client, server: &Server) -> String {
    let (status, body) = get_json(
        http,
        &format!("{}/api/v1/status", server.base),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["replica"]
        .as_str()
        .unwrap_or_else(|| panic!("no replica name in {body}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_a_burst_and_one_takes_over_what_a_killed_one_held() {
    let _turn = NEO4J.lock().await;
    let deliveries = burst(24);
    let expected = single_node_twin(&deliveries).await;

    empty_neo4j().await;
    let prefix = fresh_prefix("replicas");
    // Replica A reaches Neo4j through a proxy, so the test can make it hold
    // a change it cannot apply at the moment it is killed.
    let proxy = FaultProxy::start(&neo4j_url()).await;
    let mut a = start_replica(&replica(&proxy.url("bolt"), &redis_url(), &prefix)).await;
    let b = start_replica(&replica(&neo4j_url(), &redis_url(), &prefix)).await;
    let http = client();
    let a_name = replica_name(&http, &a).await;

    let mut answers: BTreeMap<String, Vec<Answer>> = BTreeMap::new();
    let (first, rest) = deliveries.split_at(12);
    for (i, d) in first.iter().enumerate() {
        let (to, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        answers
            .entry(d.id.clone())
            .or_default()
            .push(send(&http, to, d).await);
        // Every third delivery is sent again, to the other replica, as a
        // sender retrying after a timeout would.
        if i % 3 == 0 {
            answers
                .entry(d.id.clone())
                .or_default()
                .push(send(&http, other, d).await);
        }
    }

    // A's Neo4j goes silent; A keeps accepting into the shared stream, and
    // the next change its worker takes stays in its hands, unacknowledged.
    proxy.black_hole();
    let mut stranded = false;
    let mut rest = rest.iter();
    for d in rest.by_ref() {
        answers
            .entry(d.id.clone())
            .or_default()
            .push(send(&http, &a, d).await);
        for _ in 0..20 {
            if pending_for(&prefix, &a_name) > 0 {
                stranded = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if stranded {
            break;
        }
    }
    assert!(stranded, "replica A never held a change");
    // A dies; the connections it held close with it, so Neo4j rolls back
    // the transaction A had open.
    a.kill();
    drop(proxy);

    // The rest goes to B, with resends of deliveries A accepted.
    for d in rest {
        answers
            .entry(d.id.clone())
            .or_default()
            .push(send(&http, &b, d).await);
    }
    for d in &first[..4] {
        answers
            .entry(d.id.clone())
            .or_default()
            .push(send(&http, &b, d).await);
    }

    settled(&http, &b.base).await;
    assert_eq!(
        pending_for(&prefix, &a_name),
        0,
        "A's change was taken over"
    );
    for (id, got) in &answers {
        assert_eq!(got[0], Answer::Accepted, "{id}: {got:?}");
        assert!(
            got[1..].iter().all(|a| *a == Answer::Duplicate),
            "{id} was accepted once, then recognised: {got:?}"
        );
    }
    let store = Neo4jStore::connect(Neo4jOptions::local(neo4j_url()))
        .await
        .unwrap_or_else(|e| panic!("connecting to Neo4j: {e}"));
    let twin = shape(&store).await;
    for d in &deliveries {
        assert!(
            twin.nodes
                .contains_key(&NodeRef::new("Account", format!("github:{}", d.login))),
            "{} is in the shared twin",
            d.login
        );
    }
    assert_eq!(twin, expected, "the replicas' twin is the single node's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_neo4j_makes_the_replica_unready_and_accepted_changes_land_when_it_returns() {
    let _turn = NEO4J.lock().await;
    empty_neo4j().await;
    let prefix = fresh_prefix("neo4j-down");
    let mut proxy = FaultProxy::start(&neo4j_url()).await;
    let server = start_replica(&replica(&proxy.url("bolt"), &redis_url(), &prefix)).await;
    let http = client();

    proxy.go_down().await;
    let why = wait_unready(&http, &server).await;
    assert!(why.contains("graph store"), "{why}");

    let deliveries = burst(8);
    for d in &deliveries {
        assert_eq!(send(&http, &server, d).await, Answer::Accepted, "{}", d.id);
    }
    let (_, status) = get_json(
        &http,
        &format!("{}/api/v1/status", server.base),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status["graph"]["state"], "down", "{status}");
    assert!(
        status["queue"]["depth"].as_u64().is_some_and(|n| n > 0),
        "accepted changes wait: {status}"
    );

    proxy.heal().await;
    settled(&http, &server.base).await;
    wait_ready(&http, &server).await;
    for d in &deliveries {
        let entity = account(&http, &server.base, &format!("github:{}", d.login)).await;
        let history = entity["history"].as_array().map_or(0, Vec::len);
        assert_eq!(history, 1, "applied once: {entity}");
    }
}

/// A Redis server of this test's own, so it can be stopped and started
/// again on the same port with the same data folder.
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let mut redis = OwnRedis {
            port: free_port(),
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            child: None,
        };
        redis.resume();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting redis-server: {e}"));
        self.child = Some(child);
        for _ in 0..100 {
            let pong = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
                .unwrap_or(false);
            if pong {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not answer within 10 s");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_is_a_degraded_state_and_the_replica_recovers_when_it_returns() {
    let _turn = NEO4J.lock().await;
    empty_neo4j().await;
    let mut redis = OwnRedis::start();
    let prefix = fresh_prefix("redis-down");
    let server = start_replica(&replica(&neo4j_url(), &redis.url(), &prefix)).await;
    let http = client();
    let deliveries = burst(4);
    assert_eq!(send(&http, &server, &deliveries[0]).await, Answer::Accepted);
    settled(&http, &server.base).await;

    redis.stop();
    let why = wait_unready(&http, &server).await;
    assert!(why.contains("cache"), "{why}");
    assert_eq!(
        send(&http, &server, &deliveries[1]).await,
        Answer::Refused(503),
        "refused while nothing can be de-duplicated or queued"
    );
    let (status, _) = get_json(&http, &format!("{}/healthz", server.base), None).await;
    assert_eq!(status, 200, "the process itself is alive");
    let (_, state) = get_json(
        &http,
        &format!("{}/api/v1/status", server.base),
        Some(VIEWER),
    )
    .await;
    assert_eq!(state["cache"]["state"], "down", "{state}");
    let (status, findings) = get_json(
        &http,
        &format!("{}/api/v1/findings", server.base),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 200, "reads go on from the twin: {findings}");

    redis.resume();
    wait_ready(&http, &server).await;
    assert_eq!(
        send(&http, &server, &deliveries[0]).await,
        Answer::Duplicate,
        "what was accepted before the outage is remembered"
    );
    for d in &deliveries[1..] {
        assert_eq!(send(&http, &server, d).await, Answer::Accepted, "{}", d.id);
    }
    settled(&http, &server.base).await;
    for d in &deliveries {
        account(&http, &server.base, &format!("github:{}", d.login)).await;
    }
}

async fn readyz(http: &reqwest::Client, server: &Server) -> (u16, String) {
    let resp = http
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Waits until `/readyz` says no, and returns why.
async fn wait_unready(http: &reqwest::Client, server: &Server) -> String {
    for _ in 0..300 {
        let (status, body) = readyz(http, server).await;
        if status == 503 {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replica still said it was ready after 30 s");
}

async fn wait_ready(http: &reqwest::Client, server: &Server) {
    let mut last = String::new();
    for _ in 0..300 {
        let (status, body) = readyz(http, server).await;
        if status == 200 {
            return;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replica was not ready again after 30 s: {last}");
}
