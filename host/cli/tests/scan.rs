//! `org-mesh scan` end to end: the real binary, the real plugins, and
//! recorded GitHub traffic replayed on 127.0.0.1 by `@octokit/fixtures-server`
//! (see conformance/replay), beside the Okta export in examples/demo.
//!
//! Needs `.ci/setup` (npm packages of the replay) and `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use org_mesh_harness::{GITHUB_TOKEN, Scenario, replay, root};

fn scenario(name: &str) -> Scenario {
    replay().scenario(name)
}

fn pending(s: &Scenario) -> Vec<serde_json::Value> {
    replay().pending(s)
}

struct Scan {
    state: tempfile::TempDir,
}

impl Scan {
    fn new() -> Scan {
        Scan {
            state: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        }
    }

    fn run(&self, config: &Path, scenario: &Scenario, args: &[&str]) -> Output {
        self.run_with(config, scenario, args, &[])
    }

    /// As `run`, with extra environment variables for org-mesh.
    fn run_with(
        &self,
        config: &Path,
        scenario: &Scenario,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        Command::new(env!("CARGO_BIN_EXE_org-mesh"))
            .arg("scan")
            .arg("--config")
            .arg(config)
            .args(args)
            .env("ORG_MESH_STATE_DIR", self.state.path())
            // Shared with the other scans: compiling every plugin again per
            // test costs minutes of CPU.
            .env(
                "ORG_MESH_PLUGINS__CACHE_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"),
            )
            .env("GITHUB_API_URL", &scenario.api_url)
            .env("GITHUB_API_HOST", replay().host())
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("running org-mesh: {e}"))
    }
}

fn demo_config() -> PathBuf {
    root().join("examples/demo/org-mesh.yaml")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_findings(out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Fails unless every (rule, subject, severity) is among `rules`.
fn assert_found(rules: &[(String, String, String)], expected: &[(&str, &str, &str)]) {
    for (rule, subject, severity) in expected {
        let want = (rule.to_string(), subject.to_string(), severity.to_string());
        assert!(rules.contains(&want), "{want:?} missing from {rules:?}");
    }
}

fn rules_of(findings: &[serde_json::Value]) -> Vec<(String, String, String)> {
    let mut rules: Vec<_> = findings
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_string(),
                f["subject"].as_str().unwrap_or_default().to_string(),
                f["severity"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    rules.sort();
    rules
}

#[test]
fn the_demo_scan_reports_real_findings_and_consumes_the_recording() {
    let url = scenario("org-scan");
    let scan = Scan::new();
    let out = scan.run(&demo_config(), &url, &[]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        pending(&url).is_empty(),
        "requests not made: {:?}",
        pending(&url)
    );

    assert!(text.starts_with("org-mesh scan: "), "{text}");
    assert!(
        text.contains("\nCRITICAL\n  idp-offboarded-has-admin  Account(github:octocat)"),
        "{text}"
    );
    assert!(
        text.contains("DELETE "),
        "the dry-run plan lists the call: {text}"
    );
    assert!(!text.contains("SKIPPED"), "{text}");
}

#[test]
fn json_output_carries_evidence_decisions_and_plans() {
    let url = scenario("org-scan");
    let out = Scan::new().run(&demo_config(), &url, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = json_findings(&out);
    let rules = rules_of(&findings);
    assert_found(
        &rules,
        &[
            (
                "idp-offboarded-has-admin",
                "Account(github:octocat)",
                "critical",
            ),
            ("account-without-mfa", "Account(github:octocat)", "high"),
            (
                "org-2fa-not-required",
                "Organisation(github:octokit-fixture-org)",
                "medium",
            ),
            (
                "branch-protection-below-baseline",
                "Repository(github:octocat/Hello-World)",
                "medium",
            ),
        ],
    );

    let offboarded = findings
        .iter()
        .find(|f| f["rule"] == "idp-offboarded-has-admin")
        .unwrap_or_else(|| panic!("no offboarding finding"));
    let sources: Vec<&str> = offboarded["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["source"].as_str())
        .collect();
    assert!(
        sources.contains(&"okta") && sources.contains(&"github"),
        "{sources:?}"
    );
    assert!(offboarded["evidence"][0]["first_seen"].is_string());
    assert_eq!(
        offboarded["decision"]["may_act"], false,
        "critical fixes need a person"
    );
    // What the approval policy says of it, as a proposal would be told.
    assert_eq!(
        offboarded["action"]["approval"], "needs 2 approval(s) by the admin role",
        "{offboarded}"
    );
    let calls = &offboarded["action"]["plan"]["calls"];
    assert_eq!(calls[0]["method"], "DELETE", "{offboarded}");
    assert!(
        calls[0]["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/orgs/octokit-fixture-org/memberships/octocat"),
        "{calls}"
    );
}

#[test]
fn fail_on_exits_3_at_or_above_the_threshold_only() {
    let url = scenario("org-scan");
    let scan = Scan::new();
    let out = scan.run(&demo_config(), &url, &["--fail-on", "critical"]);
    assert_eq!(out.status.code(), Some(3));
    let url = scenario("org-scan");
    let out = scan.run(&demo_config(), &url, &["--fail-on", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown severity"));
}

#[test]
fn a_secondary_rate_limit_is_waited_out_not_reported_as_lost_access() {
    let url = scenario("org-scan-secondary-rate-limit");
    let out = Scan::new().run(&demo_config(), &url, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pending(&url).is_empty());
    let rules = rules_of(&json_findings(&out));
    assert!(
        rules.iter().any(|r| r.0 == "idp-offboarded-has-admin"),
        "{rules:?}"
    );
}

#[test]
fn a_missing_scope_leaves_mfa_unknown_and_the_scan_goes_on() {
    let url = scenario("org-scan-no-scope");
    let out = Scan::new().run(&demo_config(), &url, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pending(&url).is_empty());
    let rules = rules_of(&json_findings(&out));
    assert!(
        !rules.iter().any(|r| r.0 == "account-without-mfa"),
        "{rules:?}"
    );
    assert!(
        rules.iter().any(|r| r.0 == "idp-offboarded-has-admin"),
        "{rules:?}"
    );
}

#[test]
fn the_recorded_unprotected_branch_is_a_finding() {
    let url = scenario("org-scan-unprotected");
    let out = Scan::new().run(&demo_config(), &url, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = rules_of(&json_findings(&out));
    assert!(
        rules.contains(&(
            "default-branch-unprotected".into(),
            "Repository(github:octocat/Hello-World)".into(),
            "high".into()
        )),
        "{rules:?}"
    );
}

#[test]
fn a_second_scan_on_the_same_twin_adds_nothing_and_finds_the_same() {
    let scan = Scan::new();
    let url = scenario("org-scan");
    let first = scan.run(&demo_config(), &url, &["--json"]);
    let url = scenario("org-scan");
    let second = scan.run(&demo_config(), &url, &["--json"]);
    assert!(first.status.success() && second.status.success());
    let fps = |o: &Output| {
        let mut v: Vec<String> = json_findings(o)
            .iter()
            .map(|f| f["fingerprint"].as_str().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(fps(&first), fps(&second));

    let url = scenario("org-scan");
    let text = stdout(&scan.run(&demo_config(), &url, &[]));
    assert!(
        text.contains("synced github (github-connector 0.1.0): "),
        "{text}"
    );
    assert!(
        text.contains("; 0 added, 0 updated, 0 no longer observed"),
        "{text}"
    );
}

/// A copy of the demo with some of its parts broken.
fn broken_demo(edit: impl Fn(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
        for entry in std::fs::read_dir(from)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
        {
            if entry.path().is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name()))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
    };
    copy(&root().join("examples/demo"), &dir.path().join("demo"));
    copy(&root().join("policies"), &dir.path().join("policies"));
    for plugin in std::fs::read_dir(root().join("plugins/dist"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
    {
        copy(
            &plugin.path(),
            &dir.path().join("plugins").join(plugin.file_name()),
        );
    }
    let config = std::fs::read_to_string(dir.path().join("demo/org-mesh.yaml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .replace("../../plugins/dist", "../plugins")
        .replace("../../policies", "../policies");
    std::fs::write(dir.path().join("demo/org-mesh.yaml"), config).unwrap_or_else(|e| panic!("{e}"));
    edit(dir.path());
    dir
}

#[test]
fn broken_parts_are_skipped_and_named_while_the_rest_of_the_scan_runs() {
    let dir = broken_demo(|d| {
        let bad = d.join("plugins/half-written");
        std::fs::create_dir_all(&bad).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(bad.join("manifest.yaml"), "name: half-written\nversion: 0.1.0\nkind: detector\ncomponent: x.wasm\ncapabilities: [teleport]\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            d.join("policies/broken.rego"),
            "package orgmesh.broken\nallow if {\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(d.join("demo/scim-groups.json"), "{not json")
            .unwrap_or_else(|e| panic!("{e}"));
    });
    let url = scenario("org-scan");
    let out = Scan::new().run(&dir.path().join("demo/org-mesh.yaml"), &url, &[]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("half-written/manifest.yaml: unknown capability \"teleport\""),
        "{text}"
    );
    assert!(text.contains("broken.rego"), "{text}");
    assert!(
        text.contains("sync of okta failed: plugin scim-connector 0.1.0: sync"),
        "{text}"
    );
    assert!(
        text.contains("policy: undecided (no policy loaded)"),
        "{text}"
    );
    assert!(
        text.contains("synced github"),
        "the GitHub sync still ran: {text}"
    );
}

#[test]
fn an_unknown_field_in_the_tuning_file_names_the_file() {
    let dir = broken_demo(|d| {
        let path = d.join("policies/drift-rules.yaml");
        let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        text.push_str("\nsurprise: true\n");
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    });
    let url = scenario("org-scan");
    let out = Scan::new().run(&dir.path().join("demo/org-mesh.yaml"), &url, &[]);
    let text = stdout(&out);
    assert!(out.status.success());
    assert!(text.contains("drift-rules.yaml"), "{text}");
    assert!(text.contains("surprise"), "{text}");
}

#[test]
fn an_invalid_configuration_exits_2_naming_each_problem() {
    let dir = broken_demo(|d| {
        let path = d.join("demo/org-mesh.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .replace("name: okta", "name: Okta!");
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    });
    let out = Command::new(env!("CARGO_BIN_EXE_org-mesh"))
        .args(["scan", "--config"])
        .arg(dir.path().join("demo/org-mesh.yaml"))
        .env_remove("GITHUB_API_URL")
        .env_remove("GITHUB_API_HOST")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("connectors.Okta!: name must be lower-case"),
        "{err}"
    );
    assert!(
        err.contains("environment variable GITHUB_API_URL is not set"),
        "{err}"
    );
}

#[test]
fn the_scan_finds_the_same_on_neo4j() {
    let url = std::env::var("ORG_MESH_TEST_NEO4J_URL").unwrap_or_else(|_| {
        panic!(
            "ORG_MESH_TEST_NEO4J_URL is not set: start Neo4j with conformance/neo4j/run start DIR"
        )
    });
    let scenario = scenario("org-scan");
    let out = Scan::new().run_with(
        &demo_config(),
        &scenario,
        &["--json"],
        &[
            ("ORG_MESH_GRAPH__BACKEND", "neo4j"),
            ("ORG_MESH_GRAPH__NEO4J__URI", &url),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = rules_of(&json_findings(&out));
    assert_found(
        &rules,
        &[
            (
                "idp-offboarded-has-admin",
                "Account(github:octocat)",
                "critical",
            ),
            (
                "org-2fa-not-required",
                "Organisation(github:octokit-fixture-org)",
                "medium",
            ),
            (
                "branch-protection-below-baseline",
                "Repository(github:octocat/Hello-World)",
                "medium",
            ),
        ],
    );
    assert!(pending(&scenario).is_empty());
}
