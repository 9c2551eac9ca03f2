//! Fuzz entry points: one function per target, each taking raw bytes as an
//! attacker would send them and handing them to the product's own parser.
//!
//! None of these functions may panic on any input: a panic is a bug found
//! in the code under it. `fuzz_targets/` wraps each in libFuzzer for
//! `.ci/fuzz`, and `tests/corpus.rs` replays every seed and every crash
//! kept in `regressions/` through them on stable Rust, so a crash found
//! once stays fixed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use org_mesh_app::config::Config;
use org_mesh_plugin::connector::IncomingRequest;
use org_mesh_policy::{ApprovalInput, DecisionInput, PolicySet};
use org_mesh_scim::ResourceKind;
use org_mesh_scim::{filter, patch};
use serde_json::{Map, Value, json};

/// A target's name and its entry point, as the corpus replay and the
/// fuzz script know them.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by the name of its corpus folder.
pub const TARGETS: [Target; 6] = [
    ("scim_filter", scim_filter),
    ("scim_patch", scim_patch),
    ("github_webhook", github_webhook),
    ("gitlab_webhook", gitlab_webhook),
    ("config_yaml", config_yaml),
    ("policy_input", policy_input),
];

/// The crate's folder, where `corpus/` and `regressions/` live.
pub fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A user as Okta would have provisioned it, with every kind of attribute
/// a filter or PATCH path can reach: simple, complex, multi-valued and an
/// extension.
fn scim_user() -> Map<String, Value> {
    let user = json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "00u1abcd",
        "userName": "bjensen@example.com",
        "displayName": "Babs Jensen",
        "active": true,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "groups": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        },
        "meta": {"created": "2024-01-01T00:00:00Z", "lastModified": "2024-01-02T00:00:00Z"}
    });
    match user {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn scim_group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Engineering",
        "members": [{"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs"}]
    })
}

/// A `filter` query parameter: parsed, then evaluated against a user and
/// a group, and parsed again as a PATCH path.
pub fn scim_filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = filter::parse(text) {
        let user = Value::Object(scim_user());
        let _ = filter::matches(&parsed, ResourceKind::User, &user);
        let _ = filter::matches(&parsed, ResourceKind::Group, &scim_group());
    }
    let _ = filter::parse_patch_path(text);
}

/// A PATCH request body applied to the fixed user; a result is then run
/// through the filter evaluator, since PATCH can leave shapes no create
/// would.
pub fn scim_patch(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut user = scim_user();
    if patch::apply(ResourceKind::User, &mut user, &body).is_ok()
        && let Ok(check) = filter::parse(
            r#"emails[type eq "work" and primary eq true].value pr or active eq false"#,
        )
    {
        let _ = filter::matches(&check, ResourceKind::User, &Value::Object(user));
    }
}

/// Picks the event header from the first byte and whether text is
/// recorded from the next bit of it, so both stay under the fuzzer's
/// control without a format of their own.
fn pick<'a>(data: &'a [u8], events: &[&'static str]) -> Option<(&'static str, bool, &'a [u8])> {
    let (&first, body) = data.split_first()?;
    let index = usize::from(first) % events.len();
    let messages = (usize::from(first) / events.len()).is_multiple_of(2);
    Some((events[index], messages, body))
}

fn delivery(config: &Value, header: &str, event: &str, body: &[u8]) -> IncomingRequest {
    IncomingRequest {
        config: config.to_string(),
        method: "POST".into(),
        path: "/".into(),
        headers: vec![
            (header.into(), event.into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: body.to_vec(),
    }
}

/// A GitHub delivery: first byte picks the `X-GitHub-Event` among the
/// mapped events, the rest is the body.
pub fn github_webhook(data: &[u8]) {
    let Some((event, messages, body)) = pick(data, &github_connector::EVENTS) else {
        return;
    };
    let config = json!({"org": "Octocoders", "messages": messages});
    let _ = github_connector::handle(&delivery(&config, "x-github-event", event, body));
}

/// A GitLab delivery: first byte picks the `X-Gitlab-Event` among the
/// mapped hooks, the rest is the body.
pub fn gitlab_webhook(data: &[u8]) {
    let Some((event, messages, body)) = pick(data, &gitlab_connector::HOOKS) else {
        return;
    };
    let config = json!({"instance": "gitlab.example.com", "messages": messages});
    let _ = gitlab_connector::handle(&delivery(&config, "x-gitlab-event", event, body));
}

/// The operator's configuration file, as text.
pub fn config_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Config::parse(text, Path::new("/fuzz/org-mesh.yaml"));
}

/// The shipped `policies/` folder, compiled and self-tested once: loading
/// runs the Rego tests and takes far longer than one decision.
pub fn shipped_policies() -> Result<&'static PolicySet, String> {
    static SET: OnceLock<Result<PolicySet, String>> = OnceLock::new();
    SET.get_or_init(|| PolicySet::load(&fuzz_dir().join("../policies")).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// A finding that the shipped tuning names, so that fuzzed fields meet
/// real rules rather than always falling through to the defaults.
fn decision_template() -> Value {
    json!({
        "detector": "identity-drift",
        "rule": "idp-offboarded-has-admin",
        "subject": {"label": "Account", "key": "github:octocat"},
        "key": "github:octocat",
        "title": "An offboarded person still holds admin rights",
        "score": 0.9,
        "default_severity": "high",
        "attributes": {"role": "admin", "provider": "github"},
        "evidence_count": 2,
        "has_remedy": true,
        "now": "2026-01-15T12:00:00Z"
    })
}

fn approval_template() -> Value {
    json!({
        "action": {
            "executor": "github",
            "kind": "github.remove-org-member",
            "target": {"label": "Account", "key": "github:octocat"},
            "parameters": {"org": "octo-org", "login": "octocat"}
        },
        "finding": {
            "rule": "idp-offboarded-has-access",
            "fingerprint": "0f3a",
            "subject": {"label": "Account", "key": "github:octocat"},
            "severity": "high",
            "score": 0.8,
            "auto_fix": true,
            "suppressed": false
        },
        "now": "2026-01-15T12:00:00Z"
    })
}

/// Lays the fuzzed JSON over a valid template: an object replaces the
/// template's fields key by key (so one fuzzed field reaches the policy
/// while the rest still deserialize), anything else becomes `free`, the
/// one field the host passes through untyped.
fn overlay(mut template: Value, fuzzed: &Value, free: &[&str]) -> Value {
    match fuzzed {
        Value::Object(fields) => {
            if let Value::Object(base) = &mut template {
                for (k, v) in fields {
                    base.insert(k.clone(), v.clone());
                }
            }
        }
        other => {
            if let Some(slot) = free
                .iter()
                .try_fold(&mut template, |at, key| at.get_mut(*key))
            {
                *slot = other.clone();
            }
        }
    }
    template
}

/// JSON handed to the shipped drift and approval policies as `input`,
/// through the same typed inputs the host builds.
pub fn policy_input(data: &[u8]) {
    let Ok(fuzzed) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(set) = shipped_policies() else {
        return;
    };
    let decision = overlay(decision_template(), &fuzzed, &["attributes"]);
    if let Ok(input) = serde_json::from_value::<DecisionInput>(decision) {
        let _ = set.decide(&input);
    }
    let approval = overlay(approval_template(), &fuzzed, &["action", "parameters"]);
    if let Ok(input) = serde_json::from_value::<ApprovalInput>(approval) {
        let _ = set.approval(&input);
    }
}
