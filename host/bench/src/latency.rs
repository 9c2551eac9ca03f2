//! Request latency of running servers on loopback: `org-mesh serve` (the
//! release binary, embedded backend, a fresh state folder) beside the
//! `scim2-server` reference SCIM server for SCIM as Okta sends it, and
//! org-mesh alone from a signed GitHub webhook to the finding it raises.
//!
//! Both servers are real processes on free ports of 127.0.0.1, stopped
//! when dropped. Users are made from their index alone, so that both
//! servers hold the same people and a request names the same person on
//! either.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hmac::{Hmac, Mac as _};
use serde_json::{Value as Json, json};
use sha2::Sha256;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::http::{Client, Response, encode};
use crate::stats::Samples;

pub const SCIM_TOKEN: &str = "bench-scim-token";
pub const VIEWER_TOKEN: &str = "bench-viewer-token";
pub const WEBHOOK_SECRET: &str = "bench-webhook-secret";
/// The organisation the bench's GitHub connector is for.
const GITHUB_ORG: &str = "octokit-fixture-org";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// Requests of one timed run waiting or in flight at once; past it a
/// request waits for a place, and the wait counts in its latency.
const MAX_IN_FLIGHT: usize = 64;
/// Startup includes compiling the plugins when the cache is cold.
const START_LIMIT: Duration = Duration::from_secs(300);

/// The `org-mesh` binary: `ORG_MESH_BENCH_BIN`, as `.ci/bench` sets it.
pub fn org_mesh_binary() -> Option<PathBuf> {
    std::env::var_os("ORG_MESH_BENCH_BIN").map(PathBuf::from)
}

/// `scim2-server`: `ORG_MESH_BENCH_SCIM2_SERVER`, or where `.ci/setup`
/// installs it.
pub fn scim2_server_binary() -> PathBuf {
    std::env::var_os("ORG_MESH_BENCH_SCIM2_SERVER").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/org-mesh/bench-venv/bin/scim2-server")
        },
        PathBuf::from,
    )
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Which server a [`Server`] is: the paths and answers differ slightly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    OrgMesh,
    Scim2Server,
}

/// A server process on loopback, stopped when dropped.
#[derive(Debug)]
pub struct Server {
    pub kind: Kind,
    pub client: Arc<Client>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `org-mesh serve` on a fresh embedded twin with the shipped plugins
    /// and policies, a SCIM connector `okta`, a GitHub connector `github`
    /// that only receives webhooks, and identity-drift as the detector.
    /// Compiled plugins are kept in `plugin_cache` between runs.
    pub async fn org_mesh(bin: &Path, plugin_cache: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config = dir.path().join("org-mesh.yaml");
        std::fs::write(&config, org_mesh_config(dir.path(), plugin_cache, port)?)?;
        let mut command = Command::new(bin);
        command
            .args(["serve", "--config"])
            .arg(&config)
            .env("ORG_MESH_LOG", "warn")
            .env("BENCH_SCIM_TOKEN", SCIM_TOKEN)
            .env("BENCH_VIEWER_TOKEN", VIEWER_TOKEN)
            .env("BENCH_WEBHOOK_SECRET", WEBHOOK_SECRET);
        Self::start(Kind::OrgMesh, command, dir, port, "/readyz").await
    }

    /// `scim2-server` as its command line starts it: in memory, one
    /// bearer token, the default schemas and service provider
    /// configuration.
    pub async fn scim2_server(bin: &Path) -> anyhow::Result<Self> {
        if !bin.is_file() {
            bail!("no scim2-server at {} (run .ci/setup)", bin.display());
        }
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut command = Command::new(bin);
        command
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
            .args(["--bearer-token", SCIM_TOKEN]);
        Self::start(
            Kind::Scim2Server,
            command,
            dir,
            port,
            "/v2/ServiceProviderConfig",
        )
        .await
    }

    /// Runs `command` with its output in a log file in `dir` (a pipe nobody
    /// reads would stall it) and waits until it answers `ready_path`.
    async fn start(
        kind: Kind,
        mut command: Command,
        dir: tempfile::TempDir,
        port: u16,
        ready_path: &str,
    ) -> anyhow::Result<Self> {
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {:?}", command.get_program()))?;
        let server = Self {
            kind,
            client: Arc::new(Client::new(SocketAddr::from(([127, 0, 0, 1], port)))),
            child,
            _dir: dir,
        };
        server.ready(ready_path).await?;
        Ok(server)
    }

    async fn ready(&self, path: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        let auth = format!("Bearer {SCIM_TOKEN}");
        while started.elapsed() < START_LIMIT {
            if let Ok(r) = self
                .client
                .send("GET", path, &[("authorization", &auth)], b"")
                .await
                && r.status == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "{:?} did not answer {path} within {START_LIMIT:?}; its log is in {}",
            self.kind,
            self._dir.path().display()
        )
    }

    /// Where its SCIM collections are.
    pub fn scim_base(&self) -> &'static str {
        match self.kind {
            Kind::OrgMesh => "/scim/v2/okta",
            Kind::Scim2Server => "/v2",
        }
    }

    async fn scim(&self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<Response> {
        let auth = format!("Bearer {SCIM_TOKEN}");
        self.client
            .send(
                method,
                path,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/scim+json"),
                    ("accept", "application/scim+json"),
                ],
                body,
            )
            .await
    }

    /// Creates user `index` as Okta assigns one; its id.
    pub async fn create(&self, index: usize) -> anyhow::Result<String> {
        let path = format!("{}/Users", self.scim_base());
        let answer = self
            .scim("POST", &path, user(index).to_string().as_bytes())
            .await?;
        if answer.status != 201 {
            bail!(
                "{:?}: POST {path} answered {}: {}",
                self.kind,
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        answer.json()?["id"]
            .as_str()
            .map(str::to_owned)
            .context("a created user without an id")
    }

    /// Creates users `indices` with SCIM bulk requests of up to `per_request`
    /// operations; their ids, in order.
    pub async fn create_bulk(
        &self,
        indices: std::ops::Range<usize>,
        per_request: usize,
    ) -> anyhow::Result<Vec<String>> {
        let path = format!("{}/Bulk", self.scim_base());
        let mut ids = Vec::with_capacity(indices.len());
        let all: Vec<usize> = indices.collect();
        for chunk in all.chunks(per_request.max(1)) {
            let operations: Vec<Json> = chunk
                .iter()
                .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"), "data": user(*i)}))
                .collect();
            let request =
                json!({"schemas": [BULK_SCHEMA], "failOnErrors": 1, "Operations": operations});
            let answer = self
                .scim("POST", &path, request.to_string().as_bytes())
                .await?;
            let body = answer.json()?;
            let results = body["Operations"].as_array().context("no Operations")?;
            if answer.status != 200 || results.len() != chunk.len() {
                bail!("{:?}: bulk answered {}: {body}", self.kind, answer.status);
            }
            for result in results {
                let location = result["location"].as_str().unwrap_or_default();
                if result["status"] != "201" || location.is_empty() {
                    bail!("{:?}: bulk operation failed: {result}", self.kind);
                }
                ids.push(location.rsplit('/').next().unwrap_or_default().to_owned());
            }
        }
        Ok(ids)
    }

    /// The service provider configuration: a SCIM answer with the token
    /// checked and no user read, so it times everything around the store.
    pub async fn service_provider_config(&self) -> anyhow::Result<()> {
        let path = format!("{}/ServiceProviderConfig", self.scim_base());
        let answer = self.scim("GET", &path, b"").await?;
        if answer.status != 200 {
            bail!("{:?}: GET {path} answered {}", self.kind, answer.status);
        }
        Ok(())
    }

    /// Okta's look-up before an assignment: the list response.
    pub async fn find(&self, user_name: &str) -> anyhow::Result<Json> {
        let answer = self
            .scim("GET", &filter_path(self.scim_base(), user_name), b"")
            .await?;
        if answer.status != 200 {
            bail!("{:?}: filter answered {}", self.kind, answer.status);
        }
        answer.json()
    }

    /// Okta's deactivation (or reactivation): a replace without a path.
    pub async fn set_active(&self, id: &str, active: bool) -> anyhow::Result<()> {
        let path = format!("{}/Users/{id}", self.scim_base());
        let answer = self
            .scim("PATCH", &path, active_patch(active).as_bytes())
            .await?;
        if !matches!(answer.status, 200 | 204) {
            bail!(
                "{:?}: PATCH answered {}: {}",
                self.kind,
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        Ok(())
    }

    pub async fn get_user(&self, id: &str) -> anyhow::Result<Json> {
        let path = format!("{}/Users/{id}", self.scim_base());
        let answer = self.scim("GET", &path, b"").await?;
        if answer.status != 200 {
            bail!("{:?}: GET {path} answered {}", self.kind, answer.status);
        }
        answer.json()
    }

    /// org-mesh only: waits until every accepted change is in the twin, so
    /// that a timed run does not share the machine with a load's backlog,
    /// or until `limit`; how many changes are still stored or queued (0
    /// when settled).
    pub async fn settled(&self, limit: Duration) -> anyhow::Result<u64> {
        let started = Instant::now();
        let auth = format!("Bearer {VIEWER_TOKEN}");
        loop {
            let status = self
                .client
                .send("GET", "/api/v1/status", &[("authorization", &auth)], b"")
                .await?
                .json()?;
            let unsent = status["scim"]["unsent"]
                .as_u64()
                .with_context(|| format!("no SCIM count in {status}"))?;
            let depth = status["queue"]["depth"]
                .as_u64()
                .with_context(|| format!("no queue depth in {status}"))?
                + unsent;
            if depth == 0 || started.elapsed() > limit {
                return Ok(depth);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// org-mesh only: posts a signed GitHub delivery; the status.
    pub async fn deliver(&self, id: &str, event: &str, body: &str) -> anyhow::Result<u16> {
        let signature = sign(body.as_bytes())?;
        let answer = self
            .client
            .send(
                "POST",
                "/webhooks/github/github",
                &[
                    ("x-github-event", event),
                    ("x-github-delivery", id),
                    ("x-hub-signature-256", &signature),
                    ("content-type", "application/json"),
                ],
                body.as_bytes(),
            )
            .await?;
        Ok(answer.status)
    }

    /// org-mesh only: the current findings about `subject`.
    pub async fn findings_about(&self, subject: &str) -> anyhow::Result<Vec<Json>> {
        let auth = format!("Bearer {VIEWER_TOKEN}");
        let path = format!("/api/v1/findings?subject={}", encode(subject));
        let answer = self
            .client
            .send("GET", &path, &[("authorization", &auth)], b"")
            .await?;
        if answer.status != 200 {
            bail!("findings answered {}", answer.status);
        }
        Ok(answer.json()?["findings"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

fn org_mesh_config(dir: &Path, plugin_cache: &Path, port: u16) -> anyhow::Result<String> {
    let root = org_mesh_harness::root();
    let config = json!({
        "state_dir": dir.join("state"),
        "plugins": {"dirs": [root.join("plugins/dist")], "cache_dir": plugin_cache},
        "policies": {"dir": root.join("policies")},
        "serve": {
            "listen": format!("127.0.0.1:{port}"),
            "sync_interval_secs": 0,
            "tokens": [{"name": "bench", "role": "viewer", "secret": {"env": "BENCH_VIEWER_TOKEN"}}],
        },
        "connectors": [
            {
                "name": "github",
                "plugin": "github-connector",
                // Never pulled: it only turns webhook deliveries into records.
                "config": {"org": GITHUB_ORG},
                "sync": false,
                "webhook": {"provider": "github", "secret": {"env": "BENCH_WEBHOOK_SECRET"}},
            },
            {
                "name": "okta",
                "plugin": "scim-connector",
                "config": {"provider": "okta"},
                "sync": false,
                "scim": {"token": {"env": "BENCH_SCIM_TOKEN"}},
            },
        ],
        // An instance without `config` is checked as `null` against the
        // plugin's object schema and left out.
        "detectors": [{
            "name": "identity-drift",
            "plugin": "identity-drift",
            "config": {},
            "grants": {"graph": true},
        }],
    });
    Ok(serde_json::to_string_pretty(&config)?)
}

/// The `userName` of user `index`.
pub fn user_name(index: usize) -> String {
    format!("person{index:06}@example.com")
}

/// User `index` as Okta's assignment posts it: core attributes, Okta's own
/// id as `externalId`, no groups, a password.
pub fn user(index: usize) -> Json {
    let given = format!("Given{index}");
    let family = format!("Family{}", index % 997);
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name(index),
        "externalId": format!("00u{index:017}"),
        "name": {"givenName": given, "familyName": family},
        "emails": [{"value": user_name(index), "type": "work", "primary": true}],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "active": true,
        "groups": [],
        "password": "not-kept-by-either",
    })
}

/// Okta's look-up of a user by name, percent-encoded as Okta sends it.
pub fn filter_path(base: &str, user_name: &str) -> String {
    let filter = format!("userName eq \"{user_name}\"");
    format!(
        "{base}/Users?filter={}&startIndex=1&count=100",
        encode(&filter)
    )
}

/// Okta's (de)activation body: one `replace` without a path.
pub fn active_patch(active: bool) -> String {
    json!({
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "value": {"active": active}}],
    })
    .to_string()
}

/// The attributes both servers keep from Okta's POST, for comparing what
/// each returns; ids and `meta` are each server's own.
pub fn comparable(user: &Json) -> Json {
    let mut kept = serde_json::Map::new();
    for name in [
        "userName",
        "externalId",
        "name",
        "displayName",
        "locale",
        "active",
        "emails",
    ] {
        if let Some(value) = user.get(name) {
            kept.insert(name.to_owned(), value.clone());
        }
    }
    Json::Object(kept)
}

/// Checks that both servers answer Okta's look-up of `index` with one user
/// and the same attributes, and that a deactivation lands on both. Returns
/// the user as both show it.
pub async fn agree(
    ours: &Server,
    peer: &Server,
    index: usize,
    ids: (&str, &str),
) -> anyhow::Result<Json> {
    let name = user_name(index);
    let mut seen = Vec::new();
    for server in [ours, peer] {
        let list = server.find(&name).await?;
        if list["totalResults"] != 1 {
            bail!("{:?}: {name} matched {}", server.kind, list["totalResults"]);
        }
        seen.push(comparable(&list["Resources"][0]));
    }
    if seen[0] != seen[1] {
        bail!("the servers disagree on {name}: {} vs {}", seen[0], seen[1]);
    }
    if seen[0] != comparable(&user(index)) {
        bail!("{name} came back changed: {}", seen[0]);
    }
    let missing = format!("absent-{name}");
    for server in [ours, peer] {
        let list = server.find(&missing).await?;
        if list["totalResults"] != 0 {
            bail!("{:?}: {missing} matched", server.kind);
        }
    }
    for (server, id) in [(ours, ids.0), (peer, ids.1)] {
        server.set_active(id, false).await?;
        let after = server.get_user(id).await?;
        if after["active"] != false {
            bail!("{:?}: PATCH did not deactivate: {after}", server.kind);
        }
        server.set_active(id, true).await?;
    }
    Ok(seen.swap_remove(0))
}

/// The outcome of one timed run at a fixed rate.
#[derive(Debug, Default)]
pub struct Run {
    /// Latency of each request answered in time, from when it was sent.
    pub samples: Samples,
    /// Requests that failed, and the first failure.
    pub failed: usize,
    pub first_failure: Option<String>,
    /// Requests not answered (or not sent) before the run's limit.
    pub late: usize,
}

/// Sends `count` requests at `rate` per second, each due at its slot
/// whether or not earlier ones were answered, and times each from when it
/// was sent to its answer, waits for a free connection included, so that
/// a stalled server is charged for the requests that queued behind the
/// stall. Ends after `limit` at most.
///
/// A request counts as sent when the sending loop wakes for it, not at its
/// due time: tokio's timers fire on a millisecond tick, so a sleep until
/// the due time wakes up to a millisecond late, and timing from the due
/// time charged that to the server (every sample of either server carried
/// it). The loop never waits for an answer, so how late it wakes is the
/// client's doing, not the server's.
pub async fn at_rate<F, Fut>(rate: f64, count: usize, limit: Duration, call: F) -> Run
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let start = tokio::time::Instant::now();
    let deadline = start + limit;
    let places = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let mut run = Run::default();
    for i in 0..count {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if due >= deadline {
            run.late += count - i;
            break;
        }
        tokio::time::sleep_until(due).await;
        let sent = Instant::now();
        let request = call(i);
        let places = places.clone();
        tasks.spawn(async move {
            let outcome = tokio::time::timeout_at(deadline, async {
                let _place = places.acquire_owned().await?;
                request.await
            })
            .await;
            (outcome, sent.elapsed())
        });
    }
    let mut samples = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((Ok(Ok(())), took)) => samples.push(took),
            Ok((Ok(Err(e)), _)) => {
                run.failed += 1;
                run.first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
            Ok((Err(_), _)) => run.late += 1,
            Err(e) => {
                run.failed += 1;
                run.first_failure.get_or_insert_with(|| e.to_string());
            }
        }
    }
    run.samples = Samples::new(samples);
    run
}

/// GitHub's published `member_added` example with the member replaced: a
/// new account joining the organisation, which identity-drift reports as
/// linked to no person. The example's membership is a pending invitation,
/// which is no access yet and raises nothing, so it is made active.
pub fn member_added(login: &str, user_id: u64) -> anyhow::Result<String> {
    let path = org_mesh_harness::root().join(
        "conformance/replay/node_modules/@octokit/webhooks-examples/api.github.com/index.json",
    );
    let all: Json = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("{}: run .ci/setup", path.display()))?,
    )?;
    let example = all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["name"] == "organization")
        .flat_map(|e| e["examples"].as_array().cloned().unwrap_or_default())
        .find(|x| x["action"] == "member_added")
        .context("no member_added example")?;
    let mut payload = example;
    // The example's organisation is not the one the bench's connector is
    // for, and the connector records only its own.
    payload["organization"]["login"] = Json::from(GITHUB_ORG);
    payload["membership"]["user"]["login"] = Json::from(login);
    payload["membership"]["user"]["id"] = Json::from(user_id);
    payload["membership"]["state"] = Json::from("active");
    Ok(payload.to_string())
}

/// The subject of the finding a new unlinked member raises.
pub fn account_subject(login: &str) -> String {
    format!("Account(github:{login})")
}

/// `X-Hub-Signature-256` for `body` under the bench's webhook secret.
pub fn sign(body: &[u8]) -> anyhow::Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes())?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}
