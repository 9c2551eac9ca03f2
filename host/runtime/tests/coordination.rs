//! What plugins keep in the runtime's coordination backend.
//!
//! Key-value state: the `kv` import reads and writes the backend, scoped by
//! plugin instance (`conformance/misbehaving` in its `kv` mode counts its
//! calls there).
//!
//! Rate-limit budgets: what an upstream says about its budget is recorded
//! there, and while it is spent the host answers a plugin's request with a
//! 429 of its own instead of sending it (`conformance/pager`, the SDK's
//! REST client, against a scripted HTTP server on 127.0.0.1 that counts
//! what reaches it).
//!
//! Both plugins are built by `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use org_mesh_cache::memory::MemoryCoordination;
use org_mesh_cache::{Budget, CacheError, Claim, Coordination, LockToken};
use org_mesh_model::ChangeSet;
use org_mesh_runtime::{
    Failure, Grants, Manifest, Plugin, PluginFailure, Runtime, RuntimeOptions, SecretSource,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One scripted answer: status, headers, body.
type Answer = (u16, Vec<(String, String)>, String);

/// An HTTP/1.1 server answering each request with the next scripted
/// answer (the last one once the script runs out), one per connection.
struct Upstream {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl Upstream {
    async fn start(script: Vec<Answer>) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("binding the upstream: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let Some((status, headers, body)) = script.get(n).or(script.last()) else {
                    continue;
                };
                let mut response = format!(
                    "HTTP/1.1 {status} Scripted\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    response.push_str(&format!("{name}: {value}\r\n"));
                }
                response.push_str("\r\n");
                response.push_str(body);
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        Upstream { port, requests }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn answer(status: u16, headers: &[(&str, String)], body: &str) -> Answer {
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    headers.push(("content-type".into(), "application/json".into()));
    (status, headers, body.to_string())
}

fn epoch_secs(after: Duration) -> String {
    (SystemTime::now() + after)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        .to_string()
}

fn runtime(coordination: Arc<dyn Coordination>) -> Runtime {
    Runtime::new(
        RuntimeOptions::default(),
        coordination,
        None,
        &prometheus::Registry::new(),
    )
    .unwrap_or_else(|e| panic!("{e:#}"))
}

async fn load(rt: &Runtime, name: &str) -> Plugin {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance/dist")
        .join(name)
        .join("manifest.yaml");
    assert!(
        path.is_file(),
        "{} is missing: run .ci/build-plugins",
        path.display()
    );
    let manifest = Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    rt.load(manifest).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The `misbehaving` detector bound as `instance`, counting its calls in
/// the key-value store.
async fn counter(rt: &Runtime, instance: &str) -> Plugin {
    let grants = Grants {
        kv: true,
        ..Grants::default()
    };
    load(rt, "misbehaving")
        .await
        .bind(instance, &json!({"mode": "kv"}), grants)
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// The call count `counter` reported, as the key of its finding.
async fn count(plugin: &Plugin) -> String {
    let out = plugin
        .detect(true, &ChangeSet::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    match out.findings.as_slice() {
        [finding] => finding.subject.key.clone(),
        other => panic!("expected one finding, got {}", other.len()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_state_lives_in_the_coordination_backend_one_scope_per_instance() {
    let coordination = Arc::new(MemoryCoordination::default());
    let rt = runtime(coordination.clone());
    let first = counter(&rt, "first").await;
    assert_eq!(count(&first).await, "test:1");
    assert_eq!(count(&first).await, "test:2");
    let second = counter(&rt, "second").await;
    assert_eq!(
        count(&second).await,
        "test:1",
        "another instance, another scope"
    );
    assert_eq!(
        coordination
            .kv_get("first", "calls")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(b"2".to_vec())
    );

    // Another runtime on the same backend, as another replica would be,
    // sees the same state.
    let replica = runtime(coordination.clone());
    assert_eq!(count(&counter(&replica, "first").await).await, "test:3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kv_backend_failure_reaches_the_plugin_as_an_error() {
    let rt = runtime(Arc::new(Unreachable));
    let err = counter(&rt, "first")
        .await
        .detect(true, &ChangeSet::default())
        .await
        .err()
        .unwrap_or_else(|| panic!("the call should fail"));
    let Failure::Plugin(PluginFailure::Upstream(why)) = &err.failure else {
        panic!("expected the plugin to report the backend, got {err}");
    };
    assert!(why.contains("connection refused"), "{why}");
}

async fn pager(rt: &Runtime, instance: &str, upstream: &Upstream) -> Plugin {
    let plugin = load(rt, "pager").await;
    static TOKEN: std::sync::OnceLock<tempfile::NamedTempFile> = std::sync::OnceLock::new();
    let token = TOKEN.get_or_init(|| {
        let file = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(file.path(), "test-token\n").unwrap_or_else(|e| panic!("{e}"));
        file
    });
    let grants = Grants {
        http_hosts: vec![upstream.host()],
        secrets: BTreeMap::from([("token".to_string(), SecretSource::File(token.path().into()))]),
        ..Grants::default()
    };
    let config = json!({"api_url": format!("http://{}", upstream.host()), "path": "/items"});
    plugin
        .bind(instance, &config, grants)
        .unwrap_or_else(|e| panic!("{e:?}"))
}

const ONE_ITEM: &str = r#"[{"number": 1}]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_is_answered_by_the_host_without_contacting_the_upstream() {
    let upstream = Upstream::start(vec![answer(
        200,
        &[
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", epoch_secs(Duration::from_secs(3600))),
        ],
        ONE_ITEM,
    )])
    .await;
    let coordination = Arc::new(MemoryCoordination::default());
    let rt = runtime(coordination.clone());
    let first = pager(&rt, "pager", &upstream).await;

    let out = first
        .sync(None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.batch.nodes.len(), 1, "the last request of the budget");
    assert_eq!(upstream.requests(), 1);
    let scope = format!("pager@{}", upstream.host());
    let recorded = coordination
        .budget(&scope)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no budget recorded under {scope}"));
    assert_eq!(recorded.remaining, 0);

    let err = first
        .sync(None, &[])
        .await
        .err()
        .unwrap_or_else(|| panic!("a spent budget must not give a result"));
    let Failure::Plugin(PluginFailure::RateLimited(secs)) = err.failure else {
        panic!("expected the plugin to report a rate limit, got {err}");
    };
    assert!(
        (3500..=3601).contains(&secs),
        "the client was told to come back at the reset, not {secs} s"
    );
    assert_eq!(upstream.requests(), 1, "nothing reached the upstream");

    // Another instance may hold another credential: its budget is its own.
    let second = pager(&rt, "pager-2", &upstream).await;
    second
        .sync(None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(upstream.requests(), 2);
}

/// GitHub's secondary limit: a 403 with `retry-after`. The SDK's client
/// waits the second and asks again; by then the recorded budget has reset,
/// so the retry goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_limit_is_waited_out_and_the_retry_goes_out() {
    let upstream = Upstream::start(vec![
        answer(
            403,
            &[
                ("retry-after", "1".into()),
                ("x-ratelimit-remaining", "4000".into()),
                ("x-ratelimit-reset", epoch_secs(Duration::from_secs(3600))),
            ],
            r#"{"message": "You have exceeded a secondary rate limit."}"#,
        ),
        answer(
            200,
            &[
                ("x-ratelimit-remaining", "3999".into()),
                ("x-ratelimit-reset", epoch_secs(Duration::from_secs(3600))),
            ],
            ONE_ITEM,
        ),
    ])
    .await;
    let coordination = Arc::new(MemoryCoordination::default());
    let rt = runtime(coordination.clone());
    let plugin = pager(&rt, "pager", &upstream).await;
    let out = plugin
        .sync(None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.batch.nodes.len(), 1);
    assert_eq!(upstream.requests(), 2);
    let budget = coordination
        .budget(&format!("pager@{}", upstream.host()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(budget.map(|b| b.remaining), Some(3999));
}

/// A coordination backend that fails every call, as Redis does while it
/// is unreachable.
#[derive(Debug)]
struct Unreachable;

fn down<T>() -> Result<T, CacheError> {
    Err(CacheError::Backend {
        backend: "unreachable",
        message: "connection refused".into(),
    })
}

#[async_trait::async_trait]
impl Coordination for Unreachable {
    fn backend(&self) -> &'static str {
        "unreachable"
    }
    async fn ping(&self) -> Result<(), CacheError> {
        down()
    }
    async fn claim_delivery(&self, _: &str, _: Duration) -> Result<Claim, CacheError> {
        down()
    }
    async fn finish_delivery(&self, _: &str, _: Duration) -> Result<(), CacheError> {
        down()
    }
    async fn release_delivery(&self, _: &str) -> Result<(), CacheError> {
        down()
    }
    async fn kv_get(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, CacheError> {
        down()
    }
    async fn kv_set(&self, _: &str, _: &str, _: &[u8]) -> Result<(), CacheError> {
        down()
    }
    async fn kv_delete(&self, _: &str, _: &str) -> Result<(), CacheError> {
        down()
    }
    async fn try_lock(&self, _: &str, _: Duration) -> Result<Option<LockToken>, CacheError> {
        down()
    }
    async fn extend_lock(&self, _: &str, _: &LockToken, _: Duration) -> Result<bool, CacheError> {
        down()
    }
    async fn unlock(&self, _: &str, _: &LockToken) -> Result<bool, CacheError> {
        down()
    }
    async fn record_budget(&self, _: &str, _: Budget) -> Result<(), CacheError> {
        down()
    }
    async fn budget(&self, _: &str) -> Result<Option<Budget>, CacheError> {
        down()
    }
    async fn bump_twin_version(&self) -> Result<u64, CacheError> {
        down()
    }
    async fn twin_version(&self) -> Result<u64, CacheError> {
        down()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_out_when_the_budget_backend_is_unreachable() {
    let upstream = Upstream::start(vec![answer(
        200,
        &[
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", epoch_secs(Duration::from_secs(3600))),
        ],
        ONE_ITEM,
    )])
    .await;
    let rt = runtime(Arc::new(Unreachable));
    let plugin = pager(&rt, "pager", &upstream).await;
    for round in 1..=2 {
        let out = plugin
            .sync(None, &[])
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(out.batch.nodes.len(), 1);
        assert_eq!(upstream.requests(), round, "the budget is advisory");
    }
}
