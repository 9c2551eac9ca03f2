//! A strict scripted GitHub for the executor's native tests, and the
//! recorded and published data they replay.
//!
//! Each request must be the next step of the script: same method, same path
//! and query, the `Accept` header GitHub's recordings were made with, the
//! token secret, and the same JSON body. Anything else is noted as a
//! problem and fails the test at `check`; a request past the end of the
//! script is a problem too. Recorded answers come with their recorded
//! headers, and `Link` targets are moved from GitHub's origin to the test's
//! base URL, as the replay server does, so pagination follows the recording.

#![allow(
    dead_code,
    reason = "each test file is its own crate and uses part of this module"
)]

use std::cell::RefCell;
use std::collections::VecDeque;

use serde_json::{Value as Json, json};

use org_mesh_plugin::executor::{Action, ActionRequest, PlannedCall};
use org_mesh_plugin::http::{self, AuthScheme, Request, Response};
use org_mesh_plugin::rest::Transport;
use org_mesh_plugin::types::{NodeRef, Properties};

pub const BASE: &str = "http://127.0.0.1:9/api.github.com/f2";

/// The origin GitHub's recorded `Link` headers point at.
const RECORDED_ORIGIN: &str = "https://api.github.com";

pub type TestResult = Result<(), String>;

fn read_json(relative: &str) -> Result<Json, String> {
    let path = format!("{}/tests/data/{relative}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

/// The exchanges of one `@octokit/fixtures` scenario, in recorded order.
pub fn recording(scenario: &str) -> Result<Vec<Json>, String> {
    read_json(&format!("octokit-fixtures/{scenario}.json"))?
        .as_array()
        .cloned()
        .ok_or_else(|| format!("{scenario} is not a list of exchanges"))
}

/// One example from GitHub's published OpenAPI description.
pub fn published(operation: &str) -> Result<Json, String> {
    read_json(&format!("github-openapi/{operation}.json"))
}

/// One expected request and its answer.
#[derive(Debug, Clone)]
pub struct Step {
    pub method: String,
    pub path: String,
    /// The body the request must carry, compared as JSON; its recorded
    /// byte length, when known, is compared too.
    pub body: Option<Json>,
    pub length: Option<usize>,
    pub status: u16,
    pub answer: Json,
    pub headers: Vec<(String, String)>,
}

impl Step {
    /// The request must carry this JSON body.
    pub fn sending(mut self, body: Json) -> Self {
        self.body = Some(body);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

fn text_of(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A recorded exchange as a step, exactly as recorded.
pub fn from_recording(entry: &Json) -> Step {
    let body = entry.get("body").filter(|b| b.is_object()).cloned();
    let headers = entry["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), text_of(v).replace(RECORDED_ORIGIN, BASE)))
                .collect()
        })
        .unwrap_or_default();
    Step {
        method: entry["method"].as_str().unwrap_or_default().to_uppercase(),
        path: entry["path"].as_str().unwrap_or_default().to_string(),
        length: entry["reqheaders"]["content-length"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok()),
        body,
        status: u16::try_from(entry["status"].as_u64().unwrap_or_default()).unwrap_or(599),
        answer: entry["response"].clone(),
        headers,
    }
}

/// A recorded answer to a request narrowed by a query the recording did
/// not send. Used only where the narrower request cannot change what the
/// test looks at in the answer; each use says why.
pub fn narrowed(entry: &Json, query: &str) -> Step {
    let mut step = from_recording(entry);
    step.path = format!("{}?{query}", step.path);
    step
}

/// A written step: an answer the recordings do not hold.
pub fn step(method: &str, path: &str, status: u16, answer: Json) -> Step {
    Step {
        method: method.into(),
        path: path.into(),
        body: None,
        length: None,
        status,
        answer,
        headers: Vec::new(),
    }
}

/// GitHub's error body for what it cannot find or the token cannot see.
pub fn not_found(path: &str) -> Step {
    step(
        path.split_once(' ').map_or("GET", |(m, _)| m),
        path.split_once(' ').map_or(path, |(_, p)| p),
        404,
        json!({
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest"
        }),
    )
}

#[derive(Debug, Default)]
pub struct Github {
    steps: RefCell<VecDeque<Step>>,
    pub sent: RefCell<Vec<Request>>,
    problems: RefCell<Vec<String>>,
    pub slept: RefCell<Vec<u64>>,
    pub warnings: RefCell<Vec<String>>,
}

impl Github {
    pub fn new(steps: Vec<Step>) -> Self {
        Self {
            steps: RefCell::new(steps.into()),
            ..Self::default()
        }
    }

    /// Every problem seen, and any step the executor did not reach.
    pub fn check(&self) -> TestResult {
        let mut problems = self.problems.borrow().clone();
        let left = self.left();
        if !left.is_empty() {
            problems.push(format!("steps never requested: {left:?}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Problems only, for scripts the executor is expected to stop early in.
    pub fn check_sent(&self) -> TestResult {
        let problems = self.problems.borrow();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    pub fn left(&self) -> Vec<String> {
        self.steps
            .borrow()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    /// The requests sent, as `METHOD path`.
    pub fn requests(&self) -> Vec<String> {
        self.sent
            .borrow()
            .iter()
            .map(|r| format!("{} {}", r.method, r.url.trim_start_matches(BASE)))
            .collect()
    }

    /// The requests sent that could change something.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| !r.starts_with("GET "))
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
            problems.push(format!(
                "{} {path}: body {sent:?}, expected {:?}",
                request.method, step.body
            ));
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
            headers: step.headers,
            body,
        })
    }

    fn now_unix_secs(&self) -> u64 {
        1_507_651_170
    }

    fn sleep_secs(&self, secs: u64) {
        self.slept.borrow_mut().push(secs);
    }

    fn warn(&self, message: &str, _fields: &[(&str, String)]) {
        self.warnings.borrow_mut().push(message.to_string());
    }
}

/// The executor's configuration for the tests, with `extra` laid over it.
pub fn config(extra: Json) -> String {
    let mut config = json!({"api_url": BASE, "dry_run_only": false});
    if let (Some(config), Json::Object(extra)) = (config.as_object_mut(), extra) {
        config.extend(extra);
    }
    config.to_string()
}

pub fn request(kind: &str, target: NodeRef, parameters: Properties) -> ActionRequest {
    ActionRequest {
        config: config(json!({})),
        action: Action {
            kind: kind.to_string(),
            target,
            parameters,
            idempotency_key: "fix-1".into(),
        },
    }
}

pub fn node(label: &str, key: &str) -> NodeRef {
    NodeRef {
        label: label.into(),
        key: key.into(),
    }
}

/// Planned or made calls as `METHOD path`.
pub fn summary(calls: &[PlannedCall]) -> Vec<String> {
    calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.url.trim_start_matches(BASE)))
        .collect()
}

/// Asserts that both planning and executing `req` are refused as invalid
/// input naming `expected`, before any request is sent.
pub fn assert_refused_before_sending(req: &ActionRequest, expected: &str) {
    let github = Github::new(Vec::new());
    for result in [
        github_executor::plan(req, &github).map(|_| ()),
        github_executor::execute(req, &github).map(|_| ()),
    ] {
        assert!(
            matches!(&result, Err(org_mesh_plugin::types::PluginError::InvalidInput(m)) if m.contains(expected)),
            "{expected}: {result:?}"
        );
    }
    assert!(github.sent.borrow().is_empty());
}
