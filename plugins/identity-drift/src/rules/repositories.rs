//! Rules about a repository's default-branch protection, read from the
//! `default_branch_protected` and `protection_*` properties the GitHub
//! connector writes.

use org_mesh_plugin::detector::{Finding, Remedy};
use org_mesh_plugin::props::Props;
use org_mesh_plugin::types::{StoredNode, Value};

use super::{ACTION_RESTORE_PROTECTION, BELOW_BASELINE, DEFAULT_BRANCH_UNPROTECTED, name_of};
use crate::config::{Baseline, Demand, Stronger};
use crate::finding::{Draft, evidence};
use crate::graph::{self, boolean, integer, observed, text};

pub fn evaluate(repo: &StoredNode, baseline: &Baseline) -> Vec<Finding> {
    let props = &repo.node.properties;
    if !observed(&repo.provenance) || boolean(props, "archived") == Some(true) {
        return Vec::new();
    }
    match boolean(props, "default_branch_protected") {
        Some(false) => vec![unprotected(repo, baseline)],
        Some(true) => below_baseline(repo, baseline).into_iter().collect(),
        None => Vec::new(),
    }
}

fn branch(repo: &StoredNode) -> &str {
    text(&repo.node.properties, "default_branch").unwrap_or_default()
}

fn full_name(repo: &StoredNode) -> String {
    text(&repo.node.properties, "full_name")
        .map(str::to_string)
        .unwrap_or_else(|| name_of(repo))
}

/// Restores protection to the baseline. Only GitHub repositories have an
/// executor; for others the finding stands without a remedy.
fn remedy(repo: &StoredNode, baseline: &Baseline) -> Option<Remedy> {
    if graph::provider(repo) != "github" || branch(repo).is_empty() {
        return None;
    }
    let mut parameters = Props::new()
        .text("repository", full_name(repo))
        .text("branch", branch(repo));
    for (name, demand) in baseline.fields() {
        parameters = match demand {
            Demand::Flag(v, _) => parameters.boolean(name, v),
            Demand::AtLeast(n) => parameters.integer(name, n),
        };
    }
    Some(Remedy {
        action: ACTION_RESTORE_PROTECTION.into(),
        target: graph::reference(repo),
        parameters: parameters.build(),
    })
}

fn unprotected(repo: &StoredNode, baseline: &Baseline) -> Finding {
    let (name, branch) = (full_name(repo), branch(repo));
    let subject = graph::reference(repo);
    let mut draft = Draft::new(
        DEFAULT_BRANCH_UNPROTECTED,
        subject.clone(),
        branch,
        format!("Default branch {branch} of {name} is not protected"),
    );
    draft.attributes = Props::new()
        .text("repository", &name)
        .text("branch", branch)
        .build();
    draft.evidence.push(evidence(
        format!("{name} reports no protection on its default branch {branch}"),
        subject,
        &repo.provenance,
    ));
    draft.remedy = remedy(repo, baseline);
    draft.build()
}

/// How one protection setting falls short of the baseline.
struct Shortfall {
    field: &'static str,
    actual: Value,
    wanted: String,
}

fn shortfalls(repo: &StoredNode, baseline: &Baseline) -> Vec<Shortfall> {
    let props = &repo.node.properties;
    let mut out = Vec::new();
    for (field, demand) in baseline.fields() {
        let property = format!("protection_{field}");
        // An absent setting is unknown, and unknown is not a violation.
        match demand {
            Demand::AtLeast(wanted) => {
                if let Some(actual) = integer(props, &property).filter(|a| *a < wanted) {
                    out.push(Shortfall {
                        field,
                        actual: Value::Integer(actual),
                        wanted: format!("at least {wanted}"),
                    });
                }
            }
            Demand::Flag(wanted, stronger) => {
                let Some(actual) = boolean(props, &property) else {
                    continue;
                };
                let weaker = match stronger {
                    Stronger::True => wanted && !actual,
                    Stronger::False => !wanted && actual,
                };
                if weaker {
                    out.push(Shortfall {
                        field,
                        actual: Value::Boolean(actual),
                        wanted: wanted.to_string(),
                    });
                }
            }
        }
    }
    out
}

fn below_baseline(repo: &StoredNode, baseline: &Baseline) -> Option<Finding> {
    let weaker = shortfalls(repo, baseline);
    if weaker.is_empty() {
        return None;
    }
    let (name, branch) = (full_name(repo), branch(repo));
    let subject = graph::reference(repo);
    let fields: Vec<String> = weaker.iter().map(|s| s.field.to_string()).collect();
    let mut draft = Draft::new(
        BELOW_BASELINE,
        subject.clone(),
        branch,
        format!(
            "Protection of {name}'s default branch {branch} is weaker than the baseline: {}",
            fields.join(", ")
        ),
    );
    let mut attributes = Props::new()
        .text("repository", &name)
        .text("branch", branch)
        .texts("weaker_fields", fields);
    for s in &weaker {
        attributes = attributes.value(s.field, s.actual.clone());
        let actual = match &s.actual {
            Value::Boolean(b) => b.to_string(),
            Value::Integer(i) => i.to_string(),
            other => format!("{other:?}"),
        };
        draft.evidence.push(evidence(
            format!(
                "{name}: {} is {actual} on {branch}, the baseline wants {}",
                s.field, s.wanted
            ),
            subject.clone(),
            &repo.provenance,
        ));
    }
    draft.attributes = attributes.build();
    draft.remedy = remedy(repo, baseline);
    Some(draft.build())
}
