//! Switchboard, the web console, against the real `org-mesh serve` on the
//! recorded demo organisation: its assets and headers, the API routes it
//! relies on (who am I, the live event stream, the campaign view), and an
//! operator's session in headless Chromium driven by `playwright-core`,
//! which also tries a failed fix again on a second service that runs fixes
//! (host/cli/tests/console/drive.mjs). Screenshots of every step are kept
//! in `<target dir>/console-screenshots`.
//!
//! Needs `.ci/setup` (Chromium and the pinned `playwright-core`) and
//! `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::messages::*;
use common::*;
use org_mesh_harness::root;
use serde_json::{Value, json};

/// Text that must reach the page as text: a browser that parsed it as
/// markup would load an image and run its handler.
const MARKUP: &str = "<img src=x id=injected onerror=\"document.title='pwned'\">";

/// The demo's fix an approver may approve: restoring branch protection.
const RESTORE: &str = "github.restore-branch-protection";

async fn proposal(http: &reqwest::Client, base: &str) -> Value {
    settled(http, base).await;
    let (status, body) = get_json(http, &format!("{base}/api/v1/proposals"), Some(VIEWER)).await;
    assert_eq!(status, 200, "{body}");
    body["proposals"]
        .as_array()
        .and_then(|p| {
            p.iter()
                .find(|p| p["kind"] == RESTORE && p["state"] == "awaiting_approval")
        })
        .cloned()
        .unwrap_or_else(|| panic!("no {RESTORE} proposal awaits approval: {body}"))
}

/// The proposal `id` as the service lists it now, or null.
async fn proposal_with_id(http: &reqwest::Client, base: &str, id: &str) -> Value {
    let (_, all) = get_json(http, &format!("{base}/api/v1/proposals"), Some(VIEWER)).await;
    all["proposals"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["id"] == id))
        .cloned()
        .unwrap_or_default()
}

/// Reads the event stream until `want` arrives in it, or panics after
/// `within`.
async fn next_event(stream: &mut reqwest::Response, want: &str, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = String::new();
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no `{want}` event within {within:?}; got:\n{seen}"))
            .unwrap_or_else(|e| panic!("reading the event stream: {e}"))
            .unwrap_or_else(|| panic!("the event stream ended; got:\n{seen}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains(want) {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_strictly_and_its_routes_answer_by_role() {
    let server = start().await;
    let http = client();
    let base = &server.base;

    let page = http
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "cache-control"), "no-store");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let policy = header(&page, "content-security-policy");
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    let html = page.text().await.unwrap_or_default();
    assert!(
        !html.contains("<script>") && !html.contains("http"),
        "no inline script and no outside resource: {html}"
    );

    let script = http
        .get(format!("{base}/console/app.js"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        header(&script, "content-type"),
        "text/javascript; charset=utf-8"
    );
    let tag = header(&script, "etag");
    assert!(!tag.is_empty(), "assets carry a validator");
    let again = http
        .get(format!("{base}/console/app.js"))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.status(), 304);
    let (status, body) = get_json(&http, &format!("{base}/console/secrets.txt"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    let (status, me) = get_json(&http, &format!("{base}/api/v1/whoami"), Some(VIEWER)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me, json!({"name": "dashboard", "role": "viewer"}));
    let (status, _) = get_json(&http, &format!("{base}/api/v1/whoami"), None).await;
    assert_eq!(status, 401);

    let (status, body) = get_json(
        &http,
        &format!("{base}/api/v1/campaigns/0000000000000000"),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = get_json(&http, &format!("{base}/api/v1/campaigns/x"), None).await;
    assert_eq!(status, 401);

    // The event stream: refused without a token, then `ready`, then a
    // change of proposals once an approver approves one.
    let (status, _) = get_json(&http, &format!("{base}/api/v1/events"), None).await;
    assert_eq!(status, 401);
    let mut stream = http
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(VIEWER)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stream.status(), 200);
    assert_eq!(header(&stream, "content-type"), "text/event-stream");
    next_event(&mut stream, "event: ready\n", Duration::from_secs(5)).await;
    // The first listener starts the watch, which tells it to fetch everything.
    next_event(&mut stream, r#"{"topic":"all"}"#, Duration::from_secs(5)).await;
    let id = proposal(&http, base).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let approved = http
        .post(format!("{base}/api/v1/proposals/{id}/approve"))
        .bearer_auth(APPROVER)
        .json(&json!({"reason": "owner agreed"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(approved.status(), 200);
    next_event(
        &mut stream,
        "event: change\ndata: {\"topic\":\"proposals\"}\n",
        Duration::from_secs(10),
    )
    .await;

    // A shutdown ends open streams at once rather than at the drain
    // deadline, and the service exits.
    let stopped = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("kill: {e}"));
    assert!(stopped.success());
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream outlived the shutdown");
    let mut server = server;
    for _ in 0..50 {
        if server.child.try_wait().ok().flatten().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("org-mesh serve did not exit within 5 s of SIGTERM");
}

/// Chromium as Debian installs it, or as `ORG_MESH_CHROMIUM` names it.
fn chromium() -> PathBuf {
    let path = std::env::var_os("ORG_MESH_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "{} is missing: run .ci/setup, which installs Debian's chromium for the console tests",
        path.display()
    );
    path
}

/// The folder screenshots are kept in, beside the build's other outputs.
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            PathBuf::from(env!("CARGO_BIN_EXE_org-mesh"))
                .ancestors()
                .nth(2)
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| panic!("cannot tell the target folder"));
    let dir = target.join("console-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// Pressure on a maintainer, one message carrying markup, then write access
/// for the account it pushed for: a critical narrative campaign.
async fn start_campaign(http: &reqwest::Client, base: &str) -> Value {
    deliver(
        http,
        base,
        "member",
        0,
        collaborator("Codertocat", 21031067, "admin"),
    )
    .await;
    let script = pressure(MARKUP)
        .into_iter()
        .chain([("member", collaborator("helper-dev", 91_000_009, "write"))]);
    for (n, (event, body)) in script.into_iter().enumerate() {
        deliver(http, base, event, n + 1, body).await;
    }
    let found = campaign(http, base)
        .await
        .unwrap_or_else(|| panic!("the pressure and the grant make no campaign"));
    let fingerprint = found["fingerprint"].as_str().unwrap_or_default();
    let (status, view) = get_json(
        http,
        &format!("{base}/api/v1/campaigns/{fingerprint}"),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    let messages = view["messages"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(messages, 4, "{view}");
    assert_eq!(view["messages"][0]["author"], "github:rill-ostrander");
    assert!(
        view["timeline"]
            .as_array()
            .is_some_and(|t| t.len() > messages),
        "messages, evidence and the campaign's own changes: {view}"
    );
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_triages_findings_campaigns_and_fixes_in_a_browser() {
    let browser = chromium();
    let driver = root().join("host/cli/tests/console");
    assert!(
        driver.join("node_modules/playwright-core").is_dir(),
        "{} has no playwright-core: run .ci/setup",
        driver.display()
    );
    let shots = screenshots();
    let server = start().await;
    let http = client();
    let found = start_campaign(&http, &server.base).await;
    let approvable = proposal(&http, &server.base).await;
    // A second service, with fixes allowed to run, holds a fix that failed:
    // the demo's executor only plans, so the approved restore is refused.
    let running = start_with(&[("ORG_MESH_ACTIONS__DRY_RUN", "false")]).await;
    let failed = proposal(&http, &running.base).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let approved = http
        .post(format!(
            "{}/api/v1/proposals/{failed}/approve",
            running.base
        ))
        .bearer_auth(APPROVER)
        .json(&json!({"reason": "owner agreed"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let approved: Value = approved.json().await.unwrap_or_default();
    assert_eq!(approved["proposal"]["state"], "failed", "{approved}");

    let out = tokio::task::spawn_blocking({
        let base = server.base.clone();
        let shots = shots.clone();
        let fingerprint = found["fingerprint"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let proposal = approvable["id"].as_str().unwrap_or_default().to_string();
        let running = running.base.clone();
        let failed = failed.clone();
        move || {
            Command::new("node")
                .arg(driver.join("drive.mjs"))
                .env("CONSOLE_URL", base)
                .env("CHROMIUM", browser)
                .env("SCREENSHOTS", &shots)
                .env("VIEWER_TOKEN", VIEWER)
                .env("APPROVER_TOKEN", APPROVER)
                .env("CAMPAIGN", fingerprint)
                .env("PROPOSAL", proposal)
                .env("RUNNING_URL", running)
                .env("FAILED_PROPOSAL", failed)
                .output()
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|e| panic!("running node: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{said}");
    println!("console screenshots: {}", shots.display());
    assert!(out.status.success(), "the browser session failed:\n{said}");

    // What the browser did is what the service recorded.
    let id = approvable["id"].as_str().unwrap_or_default();
    let after = proposal_with_id(&http, &server.base, id).await;
    assert_eq!(after["state"], "approved", "{after}");
    assert_eq!(after["approvals"][0]["actor"], "security-lead", "{after}");

    let retried = proposal_with_id(&http, &running.base, &failed).await;
    assert_eq!(retried["state"], "awaiting_approval", "{retried}");
    assert!(
        retried["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| {
                e["actor"] == "security-lead"
                    && e["reason"] == "to be tried again: GitHub answered again"
            })),
        "{retried}"
    );
}
