//! Hot reload under load: `org-mesh serve` takes webhook deliveries and
//! answers findings while its policy folder and one of its plugins are
//! replaced fifty times, alternating good and broken versions, the way an
//! editor saves (write a temporary file, rename it over the old one).
//!
//! Needs `.ci/setup` and `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use org_mesh_harness::root;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn digest12(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))[..12].to_string()
}

/// Waits until the service reports a reload of `target` that tried
/// `candidate`, and returns its outcome.
async fn reloaded(
    http: &reqwest::Client,
    base: &str,
    kind: &str,
    target: &str,
    candidate: &str,
) -> String {
    let mut last = Value::Null;
    for _ in 0..300 {
        let (status, body) = get_json(http, &format!("{base}/api/v1/reloads"), Some(VIEWER)).await;
        assert_eq!(status, 200, "{body}");
        let found = body["reloads"].as_array().into_iter().flatten().find(|r| {
            r["kind"] == kind
                && r["target"].as_str().is_some_and(|t| t.ends_with(target))
                && r["candidate"]
                    .as_str()
                    .is_some_and(|c| c.ends_with(candidate))
        });
        if let Some(r) = found {
            return r["outcome"].as_str().unwrap_or_default().to_string();
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no reload of {kind} {target} tried {candidate} within 15 s: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_of_good_and_broken_versions_never_fail_a_request_or_serve_a_broken_version()
{
    let (server, copies) = start_on_copies(&[]).await;
    let (plugins, policies) = (copies.plugins.clone(), copies.policies.clone());
    let policies_dir = policies.display().to_string();
    let http = client();

    let rego = policies.join("drift.rego");
    let rego_a = std::fs::read(&rego).unwrap_or_else(|e| panic!("{e}"));
    let mut rego_b = rego_a.clone();
    rego_b.extend_from_slice(b"\n# revision b: the same rules\n");
    let mut rego_broken = rego_a.clone();
    rego_broken.extend_from_slice(b"\nthis is not rego {\n");

    let wasm: PathBuf = plugins.join("identity-drift/identity_drift.wasm");
    let wasm_a = std::fs::read(&wasm).unwrap_or_else(|e| panic!("{e}"));
    let wasm_b = rebuilt(&wasm_a, "b");
    let wasm_broken = wasm_a[..wasm_a.len() / 2].to_vec();

    // The versions that may ever make a decision or a finding.
    let mut good_policies = BTreeSet::from([folder_version(&policies)]);
    let good_detectors = BTreeSet::from([digest12(&wasm_a), digest12(&wasm_b)]);

    // Load: deliveries and reads until the reloads are done.
    let done = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let seen_policies = Arc::new(std::sync::Mutex::new(BTreeSet::<String>::new()));
    let seen_detectors = Arc::new(std::sync::Mutex::new(BTreeSet::<String>::new()));
    let load = {
        let (done, failed, sent) = (done.clone(), failed.clone(), sent.clone());
        let (seen_policies, seen_detectors) = (seen_policies.clone(), seen_detectors.clone());
        let base = server.base.clone();
        let example = webhook_examples()
            .into_iter()
            .find(|(event, p)| event == "organization" && p["action"] == "member_added")
            .unwrap_or_else(|| panic!("no member_added example"))
            .1;
        tokio::spawn(async move {
            let http = client();
            let url = format!("{base}/webhooks/github/github");
            // Bounded: at most this many rounds, whatever happens.
            for i in 0..5000 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                let mut payload = example.clone();
                payload["membership"]["user"]["login"] = Value::from(format!("load-{i}"));
                payload["membership"]["user"]["id"] = Value::from(8_000_000 + i);
                let resp = signed(
                    &http,
                    &url,
                    "organization",
                    Some(&format!("load-{i}")),
                    payload.to_string(),
                )
                .await;
                sent.fetch_add(1, Ordering::Relaxed);
                if !resp.status().is_success() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                let (status, findings) =
                    get_json(&http, &format!("{base}/api/v1/findings"), Some(VIEWER)).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                for f in findings["findings"].as_array().into_iter().flatten() {
                    if let Some(v) = f["decision"]["policy_version"].as_str() {
                        lock(&seen_policies).insert(v.to_string());
                    } else {
                        lock(&seen_policies).insert("undecided".into());
                    }
                    let detector = f["detector_version"].as_str().unwrap_or("untagged");
                    let digest = detector.rsplit('@').next().unwrap_or(detector);
                    lock(&seen_detectors).insert(digest.to_string());
                }
            }
        })
    };

    let mut rejected = 0;
    for i in 0..50 {
        let broken = (i / 2) % 2 == 0;
        let revision_b = (i / 4) % 2 == 0;
        if i % 2 == 0 {
            let content = match (broken, revision_b) {
                (true, _) => &rego_broken,
                (false, true) => &rego_b,
                (false, false) => &rego_a,
            };
            save(&rego, content);
            let version = folder_version(&policies);
            if !broken {
                good_policies.insert(version.clone());
            }
            let outcome = reloaded(&http, &server.base, "policy", &policies_dir, &version).await;
            let expected: &[&str] = if broken {
                &["rejected"]
            } else {
                &["applied", "unchanged"]
            };
            assert!(
                expected.contains(&outcome.as_str()),
                "reload {i}: {outcome}"
            );
            rejected += usize::from(broken);
        } else {
            let content = match (broken, revision_b) {
                (true, _) => &wasm_broken,
                (false, true) => &wasm_b,
                (false, false) => &wasm_a,
            };
            let before = rejection_time(&http, &server.base).await;
            save(&wasm, content);
            if broken {
                // A component that does not load never becomes a candidate:
                // the reload names the plugin and says why, cause first.
                let problem = wait_plugin_rejection(&http, &server.base, before).await;
                assert!(
                    problem.starts_with("plugin identity-drift: ")
                        && problem.contains("is not a valid component"),
                    "reload {i}: {problem}"
                );
            } else {
                let outcome = reloaded(
                    &http,
                    &server.base,
                    "plugin",
                    "identity-drift",
                    &digest12(content),
                )
                .await;
                assert!(
                    ["applied", "unchanged"].contains(&outcome.as_str()),
                    "reload {i}: {outcome}"
                );
            }
            rejected += usize::from(broken);
        }
    }
    done.store(true, Ordering::Relaxed);
    load.await.unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed");
    assert!(sent.load(Ordering::Relaxed) > 50, "the load ran throughout");
    let seen_policies = lock(&seen_policies).clone();
    assert!(
        seen_policies.is_subset(&good_policies),
        "decisions only from good policy versions: saw {seen_policies:?}, good {good_policies:?}"
    );
    let seen_detectors = lock(&seen_detectors).clone();
    assert!(
        !seen_detectors.is_empty() && seen_detectors.is_subset(&good_detectors),
        "findings only from good detector builds: saw {seen_detectors:?}, good {good_detectors:?}"
    );
    let metrics = metrics(&http, &server.base).await;
    let rejected_count: usize = metrics
        .lines()
        .filter(|l| l.starts_with("org_mesh_reload_total") && l.contains("outcome=\"rejected\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(
        rejected_count >= rejected,
        "every broken version counted: {rejected_count} < {rejected}\n{metrics}"
    );
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits for a rejected reload of the identity-drift instance other than
/// the one `before` names, and returns its problem.
async fn wait_plugin_rejection(
    http: &reqwest::Client,
    base: &str,
    before: Option<String>,
) -> String {
    for _ in 0..300 {
        let now = rejection(http, base).await;
        if let Some((at, problem)) = now
            && Some(&at) != before.as_ref()
        {
            return problem;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the broken plugin was not rejected within 15 s");
}

async fn rejection_time(http: &reqwest::Client, base: &str) -> Option<String> {
    rejection(http, base).await.map(|(at, _)| at)
}

/// When the identity-drift instance's last reload was rejected, and why.
async fn rejection(http: &reqwest::Client, base: &str) -> Option<(String, String)> {
    let (_, body) = get_json(http, &format!("{base}/api/v1/reloads"), Some(VIEWER)).await;
    body["reloads"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["kind"] == "plugin" && r["target"] == "identity-drift")
        .filter(|r| r["outcome"] == "rejected")
        .and_then(|r| {
            let at = r["at"].as_str()?.to_string();
            Some((at, r["problem"].as_str().unwrap_or_default().to_string()))
        })
}

/// The severity the service reports for the first finding of `rule`, and
/// the policy version that decided it.
async fn rated(http: &reqwest::Client, base: &str, rule: &str) -> (String, String) {
    let (status, body) = get_json(
        http,
        &format!("{base}/api/v1/findings?rule={rule}"),
        Some(VIEWER),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let finding = &body["findings"][0];
    (
        finding["severity"].as_str().unwrap_or_default().to_string(),
        finding["decision"]["policy_version"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_on_trial_is_rolled_back_beyond_its_diff_budget_and_promoted_within_it() {
    let (server, copies) = start_on_copies(&[
        ("ORG_MESH_POLICIES__SHADOW__WINDOW_SECS", "4"),
        ("ORG_MESH_POLICIES__SHADOW__MAX_DIFFS", "0"),
    ])
    .await;
    let http = client();
    let policies = copies.policies.clone();
    let dir = policies.display().to_string();
    let serving = folder_version(&policies);
    assert_eq!(
        rated(&http, &server.base, "org-2fa-not-required").await,
        ("medium".to_string(), serving.clone())
    );

    // A re-rating changes live decisions: it decides on trial, is counted,
    // and is rolled back without ever serving.
    let tuning = policies.join("drift-rules.yaml");
    let original = std::fs::read_to_string(&tuning).unwrap_or_else(|e| panic!("{e}"));
    let rerated = original.replacen(
        "org-2fa-not-required:\n    severity: medium",
        "org-2fa-not-required:\n    severity: low",
        1,
    );
    assert_ne!(rerated, original, "the tuning file rates the rule");
    save(&tuning, rerated.as_bytes());
    let candidate = folder_version(&policies);
    assert_eq!(
        reloaded(&http, &server.base, "policy", &dir, &candidate).await,
        "shadowing"
    );
    // The trial's tally fills as the service evaluates; the reload report
    // comes first.
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = get_json(
            &http,
            &format!("{}/api/v1/policies", server.base),
            Some(VIEWER),
        )
        .await
        .1;
        if shown["shadow"]["tally"]["decisions"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(shown["version"], serving.as_str(), "{shown}");
    assert_eq!(shown["shadow"]["version"], candidate.as_str(), "{shown}");
    assert!(
        shown["shadow"]["tally"]["diffs"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "the re-rating was seen differing: {shown}"
    );
    assert_eq!(
        rated(&http, &server.base, "org-2fa-not-required").await,
        ("medium".to_string(), serving.clone()),
        "the serving version still decides"
    );
    let report = wait_outcome(&http, &server.base, &candidate, "rejected").await;
    assert!(
        report["problem"]
            .as_str()
            .is_some_and(|p| p.contains("differed")),
        "{report}"
    );
    assert!(
        report["shadow"]["examples"][0]["candidate"]["severity"] == "low",
        "{report}"
    );
    assert_eq!(
        rated(&http, &server.base, "org-2fa-not-required").await,
        ("medium".to_string(), serving.clone())
    );

    // A change that decides the same is promoted when its window ends.
    save(&tuning, original.as_bytes());
    let rego = policies.join("drift.rego");
    let mut text = std::fs::read_to_string(&rego).unwrap_or_else(|e| panic!("{e}"));
    text.push_str("\n# reviewed: no change in decisions\n");
    save(&rego, text.as_bytes());
    let benign = folder_version(&policies);
    wait_outcome(&http, &server.base, &benign, "applied").await;
    assert_eq!(
        rated(&http, &server.base, "org-2fa-not-required").await,
        ("medium".to_string(), benign)
    );
}

/// Waits until the policy folder's last reload tried `candidate` and ended
/// with `outcome`, and returns that report.
async fn wait_outcome(http: &reqwest::Client, base: &str, candidate: &str, outcome: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let (_, body) = get_json(http, &format!("{base}/api/v1/reloads"), Some(VIEWER)).await;
        if let Some(r) = body["reloads"].as_array().into_iter().flatten().find(|r| {
            r["kind"] == "policy" && r["candidate"] == candidate && r["outcome"] == outcome
        }) {
            return r.clone();
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {outcome} reload of {candidate} within 15 s: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bytecode_evaluator_gives_way_to_the_interpreter_on_a_version_it_misreads() {
    let (server, copies) = start_on_copies(&[("ORG_MESH_POLICIES__EVALUATOR", "bytecode")]).await;
    let http = client();
    let policies = copies.policies.clone();
    let dir = policies.display().to_string();
    let serving = folder_version(&policies);
    let shown = |http: reqwest::Client, base: String| async move {
        get_json(&http, &format!("{base}/api/v1/policies"), Some(VIEWER))
            .await
            .1
    };
    let before = shown(http.clone(), server.base.clone()).await;
    assert_eq!(before["evaluator"], "bytecode", "{before}");
    assert_eq!(
        rated(&http, &server.base, "org-2fa-not-required").await,
        ("medium".to_string(), serving)
    );

    // The tuned severity assigned in the rule body: the same meaning, but
    // regorus 0.14.1's VM leaves it undefined for a rule the tuning does
    // not rate, which the check at load finds.
    let drift = policies.join("drift.rego");
    let text = std::fs::read_to_string(&drift).unwrap_or_else(|e| panic!("{e}"));
    let misread = text.replacen(
        "_tuned := _settings.severity if {\n\t_settings.severity\n}",
        "_tuned := s if {\n\ts := _settings.severity\n}",
        1,
    );
    assert_ne!(
        misread, text,
        "drift.rego tests the tuned severity in its body"
    );
    save(&drift, misread.as_bytes());
    let candidate = folder_version(&policies);
    assert_eq!(
        reloaded(&http, &server.base, "policy", &dir, &candidate).await,
        "applied"
    );
    let after = shown(http.clone(), server.base.clone()).await;
    assert_eq!(after["version"], candidate.as_str(), "{after}");
    assert_eq!(after["evaluator"], "interpreter", "{after}");
    // The new version decides, through the interpreter, as the old one did.
    for _ in 0..200 {
        let (severity, version) = rated(&http, &server.base, "org-2fa-not-required").await;
        if version == candidate {
            assert_eq!(severity, "medium");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no finding was decided by {candidate} within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_drops_a_decision_rule_is_refused_and_the_serving_one_kept() {
    let (server, copies) = start_on_copies(&[]).await;
    let http = client();
    let policies = copies.policies.clone();
    let serving = folder_version(&policies);
    let rated_now = || rated(&http, &server.base, "org-2fa-not-required");
    assert_eq!(rated_now().await, ("medium".to_string(), serving.clone()));
    let aside = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let set_aside = |name: &str| {
        std::fs::rename(policies.join(name), aside.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    };
    let put_back = |name: &str| {
        std::fs::rename(aside.path().join(name), policies.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    };

    // The approval policy gone: every new fix would be denied for good.
    // The policy goes first, so no state between the two moves serves.
    set_aside("approval.rego");
    set_aside("approval_test.rego");
    let candidate = folder_version(&policies);
    let report = wait_outcome(&http, &server.base, &candidate, "rejected").await;
    let problem = report["problem"].as_str().unwrap_or_default();
    assert!(
        problem.contains("declares no data.orgmesh.approval.decision,")
            && problem.contains("kept the serving version"),
        "{report}"
    );
    assert_eq!(report["serving"], serving.as_str(), "{report}");
    assert_eq!(rated_now().await, ("medium".to_string(), serving.clone()));
    put_back("approval_test.rego");
    put_back("approval.rego");

    // The drift package renamed, its tests set aside: every finding would
    // lose its rating.
    let drift = policies.join("drift.rego");
    let text = std::fs::read_to_string(&drift).unwrap_or_else(|e| panic!("{e}"));
    let renamed = text.replacen("package orgmesh.drift\n", "package orgmesh.elsewhere\n", 1);
    assert_ne!(renamed, text, "drift.rego declares its package on a line");
    save(&drift, renamed.as_bytes());
    set_aside("drift_test.rego");
    let candidate = folder_version(&policies);
    let report = wait_outcome(&http, &server.base, &candidate, "rejected").await;
    assert!(
        report["problem"].as_str().is_some_and(|p| p.contains(
            "declares no data.orgmesh.drift.severity, data.orgmesh.drift.suppressed, \
             data.orgmesh.drift.suppress_reason, data.orgmesh.drift.auto_fix,"
        )),
        "{report}"
    );
    assert_eq!(rated_now().await, ("medium".to_string(), serving.clone()));

    // Put back as it was, the folder is the serving version again.
    save(&drift, text.as_bytes());
    put_back("drift_test.rego");
    assert_eq!(folder_version(&policies), serving);
    assert_eq!(rated_now().await, ("medium".to_string(), serving.clone()));

    // A rule the folder's tests never reach that fails on a finding in
    // service: a conflicting value for one subject.
    let local = policies.join("local.rego");
    save(
        &local,
        b"package orgmesh.drift\n\nimport rego.v1\n\nseverity := \"critical\" if {\n\
          \tinput.subject.key == \"github:octokit-fixture-org\"\n}\n",
    );
    let candidate = folder_version(&policies);
    let report = wait_outcome(&http, &server.base, &candidate, "rejected").await;
    assert!(
        report["problem"].as_str().is_some_and(|p| p.contains(
            "it fails to decide a finding in service that the serving version decides, which \
             in its place would lose its rating: org-2fa-not-required on \
             Organisation(github:octokit-fixture-org): "
        )),
        "{report}"
    );
    assert_eq!(rated_now().await, ("medium".to_string(), serving.clone()));
    std::fs::remove_file(&local).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(folder_version(&policies), serving);

    // The tuning file gone: every tuned severity and suppression would go.
    set_aside("drift-rules.yaml");
    let candidate = folder_version(&policies);
    let report = wait_outcome(&http, &server.base, &candidate, "rejected").await;
    assert!(
        report["problem"].as_str().is_some_and(
            |p| p.contains("it has no drift-rules.yaml, which the serving version is tuned by")
        ),
        "{report}"
    );
    assert_eq!(report["serving"], serving.as_str(), "{report}");
    put_back("drift-rules.yaml");
    assert_eq!(folder_version(&policies), serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_plugin_rejected_on_reload_is_told_its_own_problem() {
    let (server, copies) = start_on_copies(&[]).await;
    let http = client();
    for plugin in ["scim-connector", "gitlab-connector"] {
        std::fs::remove_dir_all(copies.plugins.join(plugin)).unwrap_or_else(|e| panic!("{e}"));
    }
    let answer = http
        .post(format!("{}/api/v1/reload", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status().as_u16(), 422);
    let (_, reloads) = get_json(
        &http,
        &format!("{}/api/v1/reloads", server.base),
        Some(VIEWER),
    )
    .await;
    let problem = |instance: &str| -> String {
        reloads["reloads"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["kind"] == "plugin" && r["target"] == instance)
            .and_then(|r| r["problem"].as_str())
            .unwrap_or_else(|| panic!("no problem reported for {instance}: {reloads}"))
            .to_owned()
    };
    for (instance, own, other) in [
        ("okta", "scim-connector", "connector gitlab:"),
        ("gitlab", "gitlab-connector", "connector okta:"),
    ] {
        let said = problem(instance);
        assert!(
            said.contains(&format!(
                "connector {instance}: plugin \"{own}\" is not loaded"
            )),
            "{instance}: {said}"
        );
        assert!(
            !said.contains(other),
            "{instance} was told another's problem: {said}"
        );
    }
}

/// A suppression that expires brings its finding back when it says, with
/// nothing else happening: no change to the twin, no reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_comes_back_when_its_suppression_expires_with_nothing_else_happening() {
    let policies = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    copy_tree(&root().join("policies"), policies.path());
    let tuning = policies.path().join("drift-rules.yaml");
    let text = std::fs::read_to_string(&tuning).unwrap_or_else(|e| panic!("{e}"));
    let expires = (time::OffsetDateTime::now_utc() + time::Duration::seconds(12))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{e}"));
    let suppressed = text.replacen(
        "suppressions:\n",
        &format!(
            "suppressions:\n  - rule: org-2fa-not-required\n    subject: \"*\"\n    \
             reason: \"accepted until the audit\"\n    expires: {expires}\n"
        ),
        1,
    );
    assert_ne!(suppressed, text, "the tuning file has a suppressions list");
    std::fs::write(&tuning, suppressed).unwrap_or_else(|e| panic!("{e}"));
    let dir = policies.path().display().to_string();
    let (server, _copies) = start_on_copies(&[("ORG_MESH_POLICIES__DIR", dir.as_str())]).await;
    let http = client();
    let suppressed_now = async || {
        let (status, body) = get_json(
            &http,
            &format!("{}/api/v1/findings?rule=org-2fa-not-required", server.base),
            Some(VIEWER),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["findings"][0]["decision"]["suppressed"].as_bool()
    };
    assert_eq!(suppressed_now().await, Some(true));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while suppressed_now().await != Some(false) {
        assert!(
            std::time::Instant::now() < deadline,
            "still suppressed a minute after {expires}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
