//! The drift tuning file (`drift-rules.yaml`): per-rule severity overrides,
//! which fixes may run unattended, and time-boxed suppressions. Policies
//! read it as `data.tuning`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use org_mesh_model::{NodeRef, Severity, Timestamp};
use serde::{Serialize, Serializer};
use serde_saphyr::Location;
use time::format_description::well_known::Rfc3339;

use crate::error::{SourceAt, TuningError, TuningProblem};

/// The name the tuning file has in a policy folder.
pub const FILE_NAME: &str = "drift-rules.yaml";

/// Rule ids the first-party detectors report. Tuning for any other id is
/// kept, since third-party detectors may report it, but logged as a likely
/// typo.
pub const KNOWN_RULES: &[&str] = &[
    "idp-offboarded-has-access",
    "idp-offboarded-has-admin",
    "account-unlinked",
    "account-without-mfa",
    "outside-collaborator-admin",
    "default-branch-unprotected",
    "branch-protection-below-baseline",
    "org-2fa-not-required",
    "narrative-campaign",
    "narrative-storm",
];

/// A real tuning file is a few kilobytes; anything near this is a mistake
/// or an attack, and is refused before the parser sees it.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The checked contents of the tuning file, as policies see them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tuning {
    pub rules: BTreeMap<String, RuleTuning>,
    pub thresholds: Thresholds,
    pub suppressions: Vec<Suppression>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTuning {
    /// Replaces the detector's suggested severity; `None` keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Whether this rule's fixes may run without a person. Absent means no.
    pub auto_fix: bool,
    /// A disabled rule's findings are reported as suppressed.
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Thresholds {
    /// The lowest finding score at which a fix may run unattended. Absent
    /// means no fix runs unattended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_fix_min_score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub rule: String,
    pub subject: SubjectPattern,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: Timestamp,
}

/// Which findings of a rule a suppression covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectPattern {
    /// `*`: every subject.
    Any,
    /// `Label(key)`: one node.
    Node(NodeRef),
}

impl SubjectPattern {
    fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(SubjectPattern::Any);
        }
        let parsed = text
            .split_once('(')
            .and_then(|(label, rest)| Some((label, rest.strip_suffix(')')?)))
            .map(|(label, key)| NodeRef::new(label, key));
        match parsed {
            Some(node) if node.validate().is_ok() => Ok(SubjectPattern::Node(node)),
            _ => Err(format!(
                "{text:?} is neither \"*\" nor Label(key), e.g. Account(github:octocat)"
            )),
        }
    }
}

impl fmt::Display for SubjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectPattern::Any => f.write_str("*"),
            SubjectPattern::Node(node) => node.fmt(f),
        }
    }
}

// Policies compare the subject as text, so it goes to Rego in the same
// spelling the operator wrote.
impl Serialize for SubjectPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Tuning {
    /// Reads and checks a tuning file.
    pub fn load(path: &Path) -> Result<Tuning, TuningError> {
        let text = read_bounded(path)?;
        Tuning::parse(&text, path)
    }

    /// Checks tuning text; `path` is only used to name the file in errors
    /// and logs.
    pub fn parse(text: &str, path: &Path) -> Result<Tuning, TuningError> {
        let raw: Option<raw::File> = serde_saphyr::from_str_with_options(text, parse_options())
            .map_err(|err| parse_error(path, &err))?;
        // A file whose every line is commented out is an empty tuning.
        let raw = raw.unwrap_or_default();
        let tuning = Checker::new(path).check(raw)?;
        tuning.warn_about_unusual_entries(path);
        Ok(tuning)
    }

    fn warn_about_unusual_entries(&self, path: &Path) {
        let rule_ids = self
            .rules
            .keys()
            .chain(self.suppressions.iter().map(|s| &s.rule));
        for rule in rule_ids {
            if !KNOWN_RULES.contains(&rule.as_str()) {
                tracing::warn!(
                    file = %path.display(),
                    rule = %rule,
                    "Tuning names a rule no first-party detector reports; check the spelling"
                );
            }
        }
        let now = Timestamp::now_utc();
        for suppression in self.suppressions.iter().filter(|s| s.expires <= now) {
            tracing::warn!(
                file = %path.display(),
                rule = %suppression.rule,
                subject = %suppression.subject,
                "Suppression has expired and no longer applies; remove or renew it"
            );
        }
    }
}

fn read_bounded(path: &Path) -> Result<String, TuningError> {
    let read_err = |source| TuningError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    // Reading one byte past the limit tells "at the limit" from "over it"
    // without trusting metadata that may change under us.
    let read = file
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if read as u64 > MAX_FILE_BYTES {
        return Err(TuningError::TooLarge {
            path: path.to_path_buf(),
            size: fs::metadata(path).map_or(read as u64, |m| m.len()),
            limit: MAX_FILE_BYTES,
        });
    }
    Ok(text)
}

/// Budgets sized for a file of a few dozen rules and suppressions: well
/// above anything legitimate, far below what would hurt the host.
fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 16,
            flow_nesting_limit: 16,
            max_documents: 1,
            max_anchors: 64,
            max_aliases: 256,
            max_events: 100_000,
            max_nodes: 50_000,
            max_total_scalar_bytes: 1024 * 1024,
            max_recorded_anchor_events: 10_000,
            max_recorded_anchor_bytes: 256 * 1024,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 10_000,
            max_replay_stack_depth: 8,
            max_alias_expansions_per_anchor: 256,
        },
        with_snippet: false,
        // `yes`, `no`, `on` and `off` are YAML 1.1 booleans; taken as
        // such, a quoted "no" meant as text, or a typo of a value, would
        // silently turn a fix on or off.
        strict_booleans: true,
    }
}

fn parse_error(path: &Path, err: &serde_saphyr::Error) -> TuningError {
    let location = err.location().filter(|l| l.line() > 0);
    // The parser's advice on a duplicate key names its own option, which
    // nobody editing the file can reach.
    let mut reason = err
        .without_snippet()
        .to_string()
        .replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    let Some(location) = location else {
        return TuningError::Parse {
            at: SourceAt::file(path),
            reason,
        };
    };
    // The parser ends its message with the position, which the error
    // already carries in front.
    let suffix = format!(" at line {}, column {}", location.line(), location.column());
    if let Some(stripped) = reason.strip_suffix(&suffix) {
        reason = stripped.to_owned();
    }
    let column = Some(location.column()).filter(|c| *c > 0);
    TuningError::Parse {
        at: SourceAt::at(path, location.line(), column),
        reason,
    }
}

fn line_of(location: &Location) -> Option<u64> {
    Some(location.line()).filter(|line| *line > 0)
}

/// Turns the file as written into a [`Tuning`], collecting every wrong
/// value rather than stopping at the first.
struct Checker {
    path: PathBuf,
    problems: Vec<TuningProblem>,
}

impl Checker {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, field: String, location: &Location, message: String) {
        self.problems.push(TuningProblem {
            field,
            line: line_of(location),
            message,
        });
    }

    fn check(mut self, raw: raw::File) -> Result<Tuning, TuningError> {
        let rules = raw
            .rules
            .unwrap_or_default()
            .into_iter()
            .map(|(id, rule)| {
                let checked = self.rule(&id, rule);
                (id, checked)
            })
            .collect();
        let thresholds = self.thresholds(raw.thresholds.unwrap_or_default());
        let suppressions = raw
            .suppressions
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(index, s)| self.suppression(index, s))
            .collect();
        if !self.problems.is_empty() {
            return Err(TuningError::Invalid {
                path: self.path,
                problems: self.problems,
            });
        }
        Ok(Tuning {
            rules,
            thresholds,
            suppressions,
        })
    }

    fn rule(&mut self, id: &str, rule: raw::Rule) -> RuleTuning {
        let severity = rule
            .severity
            .and_then(|s| match s.value.parse::<Severity>() {
                Ok(severity) => Some(severity),
                Err(message) => {
                    self.problem(format!("rules.{id}.severity"), &s.referenced, message);
                    None
                }
            });
        RuleTuning {
            severity,
            auto_fix: rule.auto_fix.unwrap_or(false),
            enabled: rule.enabled.unwrap_or(true),
        }
    }

    fn thresholds(&mut self, raw: raw::Thresholds) -> Thresholds {
        let score = raw.auto_fix_min_score.and_then(|s| {
            if (0.0..=1.0).contains(&s.value) {
                Some(s.value)
            } else {
                let message = format!("{} is not a score between 0 and 1", s.value);
                self.problem(
                    "thresholds.auto_fix_min_score".into(),
                    &s.referenced,
                    message,
                );
                None
            }
        });
        Thresholds {
            auto_fix_min_score: score,
        }
    }

    fn suppression(&mut self, index: usize, raw: raw::Suppression) -> Option<Suppression> {
        let field = |name: &str| format!("suppressions[{index}].{name}");
        if raw.rule.value.trim().is_empty() {
            self.problem(field("rule"), &raw.rule.referenced, "is empty".into());
        }
        let subject = SubjectPattern::parse(&raw.subject.value)
            .map_err(|message| self.problem(field("subject"), &raw.subject.referenced, message))
            .ok();
        if raw.reason.value.trim().is_empty() {
            let message = "is empty: say why, so the next reader knows".into();
            self.problem(field("reason"), &raw.reason.referenced, message);
        }
        let expires = Timestamp::parse(&raw.expires.value, &Rfc3339)
            .map_err(|err| {
                let message = format!(
                    "{:?} is not an RFC 3339 date-time such as 2030-01-31T00:00:00Z: {err}",
                    raw.expires.value
                );
                self.problem(field("expires"), &raw.expires.referenced, message);
            })
            .ok();
        Some(Suppression {
            rule: raw.rule.value,
            subject: subject?,
            reason: raw.reason.value,
            expires: expires?,
        })
    }
}

/// The file exactly as written. Line numbers ride along on the values that
/// are checked after parsing, so every problem can point at its line.
mod raw {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_saphyr::Spanned;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct File {
        // Each section may be present but empty (`suppressions:` with every
        // entry commented out), which YAML reads as null.
        #[serde(default)]
        pub rules: Option<BTreeMap<String, Rule>>,
        #[serde(default)]
        pub thresholds: Option<Thresholds>,
        #[serde(default)]
        pub suppressions: Option<Vec<Suppression>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Rule {
        #[serde(default)]
        pub severity: Option<Spanned<String>>,
        #[serde(default)]
        pub auto_fix: Option<bool>,
        #[serde(default)]
        pub enabled: Option<bool>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Thresholds {
        #[serde(default)]
        pub auto_fix_min_score: Option<Spanned<f64>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Suppression {
        pub rule: Spanned<String>,
        pub subject: Spanned<String>,
        pub reason: Spanned<String>,
        pub expires: Spanned<String>,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Nine levels of ten aliases each: about a billion nodes if expanded.
    fn alias_bomb() -> String {
        let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9 {
            let prev = level - 1;
            let refs = vec![format!("*a{prev}"); 10].join(", ");
            yaml.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
        }
        yaml
    }

    // The typed file stops a bomb at its first wrong key anyway; parsing
    // into an untyped value shows the budget itself is what holds.
    #[test]
    fn budget_stops_an_alias_bomb_without_a_schema() {
        let start = Instant::now();
        let parsed: Result<serde_json::Value, _> =
            serde_saphyr::from_str_with_options(&alias_bomb(), parse_options());
        let err = match parsed {
            Ok(_) => String::from("parsed"),
            Err(err) => err.to_string(),
        };
        assert!(
            err.contains("alias") || err.contains("budget"),
            "unexpected outcome: {err}"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn budget_stops_deep_nesting_without_a_schema() {
        let flow = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let block = format!("{}x\n", "- ".repeat(10_000));
        for yaml in [flow, block] {
            let start = Instant::now();
            let parsed: Result<serde_json::Value, _> =
                serde_saphyr::from_str_with_options(&yaml, parse_options());
            let err = match parsed {
                Ok(_) => String::from("parsed"),
                Err(err) => err.to_string(),
            };
            assert!(
                err.contains("depth") || err.contains("recursion limit"),
                "unexpected outcome: {err}"
            );
            assert!(start.elapsed() < Duration::from_secs(1));
        }
    }

    #[test]
    fn subject_patterns() {
        assert_eq!(SubjectPattern::parse("*"), Ok(SubjectPattern::Any));
        assert_eq!(
            SubjectPattern::parse("Account(github:a(b))"),
            Ok(SubjectPattern::Node(NodeRef::new("Account", "github:a(b)")))
        );
        for bad in ["", "Account", "Account()", "account(x)", "Account(x", "**"] {
            assert!(SubjectPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
