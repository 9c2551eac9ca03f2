//! The fix lifecycle in `org-mesh serve`: proposals from live findings, the
//! approval policy's answer, people approving, rejecting and trying failed
//! fixes again through the API and the `org-mesh actions` command, the dry-run switch, execution
//! through the executor plugin, and the trail each step leaves in the twin.
//!
//! The live finding with a fix is the recorded organisation's unprotected
//! `octocat/Hello-World`: the shipped approval policy asks one approver to
//! restore its protection. The example's executor is configured to plan
//! only, so an execution reaches the plugin and is refused there.
//!
//! Needs `.ci/setup` and `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod common;

use std::process::{Command, Output};

use common::*;
use serde_json::{Value, json};

const RESTORE: &str = "github.restore-branch-protection";

async fn proposals(http: &reqwest::Client, base: &str) -> Vec<Value> {
    settled(http, base).await;
    let (status, body) = get_json(http, &format!("{base}/api/v1/proposals"), Some(VIEWER)).await;
    assert_eq!(status, 200, "{body}");
    body["proposals"].as_array().cloned().unwrap_or_default()
}

async fn restore_proposal(http: &reqwest::Client, base: &str) -> Value {
    proposals(http, base)
        .await
        .into_iter()
        .find(|p| p["kind"] == RESTORE)
        .unwrap_or_else(|| panic!("no {RESTORE} proposal"))
}

async fn verdict(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    verb: &str,
    token: &str,
) -> (u16, Value) {
    let resp = http
        .post(format!("{base}/api/v1/proposals/{id}/{verb}"))
        .bearer_auth(token)
        .json(&json!({"reason": "checked with the repository owner"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn actions_command(base: &str, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_org-mesh"))
        .arg("actions")
        .args(args)
        .env("ORG_MESH_URL", base)
        .env("ORG_MESH_TOKEN", token)
        .output()
        .unwrap_or_else(|e| panic!("running org-mesh actions: {e}"))
}

fn reasons(proposal: &Value) -> Vec<String> {
    proposal["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}: {}",
                e["actor"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_approves_a_viewer_cannot_and_dry_run_holds_the_approved_fix() {
    let server = start().await;
    let http = client();
    let proposal = restore_proposal(&http, &server.base).await;
    assert_eq!(proposal["state"], "awaiting_approval", "{proposal}");
    assert_eq!(
        proposal["approval"],
        json!({"mode": "approve", "approvers": 1, "role": "approver", "expires_in_secs": 86400})
    );
    assert!(
        proposal["plan"]["calls"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "the dry run is kept: {proposal}"
    );
    let id = proposal["id"].as_str().unwrap_or_default().to_string();

    let (status, body) = verdict(&http, &server.base, &id, "approve", VIEWER).await;
    assert_eq!(status, 403, "a viewer cannot approve: {body}");

    let out = actions_command(
        &server.base,
        APPROVER,
        &["approve", &id, "--reason", "owner agreed"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("proposal {id}: approved")),
        "{stdout}"
    );

    let proposal = restore_proposal(&http, &server.base).await;
    assert_eq!(proposal["state"], "approved", "{proposal}");
    assert_eq!(proposal["approvals"][0]["actor"], "security-lead");
    assert_eq!(proposal["approvals"][0]["reason"], "owner agreed");
    assert!(
        reasons(&proposal)
            .last()
            .is_some_and(|r| r.contains("actions.dry_run is on")),
        "{:?}",
        reasons(&proposal)
    );
    assert!(proposal["outcome"].is_null(), "nothing ran: {proposal}");

    let (status, body) = verdict(&http, &server.base, &id, "approve", ADMIN).await;
    assert_eq!(status, 409, "approved once is approved: {body}");

    let out = actions_command(&server.base, VIEWER, &["list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.starts_with("dry run:"), "{stdout}");
    assert!(
        stdout.contains(&id) && stdout.contains("approved"),
        "{stdout}"
    );

    // The trail is in the twin: the proposal's history and its link to the
    // repository it fixes.
    let (status, entity) = get_json(
        &http,
        &format!("{}/api/v1/entities/Proposal/{id}", server.base),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 200, "{entity}");
    assert!(
        entity["history"].as_array().is_some_and(|h| h.len() >= 2),
        "every state change is a version: {entity}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dry_run_off_an_approved_fix_runs_through_its_executor_and_a_refusal_is_recorded() {
    let server = start_with(&[("ORG_MESH_ACTIONS__DRY_RUN", "false")]).await;
    let http = client();
    let proposal = restore_proposal(&http, &server.base).await;
    let id = proposal["id"].as_str().unwrap_or_default().to_string();
    let (status, body) = verdict(&http, &server.base, &id, "approve", APPROVER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["proposal"]["state"], "failed", "{body}");
    let trail = reasons(&body["proposal"]);
    assert!(
        trail
            .iter()
            .any(|r| r.starts_with("github-fix: running the plan")),
        "{trail:?}"
    );
    assert!(
        trail
            .last()
            .is_some_and(|r| r.starts_with("github-fix:") && r.contains("denied")),
        "the executor's own refusal is the reason: {trail:?}"
    );
    let metrics = metrics(&http, &server.base).await;
    assert!(
        metrics
            .contains("org_mesh_agent_actions_total{executor=\"github-fix\",outcome=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("org_mesh_agent_action_success_rate{executor=\"github-fix\"} 0"),
        "{metrics}"
    );

    // The failed fix may be tried again by an approver, not a viewer: it
    // is planned afresh and the policy asks for an approval again.
    let (status, body) = verdict(&http, &server.base, &id, "retry", VIEWER).await;
    assert_eq!(status, 403, "{body}");
    let out = actions_command(
        &server.base,
        APPROVER,
        &["retry", &id, "--reason", "the owner allowed the change"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("proposal {id}: awaiting_approval")
    );
    let proposal = restore_proposal(&http, &server.base).await;
    assert_eq!(proposal["state"], "awaiting_approval", "{proposal}");
    assert!(proposal["plan"]["calls"].is_array(), "{proposal}");
    assert!(
        reasons(&proposal)
            .iter()
            .any(|r| r == "security-lead: to be tried again: the owner allowed the change"),
        "{:?}",
        reasons(&proposal)
    );
    let (status, body) = verdict(&http, &server.base, &id, "retry", APPROVER).await;
    assert_eq!(
        status, 409,
        "only a failed or expired fix is tried again: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_fix_never_runs_and_a_plan_over_the_blast_radius_is_refused() {
    let server = start_with(&[("ORG_MESH_ACTIONS__DRY_RUN", "false")]).await;
    let http = client();
    let id = restore_proposal(&http, &server.base).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // A verdict that gives no reason leaves nothing for the trail to say.
    for verb in ["approve", "reject", "retry"] {
        let answer = http
            .post(format!("{}/api/v1/proposals/{id}/{verb}", server.base))
            .bearer_auth(ADMIN)
            .json(&json!({"reason": " \t"}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer.status().as_u16(), 422, "{verb}");
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("reason is empty")),
            "{verb}: {body}"
        );
    }
    let out = actions_command(&server.base, APPROVER, &["reject", &id, "--reason", ""]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reason is empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        restore_proposal(&http, &server.base).await["state"],
        "awaiting_approval"
    );
    // The list filters by state, and refuses a state or a parameter it
    // does not know.
    let listed = |query: &'static str| {
        let (http, base) = (http.clone(), server.base.clone());
        async move {
            get_json(
                &http,
                &format!("{base}/api/v1/proposals?{query}"),
                Some(VIEWER),
            )
            .await
        }
    };
    let (status, body) = listed("state=awaiting_approval").await;
    assert_eq!(status, 200, "{body}");
    let states: Vec<&str> = body["proposals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["state"].as_str())
        .collect();
    assert!(
        !states.is_empty() && states.iter().all(|s| *s == "awaiting_approval"),
        "{states:?}"
    );
    let (status, body) = listed("state=rejected").await;
    assert_eq!((status, &body["proposals"]), (200, &json!([])), "{body}");
    let (status, body) = listed("state=awaiting-approval").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("one of proposed, awaiting_approval")),
        "{body}"
    );
    let (status, _) = listed("frob=1").await;
    assert_eq!(status, 400);
    let out = actions_command(
        &server.base,
        APPROVER,
        &["reject", &id, "--reason", "owner objects"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = verdict(&http, &server.base, &id, "approve", ADMIN).await;
    assert_eq!(status, 409, "{body}");
    let proposal = restore_proposal(&http, &server.base).await;
    assert_eq!(proposal["state"], "rejected", "{proposal}");
    assert!(proposal["outcome"].is_null());
    drop(server);

    let server = start_with(&[("ORG_MESH_ACTIONS__MAX_CALLS_PER_ACTION", "1")]).await;
    let proposal = restore_proposal(&http, &server.base).await;
    assert_eq!(proposal["state"], "denied", "{proposal}");
    assert!(
        reasons(&proposal)
            .iter()
            .any(|r| r.contains("over the blast radius")),
        "{:?}",
        reasons(&proposal)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecided_approval_runs_nothing_and_an_expired_one_is_tried_again_not_approved() {
    let (server, copies) = start_on_copies(&[("ORG_MESH_ACTIONS__DRY_RUN", "false")]).await;
    let http = client();
    // A policy that decides nothing: no fix may run.
    let rego = copies.policies.join("approval.rego");
    let shipped = std::fs::read_to_string(&rego).unwrap_or_else(|e| panic!("{e}"));
    drop(server);
    std::fs::write(
        &rego,
        "package orgmesh.approval\n\nimport rego.v1\n\ndecision := {\"mode\": \"auto\"} if {\n\tfalse\n}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(copies.policies.join("approval_test.rego"))
        .unwrap_or_else(|e| panic!("{e}"));
    let plugins = copies.plugins.display().to_string();
    let policies = copies.policies.display().to_string();
    let server = start_with(&[
        ("ORG_MESH_ACTIONS__DRY_RUN", "false"),
        ("ORG_MESH_PLUGINS__DIRS", &plugins),
        ("ORG_MESH_POLICIES__DIR", &policies),
    ])
    .await;
    let proposal = restore_proposal(&http, &server.base).await;
    assert_eq!(proposal["state"], "denied", "{proposal}");
    assert!(
        reasons(&proposal)
            .iter()
            .any(|r| r.contains("gave no decision")),
        "{:?}",
        reasons(&proposal)
    );
    // A denial is the policy's answer, not a failure: it is not tried again.
    let denied = proposal["id"].as_str().unwrap_or_default();
    let (status, body) = verdict(&http, &server.base, denied, "retry", APPROVER).await;
    assert_eq!(status, 409, "{body}");
    drop(server);

    // Approvals that lapse after a second.
    std::fs::write(
        &rego,
        shipped.replace("\"expires_in_secs\": 86400", "\"expires_in_secs\": 1"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let server = start_with(&[
        ("ORG_MESH_ACTIONS__DRY_RUN", "false"),
        ("ORG_MESH_PLUGINS__DIRS", &plugins),
        ("ORG_MESH_POLICIES__DIR", &policies),
    ])
    .await;
    let proposal = restore_proposal(&http, &server.base).await;
    assert_eq!(proposal["approval"]["expires_in_secs"], 1, "{proposal}");
    let id = proposal["id"].as_str().unwrap_or_default().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, body) = verdict(&http, &server.base, &id, "approve", APPROVER).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{body}"
    );
    let proposal = restore_proposal(&http, &server.base).await;
    assert_eq!(proposal["state"], "expired", "{proposal}");
    assert!(proposal["outcome"].is_null(), "nothing ran: {proposal}");

    // An expired fix may be tried again: it awaits a fresh approval.
    let (status, body) = verdict(&http, &server.base, &id, "retry", APPROVER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["proposal"]["state"], "awaiting_approval", "{body}");
    assert_eq!(body["proposal"]["approvals"], json!([]), "{body}");
    assert!(body["proposal"]["expires_at"].is_string(), "{body}");
}
