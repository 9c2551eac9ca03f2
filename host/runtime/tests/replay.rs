//! Plugins against recorded GitHub traffic replayed on 127.0.0.1: the SDK's
//! REST client following GitHub's real `Link` pagination, the GitHub
//! connector consuming a whole organisation scan, and the host refusing
//! HTTP the operator did not allow. Needs `.ci/setup` and
//! `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use org_mesh_cache::memory::MemoryCoordination;
use org_mesh_harness::{GITHUB_TOKEN, replay, root};
use org_mesh_model::{Value, edge_kind};
use org_mesh_runtime::{
    Failure, Grants, Manifest, Plugin, PluginFailure, Runtime, RuntimeOptions, SecretSource,
};
use serde_json::json;

fn runtime() -> Runtime {
    Runtime::new(
        RuntimeOptions::default(),
        Arc::new(MemoryCoordination::default()),
        None,
        &prometheus::Registry::new(),
    )
    .unwrap_or_else(|e| panic!("{e:#}"))
}

async fn load(rt: &Runtime, dir: &Path) -> Plugin {
    let path = dir.join("manifest.yaml");
    assert!(
        path.is_file(),
        "{} is missing: run .ci/build-plugins",
        path.display()
    );
    let manifest = Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    rt.load(manifest).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The token reaches plugins the way operators usually mount it: as a file.
fn grants(hosts: Vec<String>) -> Grants {
    static TOKEN: std::sync::OnceLock<tempfile::NamedTempFile> = std::sync::OnceLock::new();
    let file = TOKEN.get_or_init(|| {
        let file = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(file.path(), format!("{GITHUB_TOKEN}\n")).unwrap_or_else(|e| panic!("{e}"));
        file
    });
    Grants {
        http_hosts: hosts,
        secrets: BTreeMap::from([("token".to_string(), SecretSource::File(file.path().into()))]),
        ..Grants::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_client_follows_recorded_link_pagination_to_the_end() {
    let scenario = replay().scenario("paginate-issues");
    let rt = runtime();
    let pager = load(&rt, &root().join("conformance/dist/pager")).await;
    let pager = pager
        .bind(
            "pager",
            &json!({"api_url": scenario.api_url, "path": "/repos/octokit-fixture-org/paginate-issues/issues?per_page=3"}),
            grants(vec![replay().host()]),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
    let out = pager
        .sync(None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut numbers: Vec<i64> = out
        .batch
        .nodes
        .iter()
        .filter_map(|n| n.properties.get("number").and_then(Value::as_i64))
        .collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=13).collect::<Vec<_>>(),
        "13 issues over 5 pages"
    );
    assert!(
        replay().pending(&scenario).is_empty(),
        "every recorded page was requested"
    );
}

fn github_config(api_url: &str) -> serde_json::Value {
    json!({"api_url": api_url, "org": "octokit-fixture-org", "per_page": 100})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_connector_consumes_a_whole_organisation_scan() {
    let scenario = replay().scenario("org-scan");
    let rt = runtime();
    let github = load(&rt, &root().join("plugins/dist/github-connector")).await;
    let github = github
        .bind(
            "github",
            &github_config(&scenario.api_url),
            grants(vec![replay().host()]),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
    let out = github
        .sync(None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    assert!(
        replay().pending(&scenario).is_empty(),
        "{:?}",
        replay().pending(&scenario)
    );

    let org = out
        .batch
        .nodes
        .iter()
        .find(|n| n.label == "Organisation")
        .unwrap_or_else(|| panic!("no organisation"));
    assert_eq!(org.key, "github:octokit-fixture-org");
    assert_eq!(
        org.properties.get("two_factor_requirement_enabled"),
        Some(&Value::Boolean(false))
    );
    let admin = out.batch.edges.iter().find(|e| {
        e.kind == edge_kind::MEMBER_OF
            && e.from.key == "github:octocat"
            && e.to.label == "Organisation"
    });
    let admin = admin.unwrap_or_else(|| panic!("no membership for octocat"));
    assert_eq!(
        admin.properties.get("role"),
        Some(&Value::Text("admin".into()))
    );
    assert_eq!(
        admin.properties.get("state"),
        Some(&Value::Text("active".into()))
    );
    assert!(!out.batch.complete.is_empty(), "a complete listing says so");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_not_on_the_allow_list_is_refused_before_any_request() {
    let scenario = replay().scenario("get-organization");
    let rt = runtime();
    let github = load(&rt, &root().join("plugins/dist/github-connector")).await;
    let github = github
        .bind(
            "github",
            &github_config(&scenario.api_url),
            grants(vec!["api.github.com".into()]),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
    let err = github
        .sync(None, &[])
        .await
        .err()
        .unwrap_or_else(|| panic!("sync should fail"));
    let Failure::Plugin(PluginFailure::Denied(why)) = &err.failure else {
        panic!("expected a denial, got {err}");
    };
    assert!(why.contains("is not on this plugin's allow list"), "{why}");
    assert_eq!(
        replay().pending(&scenario).len(),
        1,
        "the request never left the host"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_is_not_granted_without_an_allow_list() {
    let scenario = replay().scenario("get-organization");
    let rt = runtime();
    let github = load(&rt, &root().join("plugins/dist/github-connector")).await;
    let mut no_http = grants(Vec::new());
    no_http.http_hosts.clear();
    let github = github
        .bind("github", &github_config(&scenario.api_url), no_http)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let err = github
        .sync(None, &[])
        .await
        .err()
        .unwrap_or_else(|| panic!("sync should fail"));
    assert_eq!(
        err.failure,
        Failure::Ungranted {
            capability: "http".into()
        },
        "{err}"
    );
}

/// The built GitHub executor, bound as serve binds it, aimed at `api_url`.
async fn github_executor(api_url: &str) -> Plugin {
    let rt = runtime();
    load(&rt, &root().join("plugins/dist/github-executor"))
        .await
        .bind(
            "github-fix",
            &json!({"api_url": api_url}),
            grants(vec![replay().host()]),
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Restoring the protection of `main` in the recorded branch-protection
/// repository.
fn restore_protection_request() -> org_mesh_runtime::ActionRequest {
    let mut parameters = org_mesh_model::Properties::new();
    for (name, value) in [
        (
            "repository",
            Value::Text("octokit-fixture-org/branch-protection".into()),
        ),
        ("branch", Value::Text("main".into())),
        ("enforce_admins", Value::Boolean(false)),
    ] {
        parameters.insert(name.to_string(), value);
    }
    org_mesh_runtime::ActionRequest {
        kind: "github.restore-branch-protection".into(),
        target: org_mesh_model::NodeRef::new(
            "Repository",
            "github:octokit-fixture-org/branch-protection",
        ),
        parameters,
        idempotency_key: "proposal-1".into(),
    }
}

/// The GitHub executor, as the host runs it, against GitHub's recorded
/// branch-protection exchange: the replay answers only the requests that
/// were recorded, body included, so a wrong call fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_executor_restores_protection_through_recorded_writes_once() {
    let scenario = replay().scenario("branch-protection");
    let executor = github_executor(&scenario.api_url).await;
    let request = restore_protection_request();
    let plan = executor
        .plan(&request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        plan.calls
            .iter()
            .map(|c| c.method.as_str())
            .collect::<Vec<_>>(),
        ["GET", "PUT"]
    );
    // Run as serve runs an approved fix: held to the plan it made.
    let outcome = executor
        .execute_within(&request, &plan)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(outcome.changed, "{outcome:?}");
    // What is left of the recording is its later, unrelated steps: the
    // executor sent exactly the recorded read and the recorded write.
    let left = replay().pending_methods(&scenario);
    assert_eq!(left, ["DELETE", "PUT"], "{:?}", replay().pending(&scenario));
}

/// An approved plan that announced only the read (as if the branch had been
/// protected when it was made): the executor finds the protection gone and
/// tries to restore it, the host refuses the write it was not approved for,
/// and the call fails naming it, whatever the executor makes of the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_approved_plan_does_not_announce_is_not_sent() {
    let scenario = replay().scenario("branch-protection");
    let executor = github_executor(&scenario.api_url).await;
    let request = restore_protection_request();
    let mut plan = executor
        .plan(&request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    plan.calls.retain(|c| c.method == "GET");
    let err = executor
        .execute_within(&request, &plan)
        .await
        .expect_err("a write outside the approved plan must fail the call");
    let Failure::Unplanned { request: refused } = &err.failure else {
        panic!("expected an unplanned request, got {err}");
    };
    assert!(
        refused.starts_with("PUT http://127.0.0.1:") && refused.ends_with("/…"),
        "{refused}"
    );
    assert!(err.to_string().contains("not announce"), "{err}");
    // The recorded write is still waiting: it never reached the server.
    let left = replay().pending_methods(&scenario);
    assert_eq!(
        left,
        ["DELETE", "PUT", "PUT"],
        "{:?}",
        replay().pending(&scenario)
    );
}

/// The GitHub executor removing a repository collaborator through GitHub's
/// recorded listing and removal (composed: the recorded listing answers the
/// executor's direct-collaborators filter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_executor_removes_a_collaborator_through_the_recorded_removal() {
    let scenario = replay().scenario("remove-repository-collaborator");
    let executor = github_executor(&scenario.api_url).await;
    let repository = "octokit-fixture-org/add-and-remove-repository-collaborator";
    let mut parameters = org_mesh_model::Properties::new();
    parameters.insert("repository".into(), Value::Text(repository.into()));
    parameters.insert("login".into(), Value::Text("octokit-fixture-user-b".into()));
    let request = org_mesh_runtime::ActionRequest {
        kind: "github.remove-repo-collaborator".into(),
        target: org_mesh_model::NodeRef::new("Repository", format!("github:{repository}")),
        parameters,
        idempotency_key: "proposal-2".into(),
    };
    let outcome = executor
        .execute(&request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(outcome.changed, "{outcome:?}");
    assert_eq!(
        outcome
            .calls
            .iter()
            .map(|c| c.method.as_str())
            .collect::<Vec<_>>(),
        ["GET", "DELETE"]
    );
    assert!(
        replay().pending(&scenario).is_empty(),
        "{:?}",
        replay().pending(&scenario)
    );
}
