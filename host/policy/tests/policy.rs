//! Loads the shipped `policies/` folder and small throwaway folders, and
//! checks decisions, load failures and tuning errors end to end.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use org_mesh_model::{Finding, NodeRef, Properties, Remedy, Severity, Timestamp, Value};
use org_mesh_policy::{
    ActionFacts, Approval, ApprovalInput, ApproverRole, Decision, DecisionInput, FindingFacts,
    KNOWN_RULES, PolicyError, PolicySet, SubjectPattern, TestOutcome, Tuning, TuningError,
};
use tempfile::TempDir;
use time::macros::datetime;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NOW: Timestamp = datetime!(2025-01-15 12:00 UTC);

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn shipped() -> Result<PolicySet, PolicyError> {
    PolicySet::load(&shipped_dir())
}

/// A folder holding the given files, the shipped drift.rego under its own
/// name when `with_drift` is set.
fn folder(with_drift: bool, files: &[(&str, &str)]) -> Result<TempDir, std::io::Error> {
    let dir = tempfile::tempdir()?;
    if with_drift {
        fs::copy(
            shipped_dir().join("drift.rego"),
            dir.path().join("drift.rego"),
        )?;
    }
    for (name, text) in files {
        fs::write(dir.path().join(name), text)?;
    }
    Ok(dir)
}

fn finding(rule: &str, subject: NodeRef, default: Severity, attrs: &[(&str, &str)]) -> Finding {
    let attributes: Properties = attrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::Text((*v).to_owned())))
        .collect();
    let remedy = Remedy {
        action: "remove-member".into(),
        target: subject.clone(),
        parameters: Properties::new(),
    };
    Finding {
        detector: "identity-drift".into(),
        rule: rule.into(),
        fingerprint: org_mesh_model::fingerprint(rule, &subject, ""),
        subject,
        key: String::new(),
        title: format!("{rule} finding"),
        score: 0.95,
        default_severity: default,
        attributes,
        evidence: Vec::new(),
        remedy: Some(remedy),
    }
}

fn account(key: &str) -> NodeRef {
    NodeRef::new("Account", key)
}

fn decide(set: &PolicySet, finding: &Finding, now: Timestamp) -> Result<Decision, PolicyError> {
    set.decide(&DecisionInput::from_finding(finding, now))
}

// --- the shipped folder ----------------------------------------------------

#[test]
fn shipped_policies_load_and_their_tests_pass() -> TestResult {
    let set = shipped()?;
    assert!(set.tests().len() >= 20, "tests run: {:?}", set.tests());
    assert!(
        set.tests()
            .iter()
            .any(|t| t == "data.orgmesh.drift_test.test_auto_fix_refused_for_critical_by_tuning")
    );
    let tuning = set.tuning().ok_or("shipped tuning not loaded")?;
    for rule in KNOWN_RULES {
        assert!(tuning.rules.contains_key(*rule), "{rule} not tuned");
    }
    assert!(tuning.suppressions.is_empty());
    assert_eq!(tuning.thresholds.auto_fix_min_score, Some(0.9));
    Ok(())
}

#[test]
fn shipped_policy_rates_every_first_party_rule() -> TestResult {
    let set = shipped()?;
    let expected = [
        ("idp-offboarded-has-access", Severity::High),
        ("idp-offboarded-has-admin", Severity::Critical),
        ("account-unlinked", Severity::Medium),
        ("account-without-mfa", Severity::Medium),
        ("outside-collaborator-admin", Severity::High),
        ("default-branch-unprotected", Severity::High),
        ("branch-protection-below-baseline", Severity::Medium),
        ("org-2fa-not-required", Severity::Medium),
    ];
    for (rule, severity) in expected {
        // The detector's suggestion is deliberately off: the tuning decides.
        let f = finding(rule, account("github:alice"), Severity::Info, &[]);
        let decision = decide(&set, &f, NOW)?;
        assert_eq!(decision.severity, Some(severity), "{rule}");
        assert_eq!(decision.suppressed, Some(false), "{rule}");
        assert_eq!(decision.suppress_reason, None, "{rule}");
        // The shipped tuning lets nothing run unattended.
        assert_eq!(decision.auto_fix, Some(false), "{rule}");
        assert!(!decision.may_act());
        assert!(decision.undefined_fields().is_empty(), "{rule}");
    }
    Ok(())
}

#[test]
fn offboarded_person_with_admin_role_is_critical() -> TestResult {
    let set = shipped()?;
    let subject = account("okta:bob@example.com");
    let f = finding(
        "idp-offboarded-has-access",
        subject.clone(),
        Severity::High,
        &[("role", "admin"), ("system", "github")],
    );
    assert_eq!(decide(&set, &f, NOW)?.severity, Some(Severity::Critical));
    let member = finding("idp-offboarded-has-access", subject, Severity::High, &[]);
    assert_eq!(decide(&set, &member, NOW)?.severity, Some(Severity::High));
    Ok(())
}

#[test]
fn rule_unknown_to_tuning_keeps_detector_severity() -> TestResult {
    let set = shipped()?;
    let f = finding("vendor-rule", account("github:x"), Severity::Low, &[]);
    let decision = decide(&set, &f, NOW)?;
    assert_eq!(decision.severity, Some(Severity::Low));
    assert_eq!(decision.auto_fix, Some(false));
    Ok(())
}

#[test]
fn policy_set_is_shared_across_threads() -> TestResult {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PolicySet>();
    let set = Arc::new(shipped()?);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let set = Arc::clone(&set);
            std::thread::spawn(move || {
                let f = finding(
                    "account-unlinked",
                    account(&format!("github:u{i}")),
                    Severity::Low,
                    &[],
                );
                decide(&set, &f, NOW).map(|d| d.severity)
            })
        })
        .collect();
    for handle in handles {
        let severity = handle.join().map_err(|_| "decision thread panicked")??;
        assert_eq!(severity, Some(Severity::Medium));
    }
    Ok(())
}

// --- unattended fixes and suppressions with custom tuning -------------------

const PERMISSIVE_TUNING: &str = r#"
rules:
  account-unlinked: { severity: medium, auto_fix: true }
  idp-offboarded-has-admin: { severity: critical, auto_fix: true }
thresholds:
  auto_fix_min_score: 0.9
suppressions:
  - rule: account-unlinked
    subject: "Account(github:build-bot)"
    reason: CI service account
    expires: 2030-01-01T00:00:00Z
"#;

#[test]
fn auto_fix_follows_tuning_threshold_and_severity() -> TestResult {
    let dir = folder(true, &[("drift-rules.yaml", PERMISSIVE_TUNING)])?;
    let set = PolicySet::load(dir.path())?;

    let mut f = finding(
        "account-unlinked",
        account("github:alice"),
        Severity::Low,
        &[],
    );
    let allowed = decide(&set, &f, NOW)?;
    assert_eq!(allowed.auto_fix, Some(true));
    assert!(allowed.may_act());

    f.score = 0.5;
    assert!(!decide(&set, &f, NOW)?.may_act(), "score below threshold");

    let critical = finding(
        "idp-offboarded-has-admin",
        account("github:bob"),
        Severity::High,
        &[],
    );
    let refused = decide(&set, &critical, NOW)?;
    assert_eq!(refused.severity, Some(Severity::Critical));
    assert_eq!(refused.auto_fix, Some(false));
    Ok(())
}

#[test]
fn suppression_applies_until_it_expires() -> TestResult {
    let dir = folder(true, &[("drift-rules.yaml", PERMISSIVE_TUNING)])?;
    let set = PolicySet::load(dir.path())?;
    let f = finding(
        "account-unlinked",
        account("github:build-bot"),
        Severity::Low,
        &[],
    );

    let active = decide(&set, &f, datetime!(2029-12-31 23:59 UTC))?;
    assert_eq!(active.suppressed, Some(true));
    assert_eq!(
        active.suppress_reason.as_deref(),
        Some("CI service account")
    );
    assert!(!active.may_act(), "a suppressed finding is not fixed");
    assert!(active.undefined_fields().is_empty());

    let expired = decide(&set, &f, datetime!(2030-01-01 00:00 UTC))?;
    assert_eq!(expired.suppressed, Some(false));
    assert_eq!(expired.suppress_reason, None);
    assert!(expired.may_act());

    let other = finding(
        "account-unlinked",
        account("github:alice"),
        Severity::Low,
        &[],
    );
    assert_eq!(decide(&set, &other, NOW)?.suppressed, Some(false));
    Ok(())
}

// --- policies that leave decisions undefined or give bad values -------------

#[test]
fn severity_is_undefined_when_the_policy_omits_it() -> TestResult {
    let policy = "package orgmesh.drift\n\nimport rego.v1\n\ndefault suppressed := false\n";
    let dir = folder(false, &[("partial.rego", policy)])?;
    let set = PolicySet::load(dir.path())?;
    let f = finding(
        "account-unlinked",
        account("github:alice"),
        Severity::Medium,
        &[],
    );
    let decision = decide(&set, &f, NOW)?;
    assert_eq!(decision.severity, None);
    assert_eq!(decision.suppressed, Some(false));
    assert_eq!(decision.auto_fix, None);
    assert!(!decision.may_act());
    assert_eq!(decision.undefined_fields(), ["severity", "auto_fix"]);
    assert_eq!(
        decision.effective_severity(Severity::Medium),
        Severity::Medium
    );
    Ok(())
}

#[test]
fn severity_is_undefined_when_the_rule_does_not_hold() -> TestResult {
    let policy = r#"package orgmesh.drift

import rego.v1

default suppressed := false
default auto_fix := true

severity := "high" if input.rule == "something-else"
"#;
    let dir = folder(false, &[("partial.rego", policy)])?;
    let set = PolicySet::load(dir.path())?;
    let f = finding(
        "account-unlinked",
        account("github:alice"),
        Severity::Medium,
        &[],
    );
    let decision = decide(&set, &f, NOW)?;
    assert_eq!(decision.severity, None);
    assert_eq!(decision.undefined_fields(), ["severity"]);
    Ok(())
}

#[test]
fn unknown_severity_string_names_the_rule() -> TestResult {
    let policy = "package orgmesh.drift\n\nimport rego.v1\n\nseverity := \"urgent\"\n";
    let dir = folder(false, &[("odd.rego", policy)])?;
    let set = PolicySet::load(dir.path())?;
    let f = finding(
        "account-unlinked",
        account("github:alice"),
        Severity::Medium,
        &[],
    );
    let err = decide(&set, &f, NOW).err().ok_or("urgent accepted")?;
    let text = err.to_string();
    assert!(matches!(err, PolicyError::Output { .. }), "{text}");
    assert!(text.contains("data.orgmesh.drift.severity"), "{text}");
    assert!(text.contains("odd.rego"), "{text}");
    assert!(text.contains("\"urgent\""), "{text}");
    Ok(())
}

#[test]
fn wrongly_typed_flag_names_the_rule() -> TestResult {
    let policy = "package orgmesh.drift\n\nimport rego.v1\n\nauto_fix := \"yes\"\n";
    let dir = folder(false, &[("odd.rego", policy)])?;
    let set = PolicySet::load(dir.path())?;
    let f = finding(
        "account-unlinked",
        account("github:alice"),
        Severity::Medium,
        &[],
    );
    let text = decide(&set, &f, NOW)
        .err()
        .ok_or("string flag accepted")?
        .to_string();
    assert!(text.contains("data.orgmesh.drift.auto_fix"), "{text}");
    assert!(text.contains("true or false"), "{text}");
    Ok(())
}

#[test]
fn evaluation_error_names_rule_and_file() -> TestResult {
    let policy = r#"package orgmesh.drift

import rego.v1

severity := "high" if time.parse_rfc3339_ns(input.title) > 0
"#;
    let dir = folder(false, &[("broken.rego", policy)])?;
    let set = PolicySet::load(dir.path())?;
    let f = finding(
        "account-unlinked",
        account("github:alice"),
        Severity::Medium,
        &[],
    );
    let err = decide(&set, &f, NOW).err().ok_or("bad date accepted")?;
    let text = err.to_string();
    assert!(matches!(err, PolicyError::Eval { .. }), "{text}");
    assert!(text.contains("data.orgmesh.drift.severity"), "{text}");
    assert!(text.contains("broken.rego"), "{text}");
    Ok(())
}

// --- load failures -------------------------------------------------------------

#[test]
fn rego_syntax_error_names_file_and_line() -> TestResult {
    let policy = "package orgmesh.drift\n\nimport rego.v1\n\nseverity := \"high\" if {\n  input.rule ==\n}\n";
    let dir = folder(false, &[("bad.rego", policy)])?;
    let err = PolicySet::load(dir.path())
        .err()
        .ok_or("syntax error accepted")?;
    let text = err.to_string();
    let PolicyError::Rego { at, .. } = &err else {
        return Err(format!("unexpected error: {text}").into());
    };
    assert_eq!(at.path, dir.path().join("bad.rego"));
    assert!(matches!(at.line, Some(6 | 7)), "{text}");
    assert!(text.contains("bad.rego:"), "{text}");
    Ok(())
}

#[test]
fn rego_compile_error_names_file_and_line() -> TestResult {
    let policy = "package orgmesh.drift\n\nimport rego.v1\n\nseverity := \"low\" if {\n  level == \"x\"\n}\n";
    let dir = folder(false, &[("unsafe.rego", policy)])?;
    let err = PolicySet::load(dir.path())
        .err()
        .ok_or("unsafe variable accepted")?;
    let text = err.to_string();
    assert!(text.contains("unsafe.rego:6"), "{text}");
    assert!(text.contains("level"), "{text}");
    Ok(())
}

#[test]
fn failing_tests_are_named() -> TestResult {
    let policy = "package orgmesh.drift\n\nimport rego.v1\n\nseverity := \"low\"\n";
    let tests = r#"package orgmesh.drift_test

import rego.v1

# test_in_a_comment is not a rule and must not be run.
test_passes if data.orgmesh.drift.severity == "low"

test_is_false if data.orgmesh.drift.severity == "high"

test_not_a_boolean := 3
"#;
    let by_file_name = "package orgmesh.checks\n\nimport rego.v1\n\ntest_from_file_name := false\n";
    let dir = folder(
        false,
        &[
            ("p.rego", policy),
            ("p_test.rego", tests),
            ("checks_test.rego", by_file_name),
        ],
    )?;
    let err = PolicySet::load(dir.path())
        .err()
        .ok_or("failing tests accepted")?;
    let text = err.to_string();
    let PolicyError::TestsFailed { failures } = &err else {
        return Err(format!("unexpected error: {text}").into());
    };
    let names: Vec<&str> = failures.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(
        names,
        [
            "data.orgmesh.checks.test_from_file_name",
            "data.orgmesh.drift_test.test_is_false",
            "data.orgmesh.drift_test.test_not_a_boolean",
        ]
    );
    assert_eq!(failures[1].outcome, TestOutcome::Undefined);
    assert_eq!(failures[2].outcome, TestOutcome::NotTrue("3".into()));
    assert!(
        text.contains("p_test.rego: data.orgmesh.drift_test.test_is_false"),
        "{text}"
    );
    Ok(())
}

#[test]
fn empty_or_missing_folder_is_an_error() -> TestResult {
    let dir = folder(false, &[("notes.txt", "not policy")])?;
    assert!(matches!(
        PolicySet::load(dir.path()),
        Err(PolicyError::NoPolicies { .. })
    ));
    let missing = dir.path().join("missing");
    let err = PolicySet::load(&missing)
        .err()
        .ok_or("missing folder accepted")?;
    assert!(matches!(err, PolicyError::ReadDir { .. }));
    assert!(err.to_string().contains("missing"));
    Ok(())
}

#[test]
fn a_version_names_the_decision_rules_it_drops() -> TestResult {
    let serving = shipped()?;
    assert_eq!(
        serving.decision_rules(),
        [
            "data.orgmesh.drift.severity",
            "data.orgmesh.drift.suppressed",
            "data.orgmesh.drift.suppress_reason",
            "data.orgmesh.drift.auto_fix",
            "data.orgmesh.approval.decision",
        ]
    );
    assert!(shipped()?.drops_rules_of(&serving).is_empty());

    // The drift policy alone: no approval decision.
    let drift_only = folder(true, &[])?;
    let candidate = PolicySet::load(drift_only.path())?;
    assert_eq!(
        candidate.drops_rules_of(&serving),
        ["data.orgmesh.approval.decision"]
    );
    // Going the other way drops nothing.
    assert!(serving.drops_rules_of(&candidate).is_empty());

    // A drift package that only rates.
    let rates_only = folder(
        false,
        &[(
            "drift.rego",
            "package orgmesh.drift\n\nseverity := input.default_severity\n",
        )],
    )?;
    let candidate = PolicySet::load(rates_only.path())?;
    assert_eq!(
        candidate.drops_rules_of(&serving),
        [
            "data.orgmesh.drift.suppressed",
            "data.orgmesh.drift.suppress_reason",
            "data.orgmesh.drift.auto_fix",
            "data.orgmesh.approval.decision",
        ]
    );
    Ok(())
}

#[test]
fn a_version_without_the_tuning_file_is_said_to_drop_it() -> TestResult {
    let serving = shipped()?;
    assert!(!shipped()?.drops_tuning_of(&serving));
    let untuned = tempfile::tempdir()?;
    for entry in fs::read_dir(shipped_dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rego") {
            fs::copy(
                &path,
                untuned.path().join(path.file_name().unwrap_or_default()),
            )?;
        }
    }
    // Renamed, as an editor or a ConfigMap key might leave it.
    fs::copy(
        shipped_dir().join("drift-rules.yaml"),
        untuned.path().join("drift-rules.yml"),
    )?;
    let candidate = PolicySet::load(untuned.path())?;
    assert!(candidate.tuning().is_none());
    assert!(candidate.drops_rules_of(&serving).is_empty());
    assert!(candidate.drops_tuning_of(&serving));
    assert!(!serving.drops_tuning_of(&candidate));
    Ok(())
}

#[test]
fn tests_stop_at_the_first_that_hits_the_time_limit() -> TestResult {
    let slow = r#"package orgmesh.slow_test

import rego.v1

# A search of 25 million pairs that finds nothing: longer than the limit.
_spin if {
	some i in numbers.range(1, 5000)
	some j in numbers.range(1, 5000)
	i * j == -1
}

test_one if not _spin
test_two if not _spin
test_three if not _spin
test_four if not _spin
"#;
    let dir = folder(true, &[("slow_test.rego", slow)])?;
    let Err(PolicyError::TestsFailed { failures }) = PolicySet::load(dir.path()) else {
        return Err("a folder whose tests all hit the time limit loaded".into());
    };
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        matches!(&failures[0].outcome, TestOutcome::Error(reason) if reason.contains("limit")),
        "{failures:?}"
    );
    Ok(())
}

// --- the tuning file -----------------------------------------------------------

fn tuning_error(yaml: &str) -> Result<(TuningError, String), Box<dyn std::error::Error>> {
    let dir = folder(true, &[("drift-rules.yaml", yaml)])?;
    let err = PolicySet::load(dir.path()).err().ok_or("tuning accepted")?;
    let text = err.to_string();
    match err {
        PolicyError::Tuning(inner) => {
            assert!(text.contains("drift-rules.yaml"), "file not named: {text}");
            Ok((inner, text))
        }
        other => Err(format!("not a tuning error: {other}").into()),
    }
}

#[test]
fn tuning_unknown_field_names_file_and_line() -> TestResult {
    let (err, text) =
        tuning_error("rules:\n  account-unlinked:\n    severity: low\n    sevrity: high\n")?;
    let TuningError::Parse { at, reason } = err else {
        return Err(format!("unexpected error: {text}").into());
    };
    assert_eq!(at.line, Some(4), "{text}");
    assert!(reason.contains("sevrity"), "{text}");
    Ok(())
}

#[test]
fn tuning_wrong_severity_names_field_and_line() -> TestResult {
    let (err, text) = tuning_error("rules:\n  account-unlinked:\n    severity: urgent\n")?;
    let TuningError::Invalid { problems, .. } = err else {
        return Err(format!("unexpected error: {text}").into());
    };
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "rules.account-unlinked.severity");
    assert_eq!(problems[0].line, Some(3));
    assert!(text.contains("urgent"), "{text}");
    Ok(())
}

#[test]
fn tuning_reports_every_problem_at_once() -> TestResult {
    let yaml = r#"rules:
  account-unlinked: { severity: urgent }
  account-without-mfa: { severity: severe }
thresholds:
  auto_fix_min_score: 1.5
suppressions:
  - rule: account-unlinked
    subject: github:alice
    reason: ""
    expires: next tuesday
"#;
    let (err, text) = tuning_error(yaml)?;
    let TuningError::Invalid { problems, .. } = err else {
        return Err(format!("unexpected error: {text}").into());
    };
    let fields: Vec<(&str, Option<u64>)> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.line))
        .collect();
    assert_eq!(
        fields,
        [
            ("rules.account-unlinked.severity", Some(2)),
            ("rules.account-without-mfa.severity", Some(3)),
            ("thresholds.auto_fix_min_score", Some(5)),
            ("suppressions[0].subject", Some(8)),
            ("suppressions[0].reason", Some(9)),
            ("suppressions[0].expires", Some(10)),
        ],
        "{text}"
    );
    Ok(())
}

#[test]
fn tuning_malformed_yaml_names_file() -> TestResult {
    let (err, text) = tuning_error("rules:\n  account-unlinked: [severity: low\nthresholds: {\n")?;
    assert!(matches!(err, TuningError::Parse { .. }), "{text}");
    Ok(())
}

#[test]
fn tuning_alias_bomb_fails_fast() -> TestResult {
    let mut yaml = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let refs = vec![format!("*a{}", level - 1); 10].join(", ");
        yaml.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
    }
    let start = Instant::now();
    let (err, text) = tuning_error(&yaml)?;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert!(matches!(err, TuningError::Parse { .. }), "{text}");
    Ok(())
}

#[test]
fn tuning_alias_flood_hits_the_budget() -> TestResult {
    // Well-typed all the way down, so only the alias budget can stop it.
    let mut yaml = String::from(
        "suppressions:\n  - &s {rule: account-unlinked, subject: \"*\", reason: r, expires: 2030-01-01T00:00:00Z}\n",
    );
    for _ in 0..300 {
        yaml.push_str("  - *s\n");
    }
    let start = Instant::now();
    let (err, text) = tuning_error(&yaml)?;
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(matches!(err, TuningError::Parse { .. }), "{text}");
    assert!(text.contains("alias"), "{text}");
    Ok(())
}

#[test]
fn tuning_deep_nesting_fails_fast() -> TestResult {
    let flow_sequence = format!("rules: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let flow_mapping = format!("rules: {}x{}\n", "{a: ".repeat(10_000), "}".repeat(10_000));
    let block_sequence = format!("suppressions:\n  {}x\n", "- ".repeat(10_000));
    for yaml in [flow_sequence, flow_mapping, block_sequence] {
        let start = Instant::now();
        let (err, text) = tuning_error(&yaml)?;
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "took {:?}",
            start.elapsed()
        );
        assert!(matches!(err, TuningError::Parse { .. }), "{text}");
    }
    Ok(())
}

#[test]
fn tuning_parses_subjects_and_empty_sections() -> TestResult {
    let path = Path::new("inline.yaml");
    let tuning = Tuning::parse(
        "rules:\nsuppressions:\n  - {rule: r, subject: \"Repository(github:acme/site)\", reason: why, expires: \"2030-01-01T00:00:00+02:00\"}\n",
        path,
    )?;
    assert!(tuning.rules.is_empty());
    assert_eq!(
        tuning.suppressions[0].subject,
        SubjectPattern::Node(NodeRef::new("Repository", "github:acme/site"))
    );
    assert_eq!(Tuning::parse("# nothing yet\n", path)?, Tuning::default());
    Ok(())
}

/// As `opa test` does: a `test_` rule runs wherever it is, and a test
/// defined twice is not let pass on its passing half.
#[test]
fn tests_run_in_any_package_and_a_repeated_one_is_refused() -> TestResult {
    let drift_local =
        "package orgmesh.drift\n\nimport rego.v1\n\ntest_in_the_policy_package if {\n\t1 == 2\n}\n";
    let checks = "package orgmesh.checks\n\nimport rego.v1\n\ntest_twice if {\n\ttrue\n}\n\ntest_twice if {\n\tfalse\n}\n";
    let dir = folder(
        true,
        &[("local.rego", drift_local), ("checks.rego", checks)],
    )?;
    let Err(PolicyError::TestsFailed { failures }) = PolicySet::load(dir.path()) else {
        return Err("failing tests accepted".into());
    };
    let found: Vec<(&str, &TestOutcome)> = failures
        .iter()
        .map(|f| (f.rule.as_str(), &f.outcome))
        .collect();
    assert_eq!(
        found,
        [
            ("data.orgmesh.checks.test_twice", &TestOutcome::Repeated(2)),
            (
                "data.orgmesh.drift.test_in_the_policy_package",
                &TestOutcome::Undefined
            ),
        ]
    );
    Ok(())
}

#[test]
fn a_yaml_1_1_boolean_is_refused_in_the_tuning_file() {
    let path = Path::new("drift-rules.yaml");
    for spelling in ["yes", "\"no\"", "on"] {
        let text = format!("rules:\n  account-unlinked:\n    auto_fix: {spelling}\n");
        assert!(
            matches!(Tuning::parse(&text, path), Err(TuningError::Parse { .. })),
            "{spelling} was taken as a boolean"
        );
    }
    let text = "rules:\n  account-unlinked:\n    auto_fix: true\n";
    assert!(Tuning::parse(text, path).is_ok());
}

#[test]
fn a_duplicate_key_names_the_key_and_line_without_the_parser_s_advice() {
    let text =
        "rules:\n  account-unlinked: {severity: high}\n  account-unlinked: {severity: low}\n";
    let err = Tuning::parse(text, Path::new("drift-rules.yaml"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("drift-rules.yaml:3")
            && err.contains("duplicate mapping key: account-unlinked")
            && !err.contains("DuplicateKeyPolicy"),
        "{err}"
    );
}

#[test]
fn unconditional_rule_conflict_fails_the_load() -> TestResult {
    let policy = "package orgmesh.drift\n\nimport rego.v1\n\nseverity := \"low\"\n\nseverity := \"high\" if true\n";
    let dir = folder(false, &[("twice.rego", policy)])?;
    let err = PolicySet::load(dir.path())
        .err()
        .ok_or("conflict accepted")?;
    let text = err.to_string();
    assert!(text.contains("twice.rego:7"), "{text}");
    assert!(text.contains("conflict"), "{text}");
    Ok(())
}

fn approval_input(kind: &str, severity: Severity, auto_fix: Option<bool>) -> ApprovalInput {
    let target = NodeRef::new("Repository", "github:acme/site");
    ApprovalInput {
        action: ActionFacts {
            executor: "github-fix".into(),
            kind: kind.into(),
            target: target.clone(),
            parameters: serde_json::json!({}),
        },
        finding: FindingFacts {
            rule: "branch-protection-below-baseline".into(),
            fingerprint: "f1".into(),
            subject: target,
            severity,
            score: 1.0,
            auto_fix,
            suppressed: Some(false),
        },
        now: NOW,
    }
}

#[test]
fn the_shipped_approval_policy_asks_people_for_what_takes_access_away() -> TestResult {
    let set = shipped()?;
    assert!(set.has_approval_policy());
    let auto = set.approval(&approval_input(
        "github.restore-branch-protection",
        Severity::Medium,
        Some(true),
    ))?;
    assert_eq!(auto, Some(Approval::Auto));
    let reviewed = set.approval(&approval_input(
        "github.remove-org-member",
        Severity::High,
        Some(true),
    ))?;
    assert_eq!(
        reviewed,
        Some(Approval::Approve {
            approvers: 1,
            role: ApproverRole::Approver,
            expires_in_secs: 86400
        })
    );
    Ok(())
}

#[test]
fn an_approval_of_the_wrong_shape_is_an_error_and_a_missing_policy_is_no_answer() -> TestResult {
    let dir = folder(
        true,
        &[(
            "approval.rego",
            "package orgmesh.approval\n\nimport rego.v1\n\ndecision := {\"mode\": \"approve\", \"approvers\": 0, \"role\": \"approver\", \"expires_in_secs\": 60}\n",
        )],
    )?;
    let set = PolicySet::load(dir.path())?;
    let err = set
        .approval(&approval_input("x.y", Severity::Low, None))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("approval.rego"), "{err}");
    assert!(err.contains("approvers >= 1"), "{err}");

    let bare = folder(true, &[])?;
    let set = PolicySet::load(bare.path())?;
    assert!(!set.has_approval_policy());
    assert_eq!(
        set.approval(&approval_input("x.y", Severity::Low, None))?,
        None
    );
    Ok(())
}
