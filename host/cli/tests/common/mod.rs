//! What the tests of `org-mesh serve` share: starting the real binary on
//! 127.0.0.1 on `examples/serve/org-mesh.yaml`, fed by a fresh replay of
//! recorded GitHub traffic, and talking to it as its clients do.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of these helpers"
)]

pub mod backends;
pub mod messages;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hmac::{Hmac, Mac};
use org_mesh_harness::{GITHUB_TOKEN, replay, root};
use serde_json::Value;
use sha2::Sha256;

pub const GITHUB_SECRET: &str = "It's a Secret to Everybody";
pub const GITLAB_SECRET: &str = "gitlab-shared-secret";
pub const SCIM_TOKEN: &str = "okta-scim-bearer";
pub const VIEWER: &str = "viewer-token";
pub const ADMIN: &str = "admin-token";
pub const APPROVER: &str = "approver-token";

/// A running `org-mesh serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub state: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Ends the process at once, as a node failure would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The compiled-plugin cache the tests' services share, in the target
/// folder's scratch space.
pub fn shared_plugin_cache() -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Starts the service on the embedded twin and in-process cache, and waits
/// until it is ready.
pub async fn start() -> Server {
    start_with(&[]).await
}

/// Starts the service with extra settings in its environment, and waits
/// until it is ready: its first sync has read the whole recorded
/// organisation.
pub async fn start_with(settings: &[(&str, &str)]) -> Server {
    start_logging(settings, None).await
}

/// Starts the service as `start_with` does, writing its log (stdout and
/// stderr) to `log` instead of the test's output.
pub async fn start_logging(settings: &[(&str, &str)], log: Option<&Path>) -> Server {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    start_in(state, &[], settings, log).await
}

/// Starts the service again on the state folder of `stopped`, as a node
/// restarted after a failure is; `stopped` keeps an empty folder.
pub async fn start_again(stopped: &mut Server, settings: &[(&str, &str)]) -> Server {
    stopped.kill();
    let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state = std::mem::replace(&mut stopped.state, empty);
    start_in(state, &[], settings, None).await
}

/// Starts the service on `state` through `wrapper` (a program and its
/// arguments that end by running the command they are given), and waits
/// until it is ready.
pub async fn start_in(
    state: tempfile::TempDir,
    wrapper: &[&str],
    settings: &[(&str, &str)],
    log: Option<&Path>,
) -> Server {
    let server = spawn(state, wrapper, settings, log);
    let scenario = &server.1;
    let server = server.0;
    let http = client();
    for _ in 0..1200 {
        if let Ok(r) = http.get(format!("{}/readyz", server.base)).send().await
            && r.status() == 200
        {
            assert!(
                replay().pending(scenario).is_empty(),
                "the first sync read all of GitHub"
            );
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("org-mesh serve did not become ready within two minutes");
}

fn spawn(
    state: tempfile::TempDir,
    wrapper: &[&str],
    settings: &[(&str, &str)],
    log: Option<&Path>,
) -> (Server, org_mesh_harness::Scenario) {
    let scenario = replay().scenario("org-scan");
    let port = free_port();
    let binary = env!("CARGO_BIN_EXE_org-mesh");
    let mut command = match wrapper.split_first() {
        None => Command::new(binary),
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(binary);
            c
        }
    };
    if let Some(path) = log {
        let file =
            std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let copy = file.try_clone().unwrap_or_else(|e| panic!("{e}"));
        command.stdout(file).stderr(copy);
    }
    let child = command
        .args(["serve", "--config"])
        .arg(root().join("examples/serve/org-mesh.yaml"))
        .env("ORG_MESH_STATE_DIR", state.path())
        .env("ORG_MESH_SERVE__LISTEN", format!("127.0.0.1:{port}"))
        .env("ORG_MESH_SERVE__SYNC_INTERVAL_SECS", "0")
        // One compiled-plugin cache for every service the tests start:
        // compiling each plugin again per test costs minutes of CPU.
        .env("ORG_MESH_PLUGINS__CACHE_DIR", shared_plugin_cache())
        .env("ORG_MESH_SERVE__BODY_LIMIT_BYTES", "262144")
        .env("ORG_MESH_SERVE__PUBLIC_URL", "https://org-mesh.example.com")
        .env("GITHUB_API_URL", &scenario.api_url)
        .env("GITHUB_API_HOST", replay().host())
        .env("API_VIEWER_TOKEN", VIEWER)
        .env("API_ADMIN_TOKEN", ADMIN)
        .env("API_APPROVER_TOKEN", APPROVER)
        .env("GITHUB_TOKEN", GITHUB_TOKEN)
        .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
        .env("GITLAB_WEBHOOK_SECRET", GITLAB_SECRET)
        .env("OKTA_SCIM_TOKEN", SCIM_TOKEN)
        .env("ORG_MESH_LOG", "warn")
        .envs(settings.iter().copied())
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting org-mesh serve: {e}"));
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        state,
    };
    (server, scenario)
}

pub async fn get_json(http: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Waits until every accepted change is applied: pushed changes are
/// queued (SCIM changes are stored, then queued), and the answer to a push
/// comes before the twin has them.
pub async fn settled(http: &reqwest::Client, base: &str) {
    settled_as(http, base, VIEWER).await;
}

/// `settled`, asking with the viewer token `token`.
pub async fn settled_as(http: &reqwest::Client, base: &str, token: &str) {
    for _ in 0..300 {
        let (status, body) = get_json(http, &format!("{base}/api/v1/status"), Some(token)).await;
        assert_eq!(status, 200, "{body}");
        let scim_unsent = body["scim"]["unsent"].as_u64().unwrap_or(0);
        if scim_unsent == 0 && body["queue"]["depth"] == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("accepted changes were still waiting after 30 s");
}

pub fn sign(body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(GITHUB_SECRET.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts a GitHub delivery signed with the test secret.
pub async fn signed(
    http: &reqwest::Client,
    url: &str,
    event: &str,
    delivery: Option<&str>,
    body: String,
) -> reqwest::Response {
    let mut req = http
        .post(url)
        .header("x-github-event", event)
        .header("x-hub-signature-256", sign(body.as_bytes()))
        .header("content-type", "application/json");
    if let Some(id) = delivery {
        req = req.header("x-github-delivery", id);
    }
    req.body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

pub async fn metrics(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default()
}

/// The organisation the served configuration's GitHub connector is for.
pub const GITHUB_ORG: &str = "octokit-fixture-org";

/// GitHub's published webhook examples of the events the connector maps,
/// each made about [`GITHUB_ORG`] where it names an organisation: the
/// examples come from several, and the connector records only its own.
pub fn webhook_examples() -> Vec<(String, Value)> {
    let path = root().join(
        "conformance/replay/node_modules/@octokit/webhooks-examples/api.github.com/index.json",
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}: run .ci/setup", path.display()));
    let all: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let wanted = [
        "organization",
        "membership",
        "member",
        "team",
        "repository",
        "branch_protection_rule",
        "issues",
        "issue_comment",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "push",
    ];
    all.as_array()
        .into_iter()
        .flatten()
        .filter(|e| wanted.contains(&e["name"].as_str().unwrap_or("")))
        .flat_map(|e| {
            let name = e["name"].as_str().unwrap_or("").to_string();
            e["examples"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |mut x| {
                    if let Some(org) = x.get_mut("organization").filter(|o| o.is_object()) {
                        org["login"] = Value::from(GITHUB_ORG);
                    }
                    (name.clone(), x)
                })
        })
        .collect()
}

/// One delivery of a burst: its id, the person it adds and its body.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub login: String,
    pub body: String,
}

/// `n` member_added deliveries, each for a different person, built from
/// GitHub's published example: ids `<ids>-<i>`, logins `<logins>-<i>`,
/// user ids from `first_user_id` on.
pub fn member_burst(ids: &str, logins: &str, first_user_id: usize, n: usize) -> Vec<Delivery> {
    let (_, example) = webhook_examples()
        .into_iter()
        .find(|(event, p)| event == "organization" && p["action"] == "member_added")
        .unwrap_or_else(|| panic!("no member_added example"));
    (0..n)
        .map(|i| {
            let login = format!("{logins}-{i}");
            let mut payload = example.clone();
            payload["membership"]["user"]["login"] = Value::from(login.clone());
            payload["membership"]["user"]["id"] = Value::from(first_user_id + i);
            Delivery {
                id: format!("{ids}-{i}"),
                login,
                body: payload.to_string(),
            }
        })
        .collect()
}

/// An account of the twin as the API shows it, once every accepted change
/// is applied.
pub async fn account(http: &reqwest::Client, base: &str, key: &str) -> Value {
    settled(http, base).await;
    let (status, body) = get_json(
        http,
        &format!("{base}/api/v1/entities/Account/{key}"),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 200, "{key}: {body}");
    body
}

/// Copies a folder tree, following nothing special: plain files only.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
        }
    }
}

/// Replaces `path` as editors do: the new content goes to a temporary file
/// beside it, which is then renamed over it.
pub fn save(path: &Path, content: &[u8]) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_else(|| panic!("{}", path.display()));
    let temporary = path.with_file_name(format!(".{name}.swp"));
    std::fs::write(&temporary, content).unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(&temporary, path).unwrap_or_else(|e| panic!("{e}"));
}

/// A component with a custom section appended: a different file, and so a
/// different version, that behaves exactly as the original.
pub fn rebuilt(component: &[u8], label: &str) -> Vec<u8> {
    let name = b"org-mesh-test-build";
    let mut payload = vec![u8::try_from(name.len()).unwrap_or(0)];
    payload.extend_from_slice(name);
    payload.extend_from_slice(label.as_bytes());
    let mut out = component.to_vec();
    out.push(0);
    out.push(u8::try_from(payload.len()).unwrap_or_else(|_| panic!("label too long")));
    out.extend_from_slice(&payload);
    out
}

/// What a watcher would call the policy folder's version.
pub fn folder_version(dir: &Path) -> String {
    org_mesh_watch::content_hash(dir)
        .map(|(hash, _)| hash.to_string())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Copies of the built plugins and the shipped policies a service watches,
/// so a test can change them.
pub struct Copies {
    pub plugins: std::path::PathBuf,
    pub policies: std::path::PathBuf,
    _work: tempfile::TempDir,
}

/// Starts the service on copies of the plugin and policy folders.
pub async fn start_on_copies(settings: &[(&str, &str)]) -> (Server, Copies) {
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let plugins = work.path().join("plugins");
    let policies = work.path().join("policies");
    copy_tree(&root().join("plugins/dist"), &plugins);
    copy_tree(&root().join("policies"), &policies);
    let (plugins_dir, policies_dir) = (
        plugins.display().to_string(),
        policies.display().to_string(),
    );
    let mut all = vec![
        ("ORG_MESH_PLUGINS__DIRS", plugins_dir.as_str()),
        ("ORG_MESH_POLICIES__DIR", policies_dir.as_str()),
    ];
    all.extend_from_slice(settings);
    let server = start_with(&all).await;
    (
        server,
        Copies {
            plugins,
            policies,
            _work: work,
        },
    )
}
