//! `github.campaign-response`: the answer to a pressure campaign on a
//! repository. It opens one issue for the maintainers (mentioning the
//! security contact when one is configured), found again by its marker,
//! and raises the default branch's review rule, never lowering it. The
//! current protection is GitHub's published example for
//! `repos/get-branch-protection`, which already requires two approving
//! reviews, code owners and fresh approval; the weaker variants below
//! change only the review fields.

mod common;

use serde_json::{Value as Json, json};

use common::{
    Github, TestResult, assert_refused_before_sending, config, node, published, request, step,
    summary,
};
use github_executor::{CAMPAIGN_RESPONSE, execute, plan};
use org_mesh_plugin::executor::ActionRequest;
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::PluginError;

const REPO: &str = "octocat/Hello-World";
const ISSUES: &str = "/repos/octocat/Hello-World/issues?per_page=100";
const CREATE: &str = "/repos/octocat/Hello-World/issues";
const PROTECTION: &str = "/repos/octocat/Hello-World/branches/master/protection";
const REVIEWS: &str =
    "/repos/octocat/Hello-World/branches/master/protection/required_pull_request_reviews";
const MARKER: &str = "<!-- org-mesh:fix-1 -->";
const TITLE: &str = "Coordinated pressure on the maintainers of octocat/Hello-World";
const BODY: &str = "Three new accounts pressed for a new maintainer over 40 days.";

fn response(contact: Option<&str>, reviews: Option<i64>) -> ActionRequest {
    let mut parameters = Props::new()
        .text("repository", REPO)
        .text("title", TITLE)
        .text("body", BODY)
        .text("branch", "master");
    if let Some(n) = reviews {
        parameters = parameters.integer("required_approving_review_count", n);
    }
    let mut req = request(
        CAMPAIGN_RESPONSE,
        node("Repository", &format!("github:{REPO}")),
        parameters.build(),
    );
    if let Some(contact) = contact {
        req.config = config(json!({"security_contact": contact}));
    }
    req
}

fn sent_issue(contact: Option<&str>) -> Json {
    let cc = contact.map(|c| format!("\n\ncc {c}")).unwrap_or_default();
    json!({"title": TITLE, "body": format!("{BODY}{cc}\n\n{MARKER}")})
}

fn opened(contact: Option<&str>) -> Json {
    let mut issue = sent_issue(contact);
    issue["number"] = json!(1348);
    issue["html_url"] = json!("https://github.com/octocat/Hello-World/issues/1348");
    issue
}

/// The published protection with its review rule replaced.
fn protection(reviews: Json) -> Result<Json, String> {
    let mut doc = published("repos__get-branch-protection")?;
    doc["required_pull_request_reviews"] = reviews;
    Ok(doc)
}

#[test]
fn plan_lists_both_reads_and_both_writes_without_a_request() -> TestResult {
    let github = Github::new(Vec::new());
    let planned =
        plan(&response(Some("@octocat/security"), None), &github).map_err(|e| format!("{e:?}"))?;
    assert!(github.sent.borrow().is_empty(), "plan makes no request");
    assert_eq!(
        summary(&planned.calls),
        vec![
            format!("GET {ISSUES}"),
            format!("GET {PROTECTION}"),
            format!("POST {CREATE}"),
            format!("PATCH {REVIEWS}"),
        ]
    );
    let issue: Json = serde_json::from_str(planned.calls[2].body.as_deref().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    assert_eq!(issue, sent_issue(Some("@octocat/security")));
    let rule: Json = serde_json::from_str(planned.calls[3].body.as_deref().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    assert_eq!(
        rule,
        json!({"dismiss_stale_reviews": true, "require_code_owner_reviews": true, "required_approving_review_count": 2})
    );
    assert!(planned.expected.contains(MARKER), "{}", planned.expected);
    Ok(())
}

#[test]
fn execute_opens_the_issue_and_raises_only_what_is_weaker() -> TestResult {
    let weaker = protection(json!({
        "dismiss_stale_reviews": true,
        "require_code_owner_reviews": false,
        "required_approving_review_count": 1
    }))?;
    let github = Github::new(vec![
        step("GET", ISSUES, 200, json!([])),
        step("GET", PROTECTION, 200, weaker),
        step("POST", CREATE, 201, opened(None)).sending(sent_issue(None)),
        step(
            "PATCH",
            REVIEWS,
            200,
            json!({"required_approving_review_count": 2}),
        )
        .sending(json!({"require_code_owner_reviews": true, "required_approving_review_count": 2})),
    ]);
    // Both reads come first, then the writes still needed.
    let outcome = execute(&response(None, None), &github);
    let outcome = outcome.map_err(|e| format!("{e:?}\n{:?}", github.requests()))?;
    github.check()?;
    assert!(outcome.changed);
    assert!(
        outcome
            .detail
            .starts_with("opened issue #1348 of octocat/Hello-World"),
        "{}",
        outcome.detail
    );
    assert_eq!(
        github.writes(),
        vec![format!("POST {CREATE}"), format!("PATCH {REVIEWS}")]
    );
    Ok(())
}

#[test]
fn a_second_execute_finds_its_issue_and_the_rule_and_changes_nothing() -> TestResult {
    let github = Github::new(vec![
        step("GET", ISSUES, 200, json!([opened(None)])),
        step(
            "GET",
            PROTECTION,
            200,
            published("repos__get-branch-protection")?,
        ),
    ]);
    let outcome = execute(&response(None, None), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(!outcome.changed);
    assert!(github.writes().is_empty(), "{:?}", github.writes());
    assert!(
        outcome.detail.contains("issue #1348") && outcome.detail.contains("already requires"),
        "{}",
        outcome.detail
    );
    Ok(())
}

#[test]
fn a_stricter_rule_is_never_lowered() -> TestResult {
    let stricter = protection(json!({
        "dismiss_stale_reviews": true,
        "require_code_owner_reviews": true,
        "required_approving_review_count": 4
    }))?;
    let github = Github::new(vec![
        step("GET", ISSUES, 200, json!([opened(None)])),
        step("GET", PROTECTION, 200, stricter),
    ]);
    let outcome = execute(&response(None, Some(3)), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(!outcome.changed, "{}", outcome.detail);
    Ok(())
}

#[test]
fn an_unprotected_branch_gets_the_issue_and_no_review_write() -> TestResult {
    let github = Github::new(vec![
        step("GET", ISSUES, 200, json!([])),
        step(
            "GET",
            PROTECTION,
            404,
            json!({"message": "Branch not protected", "documentation_url": "https://docs.github.com/rest"}),
        ),
        step("POST", CREATE, 201, opened(None)).sending(sent_issue(None)),
    ]);
    let outcome = execute(&response(None, None), &github).map_err(|e| format!("{e:?}"))?;
    github.check()?;
    assert!(outcome.changed);
    assert_eq!(github.writes(), vec![format!("POST {CREATE}")]);
    Ok(())
}

#[test]
fn bad_parameters_and_contacts_are_refused_by_name() {
    let mut req = response(None, Some(0));
    assert_refused_before_sending(&req, "required_approving_review_count");
    req = response(None, None);
    req.action.parameters.push((
        "participants".into(),
        org_mesh_plugin::types::Value::Texts(vec!["x".into()]),
    ));
    assert_refused_before_sending(&req, "participants");
    for contact in ["security", "@", "@a/b/c", "@a b"] {
        let req = response(Some(contact), None);
        let github = Github::new(Vec::new());
        let result = plan(&req, &github);
        assert!(
            matches!(&result, Err(PluginError::InvalidConfig(m)) if m.starts_with("security_contact")),
            "{contact}: {result:?}"
        );
    }
}
