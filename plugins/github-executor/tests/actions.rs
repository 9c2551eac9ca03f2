//! Plans and executions against a strict scripted GitHub: GitHub's recorded
//! branch-protection exchange (`@octokit/fixtures`) where it covers the
//! case, written steps where it does not.

use std::cell::RefCell;
use std::collections::VecDeque;

use serde_json::{Value as Json, json};

use github_executor::{REMOVE_ORG_MEMBER, RESTORE_BRANCH_PROTECTION, execute, plan};
use org_mesh_plugin::executor::{Action, ActionRequest, PlannedCall};
use org_mesh_plugin::http::{self, AuthScheme, Request, Response};
use org_mesh_plugin::props::Props;
use org_mesh_plugin::rest::Transport;
use org_mesh_plugin::types::{NodeRef, PluginError, Properties};

const BASE: &str = "http://127.0.0.1:9/api.github.com/f2";
const REPO: &str = "octokit-fixture-org/branch-protection";
const PROTECTION: &str = "/repos/octokit-fixture-org/branch-protection/branches/main/protection";

type TestResult = Result<(), String>;

fn recording() -> Result<Vec<Json>, String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/octokit-fixtures/branch-protection.json"
    );
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let all: Json = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    all.as_array()
        .cloned()
        .ok_or_else(|| "not a list".to_string())
}

/// One expected request and its answer.
#[derive(Debug, Clone)]
struct Step {
    method: String,
    path: String,
    /// The body the request must carry, compared as JSON; its recorded
    /// byte length, when known, is compared too.
    body: Option<Json>,
    length: Option<usize>,
    status: u16,
    answer: Json,
}

fn from_recording(entry: &Json) -> Step {
    let body = entry.get("body").filter(|b| b.is_object()).cloned();
    Step {
        method: entry["method"].as_str().unwrap_or_default().to_uppercase(),
        path: entry["path"].as_str().unwrap_or_default().to_string(),
        length: entry["reqheaders"]["content-length"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok()),
        body,
        status: u16::try_from(entry["status"].as_u64().unwrap_or_default()).unwrap_or(599),
        answer: entry["response"].clone(),
    }
}

fn step(method: &str, path: &str, status: u16, answer: Json) -> Step {
    Step {
        method: method.into(),
        path: path.into(),
        body: None,
        length: None,
        status,
        answer,
    }
}

#[derive(Default)]
struct Github {
    steps: RefCell<VecDeque<Step>>,
    sent: RefCell<Vec<Request>>,
    problems: RefCell<Vec<String>>,
}

impl Github {
    fn new(steps: Vec<Step>) -> Self {
        Self {
            steps: RefCell::new(steps.into()),
            ..Self::default()
        }
    }

    fn check(&self) -> TestResult {
        let problems = self.problems.borrow();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    fn left(&self) -> Vec<String> {
        self.steps
            .borrow()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Transport for &Github {
    fn send(&self, request: &Request) -> Result<Response, http::Error> {
        self.sent.borrow_mut().push(request.clone());
        let path = request.url.trim_start_matches(BASE).to_string();
        let Some(step) = self.steps.borrow_mut().pop_front() else {
            self.problems
                .borrow_mut()
                .push(format!("unexpected {} {path}", request.method));
            return Ok(Response {
                status: 404,
                headers: Vec::new(),
                body: b"{}".to_vec(),
            });
        };
        let mut problems = Vec::new();
        if (request.method.as_str(), path.as_str()) != (step.method.as_str(), step.path.as_str()) {
            problems.push(format!(
                "sent {} {path}, expected {} {}",
                request.method, step.method, step.path
            ));
        }
        if header(request, "accept") != Some("application/vnd.github.v3+json") {
            problems.push("accept header missing".into());
        }
        let token = request
            .auth
            .as_ref()
            .is_some_and(|a| a.secret == "token" && matches!(a.scheme, AuthScheme::Token));
        if !token {
            problems.push("not authenticated with the token secret".into());
        }
        let sent: Option<Json> = request
            .body
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok());
        if sent != step.body {
            problems.push(format!("body {sent:?}, expected {:?}", step.body));
        }
        if step.body.is_some()
            && header(request, "content-type") != Some("application/json; charset=utf-8")
        {
            problems.push("content-type of the body missing".into());
        }
        if let (Some(length), Some(body)) = (step.length, &request.body)
            && body.len() != length
        {
            problems.push(format!("body of {} bytes, recorded {length}", body.len()));
        }
        self.problems.borrow_mut().extend(problems);
        let body = if step.answer.as_str() == Some("") {
            Vec::new()
        } else {
            step.answer.to_string().into_bytes()
        };
        Ok(Response {
            status: step.status,
            headers: Vec::new(),
            body,
        })
    }

    fn now_unix_secs(&self) -> u64 {
        1_507_651_170
    }

    fn sleep_secs(&self, _secs: u64) {}

    fn warn(&self, _message: &str, _fields: &[(&str, String)]) {}
}

fn request(kind: &str, parameters: Properties, dry_run_only: bool) -> ActionRequest {
    ActionRequest {
        config: json!({"api_url": BASE, "dry_run_only": dry_run_only}).to_string(),
        action: Action {
            kind: kind.to_string(),
            target: NodeRef {
                label: "Repository".into(),
                key: format!("github:{REPO}"),
            },
            parameters,
            idempotency_key: "fix-1".into(),
        },
    }
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

fn summary(calls: &[PlannedCall]) -> Vec<String> {
    calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.url.trim_start_matches(BASE)))
        .collect()
}

#[test]
fn baseline_reproduces_the_recorded_minimal_put_exactly() -> TestResult {
    let recorded = recording()?;
    let github = Github::new(recorded.iter().map(from_recording).collect());
    let outcome = execute(
        &restore(Props::new().boolean("enforce_admins", false)),
        &github,
    )
    .map_err(|e| format!("{e:?}"))?;
    github.check()?;
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
    let recorded = recording()?;
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
    let recorded = recording()?;
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
    let recorded = recording()?;
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
    let recorded = recording()?;
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
    let recorded = recording()?;
    // After the minimal PUT every rule is off: raising adds, drops nothing.
    let after_minimal = step("GET", PROTECTION, 200, recorded[1]["response"].clone());
    let mut put = step("PUT", PROTECTION, 200, json!({}));
    put.body = Some(json!({
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
    let recorded = recording()?;
    let mut put = step("PUT", PROTECTION, 200, json!({}));
    put.body = Some(json!({
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
    assert!(
        matches!(result, Err(PluginError::Forbidden(_))),
        "{result:?}"
    );
    Ok(())
}
