//! Renders a scan report: readable text grouped by severity, or one JSON
//! object per finding.

use std::fmt::Write as _;

use org_mesh_model::{Severity, properties_to_json};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use org_mesh_app::pipeline::{Reported, ScanReport};

fn ts(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A time for people: to the second.
fn short_ts(t: time::OffsetDateTime) -> String {
    ts(t.replace_nanosecond(0).unwrap_or(t))
}

/// One JSON object per finding, in report order.
pub fn json_lines(report: &ScanReport) -> String {
    let mut out = String::new();
    for r in &report.findings {
        let f = &r.finding;
        let evidence: Vec<_> = f
            .evidence
            .iter()
            .map(|e| {
                json!({
                    "statement": e.statement,
                    "subject": e.subject.to_string(),
                    "source": e.provenance.source,
                    "first_seen": ts(e.provenance.first_seen),
                    "last_seen": ts(e.provenance.last_seen),
                    "not_observed_since": e.provenance.not_observed_since.map(ts),
                })
            })
            .collect();
        let line = json!({
            "rule": f.rule,
            "severity": r.severity,
            "subject": f.subject.to_string(),
            "title": f.title,
            "detector": f.detector,
            "fingerprint": f.fingerprint,
            "score": f.score,
            "attributes": properties_to_json(&f.attributes),
            "evidence": evidence,
            "decision": r.decision,
            "action": r.action,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// The report for people.
pub fn text(report: &ScanReport) -> String {
    let mut out = String::new();
    let active: Vec<&Reported> = report.findings.iter().filter(|r| !r.suppressed()).collect();
    let suppressed: Vec<&Reported> = report.findings.iter().filter(|r| r.suppressed()).collect();

    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|sev| {
            let n = active.iter().filter(|r| r.severity == *sev).count();
            (n > 0).then(|| format!("{n} {sev}"))
        })
        .collect();
    let _ = writeln!(
        out,
        "org-mesh scan: {} finding{}{}",
        active.len(),
        if active.len() == 1 { "" } else { "s" },
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        }
    );
    for c in &report.connectors {
        match &c.error {
            None => {
                let _ = writeln!(
                    out,
                    "  synced {} ({} {}): {} nodes, {} edges; {} added, {} updated, {} no longer observed",
                    c.name,
                    c.plugin,
                    c.version,
                    c.nodes,
                    c.edges,
                    c.added,
                    c.updated,
                    c.not_observed
                );
            }
            Some(e) => {
                let _ = writeln!(out, "  sync of {} failed: {e}", c.name);
            }
        }
    }
    if !report.detectors.is_empty() {
        let _ = writeln!(out, "  detectors: {}", report.detectors.join(", "));
    }

    for sev in Severity::ALL.iter().rev() {
        let group: Vec<&&Reported> = active.iter().filter(|r| r.severity == *sev).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}", sev.as_str().to_uppercase());
        for r in group {
            finding(&mut out, r);
        }
    }

    if !suppressed.is_empty() {
        let _ = writeln!(out, "\nSUPPRESSED");
        for r in suppressed {
            let reason = r
                .decision
                .as_ref()
                .and_then(|d| d.suppress_reason.clone())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  {}  ({reason})",
                r.finding.rule, r.finding.subject
            );
        }
    }

    if !report.skipped.is_empty() {
        let _ = writeln!(out, "\nSKIPPED");
        for s in &report.skipped {
            let _ = writeln!(out, "  - {s}");
        }
    }
    out
}

fn finding(out: &mut String, r: &Reported) {
    let f = &r.finding;
    let _ = writeln!(out, "  {}  {}", f.rule, f.subject);
    let _ = writeln!(out, "    {}", f.title);
    for e in &f.evidence {
        let p = &e.provenance;
        let seen = match p.not_observed_since {
            Some(t) => format!("not observed since {}", short_ts(t)),
            None => format!(
                "seen {} .. {}",
                short_ts(p.first_seen),
                short_ts(p.last_seen)
            ),
        };
        let _ = writeln!(out, "    - {} [{}; {seen}]", e.statement, p.source);
    }
    match &r.decision {
        Some(d) => {
            let mut parts = Vec::new();
            parts.push(match d.severity {
                Some(severity) => format!("rated {severity}"),
                None => format!(
                    "severity undefined by policy, rule default {}",
                    f.default_severity
                ),
            });
            // Only a finding with a fix has anything to run; whether it
            // runs is the approval policy's to say, on the fix's own line.
            if r.action.is_some() {
                parts.push(if d.may_act {
                    "auto-fix allowed".to_string()
                } else {
                    "no auto-fix".to_string()
                });
            }
            if !d.undefined.is_empty() {
                parts.push(format!("undefined: {}", d.undefined.join(", ")));
            }
            let _ = writeln!(out, "    policy: {}", parts.join("; "));
        }
        None => {
            let _ = writeln!(
                out,
                "    policy: undecided (no policy loaded); no fix may run"
            );
        }
    }
    if let Some(a) = &r.action {
        match (&a.plan, &a.unplanned) {
            (Some(plan), _) => {
                let _ = writeln!(
                    out,
                    "    proposed fix (dry run by {}): {}",
                    a.executor, a.kind
                );
                for call in &plan.calls {
                    let _ = writeln!(out, "      {} {}  ({})", call.method, call.url, call.effect);
                }
                let _ = writeln!(out, "      expected: {}", plan.expected);
                if let Some(approval) = &a.approval {
                    let _ = writeln!(out, "      approval: {approval}");
                }
            }
            (None, Some(why)) => {
                let _ = writeln!(out, "    proposed fix {}: not planned: {why}", a.kind);
            }
            (None, None) => {}
        }
    }
    let _ = writeln!(out, "    fingerprint {}", f.fingerprint);
}
