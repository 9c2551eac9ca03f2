//! The sandbox holds: each way a plugin can misbehave fails that call with an
//! error naming the plugin, its version and the limit, and the host keeps
//! serving. The plugin under test is `conformance/misbehaving`, built for
//! wasm32-wasip2 by `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use org_mesh_cache::memory::MemoryCoordination;
use org_mesh_model::{ChangeSet, Direction, NodeRef, Provenance, StoredEdge, StoredNode};
use org_mesh_runtime::{
    Failure, Grants, GraphReader, Limits, LoadError, Manifest, Plugin, Runtime, RuntimeOptions,
};
use serde_json::json;

fn dist() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/dist/misbehaving");
    assert!(
        dir.join("misbehaving.wasm").is_file(),
        "{} is missing: run .ci/build-plugins first",
        dir.display()
    );
    dir
}

fn limits() -> Limits {
    Limits {
        memory_bytes: 16 << 20,
        cpu: Duration::from_millis(300),
        call_timeout: Duration::from_secs(20),
        output_bytes: 1 << 20,
        stack_bytes: 256 << 10,
        log_events_per_call: 50,
        ..Limits::default()
    }
}

#[derive(Debug)]
struct OneNode;

#[async_trait::async_trait]
impl GraphReader for OneNode {
    async fn node(&self, node: &NodeRef) -> Result<Option<StoredNode>, String> {
        let now = time::OffsetDateTime::now_utc();
        Ok(Some(StoredNode {
            node: org_mesh_model::Node {
                label: node.label.clone(),
                key: node.key.clone(),
                properties: Default::default(),
            },
            provenance: Provenance {
                source: "test".into(),
                first_seen: now,
                last_seen: now,
                not_observed_since: None,
            },
        }))
    }

    async fn neighbours(
        &self,
        _: &NodeRef,
        _: &str,
        _: Direction,
    ) -> Result<Vec<(StoredEdge, StoredNode)>, String> {
        Ok(Vec::new())
    }
}

fn runtime_with(options: RuntimeOptions) -> Runtime {
    Runtime::new(
        options,
        Arc::new(MemoryCoordination::default()),
        Some(Arc::new(OneNode)),
        &prometheus::Registry::new(),
    )
    .unwrap_or_else(|e| panic!("runtime: {e:#}"))
}

fn runtime() -> Runtime {
    runtime_with(RuntimeOptions {
        limits: limits(),
        ..RuntimeOptions::default()
    })
}

async fn load(rt: &Runtime) -> Plugin {
    let manifest = Manifest::load(&dist().join("manifest.yaml")).unwrap_or_else(|e| panic!("{e}"));
    rt.load(manifest).await.unwrap_or_else(|e| panic!("{e}"))
}

fn bind(plugin: &Plugin, mode: &str, grants: Grants) -> Plugin {
    plugin
        .bind("test", &json!({ "mode": mode }), grants)
        .unwrap_or_else(|e| panic!("{e:?}"))
}

async fn failure(plugin: &Plugin, mode: &str) -> (Failure, String) {
    let bound = bind(plugin, mode, Grants::default());
    match bound.detect(true, &ChangeSet::default()).await {
        Ok(out) => panic!("mode {mode} succeeded with {} findings", out.findings.len()),
        Err(e) => (e.failure.clone(), e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_behaved_call_returns_findings_with_fingerprints() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let out = bind(&plugin, "ok", Grants::default())
        .detect(true, &ChangeSet::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.findings.len(), 1);
    let f = &out.findings[0];
    assert_eq!(f.rule, "noise");
    assert_eq!(f.detector, "misbehaving");
    assert_eq!(
        f.fingerprint,
        org_mesh_model::fingerprint("noise", &f.subject, "")
    );
    assert_eq!(plugin.stats().calls(), 2, "describe at load and this call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_hits_the_cpu_deadline_and_the_host_keeps_serving() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let (f, msg) = failure(&plugin, "spin").await;
    assert_eq!(f, Failure::CpuDeadline { limit_ms: 300 });
    assert_eq!(
        msg,
        "plugin misbehaving 0.1.0: detect exceeded its CPU deadline of 300 ms"
    );
    let ok = bind(&plugin, "ok", Grants::default())
        .detect(true, &ChangeSet::default())
        .await;
    assert!(ok.is_ok(), "the next call must work: {ok:?}");
    assert_eq!(plugin.stats().failures().get("cpu_deadline"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_growth_stops_at_the_cap() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let (f, msg) = failure(&plugin, "oom").await;
    assert_eq!(
        f,
        Failure::Memory {
            limit_bytes: 16 << 20
        },
        "{msg}"
    );
    assert!(msg.contains("memory limit of 16777216 bytes"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_is_a_stack_overflow() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let (f, msg) = failure(&plugin, "recurse").await;
    assert_eq!(f, Failure::StackOverflow, "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_contained() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let (f, msg) = failure(&plugin, "trap").await;
    assert!(matches!(f, Failure::Trap(_)), "{msg}");
    assert!(
        msg.starts_with("plugin misbehaving 0.1.0: detect trapped"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_output_is_refused() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let (f, msg) = failure(&plugin, "huge").await;
    assert!(
        matches!(
            f,
            Failure::OutputTooLarge { limit: 1048576, .. } | Failure::Memory { .. }
        ),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ungranted_interface_fails_the_call_and_a_granted_one_works() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let (f, msg) = failure(&plugin, "graph").await;
    assert_eq!(
        f,
        Failure::Ungranted {
            capability: "graph".into()
        }
    );
    assert!(
        msg.contains("called the graph interface, which is not granted"),
        "{msg}"
    );

    let granted = Grants {
        graph: true,
        ..Grants::default()
    };
    let out = bind(&plugin, "graph", granted)
        .detect(true, &ChangeSet::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.findings.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_call_hits_the_wall_clock_timeout() {
    let rt = runtime_with(RuntimeOptions {
        limits: Limits {
            cpu: Duration::from_secs(30),
            call_timeout: Duration::from_millis(300),
            ..limits()
        },
        ..RuntimeOptions::default()
    });
    let plugin = load(&rt).await;
    let (f, _) = failure(&plugin, "sleep").await;
    assert_eq!(f, Failure::WallClock { limit_ms: 300 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_capped_not_fatal() {
    // A hundred thousand host calls take real CPU time in a debug build.
    let rt = runtime_with(RuntimeOptions {
        limits: Limits {
            cpu: Duration::from_secs(20),
            ..limits()
        },
        ..RuntimeOptions::default()
    });
    let plugin = load(&rt).await;
    let out = bind(&plugin, "log-flood", Grants::default())
        .detect(true, &ChangeSet::default())
        .await;
    assert!(out.is_ok(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_plugin_does_not_hold_up_others() {
    let rt = runtime_with(RuntimeOptions {
        limits: Limits {
            cpu: Duration::from_secs(5),
            ..limits()
        },
        ..RuntimeOptions::default()
    });
    let plugin = load(&rt).await;
    let spinner = bind(&plugin, "spin", Grants::default());
    let spin = tokio::spawn(async move { spinner.detect(true, &ChangeSet::default()).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ok = bind(&plugin, "ok", Grants::default())
        .detect(true, &ChangeSet::default())
        .await;
    assert!(ok.is_ok());
    assert!(
        !spin.is_finished(),
        "the spinning call should still be running"
    );
    let spun = spin.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        spun.err().map(|e| e.failure),
        Some(Failure::CpuDeadline { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sandbox_failures_quarantine_the_plugin() {
    let rt = runtime_with(RuntimeOptions {
        limits: limits(),
        quarantine_after: 3,
        quarantine_base: Duration::from_secs(60),
        ..RuntimeOptions::default()
    });
    let plugin = load(&rt).await;
    for _ in 0..3 {
        let (f, _) = failure(&plugin, "trap").await;
        assert!(matches!(f, Failure::Trap(_)));
    }
    let (f, msg) = failure(&plugin, "ok").await;
    assert!(matches!(f, Failure::Quarantined { .. }), "{msg}");
    assert!(plugin.stats().quarantine_left().is_some());
    assert_eq!(plugin.stats().failures().get("trap"), Some(&3));
}

fn copy_plugin(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = dist();
    std::fs::copy(
        src.join("misbehaving.wasm"),
        dir.path().join("misbehaving.wasm"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let manifest =
        std::fs::read_to_string(src.join("manifest.yaml")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("manifest.yaml"), edit(manifest))
        .unwrap_or_else(|e| panic!("{e}"));
    dir
}

async fn load_err(dir: &Path) -> String {
    let rt = runtime();
    let manifest = match Manifest::load(&dir.join("manifest.yaml")) {
        Ok(m) => m,
        Err(e) => return e.to_string(),
    };
    match rt.load(manifest).await {
        Ok(_) => panic!("loading should fail"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_the_manifest_does_not_ask_for_is_refused_at_load() {
    let dir =
        copy_plugin(|m| m.replace("capabilities: [log, graph, kv]", "capabilities: [log, kv]"));
    let err = load_err(dir.path()).await;
    assert_eq!(
        err,
        "plugin misbehaving: the component imports org-mesh:plugin/graph@0.2.0 but the manifest does not ask for graph"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_component_names_its_file() {
    let dir = copy_plugin(|m| m);
    std::fs::write(dir.path().join("misbehaving.wasm"), b"\0asm not really")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = load_err(dir.path()).await;
    assert!(err.starts_with("plugin misbehaving: "), "{err}");
    assert!(
        err.contains("misbehaving.wasm is not a valid component"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_of_the_wrong_kind_is_refused() {
    let dir = copy_plugin(|m| {
        m.replace("kind: detector", "kind: executor")
            .replace("capabilities: [log, graph, kv]", "capabilities: [log]")
    });
    let err = load_err(dir.path()).await;
    assert!(
        err.starts_with("plugin misbehaving: the component does not fit the executor world"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_describe_that_disagrees_with_the_manifest_fails_the_self_check() {
    let dir = copy_plugin(|m| m.replace("version: 0.1.0", "version: 0.2.0"));
    let err = load_err(dir.path()).await;
    assert_eq!(
        err,
        "plugin misbehaving 0.2.0: self-check failed: describe says misbehaving 0.1.0 but the manifest says misbehaving 0.2.0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_problems_are_reported_together_with_their_fields() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let problems = plugin
        .bind(
            "x",
            &json!({"mode": "dance", "tempo": 3}),
            Grants::default(),
        )
        .err()
        .unwrap_or_default();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("config.mode:")));
    assert!(problems.iter().any(|p| p == "config.tempo: unknown field"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compile_cache_hits_and_survives_corruption() {
    use org_mesh_runtime::CacheOutcome;
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let options = || RuntimeOptions {
        limits: limits(),
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeOptions::default()
    };
    assert_eq!(
        load(&runtime_with(options())).await.cache_outcome(),
        CacheOutcome::Miss
    );
    assert_eq!(
        load(&runtime_with(options())).await.cache_outcome(),
        CacheOutcome::Hit
    );

    let entries: Vec<_> = walk(cache.path());
    assert_eq!(entries.len(), 1, "{entries:?}");
    let mut bytes = std::fs::read(&entries[0]).unwrap_or_else(|e| panic!("{e}"));
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&entries[0], bytes).unwrap_or_else(|e| panic!("{e}"));

    let plugin = load(&runtime_with(options())).await;
    assert_eq!(plugin.cache_outcome(), CacheOutcome::Replaced);
    assert!(
        bind(&plugin, "ok", Grants::default())
            .detect(true, &ChangeSet::default())
            .await
            .is_ok()
    );
    assert_eq!(
        load(&runtime_with(options())).await.cache_outcome(),
        CacheOutcome::Hit
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_folder_loads_what_it_can_and_reports_the_rest() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = copy_plugin(|m| m);
    let bad = root.path().join("broken");
    std::fs::create_dir(&bad).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(bad.join("manifest.yaml"), "name: broken\nversion: x\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let good_dest = root.path().join("misbehaving");
    std::fs::create_dir(&good_dest).unwrap_or_else(|e| panic!("{e}"));
    for f in ["manifest.yaml", "misbehaving.wasm"] {
        std::fs::copy(good.path().join(f), good_dest.join(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    let loaded = org_mesh_runtime::Registry::load_dir(&runtime(), root.path())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.plugins.keys().collect::<Vec<_>>(), ["misbehaving"]);
    assert_eq!(loaded.failed.len(), 1);
    assert!(matches!(loaded.failed[0], LoadError::Manifest { .. }));
    assert!(
        loaded.failed[0]
            .to_string()
            .contains("broken/manifest.yaml")
    );
}
