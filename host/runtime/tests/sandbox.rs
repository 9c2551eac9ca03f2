//! The sandbox holds: each way a plugin can misbehave fails that call with an
//! error naming the plugin, its version and the limit, and the host keeps
//! serving. The plugins under test are `conformance/misbehaving` and, where
//! a plugin must call out over HTTP, `conformance/pager`, both built for
//! wasm32-wasip2 by `.ci/build-plugins`. Every server these tests start
//! listens on 127.0.0.1; no request is aimed anywhere else.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use org_mesh_cache::memory::MemoryCoordination;
use org_mesh_model::{ChangeSet, Direction, NodeRef, Provenance, StoredEdge, StoredNode};
use org_mesh_runtime::{
    Capability, Failure, Grants, GraphReader, Limits, LoadError, Manifest, Plugin, PluginFailure,
    Registry, Runtime, RuntimeOptions, SecretSource,
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

/// On a runtime with one thread, a call that spins until its CPU deadline
/// must still let the thread's other tasks run while it spins: request
/// handlers share the async threads with plugin calls. Only the order of
/// events is checked: with no pause for others, the other task could not
/// run at all before the call ended.
#[tokio::test(flavor = "current_thread")]
async fn a_long_call_lets_the_other_tasks_on_its_thread_run() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let spinner = bind(&plugin, "spin", Grants::default());
    let turns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = turns.clone();
    let other = tokio::spawn(async move {
        loop {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Holds the thread a little each turn, as a busy handler
            // would, so that the pauses are long enough to be charged if
            // they were counted.
            std::thread::sleep(Duration::from_millis(1));
            tokio::task::yield_now().await;
        }
    });
    let before = turns.load(std::sync::atomic::Ordering::Relaxed);
    let err = spinner
        .detect(true, &ChangeSet::default())
        .await
        .expect_err("spinning must hit the CPU deadline");
    let during = turns.load(std::sync::atomic::Ordering::Relaxed) - before;
    other.abort();
    assert_eq!(err.failure, Failure::CpuDeadline { limit_ms: 300 });
    assert!(during > 0, "the other task never ran while the plugin spun");
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
async fn an_instance_without_config_has_no_settings_and_its_ungranted_asks_are_named() {
    let rt = runtime();
    let plugin = load(&rt).await;
    // The manifest declares a config schema of type object.
    let bound = plugin
        .bind("test", &serde_json::Value::Null, Grants::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let out = bound
        .detect(true, &ChangeSet::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.findings.len(), 1, "mode ok, its default");
    assert_eq!(
        bound.ungranted().into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([Capability::Graph, Capability::Kv])
    );
    let granted = bind(
        &plugin,
        "ok",
        Grants {
            graph: true,
            kv: true,
            ..Grants::default()
        },
    );
    assert_eq!(granted.ungranted(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_contained_and_quotes_the_panic() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let (f, msg) = failure(&plugin, "trap").await;
    assert!(matches!(f, Failure::Trap(_)), "{msg}");
    assert!(
        msg.starts_with("plugin misbehaving 0.1.0: detect trapped"),
        "{msg}"
    );
    // The panic's own words, which Rust writes to stderr before trapping.
    assert!(
        msg.contains("it last wrote to stderr: ")
            && msg.contains("panicked at conformance/misbehaving/src/lib.rs:")
            && msg.contains("misbehaving plugin traps on purpose"),
        "{msg}"
    );
    assert!(!msg.contains("RUST_BACKTRACE"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_with_an_overlong_title_is_refused_and_the_others_kept() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let out = bind(&plugin, "long-title", Grants::default())
        .detect(true, &ChangeSet::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.findings.len(), 1, "{:?}", out.rejected);
    assert_eq!(out.findings[0].subject.key, "test:1");
    assert_eq!(
        out.rejected,
        ["rule noise: a title of 1048576 bytes is over the limit of 4096"]
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
    let base = Duration::from_secs(1);
    let rt = runtime_with(RuntimeOptions {
        limits: limits(),
        quarantine_after: 3,
        quarantine_base: base,
        ..RuntimeOptions::default()
    });
    let plugin = load(&rt).await;
    // Another plugin on the same runtime, with what it returns before any
    // quarantine as the baseline.
    let upstream = Upstream::start(|_| Answer::Items);
    let other = pager(&rt, &upstream, "127.0.0.1", Grants::default()).await;
    let baseline = items(&other).await;
    assert_eq!(baseline, ["item:1", "item:2"]);

    for round in 1..=2u32 {
        for _ in 0..3 {
            let (f, _) = failure(&plugin, "trap").await;
            assert!(matches!(f, Failure::Trap(_)));
        }
        let stats = plugin.stats();
        assert_eq!(stats.quarantines(), round);
        assert_eq!(
            stats.quarantine_backoff(),
            Some(base * 2u32.pow(round - 1)),
            "quarantine {round} lasts the base, doubled for each earlier one"
        );
        assert!(stats.quarantine_left().is_some());
        let (f, msg) = failure(&plugin, "ok").await;
        assert!(matches!(f, Failure::Quarantined { .. }), "{msg}");
        assert!(
            msg.contains("is quarantined after repeated failures"),
            "{msg}"
        );
        assert_eq!(
            items(&other).await,
            baseline,
            "quarantine {round} is of the failing plugin only"
        );
        wait_out_quarantine(&plugin).await;
        assert!(
            bind(&plugin, "ok", Grants::default())
                .detect(true, &ChangeSet::default())
                .await
                .is_ok(),
            "after quarantine {round} the plugin is called again"
        );
    }
    assert_eq!(plugin.stats().failures().get("trap"), Some(&6));
}

/// Waits, without measuring, until the plugin's quarantine is over. The
/// bound only keeps a broken quarantine from hanging the test.
async fn wait_out_quarantine(plugin: &Plugin) {
    for _ in 0..600 {
        if plugin.stats().quarantine_left().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the quarantine did not end");
}

/// What the loopback test server answers.
#[derive(Debug, Clone)]
enum Answer {
    /// A listing of two items, as `pager` reads it.
    Items,
    /// A 302 to the given location.
    Redirect(String),
}

/// A minimal HTTP/1.1 server on 127.0.0.1 that answers each request as
/// `route` says for its path, and records the paths it was asked for.
struct Upstream {
    port: u16,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    fn start(route: impl Fn(&str) -> Answer + Send + 'static) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .port();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(path) = request_path(&stream) else {
                    continue;
                };
                if let Ok(mut seen) = seen.lock() {
                    seen.push(path.clone());
                }
                let response = match route(&path) {
                    Answer::Items => {
                        let body = r#"[{"number": 1}, {"number": 2}]"#;
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    Answer::Redirect(location) => format!(
                        "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    ),
                };
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Upstream { port, paths }
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// Reads one request's head and returns its path.
fn request_path(stream: &std::net::TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header == "\r\n" {
            break;
        }
    }
    Some(path)
}

/// `pager` reading `/items` from `upstream` under the name or address
/// `host`, allowed exactly that host and port plus whatever `grants` adds.
async fn pager(rt: &Runtime, upstream: &Upstream, host: &str, grants: Grants) -> Plugin {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/dist/pager");
    let manifest = Manifest::load(&dir.join("manifest.yaml"))
        .unwrap_or_else(|e| panic!("{e}: run .ci/build-plugins first"));
    let plugin = rt.load(manifest).await.unwrap_or_else(|e| panic!("{e}"));
    static TOKEN: std::sync::OnceLock<tempfile::NamedTempFile> = std::sync::OnceLock::new();
    let token = TOKEN.get_or_init(|| {
        let file = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(file.path(), "test-token\n").unwrap_or_else(|e| panic!("{e}"));
        file
    });
    let address = format!("{host}:{}", upstream.port);
    let mut grants = grants;
    if grants.http_hosts.is_empty() {
        grants.http_hosts = vec![address.clone()];
    }
    grants.secrets =
        BTreeMap::from([("token".to_string(), SecretSource::File(token.path().into()))]);
    let config = json!({"api_url": format!("http://{address}"), "path": "/items"});
    plugin
        .bind("pager", &config, grants)
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// The keys of the nodes one `pager` sync returns.
async fn items(pager: &Plugin) -> Vec<String> {
    let out = pager
        .sync(None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    out.batch.nodes.into_iter().map(|n| n.key).collect()
}

/// Why one `pager` sync failed, as the plugin reported it.
async fn sync_failure(pager: &Plugin) -> PluginFailure {
    match pager.sync(None, &[]).await {
        Ok(out) => panic!("the sync succeeded with {} nodes", out.batch.nodes.len()),
        Err(e) => match e.failure {
            Failure::Plugin(p) => p,
            other => panic!("expected the plugin to report an error, got {other}"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_name_resolving_to_loopback_is_denied_unless_private_networks_are_granted() {
    let rt = runtime();
    let upstream = Upstream::start(|_| Answer::Items);
    let strict = pager(&rt, &upstream, "localhost", Grants::default()).await;
    let PluginFailure::Denied(why) = sync_failure(&strict).await else {
        panic!("expected a denial");
    };
    assert!(
        why.contains(
            "denied by the host: localhost resolves only to loopback addresses; this plugin instance's grant does not allow private networks (grants.private_networks)"
        ),
        "{why}"
    );
    assert!(upstream.paths().is_empty(), "nothing reached the server");

    let inside = Grants {
        private_networks: true,
        ..Grants::default()
    };
    let granted = pager(&rt, &upstream, "localhost", inside).await;
    assert_eq!(items(&granted).await, ["item:1", "item:2"]);
    assert_eq!(upstream.paths(), ["/items"]);

    // The operator naming the address itself needs no grant.
    let literal = pager(&rt, &upstream, "127.0.0.1", Grants::default()).await;
    assert_eq!(items(&literal).await, ["item:1", "item:2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_reaches_the_plugin_as_an_answer_and_is_never_followed() {
    let rt = runtime();
    // Where a followed redirect would go instead: a path of this same
    // loopback server, so that following it would show in its log.
    let upstream = Upstream::start(|path| match path {
        "/items" => Answer::Redirect("/followed".into()),
        _ => Answer::Items,
    });
    let plugin = pager(&rt, &upstream, "127.0.0.1", Grants::default()).await;
    let PluginFailure::Upstream(why) = sync_failure(&plugin).await else {
        panic!("expected the 302 to reach the plugin");
    };
    assert!(why.contains("answered 302"), "{why}");
    assert_eq!(upstream.paths(), ["/items"], "the redirect was followed");

    // The same towards the cloud metadata service: the host hands the 302
    // to the plugin and sends nothing there.
    let upstream =
        Upstream::start(|_| Answer::Redirect("http://169.254.169.254/latest/meta-data/".into()));
    let plugin = pager(&rt, &upstream, "127.0.0.1", Grants::default()).await;
    let PluginFailure::Upstream(why) = sync_failure(&plugin).await else {
        panic!("expected the 302 to reach the plugin");
    };
    assert!(why.contains("answered 302"), "{why}");
    assert_eq!(upstream.paths(), ["/items"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_not_on_the_allow_list_is_denied_by_name() {
    let rt = runtime();
    let upstream = Upstream::start(|_| Answer::Items);
    // The server is there, but under a name the allow list does not hold.
    let listed = Grants {
        http_hosts: vec![format!("127.0.0.1:{}", upstream.port)],
        private_networks: true,
        ..Grants::default()
    };
    let plugin = pager(&rt, &upstream, "localhost", listed).await;
    let PluginFailure::Denied(why) = sync_failure(&plugin).await else {
        panic!("expected a denial");
    };
    assert!(
        why.contains(&format!(
            "localhost:{} is not on this plugin's allow list",
            upstream.port
        )),
        "{why}"
    );
    assert!(upstream.paths().is_empty());
}

/// The attributes of the one finding a reporting mode returns.
async fn report(plugin: &Plugin, mode: &str) -> BTreeMap<String, String> {
    let out = bind(plugin, mode, Grants::default())
        .detect(true, &ChangeSet::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let [finding] = out.findings.as_slice() else {
        panic!("expected one finding, got {}", out.findings.len());
    };
    finding
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_sees_no_files() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let target = Path::new("/tmp/org-mesh-misbehaving");
    let existed = target.exists();
    let got = report(&plugin, "fs").await;
    for attempt in ["read /etc/passwd", "write /tmp", "list /", "list ."] {
        let outcome = got.get(attempt).map(String::as_str).unwrap_or_default();
        assert!(outcome.starts_with("error: "), "{attempt}: {outcome}");
    }
    assert!(
        existed || !target.exists(),
        "the plugin wrote into the host's /tmp"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_sees_an_empty_environment() {
    let rt = runtime();
    let plugin = load(&rt).await;
    let got = report(&plugin, "env").await;
    assert_eq!(got.get("vars").map(String::as_str), Some(""));
    assert_eq!(got.get("args").map(String::as_str), Some(""));
    for var in ["HOME", "PATH"] {
        let outcome = got.get(var).map(String::as_str).unwrap_or_default();
        assert!(outcome.starts_with("unset: "), "{var}: {outcome}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_finds_none_of_an_earlier_calls_writes_in_memory() {
    let rt = runtime();
    let plugin = load(&rt).await;
    // Calls one after another reuse the same pool slot, so each one runs in
    // the memory the one before wrote into.
    for call in 0..4 {
        let got = report(&plugin, "remember").await;
        let field = |name: &str| got.get(name).map(String::as_str).unwrap_or_default();
        assert_eq!(field("earlier calls"), "0", "call {call}: {got:?}");
        assert_eq!(field("mark"), "0xfeed", "call {call}: {got:?}");
        assert_eq!(field("dirty scratch bytes"), "0", "call {call}: {got:?}");
    }
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
async fn a_plugin_in_two_folders_serves_from_the_first_and_names_the_other() {
    let plugins = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for folder in ["misbehaving", "misbehaving-old"] {
        let to = plugins.path().join(folder);
        std::fs::create_dir(&to).unwrap_or_else(|e| panic!("{e}"));
        for file in ["manifest.yaml", "misbehaving.wasm"] {
            std::fs::copy(dist().join(file), to.join(file)).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let loaded = Registry::load_dir(&runtime(), plugins.path())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        loaded.plugins.keys().collect::<Vec<_>>(),
        ["misbehaving"],
        "{:?}",
        loaded.failed
    );
    let failed: Vec<String> = loaded.failed.iter().map(ToString::to_string).collect();
    assert_eq!(
        failed,
        [format!(
            "plugin misbehaving is in two folders; {} serves and {} is ignored: remove one, \
             names must be unique",
            plugins.path().join("misbehaving").display(),
            plugins.path().join("misbehaving-old").display()
        )]
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
    // What it is instead, so the author sees the manifest's kind is wrong.
    assert!(
        err.ends_with("; it exports org-mesh:plugin/detector@0.2.0"),
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

/// A plugin folder holding the misbehaving plugin under `misbehaving/`,
/// and the copy it was taken from.
fn folder_with_misbehaving() -> (tempfile::TempDir, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = copy_plugin(|m| m);
    let good_dest = root.path().join("misbehaving");
    std::fs::create_dir(&good_dest).unwrap_or_else(|e| panic!("{e}"));
    for f in ["manifest.yaml", "misbehaving.wasm"] {
        std::fs::copy(good.path().join(f), good_dest.join(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    (root, good)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_folder_loads_what_it_can_and_reports_the_rest() {
    let (root, _good) = folder_with_misbehaving();
    let bad = root.path().join("broken");
    std::fs::create_dir(&bad).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(bad.join("manifest.yaml"), "name: broken\nversion: x\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let loaded = Registry::load_dir(&runtime(), root.path())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_nothing_wants_is_neither_compiled_nor_reported() {
    let (root, good) = folder_with_misbehaving();
    // A well-formed manifest over a component that cannot compile: loading
    // it would fail, so only not loading it passes.
    let unwanted = root.path().join("unwanted");
    std::fs::create_dir(&unwanted).unwrap_or_else(|e| panic!("{e}"));
    let manifest = std::fs::read_to_string(good.path().join("manifest.yaml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .replacen("name: misbehaving", "name: unwanted", 1);
    std::fs::write(unwanted.join("manifest.yaml"), manifest).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(unwanted.join("misbehaving.wasm"), b"\0asm not a component")
        .unwrap_or_else(|e| panic!("{e}"));

    let rt = runtime();
    let loaded = Registry::load_dir_where(&rt, root.path(), |name| name != "unwanted")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.plugins.keys().collect::<Vec<_>>(), ["misbehaving"]);
    assert!(loaded.failed.is_empty(), "{:?}", loaded.failed);
    assert_eq!(loaded.unused, ["unwanted"]);

    // Wanted, the same folder fails on the broken component.
    let all = Registry::load_dir(&rt, root.path())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.failed.len(), 1, "{:?}", all.failed);
    assert!(all.unused.is_empty());
}
