//! The org-owners detector, written in Python, inside org-mesh: `org-mesh
//! scan` syncs the recorded GitHub organisation (replayed on 127.0.0.1 by
//! `@octokit/fixtures-server`) into the twin and runs the detector on it.
//!
//! Needs `.ci/setup` (the replay's npm packages, componentize-py) and
//! `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::path::Path;
use std::process::Command;

use org_mesh_harness::{GITHUB_TOKEN, replay, root};
use serde_json::Value;

/// A scan configuration with the GitHub connector and org-owners, the
/// detector configured with `detector_config` (a YAML flow mapping).
fn config(dir: &Path, detector_config: &str) -> std::path::PathBuf {
    let text = format!(
        "state_dir: {state}
plugins:
  dirs: [{plugins}]
policies:
  dir: {policies}
connectors:
  - name: github
    plugin: github-connector
    config:
      api_url: ${{GITHUB_API_URL}}
      org: octokit-fixture-org
      per_page: 100
    grants:
      http_hosts: [\"${{GITHUB_API_HOST}}\"]
      secrets:
        token: {{ env: GITHUB_TOKEN }}
detectors:
  - name: org-owners
    plugin: org-owners
    grants:
      graph: true
    config: {detector_config}
",
        state = dir.join("state").display(),
        plugins = root().join("plugins/dist").display(),
        policies = root().join("policies").display(),
    );
    let path = dir.join("org-mesh.yaml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// The org-owners findings of one scan, as `--json` prints them.
fn scan(config: &Path) -> Vec<Value> {
    let scenario = replay().scenario("org-scan");
    let out = Command::new(env!("CARGO_BIN_EXE_org-mesh"))
        .args(["scan", "--json", "--config"])
        .arg(config)
        .env(
            "ORG_MESH_PLUGINS__CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"),
        )
        .env("GITHUB_API_URL", &scenario.api_url)
        .env("GITHUB_API_HOST", replay().host())
        .env("GITHUB_TOKEN", GITHUB_TOKEN)
        .output()
        .unwrap_or_else(|e| panic!("running org-mesh: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("Left out of the scan"),
        "the detector did not run: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|f| f["detector"] == "org-owners")
        .collect()
}

#[test]
fn the_python_detector_finds_the_single_owner_of_the_recorded_organisation() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let findings = scan(&config(dir.path(), "{}"));
    let [finding] = findings.as_slice() else {
        panic!("expected one finding, got {findings:#?}");
    };
    assert_eq!(finding["rule"], "org-owners-too-few");
    assert_eq!(
        finding["subject"],
        "Organisation(github:octokit-fixture-org)"
    );
    assert_eq!(finding["severity"], "low", "the rule's default severity");
    assert_eq!(
        finding["title"],
        "octokit-fixture-org has 1 owner, fewer than 2"
    );
    assert_eq!(
        finding["attributes"]["owners"],
        serde_json::json!(["octocat"])
    );
    assert_eq!(finding["attributes"]["limit"], 2);
    let owner = &finding["evidence"][0];
    assert_eq!(owner["subject"], "Account(github:octocat)");
    assert_eq!(
        owner["statement"],
        "octocat is an owner of octokit-fixture-org"
    );
    assert_eq!(
        owner["source"], "github",
        "evidence keeps the twin's provenance"
    );

    // The same twin under a looser floor: the operator's config decides.
    // The state folder is shared, so the compiled plugin comes from its
    // cache.
    let findings = scan(&config(dir.path(), "{ min_owners: 1, max_owners: 1 }"));
    assert!(findings.is_empty(), "{findings:#?}");
}
