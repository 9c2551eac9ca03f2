//! Secrets stay secret: the service runs with debug logging and distinctive
//! values for every secret it reads (API tokens, webhook secrets, the SCIM
//! token, a plugin's token), takes ordinary and refused traffic, and none
//! of the values shows in its log, in any answer, or in the configuration
//! plugins see, which reach secrets only through their secrets capability.
//!
//! Run with `cargo test -p org-mesh --test secrets`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod common;

use hmac::{Hmac, Mac};
use org_mesh_harness::root;
use serde_json::{Value, json};
use sha2::Sha256;

use common::{client, settled_as, start_logging};

const VIEWER: &str = "vw-3c1f0e8a-viewer-secret-tok";
const APPROVER: &str = "ap-5d9b7a21-approver-secret-tok";
const ADMIN: &str = "ad-8e4c2f77-admin-secret-tok";
const GITHUB_HOOK: &str = "gh-hook-71aa93e0-secret";
const GITLAB_HOOK: &str = "gl-hook-0b6d4c19-secret";
const SCIM: &str = "scim-2f8e5a4c-bearer-secret";
/// The GitHub plugin's API token, reached through its secrets capability;
/// the recorded replay answers this token only.
const PLUGIN: &str = org_mesh_harness::GITHUB_TOKEN;

const ALL: [&str; 7] = [
    VIEWER,
    APPROVER,
    ADMIN,
    GITHUB_HOOK,
    GITLAB_HOOK,
    SCIM,
    PLUGIN,
];

/// The variable the shipped configuration reads each secret from.
const VARIABLES: [(&str, &str); 7] = [
    ("API_VIEWER_TOKEN", VIEWER),
    ("API_APPROVER_TOKEN", APPROVER),
    ("API_ADMIN_TOKEN", ADMIN),
    ("GITHUB_WEBHOOK_SECRET", GITHUB_HOOK),
    ("GITLAB_WEBHOOK_SECRET", GITLAB_HOOK),
    ("OKTA_SCIM_TOKEN", SCIM),
    ("GITHUB_TOKEN", PLUGIN),
];

/// The secrets `text` shows, each by name of its value.
fn leaked(text: &str) -> Vec<&'static str> {
    ALL.into_iter().filter(|s| text.contains(s)).collect()
}

fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Every answer the test got, headers and body, to search for secrets.
#[derive(Default)]
struct Seen {
    answers: Vec<(String, u16, String)>,
}

impl Seen {
    async fn send(&mut self, what: &str, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = resp.status().as_u16();
        let headers = format!("{:?}", resp.headers());
        let body = resp.text().await.unwrap_or_default();
        self.answers
            .push((what.to_string(), status, format!("{headers}\n{body}")));
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_or_any_answer() {
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = work.path().join("serve.log");
    let mut settings = vec![("ORG_MESH_LOG", "debug")];
    settings.extend(VARIABLES);
    let mut server = start_logging(&settings, Some(&log)).await;
    let http = client();
    let base = server.base.clone();
    let api = format!("{base}/api/v1");
    let mut seen = Seen::default();

    for (token, route) in [
        (VIEWER, "status"),
        (VIEWER, "plugins"),
        (VIEWER, "policies"),
        (VIEWER, "findings"),
        (VIEWER, "proposals"),
        (VIEWER, "reloads"),
        (VIEWER, "entities?label=Account"),
        (APPROVER, "whoami"),
        (ADMIN, "whoami"),
        (VIEWER, "openapi.json"),
    ] {
        let (status, body) = seen
            .send(route, http.get(format!("{api}/{route}")).bearer_auth(token))
            .await;
        assert_eq!(status, 200, "{route}: {body}");
    }
    // A sync makes the plugin use its token on outgoing requests, which
    // debug logging of the HTTP stack would show if anything did.
    seen.send("sync", http.post(format!("{api}/sync")).bearer_auth(ADMIN))
        .await;
    seen.send("metrics", http.get(format!("{base}/metrics")))
        .await;

    let delivery = json!({
        "action": "member_added",
        "membership": {"state": "active", "role": "member", "user": {"login": "secret-check", "id": 5_151_515, "type": "User"}},
        "organization": {"login": "octokit-fixture-org", "id": 1},
        "sender": {"login": "octocat", "id": 1}
    })
    .to_string();
    let hook = format!("{base}/webhooks/github/github");
    let github = |signature: String| {
        http.post(&hook)
            .header("x-github-event", "organization")
            .header("x-github-delivery", "secret-check-1")
            .header("x-hub-signature-256", signature)
            .header("content-type", "application/json")
            .body(delivery.clone())
    };
    let (status, body) = seen
        .send(
            "signed delivery",
            github(signature(GITHUB_HOOK, delivery.as_bytes())),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = seen
        .send(
            "badly signed delivery",
            github(signature("not-it", delivery.as_bytes())),
        )
        .await;
    assert_eq!(status, 401);
    let gitlab = |token: &str| {
        http.post(format!("{base}/webhooks/gitlab/gitlab"))
            .header("x-gitlab-event", "Push Hook")
            .header("x-gitlab-token", token)
            .header("content-type", "application/json")
            .body(r#"{"object_kind": "push"}"#)
    };
    seen.send("gitlab hook", gitlab(GITLAB_HOOK)).await;
    let (status, _) = seen.send("gitlab hook, wrong token", gitlab(VIEWER)).await;
    assert_eq!(status, 401);

    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "externalId": "secret.check",
        "userName": "secret.check@example.com",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "secret.check@example.com"}]
    })
    .to_string();
    let scim = |token: &str| {
        http.post(format!("{base}/scim/v2/okta/Users"))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(user.clone())
    };
    let (status, body) = seen.send("SCIM create", scim(SCIM)).await;
    assert_eq!(status, 201, "{body}");
    // Secrets presented where they do not belong are refused and, like any
    // presented credential, not repeated back or logged.
    for (what, request, refusal) in [
        ("SCIM with an API token", scim(ADMIN), 401),
        (
            "API with the SCIM token",
            http.get(format!("{api}/status")).bearer_auth(SCIM),
            401,
        ),
        (
            "sync as viewer",
            http.post(format!("{api}/sync")).bearer_auth(VIEWER),
            403,
        ),
    ] {
        let (status, body) = seen.send(what, request).await;
        assert_eq!(status, refusal, "{what}: {body}");
    }
    settled_as(&http, &base, VIEWER).await;
    let (status, body) = seen
        .send(
            "status after the traffic",
            http.get(format!("{api}/status")).bearer_auth(VIEWER),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    for (what, status, text) in &seen.answers {
        assert!(
            leaked(text).is_empty(),
            "{what} ({status}) shows secrets {:?}: {text}",
            leaked(text)
        );
    }

    server.kill();
    let written =
        std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(
        written.contains("DEBUG"),
        "the log is not at debug level, so it proves little:\n{written}"
    );
    assert!(
        written.contains("secret-check") || written.contains("Refused a webhook delivery"),
        "the log does not show the traffic:\n{written}"
    );
    let shown: Vec<(usize, &str)> = written
        .lines()
        .enumerate()
        .filter(|(_, line)| !leaked(line).is_empty())
        .collect();
    assert!(shown.is_empty(), "the log shows secrets: {shown:?}");
}

/// The shipped service configuration, with every secret read from a file
/// and the variables it names filled in, loaded as the service loads it.
fn shipped_config_with_secret_files(dir: &std::path::Path) -> org_mesh_app::config::Config {
    let example = root().join("examples/serve/org-mesh.yaml");
    let mut text =
        std::fs::read_to_string(&example).unwrap_or_else(|e| panic!("{}: {e}", example.display()));
    for (variable, value) in VARIABLES {
        let file = dir.join(variable);
        std::fs::write(&file, value).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        text = text.replace(
            &format!("{{ env: {variable} }}"),
            &format!("{{ file: {} }}", file.display()),
        );
    }
    let folder = root().join("examples/serve");
    text = text
        .replace("${GITHUB_API_URL}", "http://127.0.0.1:9/api")
        .replace("${GITHUB_API_HOST}", "127.0.0.1:9")
        .replace("../../", &format!("{}/../../", folder.display()))
        .replace("../demo/", &format!("{}/../demo/", folder.display()));
    assert!(
        !text.contains("${") && !text.contains("env:"),
        "the example names variables this test does not fill:\n{text}"
    );
    let path = dir.join("org-mesh.yaml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    org_mesh_app::config::Config::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn plugins_see_secrets_only_through_their_secrets_capability() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = shipped_config_with_secret_files(dir.path());
    let instances = config
        .connectors
        .iter()
        .chain(&config.detectors)
        .chain(&config.executors);
    let mut granted = Vec::new();
    for instance in instances {
        // What the plugin instance is bound with and reads as its config.
        let visible = instance.config.to_string();
        assert!(
            leaked(&visible).is_empty(),
            "{} sees secrets {:?} in its config: {visible}",
            instance.name,
            leaked(&visible)
        );
        for (name, source) in &instance.grants.secrets {
            granted.push(format!("{}.{name}", instance.name));
            let described = format!("{source:?}");
            assert!(
                leaked(&described).is_empty(),
                "{}: {described}",
                instance.name
            );
            let value = source.read().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(value, PLUGIN, "{}.{name} reads its own file", instance.name);
        }
    }
    assert_eq!(granted, ["github.token", "github-fix.token"]);
    // The whole configuration, as a log line or a panic would print it.
    let printed = format!("{config:?}");
    assert!(
        leaked(&printed).is_empty(),
        "the printed configuration shows secrets {:?}",
        leaked(&printed)
    );
}
