//! New versions of plugins and policies, taken in while the twin serves.
//!
//! A candidate is built and checked beside the version in service: a
//! policy folder must parse, compile and pass its own Rego tests; a plugin
//! must load, describe itself validly, accept its instance's configuration
//! and pass its kind's smoke check. Only then does it replace the running
//! version, by swapping one pointer. Work that took the old version (an
//! evaluation, a webhook handed to a connector) finishes on it. A rejected
//! candidate leaves the running version in service.
//!
//! Plugins are replaced instance by instance: a broken build of one plugin
//! keeps its old version serving without holding back the others.
//!
//! With `policies.shadow` configured, a policy version that passes its
//! checks is not served at once: it decides beside the serving version on
//! every live finding for the configured window, and is promoted only if
//! its decisions differed and failed no more often than the budget allows;
//! otherwise it is rolled back and the differences are reported.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use org_mesh_model::ChangeSet;
use org_mesh_policy::{Decision, DecisionInput, PolicySet};
use org_mesh_runtime::{Kind, Plugin, Registry};
use serde::Serialize;

use crate::pipeline::{Instances, Policies, Twin, bind_all, folder_version, plugin_version};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The candidate passed its checks and serves now.
    Applied,
    /// The candidate failed a check; the previous version serves on.
    Rejected,
    /// The candidate is the version already serving.
    Unchanged,
    /// The candidate decides beside the serving version until its window
    /// ends.
    Shadowing,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Rejected => "rejected",
            Outcome::Unchanged => "unchanged",
            Outcome::Shadowing => "shadowing",
        }
    }
}

/// What one reload did to one policy folder or plugin instance.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// `policy` or `plugin`.
    pub kind: &'static str,
    /// The policy folder, or the plugin instance's name.
    pub target: String,
    pub outcome: Outcome,
    /// The version serving after the reload; none when nothing does.
    pub serving: Option<String>,
    /// The version that was tried.
    pub candidate: Option<String>,
    /// Why the candidate was rejected.
    pub problem: Option<String>,
    /// What the candidate's shadow window saw, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Tally>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
}

impl ReloadReport {
    fn new(kind: &'static str, target: String, outcome: Outcome) -> ReloadReport {
        ReloadReport {
            kind,
            target,
            outcome,
            serving: None,
            candidate: None,
            problem: None,
            shadow: None,
            at: time::OffsetDateTime::now_utc(),
        }
    }
}

/// How many differing decisions a shadow keeps as examples.
const DIFF_EXAMPLES: usize = 20;

/// A policy version on trial beside the serving one.
#[derive(Debug)]
pub struct Shadow {
    pub(crate) policies: Arc<Policies>,
    started: Instant,
    window: Duration,
    max_diffs: u64,
    max_errors: u64,
    tally: Mutex<Tally>,
}

/// What a shadow has seen so far.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Tally {
    pub decisions: u64,
    pub diffs: u64,
    pub errors: u64,
    /// The first differing decisions: the finding, what the serving
    /// version decided and what the candidate did.
    pub examples: Vec<serde_json::Value>,
}

fn summary(d: &Decision) -> serde_json::Value {
    serde_json::json!({
        "severity": d.severity,
        "suppressed": d.suppressed,
        "auto_fix": d.auto_fix,
    })
}

impl Shadow {
    /// Decides on `input` with the candidate and counts how its answer
    /// compares with the serving version's (`None` when that failed).
    pub(crate) fn compare(&self, input: &DecisionInput, serving: Option<&Decision>) {
        let Some(set) = &self.policies.set else {
            return;
        };
        let candidate = set.decide(input);
        let mut tally = self
            .tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tally.decisions += 1;
        match candidate {
            Err(e) => {
                tally.errors += 1;
                if tally.examples.len() < DIFF_EXAMPLES {
                    tally.examples.push(serde_json::json!({
                        "finding": input.fingerprint,
                        "rule": input.rule,
                        "candidate_error": e.to_string(),
                    }));
                }
            }
            Ok(candidate) if Some(&candidate) != serving => {
                tally.diffs += 1;
                if tally.examples.len() < DIFF_EXAMPLES {
                    tally.examples.push(serde_json::json!({
                        "finding": input.fingerprint,
                        "rule": input.rule,
                        "serving": serving.map(summary),
                        "candidate": summary(&candidate),
                    }));
                }
            }
            Ok(_) => {}
        }
    }

    pub fn tally(&self) -> Tally {
        self.tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn version(&self) -> &str {
        &self.policies.version
    }

    /// Seconds until the window ends.
    pub fn remaining_secs(&self) -> u64 {
        self.window.saturating_sub(self.started.elapsed()).as_secs()
    }
}

impl Twin {
    /// The policy version on trial, if any.
    pub fn shadowing(&self) -> Option<Arc<Shadow>> {
        match self.shadow.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_shadow(&self, shadow: Option<Arc<Shadow>>) {
        match self.shadow.write() {
            Ok(mut g) => *g = shadow,
            Err(poisoned) => *poisoned.into_inner() = shadow,
        }
    }

    fn serve_policies(&self, next: Arc<Policies>) {
        match self.policy.write() {
            Ok(mut g) => *g = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    /// Ends a shadow whose window has passed: promotes it when it stayed
    /// within its budget, rolls it back otherwise. `None` while no shadow
    /// is due.
    pub fn settle_shadow(&self) -> Option<ReloadReport> {
        let shadow = self.shadowing()?;
        if shadow.started.elapsed() < shadow.window {
            return None;
        }
        self.set_shadow(None);
        let tally = shadow.tally();
        let mut report = ReloadReport::new(
            "policy",
            self.config.policies.dir.display().to_string(),
            Outcome::Applied,
        );
        report.candidate = Some(shadow.policies.version.clone());
        let within = tally.diffs <= shadow.max_diffs && tally.errors <= shadow.max_errors;
        if within {
            self.serve_policies(shadow.policies.clone());
            report.serving = Some(shadow.policies.version.clone());
        } else {
            report.outcome = Outcome::Rejected;
            report.serving = Some(self.policy().version.clone());
            report.problem = Some(format!(
                "in its shadow window {} of {} decisions differed from the serving version's (budget {}) and {} failed (budget {}); rolled back",
                tally.diffs, tally.decisions, shadow.max_diffs, tally.errors, shadow.max_errors
            ));
        }
        report.shadow = Some(tally);
        Some(report)
    }

    /// Loads the policy folder again and serves it if it passes its checks.
    ///
    /// `live` holds the findings in service, as decision inputs: a version
    /// that fails to decide one the serving version decides is refused,
    /// since in its place that finding would lose its rating without a
    /// word beyond a log line. The folder's own tests may never reach it.
    pub async fn reload_policies(&self, live: Vec<DecisionInput>) -> ReloadReport {
        let dir = self.config.policies.dir.clone();
        let current = self.policy();
        let candidate = folder_version(&dir);
        let mut report = ReloadReport::new("policy", dir.display().to_string(), Outcome::Unchanged);
        report.candidate = Some(candidate.clone());
        report.serving = current.set.as_ref().map(|_| current.version.clone());
        if candidate == current.version && current.set.is_some() {
            // Back to the serving version: a candidate on trial is moot.
            if self.shadowing().is_some() {
                self.set_shadow(None);
            }
            return report;
        }
        if self
            .shadowing()
            .is_some_and(|s| s.policies.version == candidate)
        {
            report.outcome = Outcome::Shadowing;
            return report;
        }
        let load_dir = dir.clone();
        let evaluator = self.config.policies.evaluator;
        let serving = Arc::clone(&current);
        let loaded = tokio::task::spawn_blocking(move || {
            PolicySet::load_with(&load_dir, evaluator).map(|set| {
                let failing = first_failing(&set, serving.set.as_ref(), &live);
                (set, failing)
            })
        })
        .await;
        let (dropped, untuned) = match (&loaded, current.set.as_ref()) {
            (Ok(Ok((set, _))), Some(serving)) => {
                (set.drops_rules_of(serving), set.drops_tuning_of(serving))
            }
            _ => (Vec::new(), false),
        };
        let problem = match loaded {
            Ok(Ok((_, Some(failing)))) => format!(
                "it fails to decide a finding in service that the serving version decides, \
                 which in its place would lose its rating: {failing}; kept the serving version"
            ),
            Ok(Ok(_)) if untuned => format!(
                "it has no {}, which the serving version is tuned by: in its place every tuned \
                 severity, suppression and fix setting would be dropped at once; kept the serving \
                 version (to run without it on purpose, restart with the folder as it is)",
                org_mesh_policy::TUNING_FILE_NAME
            ),
            Ok(Ok(_)) if !dropped.is_empty() => format!(
                "it declares no {}, which the serving version decides with: in its place every \
                 finding would lose that decision, or every new fix be denied; kept the serving \
                 version (to run without them on purpose, restart with the folder as it is)",
                dropped.join(", ")
            ),
            Ok(Ok((set, None))) => {
                // The folder may have changed again while it was read; the
                // version then names what was read last, and the watcher
                // brings the newer content in a moment.
                let version = folder_version(&dir);
                let next = Arc::new(Policies {
                    set: Some(set),
                    version: version.clone(),
                });
                // With nothing serving there is nothing to compare against.
                match (self.config.policies.shadow, current.set.is_some()) {
                    (Some(shadow), true) => {
                        self.set_shadow(Some(Arc::new(Shadow {
                            policies: next,
                            started: Instant::now(),
                            window: Duration::from_secs(shadow.window_secs),
                            max_diffs: shadow.max_diffs,
                            max_errors: shadow.max_errors,
                            tally: Mutex::new(Tally::default()),
                        })));
                        report.outcome = Outcome::Shadowing;
                        report.candidate = Some(version);
                    }
                    _ => {
                        self.serve_policies(next);
                        report.outcome = Outcome::Applied;
                        report.serving = Some(version);
                    }
                }
                return report;
            }
            Ok(Err(e)) => format!("{:#}", anyhow::Error::from(e)),
            Err(e) => format!("the policy load stopped: {e}"),
        };
        report.outcome = Outcome::Rejected;
        report.problem = Some(problem);
        report
    }

    /// Loads the plugin folders again and serves each configured instance's
    /// new version that passes its checks.
    pub async fn reload_plugins(&self) -> Vec<ReloadReport> {
        let mut plugins = BTreeMap::new();
        let mut unused = Vec::new();
        let mut failures = Vec::new();
        let wanted = self.config.plugin_names();
        for dir in &self.config.plugins.dirs {
            match Registry::load_dir_where(&self.runtime, dir, |name| wanted.contains(name)).await {
                Ok(loaded) => {
                    plugins.extend(loaded.plugins);
                    unused.extend(loaded.unused);
                    failures.extend(loaded.failed.iter().map(ToString::to_string));
                }
                Err(e) => failures.push(format!("{}: {e}", dir.display())),
            }
        }
        // A plugin that failed to load is also "not loaded" to the instance
        // naming it; the cause goes first, so a report starts with it.
        let mut unbound = Vec::new();
        let candidates = bind_all(&self.config, &plugins, &unused, &mut unbound);
        let mut problems = failures;
        problems.extend(unbound);

        let current = self.instances();
        let mut next = Instances::default();
        let mut reports = Vec::new();
        let mut changed = false;

        for (plugin, attachments, pulled) in &candidates.connectors {
            let old = current
                .connectors
                .iter()
                .find(|(p, _, _)| p.instance() == plugin.instance());
            let (chosen, report) = self
                .choose(
                    old.map(|(p, _, _)| p),
                    Some(plugin),
                    plugin.instance(),
                    &problems,
                )
                .await;
            let applied = report.outcome == Outcome::Applied;
            changed |= applied;
            reports.push(report);
            if let Some(chosen) = chosen {
                let (attachments, pulled) = match (applied, old) {
                    (false, Some((_, a, p))) => (a.clone(), *p),
                    _ => (attachments.clone(), *pulled),
                };
                next.connectors.push((chosen, attachments, pulled));
            }
        }
        for (olds, news, into) in [
            (
                &current.detectors,
                &candidates.detectors,
                &mut next.detectors,
            ),
            (
                &current.executors,
                &candidates.executors,
                &mut next.executors,
            ),
        ] {
            for plugin in news {
                let old = olds.iter().find(|p| p.instance() == plugin.instance());
                let (chosen, report) = self
                    .choose(old, Some(plugin), plugin.instance(), &problems)
                    .await;
                changed |= report.outcome == Outcome::Applied;
                reports.push(report);
                into.extend(chosen);
            }
        }
        // Instances in service whose new version did not even bind keep
        // their old version.
        let placed: Vec<String> = reports.iter().map(|r| r.target.clone()).collect();
        for (plugin, attachments, pulled) in &current.connectors {
            if !placed.iter().any(|p| p == plugin.instance()) {
                let (_, report) = self
                    .choose(Some(plugin), None, plugin.instance(), &problems)
                    .await;
                reports.push(report);
                next.connectors
                    .push((plugin.clone(), attachments.clone(), *pulled));
            }
        }
        for (olds, into) in [
            (&current.detectors, &mut next.detectors),
            (&current.executors, &mut next.executors),
        ] {
            for plugin in olds {
                if !placed.iter().any(|p| p == plugin.instance()) {
                    let (_, report) = self
                        .choose(Some(plugin), None, plugin.instance(), &problems)
                        .await;
                    reports.push(report);
                    into.push(plugin.clone());
                }
            }
        }
        if changed {
            let next = Arc::new(next);
            match self.instances.write() {
                Ok(mut g) => *g = next,
                Err(poisoned) => *poisoned.into_inner() = next,
            }
        }
        reports
    }

    /// Decides which version of one instance serves: the candidate when it
    /// differs and passes its smoke check, else the old one.
    async fn choose(
        &self,
        old: Option<&Plugin>,
        candidate: Option<&Plugin>,
        instance: &str,
        problems: &[String],
    ) -> (Option<Plugin>, ReloadReport) {
        let mut report = ReloadReport::new("plugin", instance.to_string(), Outcome::Unchanged);
        report.serving = old.map(plugin_version);
        let Some(candidate) = candidate else {
            report.outcome = Outcome::Rejected;
            // Binding problems start with their instance (`connector okta:
            // ...`); a name merely mentioned, as in another instance's list
            // of loaded plugins, is not this instance's problem.
            let about_instance = |p: &str| {
                p.split_once(':')
                    .is_some_and(|(head, _)| head.split(' ').nth(1) == Some(instance))
            };
            let related: Vec<&str> = problems
                .iter()
                .filter(|p| about_instance(p) || old.is_some_and(|o| p.contains(o.name())))
                .map(String::as_str)
                .collect();
            report.problem = Some(if related.is_empty() {
                format!("the plugin of {instance} no longer loads from the plugin folders")
            } else {
                related.join("; ")
            });
            return (old.cloned(), report);
        };
        report.candidate = Some(plugin_version(candidate));
        if let Some(old) = old
            && old.digest() == candidate.digest()
            && old.name() == candidate.name()
        {
            return (Some(old.clone()), report);
        }
        match smoke(candidate).await {
            Ok(()) => {
                report.outcome = Outcome::Applied;
                report.serving = report.candidate.clone();
                (Some(candidate.clone()), report)
            }
            Err(problem) => {
                report.outcome = Outcome::Rejected;
                report.problem = Some(problem);
                (old.cloned(), report)
            }
        }
    }

    /// Runs the check a reload runs on each detector in service, and takes
    /// out of service each that fails it, naming it in `skipped`. For a
    /// service starting: a reload refuses such a version and keeps the one
    /// serving, but at start there is no other, and a build a reload
    /// refused a minute earlier would otherwise serve after a restart. Out
    /// of service, the instance is reported as not loaded (the status, the
    /// metric and its alert) until a reload brings a version that passes.
    pub async fn take_out_failing_detectors(&mut self) {
        let current = self.instances();
        let mut passing = Vec::new();
        for detector in &current.detectors {
            match smoke(detector).await {
                Ok(()) => passing.push(detector.clone()),
                Err(problem) => self.skipped.push(format!(
                    "detector {} ({} {}): {problem}",
                    detector.instance(),
                    detector.name(),
                    plugin_version(detector)
                )),
            }
        }
        if passing.len() < current.detectors.len() {
            let next = Arc::new(Instances {
                detectors: passing,
                ..(*current).clone()
            });
            match self.instances.write() {
                Ok(mut g) => *g = next,
                Err(poisoned) => *poisoned.into_inner() = next,
            }
        }
    }
}

/// The first of `live` that `candidate` fails to decide while `serving`
/// decides it, named with the error. It stops there: a rule that runs into
/// the time limit would otherwise hold the reload for the limit once per
/// finding.
fn first_failing(
    candidate: &PolicySet,
    serving: Option<&PolicySet>,
    live: &[DecisionInput],
) -> Option<String> {
    live.iter().find_map(|input| {
        let error = candidate.decide(input).err()?;
        let serving_decides = serving.is_none_or(|s| s.decide(input).is_ok());
        serving_decides.then(|| format!("{} on {}: {error}", input.rule, input.subject))
    })
}

/// The check a new version of a plugin passes before it serves, beyond
/// loading and describing itself: a detector must run over an empty twin.
/// Connectors and executors reach outside systems in every other call, so
/// for them loading, describing and binding is the check.
async fn smoke(plugin: &Plugin) -> Result<(), String> {
    match plugin.kind() {
        Kind::Detector => plugin
            .detect(true, &ChangeSet::default())
            .await
            .map(drop)
            .map_err(|e| format!("its smoke check (detect over an empty twin) failed: {e}")),
        Kind::Connector | Kind::Executor => Ok(()),
    }
}
