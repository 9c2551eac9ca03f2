//! One fix from proposal to verification, in process: the shipped
//! approval policy lets a branch-protection fix run unattended, the GitHub
//! executor (the built component, run by the host's runtime) restores the
//! protection through GitHub's recorded writes replayed on 127.0.0.1, and
//! the proposal is verified once an evaluation no longer shows the
//! finding. The proposal's trail is read back from the twin. And the same
//! fix approved with a plan that announced only its read: the host refuses
//! the write and the fix fails. And a stored plan that no longer reads as a
//! plan fails its fix before anything is sent, and the fix, tried again at
//! a person's request, is planned afresh and runs. And a fix approved, or
//! awaiting approval, whose finding goes before it runs never runs. And a
//! fix not yet run follows the approval policy when its answer changes.
//!
//! Needs `.ci/setup` and `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::collections::BTreeMap;
use std::sync::Arc;

use org_mesh_app::actions::{Engine, Proposal, Proposals, Refusal, State, retry};
use org_mesh_app::config::ActionsConfig;
use org_mesh_app::pipeline::{DecisionView, Evaluation, ProposedAction, Reported};
use org_mesh_cache::memory::MemoryCoordination;
use org_mesh_harness::{GITHUB_TOKEN, Scenario, replay, root};
use org_mesh_model::{
    Batch, EntityId, Finding, Node, NodeRef, Properties, Remedy, Severity, Value,
};
use org_mesh_policy::PolicySet;
use org_mesh_runtime::{
    ActionPlan, ActionRequest, Grants, Manifest, Plugin, Runtime, RuntimeOptions, SecretSource,
};
use org_mesh_store::{EmbeddedStore, GraphStore};

const REPO: &str = "octokit-fixture-org/branch-protection";

fn finding(repository: &NodeRef) -> Finding {
    let mut parameters = Properties::new();
    parameters.insert("repository".into(), Value::Text(REPO.into()));
    parameters.insert("branch".into(), Value::Text("main".into()));
    parameters.insert("enforce_admins".into(), Value::Boolean(false));
    Finding {
        detector: "identity-drift".into(),
        rule: "branch-protection-below-baseline".into(),
        subject: repository.clone(),
        key: String::new(),
        title: "main is unprotected".into(),
        score: 1.0,
        default_severity: Severity::Medium,
        attributes: Properties::new(),
        evidence: Vec::new(),
        remedy: Some(Remedy {
            action: "github.restore-branch-protection".into(),
            target: repository.clone(),
            parameters,
        }),
        fingerprint: org_mesh_model::fingerprint(
            "branch-protection-below-baseline",
            repository,
            "",
        ),
    }
}

/// The default actions settings with fixes allowed to run.
fn fixes_run() -> ActionsConfig {
    ActionsConfig {
        dry_run: false,
        ..ActionsConfig::default()
    }
}

/// A twin holding the recorded repository, the built GitHub executor bound
/// to a fresh replay of GitHub's branch-protection exchange, and the
/// shipped policies.
struct Fixture {
    scenario: Scenario,
    _state: tempfile::TempDir,
    store: EmbeddedStore,
    executors: [Plugin; 1],
    policy: PolicySet,
    repository: NodeRef,
}

async fn fixture() -> Fixture {
    let scenario = replay().scenario("branch-protection");
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = EmbeddedStore::open(&state.path().join("twin.redb"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let repository = NodeRef::new("Repository", format!("github:{REPO}"));
    store
        .apply(
            "github",
            time::OffsetDateTime::now_utc(),
            Batch {
                nodes: vec![Node {
                    label: "Repository".into(),
                    key: repository.key.clone(),
                    properties: Properties::new(),
                }],
                ..Batch::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let runtime = Runtime::new(
        RuntimeOptions::default(),
        Arc::new(MemoryCoordination::default()),
        None,
        &prometheus::Registry::new(),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let manifest = Manifest::load(&root().join("plugins/dist/github-executor/manifest.yaml"))
        .unwrap_or_else(|e| panic!("{e}: run .ci/build-plugins"));
    let token = state.path().join("token");
    std::fs::write(&token, GITHUB_TOKEN).unwrap_or_else(|e| panic!("{e}"));
    let executor = runtime
        .load(manifest)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .bind(
            "github-fix",
            &serde_json::json!({"api_url": scenario.api_url}),
            Grants {
                http_hosts: vec![replay().host()],
                secrets: BTreeMap::from([("token".to_string(), SecretSource::File(token))]),
                ..Grants::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
    let policy = PolicySet::load(&root().join("policies")).unwrap_or_else(|e| panic!("{e}"));
    Fixture {
        scenario,
        _state: state,
        store,
        executors: [executor],
        policy,
        repository,
    }
}

impl Fixture {
    /// The executor's plan for the finding's fix.
    async fn plan(&self) -> ActionPlan {
        let remedy = finding(&self.repository)
            .remedy
            .unwrap_or_else(|| panic!("a remedy"));
        self.executors[0]
            .plan(&ActionRequest {
                kind: remedy.action.clone(),
                target: remedy.target.clone(),
                parameters: remedy.parameters.clone(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// An evaluation showing the finding, which the policy lets run
    /// unattended with `plan`.
    fn showing_the_finding(&self, plan: ActionPlan) -> Evaluation {
        let found = finding(&self.repository);
        let remedy = found.remedy.clone().unwrap_or_else(|| panic!("a remedy"));
        Evaluation {
            findings: vec![Reported {
                severity: Severity::Medium,
                decision: Some(DecisionView {
                    policy_version: "test".into(),
                    severity: Some(Severity::Medium),
                    suppressed: Some(false),
                    suppress_reason: None,
                    auto_fix: Some(true),
                    undefined: Vec::new(),
                    may_act: true,
                }),
                action: Some(ProposedAction {
                    executor: "github-fix".into(),
                    kind: remedy.action.clone(),
                    target: remedy.target.clone(),
                    parameters: org_mesh_model::properties_to_json(&remedy.parameters),
                    plan: Some(plan),
                    unplanned: None,
                    approval: None,
                }),
                instance: "identity-drift".into(),
                detector_version: "test".into(),
                finding: found,
            }],
            ..Evaluation::default()
        }
    }

    /// The finding's fix approved while fixes are held, its stored plan
    /// then replaced by JSON that is no plan, and run once fixes may run:
    /// the failed proposal.
    async fn failed_by_a_damaged_plan(&self, open: &Evaluation) -> Proposal {
        let now = time::OffsetDateTime::now_utc;
        let held = ActionsConfig::default();
        assert!(held.dry_run, "fixes are held by default");
        self.engine(&held)
            .round(open, now())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let proposals = Proposals { store: &self.store };
        let mut all = proposals.all().await.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(all.len(), 1);
        let mut approved = all.remove(0);
        assert_eq!(approved.state, State::Approved, "{approved:?}");
        approved.plan = Some(serde_json::json!({"calls": "every write"}));
        proposals
            .save(&approved, now())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let config = fixes_run();
        let round = self
            .engine(&config)
            .round(open, now())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(round.executed.is_empty(), "{:?}", round.executed);
        let failed = proposals
            .all()
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
            .remove(0);
        assert_eq!(failed.state, State::Failed, "{:?}", failed.events);
        failed
    }

    fn engine<'a>(&'a self, config: &'a ActionsConfig) -> Engine<'a> {
        self.engine_under(&self.policy, config)
    }

    fn engine_under<'a>(&'a self, policy: &'a PolicySet, config: &'a ActionsConfig) -> Engine<'a> {
        Engine {
            proposals: Proposals { store: &self.store },
            policy: Some(policy),
            executors: &self.executors,
            config,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unattended_fix_runs_through_recorded_writes_and_is_verified_when_the_finding_goes() {
    let fx = fixture().await;
    let open = fx.showing_the_finding(fx.plan().await);
    let repository = fx.repository.clone();
    let store = &fx.store;

    let config = fixes_run();
    let engine = fx.engine(&config);
    let now = time::OffsetDateTime::now_utc;

    let first = engine
        .round(&open, now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(first.executed, [("github-fix".to_string(), true)]);
    assert_eq!(
        replay().pending_methods(&fx.scenario),
        ["DELETE", "PUT"],
        "only the recorded read and write were sent"
    );

    // Seen again while the twin still shows the finding: nothing runs twice.
    let second = engine
        .round(&open, now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(second.executed.is_empty(), "{:?}", second.executed);

    // The twin no longer shows it: verified.
    let closed = Evaluation::default();
    engine
        .round(&closed, now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    let proposals = engine
        .proposals
        .all()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(proposals.len(), 1);
    let p = &proposals[0];
    let states: Vec<State> = p.events.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [
            State::Proposed,
            State::Approved,
            State::Executing,
            State::Succeeded,
            State::Verified
        ]
    );
    assert_eq!(p.events[1].actor, "policy");
    assert_eq!(p.events[2].actor, "github-fix");
    assert_eq!(p.events[4].actor, "twin");
    assert!(
        p.outcome.as_ref().is_some_and(|o| o["changed"] == true),
        "{p:?}"
    );
    assert!(
        p.decision
            .as_ref()
            .is_some_and(|d| d["decision"]["auto_fix"] == true),
        "{p:?}"
    );

    // The trail is in the twin: each state a version, linked to the repo.
    let node = NodeRef::new("Proposal", p.id.clone());
    let history = store
        .history(&EntityId::Node(node.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(history.len() >= 3, "{history:?}");
    let fixes = store
        .neighbours(&node, "FIXES", org_mesh_model::Direction::Outgoing)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fixes
            .iter()
            .map(|(_, n)| n.node.reference())
            .collect::<Vec<_>>(),
        [repository]
    );
}

/// The approved plan announced only the read: the executor finds the
/// protection gone and tries to restore it, and the host refuses the
/// write, so the fix fails, says why, and GitHub never gets the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_that_writes_outside_its_approved_plan_fails_and_sends_nothing_unplanned() {
    let fx = fixture().await;
    let mut plan = fx.plan().await;
    plan.calls.retain(|c| c.method == "GET");
    assert_eq!(plan.calls.len(), 1, "{plan:?}");
    let config = fixes_run();
    let engine = fx.engine(&config);
    let round = engine
        .round(
            &fx.showing_the_finding(plan),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(round.executed, [("github-fix".to_string(), false)]);
    assert_eq!(
        replay().pending_methods(&fx.scenario),
        ["DELETE", "PUT", "PUT"],
        "the recorded write must still be waiting"
    );
    let proposals = engine
        .proposals
        .all()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let last = proposals[0]
        .events
        .last()
        .unwrap_or_else(|| panic!("a trail"));
    assert_eq!(last.state, State::Failed);
    assert!(
        last.reason.contains("PUT ") && last.reason.contains("does not announce"),
        "{last:?}"
    );
}

/// A proposal approved while fixes were held whose stored plan no longer
/// reads as a plan (edited by hand, or written by another version): once
/// fixes may run, it fails before the executor is called, and GitHub gets
/// nothing. A person then asks for it to be tried again: the next round
/// plans it afresh, the policy approves that plan, and it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_whose_stored_plan_cannot_be_read_fails_unsent_and_runs_once_tried_again() {
    let fx = fixture().await;
    let open = fx.showing_the_finding(fx.plan().await);
    let now = time::OffsetDateTime::now_utc;
    let unsent = replay().pending_methods(&fx.scenario);

    let failed = fx.failed_by_a_damaged_plan(&open).await;
    assert_eq!(
        replay().pending_methods(&fx.scenario),
        unsent,
        "nothing may reach GitHub"
    );
    let last = failed.events.last().unwrap_or_else(|| panic!("a trail"));
    assert!(last.reason.contains("cannot be read"), "{last:?}");
    assert!(
        failed.events.iter().all(|e| e.state != State::Executing),
        "{:?}",
        failed.events
    );
    let proposals = Proposals { store: &fx.store };
    let config = fixes_run();
    // What the proposal stored is stale by now; trying again takes the fix
    // the finding shows.
    let mut failed = failed;
    failed
        .parameters
        .insert("branch".into(), Value::Text("release".into()));
    retry(&mut failed, "alex", "the stored plan was damaged", now())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(failed.state, State::Proposed);
    assert!(failed.plan.is_none() && failed.approval.is_none());
    proposals
        .save(&failed, now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let round = fx
        .engine(&config)
        .round(&open, now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(round.executed, [("github-fix".to_string(), true)]);
    assert_eq!(
        replay().pending_methods(&fx.scenario),
        ["DELETE", "PUT"],
        "the recorded read and write were sent"
    );
    let mut done = proposals
        .all()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
        .remove(0);
    let states: Vec<State> = done.events.iter().map(|e| e.state).collect();
    assert_eq!(
        states[states.len() - 5..],
        [
            State::Failed,
            State::Proposed,
            State::Approved,
            State::Executing,
            State::Succeeded
        ],
        "{:?}",
        done.events
    );
    assert_eq!(done.events[states.len() - 4].actor, "alex");
    assert!(done.plan.is_some(), "the new plan is kept");
    assert_eq!(
        done.parameters.get("branch"),
        Some(&Value::Text("main".into()))
    );

    // Only a failed or expired fix is tried again.
    assert!(matches!(
        retry(&mut done, "alex", "again", now()),
        Err(Refusal::NotRetriable { .. })
    ));
}

/// Tried again after the twin stopped showing the finding: nothing is left
/// to fix, so the proposal is verified and nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_tried_again_once_its_finding_is_gone_is_verified_and_runs_nothing() {
    let fx = fixture().await;
    let open = fx.showing_the_finding(fx.plan().await);
    let now = time::OffsetDateTime::now_utc;
    let unsent = replay().pending_methods(&fx.scenario);
    let mut failed = fx.failed_by_a_damaged_plan(&open).await;
    retry(&mut failed, "alex", "try once more", now()).unwrap_or_else(|e| panic!("{e}"));
    let proposals = Proposals { store: &fx.store };
    proposals
        .save(&failed, now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let config = fixes_run();
    let round = fx
        .engine(&config)
        .round(&Evaluation::default(), now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(round.executed.is_empty(), "{:?}", round.executed);
    assert_eq!(replay().pending_methods(&fx.scenario), unsent);
    let done = proposals
        .all()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
        .remove(0);
    assert_eq!(done.state, State::Verified, "{:?}", done.events);
    assert_eq!(done.events.last().map(|e| e.actor.as_str()), Some("twin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_whose_finding_went_before_it_ran_is_verified_and_sends_nothing() {
    let fx = fixture().await;
    let now = time::OffsetDateTime::now_utc;
    let unsent = replay().pending_methods(&fx.scenario);
    let proposals = Proposals { store: &fx.store };
    let only = || async {
        let mut all = proposals.all().await.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    };

    // Approved by the policy while fixes are held.
    let mut open = fx.showing_the_finding(fx.plan().await);
    let held = ActionsConfig::default();
    fx.engine(&held)
        .round(&open, now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(only().await.state, State::Approved);

    // The detector failed this round: its findings are missing, not gone.
    let failed_detector = Evaluation {
        detectors: vec!["identity-drift".into()],
        ..Evaluation::default()
    };
    fx.engine(&held)
        .round(&failed_detector, now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(only().await.state, State::Approved);

    // The detector ran and the finding is gone: the approved fix does not
    // run once fixes may.
    let config = fixes_run();
    let cleared = Evaluation {
        detectors: vec!["identity-drift".into()],
        detected_by: BTreeMap::from([("identity-drift".to_string(), "test".to_string())]),
        ..Evaluation::default()
    };
    let round = fx
        .engine(&config)
        .round(&cleared, now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(round.executed.is_empty(), "{:?}", round.executed);
    assert_eq!(replay().pending_methods(&fx.scenario), unsent);
    let verified = only().await;
    assert_eq!(verified.state, State::Verified, "{:?}", verified.events);
    assert!(
        verified
            .events
            .last()
            .is_some_and(|e| e.actor == "twin" && e.reason.contains("its fix does not run")),
        "{:?}",
        verified.events
    );

    // A fix awaiting a person's approval goes the same way.
    let awaiting = fixture().await;
    open = awaiting.showing_the_finding(awaiting.plan().await);
    if let Some(decision) = open.findings[0].decision.as_mut() {
        decision.auto_fix = Some(false);
    }
    awaiting
        .engine(&config)
        .round(&open, now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let proposals = Proposals {
        store: &awaiting.store,
    };
    let state = |all: Vec<Proposal>| all.first().map(|p| p.state);
    assert_eq!(
        state(proposals.all().await.unwrap_or_else(|e| panic!("{e:#}"))),
        Some(State::AwaitingApproval)
    );
    awaiting
        .engine(&config)
        .round(&cleared, now())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        state(proposals.all().await.unwrap_or_else(|e| panic!("{e:#}"))),
        Some(State::Verified)
    );
}

/// A policy folder holding only an approval rule whose answer is `decision`.
fn approval_policy(decision: &str) -> (tempfile::TempDir, PolicySet) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("approval.rego"),
        format!("package orgmesh.approval\n\nimport rego.v1\n\ndecision := {decision}\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let set = PolicySet::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (dir, set)
}

/// A fix that has not run follows the approval policy when its answer
/// changes: a fix approved, or waiting for people, that the policy now
/// denies does not run, and that denial stands; one that now needs more
/// approvals starts again; one denied because the policy failed is decided
/// once the policy answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_not_yet_run_is_decided_again_when_the_approval_policy_changes_its_answer() {
    let now = time::OffsetDateTime::now_utc;
    let (_deny_dir, deny) = approval_policy(
        r#"{"mode": "deny", "reason": "branch protection is managed elsewhere now"}"#,
    );
    let (_two_dir, two) = approval_policy(
        r#"{"mode": "approve", "approvers": 2, "role": "approver", "expires_in_secs": 3600}"#,
    );
    let (_broken_dir, broken) = approval_policy(
        r#"{"mode": "approve", "approvers": 1, "role": "approver", "expires_in_secs": "4h"}"#,
    );
    let held = ActionsConfig::default();
    let run = fixes_run();
    let only = |fx: &Fixture| {
        let store = fx.store.clone();
        async move {
            let mut all = Proposals { store: &store }
                .all()
                .await
                .unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(all.len(), 1, "{all:?}");
            all.remove(0)
        }
    };
    let last_reason = |p: &Proposal| {
        p.events
            .last()
            .map(|e| e.reason.clone())
            .unwrap_or_default()
    };

    // Approved unattended by the shipped policy while fixes are held.
    let fx = fixture().await;
    let unsent = replay().pending_methods(&fx.scenario);
    let open = fx.showing_the_finding(fx.plan().await);
    let round = async |engine: Engine<'_>, open: &Evaluation| {
        engine
            .round(open, now())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    };
    round(fx.engine(&held), &open).await;
    assert_eq!(only(&fx).await.state, State::Approved);

    // The policy now denies it: once fixes may run, it does not.
    let done = round(fx.engine_under(&deny, &run), &open).await;
    assert!(done.executed.is_empty(), "{:?}", done.executed);
    assert_eq!(replay().pending_methods(&fx.scenario), unsent);
    let denied = only(&fx).await;
    assert_eq!(denied.state, State::Denied, "{:?}", denied.events);
    assert_eq!(
        last_reason(&denied),
        "decided again: branch protection is managed elsewhere now"
    );
    // That denial is the policy's answer: it stands under the old policy.
    round(fx.engine(&run), &open).await;
    assert_eq!(only(&fx).await, denied);
    assert_eq!(replay().pending_methods(&fx.scenario), unsent);

    // A fix waiting for one approval, on a fresh twin.
    let fx = fixture().await;
    let mut open = fx.showing_the_finding(fx.plan().await);
    if let Some(decision) = open.findings[0].decision.as_mut() {
        decision.auto_fix = Some(false);
    }
    round(fx.engine(&held), &open).await;
    let waiting = only(&fx).await;
    assert_eq!(waiting.state, State::AwaitingApproval);
    // The same answer again changes nothing.
    round(fx.engine(&held), &open).await;
    assert_eq!(only(&fx).await, waiting);

    // Two approvals now: it waits for them, from the start.
    round(fx.engine_under(&two, &held), &open).await;
    let more = only(&fx).await;
    assert_eq!(more.state, State::AwaitingApproval);
    assert!(
        last_reason(&more).starts_with("decided again: needs 2 approval(s)"),
        "{:?}",
        more.events
    );

    // The policy fails: nothing runs, for want of a decision ...
    round(fx.engine_under(&broken, &run), &open).await;
    let failed = only(&fx).await;
    assert_eq!(failed.state, State::Denied);
    assert!(
        last_reason(&failed).starts_with("decided again: the approval policy failed"),
        "{:?}",
        failed.events
    );
    // ... and again under the same broken policy adds nothing to the trail.
    round(fx.engine_under(&broken, &run), &open).await;
    assert_eq!(only(&fx).await, failed);
    // Once the policy answers again, the fix waits for its approval.
    round(fx.engine(&held), &open).await;
    let answered = only(&fx).await;
    assert_eq!(
        answered.state,
        State::AwaitingApproval,
        "{:?}",
        answered.events
    );
    assert!(
        last_reason(&answered).starts_with("decided again: needs 1 approval(s)"),
        "{:?}",
        answered.events
    );
}
