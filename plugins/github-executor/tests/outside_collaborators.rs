//! `github.convert-to-outside-collaborator` against written steps. No
//! recording of the conversion exists, so the answers come from GitHub's
//! published OpenAPI description (`@octokit/openapi`, operation
//! `orgs/convert-member-to-outside-collaborator`): 204 with no body for a
//! synchronous conversion, 403 when the member may not be converted, 404
//! otherwise. The membership read answers with the published example of an
//! active admin membership (octocat in the organisation `github`), and the
//! outside collaborator list with the published `simple-user-items` example
//! that the description gives for that list. Error messages GitHub does not
//! publish are ours and say so.

mod common;

use serde_json::json;

use common::{BASE, Github, TestResult, node, not_found, published, request, step, summary};
use github_executor::{CONVERT_TO_OUTSIDE_COLLABORATOR, execute, plan};
use org_mesh_plugin::executor::ActionRequest;
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::PluginError;

const MEMBERSHIP: &str = "/orgs/github/memberships/octocat";
const OUTSIDE: &str = "/orgs/github/outside_collaborators?per_page=100";
const CONVERT: &str = "/orgs/github/outside_collaborators/octocat";

fn convert(organisation: &str, login: &str) -> ActionRequest {
    request(
        CONVERT_TO_OUTSIDE_COLLABORATOR,
        node("Account", &format!("github:{login}")),
        Props::new()
            .text("organisation", organisation)
            .text("login", login)
            .build(),
    )
}

fn convert_octocat() -> ActionRequest {
    convert("github", "octocat")
}

fn active_membership() -> Result<common::Step, String> {
    let example = published("orgs__get-membership-for-user")?;
    // The example's organisation and user are the ones these tests use.
    assert_eq!(example["organization"]["login"], "github");
    assert_eq!(example["user"]["login"], "octocat");
    assert_eq!(example["state"], "active");
    Ok(step("GET", MEMBERSHIP, 200, example))
}

fn outside_collaborators() -> Result<common::Step, String> {
    Ok(step(
        "GET",
        OUTSIDE,
        200,
        published("orgs__list-outside-collaborators")?,
    ))
}

#[test]
fn plan_lists_both_reads_and_the_put_without_a_request() -> TestResult {
    let github = Github::new(Vec::new());
    let planned = plan(&convert_octocat(), &github).map_err(|e| format!("{e:?}"))?;
    assert!(github.sent.borrow().is_empty(), "plan makes no request");
    assert_eq!(
        summary(&planned.calls),
        vec![
            format!("GET {MEMBERSHIP}"),
            format!("GET {OUTSIDE}"),
            format!("PUT {CONVERT}"),
        ]
    );
    assert!(planned.calls.iter().all(|c| c.body.is_none()));
    assert!(
        planned.calls[1]
            .effect
            .starts_with("only when octocat is not a member"),
        "{}",
        planned.calls[1].effect
    );
    assert_eq!(
        planned.expected,
        "octocat is not a member of github; any access left is as an outside collaborator"
    );
    Ok(())
}

#[test]
fn an_active_member_is_converted() -> TestResult {
    let github = Github::new(vec![
        active_membership()?,
        step("PUT", CONVERT, 204, json!("")),
    ]);
    let outcome = execute(&convert_octocat(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(
        summary(&outcome.calls),
        vec![format!("GET {MEMBERSHIP}"), format!("PUT {CONVERT}")]
    );
    // The PUT is sent without a body: GitHub then converts synchronously.
    assert_eq!(github.sent.borrow()[1].body, None);
    Ok(())
}

#[test]
fn a_second_execute_finds_the_outside_collaborator_and_writes_nothing() -> TestResult {
    let github = Github::new(vec![not_found(MEMBERSHIP), outside_collaborators()?]);
    let outcome = execute(&convert_octocat(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(!outcome.changed);
    assert!(github.writes().is_empty());
    assert_eq!(
        outcome.detail,
        "already so: octocat is already an outside collaborator of github"
    );
    assert_eq!(
        summary(&outcome.calls),
        vec![format!("GET {MEMBERSHIP}"), format!("GET {OUTSIDE}")]
    );
    Ok(())
}

#[test]
fn someone_with_no_access_at_all_is_left_alone() -> TestResult {
    let github = Github::new(vec![
        not_found("/orgs/github/memberships/hubot"),
        outside_collaborators()?,
    ]);
    let outcome = execute(&convert("github", "hubot"), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(!outcome.changed);
    assert!(
        outcome
            .detail
            .contains("neither a member nor an outside collaborator"),
        "{}",
        outcome.detail
    );
    Ok(())
}

#[test]
fn a_pending_invitation_is_not_converted() -> TestResult {
    // Written: the published example as it reads before the invitation is
    // accepted.
    let mut pending = active_membership()?;
    pending.answer["state"] = json!("pending");
    let github = Github::new(vec![pending]);
    let result = execute(&convert_octocat(), &github);
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::InvalidInput(m))
            if m.contains("pending invitation") && m.contains("github.remove-org-member")),
        "{result:?}"
    );
    assert!(github.writes().is_empty());
    Ok(())
}

#[test]
fn a_missing_organisation_is_named() -> TestResult {
    let github = Github::new(vec![
        not_found("/orgs/no-such-org/memberships/octocat"),
        not_found("/orgs/no-such-org/outside_collaborators?per_page=100"),
    ]);
    let result = execute(&convert("no-such-org", "octocat"), &github);
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::Upstream(m))
            if m.starts_with("organisation no-such-org was not found, or the token cannot see it")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn a_refused_conversion_is_forbidden() -> TestResult {
    // Written message: GitHub documents the 403 (the last owner, or an
    // enterprise policy) but publishes no text for it.
    let github = Github::new(vec![
        active_membership()?,
        step(
            "PUT",
            CONVERT,
            403,
            json!({"message": "The last owner cannot be converted (test text)"}),
        ),
    ]);
    let result = execute(&convert_octocat(), &github);
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::Forbidden(m))
            if m.contains(&format!("PUT {BASE}{CONVERT}")) && m.contains("last owner")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn a_token_that_may_not_read_memberships_is_forbidden() -> TestResult {
    let github = Github::new(vec![step(
        "GET",
        MEMBERSHIP,
        403,
        json!({"message": "Must be an organization member (test text)"}),
    )]);
    let result = execute(&convert_octocat(), &github);
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::Forbidden(m))
            if m.contains("reading octocat's membership of github")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn a_put_answered_502_is_checked_by_reading_again() -> TestResult {
    let github = Github::new(vec![
        active_membership()?,
        step("PUT", CONVERT, 502, json!({"message": "Server Error"})),
        not_found(MEMBERSHIP),
        outside_collaborators()?,
    ]);
    let outcome = execute(&convert_octocat(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(
        outcome.changed,
        "the conversion happened during this execute"
    );
    assert_eq!(github.writes(), vec![format!("PUT {CONVERT}")]);
    assert_eq!(*github.slept.borrow(), vec![1]);
    Ok(())
}

#[test]
fn malformed_parameters_are_refused_naming_the_parameter() -> TestResult {
    for (parameters, expected) in [
        (
            Props::new().text("org", "github").text("login", "octocat"),
            "has no parameter org",
        ),
        (
            Props::new().text("login", "octocat"),
            "needs the parameter organisation",
        ),
        (
            Props::new()
                .text("organisation", "github")
                .boolean("login", true),
            "parameter login",
        ),
    ] {
        let mut req = convert_octocat();
        req.action.parameters = parameters.build();
        let github = Github::new(Vec::new());
        let result = execute(&req, &github);
        assert!(
            matches!(&result, Err(PluginError::InvalidInput(m)) if m.contains(expected)),
            "{expected}: {result:?}"
        );
        assert!(github.sent.borrow().is_empty());
    }
    Ok(())
}
