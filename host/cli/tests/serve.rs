//! `org-mesh serve` end to end: the real binary on 127.0.0.1 with the real
//! plugins, fed by recorded GitHub traffic, every relevant webhook example
//! GitHub publishes (npm `@octokit/webhooks-examples`), GitLab's published
//! hook payloads, and SCIM calls as Okta sends them.
//!
//! The service runs on `examples/serve/org-mesh.yaml`, the example
//! operators start from, with its secrets and addresses set through the
//! environment as in a deployment.
//!
//! Needs `.ci/setup` and `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use org_mesh_harness::root;
use serde_json::{Value, json};

mod common;

use common::*;

fn rules(findings: &Value) -> Vec<String> {
    findings["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            format!(
                "{} {}",
                f["rule"].as_str().unwrap_or(""),
                f["subject"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_pushes_reach_the_twin_and_an_okta_deactivation_raises_the_finding() {
    let server = start().await;
    let http = client();
    let scim = format!("{}/scim/v2/okta", server.base);

    // Okta looks the user up before creating it.
    let found: Value = http
        .get(format!("{scim}/Users?filter=userName%20eq%20%22jordan.okafor%40example.com%22&startIndex=1&count=100"))
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found["totalResults"], 0);

    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "jordan.okafor@example.com",
        "externalId": "00u6t3w7yb2MdX9jR4f9",
        "name": {"givenName": "Jordan", "familyName": "Okafor"},
        "emails": [{"value": "jordan.okafor@example.com", "type": "work", "primary": true}],
        "displayName": "Jordan Okafor",
        "active": true,
        "groups": [],
        "password": "not-kept"
    });
    let created = http
        .post(format!("{scim}/Users"))
        .bearer_auth(SCIM_TOKEN)
        .header("content-type", "application/scim+json")
        .body(user.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.status(), 201);
    let location = created
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        location.starts_with("https://org-mesh.example.com/scim/v2/okta/Users/"),
        "the public URL, not the Host header: {location}"
    );
    let created: Value = created.json().await.unwrap_or_else(|e| panic!("{e}"));
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {created}"));

    settled(&http, &server.base).await;
    let (_, findings) = get_json(
        &http,
        &format!("{}/api/v1/findings", server.base),
        Some(VIEWER),
    )
    .await;
    assert!(
        !rules(&findings)
            .iter()
            .any(|r| r.starts_with("idp-offboarded")),
        "an active person is not offboarded: {:?}",
        rules(&findings)
    );

    // Okta deactivates with a path-less replace.
    let deactivate = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]
    });
    let patched = http
        .patch(format!("{scim}/Users/{id}"))
        .bearer_auth(SCIM_TOKEN)
        .header("content-type", "application/scim+json")
        .body(deactivate.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(patched.status().is_success(), "{}", patched.status());

    settled(&http, &server.base).await;
    let (_, status) = get_json(
        &http,
        &format!("{}/api/v1/status", server.base),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status["scim"]["unsent"], 0, "{status}");
    let (_, findings) = get_json(
        &http,
        &format!("{}/api/v1/findings", server.base),
        Some(VIEWER),
    )
    .await;
    assert!(
        rules(&findings).contains(&"idp-offboarded-has-admin Account(github:octocat)".to_string()),
        "{:?}",
        rules(&findings)
    );
    let (status, entity) = get_json(
        &http,
        &format!("{}/api/v1/entities/Account/okta:{id}", server.base),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 200, "{entity}");
    assert_eq!(
        entity["entity"]["node"]["properties"]["active"]["value"], false,
        "{entity}"
    );
    assert!(
        entity["history"].as_array().is_some_and(|h| h.len() >= 2),
        "{entity}"
    );

    // A path naming a connector that serves no SCIM is answered, and timed
    // under `unknown` rather than under a name the caller chose.
    let stray = http
        .get(format!("{}/scim/v2/made-up-by-a-caller/Users", server.base))
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stray.status(), 404);

    // The node gauge is counted at most every 10 s, so the people the
    // pushes made may take that long to show.
    let person_count = "org_mesh_graph_nodes_count{label=\"Person\"}";
    let mut metrics = metrics(&http, &server.base).await;
    for _ in 0..150 {
        if metrics.contains(person_count) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics = common::metrics(&http, &server.base).await;
    }
    // The SCIM changes were evaluated incrementally: identity-drift was
    // given them alone, and still raised the finding above.
    let incremental = metrics
        .lines()
        .find_map(|l| l.strip_prefix("org_mesh_evaluations_total{scope=\"changes\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(
        incremental.is_some_and(|n| n >= 1.0),
        "no incremental evaluation: {incremental:?}\n{metrics}"
    );
    for name in [
        "org_mesh_ingest_duration_seconds_count{connector=\"okta\"}",
        person_count,
        "org_mesh_drift_detection_count{rule=\"idp-offboarded-has-admin\",severity=\"critical\"} 1",
        // Every rule the detector describes has its series from the start.
        "org_mesh_drift_detection_count{rule=\"idp-offboarded-has-admin\",severity=\"low\"} 0",
        "org_mesh_plugin_calls_total",
        "org_mesh_policy_evaluation_duration_seconds_count",
        "org_mesh_reload_total{kind=\"policy\",outcome=\"rejected\"} 0",
        "org_mesh_scim_unsent ",
        // Every SCIM answer is timed: Okta's look-up, its create and its
        // deactivation.
        "org_mesh_scim_request_duration_seconds_count{connector=\"okta\",method=\"GET\",status=\"2xx\"}",
        "org_mesh_scim_request_duration_seconds_count{connector=\"okta\",method=\"POST\",status=\"2xx\"} 1",
        "org_mesh_scim_request_duration_seconds_count{connector=\"okta\",method=\"PATCH\",status=\"2xx\"} 1",
        "org_mesh_scim_request_duration_seconds_bucket{connector=\"okta\",method=\"PATCH\",status=\"2xx\",le=\"0.5\"}",
        "org_mesh_scim_request_duration_seconds_count{connector=\"unknown\",method=\"GET\",status=\"4xx\"} 1",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    assert!(
        !metrics.contains("made-up-by-a-caller"),
        "a caller's path became a series:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_github_webhook_example_is_accepted_signed_and_refused_unsigned() {
    let server = start().await;
    let http = client();
    let url = format!("{}/webhooks/github/github", server.base);
    let examples = webhook_examples();
    assert!(examples.len() >= 80, "only {} examples", examples.len());
    for (i, (event, payload)) in examples.iter().enumerate() {
        let body = payload.to_string();
        let resp = signed(&http, &url, event, Some(&format!("delivery-{i}")), body).await;
        let status = resp.status();
        assert!(
            status.is_success(),
            "{event} example {i}: {status} {}",
            resp.text().await.unwrap_or_default()
        );
    }

    // Without its delivery id, or with an empty event, a signed delivery
    // is refused by name.
    let (_, member_added) = examples
        .iter()
        .find(|(e, p)| e == "organization" && p["action"] == "member_added")
        .unwrap_or_else(|| panic!("no member_added example"));
    let resp = signed(&http, &url, "organization", None, member_added.to_string()).await;
    assert_eq!(resp.status(), 400);
    let said = resp.text().await.unwrap_or_default();
    assert!(said.contains("X-GitHub-Delivery is missing"), "{said}");
    let resp = signed(
        &http,
        &url,
        "",
        Some("empty-event"),
        member_added.to_string(),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let said = resp.text().await.unwrap_or_default();
    assert!(said.contains("x-github-event"), "{said}");

    // A delivery about an organisation the connector is not for is
    // acknowledged and recorded nowhere.
    let mut foreign = examples
        .iter()
        .find(|(e, p)| e == "organization" && p["action"] == "member_added")
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("no member_added example"));
    foreign["organization"]["login"] = json!("another-org");
    let resp = signed(
        &http,
        &url,
        "organization",
        Some("foreign-1"),
        foreign.to_string(),
    )
    .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let answer: Value = resp.json().await.unwrap_or_default();
    assert_eq!(answer["recorded"], false, "{answer}");
    settled(&http, &server.base).await;
    let (status, _) = get_json(
        &http,
        &format!(
            "{}/api/v1/entities/Organisation/github:another-org",
            server.base
        ),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 404);

    // The same delivery again is not accepted twice.
    let (event, payload) = &examples[0];
    let body = payload.to_string();
    let again = signed(&http, &url, event, Some("delivery-0"), body.clone()).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap_or_default();
    assert_eq!(again["duplicate"], true);

    for signature in [None, Some("sha256=00"), Some("garbage"), Some("sha256=")] {
        let mut req = http
            .post(&url)
            .header("x-github-event", "push")
            .header("x-github-delivery", "unsigned")
            .body(body.clone());
        if let Some(s) = signature {
            req = req.header("x-hub-signature-256", s);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status(), 401, "signature {signature:?}");
        let error: Value = resp.json().await.unwrap_or_default();
        assert_eq!(error["error"]["code"], "unauthorized", "{error}");
    }

    // A malformed body with a valid signature: the connector refuses it,
    // nothing is stored, the server goes on.
    let junk = "{not json";
    let resp = signed(&http, &url, "organization", Some("junk"), junk.to_string()).await;
    assert_eq!(resp.status(), 400);
    // A refused delivery is not remembered: fixed and redelivered with the
    // same id, it is accepted.
    let (_, payload) = examples
        .iter()
        .find(|(e, _)| e == "organization")
        .unwrap_or_else(|| panic!("no organization example"));
    let fixed = payload.to_string();
    let resp = signed(&http, &url, "organization", Some("junk"), fixed).await;
    assert_eq!(
        resp.status(),
        202,
        "a redelivery after a failure is accepted"
    );

    let big = "x".repeat(300_000);
    let resp = signed(&http, &url, "push", None, big).await;
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap_or_default();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");

    let resp = http
        .post(format!("{}/webhooks/github/nobody", server.base))
        .body("{}")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 404);

    let metrics = metrics(&http, &server.base).await;
    assert!(
        metrics.contains(
            "org_mesh_webhook_deliveries_total{connector=\"github\",outcome=\"accepted\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "org_mesh_webhook_deliveries_total{connector=\"github\",outcome=\"duplicate\"} 1"
        ),
        "{metrics}"
    );
    let (status, _) = get_json(&http, &format!("{}/healthz", server.base), None).await;
    assert_eq!(status, 200, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gitlab_hook_payload_is_accepted_with_the_token_only() {
    let server = start().await;
    let http = client();
    let url = format!("{}/webhooks/gitlab/gitlab", server.base);
    let mut sent = 0;
    for folder in ["webhooks", "systemhooks"] {
        let dir = root().join("conformance/data/gitlab-hooks").join(folder);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let body = std::fs::read(&file).unwrap_or_else(|e| panic!("{e}"));
            let event = if folder == "systemhooks" {
                "System Hook".to_string()
            } else {
                gitlab_event(&file)
            };
            let resp = http
                .post(&url)
                .header("x-gitlab-event", event)
                .header("x-gitlab-token", GITLAB_SECRET)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let status = resp.status();
            assert!(
                status.is_success(),
                "{}: {status} {}",
                file.display(),
                resp.text().await.unwrap_or_default()
            );
            sent += 1;
        }
    }
    assert_eq!(sent, 45);
    let resp = http
        .post(&url)
        .header("x-gitlab-event", "System Hook")
        .header("x-gitlab-token", "wrong")
        .body("{}")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 401);
}

/// The `X-Gitlab-Event` GitLab sends with each kind of project or group hook.
fn gitlab_event(file: &Path) -> String {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    match stem {
        s if s.starts_with("note_") => "Note Hook",
        s if s.contains("merge_request") => "Merge Request Hook",
        "push" => "Push Hook",
        "tag_push" => "Tag Push Hook",
        "member" => "Member Hook",
        "subgroup" => "Subgroup Hook",
        "issue" => "Issue Hook",
        "pipeline" => "Pipeline Hook",
        "job" | "build" => "Job Hook",
        "release" => "Release Hook",
        "wiki_page" => "Wiki Page Hook",
        "deployment" => "Deployment Hook",
        "feature_flag" => "Feature Flag Hook",
        s if s.starts_with("resource_access_token") => "Resource Access Token Hook",
        _ => "Unknown Hook",
    }
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_checks_tokens_and_roles_and_answers_in_one_error_shape() {
    let server = start().await;
    let http = client();
    let api = format!("{}/api/v1", server.base);

    for route in [
        "findings",
        "proposals",
        "plugins",
        "policies",
        "entities?label=Account",
    ] {
        let (status, body) = get_json(&http, &format!("{api}/{route}"), None).await;
        assert_eq!(status, 401, "{route}");
        assert_eq!(body["error"]["status"], 401, "{body}");
        let (status, _) = get_json(&http, &format!("{api}/{route}"), Some("wrong")).await;
        assert_eq!(status, 401, "{route}");
        let (status, _) = get_json(&http, &format!("{api}/{route}"), Some(VIEWER)).await;
        assert_eq!(status, 200, "{route}");
    }

    let sync = http
        .post(format!("{api}/sync"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sync.status(), 403);
    let body: Value = sync.json().await.unwrap_or_default();
    assert_eq!(body["error"]["code"], "forbidden");

    let (_, findings) = get_json(
        &http,
        &format!("{api}/findings?severity=medium"),
        Some(VIEWER),
    )
    .await;
    assert!(
        rules(&findings)
            .contains(&"org-2fa-not-required Organisation(github:octokit-fixture-org)".to_string()),
        "{findings}"
    );
    let (status, body) = get_json(
        &http,
        &format!("{api}/findings?severity=urgent"),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (_, plugins) = get_json(&http, &format!("{api}/plugins"), Some(VIEWER)).await;
    let names: Vec<&str> = plugins["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["instance"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "github",
            "okta",
            "gitlab",
            "identity-drift",
            "narrative",
            "github-fix"
        ]
    );

    let (status, doc) = get_json(&http, &format!("{api}/openapi.json"), None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");

    let (status, body) = get_json(&http, &format!("{api}/nothing-here"), Some(VIEWER)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");

    // axum's own rejections come in the same shape.
    let (status, body) = get_json(&http, &format!("{api}/findings?colour=red"), Some(VIEWER)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let (status, body) = get_json(&http, &format!("{api}/entities"), Some(VIEWER)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("label")),
        "{body}"
    );
    let resp = http
        .delete(format!("{api}/findings"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.unwrap_or_default();
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");

    // The scheme name is case-insensitive.
    let resp = http
        .get(format!("{api}/policies"))
        .header("authorization", format!("bearer {VIEWER}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 200);

    // The recorded scenario answers once; a second sync fails and says so.
    let resp = http
        .post(format!("{api}/sync"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().await.unwrap_or_default();
    assert_eq!(body["synced"], false, "{body}");
    assert!(body["connectors"][0]["error"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_cleanly() {
    let mut server = start().await;
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(killed.success());
    for _ in 0..100 {
        if let Ok(Some(status)) = server.child.try_wait() {
            assert!(status.success(), "{status}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("org-mesh serve did not stop within 10 s of SIGTERM");
}

async fn send_scim(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http
        .request(method, url)
        .bearer_auth(SCIM_TOKEN)
        .header("content-type", "application/scim+json");
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_sequence_is_reflected_in_the_twin_after_each_step() {
    let server = start().await;
    let http = client();
    let scim = format!("{}/scim/v2/okta", server.base);
    let post = reqwest::Method::POST;
    let patch = reqwest::Method::PATCH;

    let user = json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": "mei.chen",
        "userName": "mei.chen@example.com",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "mei.chen@example.com"}],
        "name": {"formatted": "Mei Chen", "familyName": "Chen", "givenName": "Mei"},
        "roles": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Security"}
    });
    let (status, created) =
        send_scim(&http, post.clone(), &format!("{scim}/Users"), Some(user)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let key = format!("okta:{id}");
    let twin = account(&http, &server.base, &key).await;
    assert_eq!(
        twin["entity"]["node"]["properties"]["department"]["value"], "Security",
        "{twin}"
    );

    // Entra capitalises op names, uses filter paths and dotted names.
    let update = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "mei.chen@corp.example.com"},
            {"op": "Replace", "value": {"name.familyName": "Chen-Wu", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Platform"}}
        ]
    });
    let (status, body) = send_scim(
        &http,
        patch.clone(),
        &format!("{scim}/Users/{id}"),
        Some(update),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let twin = account(&http, &server.base, &key).await;
    let props = &twin["entity"]["node"]["properties"];
    assert_eq!(
        props["email"]["value"], "mei.chen@corp.example.com",
        "{twin}"
    );
    assert_eq!(props["family_name"]["value"], "Chen-Wu", "{twin}");
    assert_eq!(props["department"]["value"], "Platform", "{twin}");

    // A group, then Entra's removal of one member by a value list.
    let other = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "sam@example.com", "active": true});
    let (_, other) = send_scim(&http, post.clone(), &format!("{scim}/Users"), Some(other)).await;
    let other_id = other["id"].as_str().unwrap_or_default().to_string();
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "displayName": "Security",
        "members": []
    });
    let (status, group) =
        send_scim(&http, post.clone(), &format!("{scim}/Groups"), Some(group)).await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap_or_default().to_string();
    let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": id}, {"value": other_id}]}
    ]});
    let (status, _) = send_scim(
        &http,
        patch.clone(),
        &format!("{scim}/Groups/{gid}"),
        Some(add),
    )
    .await;
    assert_eq!(status, 204);
    // Only the latest state of a resource is handed over, so without this
    // the twin might never see `other` as a member at all.
    settled(&http, &server.base).await;
    let remove = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"value": other_id}]}
    ]});
    let (status, _) = send_scim(
        &http,
        patch.clone(),
        &format!("{scim}/Groups/{gid}"),
        Some(remove),
    )
    .await;
    assert_eq!(status, 204);
    let memberships = |entity: &Value| -> Vec<(String, bool)> {
        entity["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["edge"]["edge"]["kind"] == "MEMBER_OF")
            .map(|e| {
                (
                    e["edge"]["edge"]["to"]["key"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    e["edge"]["provenance"]["not_observed_since"].is_null(),
                )
            })
            .collect()
    };
    let group_key = format!("okta:{gid}");
    assert_eq!(
        memberships(&account(&http, &server.base, &key).await),
        [(group_key.clone(), true)]
    );
    assert_eq!(
        memberships(&account(&http, &server.base, &format!("okta:{other_id}")).await),
        [(group_key, false)],
        "only the listed member was removed"
    );

    // Disable with a string boolean, then delete: the account stays, inactive.
    let disable = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"}
    ]});
    let (status, _) = send_scim(&http, patch, &format!("{scim}/Users/{id}"), Some(disable)).await;
    assert_eq!(status, 200);
    let twin = account(&http, &server.base, &key).await;
    assert_eq!(
        twin["entity"]["node"]["properties"]["active"]["value"], false,
        "{twin}"
    );
    let (status, _) = send_scim(
        &http,
        reqwest::Method::DELETE,
        &format!("{scim}/Users/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let twin = account(&http, &server.base, &key).await;
    let props = &twin["entity"]["node"]["properties"];
    assert_eq!(props["active"]["value"], false, "{twin}");
    assert_eq!(props["deprovisioned"]["value"], true, "{twin}");
    let (status, body) = send_scim(
        &http,
        reqwest::Method::GET,
        &format!("{scim}/Users/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_tester_finds_no_errors_against_the_running_service() {
    let server = start().await;
    let home = std::env::var("HOME").unwrap_or_default();
    let python = PathBuf::from(home).join(".cache/org-mesh/venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run .ci/setup",
        python.display()
    );
    let base = format!("{}/scim/v2/okta", server.base);
    let out = tokio::process::Command::new(&python)
        .arg(root().join("conformance/scim/check.py"))
        .args([&base, SCIM_TOKEN])
        .output()
        .await
        .unwrap_or_else(|e| panic!("running scim2-tester: {e}"));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !report.contains("ERROR ") && !report.contains("CRITICAL "),
        "{report}"
    );
    let (status, _) = get_json(&client(), &format!("{}/healthz", server.base), None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_membership_reaches_the_twin() {
    let server = start().await;
    let http = client();
    let example = webhook_examples()
        .into_iter()
        .find(|(event, p)| event == "organization" && p["action"] == "member_added")
        .unwrap_or_else(|| panic!("no member_added example"));
    let login = example.1["membership"]["user"]["login"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let body = example.1.to_string();
    let url = format!("{}/webhooks/github/github", server.base);
    let resp = signed(&http, &url, "organization", Some("member-added-1"), body).await;
    assert!(resp.status().is_success());
    let entity = account(&http, &server.base, &format!("github:{login}")).await;
    let states: Vec<&str> = entity["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["edge"]["edge"]["kind"] == "MEMBER_OF")
        .filter_map(|e| e["edge"]["edge"]["properties"]["state"]["value"].as_str())
        .collect();
    assert_eq!(states, ["pending"], "an invitation is not access: {entity}");
}

/// Starts `serve` on the example configuration with every secret it needs
/// set, then `settings` on top and `unset` removed, expects it to refuse to
/// start (exit 2), and returns what it said.
fn refused_start(settings: &[(&str, &str)], unset: &[&str]) -> String {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_org-mesh"));
    command
        .args(["serve", "--config"])
        .arg(root().join("examples/serve/org-mesh.yaml"))
        .env("ORG_MESH_STATE_DIR", state.path())
        .env(
            "ORG_MESH_SERVE__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("GITHUB_API_URL", "http://127.0.0.1:9/unused")
        .env("GITHUB_API_HOST", "127.0.0.1:9")
        .env("API_VIEWER_TOKEN", VIEWER)
        .env("API_APPROVER_TOKEN", APPROVER)
        .env("API_ADMIN_TOKEN", ADMIN)
        .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
        .env("GITLAB_WEBHOOK_SECRET", GITLAB_SECRET)
        .env("OKTA_SCIM_TOKEN", SCIM_TOKEN)
        .envs(settings.iter().copied())
        .stdin(Stdio::null());
    for name in unset {
        command.env_remove(name);
    }
    let out = command.output().unwrap_or_else(|e| panic!("{e}"));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{said}");
    said
}

#[test]
fn a_webhook_route_without_its_secret_refuses_to_start() {
    let err = refused_start(&[], &["GITLAB_WEBHOOK_SECRET"]);
    assert!(
        err.contains("connectors.gitlab.webhook.secret: environment variable GITLAB_WEBHOOK_SECRET is not set"),
        "{err}"
    );
}

#[test]
fn two_api_tokens_with_one_secret_refuse_to_start() {
    // The dashboard's token would be an admin's.
    let err = refused_start(&[("API_VIEWER_TOKEN", ADMIN)], &[]);
    assert!(
        err.contains("serve.tokens.dashboard and serve.tokens.operations have the same secret"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_writes_for_a_connector_not_loaded_are_kept_warned_once_and_taken_in_once_it_loads() {
    let (server, copies) = start_on_copies(&[]).await;
    drop(server);
    std::fs::remove_dir_all(copies.plugins.join("scim-connector"))
        .unwrap_or_else(|e| panic!("{e}"));
    let logs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = logs.path().join("serve.log");
    let (plugins, policies) = (
        copies.plugins.display().to_string(),
        copies.policies.display().to_string(),
    );
    let server = start_logging(
        &[
            ("ORG_MESH_PLUGINS__DIRS", &plugins),
            ("ORG_MESH_POLICIES__DIR", &policies),
            ("ORG_MESH_LOG", "warn,org_mesh_scim=debug"),
        ],
        Some(&log),
    )
    .await;
    let http = client();
    let users = format!("{}/scim/v2/okta/Users", server.base);
    for i in 0..20 {
        let created = http
            .post(&users)
            .bearer_auth(SCIM_TOKEN)
            .header("content-type", "application/scim+json")
            .body(
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("waiting{i}@example.com"),
                    "active": true,
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(created.status(), 201);
    }
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let warned = |text: &str| {
        text.lines()
            .filter(|l| l.contains("stored but refused by org-mesh"))
            .count()
    };
    // Two rounds of offering every stored change again, every 10 s.
    let mut text = read();
    for _ in 0..600 {
        if text.matches("SCIM changes refused again").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = read();
    }
    assert!(
        text.matches("SCIM changes refused again").count() >= 2,
        "no round offered the changes again within a minute: {text}"
    );
    // At most one warning per user, from when it was first offered: the
    // rounds after it warn no more.
    let first = warned(&text);
    assert!((1..=20).contains(&first), "{first} warnings: {text}");
    assert!(text.contains("is not loaded"), "{text}");
    // Kept, and waiting: every user is there to read.
    let found = http
        .get(format!("{users}?filter=userName%20sw%20%22waiting%22"))
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let list: Value = found.json().await.unwrap_or_default();
    assert_eq!(list["totalResults"], 20, "{list}");
    let (_, status) = get_json(
        &http,
        &format!("{}/api/v1/status", server.base),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status["scim"]["unsent"], 20, "{status}");
    assert_eq!(
        status["not_loaded"],
        json!([{"kind": "connector", "instance": "okta"}]),
        "{status}"
    );
    let series = metrics(&http, &server.base).await;
    assert!(
        series.contains("org_mesh_instance_loaded{instance=\"okta\",kind=\"connector\"} 0")
            && series
                .contains("org_mesh_instance_loaded{instance=\"github\",kind=\"connector\"} 1"),
        "{series}"
    );

    // The plugin put back: the reload loads it, and every stored user
    // reaches the twin.
    copy_tree(
        &root().join("plugins/dist/scim-connector"),
        &copies.plugins.join("scim-connector"),
    );
    let mut status = Value::Null;
    for _ in 0..600 {
        status = get_json(
            &http,
            &format!("{}/api/v1/status", server.base),
            Some(VIEWER),
        )
        .await
        .1;
        if status["not_loaded"] == json!([]) && status["scim"]["unsent"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["not_loaded"], json!([]), "{status}");
    assert_eq!(status["failing"], json!([]), "{status}");
    // The shipped policies decide, and the status names their version.
    assert!(
        status["policy_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty() && !v.starts_with("unreadable")),
        "{status}"
    );
    assert_eq!(status["scim"]["unsent"], 0, "{status}");
    settled(&http, &server.base).await;
    let (_, accounts) = get_json(
        &http,
        &format!("{}/api/v1/entities?label=Account", server.base),
        Some(VIEWER),
    )
    .await;
    let waiting = accounts.to_string().matches("waiting").count();
    assert!(waiting >= 20, "{accounts}");
    assert!(
        metrics(&http, &server.base)
            .await
            .contains("org_mesh_instance_loaded{instance=\"okta\",kind=\"connector\"} 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_naming_many_members_the_twin_lacks_logs_a_few_lines_not_one_each() {
    let logs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = logs.path().join("serve.log");
    let server = start_logging(&[], Some(&log)).await;
    let http = client();
    let scim = format!("{}/scim/v2/okta", server.base);
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Everyone",
        "members": []
    });
    let (status, group) = send_scim(
        &http,
        reqwest::Method::POST,
        &format!("{scim}/Groups"),
        Some(group),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap_or_default().to_string();
    let strangers: Vec<Value> = (0..200)
        .map(|i| json!({"value": format!("no-such-user-{i}")}))
        .collect();
    let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Add", "path": "members", "value": strangers}
    ]});
    let (status, _) = send_scim(
        &http,
        reqwest::Method::PATCH,
        &format!("{scim}/Groups/{gid}"),
        Some(add),
    )
    .await;
    assert_eq!(status, 204);
    settled(&http, &server.base).await;
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{e}"));
    let one_by_one = text
        .lines()
        .filter(|l| l.contains("Record left out"))
        .count();
    assert!((1..=5).contains(&one_by_one), "{one_by_one} lines: {text}");
    assert!(
        text.lines()
            .any(|l| l.contains("More records of the same change left out")
                && l.contains("total=200")),
        "{text}"
    );
}
