use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use org_mesh_model::{NodeRef, Severity, Timestamp};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

use crate::approval::{APPROVAL_SHAPE, Approval, ApprovalInput};
use crate::bytecode::Bytecode;
use crate::decision::{Decision, DecisionInput};
use crate::error::{PolicyError, SourceAt, TestFailure, TestOutcome};
use crate::pool::EnginePool;
use crate::tuning::{self, KNOWN_RULES, SubjectPattern, Tuning};

/// The package whose rules decide on drift findings.
const DRIFT_PACKAGE: [&str; 2] = ["orgmesh", "drift"];
const APPROVAL_PACKAGE: [&str; 2] = ["orgmesh", "approval"];
const APPROVAL_RULE: &str = "decision";

/// A module the host adds beside the policies, gathering every declared
/// decision rule into one object. regorus forgets all it has computed at
/// the start of each `eval_rule`, so asking for the four rules one by one
/// re-ran what they share (`auto_fix` reads `severity` and `suppressed`);
/// asking for this one rule evaluates each rule once. Each rule's value is
/// wrapped in a set, empty when the rule is undefined, which keeps
/// undefined apart from every value; one rule body with a comprehension
/// per decision measured a little faster than a partial object rule with
/// a body per decision. The names keep out of the way of any package a
/// policy author would choose.
const GATHER_FILE: &str = "org-mesh-host/gather-decision.rego";
const GATHER_PACKAGE: &str = "org_mesh_host_gather";
const GATHER_RULE: &str = "decision";

/// A decision rule that loops or explodes must not stall the host; no
/// honest decision on one finding takes anywhere near this.
const EVAL_TIME_LIMIT: Duration = Duration::from_secs(2);

/// At most this many probe findings check the bytecode engine at load;
/// past it they are thinned evenly, so a tuning file with thousands of
/// suppressions does not hold a reload up for seconds.
const MAX_PROBES: usize = 1_000;

/// Which of regorus's engines decides on drift findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Evaluator {
    /// The interpreter: every construct of the language, and the engine
    /// the policies' own tests run on.
    #[default]
    Interpreter,
    /// The bytecode VM: about four times faster per decision, but younger.
    /// A set loaded with it first compares it with the interpreter on probe
    /// findings made from the tuning file and keeps the interpreter if they
    /// differ or the policies do not compile; afterwards every decision
    /// that would let a fix run unattended, and every failed one, is
    /// confirmed by the interpreter, and the first disagreement moves the
    /// set to the interpreter for good. What those checks can miss: where a
    /// builtin fails on a finding's values (a date that does not parse),
    /// the interpreter fails the decision but the bytecode engine leaves
    /// the rule undefined, so the finding is left unrated, unsuppressed or
    /// without an unattended fix rather than reported as a policy error.
    Bytecode,
}

impl std::str::FromStr for Evaluator {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "interpreter" => Ok(Evaluator::Interpreter),
            "bytecode" => Ok(Evaluator::Bytecode),
            other => Err(format!("{other:?} is not interpreter or bytecode")),
        }
    }
}

impl fmt::Display for Evaluator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Evaluator::Interpreter => "interpreter",
            Evaluator::Bytecode => "bytecode",
        })
    }
}

/// The decision rules the host asks for, in the order it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Severity,
    Suppressed,
    SuppressReason,
    AutoFix,
}

impl Output {
    const ALL: [Output; 4] = [
        Output::Severity,
        Output::Suppressed,
        Output::SuppressReason,
        Output::AutoFix,
    ];

    fn name(self) -> &'static str {
        match self {
            Output::Severity => "severity",
            Output::Suppressed => "suppressed",
            Output::SuppressReason => "suppress_reason",
            Output::AutoFix => "auto_fix",
        }
    }
}

/// Where one decision rule is declared. A rule no policy declares is not
/// evaluated at all (regorus refuses unknown rule paths) and reads as
/// undefined.
#[derive(Debug, Clone)]
struct DeclaredRule {
    output: Output,
    path: String,
    file: PathBuf,
}

/// A compiled, tested set of policies plus the tuning they read.
///
/// Immutable once loaded: a reload builds a new set and swaps it in, so a
/// broken edit never replaces a working one. Share it behind an `Arc`;
/// any number of threads may decide at once.
pub struct PolicySet {
    dir: PathBuf,
    files: Vec<PathBuf>,
    tuning: Option<Tuning>,
    tests: Vec<String>,
    declared: Vec<DeclaredRule>,
    /// `data.<GATHER_PACKAGE>.decision`, or `None` when no decision rule is
    /// declared and there is nothing to evaluate.
    gather: Option<String>,
    /// The file declaring `data.orgmesh.approval.decision`, if any.
    approval: Option<PathBuf>,
    engines: EnginePool,
    /// The gathered decision as a bytecode program, when asked for and
    /// found to agree with the interpreter.
    bytecode: Option<Bytecode>,
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySet")
            .field("dir", &self.dir)
            .field("files", &self.files)
            .field("tuning", &self.tuning)
            .field("tests", &self.tests)
            .field("declared", &self.declared)
            .finish_non_exhaustive()
    }
}

impl PolicySet {
    /// Loads every `*.rego` in `dir` and its `drift-rules.yaml` if there is
    /// one, compiles them together and runs the policies' own tests. Any
    /// failure fails the whole load. Decisions are made by the interpreter.
    pub fn load(dir: &Path) -> Result<PolicySet, PolicyError> {
        Self::load_with(dir, Evaluator::Interpreter)
    }

    /// [`PolicySet::load`], deciding with `evaluator` when it can be
    /// trusted to; see [`Evaluator::Bytecode`]. Whether it is shows in
    /// [`PolicySet::evaluator`].
    #[tracing::instrument(name = "org_mesh.policy.load", skip_all, fields(dir = %dir.display()))]
    pub fn load_with(dir: &Path, evaluator: Evaluator) -> Result<PolicySet, PolicyError> {
        let sources = read_sources(dir)?;
        let tuning = load_tuning(dir)?;
        let data = tuning_data(dir, tuning.as_ref())?;
        let mut engine = compile(dir, &sources, data.clone())?;
        let declared = declared_rules(&engine, &sources)?;
        let gather = add_gather_module(&mut engine, dir, &declared)?;
        smoke_test(&engine, &declared, gather.as_deref())?;
        let approval = approval_file(&engine, &sources)?;
        let tests = run_tests(&mut engine, &sources)?;
        let bytecode = match (evaluator, gather.as_deref()) {
            (Evaluator::Bytecode, Some(gather)) => {
                let probes = probes(tuning.as_ref(), Timestamp::now_utc());
                checked_bytecode(&engine, &declared, gather, data, &probes)
            }
            _ => None,
        };
        let set = PolicySet {
            dir: dir.to_path_buf(),
            files: sources.into_iter().map(|s| s.path).collect(),
            tuning,
            tests,
            declared,
            gather,
            approval,
            engines: EnginePool::new(engine),
            bytecode,
        };
        tracing::info!(
            files = set.files.len(),
            tests = set.tests.len(),
            tuning = set.tuning.is_some(),
            evaluator = %set.evaluator(),
            "Policies loaded"
        );
        Ok(set)
    }

    /// The engine deciding now. A set asked for the bytecode engine
    /// reports the interpreter when the check at load or a later
    /// disagreement ruled the bytecode engine out.
    pub fn evaluator(&self) -> Evaluator {
        match &self.bytecode {
            Some(bytecode) if bytecode.trusted() => Evaluator::Bytecode,
            _ => Evaluator::Interpreter,
        }
    }

    /// Decides on one finding. Rules the policy leaves undefined come back
    /// as `None`; a rule that gives a value of the wrong kind is an error.
    #[tracing::instrument(
        name = "org_mesh.policy.decide",
        skip_all,
        fields(rule = %input.rule, fingerprint = %input.fingerprint)
    )]
    pub fn decide(&self, input: &DecisionInput) -> Result<Decision, PolicyError> {
        let value = input.to_rego()?;
        let decision = match &self.bytecode {
            Some(bytecode) if bytecode.trusted() => {
                self.decide_confirmed(bytecode, input, value)?
            }
            _ => self.interpret(value)?,
        };
        tracing::debug!(
            severity = ?decision.severity,
            suppressed = ?decision.suppressed,
            auto_fix = ?decision.auto_fix,
            undefined = ?decision.undefined_fields(),
            "Policy decision"
        );
        Ok(decision)
    }

    fn interpret(&self, input: Value) -> Result<Decision, PolicyError> {
        let mut engine = self.engines.take();
        engine.set_input(input);
        let decision = decide_on(&mut engine, &self.declared, self.gather.as_deref())?;
        self.engines.give_back(engine);
        Ok(decision)
    }

    /// The bytecode engine's decision, confirmed by the interpreter when it
    /// would let a fix run unattended or when it failed. The interpreter's
    /// answer is the one given whenever it is asked.
    fn decide_confirmed(
        &self,
        bytecode: &Bytecode,
        input: &DecisionInput,
        value: Value,
    ) -> Result<Decision, PolicyError> {
        let fast = decide_by_bytecode(bytecode, &self.declared, value.clone());
        if matches!(&fast, Ok(decision) if decision.auto_fix != Some(true)) {
            return fast;
        }
        let confirmed = self.interpret(value);
        if !agree(&fast, &confirmed) && bytecode.distrust() {
            tracing::error!(
                dir = %self.dir.display(),
                rule = %input.rule,
                fingerprint = %input.fingerprint,
                bytecode = ?fast,
                interpreter = ?confirmed,
                "The bytecode engine decided a finding differently from the interpreter; \
                 the interpreter decides for this policy version from now on"
            );
        }
        confirmed
    }

    /// Asks the approval policy who must approve a proposed fix. `None`
    /// when the folder has no approval policy or it left the decision
    /// undefined: then no fix may run.
    pub fn approval(&self, input: &ApprovalInput) -> Result<Option<Approval>, PolicyError> {
        let Some(file) = &self.approval else {
            return Ok(None);
        };
        let path = rule_path(APPROVAL_PACKAGE.iter().copied(), APPROVAL_RULE);
        let value = serde_json::to_value(input)
            .map(Value::from)
            .map_err(|source| PolicyError::Input {
                fingerprint: input.finding.fingerprint.clone(),
                source,
            })?;
        let mut engine = self.engines.take();
        engine.set_input(value);
        let answer = engine.eval_rule(path.clone()).map_err(|err| {
            let found = diagnose(&err);
            PolicyError::Eval {
                rule: path.clone(),
                at: found.at.unwrap_or_else(|| SourceAt::file(file)),
                reason: found.reason,
            }
        });
        self.engines.give_back(engine);
        let answer = answer?;
        if answer == Value::Undefined {
            return Ok(None);
        }
        Approval::from_rego(&answer)
            .map(Some)
            .ok_or_else(|| PolicyError::Output {
                rule: path,
                at: SourceAt::file(file),
                value: show(&answer),
                expected: APPROVAL_SHAPE,
            })
    }

    /// The decision rules this version declares, by path: those of the
    /// drift package and the approval decision, when it has them.
    pub fn decision_rules(&self) -> Vec<String> {
        let mut rules: Vec<String> = self.declared.iter().map(|d| d.path.clone()).collect();
        if self.approval.is_some() {
            rules.push(rule_path(APPROVAL_PACKAGE.iter().copied(), APPROVAL_RULE));
        }
        rules
    }

    /// The decision rules the host reads that this version does not
    /// declare: each finding goes without that decision, or, without the
    /// approval decision, no fix runs.
    pub fn undeclared_decision_rules(&self) -> Vec<String> {
        let declared = self.decision_rules();
        Output::ALL
            .iter()
            .map(|o| rule_path(DRIFT_PACKAGE.iter().copied(), o.name()))
            .chain([rule_path(APPROVAL_PACKAGE.iter().copied(), APPROVAL_RULE)])
            .filter(|rule| !declared.contains(rule))
            .collect()
    }

    /// The decision rules `serving` declares that this version does not.
    /// A version without them still loads (a folder may leave findings
    /// unrated, or let no fix run), but put in place of one that has them
    /// it would silently unrate every finding or deny every new fix for
    /// good, which is what a half-finished edit or checkout looks like.
    pub fn drops_rules_of(&self, serving: &PolicySet) -> Vec<String> {
        let kept = self.decision_rules();
        serving
            .decision_rules()
            .into_iter()
            .filter(|rule| !kept.contains(rule))
            .collect()
    }

    /// Whether `serving` reads a tuning file and this version has none: put
    /// in its place, every tuned severity, suppression and fix setting
    /// would go at once, which is what a file left out of a ConfigMap or
    /// renamed looks like.
    pub fn drops_tuning_of(&self, serving: &PolicySet) -> bool {
        serving.tuning.is_some() && self.tuning.is_none()
    }

    /// Whether the folder holds an approval policy.
    pub fn has_approval_policy(&self) -> bool {
        self.approval.is_some()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The policy files, in the order they were compiled.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn tuning(&self) -> Option<&Tuning> {
        self.tuning.as_ref()
    }

    /// Full paths of the Rego tests that passed at load.
    pub fn tests(&self) -> &[String] {
        &self.tests
    }
}

struct PolicySource {
    path: PathBuf,
    /// The name the engine knows the file by, which its messages quote.
    name: String,
    text: String,
}

fn read_sources(dir: &Path) -> Result<Vec<PolicySource>, PolicyError> {
    let list_err = |source| PolicyError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(list_err)? {
        let path = entry.map_err(list_err)?.path();
        if path.extension().is_some_and(|ext| ext == "rego") && path.is_file() {
            paths.push(path);
        } else if path.is_dir() && holds_rego(&path) {
            // Only the folder itself is read; a policy put in a subfolder
            // would otherwise look loaded while deciding nothing.
            tracing::warn!(
                folder = %path.display(),
                "Policy files in a subfolder are not read; move them up to use them"
            );
        }
    }
    if paths.is_empty() {
        return Err(PolicyError::NoPolicies {
            path: dir.to_path_buf(),
        });
    }
    // Sorted so that a load, and any error it reports, is the same on every
    // machine whatever order the file system lists entries in.
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).map_err(|source| PolicyError::ReadFile {
                path: path.clone(),
                source,
            })?;
            let name = path.display().to_string();
            Ok(PolicySource { path, name, text })
        })
        .collect()
}

fn holds_rego(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|ext| ext == "rego"))
    })
}

fn load_tuning(dir: &Path) -> Result<Option<Tuning>, PolicyError> {
    let path = dir.join(tuning::FILE_NAME);
    if !path.exists() {
        tracing::info!(file = %path.display(), "No tuning file; detector severities stand");
        return Ok(None);
    }
    Ok(Some(Tuning::load(&path)?))
}

/// `data` as the policies see it: the tuning under `tuning`, or nothing.
fn tuning_data(dir: &Path, tuning: Option<&Tuning>) -> Result<Value, PolicyError> {
    let Some(tuning) = tuning else {
        return Ok(Value::new_object());
    };
    let value = serde_json::to_value(tuning).map_err(|err| PolicyError::Rego {
        at: SourceAt::file(dir.join(tuning::FILE_NAME)),
        reason: format!("cannot hand the tuning to rego: {err}"),
    })?;
    Ok(Value::from(serde_json::json!({ "tuning": value })))
}

fn compile(dir: &Path, sources: &[PolicySource], data: Value) -> Result<Engine, PolicyError> {
    let mut engine = Engine::new();
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: EVAL_TIME_LIMIT,
        // Reading the clock on every step would cost more than the steps.
        check_interval: NonZeroU32::MIN.saturating_add(255),
    });
    for source in sources {
        engine
            .add_policy(source.name.clone(), source.text.clone())
            .map_err(|err| rego_error(&err, &source.path))?;
    }
    engine
        .add_data(data)
        .map_err(|err| rego_error(&err, &dir.join(tuning::FILE_NAME)))?;
    // regorus checks rule bodies (unsafe variables, bad imports) only when
    // it first evaluates something. A trivial query does that now, so a
    // broken policy fails the load rather than the first decision.
    engine
        .eval_query("true".into(), false)
        .map_err(|err| rego_error(&err, dir))?;
    Ok(engine)
}

/// Decides once against an empty finding. Mistakes that do not depend on
/// the finding, such as two unconditional values for one rule, then fail
/// the load instead of every decision after it.
fn smoke_test(
    engine: &Engine,
    declared: &[DeclaredRule],
    gather: Option<&str>,
) -> Result<(), PolicyError> {
    let mut engine = engine.clone();
    engine.set_input(Value::new_object());
    if let Some(gather) = gather {
        evaluate_gathered(&mut engine, declared, gather)?;
    }
    Ok(())
}

/// Adds the module gathering the declared decision rules into one object
/// and returns the path of that object's rule.
fn add_gather_module(
    engine: &mut Engine,
    dir: &Path,
    declared: &[DeclaredRule],
) -> Result<Option<String>, PolicyError> {
    if declared.is_empty() {
        return Ok(None);
    }
    let entries = declared
        .iter()
        .map(|rule| format!("\t{:?}: {{v | v := {}}},\n", rule.output.name(), rule.path))
        .collect::<String>();
    let text =
        format!("package {GATHER_PACKAGE}\n\nimport rego.v1\n\n{GATHER_RULE} := {{\n{entries}}}\n");
    engine
        .add_policy(GATHER_FILE.to_owned(), text)
        .map_err(|err| rego_error(&err, dir))?;
    Ok(Some(rule_path([GATHER_PACKAGE].into_iter(), GATHER_RULE)))
}

/// Evaluates every declared decision rule on an engine that holds the
/// finding as input.
fn decide_on(
    engine: &mut Engine,
    declared: &[DeclaredRule],
    gather: Option<&str>,
) -> Result<Decision, PolicyError> {
    let Some(gather) = gather else {
        return Ok(Decision::default());
    };
    let answers = evaluate_gathered(engine, declared, gather)?;
    decision_from(&answers, declared)
}

/// The decision in the gathered object of `declared`'s values.
fn decision_from(answers: &Value, declared: &[DeclaredRule]) -> Result<Decision, PolicyError> {
    let mut decision = Decision::default();
    for rule in declared {
        let answer = answers[rule.output.name()]
            .as_set()
            .ok()
            .and_then(|values| values.first())
            .unwrap_or(&Value::Undefined);
        rule.store(answer, &mut decision)?;
    }
    Ok(decision)
}

/// The gathered decision run on the bytecode engine. Its errors do not
/// say which rule failed; callers that report one ask the interpreter.
fn decide_by_bytecode(
    bytecode: &Bytecode,
    declared: &[DeclaredRule],
    input: Value,
) -> Result<Decision, PolicyError> {
    let answers = bytecode.evaluate(input).map_err(|err| PolicyError::Eval {
        rule: bytecode.entry().to_owned(),
        at: declared
            .first()
            .map_or_else(|| SourceAt::file(GATHER_FILE), |r| SourceAt::file(&r.file)),
        reason: format!("bytecode engine: {err:#}"),
    })?;
    decision_from(&answers, declared)
}

/// Whether two engines gave the same answer: the same decision, or both
/// an error (whose wording differs between engines).
fn agree(a: &Result<Decision, PolicyError>, b: &Result<Decision, PolicyError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

/// The gathered decision compiled for the bytecode engine, if it compiles
/// and decides every probe as the interpreter does.
fn checked_bytecode(
    engine: &Engine,
    declared: &[DeclaredRule],
    gather: &str,
    data: Value,
    probes: &[DecisionInput],
) -> Option<Bytecode> {
    let bytecode = match Bytecode::compile(engine, gather, data, EVAL_TIME_LIMIT) {
        Ok(bytecode) => bytecode,
        Err(err) => {
            tracing::warn!(
                error = format!("{err:#}"),
                "The bytecode engine cannot compile these policies; the interpreter decides"
            );
            return None;
        }
    };
    let mut interpreter = engine.clone();
    for probe in probes {
        let value = match probe.to_rego() {
            Ok(value) => value,
            Err(err) => {
                tracing::warn!(error = %err, "A probe finding did not convert; the interpreter decides");
                return None;
            }
        };
        interpreter.set_input(value.clone());
        let expected = decide_on(&mut interpreter, declared, Some(gather));
        let got = decide_by_bytecode(&bytecode, declared, value);
        if !agree(&expected, &got) {
            tracing::warn!(
                rule = %probe.rule,
                subject = %probe.subject,
                attributes = %probe.attributes,
                score = probe.score,
                interpreter = ?expected,
                bytecode = ?got,
                "The bytecode engine decides a probe finding differently from the interpreter; \
                 the interpreter decides"
            );
            return None;
        }
    }
    tracing::debug!(
        probes = probes.len(),
        "The bytecode engine agrees with the interpreter"
    );
    Some(bytecode)
}

/// Findings that take the branches a drift policy usually has: every rule
/// the detectors know or the tuning names, an unknown and a narrative
/// one; each suppressed subject and one no suppression names; no role, an
/// admin, a member, a granted privilege; scores at both ends.
fn probes(tuning: Option<&Tuning>, now: Timestamp) -> Vec<DecisionInput> {
    let mut rules: BTreeSet<&str> = KNOWN_RULES.iter().copied().collect();
    rules.extend(["org-mesh-probe", "narrative-org-mesh-probe"]);
    if let Some(tuning) = tuning {
        rules.extend(tuning.rules.keys().map(String::as_str));
        rules.extend(tuning.suppressions.iter().map(|s| s.rule.as_str()));
    }
    let attributes = [
        serde_json::json!({}),
        serde_json::json!({"role": "admin"}),
        serde_json::json!({"role": "member"}),
        serde_json::json!({"privilege_granted": true}),
    ];
    let mut all = Vec::new();
    for rule in rules {
        let mut subjects = vec![NodeRef::new("Account", "org-mesh:probe")];
        for suppression in tuning.iter().flat_map(|t| &t.suppressions) {
            if let (true, SubjectPattern::Node(node)) =
                (suppression.rule == rule, &suppression.subject)
            {
                subjects.push(node.clone());
            }
        }
        for subject in &subjects {
            for attributes in &attributes {
                for score in [1.0, 0.0] {
                    all.push(DecisionInput {
                        detector: "org-mesh-probe".into(),
                        rule: rule.to_owned(),
                        subject: subject.clone(),
                        key: String::new(),
                        title: format!("probe of {rule}"),
                        score,
                        default_severity: Severity::Medium,
                        attributes: attributes.clone(),
                        evidence_count: 1,
                        has_remedy: true,
                        now,
                        fingerprint: format!("org-mesh-probe:{}", all.len()),
                    });
                }
            }
        }
    }
    let step = all.len().div_ceil(MAX_PROBES).max(1);
    all.into_iter().step_by(step).collect()
}

/// The object of the declared rules' values, keyed by rule name, each a
/// set holding the rule's value or nothing when it is undefined. A rule
/// has one value at most: two different ones fail the evaluation.
fn evaluate_gathered(
    engine: &mut Engine,
    declared: &[DeclaredRule],
    gather: &str,
) -> Result<Value, PolicyError> {
    engine
        .eval_rule(gather.to_owned())
        .map_err(|err| blame(engine, declared, &err))
}

/// Turns a failure of the gathered evaluation into the error of the rule
/// at fault. Evaluating the rules one by one, in the order the host reads
/// them, gives exactly the error that rule gives alone, with its own path
/// and file; this costs time only when a decision has already failed.
/// A time limit is the exception: every rule run again would wait for it
/// once more, so the error names all the rules evaluated together.
fn blame(engine: &mut Engine, declared: &[DeclaredRule], err: &anyhow::Error) -> PolicyError {
    let timed_out = err.chain().any(|cause| cause.is::<regorus::LimitError>());
    if !timed_out {
        for rule in declared {
            if let Err(found) = evaluate(engine, rule) {
                return found;
            }
        }
    }
    let found = diagnose(err);
    // Without a place in the error (a time limit names none), the time
    // went somewhere in the rules evaluated together, which any file of
    // the folder may hold: the folder is named rather than one file.
    let at = found.at.or_else(|| {
        declared
            .first()
            .map(|r| SourceAt::file(r.file.parent().unwrap_or(&r.file)))
    });
    PolicyError::Eval {
        rule: declared
            .iter()
            .map(|r| r.path.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        at: at.unwrap_or_else(|| SourceAt::file(GATHER_FILE)),
        reason: found.reason,
    }
}

/// Finds which files of the drift package declare each decision rule.
fn declared_rules(
    engine: &Engine,
    sources: &[PolicySource],
) -> Result<Vec<DeclaredRule>, PolicyError> {
    let drift_files = package_files(engine, sources)?
        .into_iter()
        .filter(|(_, components)| components.iter().eq(DRIFT_PACKAGE.iter()))
        .map(|(source, _)| source)
        .collect::<Vec<_>>();
    let mut declared = Vec::new();
    for output in Output::ALL {
        for source in &drift_files {
            let found = engine
                .has_declared_rule_rooted_at(&source.name, output.name())
                .map_err(|err| rego_error(&err, &source.path))?;
            if found {
                declared.push(DeclaredRule {
                    output,
                    path: rule_path(DRIFT_PACKAGE.iter().copied(), output.name()),
                    file: source.path.clone(),
                });
                break;
            }
        }
    }
    if declared.is_empty() {
        tracing::warn!(
            package = %DRIFT_PACKAGE.join("."),
            "No policy declares a drift decision rule; every decision will be undefined"
        );
    }
    Ok(declared)
}

/// The file of the approval package that declares its decision rule.
fn approval_file(
    engine: &Engine,
    sources: &[PolicySource],
) -> Result<Option<PathBuf>, PolicyError> {
    for (source, package) in package_files(engine, sources)? {
        if !package.iter().eq(APPROVAL_PACKAGE.iter()) {
            continue;
        }
        let declared = engine
            .has_declared_rule_rooted_at(&source.name, APPROVAL_RULE)
            .map_err(|err| rego_error(&err, &source.path))?;
        if declared {
            return Ok(Some(source.path.clone()));
        }
    }
    Ok(None)
}

/// Pairs each source with its package's path components.
fn package_files<'a>(
    engine: &Engine,
    sources: &'a [PolicySource],
) -> Result<Vec<(&'a PolicySource, Vec<String>)>, PolicyError> {
    let packages = engine.get_policy_package_components().map_err(|err| {
        let dir = sources
            .first()
            .and_then(|s| s.path.parent())
            .unwrap_or(Path::new("."));
        rego_error(&err, dir)
    })?;
    Ok(sources
        .iter()
        .filter_map(|source| {
            packages
                .iter()
                .find(|p| p.source_file == source.name)
                .map(|p| (source, p.components.clone()))
        })
        .collect())
}

/// Runs every `test_*` rule, in whichever package or file it is, as `opa
/// test` does; each must be exactly `true`. All failures are reported
/// together.
fn run_tests(engine: &mut Engine, sources: &[PolicySource]) -> Result<Vec<String>, PolicyError> {
    let files = package_files(engine, sources)?;
    let mut named = Vec::new();
    let mut heads: BTreeMap<String, usize> = BTreeMap::new();
    for (source, package) in &files {
        for name in test_rule_names(engine, source)? {
            let path = rule_path(package.iter().map(String::as_str), &name);
            *heads.entry(path.clone()).or_default() += rule_heads(&source.text, &name);
            named.push((*source, path));
        }
    }
    let mut seen = BTreeSet::new();
    let mut passed = Vec::new();
    let mut failures = Vec::new();
    for (source, path) in named {
        if !seen.insert(path.clone()) {
            continue;
        }
        let times = heads.get(&path).copied().unwrap_or(1);
        let outcome = if times > 1 {
            Some((TestOutcome::Repeated(times), false))
        } else {
            test_outcome(engine, &path)
        };
        match outcome {
            None => passed.push(path),
            Some((outcome, limited)) => {
                failures.push(TestFailure {
                    file: source.path.clone(),
                    rule: path,
                    outcome,
                });
                // A limit one test hit is usually a rule every test
                // evaluates; running the others would wait for it once
                // each, a minute for a few dozen tests, while a reload
                // holds the folder's next version back.
                if limited {
                    return Err(PolicyError::TestsFailed { failures });
                }
            }
        }
    }
    if !failures.is_empty() {
        return Err(PolicyError::TestsFailed { failures });
    }
    Ok(passed)
}

/// How many rule heads for `name` the text holds: lines that start with
/// the name, as a rule definition does.
fn rule_heads(text: &str, name: &str) -> usize {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '\t', '{', '(', ':', '=']))
        })
        .count()
}

/// Names of the `test_*` rules a file declares. regorus has no public list
/// of rules, so every `test_*` word in the text is a candidate and the
/// engine confirms which are rule heads, which rules out words in comments,
/// strings and references.
fn test_rule_names(engine: &Engine, source: &PolicySource) -> Result<Vec<String>, PolicyError> {
    let candidates: BTreeSet<&str> = source
        .text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("test_"))
        .collect();
    let mut names = Vec::new();
    for word in candidates {
        let declared = engine
            .has_declared_rule_rooted_at(&source.name, word)
            .map_err(|err| rego_error(&err, &source.path))?;
        if declared {
            names.push(word.to_owned());
        }
    }
    Ok(names)
}

/// How a test failed, if it did, and whether it was stopped by an
/// evaluation limit.
fn test_outcome(engine: &mut Engine, path: &str) -> Option<(TestOutcome, bool)> {
    match engine.eval_rule(path.to_owned()) {
        Ok(Value::Bool(true)) => None,
        Ok(Value::Undefined) => Some((TestOutcome::Undefined, false)),
        Ok(other) => Some((TestOutcome::NotTrue(show(&other)), false)),
        Err(err) => {
            let limited = err.chain().any(|cause| cause.is::<regorus::LimitError>());
            Some((TestOutcome::Error(diagnose(&err).reason), limited))
        }
    }
}

fn evaluate(engine: &mut Engine, rule: &DeclaredRule) -> Result<Value, PolicyError> {
    engine.eval_rule(rule.path.clone()).map_err(|err| {
        let found = diagnose(&err);
        PolicyError::Eval {
            rule: rule.path.clone(),
            at: found.at.unwrap_or_else(|| SourceAt::file(&rule.file)),
            reason: found.reason,
        }
    })
}

impl DeclaredRule {
    /// Checks the rule's value has the kind the host expects and stores it.
    fn store(&self, value: &Value, decision: &mut Decision) -> Result<(), PolicyError> {
        if *value == Value::Undefined {
            return Ok(());
        }
        let wrong = |expected| PolicyError::Output {
            rule: self.path.clone(),
            at: SourceAt::file(&self.file),
            value: show(value),
            expected,
        };
        match self.output {
            Output::Severity => {
                let text = value.as_string().map_err(|_| wrong(SEVERITY_NAMES))?;
                let severity = text
                    .parse::<Severity>()
                    .map_err(|_| wrong(SEVERITY_NAMES))?;
                decision.severity = Some(severity);
            }
            Output::SuppressReason => {
                let text = value.as_string().map_err(|_| wrong("a string"))?;
                decision.suppress_reason = Some(text.to_string());
            }
            Output::Suppressed => {
                let flag = value.as_bool().map_err(|_| wrong("true or false"))?;
                decision.suppressed = Some(*flag);
            }
            Output::AutoFix => {
                let flag = value.as_bool().map_err(|_| wrong("true or false"))?;
                decision.auto_fix = Some(*flag);
            }
        }
        Ok(())
    }
}

const SEVERITY_NAMES: &str = "one of info, low, medium, high, critical";

/// `data.a.b.rule`, quoting any component that is not a plain identifier.
fn rule_path<'a>(package: impl Iterator<Item = &'a str>, rule: &'a str) -> String {
    let mut path = String::from("data");
    for component in package.chain([rule]) {
        let plain = component
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && component
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain {
            path.push('.');
            path.push_str(component);
        } else {
            path.push_str(&format!("[{component:?}]"));
        }
    }
    path
}

/// A value as JSON for messages, cut short so a runaway rule cannot flood
/// the log.
fn show(value: &Value) -> String {
    let text = value.to_json_str().unwrap_or_else(|_| format!("{value:?}"));
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// What a regorus error says, split into where and what.
struct Diagnosis {
    at: Option<SourceAt>,
    reason: String,
}

/// regorus reports errors as text: a `--> file:line:col` header, the
/// source line with a caret, then `error: reason`. Errors that carry no
/// location (most builtin failures) are a single line.
fn diagnose(err: &anyhow::Error) -> Diagnosis {
    let text = err.to_string();
    let at = text.lines().find_map(|line| {
        let location = line.trim_start().strip_prefix("--> ")?;
        let mut parts = location.rsplitn(3, ':');
        let column = parts.next()?.parse::<u64>().ok();
        let line = parts.next()?.parse::<u64>().ok()?;
        let file = parts.next()?;
        Some(SourceAt::at(file, line, column))
    });
    let reason = text
        .lines()
        .rev()
        .find_map(|line| line.trim_start().strip_prefix("error: "))
        .unwrap_or_else(|| text.trim())
        .to_owned();
    Diagnosis { at, reason }
}

fn rego_error(err: &anyhow::Error, fallback: &Path) -> PolicyError {
    let found = diagnose(err);
    PolicyError::Rego {
        at: found.at.unwrap_or_else(|| SourceAt::file(fallback)),
        reason: found.reason,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use org_mesh_model::{Finding, NodeRef, Properties};

    use super::*;

    /// Compares ways of evaluating from `&self`. Run it optimised, alone:
    /// `cargo test --release -p org-mesh-policy --lib -- --ignored --nocapture timing`
    #[test]
    #[ignore = "timing, not a check; run by hand"]
    fn timing_of_evaluation_strategies() -> Result<(), Box<dyn std::error::Error>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let set = PolicySet::load(&dir)?;
        let subject = NodeRef::new("Account", "github:alice");
        let finding = Finding {
            detector: "identity-drift".into(),
            rule: "idp-offboarded-has-access".into(),
            fingerprint: org_mesh_model::fingerprint("idp-offboarded-has-access", &subject, ""),
            subject,
            key: String::new(),
            title: "offboarded".into(),
            score: 0.95,
            default_severity: Severity::High,
            attributes: Properties::new(),
            evidence: Vec::new(),
            remedy: None,
        };
        let input = DecisionInput::from_finding(&finding, Timestamp::now_utc());
        let prepared = set.engines.prepared();
        let mut engine = prepared.clone();
        let compiled = set
            .declared
            .iter()
            .map(|rule| engine.compile_with_entrypoint(&rule.path.as_str().into()))
            .collect::<Result<Vec<_>, _>>()?;

        // Other builds share the machine; the fastest of several
        // interleaved batches is the figure least disturbed by them.
        let rounds = 1_000u32;
        let mut best = [Duration::MAX; 5];
        for _ in 0..9 {
            let mut timings = [Duration::ZERO; 5];
            let start = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(prepared.clone());
            }
            timings[0] = start.elapsed() / rounds;

            let start = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(input.to_rego()?);
            }
            timings[1] = start.elapsed() / rounds;

            let start = Instant::now();
            for _ in 0..rounds {
                let mut engine = prepared.clone();
                engine.set_input(input.to_rego()?);
                for rule in &set.declared {
                    std::hint::black_box(evaluate(&mut engine, rule)?);
                }
            }
            timings[2] = start.elapsed() / rounds;

            let start = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(set.decide(&input)?);
            }
            timings[3] = start.elapsed() / rounds;

            let start = Instant::now();
            for _ in 0..rounds {
                let value = input.to_rego()?;
                for policy in &compiled {
                    std::hint::black_box(policy.eval_with_input(value.clone())?);
                }
            }
            timings[4] = start.elapsed() / rounds;
            for (best, timing) in best.iter_mut().zip(timings) {
                *best = (*best).min(timing);
            }
        }
        let labels = [
            "engine clone alone",
            "input to rego value",
            "rule by rule, clone",
            "decide, pooled (shipped)",
            "decide, compiled per rule",
        ];
        for (label, timing) in labels.iter().zip(best) {
            println!("{label:<26}{timing:?}");
        }

        let per_call = |start: Instant| start.elapsed() / rounds;
        let mut engine = prepared.clone();
        engine.set_input(input.to_rego()?);
        for rule in &set.declared {
            let start = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(evaluate(&mut engine, rule)?);
            }
            println!("rule {:<21}{:?}", rule.output.name(), per_call(start));
        }
        Ok(())
    }

    /// The decision the host made before it gathered the rules: one
    /// `eval_rule` per declared rule.
    fn decide_rule_by_rule(
        set: &PolicySet,
        input: &DecisionInput,
    ) -> Result<Decision, Box<dyn std::error::Error>> {
        let mut engine = set.engines.prepared().clone();
        engine.set_input(input.to_rego()?);
        let mut decision = Decision::default();
        for rule in &set.declared {
            rule.store(&evaluate(&mut engine, rule)?, &mut decision)?;
        }
        Ok(decision)
    }

    #[test]
    fn gathered_decision_matches_rule_by_rule() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        fs::copy(shipped.join("drift.rego"), dir.path().join("drift.rego"))?;
        // Live, expired and wildcard suppressions, a disabled rule and an
        // untuned one, so that both answers of each flag come up and
        // `suppress_reason` is left undefined for some findings.
        fs::write(
            dir.path().join(tuning::FILE_NAME),
            r#"
rules:
  account-unlinked: {severity: low, auto_fix: true}
  org-2fa-not-required: {enabled: false}
thresholds: {auto_fix_min_score: 0.9}
suppressions:
  - {rule: account-unlinked, subject: "Account(github:bot)", reason: kept, expires: 2030-01-01T00:00:00Z}
  - {rule: account-unlinked, subject: "*", reason: old, expires: 2020-01-01T00:00:00Z}
"#,
        )?;
        let set = PolicySet::load(dir.path())?;
        let now = Timestamp::now_utc();
        let cases = [
            ("account-unlinked", "github:alice", 0.95, ""),
            ("account-unlinked", "github:alice", 0.5, ""),
            ("account-unlinked", "github:bot", 0.95, ""),
            ("idp-offboarded-has-access", "github:carol", 0.95, "owner"),
            ("org-2fa-not-required", "github:acme", 0.95, ""),
            ("something-new", "github:dave", 0.95, ""),
        ];
        let mut seen = Vec::new();
        for (rule, key, score, role) in cases {
            let subject = NodeRef::new("Account", key);
            let mut attributes = Properties::new();
            if !role.is_empty() {
                attributes.insert("role".into(), org_mesh_model::Value::Text(role.into()));
            }
            let remedy = org_mesh_model::Remedy {
                action: "remove-member".into(),
                target: subject.clone(),
                parameters: Properties::new(),
            };
            let finding = Finding {
                detector: "identity-drift".into(),
                rule: rule.into(),
                fingerprint: org_mesh_model::fingerprint(rule, &subject, ""),
                subject,
                key: String::new(),
                title: rule.into(),
                score,
                default_severity: Severity::Medium,
                attributes,
                evidence: Vec::new(),
                remedy: Some(remedy),
            };
            let input = DecisionInput::from_finding(&finding, now);
            let gathered = set.decide(&input)?;
            assert_eq!(gathered, decide_rule_by_rule(&set, &input)?, "{rule} {key}");
            seen.push((
                gathered.suppressed,
                gathered.auto_fix,
                gathered.suppress_reason,
            ));
        }
        for flag in [Some(true), Some(false)] {
            assert!(
                seen.iter().any(|s| s.0 == flag),
                "suppressed never {flag:?}"
            );
            assert!(seen.iter().any(|s| s.1 == flag), "auto_fix never {flag:?}");
        }
        assert!(
            seen.iter().any(|s| s.2.is_none()),
            "suppress_reason always set"
        );
        Ok(())
    }

    #[test]
    fn gathered_error_names_the_failing_rule() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let policy = "package orgmesh.drift\n\nimport rego.v1\n\nseverity := \"low\"\n\n\
                      default suppressed := false\n\n\
                      auto_fix if time.parse_rfc3339_ns(input.title) > 0\n";
        fs::write(dir.path().join("late.rego"), policy)?;
        let set = PolicySet::load(dir.path())?;
        let mut input = DecisionInput::from_finding(
            &Finding {
                detector: "d".into(),
                rule: "r".into(),
                fingerprint: "f".into(),
                subject: NodeRef::new("Account", "a"),
                key: String::new(),
                title: "not a date".into(),
                score: 1.0,
                default_severity: Severity::Low,
                attributes: Properties::new(),
                evidence: Vec::new(),
                remedy: None,
            },
            Timestamp::now_utc(),
        );
        let err = set.decide(&input).err().ok_or("bad date accepted")?;
        let text = err.to_string();
        assert!(matches!(err, PolicyError::Eval { .. }), "{text}");
        assert!(text.contains("data.orgmesh.drift.auto_fix:"), "{text}");
        assert!(!text.contains("severity"), "{text}");
        assert!(text.contains("late.rego"), "{text}");

        // The engine that failed is not reused; the next decision is whole.
        input.title = "2025-01-01T00:00:00Z".into();
        let decision = set.decide(&input)?;
        assert_eq!(decision.severity, Some(Severity::Low));
        assert_eq!(decision.auto_fix, Some(true));
        Ok(())
    }

    #[test]
    fn rule_paths_quote_odd_components() {
        assert_eq!(
            rule_path(["orgmesh", "drift"].into_iter(), "severity"),
            "data.orgmesh.drift.severity"
        );
        assert_eq!(
            rule_path(["graph", "1.0"].into_iter(), "deny"),
            "data.graph[\"1.0\"].deny"
        );
    }

    #[test]
    fn diagnosis_splits_location_and_reason() {
        let err = anyhow::Error::msg(
            "\n--> /p/a:b.rego:5:5\n  |\n5 |   1 = \n  |     ^\nerror: expecting `}`",
        );
        let found = diagnose(&err);
        assert_eq!(found.at, Some(SourceAt::at("/p/a:b.rego", 5, Some(5))));
        assert_eq!(found.reason, "expecting `}`");
        let plain = diagnose(&anyhow::Error::msg("Failed to parse datetime"));
        assert_eq!(plain.at, None);
        assert_eq!(plain.reason, "Failed to parse datetime");
    }
}
