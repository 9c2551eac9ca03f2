//! `notify.post` against webhook receivers served on 127.0.0.1: every
//! message crosses a real socket and must arrive exactly as planned, with
//! its `Idempotency-Key`. The receivers answer as Slack's incoming webhooks
//! do: `ok` on success, a short error word otherwise.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use notify_executor::{Ledger, POST, execute, plan};
use org_mesh_plugin::executor::{Action, ActionRequest};
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{NodeRef, PluginError};
use org_mesh_plugin_testkit::{Server, Step, Wire, expect};

type TestResult = Result<(), String>;

const HOOK: &str = "/services/T0001/B0002/loopback-secret";
const KEY: &str = "finding-3f2a:notify.post";

/// A key-value store in memory, standing in for the host's.
#[derive(Debug, Default)]
struct Memory(RefCell<BTreeMap<String, Vec<u8>>>);

impl Ledger for Memory {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.borrow_mut().insert(key.into(), value.to_vec());
        Ok(())
    }
}

fn message() -> Props {
    Props::new()
        .text("text", "octocat still has admin in acme after offboarding")
        .texts(
            "fields",
            vec![
                "Severity: critical".into(),
                "Rule: idp-offboarded-has-admin".into(),
            ],
        )
}

fn body() -> Json {
    json!({
        "text": "octocat still has admin in acme after offboarding",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "octocat still has admin in acme after offboarding"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Severity*\ncritical"},
                {"type": "mrkdwn", "text": "*Rule*\nidp-offboarded-has-admin"}
            ]}
        ]
    })
}

/// The POST every attempt must be, byte for byte in meaning.
fn post(path: &str, body: Json) -> Step {
    expect("POST", path)
        .body(body)
        .header("idempotency-key", KEY)
        .header("content-type", "application/json")
}

fn receiver(steps: Vec<Step>) -> Result<Server, String> {
    Server::start(steps).map_err(|e| e.to_string())
}

fn request(config: &Json, parameters: Props) -> ActionRequest {
    ActionRequest {
        config: config.to_string(),
        action: Action {
            kind: POST.into(),
            target: NodeRef {
                label: "Account".into(),
                key: "github:octocat".into(),
            },
            parameters: parameters.build(),
            idempotency_key: KEY.into(),
        },
    }
}

fn to_default(server: &Server) -> Json {
    json!({"default_url": format!("{}{HOOK}", server.base_url())})
}

#[test]
fn a_message_is_posted_once_exactly_as_planned() -> TestResult {
    let server = receiver(vec![post(HOOK, body()).answer_text(200, "ok")])?;
    let req = request(&to_default(&server), message());
    let planned = plan(&req).map_err(|e| format!("{e:?}"))?;
    let wire = Wire::new();
    let outcome = execute(&req, &wire, &Memory::default()).map_err(|e| format!("{e:?}"))?;
    let done = server.finish();
    done.check()?;
    assert!(outcome.changed);
    assert_eq!(outcome.calls.len(), 1);
    assert_eq!(outcome.calls[0].body, planned.calls[0].body);
    assert_eq!(
        done.received[0].body,
        planned.calls[0]
            .body
            .clone()
            .unwrap_or_default()
            .into_bytes(),
        "the bytes sent are the bytes planned"
    );
    assert!(wire.slept.borrow().is_empty());
    Ok(())
}

#[test]
fn the_plan_shows_the_exact_request_with_the_url_masked() -> TestResult {
    let server = receiver(Vec::new())?;
    let planned = plan(&request(&to_default(&server), message())).map_err(|e| format!("{e:?}"))?;
    let call = &planned.calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.url, format!("{}/services/…", server.base_url()));
    assert!(!call.url.contains("loopback-secret"));
    assert_eq!(
        serde_json::from_str::<Json>(call.body.as_deref().unwrap_or_default()).ok(),
        Some(body())
    );
    assert!(call.effect.contains(&format!("Idempotency-Key: {KEY}")));
    assert!(call.effect.contains("up to 4 times"));
    let done = server.finish();
    done.check()?;
    assert!(done.received.is_empty(), "plans make no request");
    Ok(())
}

#[test]
fn a_500_is_retried_with_the_same_key_and_body() -> TestResult {
    let server = receiver(vec![
        post(HOOK, body()).answer_text(500, "rollup_error"),
        post(HOOK, body()).answer_text(200, "ok"),
    ])?;
    let wire = Wire::new();
    let outcome = execute(
        &request(&to_default(&server), message()),
        &wire,
        &Memory::default(),
    )
    .map_err(|e| format!("{e:?}"))?;
    let done = server.finish();
    done.check()?;
    assert!(outcome.changed);
    assert_eq!(*wire.slept.borrow(), vec![1]);
    assert_eq!(wire.warnings.borrow().len(), 1);
    assert_eq!(
        outcome
            .calls
            .iter()
            .map(|c| c.effect.as_str())
            .collect::<Vec<_>>(),
        vec![
            "answered 500 rollup_error; retried after 1 s",
            "accepted with 200"
        ]
    );
    assert_eq!(done.received[0].body, done.received[1].body);
    Ok(())
}

#[test]
fn a_429_waits_as_long_as_retry_after_says() -> TestResult {
    let server = receiver(vec![
        post(HOOK, body())
            .answer_text(429, "rate_limited")
            .answer_header("retry-after", "3"),
        post(HOOK, body()).answer_text(200, "ok"),
    ])?;
    let wire = Wire::new();
    let outcome = execute(
        &request(&to_default(&server), message()),
        &wire,
        &Memory::default(),
    )
    .map_err(|e| format!("{e:?}"))?;
    server.finish().check()?;
    assert!(outcome.changed);
    assert_eq!(*wire.slept.borrow(), vec![3]);
    Ok(())
}

#[test]
fn a_retry_after_beyond_the_limit_is_handed_to_the_host() -> TestResult {
    let server = receiver(vec![
        post(HOOK, body())
            .answer_text(429, "rate_limited")
            .answer_header("retry-after", "120"),
    ])?;
    let wire = Wire::new();
    let result = execute(
        &request(&to_default(&server), message()),
        &wire,
        &Memory::default(),
    );
    server.finish().check()?;
    assert!(
        matches!(result, Err(PluginError::RateLimited(120))),
        "{result:?}"
    );
    assert!(
        wire.slept.borrow().is_empty(),
        "no wait beyond max_wait_secs"
    );
    Ok(())
}

#[test]
fn a_400_is_final_and_says_why() -> TestResult {
    let server = receiver(vec![post(HOOK, body()).answer_text(400, "invalid_payload")])?;
    let wire = Wire::new();
    let result = execute(
        &request(&to_default(&server), message()),
        &wire,
        &Memory::default(),
    );
    let done = server.finish();
    done.check()?;
    assert!(
        matches!(&result, Err(PluginError::Upstream(m))
            if m.contains("refused the message as malformed (400 invalid_payload); not retried")
                && !m.contains("loopback-secret")),
        "{result:?}"
    );
    assert_eq!(done.received.len(), 1);
    assert!(wire.slept.borrow().is_empty());
    Ok(())
}

#[test]
fn a_revoked_webhook_is_forbidden() -> TestResult {
    let server = receiver(vec![
        post(HOOK, body()).answer_text(403, "action_prohibited"),
    ])?;
    let result = execute(
        &request(&to_default(&server), message()),
        &Wire::new(),
        &Memory::default(),
    );
    server.finish().check()?;
    assert!(
        matches!(&result, Err(PluginError::Forbidden(m)) if m.contains("403 action_prohibited")),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn attempts_are_bounded() -> TestResult {
    let server = receiver(vec![
        post(HOOK, body()).answer_text(503, "unavailable"),
        post(HOOK, body()).answer_text(502, "bad gateway"),
        post(HOOK, body()).answer_text(503, "unavailable"),
    ])?;
    let mut config = to_default(&server);
    config["max_attempts"] = json!(3);
    let wire = Wire::new();
    let result = execute(&request(&config, message()), &wire, &Memory::default());
    server.finish().check()?;
    assert!(
        matches!(&result, Err(PluginError::Upstream(m))
            if m.contains("answered 503 unavailable") && m.contains("3 attempts made")),
        "{result:?}"
    );
    assert_eq!(*wire.slept.borrow(), vec![1, 2], "backoff doubles");
    Ok(())
}

#[test]
fn a_refused_connection_is_retried_then_reported() -> TestResult {
    // A port that was free a moment ago: nothing listens there.
    let closed = Server::start(Vec::new()).map_err(|e| e.to_string())?;
    let url = format!("{}{HOOK}", closed.base_url());
    closed.finish().check()?;
    let config = json!({"default_url": url, "max_attempts": 2});
    let wire = Wire::new();
    let result = execute(&request(&config, message()), &wire, &Memory::default());
    assert!(
        matches!(&result, Err(PluginError::Upstream(m)) if m.contains("connection failed")),
        "{result:?}"
    );
    assert_eq!(*wire.slept.borrow(), vec![1]);
    Ok(())
}

#[test]
fn a_url_from_the_action_must_fall_under_an_allowed_prefix() -> TestResult {
    let other = "/services/T0001/B0999/other-secret";
    let server = receiver(vec![post(other, body()).answer_text(200, "ok")])?;
    let base = server.base_url();
    let config = json!({
        "default_url": format!("{base}{HOOK}"),
        "allowed_url_prefixes": [format!("{base}/services/T0001/")]
    });
    let allowed = message().text("url", format!("{base}{other}"));
    let outcome = execute(&request(&config, allowed), &Wire::new(), &Memory::default())
        .map_err(|e| format!("{e:?}"))?;
    assert!(outcome.changed);

    for (url, why) in [
        (format!("{base}/services/T0002/B1/x"), "not under any"),
        (
            format!("{base}/services/T0001/../T0002/x"),
            ". or .. segment",
        ),
        (
            format!("{base}/services/T0001%2F..%2FT0002/x"),
            "encoded dot",
        ),
        (
            "http://127.0.0.1@evil.invalid/services/T0001/x".to_string(),
            "user information",
        ),
        (
            "http://localhost/services/T0001/x".to_string(),
            "not under any",
        ),
    ] {
        let result = execute(
            &request(&config, message().text("url", url.clone())),
            &Wire::new(),
            &Memory::default(),
        );
        assert!(
            matches!(&result, Err(PluginError::InvalidInput(m))
                if m.starts_with("parameter url") && m.contains(why)),
            "{url}: {result:?}"
        );
    }
    let no_prefixes = execute(
        &request(
            &to_default(&server),
            message().text("url", format!("{base}{other}")),
        ),
        &Wire::new(),
        &Memory::default(),
    );
    assert!(
        matches!(&no_prefixes, Err(PluginError::InvalidInput(m)) if m.contains("allowed_url_prefixes is empty")),
        "{no_prefixes:?}"
    );
    let done = server.finish();
    done.check()?;
    assert_eq!(done.received.len(), 1, "only the allowed URL was reached");
    Ok(())
}

#[test]
fn remembered_deliveries_are_not_posted_twice() -> TestResult {
    let server = receiver(vec![
        post(HOOK, body()).answer_text(200, "ok"),
        expect("POST", HOOK)
            .body(body())
            .header("idempotency-key", "another-fix")
            .answer_text(200, "ok"),
    ])?;
    let mut config = to_default(&server);
    config["remember_deliveries"] = json!(true);
    let ledger = Memory::default();
    let first = execute(&request(&config, message()), &Wire::new(), &ledger)
        .map_err(|e| format!("{e:?}"))?;
    let again = execute(&request(&config, message()), &Wire::new(), &ledger)
        .map_err(|e| format!("{e:?}"))?;
    let mut other = request(&config, message());
    other.action.idempotency_key = "another-fix".into();
    let third = execute(&other, &Wire::new(), &ledger).map_err(|e| format!("{e:?}"))?;
    let done = server.finish();
    done.check()?;
    assert!(first.changed && third.changed);
    assert!(!again.changed);
    assert!(again.calls.is_empty());
    assert!(again.detail.starts_with("already so"));
    assert_eq!(done.received.len(), 2);
    Ok(())
}

#[test]
fn the_key_can_travel_in_the_payload_too() -> TestResult {
    let mut with_key = json!({"text": "drift found"});
    with_key["idempotency_key"] = json!(KEY);
    let server = receiver(vec![post(HOOK, with_key).answer_text(200, "ok")])?;
    let mut config = to_default(&server);
    config["idempotency_field"] = json!("idempotency_key");
    let outcome = execute(
        &request(&config, Props::new().text("text", "drift found")),
        &Wire::new(),
        &Memory::default(),
    )
    .map_err(|e| format!("{e:?}"))?;
    server.finish().check()?;
    assert!(outcome.changed);
    Ok(())
}

#[test]
fn dry_run_only_and_bad_input_send_nothing() -> TestResult {
    let server = receiver(Vec::new())?;
    let mut config = to_default(&server);
    config["dry_run_only"] = json!(true);
    let refused = execute(
        &request(&config, message()),
        &Wire::new(),
        &Memory::default(),
    );
    assert!(
        matches!(refused, Err(PluginError::Denied(_))),
        "{refused:?}"
    );
    assert!(plan(&request(&config, message())).is_ok());

    let no_text = execute(
        &request(
            &to_default(&server),
            Props::new().texts("fields", vec!["a: b".into()]),
        ),
        &Wire::new(),
        &Memory::default(),
    );
    assert!(
        matches!(&no_text, Err(PluginError::InvalidInput(m)) if m.contains("parameter text")),
        "{no_text:?}"
    );
    let mut no_key = request(&to_default(&server), message());
    no_key.action.idempotency_key = String::new();
    assert!(matches!(
        execute(&no_key, &Wire::new(), &Memory::default()),
        Err(PluginError::InvalidInput(_))
    ));
    let no_url = execute(
        &request(&json!({}), message()),
        &Wire::new(),
        &Memory::default(),
    );
    assert!(
        matches!(&no_url, Err(PluginError::InvalidInput(m)) if m.contains("parameter url")),
        "{no_url:?}"
    );
    let done = server.finish();
    done.check()?;
    assert!(done.received.is_empty());
    Ok(())
}
