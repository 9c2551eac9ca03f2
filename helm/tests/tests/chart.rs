//! The Helm chart, rendered and checked the way a cluster and org-mesh
//! would see it, without a cluster: `helm lint`, `helm template` for
//! development and production, every manifest validated offline by
//! kubernetes-validate (the monitoring.coreos.com kinds, for which it has
//! no schema, by the Rego checks in helm/tests/policy instead), the
//! schema's refusals, org-mesh's own loaders on the rendered configuration
//! and policies, and the Rego checks over everything.
//!
//! Needs helm and kubernetes-validate as `.ci/setup` installs them; each
//! test stops with the instructions when they are missing.
#![expect(
    clippy::panic,
    reason = "test helpers stop the test with a message naming what is wrong"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use org_mesh_helm_tests::facts::{self, Metrics};
use org_mesh_helm_tests::runbook;
use org_mesh_helm_tests::tools::{self, Helm, KUBE_VERSIONS};
use org_mesh_helm_tests::{read, repo_root};
use serde_json::{Value, json};

const RELEASE: &str = "org-mesh";
const NAMESPACE: &str = "org-mesh";

fn ok<T>(result: Result<T, String>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

fn helm() -> Helm {
    ok(Helm::new())
}

fn chart() -> PathBuf {
    tools::chart_dir(&repo_root())
}

fn production_values() -> String {
    repo_root()
        .join("helm/tests/values/production.yaml")
        .display()
        .to_string()
}

/// One way of installing the chart.
struct Case {
    name: &'static str,
    args: Vec<String>,
    /// What the Rego profile checks expect: "development" (its defaults)
    /// or "production".
    profile: &'static str,
    /// Secret values the render was given: they must show up nowhere but
    /// in Secrets.
    secrets: Vec<&'static str>,
}

fn set(pairs: &[&str]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|p| ["--set".to_string(), (*p).to_string()])
        .collect()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "development defaults",
            args: vec![],
            profile: "development",
            secrets: vec![],
        },
        Case {
            name: "production with every kind of secret and route",
            args: vec!["-f".into(), production_values()],
            profile: "production",
            secrets: vec![
                "marker-neo4j-password",
                "marker-api-viewer",
                "marker-github-webhook",
                "marker-gitlab-webhook",
                "marker-github-token",
            ],
        },
        Case {
            name: "production as the install command gives it",
            args: set(&[
                "neo4j.password=marker-minimal-password",
                "global.env=production",
                "neo4j.uri=bolt://neo4j.data.svc:7687",
                "redis.url=redis://redis.data.svc:6379/0",
            ]),
            profile: "production",
            secrets: vec!["marker-minimal-password"],
        },
        Case {
            name: "development with plugins from ConfigMaps, sandbox limits, IPv6",
            args: set(&[
                "plugins.source=configMap",
                "plugins.configMaps[0].name=github-connector",
                "plugins.configMaps[0].configMap=org-mesh-plugin-github-connector",
                "plugins.configMaps[1].name=identity-drift",
                "plugins.configMaps[1].configMap=org-mesh-plugin-identity-drift",
                "plugins.limits.memory_mib=256",
                "serve.listenAddress=::",
            ]),
            profile: "development",
            secrets: vec![],
        },
        Case {
            name: "development with plugins on a volume, the twin on a claim, own policies",
            args: set(&[
                "plugins.source=volume",
                "plugins.volume.persistentVolumeClaim.claimName=org-mesh-plugins",
                "persistence.enabled=true",
                "policies.existingConfigMap=team-policies",
                "apiTokens[0].name=ops",
                "apiTokens[0].role=admin",
                "apiTokens[0].existingSecret=ops-token",
                "apiTokens[0].existingSecretKey=token",
            ]),
            profile: "development",
            secrets: vec![],
        },
    ]
}

/// `helm template` for a case; stops the test with helm's words if it
/// refuses.
fn render(helm: &Helm, args: &[String], kube: &str) -> String {
    let chart = chart();
    let mut all = vec![
        "template".to_string(),
        RELEASE.into(),
        chart.display().to_string(),
        "--namespace".into(),
        NAMESPACE.into(),
        "--kube-version".into(),
        kube.into(),
    ];
    all.extend(args.iter().cloned());
    let out = ok(helm.run(&all));
    if !out.status.success() {
        panic!(
            "helm {} failed:\n{}",
            all.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// helm's refusal for a render that should fail.
fn refusal(helm: &Helm, args: &[String]) -> String {
    let chart = chart();
    let mut all = vec![
        "template".to_string(),
        RELEASE.into(),
        chart.display().to_string(),
        "--kube-version".into(),
        KUBE_VERSIONS[1].into(),
    ];
    all.extend(args.iter().cloned());
    let out = ok(helm.run(&all));
    assert!(
        !out.status.success(),
        "helm accepted {args:?}, which the chart should refuse"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn manifests(rendered: &str) -> Vec<Value> {
    ok(tools::documents(rendered))
}

fn is_crd_kind(m: &Value) -> bool {
    m["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("monitoring.coreos.com/"))
}

fn find<'a>(docs: &'a [Value], kind: &str, pred: impl Fn(&Value) -> bool) -> Option<&'a Value> {
    docs.iter().find(|d| d["kind"] == kind && pred(d))
}

/// The rendered org-mesh.yaml.
fn config_text(docs: &[Value]) -> String {
    find(docs, "ConfigMap", |d| {
        d["data"]["org-mesh.yaml"].is_string()
    })
    .and_then(|d| d["data"]["org-mesh.yaml"].as_str())
    .map(str::to_string)
    .unwrap_or_else(|| panic!("no ConfigMap holds org-mesh.yaml"))
}

fn conductor(docs: &[Value]) -> &Value {
    find(docs, "Deployment", |_| true).unwrap_or_else(|| panic!("no Deployment rendered"))
}

// --- helm lint -------------------------------------------------------------

#[test]
fn helm_lint_passes_strictly_for_development_and_production() {
    let helm = helm();
    let chart = chart().display().to_string();
    for extra in [vec![], vec!["-f".to_string(), production_values()]] {
        let mut args = vec![
            "lint".to_string(),
            "--strict".into(),
            chart.clone(),
            "--kube-version".into(),
            KUBE_VERSIONS[1].into(),
        ];
        args.extend(extra);
        let out = ok(helm.run(&args));
        assert!(
            out.status.success(),
            "helm {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// --- kubernetes-validate ---------------------------------------------------

/// Writes each manifest kubernetes-validate has a schema for to its own
/// file and validates them all in one run, strictly (unknown fields fail).
/// Returns how many it validated and the CRD-backed kinds it set aside.
fn kubernetes_validate(docs: &[Value], kube: &str) -> (usize, Vec<String>) {
    let validator = ok(tools::kubernetes_validate_path());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if is_crd_kind(doc) {
            skipped.push(tools::describe(doc));
            continue;
        }
        let path = dir.path().join(format!("{i:02}.json"));
        let text = serde_json::to_string_pretty(doc).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        files.push(path);
    }
    let out = Command::new(&validator)
        .args(["--strict", "--kubernetes-version", kube])
        .args(&files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", validator.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubernetes-validate --strict against {kube} refused:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = stdout
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    assert_eq!(
        passed,
        files.len(),
        "kubernetes-validate passed {passed} of {} manifests:\n{stdout}",
        files.len()
    );
    (passed, skipped)
}

#[test]
fn every_rendered_manifest_passes_kubernetes_validate() {
    let helm = helm();
    for kube in KUBE_VERSIONS {
        for case in cases() {
            let docs = manifests(&render(&helm, &case.args, kube));
            let (passed, skipped) = kubernetes_validate(&docs, kube);
            assert!(
                passed >= 6,
                "{}: only {passed} manifests validated",
                case.name
            );
            for kind in &skipped {
                assert!(
                    kind.starts_with("ServiceMonitor/") || kind.starts_with("PrometheusRule/"),
                    "{}: {kind} was set aside but is no monitoring kind",
                    case.name
                );
            }
            if case.profile == "production" {
                assert_eq!(skipped.len(), 2, "{}: {skipped:?}", case.name);
            }
        }
    }
}

#[test]
fn kubernetes_validate_refuses_what_the_chart_must_never_render() {
    let helm = helm();
    let docs = manifests(&render(&helm, &[], KUBE_VERSIONS[1]));
    let validator = ok(tools::kubernetes_validate_path());
    let mut deployment = conductor(&docs).clone();
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFs"] =
        json!(true);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("deployment.json");
    std::fs::write(&path, deployment.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(&validator)
        .args(["--strict", "--kubernetes-version", KUBE_VERSIONS[1]])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a misspelt field passed: {said}");
    assert!(said.contains("readOnlyRootFs"), "{said}");
}

// --- values.schema.json and the chart's own refusals ------------------------

#[test]
fn the_schema_refuses_wrong_values_and_says_which() {
    let helm = helm();
    let wrong: &[(&[&str], &[&str])] = &[
        (
            &["replicaCount=two"],
            &["/replicaCount", "got string, want null or integer"],
        ),
        (
            &["global.env=staging"],
            &["/global/env", "'development', 'production'"],
        ),
        (
            &["autoscalling.enabled=true"],
            &["'autoscalling' not allowed"],
        ),
        (
            &["graph.backend=postgres"],
            &["/graph/backend", "'embedded', 'neo4j'"],
        ),
        (
            &["serve.headTimeoutSecs=0"],
            &["/serve/headTimeoutSecs", "minimum"],
        ),
        (
            &["neo4j.uri=http://neo4j:7474"],
            &["/neo4j/uri", "does not match pattern"],
        ),
        (
            &["redis.url=redis://:hunter2@redis:6379"],
            &["/redis/url", "does not match pattern"],
        ),
        (
            &["prometheusRule.alerts.slowIngest.thresholdSeconds=30"],
            &[
                "/prometheusRule/alerts/slowIngest/thresholdSeconds",
                "want 10",
            ],
        ),
        (
            &["prometheusRule.alerts.scimNotTaken.for=half an hour"],
            &[
                "/prometheusRule/alerts/scimNotTaken/for",
                "does not match pattern",
            ],
        ),
        (
            &["securityContext.readOnlyRootFilesystem=false"],
            &["/securityContext/readOnlyRootFilesystem"],
        ),
        (
            &["apiTokens[0].name=ops", "apiTokens[0].role=root"],
            &["/apiTokens/0/role", "'viewer', 'approver', 'admin'"],
        ),
        (
            &["plugins.source=oci"],
            &["/plugins/source", "'image', 'configMap', 'volume'"],
        ),
        (&["serve.port=80"], &["/serve/port", "minimum"]),
        (
            &["retention.messageDays=-30"],
            &["/retention/messageDays", "minimum"],
        ),
    ];
    for (values, expected) in wrong {
        let said = refusal(&helm, &set(values));
        assert!(
            said.contains("values don't meet the specifications of the schema"),
            "{values:?}: {said}"
        );
        for fragment in *expected {
            assert!(
                said.contains(fragment),
                "{values:?} should say {fragment:?}: {said}"
            );
        }
    }
}

#[test]
fn values_that_disagree_are_refused_with_the_values_to_change() {
    let helm = helm();
    let production = ["global.env=production", "neo4j.password=x"];
    let wrong: &[(Vec<&str>, &str)] = &[
        (production.to_vec(), "set neo4j.uri"),
        (
            [production.as_slice(), &["neo4j.uri=bolt://n:7687"]].concat(),
            "set redis.url",
        ),
        (
            [
                production.as_slice(),
                &[
                    "neo4j.uri=bolt://n:7687",
                    "redis.url=redis://r:6379",
                    "graph.backend=embedded",
                ],
            ]
            .concat(),
            "global.env=production keeps the twin in Neo4j",
        ),
        (
            vec![
                "global.env=production",
                "neo4j.uri=bolt://n:7687",
                "redis.url=redis://r:6379",
            ],
            "neo4j.password: set a value or an existingSecret",
        ),
        (
            vec!["replicaCount=3"],
            "the embedded graph keeps the twin in one pod's state folder",
        ),
        (
            vec![
                "replicaCount=2",
                "graph.backend=neo4j",
                "neo4j.uri=bolt://n:7687",
                "neo4j.password=x",
            ],
            "the memory cache de-duplicates webhooks",
        ),
        (
            vec![
                "connectors[0].name=github",
                "connectors[0].plugin=github-connector",
                "connectors[0].webhook.provider=github",
                "connectors[0].webhook.secret.existingSecret=hooks",
            ],
            "connectors[github].webhook.secret: existingSecret hooks needs existingSecretKey",
        ),
        (
            vec!["plugins.source=configMap"],
            "plugins.source configMap needs plugins.configMaps",
        ),
        (
            vec![
                "neo4j.password=x",
                "neo4j.existingSecret=s",
                "graph.backend=neo4j",
                "neo4j.uri=bolt://n:7687",
            ],
            "neo4j.password: give either a value or existingSecret, not both",
        ),
    ];
    for (values, expected) in wrong {
        let said = refusal(&helm, &set(values));
        assert!(
            said.contains(expected),
            "{values:?} should say {expected:?}: {said}"
        );
    }
}

// --- org-mesh's own loaders --------------------------------------------------

#[test]
fn org_mesh_loads_the_configuration_the_chart_renders() {
    let helm = helm();
    for case in cases() {
        let docs = manifests(&render(&helm, &case.args, KUBE_VERSIONS[1]));
        let text = config_text(&docs);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("org-mesh.yaml");
        // The production values use ${GITHUB_API_URL} in instance config,
        // which the container's environment sets; this process has no such
        // variable, so the file is loaded with the value written in.
        let text = text.replace("${GITHUB_API_URL}", "https://api.github.com");
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
        let config = org_mesh_app::config::Config::load(&path).unwrap_or_else(|e| {
            panic!(
                "{}: org-mesh refuses the rendered configuration: {e}\n{text}",
                case.name
            )
        });
        assert_eq!(
            config.state_dir,
            Path::new("/var/lib/org-mesh"),
            "{}",
            case.name
        );
        assert_eq!(
            (
                config.retention.message_days,
                config.retention.interval_secs
            ),
            (180, 3600),
            "{}: retention as the chart's values say",
            case.name
        );
        assert!(
            config.serve.listen.ends_with(":8080") && !config.serve.listen.starts_with("127."),
            "{}: listens on {}",
            case.name,
            config.serve.listen
        );
        assert_eq!(
            (
                config.serve.head_timeout_secs,
                config.serve.body_timeout_secs
            ),
            (75, 30),
            "{}: request deadlines as the chart's values say",
            case.name
        );
        if case.profile == "production" {
            assert_eq!(
                config.graph.backend,
                org_mesh_app::config::Backend::Neo4j,
                "{}",
                case.name
            );
            assert_eq!(
                config.cache.backend,
                org_mesh_app::config::CacheBackend::Redis,
                "{}",
                case.name
            );
        }
    }
}

/// Lays ConfigMap data out as the kubelet mounts it: the files in a
/// timestamped folder, `..data` linking to it, and each name a link
/// through `..data`.
fn as_configmap_mount(data: &serde_json::Map<String, Value>, dir: &Path) {
    let stamp = dir.join("..2026_01_01_00_00_00.000000001");
    std::fs::create_dir_all(&stamp).unwrap_or_else(|e| panic!("{e}"));
    for (name, text) in data {
        let text = text
            .as_str()
            .unwrap_or_else(|| panic!("{name} is not text"));
        std::fs::write(stamp.join(name), text).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    std::os::unix::fs::symlink(stamp.file_name().unwrap_or_default(), dir.join("..data"))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_policy_configmap_is_this_release_s_policy_folder_and_loads_as_mounted() {
    let helm = helm();
    let docs = manifests(&render(
        &helm,
        &["-f".into(), production_values()],
        KUBE_VERSIONS[1],
    ));
    let policies = find(&docs, "ConfigMap", |d| {
        d["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("-policies"))
    })
    .unwrap_or_else(|| panic!("no policy ConfigMap rendered"));
    let data = policies["data"]
        .as_object()
        .unwrap_or_else(|| panic!("the policy ConfigMap has no data"));

    let shipped = repo_root().join("policies");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&shipped).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let text = ok(read(&path));
        assert_eq!(
            data.get(&name).and_then(Value::as_str),
            Some(text.as_str()),
            "the chart's {name} differs from policies/{name}"
        );
        names.insert(name);
    }
    let rendered: BTreeSet<String> = data.keys().cloned().collect();
    assert_eq!(rendered, names);

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    as_configmap_mount(data, dir.path());
    let set = org_mesh_policy::PolicySet::load(dir.path())
        .unwrap_or_else(|e| panic!("org-mesh refuses the policy ConfigMap as mounted: {e}"));
    assert!(
        !set.tests().is_empty(),
        "the policies' own tests did not run"
    );
    assert!(set.tuning().is_some(), "drift-rules.yaml was not read");
}

// --- reload in place, restart on configuration -----------------------------

#[test]
fn a_policy_edit_leaves_the_pods_alone_but_a_configuration_or_secret_edit_rolls_them() {
    let helm = helm();
    let base = vec!["-f".to_string(), production_values()];
    let before = manifests(&render(&helm, &base, KUBE_VERSIONS[1]));

    let mut policy_edit = base.clone();
    policy_edit.extend([
        "--set-string".to_string(),
        "policies.files.extra\\.rego=package orgmesh.extra".to_string(),
    ]);
    let after = manifests(&render(&helm, &policy_edit, KUBE_VERSIONS[1]));
    assert_eq!(
        conductor(&before)["spec"]["template"],
        conductor(&after)["spec"]["template"],
        "a policy edit changed the pod template, which would roll every pod"
    );
    let policy_data = |docs: &[Value]| {
        find(docs, "ConfigMap", |d| {
            d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-policies"))
        })
        .map(|d| d["data"].clone())
    };
    assert_ne!(
        policy_data(&before),
        policy_data(&after),
        "the policy edit did not reach the ConfigMap"
    );

    let annotation = |docs: &[Value], key: &str| {
        conductor(docs)["spec"]["template"]["metadata"]["annotations"][key].clone()
    };
    let mut config_edit = base.clone();
    config_edit.extend(set(&["serve.syncIntervalSecs=60"]));
    let after = manifests(&render(&helm, &config_edit, KUBE_VERSIONS[1]));
    assert_ne!(
        annotation(&before, "checksum/config"),
        annotation(&after, "checksum/config"),
        "a configuration edit left checksum/config alone: org-mesh would go on with the old file"
    );

    let mut secret_edit = base;
    secret_edit.extend(set(&["neo4j.password=marker-rotated"]));
    let after = manifests(&render(&helm, &secret_edit, KUBE_VERSIONS[1]));
    assert_ne!(
        annotation(&before, "checksum/secrets"),
        annotation(&after, "checksum/secrets"),
        "a new secret value left checksum/secrets alone: org-mesh reads route secrets at start"
    );
}

// --- Rego checks ---------------------------------------------------------------

fn policy_dir() -> PathBuf {
    repo_root().join("helm/tests/policy")
}

fn rego_engine() -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    let mut found = 0;
    for entry in std::fs::read_dir(policy_dir()).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().is_some_and(|e| e == "rego") {
            engine
                .add_policy(path.display().to_string(), ok(read(&path)))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            found += 1;
        }
    }
    assert!(
        found >= 4,
        "found only {found} Rego files in helm/tests/policy"
    );
    engine
}

fn deny(engine: &mut regorus::Engine, input: Value) -> Vec<String> {
    engine.set_input(regorus::Value::from(input));
    let value = engine
        .eval_rule("data.orgmesh.chart.deny".into())
        .unwrap_or_else(|e| panic!("the chart checks do not evaluate: {e}"));
    let json = serde_json::to_value(&value).unwrap_or_else(|e| panic!("{e}"));
    json.as_array()
        .unwrap_or_else(|| panic!("deny is not a set: {json}"))
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .collect()
}

#[test]
fn the_rego_checks_pass_their_own_tests() {
    let mut engine = rego_engine();
    let text = ok(read(&policy_dir().join("chart_test.rego")));
    let tests: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("test_"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(tests.len() >= 10, "found only {} tests", tests.len());
    let mut failed = Vec::new();
    for name in &tests {
        engine.set_input(regorus::Value::new_object());
        match engine.eval_rule(format!("data.orgmesh.chart_test.test_{name}")) {
            Ok(regorus::Value::Bool(true)) => {}
            Ok(other) => failed.push(format!("test_{name}: {other:?}")),
            Err(e) => failed.push(format!("test_{name}: {e}")),
        }
    }
    assert!(
        failed.is_empty(),
        "Rego tests failed:\n{}",
        failed.join("\n")
    );
}

#[test]
fn the_rego_checks_pass_on_every_render() {
    let helm = helm();
    let mut engine = rego_engine();
    for case in cases() {
        let docs = manifests(&render(&helm, &case.args, KUBE_VERSIONS[1]));
        let config: Value = serde_saphyr::from_str(&config_text(&docs))
            .unwrap_or_else(|e| panic!("{}: org-mesh.yaml does not parse: {e}", case.name));
        let input = json!({
            "manifests": docs,
            "config": config,
            "secret_values": case.secrets,
            "profile": case.profile,
        });
        let problems = deny(&mut engine, input);
        assert!(
            problems.is_empty(),
            "{}: the chart checks found:\n  {}",
            case.name,
            problems.join("\n  ")
        );
    }
}

// --- observability -------------------------------------------------------------

/// Every PromQL expression of the PrometheusRule and the dashboard.
fn expressions(docs: &[Value]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for doc in docs {
        if doc["kind"] == "PrometheusRule" {
            for group in doc["spec"]["groups"].as_array().into_iter().flatten() {
                for rule in group["rules"].as_array().into_iter().flatten() {
                    found.push((
                        format!("alert {}", rule["alert"].as_str().unwrap_or("?")),
                        rule["expr"].as_str().unwrap_or_default().to_string(),
                    ));
                }
            }
        }
        if doc["kind"] == "ConfigMap" && doc["metadata"]["labels"]["grafana_dashboard"] == "1" {
            for text in doc["data"].as_object().into_iter().flat_map(|d| d.values()) {
                let dashboard: Value = serde_json::from_str(text.as_str().unwrap_or_default())
                    .unwrap_or_else(|e| panic!("the dashboard is not JSON: {e}"));
                for panel in dashboard["panels"].as_array().into_iter().flatten() {
                    for target in panel["targets"].as_array().into_iter().flatten() {
                        found.push((
                            format!(
                                "dashboard panel {:?}",
                                panel["title"].as_str().unwrap_or("?")
                            ),
                            target["expr"].as_str().unwrap_or_default().to_string(),
                        ));
                    }
                }
                for variable in dashboard["templating"]["list"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if let Some(query) = variable["definition"].as_str() {
                        found.push((
                            format!("dashboard variable {}", variable["name"]),
                            query.to_string(),
                        ));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn alerts_and_the_dashboard_use_only_series_org_mesh_exports() {
    let helm = helm();
    let root = repo_root();
    let metrics = ok(Metrics::read(&root));
    let reasons = ok(facts::failure_reasons(&root));
    let docs = manifests(&render(
        &helm,
        &["-f".into(), production_values()],
        KUBE_VERSIONS[1],
    ));
    let exprs = expressions(&docs);
    assert!(exprs.len() >= 20, "only {} expressions found", exprs.len());
    let reason_values =
        regex::Regex::new(r#"reason=~?"([^"]+)""#).unwrap_or_else(|e| panic!("{e}"));
    let mut problems = Vec::new();
    for (what, expr) in &exprs {
        let series = ok(facts::series_in(expr));
        if series.is_empty() {
            problems.push(format!("{what}: no org_mesh_ series in {expr}"));
        }
        for name in series {
            if !metrics.exists(&name) {
                problems.push(format!("{what}: {name} is not registered by org-mesh"));
            }
        }
        for found in reason_values.captures_iter(expr) {
            for reason in found[1].split('|') {
                if !reasons.contains(reason) {
                    problems.push(format!(
                        "{what}: no plugin failure is counted with reason {reason}"
                    ));
                }
            }
        }
        let balanced = |open: char, close: char| {
            expr.chars().filter(|c| *c == open).count()
                == expr.chars().filter(|c| *c == close).count()
        };
        if !balanced('(', ')') || !balanced('{', '}') || !balanced('[', ']') {
            problems.push(format!("{what}: unbalanced brackets in {expr}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Each required signal has its alert.
    let all: String = exprs
        .iter()
        .map(|(_, e)| e.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for needed in [
        r#"org_mesh_drift_detection_count{namespace="org-mesh", job="org-mesh", severity=~"high|critical"}"#,
        "org_mesh_narrative_signals_count",
        "org_mesh_ingest_duration_seconds_bucket",
        "org_mesh_agent_action_success_rate",
        r#"reason="quarantined""#,
        r#"org_mesh_reload_total{namespace="org-mesh", job="org-mesh", outcome="rejected"}"#,
        "org_mesh_backend_up",
    ] {
        assert!(all.contains(needed), "no alert or panel over {needed}");
    }
}

#[test]
fn every_alert_links_to_its_section_of_the_runbook() {
    let helm = helm();
    let docs = manifests(&render(
        &helm,
        &["-f".into(), production_values()],
        KUBE_VERSIONS[1],
    ));
    let anchors = runbook::anchors(&ok(read(&repo_root().join("docs/runbook.md"))));
    let rule = find(&docs, "PrometheusRule", |_| true)
        .unwrap_or_else(|| panic!("no PrometheusRule in production"));
    let mut alerts = 0;
    for group in rule["spec"]["groups"].as_array().into_iter().flatten() {
        for r in group["rules"].as_array().into_iter().flatten() {
            let url = r["annotations"]["runbook_url"].as_str().unwrap_or_default();
            let (file, anchor) = url
                .split_once('#')
                .unwrap_or_else(|| panic!("{url} has no anchor"));
            assert_eq!(file, "docs/runbook.md");
            assert!(
                anchors.contains(anchor),
                "docs/runbook.md has no section #{anchor} for {}",
                r["alert"]
            );
            alerts += 1;
        }
    }
    assert!(alerts >= 8, "only {alerts} alerts");
}

#[test]
fn monitoring_is_optional_and_on_by_default_in_production_only() {
    let helm = helm();
    let kinds = |args: &[String]| -> BTreeSet<String> {
        manifests(&render(&helm, args, KUBE_VERSIONS[1]))
            .iter()
            .map(|d| {
                let dashboard = d["metadata"]["labels"]["grafana_dashboard"] == "1";
                if dashboard {
                    "dashboard".to_string()
                } else {
                    d["kind"].as_str().unwrap_or("?").to_string()
                }
            })
            .collect()
    };
    let monitoring = ["ServiceMonitor", "PrometheusRule", "dashboard"];
    let development = kinds(&[]);
    let production = kinds(&["-f".into(), production_values()]);
    let production_without: Vec<String> = [
        vec!["-f".to_string(), production_values()],
        set(&[
            "serviceMonitor.enabled=false",
            "prometheusRule.enabled=false",
            "grafanaDashboard.enabled=false",
        ]),
    ]
    .concat();
    let without = kinds(&production_without);
    let development_with = kinds(&set(&[
        "serviceMonitor.enabled=true",
        "prometheusRule.enabled=true",
        "grafanaDashboard.enabled=true",
    ]));
    for kind in monitoring {
        assert!(
            !development.contains(kind),
            "development renders {kind} by default"
        );
        assert!(
            production.contains(kind),
            "production does not render {kind}"
        );
        assert!(!without.contains(kind), "{kind} cannot be turned off");
        assert!(
            development_with.contains(kind),
            "{kind} cannot be turned on in development"
        );
    }
}

// --- the runbook's own install example ------------------------------------------

/// The fenced blocks of a Markdown text with the given info string.
fn fenced(text: &str, info: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    // The block being read, and whether it is of the wanted kind.
    let mut open: Option<(bool, Vec<&str>)> = None;
    for line in text.lines() {
        match (open.take(), line.trim_start().strip_prefix("```")) {
            (None, Some(rest)) => open = Some((rest.trim() == info, Vec::new())),
            (Some((wanted, lines)), Some(_)) => {
                if wanted {
                    blocks.push(lines.join("\n"));
                }
            }
            (Some((wanted, mut lines)), None) => {
                lines.push(line);
                open = Some((wanted, lines));
            }
            (None, None) => {}
        }
    }
    blocks
}

#[test]
fn the_runbook_s_install_example_renders_and_validates() {
    let helm = helm();
    let text = ok(read(&repo_root().join("docs/runbook.md")));
    let values = fenced(&text, "yaml")
        .into_iter()
        .find(|b| b.starts_with("image:"))
        .unwrap_or_else(|| panic!("docs/runbook.md has no values example starting with image:"));
    let install = fenced(&text, "sh")
        .into_iter()
        .find(|b| b.contains("helm upgrade --install org-mesh"))
        .unwrap_or_else(|| panic!("docs/runbook.md has no helm upgrade --install example"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("org-mesh-values.yaml");
    std::fs::write(&file, &values).unwrap_or_else(|e| panic!("{e}"));
    let mut args: Vec<String> = install
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "--set")
        .map(|w| w[1].replace("\"$NEO4J_PASSWORD\"", "marker-runbook-password"))
        .flat_map(|pair| ["--set".to_string(), pair])
        .collect();
    assert!(
        args.len() >= 8,
        "the install example sets too little: {args:?}"
    );
    args.extend(["-f".to_string(), file.display().to_string()]);
    let docs = manifests(&render(&helm, &args, KUBE_VERSIONS[1]));
    kubernetes_validate(&docs, KUBE_VERSIONS[1]);
    let config: Value =
        serde_saphyr::from_str(&config_text(&docs)).unwrap_or_else(|e| panic!("{e}"));
    let problems = deny(
        &mut rego_engine(),
        json!({
            "manifests": docs,
            "config": config,
            "secret_values": ["marker-runbook-password"],
            "profile": "production",
        }),
    );
    assert!(
        problems.is_empty(),
        "the runbook's example: {}",
        problems.join("\n")
    );
}

// --- NOTES.txt -----------------------------------------------------------------

#[test]
fn the_notes_say_how_to_reach_the_api_scim_and_webhooks() {
    let helm = helm();
    let chart = chart().display().to_string();
    // A client-side dry run renders NOTES.txt without a cluster.
    let out = ok(helm.run([
        "install",
        RELEASE,
        &chart,
        "--namespace",
        NAMESPACE,
        "--dry-run=client",
        "-f",
        &production_values(),
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let notes = text
        .split_once("NOTES:")
        .map(|(_, n)| n)
        .unwrap_or_else(|| panic!("no NOTES in {text}"));
    for expected in [
        "kubectl -n org-mesh rollout status deployment/org-mesh-conductor",
        "https://org-mesh.example.com/api/v1/status",
        "https://org-mesh.example.com/scim/v2/okta/",
        "https://org-mesh.example.com/webhooks/github/github",
        "https://org-mesh.example.com/webhooks/gitlab/gitlab",
        "dashboard (viewer), operations (admin)",
        "Route an identity provider to one replica",
    ] {
        assert!(
            notes.contains(expected),
            "NOTES lack {expected:?}:\n{notes}"
        );
    }
    let out = ok(helm.run([
        "install",
        RELEASE,
        &chart,
        "--namespace",
        NAMESPACE,
        "--dry-run=client",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "kubectl -n org-mesh port-forward service/org-mesh 8080:80",
        "http://127.0.0.1:8080/api/v1/status",
        "an emptyDir: it is lost with the pod",
    ] {
        assert!(
            text.contains(expected),
            "development NOTES lack {expected:?}:\n{text}"
        );
    }
}
