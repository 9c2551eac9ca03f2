//! `github.remove-repo-collaborator` against GitHub's recorded
//! `add-and-remove-repository-collaborator` exchange (`@octokit/fixtures`):
//! the collaborator list with octokit-fixture-user-b in it, the DELETE that
//! removes him, and the list without him. Written steps cover the failures
//! the recording does not hold.
//!
//! The executor lists only direct collaborators (`affiliation=direct`), a
//! query the recording did not send. The recorded answers are still the
//! right ones for what these tests look at: user-b joined by accepting a
//! direct invitation, so he is in the direct list exactly when he is in the
//! full one, and the executor looks for no one else.

mod common;

use serde_json::json;

use common::{
    BASE, Github, TestResult, assert_refused_before_sending, from_recording, narrowed, node,
    not_found, recording, request, step, summary,
};
use github_executor::{REMOVE_REPO_COLLABORATOR, execute, plan};
use org_mesh_plugin::executor::ActionRequest;
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::PluginError;

const REPO: &str = "octokit-fixture-org/add-and-remove-repository-collaborator";
const LIST: &str = "/repos/octokit-fixture-org/add-and-remove-repository-collaborator/collaborators?affiliation=direct&per_page=100";
const USER_B: &str = "/repos/octokit-fixture-org/add-and-remove-repository-collaborator/collaborators/octokit-fixture-user-b";
const DIRECT: &str = "affiliation=direct&per_page=100";

/// The recorded exchanges used here, by their place in the recording.
const LISTED_WITH_B: usize = 3;
const REMOVE_B: usize = 4;
const LISTED_WITHOUT_B: usize = 5;

fn remove(repository: &str, login: &str) -> ActionRequest {
    request(
        REMOVE_REPO_COLLABORATOR,
        node("Account", &format!("github:{login}")),
        Props::new()
            .text("repository", repository)
            .text("login", login)
            .build(),
    )
}

fn remove_b() -> ActionRequest {
    remove(REPO, "octokit-fixture-user-b")
}

#[test]
fn the_recording_is_the_exchange_these_tests_assume() -> TestResult {
    let recorded = recording("add-and-remove-repository-collaborator")?;
    let logins = |i: usize| -> Vec<String> {
        recorded[i]["response"]
            .as_array()
            .map(|users| {
                users
                    .iter()
                    .filter_map(|u| u["login"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        logins(LISTED_WITH_B),
        vec!["octokit-fixture-user-a", "octokit-fixture-user-b"]
    );
    assert_eq!(logins(LISTED_WITHOUT_B), vec!["octokit-fixture-user-a"]);
    let remove = from_recording(&recorded[REMOVE_B]);
    assert_eq!(
        (remove.method.as_str(), remove.path.as_str()),
        ("DELETE", USER_B)
    );
    assert_eq!(remove.status, 204);
    Ok(())
}

#[test]
fn plan_lists_the_read_and_the_delete_without_a_request() -> TestResult {
    let github = Github::new(Vec::new());
    let planned = plan(&remove_b(), &github).map_err(|e| format!("{e:?}"))?;
    assert!(github.sent.borrow().is_empty(), "plan makes no request");
    assert_eq!(
        summary(&planned.calls),
        vec![format!("GET {LIST}"), format!("DELETE {USER_B}")]
    );
    assert_eq!(planned.calls[0].body, None);
    assert_eq!(planned.calls[1].body, None);
    assert!(planned.calls[0].effect.contains("changes nothing"));
    assert!(
        planned.calls[1].effect.contains("deletes their own fork"),
        "the plan warns about what GitHub also does: {}",
        planned.calls[1].effect
    );
    assert_eq!(
        planned.expected,
        format!("octokit-fixture-user-b is not a direct collaborator on {REPO}")
    );
    Ok(())
}

#[test]
fn execute_replays_the_recorded_removal() -> TestResult {
    let recorded = recording("add-and-remove-repository-collaborator")?;
    let github = Github::new(vec![
        narrowed(&recorded[LISTED_WITH_B], DIRECT),
        from_recording(&recorded[REMOVE_B]),
    ]);
    let outcome = execute(&remove_b(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(
        summary(&outcome.calls),
        vec![format!("GET {LIST}"), format!("DELETE {USER_B}")]
    );
    assert_eq!(
        outcome.detail,
        format!("octokit-fixture-user-b is not a direct collaborator on {REPO}")
    );
    Ok(())
}

#[test]
fn a_second_execute_reads_and_writes_nothing() -> TestResult {
    let recorded = recording("add-and-remove-repository-collaborator")?;
    let github = Github::new(vec![narrowed(&recorded[LISTED_WITHOUT_B], DIRECT)]);
    let outcome = execute(&remove_b(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(!outcome.changed);
    assert!(github.writes().is_empty(), "{:?}", github.writes());
    assert_eq!(summary(&outcome.calls), vec![format!("GET {LIST}")]);
    assert!(
        outcome.detail.starts_with("already so: "),
        "{}",
        outcome.detail
    );
    Ok(())
}

#[test]
fn logins_are_matched_without_regard_to_case() -> TestResult {
    let recorded = recording("add-and-remove-repository-collaborator")?;
    // Written: the DELETE for the login as the remedy spelt it.
    let path = "/repos/octokit-fixture-org/add-and-remove-repository-collaborator/collaborators/Octokit-Fixture-User-B";
    let github = Github::new(vec![
        narrowed(&recorded[LISTED_WITH_B], DIRECT),
        step("DELETE", path, 204, json!("")),
    ]);
    let outcome =
        execute(&remove(REPO, "Octokit-Fixture-User-B"), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    Ok(())
}

#[test]
fn a_missing_repository_is_named() -> TestResult {
    let github = Github::new(vec![not_found(
        "GET /repos/octokit-fixture-org/gone/collaborators?affiliation=direct&per_page=100",
    )]);
    let result = execute(
        &remove("octokit-fixture-org/gone", "octokit-fixture-user-b"),
        &github,
    );
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::Upstream(m))
            if m.starts_with("repository octokit-fixture-org/gone was not found, or the token cannot see it")),
        "{result:?}"
    );
    assert!(github.writes().is_empty());
    Ok(())
}

#[test]
fn a_token_without_push_access_cannot_list() -> TestResult {
    // Written: GitHub refuses the list to a token that may only read.
    let github = Github::new(vec![step(
        "GET",
        LIST,
        403,
        json!({"message": "Must have push access to view repository collaborators."}),
    )]);
    let result = execute(&remove_b(), &github);
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::Forbidden(m))
            if m.contains(&format!("listing the direct collaborators of {REPO}"))
                && m.contains("Must have push access")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn a_token_without_admin_rights_cannot_remove() -> TestResult {
    let recorded = recording("add-and-remove-repository-collaborator")?;
    // Written: the DELETE refused to a token without admin rights.
    let github = Github::new(vec![
        narrowed(&recorded[LISTED_WITH_B], DIRECT),
        step(
            "DELETE",
            USER_B,
            403,
            json!({"message": "Must have admin rights to Repository."}),
        ),
    ]);
    let result = execute(&remove_b(), &github);
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::Forbidden(m))
            if m.contains(&format!("DELETE {BASE}{USER_B}")) && m.contains("Must have admin rights")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn a_delete_answered_404_after_the_list_means_already_gone() -> TestResult {
    let recorded = recording("add-and-remove-repository-collaborator")?;
    // Written: someone else removed him between the read and the DELETE.
    let github = Github::new(vec![
        narrowed(&recorded[LISTED_WITH_B], DIRECT),
        not_found(&format!("DELETE {USER_B}")),
    ]);
    let outcome = execute(&remove_b(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(!outcome.changed);
    assert!(outcome.detail.starts_with("already so: "));
    Ok(())
}

#[test]
fn a_delete_answered_502_is_checked_by_reading_again() -> TestResult {
    let recorded = recording("add-and-remove-repository-collaborator")?;
    // Written: GitHub removed him but answered 502; the list read after the
    // wait is the recorded one without him, so no second DELETE is sent.
    let github = Github::new(vec![
        narrowed(&recorded[LISTED_WITH_B], DIRECT),
        step("DELETE", USER_B, 502, json!({"message": "Server Error"})),
        narrowed(&recorded[LISTED_WITHOUT_B], DIRECT),
    ]);
    let outcome = execute(&remove_b(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(github.writes(), vec![format!("DELETE {USER_B}")]);
    assert_eq!(*github.slept.borrow(), vec![1]);
    assert!(
        outcome.detail.contains("answered 502"),
        "{}",
        outcome.detail
    );
    Ok(())
}

#[test]
fn malformed_parameters_are_refused_naming_the_parameter() -> TestResult {
    for (parameters, expected) in [
        (
            Props::new()
                .text("repository", "add-and-remove-repository-collaborator")
                .text("login", "octokit-fixture-user-b"),
            "parameter repository",
        ),
        (
            Props::new().text("repository", REPO).text("login", " "),
            "parameter login",
        ),
        (
            Props::new().text("repository", REPO),
            "needs the parameter login",
        ),
        (
            Props::new()
                .text("repository", REPO)
                .text("login", "octokit-fixture-user-b")
                .text("permission", "pull"),
            "has no parameter permission",
        ),
    ] {
        let mut req = remove_b();
        req.action.parameters = parameters.build();
        assert_refused_before_sending(&req, expected);
    }
    Ok(())
}
