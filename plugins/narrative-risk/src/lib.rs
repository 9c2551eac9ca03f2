//! The narrative-risk detector plugin: finds coordinated or
//! social-engineering pressure in the organisation's own text (issues,
//! pull requests, comments, reviews, commit messages) and joins it with the
//! permission graph.
//!
//! Messages from accounts without standing in the organisation that carry
//! pressure cues, privilege asks or near-copies of each other are grouped
//! by target and time into campaigns. Each campaign is scored from its
//! signals (near-duplicates, fresh accounts, a creation cohort, a burst
//! against the repository's baseline, pressure, privilege asks, convergence
//! across threads, and write access granted on the target soon after) and
//! reported when its risk score reaches the configured threshold.
//!
//! The detector reads only the request's change set, which the host fills
//! with the whole twin on every evaluation. It never sees, logs or repeats
//! message text in findings: evidence names messages by kind and thread.

mod campaign;
mod config;
mod signal;
mod text;
mod twin;

use org_mesh_plugin::detector::{DetectRequest, Evidence, Finding, Guest, Remedy};
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{Description, NodeRef, PluginError, RuleInfo};

pub use campaign::Campaign;
pub use config::{Config, Settings};
pub use signal::{Ask, Cue, Named, Phrased, Signal};
pub use twin::Twin;

pub const NAME: &str = "narrative-risk";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub const CAMPAIGN_RULE: &str = "narrative-campaign";
pub const STORM_RULE: &str = "narrative-storm";

/// The executor action a campaign's finding suggests.
pub const RESPONSE_ACTION: &str = "github.campaign-response";

pub fn description() -> Description {
    Description {
        name: NAME.into(),
        version: VERSION.into(),
        summary: "Finds coordinated or social-engineering pressure campaigns in issues, pull \
                  requests, comments and commits, and access granted after them"
            .into(),
        rules: vec![
            RuleInfo {
                id: CAMPAIGN_RULE.into(),
                title: "Coordinated pressure on maintainers".into(),
                default_severity: "high".into(),
            },
            RuleInfo {
                id: STORM_RULE.into(),
                title: "More campaigns than are reported one by one".into(),
                default_severity: "high".into(),
            },
        ],
        actions: Vec::new(),
    }
}

/// Finds the campaigns in the request's change set and reports those at or
/// above the risk threshold, strongest first.
pub fn detect(req: &DetectRequest) -> Result<Vec<Finding>, PluginError> {
    let settings = Settings::parse(&req.config)?;
    let twin = Twin::from_request(req);
    let found = campaign::find(&twin, &settings);
    let mut reported: Vec<&Campaign> = found
        .iter()
        .filter(|c| c.risk >= settings.config.risk_score)
        .collect();
    let dropped = reported.split_off(reported.len().min(settings.config.max_campaigns));
    let mut findings: Vec<Finding> = reported
        .iter()
        .filter_map(|c| campaign_finding(&twin, c))
        .collect();
    if let Some(storm) = storm_finding(&twin, &dropped) {
        findings.push(storm);
    }
    Ok(findings)
}

/// Every campaign with its score, reported or not: what the evaluation
/// corpus measures precision and recall on.
pub fn campaigns(req: &DetectRequest) -> Result<(Twin, Vec<Campaign>), PluginError> {
    let settings = Settings::parse(&req.config)?;
    let twin = Twin::from_request(req);
    let found = campaign::find(&twin, &settings);
    Ok((twin, found))
}

fn logins(twin: &Twin, keys: &std::collections::BTreeSet<String>) -> Vec<String> {
    keys.iter().map(|k| twin.login(k).to_string()).collect()
}

fn campaign_finding(twin: &Twin, c: &Campaign) -> Option<Finding> {
    let first = *c.messages.first()?;
    let anchor = &twin.messages[first];
    let repository = c.main_repository(twin);
    let subject = match &repository {
        Some(key) => twin
            .repositories
            .get(key)
            .map(|r| r.reference.clone())
            .unwrap_or(NodeRef {
                label: "Repository".into(),
                key: key.clone(),
            }),
        None => anchor.reference.clone(),
    };
    let target = repository
        .as_deref()
        .map(|r| twin.repository_name(r).to_string())
        .unwrap_or_else(|| anchor.thread.clone());
    let signals: Vec<String> = c.signals().map(|s| s.as_str().to_string()).collect();
    let participants = logins(twin, &c.participants);
    let beneficiaries = logins(twin, &c.beneficiaries);
    let days = ((c.last - c.first) as f64 / twin::DAY).ceil();
    let mut title = format!(
        "{} low-footprint account{} pressed {target} in {} message{} over {days:.0} days",
        participants.len(),
        if participants.len() == 1 { "" } else { "s" },
        c.messages.len(),
        if c.messages.len() == 1 { "" } else { "s" },
    );
    if !beneficiaries.is_empty() {
        title.push_str(&format!(
            "; {} then gained write access",
            beneficiaries.join(", ")
        ));
    }
    let mut attributes = Props::new()
        .value(
            "risk_score",
            org_mesh_plugin::types::Value::Float(round(c.risk)),
        )
        .texts("signals", signals.clone())
        .texts("participants", participants.clone())
        .texts("pressed", logins(twin, &c.pressed))
        .texts("beneficiaries", beneficiaries.clone())
        .texts("repositories", c.repositories.iter().cloned().collect())
        .integer("messages", c.messages.len() as i64)
        .integer("threads", c.threads.len() as i64)
        .timestamp("first_message_at", twin::rfc3339(c.first))
        .timestamp("last_message_at", twin::rfc3339(c.last))
        .boolean("privilege_granted", !c.beneficiaries.is_empty());
    for (signal, score) in &c.scores {
        attributes = attributes.value(
            &format!("score_{}", signal.as_str().replace('-', "_")),
            org_mesh_plugin::types::Value::Float(round(*score)),
        );
    }
    let remedy = repository
        .as_deref()
        .and_then(|key| response(twin, c, key, &participants, &beneficiaries, &signals));
    Some(Finding {
        rule: CAMPAIGN_RULE.into(),
        subject,
        // The first message anchors the campaign: later messages and a
        // later grant grow the same finding instead of making a new one.
        key: anchor.reference.key.clone(),
        title,
        score: c.risk.clamp(0.0, 1.0),
        attributes: attributes.build(),
        evidence: c.evidence.clone(),
        remedy,
    })
}

/// The campaign response for a GitHub repository: an issue for its
/// maintainers that says what was seen without repeating what was written
/// (participants in code spans, so the issue does not notify them), and
/// stricter reviews on the default branch when the twin knows it.
fn response(
    twin: &Twin,
    c: &Campaign,
    repository: &str,
    participants: &[String],
    beneficiaries: &[String],
    signals: &[String],
) -> Option<Remedy> {
    let name = repository.strip_prefix("github:")?;
    let quoted = |logins: &[String]| {
        logins
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut body = format!(
        "org-mesh found a pattern of coordinated pressure on the maintainers of {name} \
         (risk score {:.2}).\n\n\
         - Accounts: {}\n\
         - Between {} and {}, {} messages in {} threads\n\
         - Signals: {}\n",
        c.risk,
        quoted(participants),
        twin::date(c.first),
        twin::date(c.last),
        c.messages.len(),
        c.threads.len(),
        signals.join(", "),
    );
    if !beneficiaries.is_empty() {
        body.push_str(&format!(
            "- Write access granted afterwards to: {}\n",
            quoted(beneficiaries)
        ));
    }
    let links: Vec<&str> = c
        .messages
        .iter()
        .filter_map(|i| twin.messages[*i].url.as_deref())
        .take(10)
        .collect();
    if !links.is_empty() {
        body.push_str("\nMessages:\n");
        for link in links {
            body.push_str(&format!("- {link}\n"));
        }
    }
    body.push_str(
        "\nPlease do not grant access or cut releases on the strength of these requests; \
         changes to the default branch now need review from code owners.",
    );
    let mut parameters = Props::new()
        .text("repository", name)
        .text(
            "title",
            format!("Coordinated pressure on the maintainers of {name}"),
        )
        .text("body", body);
    if let Some(branch) = twin
        .repositories
        .get(repository)
        .and_then(|r| r.default_branch.clone())
    {
        parameters = parameters.text("branch", branch);
    }
    Some(Remedy {
        action: RESPONSE_ACTION.into(),
        target: twin
            .repositories
            .get(repository)
            .map(|r| r.reference.clone())
            .unwrap_or(NodeRef {
                label: "Repository".into(),
                key: repository.to_string(),
            }),
        parameters: parameters.build(),
    })
}

/// One finding for the campaigns beyond the per-evaluation limit, about the
/// repository most of them target.
fn storm_finding(twin: &Twin, dropped: &[&Campaign]) -> Option<Finding> {
    let mut by_repo: std::collections::BTreeMap<String, usize> = Default::default();
    for c in dropped {
        if let Some(r) = c.main_repository(twin) {
            *by_repo.entry(r).or_default() += 1;
        }
    }
    let (repo, _) = by_repo
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
    let (subject, provenance) = twin
        .repositories
        .get(repo)
        .map(|r| (r.reference.clone(), r.provenance.clone()))
        .unwrap_or_else(|| {
            (
                NodeRef {
                    label: "Repository".into(),
                    key: repo.clone(),
                },
                dropped
                    .iter()
                    .find_map(|c| campaign::first_provenance(twin, c))
                    .unwrap_or_else(|| twin.messages[0].provenance.clone()),
            )
        });
    let mut signals: Vec<String> = dropped
        .iter()
        .flat_map(|c| c.signals().map(|s| s.as_str().to_string()))
        .collect();
    signals.sort();
    signals.dedup();
    let top = dropped.iter().map(|c| c.risk).fold(0.0, f64::max);
    Some(Finding {
        rule: STORM_RULE.into(),
        subject: subject.clone(),
        key: String::new(),
        title: format!(
            "{} more campaigns reached the threshold than are reported one by one; {} of them target {}",
            dropped.len(),
            by_repo[repo],
            twin.repository_name(repo)
        ),
        score: top,
        attributes: Props::new()
            .integer("campaigns", dropped.len() as i64)
            .value(
                "risk_score",
                org_mesh_plugin::types::Value::Float(round(top)),
            )
            .texts("signals", signals)
            .texts("repositories", by_repo.keys().cloned().collect())
            .build(),
        evidence: vec![Evidence {
            statement: format!(
                "{} campaigns over the per-evaluation limit; raise max_campaigns or review them in the twin",
                dropped.len()
            ),
            subject,
            provenance,
        }],
        remedy: None,
    })
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg_attr(
    not(target_arch = "wasm32"),
    expect(dead_code, reason = "only the wasm build exports the plugin")
)]
struct NarrativeRisk;

impl Guest for NarrativeRisk {
    fn describe() -> Description {
        description()
    }

    fn detect(req: DetectRequest) -> Result<Vec<Finding>, PluginError> {
        let findings = detect(&req)?;
        // Counts only: message text never reaches the log.
        org_mesh_plugin::log::emit(
            org_mesh_plugin::log::Level::Debug,
            "Evaluated narrative signals",
            &[
                ("nodes".into(), req.nodes.len().to_string()),
                ("edges".into(), req.edges.len().to_string()),
                ("findings".into(), findings.len().to_string()),
            ],
        );
        Ok(findings)
    }
}

#[cfg(target_arch = "wasm32")]
org_mesh_plugin::export_detector!(NarrativeRisk);
