//! `github.restore-branch-protection` and `github.remove-org-member` against
//! a strict scripted GitHub (`common`): GitHub's recorded branch-protection
//! exchange (`@octokit/fixtures`) where it covers the case, written steps
//! where it does not, including the retries after server errors.

mod common;

use serde_json::json;

use common::{BASE, Github, TestResult, from_recording, node, recording, step, summary};
use github_executor::{REMOVE_ORG_MEMBER, RESTORE_BRANCH_PROTECTION, execute, plan};
use org_mesh_plugin::executor::ActionRequest;
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{PluginError, Properties};

const REPO: &str = "octokit-fixture-org/branch-protection";
const PROTECTION: &str = "/repos/octokit-fixture-org/branch-protection/branches/main/protection";

fn request(kind: &str, parameters: Properties, dry_run_only: bool) -> ActionRequest {
    let mut req = common::request(
        kind,
        node("Repository", &format!("github:{REPO}")),
        parameters,
    );
    req.config = json!({"api_url": BASE, "dry_run_only": dry_run_only}).to_string();
    req
}

fn restore(extra: Props) -> ActionRequest {
    let mut parameters = Props::new()
        .text("repository", REPO)
        .text("branch", "main")
        .build();
    parameters.extend(extra.build());
    request(RESTORE_BRANCH_PROTECTION, parameters, false)
}

/// The parameters under which the executor sends the recorded "maximal"
/// PUT body: a baseline plus the lists a baseline cannot express.
fn maximal() -> Props {
    Props::new()
        .boolean("required_status_checks_strict", true)
        .texts("required_status_checks_contexts", vec!["foo/bar".into()])
        .texts(
            "dismissal_restrictions_users",
            vec!["octokit-fixture-user-a".into()],
        )
        .texts("dismissal_restrictions_teams", Vec::new())
        .boolean("dismiss_stale_reviews", true)
        .boolean("require_code_owner_reviews", false)
        .texts("restrictions_users", vec!["octokit-fixture-user-a".into()])
        .texts("restrictions_teams", vec!["a-team".into()])
        .boolean("enforce_admins", true)
}

#[test]
fn baseline_reproduces_the_recorded_minimal_put_exactly() -> TestResult {
    let recorded = recording("branch-protection")?;
    let github = Github::new(recorded.iter().map(from_recording).collect());
    let outcome = execute(
        &restore(Props::new().boolean("enforce_admins", false)),
        &github,
    )
    .map_err(|e| format!("{e:?}"))?;
    github.check_sent()?;
    assert!(outcome.changed);
    assert_eq!(
        summary(&outcome.calls),
        vec![format!("GET {PROTECTION}"), format!("PUT {PROTECTION}")]
    );
    assert_eq!(
        outcome.calls[1].body.as_deref(),
        Some(
            r#"{"required_status_checks":null,"required_pull_request_reviews":null,"restrictions":null,"enforce_admins":false}"#
        )
    );
    // The recording goes on with the maximal PUT and the DELETE.
    assert_eq!(
        github.left(),
        vec![format!("PUT {PROTECTION}"), format!("DELETE {PROTECTION}")]
    );
    Ok(())
}

#[test]
fn the_recorded_maximal_put_needs_lists_a_baseline_cannot_hold() -> TestResult {
    let recorded = recording("branch-protection")?;
    // GitHub answered the minimal PUT with the protection it then had; the
    // executor reads that before its own PUT, a GET the recording lacks.
    let after_minimal = step("GET", PROTECTION, 200, recorded[1]["response"].clone());
    let github = Github::new(vec![after_minimal, from_recording(&recorded[2])]);
    let outcome = execute(&restore(maximal()), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert!(github.left().is_empty());
    Ok(())
}

#[test]
fn plan_makes_no_request_and_shows_the_body_execute_sends() -> TestResult {
    let recorded = recording("branch-protection")?;
    let github = Github::new(Vec::new());
    let planned = plan(&restore(maximal()), &github).map_err(|e| format!("{e:?}"))?;
    assert!(github.sent.borrow().is_empty(), "plan makes no request");
    assert_eq!(
        summary(&planned.calls),
        vec![format!("GET {PROTECTION}"), format!("PUT {PROTECTION}")]
    );
    let github = Github::new(vec![
        from_recording(&recorded[0]),
        from_recording(&recorded[2]),
    ]);
    let outcome = execute(&restore(maximal()), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert_eq!(outcome.calls[1].body, planned.calls[1].body);
    Ok(())
}

#[test]
fn protection_already_at_the_request_changes_nothing() -> TestResult {
    let recorded = recording("branch-protection")?;
    let after_maximal = step("GET", PROTECTION, 200, recorded[2]["response"].clone());
    let github = Github::new(vec![after_maximal]);
    let outcome = execute(&restore(maximal()), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(!outcome.changed);
    assert_eq!(summary(&outcome.calls), vec![format!("GET {PROTECTION}")]);
    Ok(())
}

#[test]
fn a_body_that_would_drop_current_settings_is_refused_before_writing() -> TestResult {
    let recorded = recording("branch-protection")?;
    // The branch has the maximal protection; a baseline asking for two
    // approvals alone would replace its status checks and restrictions.
    let after_maximal = step("GET", PROTECTION, 200, recorded[2]["response"].clone());
    let github = Github::new(vec![after_maximal]);
    let baseline = Props::new()
        .integer("required_approving_review_count", 2)
        .boolean("enforce_admins", true);
    let result = execute(&restore(baseline), &github);
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::InvalidInput(m))
            if m.contains("required_pull_request_reviews, required_status_checks, restrictions")),
        "{result:?}"
    );
    assert_eq!(github.sent.borrow().len(), 1, "only the read was sent");
    Ok(())
}

#[test]
fn a_body_that_only_adds_is_sent_as_planned() -> TestResult {
    let recorded = recording("branch-protection")?;
    // After the minimal PUT every rule is off: raising adds, drops nothing.
    let after_minimal = step("GET", PROTECTION, 200, recorded[1]["response"].clone());
    let put = step("PUT", PROTECTION, 200, json!({})).sending(json!({
        "required_status_checks": null,
        "required_pull_request_reviews": {"required_approving_review_count": 2},
        "restrictions": null,
        "enforce_admins": true,
        "allow_force_pushes": false
    }));
    let github = Github::new(vec![after_minimal, put]);
    let baseline = Props::new()
        .integer("required_approving_review_count", 2)
        .boolean("enforce_admins", true)
        .boolean("allow_force_pushes", false);
    let outcome = execute(&restore(baseline), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    Ok(())
}

#[test]
fn required_signatures_go_through_their_own_endpoint() -> TestResult {
    let recorded = recording("branch-protection")?;
    let put = step("PUT", PROTECTION, 200, json!({})).sending(json!({
        "required_status_checks": null,
        "required_pull_request_reviews": null,
        "restrictions": null,
        "enforce_admins": true
    }));
    let signatures = step(
        "POST",
        &format!("{PROTECTION}/required_signatures"),
        200,
        json!({"enabled": true}),
    );
    let github = Github::new(vec![from_recording(&recorded[0]), put, signatures]);
    let baseline = Props::new()
        .boolean("enforce_admins", true)
        .boolean("required_signatures", true);
    let outcome = execute(&restore(baseline), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert_eq!(outcome.calls.len(), 3);
    Ok(())
}

fn remove() -> ActionRequest {
    request(
        REMOVE_ORG_MEMBER,
        Props::new()
            .text("org", "octokit-fixture-org")
            .text("login", "octokit-fixture-user-b")
            .build(),
        false,
    )
}

const MEMBER: &str = "/orgs/octokit-fixture-org/memberships/octokit-fixture-user-b";

#[test]
fn removal_plan_makes_no_call() -> TestResult {
    let github = Github::new(Vec::new());
    let planned = plan(&remove(), &github).map_err(|e| format!("{e:?}"))?;
    assert!(github.sent.borrow().is_empty());
    assert_eq!(summary(&planned.calls), vec![format!("DELETE {MEMBER}")]);
    assert_eq!(planned.calls[0].body, None);
    Ok(())
}

#[test]
fn removal_changes_once_and_a_404_means_already_gone() -> TestResult {
    let github = Github::new(vec![step("DELETE", MEMBER, 204, json!(""))]);
    let outcome = execute(&remove(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    let github = Github::new(vec![step(
        "DELETE",
        MEMBER,
        404,
        json!({"message": "Not Found"}),
    )]);
    let outcome = execute(&remove(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(!outcome.changed);
    assert_eq!(outcome.calls.len(), 1);
    Ok(())
}

#[test]
fn a_removal_answered_with_server_errors_is_sent_again_with_doubling_waits() -> TestResult {
    let failing = || step("DELETE", MEMBER, 502, json!({"message": "Server Error"}));
    let github = Github::new(vec![
        failing(),
        failing(),
        step("DELETE", MEMBER, 204, json!("")),
    ]);
    let outcome = execute(&remove(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(*github.slept.borrow(), vec![1, 2]);
    assert!(
        outcome.detail.contains("is not a member"),
        "{}",
        outcome.detail
    );
    Ok(())
}

#[test]
fn a_write_that_keeps_failing_gives_up_naming_the_call() -> TestResult {
    let failing = || {
        step(
            "DELETE",
            MEMBER,
            503,
            json!({"message": "Service Unavailable"}),
        )
    };
    let github = Github::new(vec![failing(), failing(), failing(), failing()]);
    let result = execute(&remove(), &github);
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::Upstream(m))
            if m.contains(&format!("DELETE {BASE}{MEMBER}")) && m.contains("503")),
        "{result:?}"
    );
    assert_eq!(*github.slept.borrow(), vec![1, 2, 4]);
    Ok(())
}

#[test]
fn every_action_is_in_the_manifest_summary() -> TestResult {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/manifest.yaml"))
        .map_err(|e| e.to_string())?;
    for action in github_executor::ACTIONS {
        assert!(
            manifest.contains(action),
            "{action} missing from manifest.yaml"
        );
    }
    assert!(manifest.contains("page_size:"));
    Ok(())
}

#[test]
fn dry_run_only_refuses_execute_but_plans() -> TestResult {
    let mut req = remove();
    req.config = json!({"api_url": BASE, "dry_run_only": true}).to_string();
    let github = Github::new(Vec::new());
    let result = execute(&req, &github);
    assert!(matches!(result, Err(PluginError::Denied(_))), "{result:?}");
    assert!(github.sent.borrow().is_empty());
    assert!(plan(&req, &github).is_ok());
    Ok(())
}

#[test]
fn a_token_without_admin_rights_is_forbidden() -> TestResult {
    let github = Github::new(vec![step(
        "GET",
        PROTECTION,
        403,
        json!({"message": "Must have admin rights to Repository."}),
    )]);
    let result = execute(&restore(Props::new()), &github);
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::Forbidden(m))
            if m.contains("main in octokit-fixture-org/branch-protection")
                && m.contains("Must have admin rights")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn a_missing_branch_is_named() -> TestResult {
    // Written: GitHub's answer for a branch that does not exist.
    let github = Github::new(vec![step(
        "GET",
        PROTECTION,
        404,
        json!({"message": "Branch not found"}),
    )]);
    let result = execute(&restore(Props::new()), &github);
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::Upstream(m))
            if m.contains("branch main of repository octokit-fixture-org/branch-protection was not found")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn a_protection_read_answered_with_server_errors_is_read_again() -> TestResult {
    let recorded = recording("branch-protection")?;
    let github = Github::new(vec![
        step("GET", PROTECTION, 502, json!({"message": "Server Error"})),
        step("GET", PROTECTION, 503, json!("")),
        from_recording(&recorded[0]),
        from_recording(&recorded[1]),
    ]);
    let outcome = execute(
        &restore(Props::new().boolean("enforce_admins", false)),
        &github,
    )
    .map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(*github.slept.borrow(), vec![1, 2]);
    Ok(())
}

#[test]
fn a_put_answered_with_a_server_error_is_sent_again_only_after_reading() -> TestResult {
    let recorded = recording("branch-protection")?;
    // Written: the PUT fails with a 502 and did not take effect, so the
    // second read still finds the branch unprotected.
    let mut failing = from_recording(&recorded[1]);
    failing.status = 502;
    failing.answer = json!({"message": "Server Error"});
    failing.headers.clear();
    let github = Github::new(vec![
        from_recording(&recorded[0]),
        failing,
        from_recording(&recorded[0]),
        from_recording(&recorded[1]),
    ]);
    let outcome = execute(
        &restore(Props::new().boolean("enforce_admins", false)),
        &github,
    )
    .map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(
        summary(&outcome.calls),
        vec![
            format!("GET {PROTECTION}"),
            format!("PUT {PROTECTION}"),
            format!("GET {PROTECTION}"),
            format!("PUT {PROTECTION}"),
        ]
    );
    assert_eq!(*github.slept.borrow(), vec![1]);
    Ok(())
}
