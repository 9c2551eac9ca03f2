//! Narrative-risk detection through the real `org-mesh serve`: signed
//! GitHub deliveries of issues and comments become messages in the twin,
//! the narrative detector groups the pressure into a campaign, policy rates
//! it, the twin holds it as a `Campaign` node, the signals are counted, and
//! no message text reaches the log.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod common;

use common::messages::*;
use common::*;
use serde_json::{Value, json};

/// A word that appears only inside message bodies.
const CANARY: &str = "quillfeather7781";

fn texts(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressure_then_a_grant_becomes_a_critical_campaign_without_text_in_the_log() {
    let log_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = log_dir.path().join("serve.log");
    let server = start_logging(
        &[("ORG_MESH_LOG", "debug,cranelift_codegen=info,wasmtime=info")],
        Some(&log),
    )
    .await;
    let http = client();
    let base = server.base.clone();

    // The maintainer is known before anything is said: the repository and
    // its admin arrive in one delivery, as a first sync would bring them.
    deliver(
        &http,
        &base,
        "member",
        0,
        collaborator("Codertocat", 21031067, "admin"),
    )
    .await;
    let script = pressure(CANARY);
    for (n, (event, body)) in script.into_iter().enumerate() {
        deliver(&http, &base, event, n + 1, body).await;
    }
    let Some(before) = campaign(&http, &base).await else {
        let (_, all) = get_json(&http, &format!("{base}/api/v1/findings"), Some(VIEWER)).await;
        let written = std::fs::read_to_string(&log).unwrap_or_default();
        panic!("no campaign from the pressure alone; findings: {all}\nlog:\n{written}");
    };
    assert_eq!(before["severity"], "high", "{before}");
    assert_eq!(before["attributes"]["privilege_granted"], false);

    // Write access for the account the campaign pushed for.
    deliver(
        &http,
        &base,
        "member",
        9,
        collaborator("helper-dev", 91_000_009, "write"),
    )
    .await;
    let found = campaign(&http, &base).await.expect("the campaign");
    let f = &found;
    assert_eq!(found["severity"], "critical", "{found}");
    assert_eq!(
        f["fingerprint"], before["fingerprint"],
        "the grant grows the same finding"
    );
    assert_eq!(
        texts(&f["attributes"]["participants"]),
        vec!["rill-ostrander", "taddeo-brix", "vessa-quill"]
    );
    assert_eq!(texts(&f["attributes"]["beneficiaries"]), vec!["helper-dev"]);
    let signals = texts(&f["attributes"]["signals"]);
    for kind in [
        "pressure",
        "privilege-ask",
        "privilege-grant",
        "convergence",
    ] {
        assert!(signals.contains(&kind.to_string()), "{kind}: {signals:?}");
    }
    assert_eq!(found["decision"]["auto_fix"], false, "{found}");
    // The proposed response, planned as a dry run: an issue for the
    // maintainers and stricter reviews on the default branch.
    let planned: Vec<String> = found["action"]["plan"]["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{} {}",
                c["method"].as_str().unwrap_or("?"),
                c["url"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        found["action"]["kind"], "github.campaign-response",
        "{found}"
    );
    assert!(
        planned
            .iter()
            .any(|c| c.starts_with("POST ") && c.ends_with("/repos/Codertocat/Hello-World/issues"))
            && planned.iter().any(|c| c.starts_with("PATCH ")
                && c.ends_with("/branches/master/protection/required_pull_request_reviews")),
        "{planned:?}"
    );
    assert!(
        !found.to_string().contains(CANARY),
        "no message text in findings: {found}"
    );

    // The campaign is a node of the twin, joined to who and what it cites.
    let fingerprint = f["fingerprint"].as_str().unwrap_or_default();
    let (status, node) = get_json(
        &http,
        &format!("{base}/api/v1/entities/Campaign/{fingerprint}"),
        Some(VIEWER),
    )
    .await;
    if status != 200 {
        let written = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = written
            .lines()
            .filter(|l| l.contains("campaign") || l.contains("Campaign"))
            .collect();
        panic!("{status} {node}\n{}", lines.join("\n"));
    }
    let linked: Vec<String> = node["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{} {}",
                e["edge"]["edge"]["kind"].as_str().unwrap_or("?"),
                e["node"]["key"].as_str().unwrap_or("?")
            )
        })
        .collect();
    for want in [
        "INVOLVES github:helper-dev",
        "INVOLVES github:vessa-quill",
        "TARGETS github:Codertocat/Hello-World",
        "CITES github:Codertocat/Hello-World/issue-comment/81000001",
    ] {
        assert!(linked.iter().any(|l| l == want), "{want}: {linked:?}");
    }

    // Each signal counted once, however often the twin is evaluated.
    let text = metrics(&http, &base).await;
    for kind in ["pressure", "privilege-grant"] {
        let line = format!("org_mesh_narrative_signals_count{{kind=\"{kind}\"}} 1");
        assert!(text.contains(&line), "{line}\n{text}");
    }

    // A malformed delivery is refused by name, and the campaign stays.
    let mut broken: Value = serde_json::from_str(&comment(81_000_004, 78, "x", 1, 1, "x"))
        .unwrap_or_else(|e| panic!("{e}"));
    broken["comment"]["user"] = json!("not an object");
    let resp = signed(
        &http,
        &format!("{base}/webhooks/github/github"),
        "issue_comment",
        Some("narrative-broken"),
        broken.to_string(),
    )
    .await;
    let status = resp.status().as_u16();
    let said = resp.text().await.unwrap_or_default();
    assert_eq!(status, 400, "{said}");
    assert!(said.contains("comment.user"), "{said}");
    assert!(campaign(&http, &base).await.is_some());

    // The message is in the twin, readable through the API; its text is in
    // no log line.
    let (status, message) = get_json(
        &http,
        &format!("{base}/api/v1/entities/Message/github:Codertocat%2FHello-World%2Fissue-comment%2F81000001"),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 200, "{message}");
    assert!(message.to_string().contains(CANARY));
    drop(server);
    let written = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        written.contains("narrative") && written.lines().count() > 10,
        "the log was captured at debug level:\n{written}"
    );
    assert!(!written.contains(CANARY), "message text in the log");
}
