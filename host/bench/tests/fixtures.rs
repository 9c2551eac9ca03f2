//! The benches' fixtures are what they claim to be, and both sides of each
//! comparison that can run here give the same answer. Timings are never
//! checked: benches report, tests check behaviour.

use std::collections::BTreeMap;
use std::sync::Arc;

use org_mesh_bench::latency::{self, Server};
use org_mesh_bench::plugin::{self, Twin};
use org_mesh_bench::policy::{self, Compiled, Fixture};
use org_mesh_bench::synth::{self, Shape};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SMALL: Shape = Shape {
    people: 100,
    accounts: 300,
    repositories: 50,
    edges: 1_000,
};

#[test]
fn the_generator_makes_the_requested_shape() -> TestResult {
    let org = synth::generate(SMALL, 1)?;
    let mut labels = BTreeMap::new();
    for node in &org.nodes {
        *labels.entry(node.label.as_str()).or_insert(0) += 1;
    }
    assert_eq!(labels.get("Person"), Some(&100));
    assert_eq!(labels.get("Account"), Some(&300));
    assert_eq!(labels.get("Repository"), Some(&50));
    assert_eq!(labels.get("Organisation"), Some(&2));
    assert_eq!(org.edges.len(), 1_000);

    let mut kinds = BTreeMap::new();
    for edge in &org.edges {
        *kinds.entry(edge.kind.as_str()).or_insert(0) += 1;
    }
    assert_eq!(kinds.get("IDENTITY_OF"), Some(&300));
    assert_eq!(kinds.get("MEMBER_OF"), Some(&200));
    assert_eq!(kinds.get("OWNS"), Some(&50));
    assert_eq!(kinds.get("HAS_PERMISSION"), Some(&450));
    assert_eq!(org.records(), 1_452);
    Ok(())
}

#[test]
fn the_generator_is_seeded_and_its_records_are_valid() -> TestResult {
    let org = synth::generate(SMALL, 1)?;
    assert_eq!(org, synth::generate(SMALL, 1)?);
    assert_ne!(org, synth::generate(SMALL, 2)?);

    let keys: std::collections::BTreeSet<_> = org.nodes.iter().map(|n| n.reference()).collect();
    assert_eq!(keys.len(), org.nodes.len(), "node keys repeat");
    let pairs: std::collections::BTreeSet<_> = org
        .edges
        .iter()
        .map(|e| (&e.kind, &e.from, &e.to))
        .collect();
    assert_eq!(pairs.len(), org.edges.len(), "edges repeat");
    for edge in &org.edges {
        assert!(
            keys.contains(&edge.from) && keys.contains(&edge.to),
            "{edge:?}"
        );
        edge.clone().normalised()?;
    }
    for node in &org.nodes {
        node.clone().normalised()?;
    }
    // Batches keep every record, nodes before edges.
    let batches = org.batches(100);
    assert_eq!(
        batches
            .iter()
            .map(|b| b.nodes.len() + b.edges.len())
            .sum::<usize>(),
        org.records()
    );
    Ok(())
}

#[test]
fn the_generator_refuses_shapes_it_cannot_make() {
    let too_few_edges = Shape { edges: 10, ..SMALL };
    assert!(synth::generate(too_few_edges, 1).is_err());
    let too_many = Shape {
        edges: 100_000,
        ..SMALL
    };
    assert!(synth::generate(too_many, 1).is_err());
}

#[test]
fn the_large_shape_is_the_one_benchmarked() {
    assert_eq!(Shape::LARGE.scaled_down(1_000), SMALL);
}

#[test]
fn policy_engines_decide_alike() -> TestResult {
    let fixture = Fixture::new()?;
    let compiled = Compiled::new(&fixture)?;
    let mut decisions = Vec::new();
    for input in &fixture.inputs {
        let shipped = fixture.decide(input)?;
        assert_eq!(
            policy::collect(compiled.eval(input)?)?,
            shipped,
            "{input:?}"
        );
        decisions.push(shipped);
    }
    // The findings take the branches they are there for.
    assert_eq!(
        decisions[0],
        json!({"severity": "low", "suppressed": false, "auto_fix": true})
    );
    assert_eq!(decisions[1]["auto_fix"], json!(false));
    assert_eq!(decisions[2]["severity"], json!("critical"));
    assert_eq!(decisions[4]["severity"], json!("high"));
    assert_eq!(decisions[5]["suppressed"], json!(true));
    assert_eq!(decisions[6]["suppressed"], json!(false));
    assert_eq!(
        decisions[7]["suppress_reason"],
        json!("branch protection rollout in progress; static site, no review needed")
    );
    assert_eq!(decisions[8]["suppressed"], json!(true));
    assert_eq!(decisions[9]["severity"], json!("high"));
    Ok(())
}

#[test]
fn the_opa_query_names_the_rules_org_mesh_asks_for() {
    for rule in policy::RULES {
        assert!(
            org_mesh_bench::opa::DECISION_QUERY.contains(&format!("\"{rule}\"")),
            "{rule}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detector_finds_the_same_sandboxed_and_native() -> TestResult {
    assert!(
        plugin::built(),
        "{} is missing: run .ci/build-plugins first",
        plugin::dist().display()
    );
    let twin = Arc::new(Twin::offboarded_admin()?);
    let native = plugin::native_findings(&twin)?;
    assert!(
        native
            .iter()
            .any(|(rule, subject, _)| rule == "idp-offboarded-has-admin"
                && subject == "Account(github:alice)"),
        "{native:?}"
    );
    let (_runtime, detector) = plugin::sandboxed(twin.clone()).await?;
    let out = detector.detect(false, &twin.change_set()).await?;
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(plugin::sandboxed_findings(&out), native);
    Ok(())
}

#[test]
fn okta_requests_are_shaped_as_okta_sends_them() -> TestResult {
    assert_eq!(
        latency::filter_path("/v2", &latency::user_name(42)),
        "/v2/Users?filter=userName%20eq%20%22person000042%40example.com%22&startIndex=1&count=100"
    );
    let patch: serde_json::Value = serde_json::from_str(&latency::active_patch(false))?;
    assert_eq!(
        patch["Operations"],
        json!([{"op": "replace", "value": {"active": false}}])
    );
    let user = latency::user(7);
    assert_eq!(user["userName"], "person000007@example.com");
    assert_eq!(user["active"], true);
    assert_eq!(user["groups"], json!([]));
    // What both servers are compared on leaves out what neither keeps.
    let kept = latency::comparable(&user);
    assert!(kept.get("password").is_none() && kept.get("groups").is_none());
    assert_eq!(kept["externalId"], "00u00000000000000007");
    let names: std::collections::BTreeSet<_> = (0..100_000).map(latency::user_name).collect();
    assert_eq!(names.len(), 100_000);
    Ok(())
}

#[test]
fn the_webhook_body_adds_the_named_member_and_is_signed() -> TestResult {
    let body = latency::member_added("someone-new", 12_345)?;
    let payload: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(payload["action"], "member_added");
    assert_eq!(payload["membership"]["user"]["login"], "someone-new");
    assert_eq!(payload["membership"]["state"], "active");
    let signature = latency::sign(body.as_bytes())?;
    assert!(signature.starts_with("sha256=") && signature.len() == 7 + 64);
    assert_eq!(
        latency::account_subject("someone-new"),
        "Account(github:someone-new)"
    );
    Ok(())
}

/// The `org-mesh` binary this test can use: `ORG_MESH_BENCH_BIN`, or the
/// debug build a workspace test run makes beside this test.
fn org_mesh_binary() -> Option<std::path::PathBuf> {
    latency::org_mesh_binary().or_else(|| {
        let built = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()?
            .join("debug/org-mesh");
        built.is_file().then_some(built)
    })
}

#[expect(clippy::print_stderr, reason = "says why the comparison was left out")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_scim_servers_return_the_same_user_for_the_same_filter() -> TestResult {
    let peer_bin = latency::scim2_server_binary();
    assert!(
        peer_bin.is_file(),
        "no scim2-server at {}: run .ci/setup",
        peer_bin.display()
    );
    // A workspace test run builds the binary; `cargo test -p` alone does not.
    let Some(bin) = org_mesh_binary() else {
        eprintln!("skipped: no org-mesh binary; run the workspace tests or set ORG_MESH_BENCH_BIN");
        return Ok(());
    };
    assert!(
        plugin::built(),
        "{} is missing: run .ci/build-plugins first",
        plugin::dist().display()
    );
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-plugin-cache");
    let ours = Server::org_mesh(&bin, &cache).await?;
    let peer = Server::scim2_server(&peer_bin).await?;
    let mut ours_ids = Vec::new();
    for i in 0..5 {
        ours_ids.push(ours.create(i).await?);
    }
    let peer_ids = peer.create_bulk(0..5, 2).await?;
    assert_eq!(peer_ids.len(), 5);
    for i in [0, 3, 4] {
        let user = latency::agree(&ours, &peer, i, (&ours_ids[i], &peer_ids[i])).await?;
        assert_eq!(user, latency::comparable(&latency::user(i)));
    }
    Ok(())
}
