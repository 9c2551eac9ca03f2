//! Message retention through the real `org-mesh serve`: with retention set
//! by environment, a comment written long ago is forgotten, with its edges
//! and history, soon after it arrives, a recent one stays, and the metric
//! counts what went. A retention setting that is not a whole number of days
//! stops the service at start, naming the setting.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::messages::{comment, deliver};
use common::*;
use org_mesh_harness::root;
use serde_json::Value;

/// The path of a comment's message under `/api/v1/entities`.
fn message_path(comment_id: u64) -> String {
    format!("Message/github:Codertocat%2FHello-World%2Fissue-comment%2F{comment_id}")
}

async fn entity(http: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    get_json(
        http,
        &format!("{base}/api/v1/entities/{path}"),
        Some(VIEWER),
    )
    .await
}

/// The keys at the other end of the author's `AUTHORED` edges.
fn authored(account: &Value) -> Vec<String> {
    account["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["edge"]["edge"]["kind"] == "AUTHORED")
        .filter_map(|e| e["node"]["key"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_message_is_forgotten_and_a_recent_one_stays() {
    let log_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = log_dir.path().join("serve.log");
    let server = start_logging(
        &[
            ("ORG_MESH_RETENTION__MESSAGE_DAYS", "180"),
            ("ORG_MESH_RETENTION__INTERVAL_SECS", "1"),
            ("ORG_MESH_LOG", "debug,cranelift_codegen=info,wasmtime=info"),
        ],
        Some(&log),
    )
    .await;
    let http = client();
    let base = server.base.clone();
    let (old, recent) = (83_000_001, 83_000_002);
    let author = ("corvin-ash", 92_000_001);
    let messages = [
        (old, 400, "written long ago"),
        (recent, 2, "written this week"),
    ];
    for (n, (id, days, body)) in messages.into_iter().enumerate() {
        let delivery = comment(id, 7, author.0, author.1, days, body);
        deliver(&http, &base, "issue_comment", n, delivery).await;
    }
    settled(&http, &base).await;

    let mut gone = None;
    for _ in 0..300 {
        let (status, body) = entity(&http, &base, &message_path(old)).await;
        if status == 404 {
            gone = Some(body);
            break;
        }
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone = gone.unwrap_or_else(|| panic!("the old message was still there after 30 s"));
    assert_eq!(gone["error"]["code"], "not_found", "{gone}");

    let (status, kept) = entity(&http, &base, &message_path(recent)).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(
        kept["entity"]["node"]["properties"]["body"]["value"], "written this week",
        "{kept}"
    );
    assert_eq!(kept["history"].as_array().map(Vec::len), Some(1), "{kept}");

    // The author stays, and only the recent message is still theirs: the
    // old one's edges went with it.
    let author = account(&http, &base, "github:corvin-ash").await;
    let recent_key = format!("github:Codertocat/Hello-World/issue-comment/{recent}");
    assert_eq!(authored(&author), [recent_key], "{author}");
    assert!(!author.to_string().contains("written long ago"), "{author}");

    let text = metrics(&http, &base).await;
    assert!(
        text.lines()
            .any(|l| l == "org_mesh_messages_forgotten_total 1"),
        "{text}"
    );

    // The sweep says what it did in counts; the text is in no log line.
    drop(server);
    let written = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        written
            .lines()
            .any(|l| l.contains("Forgot expired messages") && l.contains("messages=1")),
        "{written}"
    );
    assert!(
        !written.contains("written long ago"),
        "message text in the log"
    );
}

/// The configuration is read before anything else happens, so nothing
/// else the example needs (tokens, secrets) has to be given for the
/// setting to be refused.
#[test]
fn a_retention_that_is_not_a_whole_number_of_days_stops_the_start() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for days in ["-5", "half a year"] {
        let out = Command::new(env!("CARGO_BIN_EXE_org-mesh"))
            .args(["serve", "--config"])
            .arg(root().join("examples/serve/org-mesh.yaml"))
            .env("ORG_MESH_STATE_DIR", state.path())
            .env("ORG_MESH_RETENTION__MESSAGE_DAYS", days)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{days}: {err}");
        let said =
            format!("ORG_MESH_RETENTION__MESSAGE_DAYS: {days:?} is not a whole number of days");
        assert!(err.contains(&said), "{days}: {err}");
        assert!(
            std::fs::read_dir(state.path()).is_ok_and(|mut d| d.next().is_none()),
            "{days}: nothing was opened"
        );
    }
}
