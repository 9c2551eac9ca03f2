//! The org-mesh plugin conformance suite, as a library: what
//! `org-mesh plugin test` runs and what `cargo test -p org-mesh-conformance`
//! runs over every first-party plugin.
//!
//! The cases are data, one folder each under `conformance/cases` (see the
//! [`case`] module for the format). Each case runs twice against the plugin
//! under test: as written, and as its negative twin, which changes one thing
//! and expects the opposite outcome. Plugins are loaded by the real runtime,
//! offline: the only HTTP they can reach is a scripted server the suite
//! starts on 127.0.0.1.

pub mod case;
mod checks;
mod inspect;
mod subject;
pub mod tape;

use std::fmt;
use std::path::{Path, PathBuf};

pub use case::{Case, Check};
pub use inspect::{Inspection, inspect};
pub use subject::Subject;

/// Why the suite could not run; a case that runs and fails is not an
/// error but a [`Verdict`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("case {path}: {problem}")]
    Case { path: PathBuf, problem: String },
    #[error("{path}: {problem}")]
    Target { path: PathBuf, problem: String },
    #[error(transparent)]
    Load(#[from] org_mesh_runtime::LoadError),
    #[error("passing list {path}: {problem}")]
    Passing { path: PathBuf, problem: String },
}

/// The case folders that ship with org-mesh, as this build found them.
pub fn shipped_cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases")
}

/// How one case came out for one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The case, or its twin, did not come out as expected.
    Fail(String),
    /// The case is not about this kind of plugin.
    NotApplicable,
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub case: String,
    pub about: String,
    pub verdict: Verdict,
}

/// One plugin's results, case by case.
#[derive(Debug, Clone)]
pub struct Report {
    pub plugin: String,
    pub version: String,
    pub kind: org_mesh_runtime::Kind,
    pub results: Vec<CaseResult>,
}

impl Report {
    pub fn passed(&self) -> impl Iterator<Item = &CaseResult> {
        self.results.iter().filter(|r| r.verdict == Verdict::Pass)
    }

    pub fn failed(&self) -> impl Iterator<Item = &CaseResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Fail(_)))
    }

    /// True when every case that applies passed.
    pub fn ok(&self) -> bool {
        self.failed().next().is_none()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            match &r.verdict {
                Verdict::Pass => writeln!(f, "ok    {}", r.case)?,
                Verdict::Fail(why) => writeln!(f, "FAIL  {}: {why}", r.case)?,
                Verdict::NotApplicable => {}
            }
        }
        let passed = self.passed().count();
        let applicable = passed + self.failed().count();
        let status = if self.ok() { "PASS" } else { "FAIL" };
        writeln!(
            f,
            "{status}: {passed}/{applicable} cases for {} {} ({})",
            self.plugin, self.version, self.kind
        )
    }
}

/// The loaded case folders.
#[derive(Debug, Clone)]
pub struct Suite {
    pub cases: Vec<Case>,
}

impl Suite {
    pub fn load(dir: &Path) -> Result<Suite, Error> {
        Ok(Suite {
            cases: case::load_all(dir)?,
        })
    }

    /// Runs every case that applies to the plugin, each with its twin.
    pub async fn run(&self, subject: &Subject) -> Report {
        let m = &subject.manifest;
        let mut results = Vec::new();
        for case in &self.cases {
            let verdict = if case.applies_to(m.kind, &m.name) {
                run_case(subject, case).await
            } else {
                Verdict::NotApplicable
            };
            results.push(CaseResult {
                case: case.id.clone(),
                about: case.case.about.clone(),
                verdict,
            });
        }
        Report {
            plugin: m.name.clone(),
            version: m.version.clone(),
            kind: m.kind,
            results,
        }
    }
}

#[tracing::instrument(name = "org_mesh.conformance.case", skip_all, fields(case = %case.id, plugin = %subject.manifest.name))]
async fn run_case(subject: &Subject, case: &Case) -> Verdict {
    let halves = [("case", &case.case), ("twin", &case.twin)];
    for (name, half) in halves {
        let outcome = checks::run(subject, case, half).await;
        tracing::debug!(half = name, ?outcome, "Ran");
        if let Err(why) = judge(outcome, &half.expect) {
            return Verdict::Fail(format!("{name}: {why}"));
        }
    }
    Verdict::Pass
}

fn judge(outcome: Result<(), String>, expect: &case::Expect) -> Result<(), String> {
    match (outcome, expect) {
        (Ok(()), case::Expect::Pass) => Ok(()),
        (Err(e), case::Expect::Pass) => Err(e),
        (Ok(()), case::Expect::Fail(want)) => Err(format!(
            "expected the check to fail with {want:?}, but it passed"
        )),
        (Err(e), case::Expect::Fail(want)) if e.to_lowercase().contains(&want.to_lowercase()) => {
            Ok(())
        }
        (Err(e), case::Expect::Fail(want)) => Err(format!(
            "expected the check to fail with {want:?}, but it failed with: {e}"
        )),
    }
}

/// The list of plugin and case pairs known to pass, one `plugin case` pair
/// a line; `#` starts a comment.
pub fn read_passing(path: &Path) -> Result<Vec<(String, String)>, Error> {
    let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
        path: path.to_path_buf(),
        error,
    })?;
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.split('#').next().unwrap_or_default().trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(
            |(i, l)| match l.split_whitespace().collect::<Vec<_>>()[..] {
                [plugin, case] => Ok((plugin.to_string(), case.to_string())),
                _ => Err(Error::Passing {
                    path: path.to_path_buf(),
                    problem: format!("line {}: expected `plugin case`, found {l:?}", i + 1),
                }),
            },
        )
        .collect()
}
