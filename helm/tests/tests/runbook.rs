//! docs/runbook.md names only what org-mesh has: every metric, variable,
//! command and flag, configuration key, chart value, route and alert it
//! mentions is looked up in the sources (see `runbook::check` for how the
//! runbook marks each). A runbook that names something else fails here,
//! which the last test shows on a runbook made up to be wrong.
#![expect(
    clippy::panic,
    reason = "test helpers stop the test with a message naming what is wrong"
)]

use org_mesh_helm_tests::facts::{self, Cli, Metrics};
use org_mesh_helm_tests::runbook::{self, Facts};
use org_mesh_helm_tests::{keys, read, repo_root};

fn ok<T>(result: Result<T, String>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

fn facts() -> Facts {
    let root = repo_root();
    Facts {
        metrics: ok(Metrics::read(&root)),
        cli: ok(Cli::read(&root)),
        env_vars: ok(facts::env_vars(&root)),
        routes: ok(facts::routes(&root)),
        alerts: ok(facts::alerts(&root)),
        files: vec![
            ("org-mesh.yaml", ok(keys::config(&root))),
            ("the tuning file", ok(keys::tuning(&root))),
            ("chart values", ok(keys::values(&root))),
        ],
    }
}

fn runbook_text() -> String {
    ok(read(&repo_root().join("docs/runbook.md")))
}

#[test]
fn the_runbook_names_only_what_org_mesh_has() {
    let problems = ok(runbook::check(&runbook_text(), &facts()));
    assert!(
        problems.is_empty(),
        "docs/runbook.md names things that do not exist:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_runbook_covers_every_alert_and_the_required_topics() {
    let text = runbook_text();
    let anchors = runbook::anchors(&text);
    for alert in ok(facts::alerts(&repo_root())) {
        assert!(
            anchors.contains(&alert.to_lowercase()),
            "docs/runbook.md has no section named {alert}"
        );
    }
    for needed in [
        "helm upgrade --install",
        "policies/drift-rules.yaml",
        "/api/v1/status",
        "/api/v1/reloads",
        "neo4j-admin database dump",
        "twin.redb",
        "org_mesh_narrative_signals_count",
        "..data",
    ] {
        assert!(
            text.contains(needed),
            "docs/runbook.md does not mention {needed}"
        );
    }
}

#[test]
fn the_sources_are_read_as_the_checks_expect() {
    let facts = facts();
    for metric in [
        "org_mesh_drift_detection_count",
        "org_mesh_reload_total",
        "org_mesh_backend_up",
        "org_mesh_plugin_failures_total",
        "org_mesh_ingest_duration_seconds_bucket",
    ] {
        assert!(facts.metrics.exists(metric), "{metric} not read from host/");
    }
    let serve = &facts.cli.commands["serve"];
    assert!(serve.flags.contains("--config"), "{:?}", serve.flags);
    assert!(facts.cli.global_flags.contains("--log-format"));
    let scan = &facts.cli.commands["scan"];
    assert!(scan.flags.contains("--fail-on"), "{:?}", scan.flags);
    for var in [
        "ORG_MESH_CONFIG",
        "ORG_MESH_LOG",
        "ORG_MESH_LOG_FORMAT",
        "ORG_MESH_GRAPH__NEO4J__URI",
    ] {
        assert!(
            facts.env_vars.contains(var),
            "{var} not read from the sources"
        );
    }
    assert!(facts::route_matches(&facts.routes, "/scim/v2/okta/Users"));
    assert!(facts::route_matches(
        &facts.routes,
        "/webhooks/github/github"
    ));
    let config = &facts.files[0].1;
    assert!(config.resolves(&["connectors", "github", "webhook", "secret", "file"]));
    assert!(config.resolves(&["graph", "neo4j", "timeout_secs"]));
    assert!(!config.resolves(&["graph", "neo4j", "port"]));
    let tuning = &facts.files[1].1;
    assert!(tuning.resolves(&["rules", "account-unlinked", "severity"]));
    assert!(tuning.resolves(&["thresholds", "auto_fix_min_score"]));
    let values = &facts.files[2].1;
    assert!(values.resolves(&["neo4j", "password"]));
    assert!(values.resolves(&["connectors", "0", "webhook", "secret", "existingSecret"]));
    assert!(!values.resolves(&["neo4j", "port"]));
}

#[test]
fn a_runbook_that_names_what_does_not_exist_is_refused() {
    let wrong = r#"
# Made up

Watch `org_mesh_drift_findings_total` and set `ORG_MESH_SERVE__PORT`.
Raise `serve.sync_interval_minutes` or `rules.account-unlinked.level`, or
`--set autoscaling.maximum=20`. Alert OrgMeshEverythingOnFire.
Ask `/api/v1/health` for details.

```sh
kubectl exec deploy/org-mesh-conductor -- org-mesh policy lint /etc/org-mesh/policies
org-mesh serve --port 8080
org-mesh scan --json --strict
```

```yaml
graph:
  backend: neo4j
  neo4j:
    url: bolt://neo4j:7687
```
"#;
    let problems = ok(runbook::check(wrong, &facts()));
    let all = problems.join("\n");
    for expected in [
        "metric org_mesh_drift_findings_total",
        "variable ORG_MESH_SERVE__PORT",
        "serve.sync_interval_minutes",
        "rules.account-unlinked.level",
        "--set autoscaling.maximum",
        "alert OrgMeshEverythingOnFire",
        "route /api/v1/health",
        "org-mesh policy has no subcommand lint",
        "org-mesh serve has no flag --port",
        "graph.neo4j.url",
    ] {
        assert!(
            all.contains(expected),
            "no problem reported for {expected:?}:\n{all}"
        );
    }
    assert_eq!(problems.len(), 10, "{all}");
}
