//! The drift decision, the same policy and findings for every engine.
//!
//! The policy is the shipped `policies/` folder; the tuning is
//! `fixtures/drift-rules.yaml`, which, unlike the shipped one, allows fixes
//! and suppresses findings, so that every branch of `drift.rego` runs.
//! Every engine's answer is reduced to one JSON object holding the four
//! decision rules that are defined, which is what OPA returns for
//! [`crate::opa::DECISION_QUERY`].

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use org_mesh_policy::{Decision, DecisionInput, Evaluator, PolicySet};
use serde_json::{Map, Value as Json, json};

/// The rules org-mesh asks the drift policy for, in its order.
pub const RULES: [&str; 4] = ["severity", "suppressed", "suppress_reason", "auto_fix"];

pub fn rule_path(rule: &str) -> String {
    format!("data.orgmesh.drift.{rule}")
}

/// The policy folder (a copy of the shipped policies with the bench
/// tuning), loaded as org-mesh loads it, and the findings to decide on.
#[derive(Debug)]
pub struct Fixture {
    dir: tempfile::TempDir,
    pub set: PolicySet,
    /// The same folder loaded with the bytecode engine, checked to be the
    /// engine in use.
    pub bytecode: PolicySet,
    pub inputs: Vec<DecisionInput>,
    /// `data` as the policy sees it: `{"tuning": ...}`.
    pub data: Json,
}

impl Fixture {
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating the policy folder")?;
        let shipped = org_mesh_harness::root().join("policies");
        for entry in std::fs::read_dir(&shipped).context("listing the shipped policies")? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "rego") {
                let name = path.file_name().context("a policy file without a name")?;
                std::fs::copy(&path, dir.path().join(name))
                    .with_context(|| format!("copying {}", path.display()))?;
            }
        }
        let tuning = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/drift-rules.yaml");
        std::fs::copy(&tuning, dir.path().join(org_mesh_policy::TUNING_FILE_NAME))
            .context("copying the bench tuning")?;

        let set = PolicySet::load(dir.path()).context("loading the policy folder")?;
        let bytecode = PolicySet::load_with(dir.path(), Evaluator::Bytecode)
            .context("loading the policy folder for the bytecode engine")?;
        anyhow::ensure!(
            bytecode.evaluator() == Evaluator::Bytecode,
            "the bytecode engine was ruled out at load (its log line says why)"
        );
        let tuning = set.tuning().context("the bench tuning did not load")?;
        let data = json!({ "tuning": serde_json::to_value(tuning)? });
        Ok(Self {
            dir,
            set,
            bytecode,
            inputs: findings()?,
            data,
        })
    }

    /// The decision policy alone, as the other engines load it.
    pub fn drift_rego(&self) -> PathBuf {
        self.dir.path().join("drift.rego")
    }

    /// Decides through the path the host takes.
    pub fn decide(&self, input: &DecisionInput) -> anyhow::Result<Json> {
        Ok(decision_json(&self.set.decide(input)?))
    }

    /// Decides through the host's bytecode engine.
    pub fn decide_bytecode(&self, input: &DecisionInput) -> anyhow::Result<Json> {
        Ok(decision_json(&self.bytecode.decide(input)?))
    }
}

/// Findings that between them take every branch of `drift.rego`: tuned and
/// untuned rules, escalation by role, active, expired and wildcard
/// suppressions, a disabled rule, scores either side of the threshold.
pub fn findings() -> anyhow::Result<Vec<DecisionInput>> {
    let base = json!({
        "detector": "identity-drift",
        "rule": "account-unlinked",
        "subject": {"label": "Account", "key": "github:alice"},
        "key": "",
        "title": "GitHub account github:alice is linked to no person",
        "score": 0.95,
        "default_severity": "medium",
        "attributes": {},
        "evidence_count": 1,
        "has_remedy": true,
        "now": "2026-12-04T00:00:00Z"
    });
    let variants = [
        json!({}),
        json!({"score": 0.5}),
        json!({"rule": "idp-offboarded-has-access", "attributes": {"role": "admin"}}),
        json!({"rule": "idp-offboarded-has-access", "attributes": {"role": "member"}}),
        json!({"rule": "account-without-mfa", "attributes": {"role": "Owner"}}),
        json!({"subject": {"label": "Account", "key": "github:build-bot"}}),
        json!({"subject": {"label": "Account", "key": "github:old-bot"}}),
        json!({"rule": "default-branch-unprotected",
               "subject": {"label": "Repository", "key": "github:acme/site"}}),
        json!({"rule": "org-2fa-not-required"}),
        json!({"rule": "something-new", "default_severity": "high"}),
    ];
    variants
        .into_iter()
        .map(|fields| {
            let mut finding = base.clone();
            if let (Some(into), Json::Object(from)) = (finding.as_object_mut(), fields) {
                into.extend(from);
            }
            serde_json::from_value(finding).context("building a bench finding")
        })
        .collect()
}

/// A decision as the object of its defined rules.
pub fn decision_json(decision: &Decision) -> Json {
    let mut out = Map::new();
    if let Some(severity) = decision.severity {
        out.insert("severity".into(), json!(severity.as_str()));
    }
    if let Some(suppressed) = decision.suppressed {
        out.insert("suppressed".into(), json!(suppressed));
    }
    if let Some(reason) = &decision.suppress_reason {
        out.insert("suppress_reason".into(), json!(reason));
    }
    if let Some(auto_fix) = decision.auto_fix {
        out.insert("auto_fix".into(), json!(auto_fix));
    }
    Json::Object(out)
}

/// The input as regorus reads it, converted as the host converts it.
pub fn rego_input(input: &DecisionInput) -> anyhow::Result<regorus::Value> {
    Ok(regorus::Value::from(serde_json::to_value(input)?))
}

/// Collects the defined values of [`RULES`], in order, into one object.
pub fn collect(values: impl IntoIterator<Item = regorus::Value>) -> anyhow::Result<Json> {
    let mut out = Map::new();
    for (rule, value) in RULES.iter().zip(values) {
        if value != regorus::Value::Undefined {
            out.insert((*rule).into(), serde_json::to_value(&value)?);
        }
    }
    Ok(Json::Object(out))
}

/// A regorus engine holding the decision policy and the tuning.
fn engine(fixture: &Fixture) -> anyhow::Result<regorus::Engine> {
    let mut engine = regorus::Engine::new();
    let path = fixture.drift_rego();
    let text = std::fs::read_to_string(&path)?;
    engine.add_policy(path.display().to_string(), text)?;
    engine.add_data(regorus::Value::from(fixture.data.clone()))?;
    Ok(engine)
}

/// One prepared engine asked for each decision rule with its own
/// `eval_rule`, as org-mesh decided before it gathered the rules into one
/// evaluation; regorus starts every `eval_rule` afresh, so the rules the
/// four share run again for each.
pub struct RuleByRule {
    engine: regorus::Engine,
}

impl std::fmt::Debug for RuleByRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleByRule").finish_non_exhaustive()
    }
}

impl RuleByRule {
    pub fn new(fixture: &Fixture) -> anyhow::Result<Self> {
        Ok(Self {
            engine: engine(fixture)?,
        })
    }

    pub fn eval(&mut self, input: &DecisionInput) -> anyhow::Result<Vec<regorus::Value>> {
        self.engine.set_input(rego_input(input)?);
        RULES
            .iter()
            .map(|rule| self.engine.eval_rule(rule_path(rule)))
            .collect()
    }
}

/// One regorus `CompiledPolicy` per decision rule.
pub struct Compiled {
    rules: Vec<regorus::CompiledPolicy>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl Compiled {
    pub fn new(fixture: &Fixture) -> anyhow::Result<Self> {
        let mut engine = engine(fixture)?;
        let rules = RULES
            .iter()
            .map(|rule| engine.compile_with_entrypoint(&rule_path(rule).as_str().into()))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { rules })
    }

    pub fn eval(&self, input: &DecisionInput) -> anyhow::Result<Vec<regorus::Value>> {
        let input = rego_input(input)?;
        self.rules
            .iter()
            .map(|rule| rule.eval_with_input(input.clone()))
            .collect()
    }
}
