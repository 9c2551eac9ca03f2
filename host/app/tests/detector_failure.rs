//! A detector that fails keeps the findings it had. The detector here is
//! `conformance/misbehaving` in its `boom` mode: it raises one finding
//! until the twin holds the account `test:boom`, and traps from then on,
//! as a plugin with a bug that only some real record reaches would. Its
//! finding must stay in every evaluation that follows an earlier one, be
//! decided again there, and the detector must be named as failed, never
//! as having detected; a one-off scan, with nothing earlier to keep, lists
//! it as skipped and has no finding of it. At the start of a service, a
//! detector that fails on an empty twin (the check a reload makes) is not
//! put in service at all.
//!
//! Runs the real component over an embedded twin; needs
//! `.ci/build-plugins`.

mod common;

use org_mesh_app::pipeline::{Evaluation, Twin};
use org_mesh_model::{Batch, Node, Properties, Value};

async fn open_twin(state: &std::path::Path, mode: &str) -> Result<Twin, String> {
    common::copy_plugin(state, "conformance/dist/misbehaving")?;
    common::open_twin(
        state,
        &format!(
            "detectors:\n  - name: buggy\n    plugin: misbehaving\n    config: {{mode: {mode}}}\n    grants: {{graph: true}}\n"
        ),
    )
    .await
}

fn account(key: &str) -> Batch {
    Batch {
        nodes: vec![Node {
            label: "Account".into(),
            key: key.into(),
            properties: Properties::from([("provider".to_string(), Value::Text("test".into()))]),
        }],
        ..Batch::default()
    }
}

fn fingerprints(evaluation: &Evaluation) -> Vec<&str> {
    evaluation
        .findings
        .iter()
        .map(|r| r.finding.fingerprint.as_str())
        .collect()
}

/// The state of a round in which the detector trapped.
fn assert_failed_and_kept(round: &str, evaluation: &Evaluation, raised: &[&str]) {
    assert_eq!(
        fingerprints(evaluation),
        raised,
        "{round}: the failed detector's finding was not kept"
    );
    assert!(
        evaluation.failed.contains_key("buggy"),
        "{round}: the detector is not named as failed"
    );
    let error = &evaluation.failed["buggy"];
    assert!(error.contains("trapped"), "{round}: {error}");
    assert!(
        !evaluation.detected_by.contains_key("buggy"),
        "{round}: a failed detector counted as having detected"
    );
    let kept = &evaluation.findings[0];
    assert!(
        kept.decision.is_some(),
        "{round}: the kept finding was not decided again"
    );
    assert_eq!(kept.instance, "buggy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_detector_keeps_its_findings_until_it_runs_again() {
    let state = tempfile::tempdir().expect("tempdir");
    let twin = open_twin(state.path(), "boom").await.expect("twin opens");
    let at = time::OffsetDateTime::now_utc();
    twin.ingest("test", at, account("test:0"))
        .await
        .expect("first account");

    let first = twin.evaluate().await.expect("first evaluation");
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    assert!(first.detected_by.contains_key("buggy"));
    let raised = fingerprints(&first);
    assert_eq!(raised.len(), 1, "{:?}", first.findings);

    // The record the bug trips over arrives.
    let applied = twin
        .ingest(
            "test",
            at + time::Duration::seconds(1),
            account("test:boom"),
        )
        .await
        .expect("second account");
    let after_changes = twin
        .evaluate_changes(&first, &applied.changes)
        .await
        .expect("evaluation of the changes");
    assert_failed_and_kept("after the changes", &after_changes, &raised);

    // The periodic whole-twin evaluation, after a round that kept it.
    let whole = twin
        .evaluate_after(&after_changes)
        .await
        .expect("whole-twin evaluation");
    assert_failed_and_kept("whole twin", &whole, &raised);

    // A scan has nothing earlier to keep: the detector is skipped.
    let scan = twin.evaluate().await.expect("scan");
    assert!(scan.findings.is_empty(), "{:?}", fingerprints(&scan));
    assert!(scan.failed.contains_key("buggy"));
    assert!(
        scan.skipped
            .iter()
            .any(|s| s.starts_with("detector buggy:")),
        "{:?}",
        scan.skipped
    );
}

/// At the start of a service there is no earlier version to keep: a
/// detector that fails the check a reload would have refused it for is
/// taken out of service and reported as not loaded, instead of serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detector_failing_its_smoke_check_at_start_is_not_loaded() {
    for (mode, serves) in [("trap", false), ("boom", true)] {
        let state = tempfile::tempdir().expect("tempdir");
        let mut twin = open_twin(state.path(), mode).await.expect("twin opens");
        twin.take_out_failing_detectors().await;
        assert_eq!(
            twin.instances_loaded(),
            [("detector", "buggy".to_string(), serves)],
            "{mode}: {:?}",
            twin.skipped
        );
        if serves {
            assert!(twin.skipped.is_empty(), "{mode}: {:?}", twin.skipped);
        } else {
            assert!(
                twin.skipped.len() == 1
                    && twin.skipped[0].starts_with("detector buggy (misbehaving 0.1.0@")
                    && twin.skipped[0].contains("its smoke check")
                    && twin.skipped[0].contains("misbehaving plugin traps on purpose"),
                "{:?}",
                twin.skipped
            );
        }
    }
}
