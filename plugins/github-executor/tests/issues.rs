//! `github.open-issue` against GitHub's recorded `paginate-issues` exchange
//! (`@octokit/fixtures`): five pages of open issues, three to a page, joined
//! by `Link` headers. With `page_size: 3` the executor's read is exactly the
//! recorded first request, and it follows the recorded links to the end.
//! None of the recorded issues carries a marker, so the executor then
//! opens its issue; that POST and everything after it are written steps,
//! since no recording creates an issue with a body.
//!
//! The marker (`<!-- org-mesh:{idempotency key} -->`, at the end of the
//! body) is what makes a second execute find the first one's issue: GitHub
//! has no idempotency key for issues. The open issue list is read rather
//! than the search API because search is indexed with a delay, so an issue
//! opened moments earlier may not be found and would be opened twice.

mod common;

use serde_json::{Value as Json, json};

use common::{
    Github, TestResult, assert_refused_before_sending, config, from_recording, node, not_found,
    recording, request, step, summary,
};
use github_executor::{OPEN_ISSUE, execute, plan};
use org_mesh_plugin::executor::ActionRequest;
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::PluginError;

const REPO: &str = "octokit-fixture-org/paginate-issues";
const LIST: &str = "/repos/octokit-fixture-org/paginate-issues/issues?per_page=3";
const CREATE: &str = "/repos/octokit-fixture-org/paginate-issues/issues";
const KEY: &str = "5f0c1a2b3c4d5e6f7a8b9c0d:github.open-issue";
const MARKER: &str = "<!-- org-mesh:5f0c1a2b3c4d5e6f7a8b9c0d:github.open-issue -->";
const TITLE: &str = "main lost its branch protection";
const BODY: &str = "The default branch no longer requires reviews.";

fn open(parameters: Props) -> ActionRequest {
    let mut req = request(
        OPEN_ISSUE,
        node("Repository", &format!("github:{REPO}")),
        parameters.build(),
    );
    req.config = config(json!({"page_size": 3}));
    req.action.idempotency_key = KEY.into();
    req
}

fn drift_issue() -> ActionRequest {
    open(
        Props::new()
            .text("repository", REPO)
            .text("title", TITLE)
            .text("body", BODY)
            .texts("labels", vec!["drift".into()]),
    )
}

fn sent_body() -> Json {
    json!({
        "title": TITLE,
        "body": format!("{BODY}\n\n{MARKER}"),
        "labels": ["drift"],
    })
}

/// Written: the issue as GitHub would hold it once opened, as number 14,
/// after the recorded thirteen.
fn opened(labels: &[&str]) -> Json {
    json!({
        "number": 14,
        "html_url": "https://github.com/octokit-fixture-org/paginate-issues/issues/14",
        "state": "open",
        "title": TITLE,
        "body": format!("{BODY}\n\n{MARKER}"),
        "labels": labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
    })
}

fn recorded_pages() -> Result<Vec<common::Step>, String> {
    Ok(recording("paginate-issues")?
        .iter()
        .map(from_recording)
        .collect())
}

fn create(status: u16, answer: Json) -> common::Step {
    step("POST", CREATE, status, answer).sending(sent_body())
}

#[test]
fn plan_lists_the_read_and_the_exact_post_without_a_request() -> TestResult {
    let github = Github::new(Vec::new());
    let planned = plan(&drift_issue(), &github).map_err(|e| format!("{e:?}"))?;
    assert!(github.sent.borrow().is_empty(), "plan makes no request");
    assert_eq!(
        summary(&planned.calls),
        vec![format!("GET {LIST}"), format!("POST {CREATE}")]
    );
    assert_eq!(
        planned.calls[1].body.as_deref(),
        Some(
            r#"{"title":"main lost its branch protection","body":"The default branch no longer requires reviews.\n\n<!-- org-mesh:5f0c1a2b3c4d5e6f7a8b9c0d:github.open-issue -->","labels":["drift"]}"#
        )
    );
    assert!(planned.calls[0].effect.contains(MARKER));
    assert_eq!(
        planned.expected,
        format!("an open issue in {REPO} carries {MARKER}")
    );
    Ok(())
}

#[test]
fn execute_reads_every_recorded_page_then_opens_the_issue() -> TestResult {
    let mut steps = recorded_pages()?;
    steps.push(create(201, opened(&["drift"])));
    let github = Github::new(steps);
    let outcome = execute(&drift_issue(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(
        github.requests(),
        vec![
            format!("GET {LIST}"),
            "GET /repositories/1000/issues?per_page=3&page=2".into(),
            "GET /repositories/1000/issues?per_page=3&page=3".into(),
            "GET /repositories/1000/issues?per_page=3&page=4".into(),
            "GET /repositories/1000/issues?per_page=3&page=5".into(),
            format!("POST {CREATE}"),
        ]
    );
    // The outcome names the read once, as planned, however many pages.
    assert_eq!(
        summary(&outcome.calls),
        vec![format!("GET {LIST}"), format!("POST {CREATE}")]
    );
    assert_eq!(
        outcome.detail,
        "opened issue #14 of octokit-fixture-org/paginate-issues \
         (https://github.com/octokit-fixture-org/paginate-issues/issues/14)"
    );
    Ok(())
}

#[test]
fn a_second_execute_finds_the_marker_and_writes_nothing() -> TestResult {
    // Written: the first recorded page with the new issue on top, where
    // GitHub lists the newest; the recorded links lead on as before.
    let mut pages = recorded_pages()?;
    if let Some(items) = pages[0].answer.as_array_mut() {
        items.insert(0, opened(&["drift"]));
    }
    let github = Github::new(pages);
    let outcome = execute(&drift_issue(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(!outcome.changed);
    assert!(github.writes().is_empty(), "{:?}", github.writes());
    assert_eq!(
        outcome.detail,
        "already so: issue #14 of octokit-fixture-org/paginate-issues \
         (https://github.com/octokit-fixture-org/paginate-issues/issues/14) is open and carries \
         the marker"
    );
    Ok(())
}

#[test]
fn the_marker_not_the_title_identifies_the_issue() -> TestResult {
    // Written: people retitle issues; the marker still ties it to the fix.
    let mut retitled = opened(&["drift"]);
    retitled["title"] = json!("Protection on main (triaged)");
    let github = Github::new(vec![step("GET", LIST, 200, json!([retitled]))]);
    let outcome = execute(&drift_issue(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(!outcome.changed);

    // An issue with the same title but without the marker is someone
    // else's, and a pull request quoting the marker is not the issue.
    let mut unmarked = opened(&[]);
    unmarked["body"] = json!(BODY);
    let mut pull = opened(&[]);
    pull["number"] = json!(15);
    pull["pull_request"] = json!({"url": "https://api.github.com/repos/o/r/pulls/15"});
    let github = Github::new(vec![
        step("GET", LIST, 200, json!([pull, unmarked])),
        create(201, opened(&["drift"])),
    ]);
    let outcome = execute(&drift_issue(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    Ok(())
}

#[test]
fn an_empty_body_becomes_the_marker_alone_and_labels_are_optional() -> TestResult {
    let req = open(
        Props::new()
            .text("repository", REPO)
            .text("title", TITLE)
            .text("body", ""),
    );
    let github = Github::new(vec![
        step("GET", LIST, 200, json!([])),
        step("POST", CREATE, 201, opened(&[])).sending(json!({"title": TITLE, "body": MARKER})),
    ]);
    let outcome = execute(&req, &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    Ok(())
}

#[test]
fn labels_github_dropped_are_reported() -> TestResult {
    // Written: GitHub drops labels silently for a token without push access.
    let github = Github::new(vec![
        step("GET", LIST, 200, json!([])),
        create(201, opened(&[])),
    ]);
    let outcome = execute(&drift_issue(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(
        outcome.detail.contains("did not set the labels drift"),
        "{}",
        outcome.detail
    );
    Ok(())
}

#[test]
fn a_post_answered_502_is_not_sent_again_when_the_issue_exists() -> TestResult {
    // Written: GitHub opened the issue but answered 502; the list read after
    // the wait shows it, so no second POST goes out.
    let github = Github::new(vec![
        step("GET", LIST, 200, json!([])),
        create(502, json!({"message": "Server Error"})),
        step("GET", LIST, 200, json!([opened(&["drift"])])),
    ]);
    let outcome = execute(&drift_issue(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(github.writes(), vec![format!("POST {CREATE}")]);
    assert_eq!(*github.slept.borrow(), vec![1]);
    assert!(
        outcome.detail.contains("issue #14") && outcome.detail.contains("answered 502"),
        "{}",
        outcome.detail
    );
    Ok(())
}

#[test]
fn a_post_answered_503_is_sent_again_when_the_issue_does_not_exist() -> TestResult {
    let github = Github::new(vec![
        step("GET", LIST, 200, json!([])),
        create(503, json!({"message": "Service Unavailable"})),
        step("GET", LIST, 200, json!([])),
        create(201, opened(&["drift"])),
    ]);
    let outcome = execute(&drift_issue(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(github.writes().len(), 2);
    assert!(outcome.detail.starts_with("opened issue #14"));
    Ok(())
}

#[test]
fn a_secondary_rate_limit_on_the_post_is_waited_out() -> TestResult {
    // Written: GitHub's secondary limit on creating content; a limited
    // request was not carried out, so the client sends it again.
    let github = Github::new(vec![
        step("GET", LIST, 200, json!([])),
        create(
            403,
            json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
        )
        .header("retry-after", "5"),
        create(201, opened(&["drift"])),
    ]);
    let outcome = execute(&drift_issue(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(*github.slept.borrow(), vec![5]);
    Ok(())
}

#[test]
fn a_page_answered_502_is_read_again_without_starting_over() -> TestResult {
    let mut steps = recorded_pages()?;
    // Written: the third page fails once before its recorded answer.
    let failing = step(
        "GET",
        "/repositories/1000/issues?per_page=3&page=3",
        502,
        json!({"message": "Server Error"}),
    );
    steps.insert(2, failing);
    steps.push(create(201, opened(&["drift"])));
    let github = Github::new(steps);
    let outcome = execute(&drift_issue(), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(*github.slept.borrow(), vec![1]);
    Ok(())
}

#[test]
fn a_missing_repository_is_named() -> TestResult {
    let github = Github::new(vec![not_found(
        "GET /repos/octokit-fixture-org/gone/issues?per_page=3",
    )]);
    let req = open(
        Props::new()
            .text("repository", "octokit-fixture-org/gone")
            .text("title", TITLE)
            .text("body", BODY),
    );
    let result = execute(&req, &github);
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
fn a_token_that_may_not_open_issues_is_forbidden() -> TestResult {
    let github = Github::new(vec![
        step("GET", LIST, 200, json!([])),
        create(
            403,
            json!({"message": "Resource not accessible by integration"}),
        ),
    ]);
    let result = execute(&drift_issue(), &github);
    github.check()?;
    assert!(
        matches!(&result, Err(PluginError::Forbidden(m))
            if m.contains(&format!("POST {}{CREATE}", common::BASE))
                && m.contains("Resource not accessible by integration")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn malformed_parameters_and_keys_are_refused_naming_them() -> TestResult {
    let base = || Props::new().text("repository", REPO).text("title", TITLE);
    for (parameters, key, expected) in [
        (base(), KEY, "needs the parameter body"),
        (
            base().text("body", BODY).text("labels", "drift"),
            KEY,
            "parameter labels",
        ),
        (
            base().text("body", BODY).integer("milestone", 1),
            KEY,
            "has no parameter milestone",
        ),
        (
            Props::new()
                .text("repository", "paginate-issues")
                .text("title", TITLE)
                .text("body", BODY),
            KEY,
            "parameter repository",
        ),
        (
            Props::new()
                .text("repository", REPO)
                .text("title", "")
                .text("body", BODY),
            KEY,
            "parameter title",
        ),
        (base().text("body", BODY), "", "idempotency key"),
        (base().text("body", BODY), "fix -->", "idempotency key"),
    ] {
        let mut req = open(parameters);
        req.action.idempotency_key = key.into();
        assert_refused_before_sending(&req, expected);
    }
    Ok(())
}

#[test]
fn a_page_size_out_of_range_is_invalid_config() -> TestResult {
    for size in [0, 101] {
        let mut req = drift_issue();
        req.config = config(json!({"page_size": size}));
        let result = plan(&req, &Github::new(Vec::new()));
        assert!(
            matches!(&result, Err(PluginError::InvalidConfig(m)) if m.contains("page_size")),
            "{result:?}"
        );
    }
    Ok(())
}
