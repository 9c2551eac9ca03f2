//! scim2-tester, an independent implementation of the RFCs, run against the
//! server as a peer. Its virtual environment comes from `.ci/setup`.

use std::path::PathBuf;

use crate::common::start;

fn python() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    let python = PathBuf::from(home).join(".cache/org-mesh/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run .ci/setup to create the scim2-tester environment",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_tester_finds_no_errors() {
    let python = python();
    let server = start().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../conformance/scim/check.py"
    );
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(server.base())
        .arg(server.token())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "scim2-tester failed:\n{stdout}\n{stderr}"
    );
}
