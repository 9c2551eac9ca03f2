use std::fmt;
use std::io;
use std::path::PathBuf;

/// A place in a policy or tuning file: the file always, the line and
/// column when the parser reported them (both count from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAt {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl SourceAt {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            line: None,
            column: None,
        }
    }

    pub fn at(path: impl Into<PathBuf>, line: u64, column: Option<u64>) -> Self {
        Self {
            path: path.into(),
            line: Some(line),
            column,
        }
    }
}

impl fmt::Display for SourceAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// Why a policy folder could not be loaded or a decision could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot list policy folder {path}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read policy file {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("policy folder {path} holds no *.rego file")]
    NoPolicies { path: PathBuf },
    /// The Rego parser or compiler refused a policy.
    #[error("{at}: {reason}")]
    Rego { at: SourceAt, reason: String },
    /// One or more `test_*` rules did not evaluate to `true`.
    #[error("{} policy test(s) failed: {}", failures.len(), join(failures))]
    TestsFailed { failures: Vec<TestFailure> },
    #[error(transparent)]
    Tuning(#[from] TuningError),
    #[error("{at}: evaluating {rule}: {reason}")]
    Eval {
        rule: String,
        at: SourceAt,
        reason: String,
    },
    /// A decision rule produced a value of the wrong shape.
    #[error("{at}: rule {rule} gave {value}, expected {expected}")]
    Output {
        rule: String,
        at: SourceAt,
        value: String,
        expected: &'static str,
    },
    #[error("cannot turn finding {fingerprint} into policy input")]
    Input {
        fingerprint: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A Rego test rule that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFailure {
    pub file: PathBuf,
    /// Full rule path, e.g. `data.orgmesh.drift_test.test_escalation`.
    pub rule: String,
    pub outcome: TestOutcome,
}

impl fmt::Display for TestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.file.display(), self.rule, self.outcome)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// The rule's body did not hold for any binding.
    Undefined,
    /// The rule produced a value other than `true`, e.g. `false`.
    NotTrue(String),
    /// Evaluation failed, e.g. a builtin refused its argument.
    Error(String),
    /// The test is defined more than once in its package. Rego joins the
    /// definitions into one rule that holds when any of them does, so a
    /// failing definition would pass beside a passing one; it is not run.
    Repeated(usize),
}

impl fmt::Display for TestOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestOutcome::Undefined => f.write_str("was undefined"),
            TestOutcome::NotTrue(value) => write!(f, "was {value}, not true"),
            TestOutcome::Error(reason) => write!(f, "failed: {reason}"),
            TestOutcome::Repeated(times) => write!(
                f,
                "is defined {times} times in its package, which Rego joins into one test that \
                 passes if any definition does: give each its own name"
            ),
        }
    }
}

/// Why the tuning file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TuningError {
    #[error("cannot read tuning file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("tuning file {path} is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    /// Not YAML, not the expected shape (unknown or mistyped field), or over
    /// one of the parser's budgets. The parser stops at the first of these.
    #[error("{at}: {reason}")]
    Parse { at: SourceAt, reason: String },
    /// Well-formed YAML whose values are wrong; every problem is listed.
    #[error("{path}: {} problem(s): {}", problems.len(), join(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<TuningProblem>,
    },
}

/// One wrong value in the tuning file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuningProblem {
    /// Dotted path, e.g. `rules.account-unlinked.severity` or
    /// `suppressions[2].expires`.
    pub field: String,
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for TuningProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}, {}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
