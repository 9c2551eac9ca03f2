//! Faults on the embedded twin: a node killed outright in the middle of a
//! burst of webhook deliveries, and a state folder that cannot grow (a
//! full disk). In both, a delivery answered 2xx reaches the twin exactly
//! once, and the service comes back on the same state.
//!
//! Run with `cargo test -p org-mesh --test faults`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod common;

use std::collections::BTreeMap;

use common::{
    Delivery, Server, VIEWER, client, get_json, member_burst, settled, start, start_again, start_in,
};
use serde_json::Value;

/// Held by each test for its whole run: each starts and kills servers and
/// sends bursts, and two at once on a small machine slow the start-ups past
/// their deadline.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn burst(prefix: &str, n: usize) -> Vec<Delivery> {
    member_burst(&format!("{prefix}-delivery"), prefix, 8_000_000, n)
}

/// Sends a delivery; the status, or `None` when no answer came.
async fn send(http: &reqwest::Client, base: &str, d: &Delivery) -> Option<u16> {
    let resp = http
        .post(format!("{base}/webhooks/github/github"))
        .header("x-github-event", "organization")
        .header("x-github-delivery", &d.id)
        .header("x-hub-signature-256", common::sign(d.body.as_bytes()))
        .header("content-type", "application/json")
        .body(d.body.clone())
        .send()
        .await
        .ok()?;
    Some(resp.status().as_u16())
}

/// How many times each burst account is in the twin, with its membership
/// edges and history entries.
async fn copies(http: &reqwest::Client, base: &str, burst: &[Delivery]) -> BTreeMap<String, Value> {
    settled(http, base).await;
    let (status, body) = get_json(
        http,
        &format!("{base}/api/v1/entities?label=Account"),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<String> = body["entities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["node"]["key"].as_str().map(str::to_string))
        .collect();
    let mut found = BTreeMap::new();
    for d in burst {
        let key = format!("github:{}", d.login);
        let listed = keys.iter().filter(|k| **k == key).count();
        let (status, entity) = get_json(
            http,
            &format!("{base}/api/v1/entities/Account/{key}"),
            Some(VIEWER),
        )
        .await;
        let summary = if status == 200 {
            let memberships = entity["edges"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["edge"]["edge"]["kind"] == "MEMBER_OF")
                .count();
            let history = entity["history"].as_array().map_or(0, Vec::len);
            serde_json::json!({"listed": listed, "memberships": memberships, "history": history})
        } else {
            serde_json::json!({"listed": listed, "status": status})
        };
        found.insert(d.login.clone(), summary);
    }
    found
}

fn once() -> Value {
    serde_json::json!({"listed": 1, "memberships": 1, "history": 1})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_burst_keeps_every_accepted_delivery_exactly_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut server = start().await;
    let http = client();
    let deliveries = burst("killed-burst", 40);
    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
    for d in deliveries.clone() {
        let (http, base, answers) = (http.clone(), server.base.clone(), answers.clone());
        tokio::spawn(async move {
            let status = send(&http, &base, &d).await;
            let _ = answers.send((d.login, status));
        });
    }
    drop(answers);
    // Killed once some deliveries are answered and others still in flight.
    let mut outcomes = BTreeMap::new();
    while outcomes.len() < 8 {
        let Some((login, status)) = answered.recv().await else {
            break;
        };
        outcomes.insert(login, status);
    }
    server
        .child
        .kill()
        .unwrap_or_else(|e| panic!("killing the node: {e}"));
    while let Some((login, status)) = answered.recv().await {
        outcomes.insert(login, status);
    }
    let accepted: Vec<&String> = outcomes
        .iter()
        .filter(|(_, s)| s.is_some_and(|s| (200..300).contains(&s)))
        .map(|(l, _)| l)
        .collect();
    assert!(
        !accepted.is_empty(),
        "nothing was accepted before the kill: {outcomes:?}"
    );
    assert!(
        accepted.len() < outcomes.len(),
        "every delivery was answered before the kill, so it proves nothing: {outcomes:?}"
    );
    assert!(
        outcomes.values().all(|s| s.is_none_or(|s| s == 202)),
        "a delivery was refused rather than accepted or cut off: {outcomes:?}"
    );

    let restarted = start_again(&mut server, &[]).await;
    let after_restart = copies(&http, &restarted.base, &deliveries).await;
    for login in &accepted {
        assert_eq!(
            after_restart[*login],
            once(),
            "{login} was accepted before the kill: {after_restart:?}"
        );
    }
    for (login, summary) in &after_restart {
        assert!(
            summary["listed"].as_u64().unwrap_or(0) <= 1
                && summary["memberships"].as_u64().unwrap_or(0) <= 1,
            "{login} is doubled: {summary}"
        );
    }

    // GitHub sends again what got no answer; a delivery sent twice, before
    // and after the kill, is still one account with one membership.
    for d in &deliveries {
        let status = send(&http, &restarted.base, d).await;
        assert!(
            matches!(status, Some(200 | 202)),
            "{} sent again: {status:?}",
            d.id
        );
    }
    let in_the_end = copies(&http, &restarted.base, &deliveries).await;
    for (login, summary) in &in_the_end {
        assert_eq!(summary, &once(), "{login}: {in_the_end:?}");
    }
}

/// The size of the largest redb file in the state folder.
fn largest_store_file(server: &Server) -> u64 {
    std::fs::read_dir(server.state.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "redb"))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .max()
        .unwrap_or_else(|| panic!("no store files in {}", server.state.path().display()))
}

fn stop_gently(server: &mut Server) {
    let pid = server.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(sent.success());
    let status = server.child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "the service stopped with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_or_keeps_pushes_and_the_node_recovers_after_it() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut first = start().await;
    stop_gently(&mut first);
    let limit = largest_store_file(&first);
    let state = std::mem::replace(
        &mut first.state,
        tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
    );
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = work.path().join("serve.log");
    // No file of the process may grow past the largest store file as it
    // was: the store cannot grow, as on a full disk. The signal a process
    // gets for writing past the limit is ignored, so the write fails with
    // an error instead of ending the process.
    let fsize = format!("--fsize={limit}");
    let wrapper = [
        "sh",
        "-c",
        "trap '' XFSZ; exec prlimit \"$0\" -- \"$@\"",
        fsize.as_str(),
    ];
    let mut full = start_in(state, &wrapper, &[], Some(&log)).await;
    let http = client();
    let deliveries = burst("full-disk", 120);
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for d in &deliveries {
        let resp = common::signed(
            &http,
            &format!("{}/webhooks/github/github", full.base),
            "organization",
            Some(&d.id),
            d.body.clone(),
        )
        .await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or_default();
        match status {
            202 => accepted.push(d.clone()),
            503 => {
                assert_eq!(body["error"]["code"], "degraded", "{}: {body}", d.id);
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("could not be queued")),
                    "{}: the refusal should say the change was not queued: {body}",
                    d.id
                );
                refused.push(d.clone());
            }
            other => panic!("{}: a full disk answered {other}: {body}", d.id),
        }
    }
    assert!(
        !refused.is_empty(),
        "the store never ran out of room, so this proves nothing ({} accepted)",
        accepted.len()
    );

    // Reads go on, and the service says why it should not get pushes.
    let (status, body) = get_json(
        &http,
        &format!("{}/api/v1/entities?label=Organisation", full.base),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 200, "reading a full twin: {body}");
    let (status, body) =
        get_json(&http, &format!("{}/api/v1/status", full.base), Some(VIEWER)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], false, "{body}");
    full.kill();
    let written = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        written
            .lines()
            .any(|l| l.contains(".redb") && l.contains("File too large")),
        "the log should name the store file whose write failed, and why:\n{written}"
    );

    // Room again: what was accepted reaches the twin once, what was refused
    // never did, and the service takes it when it is sent again.
    let again = start_again(&mut full, &[]).await;
    let after = copies(&http, &again.base, &deliveries).await;
    for d in &accepted {
        assert_eq!(
            after[&d.login],
            once(),
            "{} was accepted: {after:?}",
            d.login
        );
    }
    for d in &refused {
        assert_eq!(
            after[&d.login]["listed"], 0,
            "{} was refused: {after:?}",
            d.login
        );
        let status = send(&http, &again.base, d).await;
        assert_eq!(status, Some(202), "{} sent again once there is room", d.id);
    }
    let in_the_end = copies(&http, &again.base, &deliveries).await;
    for (login, summary) in &in_the_end {
        assert_eq!(summary, &once(), "{login}: {in_the_end:?}");
    }
}
