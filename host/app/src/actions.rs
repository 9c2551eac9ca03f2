//! Fixes, from proposal to verification.
//!
//! Every finding whose detector suggests a remedy, and for which a
//! configured executor made a plan, becomes a proposal. The approval
//! policy decides whether it may run unattended, needs people (how many,
//! which role, until when) or must not run. Approved proposals run through
//! their executor, within the configured blast radius, unless the global
//! dry-run switch or the executor's kill switch holds them. A fix that
//! succeeded is verified only when a later evaluation of the twin no
//! longer shows its finding.
//!
//! Proposals live in the twin as `Proposal` nodes, one per finding and
//! action, linked by a `FIXES` edge to the entity they touch. Each state
//! change rewrites the node with the whole trail of events (who, when,
//! why), and the twin keeps every version in the node's history.

use std::collections::BTreeMap;

use anyhow::Context;
use org_mesh_model::{Batch, Edge, Node, NodeRef, Properties, Timestamp, Value};
use org_mesh_policy::{
    ActionFacts, Approval, ApprovalInput, ApproverRole, FindingFacts, PolicySet,
};
use org_mesh_runtime::{ActionPlan, ActionRequest, Plugin};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::config::{ActionsConfig, Role};
use crate::pipeline::{Evaluation, Reported};

/// The source proposals are recorded under in the twin.
pub const SOURCE: &str = "org-mesh-actions";
pub const LABEL: &str = "Proposal";
const FIXES: &str = "FIXES";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Proposed,
    AwaitingApproval,
    Approved,
    Rejected,
    Denied,
    Expired,
    Executing,
    Succeeded,
    Failed,
    Verified,
}

impl State {
    pub const ALL: [State; 10] = [
        State::Proposed,
        State::AwaitingApproval,
        State::Approved,
        State::Rejected,
        State::Denied,
        State::Expired,
        State::Executing,
        State::Succeeded,
        State::Failed,
        State::Verified,
    ];

    /// The name the API, the trail and the command line use.
    pub fn name(self) -> &'static str {
        match self {
            State::Proposed => "proposed",
            State::AwaitingApproval => "awaiting_approval",
            State::Approved => "approved",
            State::Rejected => "rejected",
            State::Denied => "denied",
            State::Expired => "expired",
            State::Executing => "executing",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Verified => "verified",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for State {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = State::ALL.iter().map(|state| state.name()).collect();
                format!("{s:?} is no proposal state; one of {}", names.join(", "))
            })
    }
}

/// One recorded step of a proposal's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub state: State,
    /// `policy`, `twin`, an executor instance, or the name of the API
    /// token that acted.
    pub actor: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: String,
    /// The fingerprint of the finding it fixes.
    pub finding: String,
    pub rule: String,
    pub executor: String,
    pub kind: String,
    pub target: NodeRef,
    pub parameters: Properties,
    /// What the drift policy decided about the finding when the proposal
    /// was made: severity, suppression, auto-fix and the policy version.
    #[serde(default)]
    pub decision: Option<serde_json::Value>,
    pub state: State,
    pub approval: Option<Approval>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<Timestamp>,
    /// People who approved, one event each.
    pub approvals: Vec<Event>,
    /// The executor's dry run: the calls it would make.
    pub plan: Option<serde_json::Value>,
    /// What the execution did.
    pub outcome: Option<serde_json::Value>,
    pub events: Vec<Event>,
}

impl Proposal {
    fn record(&mut self, state: State, actor: &str, at: Timestamp, reason: impl Into<String>) {
        self.state = state;
        self.events.push(Event {
            state,
            actor: actor.to_string(),
            at,
            reason: reason.into(),
        });
    }

    /// Records a note on the current state once: held proposals are looked
    /// at on every evaluation, and the trail should say why once.
    fn note_once(&mut self, actor: &str, at: Timestamp, reason: &str) {
        if self.events.last().is_some_and(|e| e.reason == reason) {
            return;
        }
        let state = self.state;
        self.record(state, actor, at, reason);
    }

    fn request(&self) -> ActionRequest {
        ActionRequest {
            kind: self.kind.clone(),
            target: self.target.clone(),
            parameters: self.parameters.clone(),
            idempotency_key: self.id.clone(),
        }
    }
}

/// The proposal id of a finding's fix: stable, so a finding seen again
/// maps to the same proposal.
pub fn proposal_id(fingerprint: &str, kind: &str) -> String {
    let digest = sha2::Sha256::digest(format!("{fingerprint}\n{kind}").as_bytes());
    hex::encode(&digest[..8])
}

/// Reads and writes proposals in the twin.
#[derive(Debug)]
pub struct Proposals<'a> {
    pub store: &'a dyn org_mesh_store::GraphStore,
}

impl Proposals<'_> {
    pub async fn all(&self) -> anyhow::Result<Vec<Proposal>> {
        let nodes = self
            .store
            .nodes(LABEL)
            .await
            .context("reading proposals from the twin")?;
        let mut out = Vec::new();
        for n in nodes {
            let Some(Value::Text(text)) = n.node.properties.get("record") else {
                tracing::warn!(proposal = %n.node.key, "A proposal without its record; left out");
                continue;
            };
            match serde_json::from_str::<Proposal>(text) {
                Ok(p) => out.push(p),
                Err(e) => {
                    tracing::warn!(proposal = %n.node.key, error = %e, "An unreadable proposal; left out")
                }
            }
        }
        Ok(out)
    }

    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Proposal>> {
        Ok(self.all().await?.into_iter().find(|p| p.id == id))
    }

    pub async fn save(&self, proposal: &Proposal, at: Timestamp) -> anyhow::Result<()> {
        let record = serde_json::to_string(proposal).context("encoding a proposal")?;
        let mut properties = Properties::new();
        properties.insert("record".into(), Value::Text(record));
        properties.insert(
            "state".into(),
            Value::Text(
                serde_json::to_value(proposal.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            ),
        );
        properties.insert("finding".into(), Value::Text(proposal.finding.clone()));
        properties.insert("executor".into(), Value::Text(proposal.executor.clone()));
        properties.insert("action".into(), Value::Text(proposal.kind.clone()));
        let node = Node {
            label: LABEL.into(),
            key: proposal.id.clone(),
            properties,
        };
        let edge = Edge {
            kind: FIXES.into(),
            from: node.reference(),
            to: proposal.target.clone(),
            properties: Properties::new(),
        };
        let batch = Batch {
            nodes: vec![node],
            edges: vec![edge],
            complete: Vec::new(),
            partial: false,
        };
        let applied = self
            .store
            .apply(SOURCE, at, batch)
            .await
            .with_context(|| format!("recording proposal {}", proposal.id))?;
        for s in &applied.skipped {
            // The target may not be in the twin (an entity the executor
            // knows by name only); the proposal stands without the link.
            tracing::debug!(proposal = %proposal.id, skipped = %s.record, reason = %s.reason, "Proposal link left out");
        }
        Ok(())
    }
}

/// What one round of proposing, verifying and executing did.
#[derive(Debug, Default)]
pub struct Round {
    pub changed: Vec<Proposal>,
    pub executed: Vec<(String, bool)>,
}

/// Turns an evaluation's planned fixes into proposals, expires and
/// verifies the ones in flight, and runs what is approved.
#[derive(Debug)]
pub struct Engine<'a> {
    pub proposals: Proposals<'a>,
    pub policy: Option<&'a PolicySet>,
    pub executors: &'a [Plugin],
    pub config: &'a ActionsConfig,
}

impl Engine<'_> {
    pub async fn round(&self, evaluation: &Evaluation, now: Timestamp) -> anyhow::Result<Round> {
        let mut round = Round::default();
        let mut known: BTreeMap<String, Proposal> = self
            .proposals
            .all()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let open: std::collections::BTreeSet<&str> = evaluation
            .findings
            .iter()
            .map(|r| r.finding.fingerprint.as_str())
            .collect();
        // A detector that failed this round has none of its findings here,
        // which would make every one of them look fixed; a finding counts
        // as gone only when every detector's findings are all here.
        let complete = evaluation
            .detectors
            .iter()
            .all(|d| evaluation.detected_by.contains_key(d));
        let gone = |p: &Proposal| complete && !open.contains(p.finding.as_str());

        for reported in &evaluation.findings {
            let Some(action) = &reported.action else {
                continue;
            };
            let Some(remedy) = &reported.finding.remedy else {
                continue;
            };
            if action.executor.is_empty() {
                continue;
            }
            let id = proposal_id(&reported.finding.fingerprint, &action.kind);
            if let Some(existing) = known.get_mut(&id) {
                // A proposal left proposed is one a person asked to try
                // again: it takes this evaluation's fix (the finding may
                // have moved since) with its plan and is decided on afresh.
                if existing.state == State::Proposed {
                    existing.executor = action.executor.clone();
                    existing.target = action.target.clone();
                    existing.parameters = remedy.parameters.clone();
                    existing.plan = action
                        .plan
                        .as_ref()
                        .and_then(|p| serde_json::to_value(p).ok());
                    existing.decision = Some(json_decision(reported));
                    self.decide(existing, reported, action.plan.as_ref(), now);
                    round.changed.push(existing.clone());
                } else if self.reconsider(existing, reported, action.plan.as_ref(), now) {
                    round.changed.push(existing.clone());
                }
                continue;
            }
            let mut proposal = Proposal {
                id: id.clone(),
                finding: reported.finding.fingerprint.clone(),
                rule: reported.finding.rule.clone(),
                executor: action.executor.clone(),
                kind: action.kind.clone(),
                target: action.target.clone(),
                parameters: remedy.parameters.clone(),
                decision: Some(json_decision(reported)),
                state: State::Proposed,
                approval: None,
                expires_at: None,
                approvals: Vec::new(),
                plan: action
                    .plan
                    .as_ref()
                    .and_then(|p| serde_json::to_value(p).ok()),
                outcome: None,
                events: Vec::new(),
            };
            proposal.record(
                State::Proposed,
                "policy",
                now,
                format!("{} on {}", reported.finding.rule, reported.finding.subject),
            );
            self.decide(&mut proposal, reported, action.plan.as_ref(), now);
            known.insert(id, proposal.clone());
            round.changed.push(proposal);
        }

        for proposal in known.values_mut() {
            let before = proposal.clone();
            match proposal.state {
                // Approval was asked for the finding as it was; with the
                // finding gone, running the fix would undo what fixed it
                // (a person offboarded and then reinstated would lose the
                // access given back).
                State::AwaitingApproval | State::Approved if gone(proposal) => {
                    proposal.record(
                        State::Verified,
                        "twin",
                        now,
                        "observed again: the finding is gone, so its fix does not run",
                    );
                }
                State::AwaitingApproval if proposal.expires_at.is_some_and(|e| e <= now) => {
                    proposal.record(
                        State::Expired,
                        "policy",
                        now,
                        "no approval before it expired",
                    );
                }
                State::Succeeded if gone(proposal) => {
                    proposal.record(
                        State::Verified,
                        "twin",
                        now,
                        "observed again: the finding is gone",
                    );
                }
                State::Proposed if gone(proposal) => {
                    proposal.record(
                        State::Verified,
                        "twin",
                        now,
                        "observed again: the finding is gone, so nothing is tried again",
                    );
                }
                _ => {}
            }
            if *proposal != before && !round.changed.iter().any(|p| p.id == proposal.id) {
                round.changed.push(proposal.clone());
            }
        }

        self.execute_approved(&mut known, &mut round, now).await;

        for proposal in &round.changed {
            let latest = known.get(&proposal.id).unwrap_or(proposal);
            self.proposals.save(latest, now).await?;
        }
        Ok(round)
    }

    /// Asks the approval policy again about a proposal that has not run:
    /// one waiting for people or approved, so that a policy that now denies
    /// its fix, or asks more of it, is obeyed before it runs; and one
    /// denied for want of a decision (no plan, over the blast radius, no
    /// policies, a policy that failed), so that it is decided once one can
    /// be made. A denial the policy gave stands. Returns whether the
    /// proposal changed: only when the answer differs from the one it has,
    /// and then its approvals start again.
    fn reconsider(
        &self,
        proposal: &mut Proposal,
        reported: &Reported,
        plan: Option<&ActionPlan>,
        now: Timestamp,
    ) -> bool {
        let open = match proposal.state {
            State::AwaitingApproval | State::Approved => true,
            State::Denied => proposal.approval.is_none(),
            _ => false,
        };
        if !open {
            return false;
        }
        let mut fresh = proposal.clone();
        fresh.approval = None;
        fresh.expires_at = None;
        fresh.approvals.clear();
        self.decide(&mut fresh, reported, plan, now);
        let unchanged = match (&proposal.approval, &fresh.approval) {
            // Still no decision to be had.
            (None, None) => proposal.state == State::Denied && fresh.state == State::Denied,
            (Some(Approval::Auto), Some(Approval::Auto)) => true,
            (
                Some(Approval::Approve {
                    approvers, role, ..
                }),
                Some(Approval::Approve {
                    approvers: now_approvers,
                    role: now_role,
                    ..
                }),
            ) => approvers == now_approvers && role == now_role,
            _ => false,
        };
        if unchanged {
            return false;
        }
        if let Some(event) = fresh.events.last_mut() {
            event.reason = format!("decided again: {}", event.reason);
        }
        *proposal = fresh;
        true
    }

    /// Asks the approval policy about a new proposal.
    fn decide(
        &self,
        proposal: &mut Proposal,
        reported: &Reported,
        plan: Option<&ActionPlan>,
        now: Timestamp,
    ) {
        let Some(plan) = plan else {
            proposal.record(
                State::Denied,
                "policy",
                now,
                "its executor made no plan, and nothing runs without one",
            );
            return;
        };
        if plan.calls.len() > self.config.max_calls_per_action {
            proposal.record(
                State::Denied,
                "policy",
                now,
                format!(
                    "its plan makes {} calls, over the blast radius of {} per action",
                    plan.calls.len(),
                    self.config.max_calls_per_action
                ),
            );
            return;
        }
        let Some(policy) = self.policy else {
            proposal.record(State::Denied, "policy", now, "no policies are loaded");
            return;
        };
        let input = approval_input(
            ActionFacts {
                executor: proposal.executor.clone(),
                kind: proposal.kind.clone(),
                target: proposal.target.clone(),
                parameters: org_mesh_model::properties_to_json(&proposal.parameters),
            },
            reported,
            now,
        );
        match ask_approval(policy, &input) {
            Err(why) => proposal.record(State::Denied, "policy", now, why),
            Ok(approval) => {
                proposal.approval = Some(approval.clone());
                match approval {
                    Approval::Auto => {
                        let said = approval_said(&approval);
                        proposal.record(State::Approved, "policy", now, said);
                    }
                    Approval::Approve {
                        expires_in_secs, ..
                    } => {
                        proposal.expires_at = Some(
                            now + time::Duration::seconds(
                                i64::try_from(expires_in_secs).unwrap_or(i64::MAX),
                            ),
                        );
                        let said = approval_said(&approval);
                        proposal.record(State::AwaitingApproval, "policy", now, said);
                    }
                    Approval::Deny { reason } => {
                        proposal.record(State::Denied, "policy", now, reason)
                    }
                }
            }
        }
    }

    async fn execute_approved(
        &self,
        known: &mut BTreeMap<String, Proposal>,
        round: &mut Round,
        now: Timestamp,
    ) {
        let mut per_target: BTreeMap<NodeRef, usize> = BTreeMap::new();
        let mut ran = 0usize;
        for proposal in known.values_mut() {
            if proposal.state != State::Approved {
                continue;
            }
            let before = proposal.clone();
            let held = if self.config.dry_run {
                Some("held: actions.dry_run is on; the plan is the dry run".to_string())
            } else if self.config.disabled_executors.contains(&proposal.executor) {
                Some(format!(
                    "held: executor {} is switched off in actions.disabled_executors",
                    proposal.executor
                ))
            } else if ran >= self.config.max_per_run {
                Some(format!(
                    "held: {} fixes already ran this round (actions.max_per_run)",
                    self.config.max_per_run
                ))
            } else if per_target.get(&proposal.target).copied().unwrap_or(0)
                >= self.config.max_per_target
            {
                Some(format!(
                    "held: {} fix(es) already ran on {} this round (actions.max_per_target)",
                    self.config.max_per_target, proposal.target
                ))
            } else {
                None
            };
            if let Some(reason) = held {
                proposal.note_once("policy", now, &reason);
            } else {
                let Some(executor) = self
                    .executors
                    .iter()
                    .find(|e| e.instance() == proposal.executor)
                else {
                    proposal.note_once(
                        "policy",
                        now,
                        &format!("held: executor {} is not loaded", proposal.executor),
                    );
                    if *proposal != before {
                        upsert(round, proposal);
                    }
                    continue;
                };
                // What was approved is the plan: the executor's writes are
                // held to it.
                let plan = match &proposal.plan {
                    None => Err("the proposal has no plan, so nothing ran".to_string()),
                    Some(plan) => serde_json::from_value::<ActionPlan>(plan.clone()).map_err(|e| {
                        format!("the approved plan cannot be read, so nothing ran: {e}")
                    }),
                };
                let plan = match plan {
                    Ok(plan) => plan,
                    Err(why) => {
                        proposal.record(State::Failed, "policy", now, why);
                        upsert(round, proposal);
                        continue;
                    }
                };
                ran += 1;
                *per_target.entry(proposal.target.clone()).or_default() += 1;
                proposal.record(
                    State::Executing,
                    executor.instance(),
                    now,
                    "running the plan",
                );
                // The trail shows a fix as running before it runs, so a
                // replica that dies mid-call leaves that visible.
                if let Err(e) = self.proposals.save(proposal, now).await {
                    proposal.record(
                        State::Approved,
                        "policy",
                        now,
                        format!("held: the start could not be recorded: {e:#}"),
                    );
                    upsert(round, proposal);
                    continue;
                }
                match executor.execute_within(&proposal.request(), &plan).await {
                    Ok(outcome) => {
                        proposal.outcome = Some(serde_json::json!({
                            "changed": outcome.changed,
                            "calls": outcome.calls,
                            "detail": outcome.detail,
                        }));
                        proposal.record(
                            State::Succeeded,
                            executor.instance(),
                            now,
                            if outcome.changed {
                                outcome.detail.clone()
                            } else {
                                format!("nothing to change: {}", outcome.detail)
                            },
                        );
                        round.executed.push((proposal.executor.clone(), true));
                    }
                    Err(e) => {
                        proposal.record(State::Failed, executor.instance(), now, e.to_string());
                        round.executed.push((proposal.executor.clone(), false));
                    }
                }
            }
            if *proposal != before {
                upsert(round, proposal);
            }
        }
    }
}

/// What the approval policy is asked about running `action` for the
/// finding as `reported` shows it.
pub(crate) fn approval_input(
    action: ActionFacts,
    reported: &Reported,
    now: Timestamp,
) -> ApprovalInput {
    ApprovalInput {
        action,
        finding: FindingFacts {
            rule: reported.finding.rule.clone(),
            fingerprint: reported.finding.fingerprint.clone(),
            subject: reported.finding.subject.clone(),
            severity: reported.severity,
            score: reported.finding.score,
            auto_fix: reported.decision.as_ref().and_then(|d| d.auto_fix),
            suppressed: reported.decision.as_ref().and_then(|d| d.suppressed),
        },
        now,
    }
}

/// The approval policy's answer to `input`, or, where it has none, why
/// nothing runs: a policy that fails or says nothing lets no fix run.
pub(crate) fn ask_approval(policy: &PolicySet, input: &ApprovalInput) -> Result<Approval, String> {
    match policy.approval(input) {
        Ok(Some(approval)) => Ok(approval),
        Ok(None) => Err("the approval policy gave no decision, so nothing runs".into()),
        Err(e) => Err(format!("the approval policy failed, so nothing runs: {e}")),
    }
}

/// An approval policy's answer, as the trail and reports say it.
pub(crate) fn approval_said(approval: &Approval) -> String {
    match approval {
        Approval::Auto => "may run unattended".into(),
        Approval::Approve {
            approvers, role, ..
        } => format!("needs {approvers} approval(s) by the {} role", role.name()),
        Approval::Deny { reason } => format!("denied: {reason}"),
    }
}

fn json_decision(reported: &Reported) -> serde_json::Value {
    serde_json::json!({
        "severity": reported.severity,
        "decision": reported.decision,
    })
}

fn upsert(round: &mut Round, proposal: &Proposal) {
    match round.changed.iter_mut().find(|p| p.id == proposal.id) {
        Some(p) => *p = proposal.clone(),
        None => round.changed.push(proposal.clone()),
    }
}

/// Why a person may not approve or reject a proposal now.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("no proposal {0}")]
    NotFound(String),
    #[error("proposal {id} is {state}, not awaiting approval")]
    NotAwaiting { id: String, state: State },
    #[error("proposal {id} needs the {} role to approve", needed.name())]
    Role { id: String, needed: ApproverRole },
    #[error("proposal {0} expired before this approval")]
    Expired(String),
    #[error("{who} already approved proposal {id}")]
    Again { id: String, who: String },
    #[error("proposal {id} is {state}; only a failed or expired fix can be tried again")]
    NotRetriable { id: String, state: State },
}

/// Records a person's approval; the proposal is approved once enough
/// distinct people with the required role have approved before it expired.
pub fn approve(
    proposal: &mut Proposal,
    who: &str,
    role: Role,
    reason: &str,
    now: Timestamp,
) -> Result<(), Refusal> {
    if proposal.state != State::AwaitingApproval {
        return Err(Refusal::NotAwaiting {
            id: proposal.id.clone(),
            state: proposal.state,
        });
    }
    if proposal.expires_at.is_some_and(|e| e <= now) {
        proposal.record(
            State::Expired,
            "policy",
            now,
            "no approval before it expired",
        );
        return Err(Refusal::Expired(proposal.id.clone()));
    }
    let Some(Approval::Approve {
        approvers,
        role: needed,
        ..
    }) = proposal.approval.clone()
    else {
        return Err(Refusal::NotAwaiting {
            id: proposal.id.clone(),
            state: proposal.state,
        });
    };
    let enough = match needed {
        ApproverRole::Approver => role >= Role::Approver,
        ApproverRole::Admin => role >= Role::Admin,
    };
    if !enough {
        return Err(Refusal::Role {
            id: proposal.id.clone(),
            needed,
        });
    }
    if proposal.approvals.iter().any(|a| a.actor == who) {
        return Err(Refusal::Again {
            id: proposal.id.clone(),
            who: who.to_string(),
        });
    }
    let event = Event {
        state: State::AwaitingApproval,
        actor: who.to_string(),
        at: now,
        reason: reason.to_string(),
    };
    proposal.approvals.push(event.clone());
    proposal.events.push(event);
    if proposal.approvals.len() >= usize::try_from(approvers).unwrap_or(usize::MAX) {
        proposal.record(
            State::Approved,
            who,
            now,
            format!("{} of {approvers} approval(s)", proposal.approvals.len()),
        );
    }
    Ok(())
}

/// Records a person's request to try a failed or expired fix again. What
/// was approved before is dropped with its plan: the next evaluation that
/// still shows the finding plans the fix afresh, and the approval policy
/// decides on that plan as on a new proposal. The trail keeps every earlier
/// step, and the idempotency key stays the proposal's id, so an executor
/// that marks its writes finds what the failed attempt already did.
pub fn retry(
    proposal: &mut Proposal,
    who: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), Refusal> {
    if !matches!(proposal.state, State::Failed | State::Expired) {
        return Err(Refusal::NotRetriable {
            id: proposal.id.clone(),
            state: proposal.state,
        });
    }
    proposal.approval = None;
    proposal.approvals.clear();
    proposal.expires_at = None;
    proposal.plan = None;
    proposal.outcome = None;
    proposal.record(
        State::Proposed,
        who,
        now,
        format!("to be tried again: {reason}"),
    );
    Ok(())
}

/// Records a person's rejection; the proposal never runs.
pub fn reject(
    proposal: &mut Proposal,
    who: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), Refusal> {
    if !matches!(
        proposal.state,
        State::AwaitingApproval | State::Approved | State::Proposed
    ) {
        return Err(Refusal::NotAwaiting {
            id: proposal.id.clone(),
            state: proposal.state,
        });
    }
    proposal.record(State::Rejected, who, now, reason);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_named_as_the_api_spells_it_and_read_back_from_that_name() {
        for state in State::ALL {
            assert_eq!(
                serde_json::to_value(state).ok(),
                Some(serde_json::Value::from(state.name()))
            );
            assert_eq!(state.name().parse::<State>(), Ok(state));
        }
        let refused = "awaiting-approval"
            .parse::<State>()
            .err()
            .unwrap_or_default();
        assert!(
            refused.contains("one of proposed, awaiting_approval,"),
            "{refused}"
        );
    }
}
