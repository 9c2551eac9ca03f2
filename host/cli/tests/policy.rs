//! `org-mesh policy test` and `org-mesh policy eval` on the shipped policy
//! folder and on broken copies of it.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::path::Path;
use std::process::{Command, Output};

use org_mesh_harness::root;
use serde_json::Value;

fn org_mesh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_org-mesh"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running org-mesh: {e}"))
}

/// `org-mesh policy eval --input INPUT` followed by `args`.
fn policy_eval(input: &Path, args: &[&str]) -> Output {
    let input = input.display().to_string();
    let mut all = vec!["policy", "eval", "--input", input.as_str()];
    all.extend_from_slice(args);
    org_mesh(&all)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn copy_policies(to: &Path) {
    for entry in std::fs::read_dir(root().join("policies")).unwrap_or_else(|e| panic!("{e}")) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_shipped_policy_tests_pass_and_each_is_listed() {
    let dir = root().join("policies");
    let out = org_mesh(&["policy", "test", &dir.display().to_string()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("ok    data.orgmesh.drift_test.test_"),
        "{stdout}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.starts_with("PASS: "), "{stdout}");
    assert!(summary.contains("policy version "), "{stdout}");
}

#[test]
fn a_failing_test_is_named_and_exits_1_and_broken_rego_exits_2() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    copy_policies(dir.path());
    std::fs::write(
        dir.path().join("extra_test.rego"),
        "package orgmesh.extra_test\n\nimport rego.v1\n\ntest_arithmetic if {\n\t1 + 1 == 3\n}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = org_mesh(&["policy", "test", &dir.path().display().to_string()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("FAIL  data.orgmesh.extra_test.test_arithmetic"),
        "{stdout}"
    );

    std::fs::write(
        dir.path().join("extra_test.rego"),
        "package broken\n\nthis is not rego {\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = org_mesh(&["policy", "test", &dir.path().display().to_string()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("extra_test.rego"),
        "names the file: {stderr}"
    );
}

/// A folder that passes its tests but that serve would refuse in place of
/// the shipped one passes here too, with a note saying so.
#[test]
fn a_folder_without_decision_rules_or_tuning_passes_with_notes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    copy_policies(dir.path());
    for file in ["approval.rego", "approval_test.rego", "drift-rules.yaml"] {
        std::fs::remove_file(dir.path().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let out = org_mesh(&["policy", "test", &dir.path().display().to_string()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "note: it declares no data.orgmesh.approval.decision: findings go without that \
             decision, or no fix runs; serve refuses it as a reload of a folder that declares them"
        ) && stdout.contains("note: it has no drift-rules.yaml"),
        "{stdout}"
    );
}

#[test]
fn eval_prints_the_decision_with_the_policy_version() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        serde_json::json!({
            "detector": "identity-drift",
            "rule": "idp-offboarded-has-admin",
            "subject": {"label": "Account", "key": "github:octocat"},
            "key": "",
            "title": "octocat still has admin rights after offboarding",
            "score": 1.0,
            "default_severity": "high",
            "attributes": {},
            "evidence_count": 3,
            "has_remedy": true
        })
        .to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let policies = root().join("policies");
    let out = policy_eval(&input, &["--dir", &policies.display().to_string()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let printed: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(printed["decision"]["severity"], "critical", "{printed}");
    let version = org_mesh_watch::content_hash(&policies)
        .map(|(h, _)| h.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(printed["policy_version"], version.as_str(), "{printed}");

    std::fs::write(&input, "{\"rule\": 3}").unwrap_or_else(|e| panic!("{e}"));
    let out = policy_eval(&input, &["--dir", &policies.display().to_string()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a decision input"), "{stderr}");
}

#[test]
fn eval_says_which_engine_decided() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        serde_json::json!({
            "detector": "identity-drift",
            "rule": "account-without-mfa",
            "subject": {"label": "Account", "key": "github:octocat"},
            "key": "",
            "title": "octocat has no second factor",
            "score": 1.0,
            "default_severity": "low",
            "attributes": {"role": "admin"},
            "evidence_count": 1,
            "has_remedy": false
        })
        .to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let eval = |policies: &Path, engine: &str| {
        let out = policy_eval(
            &input,
            &[
                "--dir",
                &policies.display().to_string(),
                "--evaluator",
                engine,
            ],
        );
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
        serde_json::from_str::<Value>(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    };
    let shipped = root().join("policies");
    let interpreted = eval(&shipped, "interpreter");
    let compiled = eval(&shipped, "bytecode");
    assert_eq!(interpreted["evaluator"], "interpreter");
    assert_eq!(compiled["evaluator"], "bytecode");
    assert_eq!(compiled["decision"], interpreted["decision"]);
    assert_eq!(compiled["decision"]["severity"], "high", "{compiled}");

    // A version the bytecode engine misreads is decided by the interpreter.
    let copy = dir.path().join("policies");
    std::fs::create_dir(&copy).unwrap_or_else(|e| panic!("{e}"));
    copy_policies(&copy);
    let drift = copy.join("drift.rego");
    let text_before = std::fs::read_to_string(&drift).unwrap_or_else(|e| panic!("{e}"));
    let misread = text_before.replacen(
        "_tuned := _settings.severity if {\n\t_settings.severity\n}",
        "_tuned := s if {\n\ts := _settings.severity\n}",
        1,
    );
    assert_ne!(misread, text_before);
    std::fs::write(&drift, misread).unwrap_or_else(|e| panic!("{e}"));
    let fallen_back = eval(&copy, "bytecode");
    assert_eq!(fallen_back["evaluator"], "interpreter", "{fallen_back}");
    assert_eq!(fallen_back["decision"], interpreted["decision"]);

    let out = policy_eval(&input, &["--evaluator", "quick"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"quick\" is not interpreter or bytecode"),
        "{stderr}"
    );
}

#[test]
fn output_read_only_in_part_ends_quietly_with_the_same_status() {
    let dir = root().join("policies");
    let mut child = Command::new(env!("CARGO_BIN_EXE_org-mesh"))
        .args(["policy", "test"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running org-mesh: {e}"));
    // The reader goes away before the command writes a line, as `| head`
    // does once it has its lines.
    drop(child.stdout.take());
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for org-mesh: {e}"));
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
