//! Scheduled syncs resume where the last one ended: the GitHub connector,
//! configured to read repository comments, returns the newest comment time
//! as its cursor, the twin keeps it in the shared coordination store, and
//! the next sync asks GitHub only for comments since then. The replay
//! (composed scenario `org-scan-comments-twice`, two full scans) answers
//! only when each request matches in order, so a second sync that started
//! over would leave it with requests pending.
//!
//! Needs `.ci/setup` and `.ci/build-plugins`.

mod common;

use std::sync::Arc;

use org_mesh_app::config::Config;
use org_mesh_app::pipeline::Twin;
use org_mesh_cache::Coordination;
use org_mesh_cache::memory::MemoryCoordination;
use org_mesh_harness::{GITHUB_TOKEN, replay, root};
use org_mesh_model::NodeRef;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_reads_comments_only_since_the_first_ended() {
    let scenario = replay().scenario("org-scan-comments-twice");
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let token = state.path().join("token");
    std::fs::write(&token, GITHUB_TOKEN).unwrap_or_else(|e| panic!("{e}"));
    // Only the connector under test, so that the twin compiles one plugin.
    let plugins = state.path().join("plugins/github-connector");
    std::fs::create_dir_all(&plugins).unwrap_or_else(|e| panic!("{e}"));
    for file in ["manifest.yaml", "github_connector.wasm"] {
        std::fs::copy(
            root().join("plugins/dist/github-connector").join(file),
            plugins.join(file),
        )
        .unwrap_or_else(|e| panic!("{file}: {e}: run .ci/build-plugins"));
    }
    let yaml = format!(
        r#"
state_dir: {state}
plugins: {{dirs: [{plugins}]}}
policies: {{dir: {policies}}}
connectors:
  - name: github
    plugin: github-connector
    config:
      api_url: {api}
      org: octokit-fixture-org
      comments_since: "2011-01-01T00:00:00Z"
    grants:
      http_hosts: ["{host}"]
      secrets: {{token: {{file: {token}}}}}
"#,
        state = state.path().display(),
        plugins = state.path().join("plugins").display(),
        policies = root().join("policies").display(),
        api = scenario.api_url,
        host = replay().host(),
        token = token.display(),
    );
    let path = state.path().join("org-mesh.yaml");
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("{e}"));
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let coordination = Arc::new(MemoryCoordination::default());
    let twin = Twin::open(&config, coordination.clone(), &common::Quiet)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    for round in ["first", "second"] {
        let mut skipped = Vec::new();
        let run = twin
            .sync(0, &mut skipped)
            .await
            .flatten()
            .unwrap_or_else(|| panic!("{round} sync did not run"));
        assert!(run.error.is_none(), "{round} sync: {:?}", run.error);
        let kept = coordination
            .kv_get("org-mesh/sync-cursors", "github")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            kept.as_deref(),
            Some(b"2011-04-14T16:00:49Z".as_slice()),
            "{round} sync"
        );
    }
    assert!(
        replay().pending(&scenario).is_empty(),
        "the second sync asked for everything again: {:?}",
        replay().pending(&scenario)
    );
    let comment = twin
        .store
        .node(&NodeRef::new(
            "Message",
            "github:octocat/Hello-World/issue-comment/1",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("the listed comment is not in the twin"));
    assert_eq!(
        comment
            .node
            .properties
            .get("thread")
            .and_then(|v| v.as_str()),
        Some("github:octocat/Hello-World#1347")
    );
}
