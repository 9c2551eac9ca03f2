//! The Neo4j and Redis that tests of several replicas share.
//!
//! `.ci/run` starts both on 127.0.0.1 (`conformance/neo4j/run`,
//! `conformance/redis/run`) and sets `ORG_MESH_TEST_NEO4J_URL` and
//! `ORG_MESH_TEST_REDIS_URL`; without them these helpers fail the test.
//! Community Neo4j has one database, so the tests of a binary take turns
//! on [`NEO4J`] and each starts from an empty twin; each uses a Redis key
//! prefix of its own.

use org_mesh_store::{Neo4jOptions, Neo4jStore};

use super::{Server, start_with};

/// Held by each test for as long as it uses Neo4j. Test binaries run one
/// at a time, but the tests inside one run in parallel.
pub static NEO4J: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn required(variable: &str, start: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: start the server with {start} DIR and set {variable} from DIR"
        )
    })
}

pub fn neo4j_url() -> String {
    required("ORG_MESH_TEST_NEO4J_URL", "conformance/neo4j/run start")
}

pub fn redis_url() -> String {
    required("ORG_MESH_TEST_REDIS_URL", "conformance/redis/run start")
}

pub async fn neo4j() -> Neo4jStore {
    Neo4jStore::connect(Neo4jOptions::local(neo4j_url()))
        .await
        .unwrap_or_else(|e| panic!("connecting to Neo4j: {e}"))
}

pub async fn empty_neo4j() {
    neo4j()
        .await
        .wipe()
        .await
        .unwrap_or_else(|e| panic!("wiping Neo4j: {e}"));
}

/// A key prefix no other test run uses.
pub fn fresh_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("test-{test}-{}-{nanos}:", std::process::id())
}

/// The settings of a replica on Neo4j at `graph` and Redis at `cache`.
/// Work a replica took and did not finish is taken over after 2 s, and the
/// store gives up on a silent Neo4j after 2 s, so the tests stay short.
pub fn replica(graph: &str, cache: &str, prefix: &str) -> Vec<(String, String)> {
    [
        ("ORG_MESH_GRAPH__BACKEND", "neo4j"),
        ("ORG_MESH_GRAPH__NEO4J__URI", graph),
        ("ORG_MESH_GRAPH__NEO4J__TIMEOUT_SECS", "2"),
        ("ORG_MESH_CACHE__BACKEND", "redis"),
        ("ORG_MESH_CACHE__REDIS__URL", cache),
        ("ORG_MESH_CACHE__REDIS__PREFIX", prefix),
        ("ORG_MESH_CACHE__REDIS__TIMEOUT_SECS", "2"),
        ("ORG_MESH_CACHE__RECLAIM_AFTER_SECS", "2"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec()
}

/// Settings as `start_with` and `start_again` take them.
pub fn pairs(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

pub async fn start_replica(settings: &[(String, String)]) -> Server {
    start_with(&pairs(settings)).await
}
