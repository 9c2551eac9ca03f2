//! The organisation scan against a strict scripted server: each test lists
//! the exact requests the connector must send, in order, with the answers
//! GitHub gave (recorded exchanges from `@octokit/fixtures` and the examples
//! of GitHub's OpenAPI description), and checks the batch built from them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};

use github_connector::{Config, Scan, client, scan};
use org_mesh_plugin::http::{self, Request, Response};
use org_mesh_plugin::rest::Transport;
use org_mesh_plugin::types::{Batch, Coverage, PluginError, Value};

const BASE: &str = "http://127.0.0.1:9/api.github.com/f1";
const ORG: &str = "octokit-fixture-org";

type TestResult = Result<(), String>;

fn read_json(path: &Path) -> Result<Json, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn openapi(name: &str) -> Result<Json, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    read_json(
        &root
            .join("../../conformance/data/github-openapi")
            .join(format!("{name}.json")),
    )
}

/// The `index`th recorded exchange of a copied `@octokit/fixtures` scenario.
fn recorded(scenario: &str, index: usize) -> Result<Json, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let all = read_json(
        &root
            .join("tests/data/octokit-fixtures")
            .join(format!("{scenario}.json")),
    )?;
    all.get(index)
        .cloned()
        .ok_or_else(|| format!("{scenario} has no exchange {index}"))
}

#[derive(Debug, Clone)]
struct Step {
    path: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn step(path: &str, status: u16, body: &Json) -> Step {
    Step {
        path: path.to_string(),
        status,
        headers: vec![
            ("x-ratelimit-remaining".into(), "4990".into()),
            ("x-ratelimit-reset".into(), "1507651200000".into()),
        ],
        body: body.to_string(),
    }
}

fn with_header(mut step: Step, name: &str, value: &str) -> Step {
    step.headers.push((name.to_string(), value.to_string()));
    step
}

/// Answers requests strictly in order; a request that is not the next one
/// expected gets a 404, as the replay server gives it.
#[derive(Default)]
struct Replay {
    steps: RefCell<VecDeque<Step>>,
    sent: RefCell<Vec<Request>>,
    slept: RefCell<Vec<u64>>,
    mismatches: RefCell<Vec<String>>,
}

impl Replay {
    fn new(steps: Vec<Step>) -> Self {
        Self {
            steps: RefCell::new(steps.into()),
            ..Self::default()
        }
    }

    fn paths(&self) -> Vec<String> {
        self.sent
            .borrow()
            .iter()
            .map(|r| r.url.trim_start_matches(BASE).to_string())
            .collect()
    }

    fn check_done(&self) -> TestResult {
        let mismatches = self.mismatches.borrow();
        if !mismatches.is_empty() {
            return Err(format!("unexpected requests: {mismatches:?}"));
        }
        let left: Vec<String> = self.steps.borrow().iter().map(|s| s.path.clone()).collect();
        if !left.is_empty() {
            return Err(format!("requests never sent: {left:?}"));
        }
        Ok(())
    }
}

impl Transport for &Replay {
    fn send(&self, request: &Request) -> Result<Response, http::Error> {
        self.sent.borrow_mut().push(request.clone());
        let path = request.url.trim_start_matches(BASE).to_string();
        let accept = request
            .headers
            .iter()
            .any(|(k, v)| k == "accept" && v == "application/vnd.github.v3+json");
        let token = request
            .auth
            .as_ref()
            .is_some_and(|a| a.secret == "token" && matches!(a.scheme, http::AuthScheme::Token));
        let next = self.steps.borrow_mut().pop_front();
        match next {
            Some(step) if step.path == path && request.method == "GET" && accept && token => {
                Ok(Response {
                    status: step.status,
                    headers: step.headers,
                    body: step.body.into_bytes(),
                })
            }
            other => {
                let expected = other.map(|s| s.path).unwrap_or_default();
                self.mismatches
                    .borrow_mut()
                    .push(format!("{} {path} (expected {expected})", request.method));
                Ok(Response {
                    status: 404,
                    headers: Vec::new(),
                    body: br#"{"error":"does not match next fixture"}"#.to_vec(),
                })
            }
        }
    }

    fn now_unix_secs(&self) -> u64 {
        1_700_000_000
    }

    fn sleep_secs(&self, secs: u64) {
        self.slept.borrow_mut().push(secs);
    }

    fn warn(&self, _message: &str, _fields: &[(&str, String)]) {}
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Variant {
    Protected,
    Unprotected,
    SecondaryRateLimit,
    NoTwoFactorScope,
}

/// The replay server's composed organisation scan, step by step.
fn org_scan(variant: Variant) -> Result<Vec<Step>, String> {
    let org_path = format!("/orgs/{ORG}");
    let members = openapi("orgs__list-members")?;
    let mut steps = vec![step(
        &org_path,
        200,
        &recorded("get-organization", 0)?["response"],
    )];
    let members_path = format!("{org_path}/members?per_page=100");
    if variant == Variant::SecondaryRateLimit {
        let message = json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."});
        steps.push(with_header(
            step(&members_path, 403, &message),
            "retry-after",
            "1",
        ));
    }
    steps.push(step(&members_path, 200, &members));
    steps.push(step(
        &format!("{org_path}/memberships/octocat"),
        200,
        &openapi("orgs__get-membership-for-user")?,
    ));
    let two_factor = format!("{org_path}/members?filter=2fa_disabled&per_page=100");
    steps.push(if variant == Variant::NoTwoFactorScope {
        step(
            &two_factor,
            403,
            &json!({"message": "Resource not accessible by integration"}),
        )
    } else {
        step(&two_factor, 200, &members)
    });
    steps.push(step(
        &format!("{org_path}/invitations?per_page=100"),
        200,
        &openapi("orgs__list-pending-invitations")?,
    ));
    steps.push(step(
        &format!("{org_path}/teams?per_page=100"),
        200,
        &openapi("teams__list")?,
    ));
    steps.push(step(
        &format!("{org_path}/teams/justice-league/members?per_page=100"),
        200,
        &openapi("teams__list-members-in-org")?,
    ));
    steps.push(step(
        &format!("{org_path}/repos?per_page=100"),
        200,
        &openapi("repos__list-for-org")?,
    ));
    steps.push(step(
        "/repos/octocat/Hello-World/collaborators?affiliation=all&per_page=100",
        200,
        &openapi("repos__list-collaborators")?,
    ));
    let protection = "/repos/octocat/Hello-World/branches/master/protection";
    steps.push(if variant == Variant::Unprotected {
        let not_protected = recorded("branch-protection", 0)?;
        step(protection, 404, &not_protected["response"])
    } else {
        step(protection, 200, &openapi("repos__get-branch-protection")?)
    });
    Ok(steps)
}

fn run(replay: &Replay) -> Result<Scan, PluginError> {
    let config = Config::parse(&json!({"api_url": BASE, "org": ORG}).to_string())?;
    scan(&client(&config, replay), &config, None)
}

fn run_ok(replay: &Replay) -> Result<Batch, String> {
    let result = run(replay).map_err(|e| format!("{e:?}"));
    replay.check_done()?;
    Ok(result?.batch)
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => json!(b),
        Value::Integer(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::Text(s) | Value::Timestamp(s) => json!(s),
        Value::Texts(list) => json!(list),
    }
}

fn props_json(props: &[(String, Value)]) -> Json {
    Json::Object(props.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
}

fn node(batch: &Batch, label: &str, key: &str) -> Result<Json, String> {
    let found: Vec<_> = batch
        .nodes
        .iter()
        .filter(|n| n.label == label && n.key == key)
        .collect();
    match found.as_slice() {
        [one] => Ok(props_json(&one.properties)),
        _ => Err(format!("{} nodes {label}({key})", found.len())),
    }
}

fn edge(batch: &Batch, kind: &str, from: &str, to: &str) -> Option<Json> {
    batch
        .edges
        .iter()
        .find(|e| e.kind == kind && e.from.key == from && e.to.key == to)
        .map(|e| props_json(&e.properties))
}

fn coverage(batch: &Batch) -> Vec<String> {
    batch
        .complete
        .iter()
        .map(|c| match c {
            Coverage::Nodes(label) => format!("nodes {label}"),
            Coverage::EdgesTo((kind, to)) => format!("{kind} to {}", to.key),
            Coverage::EdgesFrom((kind, from)) => format!("{kind} from {}", from.key),
            Coverage::Node(node) => format!("node {}", node.key),
            Coverage::Edge((kind, from, to)) => format!("{kind} {} to {}", from.key, to.key),
        })
        .collect()
}

#[test]
fn full_scan_sends_the_documented_requests_in_order() -> TestResult {
    let replay = Replay::new(org_scan(Variant::Protected)?);
    run_ok(&replay)?;
    assert_eq!(
        replay.paths(),
        vec![
            "/orgs/octokit-fixture-org",
            "/orgs/octokit-fixture-org/members?per_page=100",
            "/orgs/octokit-fixture-org/memberships/octocat",
            "/orgs/octokit-fixture-org/members?filter=2fa_disabled&per_page=100",
            "/orgs/octokit-fixture-org/invitations?per_page=100",
            "/orgs/octokit-fixture-org/teams?per_page=100",
            "/orgs/octokit-fixture-org/teams/justice-league/members?per_page=100",
            "/orgs/octokit-fixture-org/repos?per_page=100",
            "/repos/octocat/Hello-World/collaborators?affiliation=all&per_page=100",
            "/repos/octocat/Hello-World/branches/master/protection",
        ]
    );
    Ok(())
}

#[test]
fn organisation_keeps_its_policy_settings() -> TestResult {
    let batch = run_ok(&Replay::new(org_scan(Variant::Protected)?))?;
    let org = node(&batch, "Organisation", "github:octokit-fixture-org")?;
    assert_eq!(org["login"], "octokit-fixture-org");
    assert_eq!(org["id"], 1000);
    assert_eq!(org["two_factor_requirement_enabled"], false);
    assert_eq!(org["default_repository_permission"], "read");
    assert_eq!(org["members_can_create_repositories"], true);
    assert_eq!(org["members_can_fork_private_repositories"], false);
    assert_eq!(org["web_commit_signoff_required"], false);
    // Counters and URLs are not policy.
    assert!(org.get("public_repos").is_none());
    assert!(org.get("billing_email").is_none());
    Ok(())
}

#[test]
fn member_is_one_account_with_role_state_and_mfa() -> TestResult {
    let batch = run_ok(&Replay::new(org_scan(Variant::Protected)?))?;
    let account = node(&batch, "Account", "github:octocat")?;
    assert_eq!(account["provider"], "github");
    assert_eq!(account["login"], "octocat");
    assert_eq!(account["type"], "User");
    assert_eq!(account["site_admin"], false);
    // The composed scan lists octocat among members without two-factor.
    assert_eq!(account["mfa_enabled"], false);
    let id = batch
        .nodes
        .iter()
        .find(|n| n.key == "github:octocat")
        .and_then(|n| org_mesh_plugin::props::get(&n.properties, "id"));
    assert!(matches!(id, Some(Value::Integer(1))));
    assert_eq!(
        edge(
            &batch,
            "MEMBER_OF",
            "github:octocat",
            "github:octokit-fixture-org"
        ),
        Some(json!({"role": "admin", "state": "active"}))
    );
    Ok(())
}

#[test]
fn invitation_is_a_pending_membership() -> TestResult {
    let batch = run_ok(&Replay::new(org_scan(Variant::Protected)?))?;
    assert_eq!(
        node(&batch, "Account", "github:monalisa")?,
        json!({"provider": "github", "login": "monalisa"})
    );
    assert_eq!(
        edge(
            &batch,
            "MEMBER_OF",
            "github:monalisa",
            "github:octokit-fixture-org"
        ),
        Some(json!({"role": "member", "state": "pending"}))
    );
    Ok(())
}

#[test]
fn team_and_repository_with_their_edges() -> TestResult {
    let batch = run_ok(&Replay::new(org_scan(Variant::Protected)?))?;
    let team_key = "github:octokit-fixture-org/justice-league";
    assert_eq!(
        node(&batch, "Group", team_key)?,
        json!({"provider": "github", "name": "Justice League", "slug": "justice-league", "id": 1, "privacy": "closed"})
    );
    assert!(edge(&batch, "OWNS", "github:octokit-fixture-org", team_key).is_some());
    assert_eq!(
        edge(&batch, "MEMBER_OF", "github:octocat", team_key),
        Some(json!({"role": "member"}))
    );
    let repo_key = "github:octocat/Hello-World";
    assert!(edge(&batch, "OWNS", "github:octokit-fixture-org", repo_key).is_some());
    assert_eq!(
        edge(&batch, "HAS_PERMISSION", "github:octocat", repo_key),
        Some(json!({"role": "write"}))
    );
    let accounts = batch.nodes.iter().filter(|n| n.label == "Account").count();
    assert_eq!(accounts, 2, "octocat once, monalisa once");
    Ok(())
}

#[test]
fn protected_default_branch_is_flattened() -> TestResult {
    let batch = run_ok(&Replay::new(org_scan(Variant::Protected)?))?;
    let repo = node(&batch, "Repository", "github:octocat/Hello-World")?;
    assert_eq!(
        repo,
        json!({
            "provider": "github",
            "name": "Hello-World",
            "full_name": "octocat/Hello-World",
            "id": 1296269,
            "visibility": "public",
            "default_branch": "master",
            "private": false,
            "archived": false,
            "default_branch_protected": true,
            "protection_enforce_admins": true,
            "protection_required_approving_review_count": 2,
            "protection_dismiss_stale_reviews": true,
            "protection_require_code_owner_reviews": true,
            // The example's status checks carry no `strict`, and it has no
            // `required_signatures` rule: both stay unknown.
            "protection_allow_force_pushes": true,
            "protection_allow_deletions": true,
            "protection_required_linear_history": true,
            "protection_required_conversation_resolution": true,
        })
    );
    Ok(())
}

#[test]
fn full_scan_claims_every_coverage() -> TestResult {
    let batch = run_ok(&Replay::new(org_scan(Variant::Protected)?))?;
    assert_eq!(
        coverage(&batch),
        vec![
            "MEMBER_OF to github:octokit-fixture-org",
            "MEMBER_OF to github:octokit-fixture-org/justice-league",
            "HAS_PERMISSION to github:octocat/Hello-World",
            "OWNS from github:octokit-fixture-org",
        ]
    );
    Ok(())
}

#[test]
fn branch_not_protected_is_a_fact() -> TestResult {
    let batch = run_ok(&Replay::new(org_scan(Variant::Unprotected)?))?;
    let repo = node(&batch, "Repository", "github:octocat/Hello-World")?;
    assert_eq!(repo["default_branch_protected"], false);
    assert!(repo.get("protection_enforce_admins").is_none());
    Ok(())
}

#[test]
fn secondary_rate_limit_is_waited_out_not_forbidden() -> TestResult {
    let replay = Replay::new(org_scan(Variant::SecondaryRateLimit)?);
    let batch = run_ok(&replay)?;
    assert_eq!(*replay.slept.borrow(), vec![1]);
    let paths = replay.paths();
    assert_eq!(paths[1], paths[2], "the members listing is sent again");
    assert_eq!(
        node(&batch, "Account", "github:octocat")?["mfa_enabled"],
        false
    );
    Ok(())
}

#[test]
fn two_factor_listing_refused_leaves_mfa_unknown() -> TestResult {
    let replay = Replay::new(org_scan(Variant::NoTwoFactorScope)?);
    let result = run(&replay).map_err(|e| format!("{e:?}"))?;
    replay.check_done()?;
    let account = node(&result.batch, "Account", "github:octocat")?;
    assert!(account.get("mfa_enabled").is_none());
    assert_eq!(
        coverage(&result.batch).len(),
        4,
        "membership is still complete"
    );
    assert!(result.notes.iter().any(|n| {
        n.fields
            .iter()
            .any(|(_, v)| v == "members without two-factor")
    }));
    Ok(())
}

#[test]
fn mfa_is_true_for_a_member_missing_from_the_two_factor_listing() -> TestResult {
    let mut steps = org_scan(Variant::Protected)?;
    steps[3].body = "[]".into();
    let batch = run_ok(&Replay::new(steps))?;
    assert_eq!(
        node(&batch, "Account", "github:octocat")?["mfa_enabled"],
        true
    );
    Ok(())
}

#[test]
fn refused_invitations_withhold_org_membership_coverage() -> TestResult {
    let mut steps = org_scan(Variant::Protected)?;
    steps[4] = step(
        &steps[4].path.clone(),
        403,
        &json!({"message": "Must have admin rights"}),
    );
    let batch = run_ok(&Replay::new(steps))?;
    let covered = coverage(&batch);
    assert!(!covered.contains(&"MEMBER_OF to github:octokit-fixture-org".to_string()));
    assert_eq!(covered.len(), 3);
    assert!(
        edge(
            &batch,
            "MEMBER_OF",
            "github:octocat",
            "github:octokit-fixture-org"
        )
        .is_some()
    );
    Ok(())
}

#[test]
fn refused_collaborators_and_protection_are_unknown() -> TestResult {
    let mut steps = org_scan(Variant::Protected)?;
    let forbidden = json!({"message": "Must have admin rights to Repository."});
    steps[8] = step(&steps[8].path.clone(), 403, &forbidden);
    steps[9] = step(&steps[9].path.clone(), 403, &forbidden);
    let batch = run_ok(&Replay::new(steps))?;
    let repo = node(&batch, "Repository", "github:octocat/Hello-World")?;
    assert!(repo.get("default_branch_protected").is_none());
    assert!(
        !coverage(&batch)
            .iter()
            .any(|c| c.starts_with("HAS_PERMISSION"))
    );
    assert!(coverage(&batch).contains(&"OWNS from github:octokit-fixture-org".to_string()));
    Ok(())
}

#[test]
fn members_are_read_across_pages() -> TestResult {
    let mut steps = org_scan(Variant::Protected)?;
    let page_two = "/orgs/octokit-fixture-org/members?per_page=100&page=2";
    let link = format!("<{BASE}{page_two}>; rel=\"next\", <{BASE}{page_two}>; rel=\"last\"");
    steps[1] = with_header(steps[1].clone(), "link", &link);
    let mut hubot = openapi("orgs__list-members")?;
    hubot[0]["login"] = json!("hubot");
    hubot[0]["id"] = json!(14_541_957_942_i64);
    steps.insert(2, step(page_two, 200, &hubot));
    let membership = json!({"state": "active", "role": "member"});
    steps.insert(
        4,
        step(
            "/orgs/octokit-fixture-org/memberships/hubot",
            200,
            &membership,
        ),
    );
    let batch = run_ok(&Replay::new(steps))?;
    let hubot = node(&batch, "Account", "github:hubot")?;
    assert_eq!(hubot["id"], 14_541_957_942_i64);
    assert_eq!(hubot["mfa_enabled"], true);
    assert_eq!(
        edge(
            &batch,
            "MEMBER_OF",
            "github:hubot",
            "github:octokit-fixture-org"
        ),
        Some(json!({"role": "member", "state": "active"}))
    );
    Ok(())
}

#[test]
fn email_only_invitations_are_counted_not_recorded() -> TestResult {
    let mut steps = org_scan(Variant::Protected)?;
    let mut invitations = openapi("orgs__list-pending-invitations")?;
    invitations[0]["login"] = Json::Null;
    steps[4].body = invitations.to_string();
    let replay = Replay::new(steps);
    let result = run(&replay).map_err(|e| format!("{e:?}"))?;
    replay.check_done()?;
    assert!(node(&result.batch, "Account", "github:monalisa").is_err());
    assert!(result.notes.iter().any(|n| {
        n.message.contains("email address")
            && n.fields == vec![("count".to_string(), "1".to_string())]
    }));
    Ok(())
}

#[test]
fn unknown_organisation_is_a_config_error() -> TestResult {
    let steps = vec![step(
        "/orgs/octokit-fixture-org",
        404,
        &json!({"message": "Not Found"}),
    )];
    let result = run(&Replay::new(steps));
    assert!(
        matches!(&result, Err(PluginError::InvalidConfig(m)) if m.starts_with("org:")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn exhausted_primary_budget_fails_the_sync_as_rate_limited() -> TestResult {
    let reset = (1_700_000_000_u64 + 3600).to_string();
    let limited = Step {
        path: "/orgs/octokit-fixture-org".into(),
        status: 403,
        headers: vec![
            ("x-ratelimit-remaining".into(), "0".into()),
            ("x-ratelimit-reset".into(), reset),
        ],
        body: json!({"message": "API rate limit exceeded"}).to_string(),
    };
    let result = run(&Replay::new(vec![limited]));
    assert!(
        matches!(result, Err(PluginError::RateLimited(3601))),
        "{result:?}"
    );
    Ok(())
}

/// Two comments as `GET /repos/{repo}/issues/comments` lists them: written
/// answers in the documented shape, since no recording lists comments.
fn listed_comments() -> Json {
    json!([
        {
            "id": 1001,
            "html_url": "https://github.com/octocat/Hello-World/issues/7#issuecomment-1001",
            "issue_url": "https://api.github.com/repos/octocat/Hello-World/issues/7",
            "user": {"login": "new-voice", "id": 501, "type": "User"},
            "author_association": "NONE",
            "created_at": "2024-03-01T10:00:00Z",
            "updated_at": "2024-03-01T10:00:00Z",
            "body": "Is this project still alive? @octocat please add a co-maintainer."
        },
        {
            "id": 1002,
            "html_url": "https://github.com/octocat/Hello-World/issues/7#issuecomment-1002",
            "issue_url": "https://api.github.com/repos/octocat/Hello-World/issues/7",
            "user": {"login": "octocat", "id": 1, "type": "User"},
            "author_association": "OWNER",
            "created_at": "2024-03-02T09:00:00Z",
            "updated_at": "2024-03-03T08:00:00Z",
            "body": "It is maintained; I will look at the queue this week."
        }
    ])
}

fn scan_with_comments(cursor: Option<&str>, since_in_path: &str) -> Result<Scan, String> {
    let mut steps = org_scan(Variant::Protected)?;
    steps.push(step(
        &format!("/repos/octocat/Hello-World/issues/comments?since={since_in_path}&per_page=100"),
        200,
        &listed_comments(),
    ));
    let replay = Replay::new(steps);
    let config = Config::parse(
        &json!({"api_url": BASE, "org": ORG, "comments_since": "2024-01-01T00:00:00Z"}).to_string(),
    )
    .map_err(|e| format!("{e:?}"))?;
    let result = scan(&client(&config, &replay), &config, cursor).map_err(|e| format!("{e:?}"));
    replay.check_done()?;
    result
}

#[test]
fn comments_since_the_cursor_become_messages_and_move_it_on() -> TestResult {
    let first = scan_with_comments(None, "2024-01-01T00:00:00Z")?;
    let key = "github:octocat/Hello-World/issue-comment/1001";
    let message = node(&first.batch, "Message", key)?;
    assert_eq!(message["thread"], json!("github:octocat/Hello-World#7"));
    assert_eq!(message["author_association"], json!("NONE"));
    assert_eq!(message["created_at"], json!("2024-03-01T10:00:00Z"));
    assert!(edge(&first.batch, "AUTHORED", "github:new-voice", key).is_some());
    assert!(edge(&first.batch, "MENTIONS", key, "github:octocat").is_some());
    assert!(edge(&first.batch, "POSTED_IN", key, "github:octocat/Hello-World").is_some());
    // The newest edit seen, not the newest creation.
    assert_eq!(first.cursor.as_deref(), Some("2024-03-03T08:00:00Z"));
    // The next sync asks only for what changed since.
    let second = scan_with_comments(first.cursor.as_deref(), "2024-03-03T08:00:00Z")?;
    assert_eq!(second.cursor.as_deref(), Some("2024-03-03T08:00:00Z"));
    // Comment coverage is never claimed: a listing since a time is partial.
    assert!(
        !coverage(&second.batch)
            .iter()
            .any(|c| c.contains("Message"))
    );
    Ok(())
}

#[test]
fn without_comments_since_no_comment_is_read() -> TestResult {
    let replay = Replay::new(org_scan(Variant::Protected)?);
    let scan = run(&replay).map_err(|e| format!("{e:?}"))?;
    replay.check_done()?;
    assert!(scan.cursor.is_none());
    assert!(!scan.batch.nodes.iter().any(|n| n.label == "Message"));
    Ok(())
}
