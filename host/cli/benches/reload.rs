//! How fast a new version serves, and what a swap costs the decisions made
//! meanwhile. `cargo bench -p org-mesh --bench reload` (needs `.ci/setup`
//! and `.ci/build-plugins`).
//!
//! 1. File change to serving: the real `org-mesh serve` watching copies of
//!    the shipped policy folder and plugins; each round saves a new
//!    version as an editor does and polls `/api/v1/reloads` every 2 ms
//!    until it reports that version applied. The figure includes the
//!    watcher's 100 ms quiet period, by design.
//! 2. Decision latency while swapping: one thread decides on a fixed
//!    finding through an `RwLock<Arc<PolicySet>>`, the way the twin holds
//!    its policies, first alone and then while another thread loads the
//!    folder again and swaps the set in as fast as it can. Reported as p50
//!    and p99 of each phase and their ratio, measured in one run, since
//!    these shared machines drift between runs.
//!
//! Numbers are printed, never asserted.

#![expect(clippy::panic, reason = "a benchmark that cannot set up fails loudly")]
#![expect(clippy::print_stderr, reason = "a benchmark reports on stderr")]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use common::*;
use org_mesh_harness::root;
use org_mesh_policy::{DecisionInput, PolicySet};
use serde_json::Value;
use sha2::{Digest, Sha256};

const POLICY_ROUNDS: usize = 20;
const PLUGIN_ROUNDS: usize = 10;
const DECISIONS_PER_PHASE: usize = 20_000;

/// The sample at `per_mille`/1000 of the way through `sorted`.
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    let index = (sorted.len().saturating_sub(1) * per_mille).div_ceil(1000);
    sorted.get(index).copied().unwrap_or_default()
}

fn summary(what: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 500), percentile(&samples, 990));
    eprintln!(
        "{what}: n={} p50={p50:?} p90={:?} p99={p99:?} max={:?}",
        samples.len(),
        percentile(&samples, 900),
        samples.last().copied().unwrap_or_default()
    );
    (p50, p99)
}

async fn serving(http: &reqwest::Client, base: &str, kind: &str, candidate: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let (_, body) = get_json(http, &format!("{base}/api/v1/reloads"), Some(VIEWER)).await;
        let applied = body["reloads"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r: &Value| {
                r["kind"] == kind
                    && r["outcome"] == "applied"
                    && r["serving"]
                        .as_str()
                        .is_some_and(|s| s.ends_with(candidate))
            });
        if applied {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("{kind} {candidate} did not serve within 30 s");
}

async fn file_change_to_serving() {
    let (server, copies) = start_on_copies(&[("ORG_MESH_LOG", "error")]).await;
    let (plugins, policies) = (copies.plugins.clone(), copies.policies.clone());
    let http = client();

    let rego = policies.join("drift.rego");
    let original = std::fs::read(&rego).unwrap_or_else(|e| panic!("{e}"));
    let mut samples = Vec::new();
    for round in 0..POLICY_ROUNDS {
        let mut content = original.clone();
        content.extend_from_slice(format!("\n# bench round {round}\n").as_bytes());
        let started = Instant::now();
        save(&rego, &content);
        let version = org_mesh_watch::content_hash(&policies)
            .map(|(h, _)| h.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        serving(&http, &server.base, "policy", &version).await;
        samples.push(started.elapsed());
    }
    summary("policy: file change to serving", samples);

    let wasm = plugins.join("identity-drift/identity_drift.wasm");
    let component = std::fs::read(&wasm).unwrap_or_else(|e| panic!("{e}"));
    let mut samples = Vec::new();
    for round in 0..PLUGIN_ROUNDS {
        let content = rebuilt(&component, &format!("round-{round}"));
        let digest = hex::encode(Sha256::digest(&content))[..12].to_string();
        let started = Instant::now();
        save(&wasm, &content);
        serving(&http, &server.base, "plugin", &digest).await;
        samples.push(started.elapsed());
    }
    summary("plugin: file change to serving", samples);
}

fn decision_latency_while_swapping() {
    let dir = root().join("policies");
    let set = PolicySet::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let current = Arc::new(RwLock::new(Arc::new(set)));
    let input: DecisionInput = serde_json::from_value(serde_json::json!({
        "detector": "identity-drift",
        "rule": "idp-offboarded-has-admin",
        "subject": {"label": "Account", "key": "github:octocat"},
        "key": "",
        "title": "bench",
        "score": 1.0,
        "default_severity": "high",
        "attributes": {},
        "evidence_count": 3,
        "has_remedy": true,
        "now": "2026-12-04T00:00:00Z"
    }))
    .unwrap_or_else(|e| panic!("{e}"));

    let decide_many = |current: &RwLock<Arc<PolicySet>>| {
        let mut samples = Vec::with_capacity(DECISIONS_PER_PHASE);
        for _ in 0..DECISIONS_PER_PHASE {
            let started = Instant::now();
            let set = current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            set.decide(&input).unwrap_or_else(|e| panic!("{e}"));
            samples.push(started.elapsed());
        }
        samples
    };

    let steady = decide_many(&current);
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (current, stop) = (current.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut swaps = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let next = Arc::new(PolicySet::load(&dir).unwrap_or_else(|e| panic!("{e}")));
                *current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
                swaps += 1;
            }
            swaps
        })
    };
    let during = decide_many(&current);
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper
        .join()
        .unwrap_or_else(|_| panic!("the swapping thread panicked"));

    let (s50, s99) = summary("decision, steady", steady);
    let (d50, d99) = summary(&format!("decision, during {swaps} swaps"), during);
    eprintln!(
        "decision latency during swaps / steady: p50 x{:.2}, p99 x{:.2}",
        d50.as_secs_f64() / s50.as_secs_f64().max(1e-9),
        d99.as_secs_f64() / s99.as_secs_f64().max(1e-9)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then this only checks that it builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    decision_latency_while_swapping();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(file_change_to_serving());
}
