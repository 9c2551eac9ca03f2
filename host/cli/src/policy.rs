//! `org-mesh policy test` and `org-mesh policy eval`: a policy folder on
//! its own, as an author works on it before the service loads it.

use std::path::Path;
use std::process::ExitCode;

use org_mesh_app::pipeline::folder_version;
use org_mesh_policy::{DecisionInput, Evaluator, PolicyError, PolicySet};

use crate::fail;

/// Loading a policy folder runs its tests; a load that fails only on them
/// lists each failure and exits 1, anything else exits 2.
pub fn test(dir: &Path) -> ExitCode {
    match PolicySet::load(dir) {
        Ok(set) => {
            let mut out = String::new();
            for name in set.tests() {
                out.push_str(&format!("ok    {name}\n"));
            }
            out.push_str(&format!(
                "PASS: {}/{} (policy version {})\n",
                set.tests().len(),
                set.tests().len(),
                folder_version(dir)
            ));
            // Not failures: a folder may mean to leave them out. But a
            // running serve refuses such a folder in place of one that
            // has them, and the author should hear it here first.
            let undeclared = set.undeclared_decision_rules();
            if !undeclared.is_empty() {
                out.push_str(&format!(
                    "note: it declares no {}: findings go without that decision, or no fix \
                     runs; serve refuses it as a reload of a folder that declares them\n",
                    undeclared.join(", ")
                ));
            }
            if set.tuning().is_none() {
                out.push_str(&format!(
                    "note: it has no {}: detector severities stand and nothing is suppressed\n",
                    org_mesh_policy::TUNING_FILE_NAME
                ));
            }
            crate::emit(&out);
            ExitCode::SUCCESS
        }
        Err(PolicyError::TestsFailed { failures }) => {
            let mut out = String::new();
            for f in &failures {
                out.push_str(&format!(
                    "FAIL  {} ({}): {}\n",
                    f.rule,
                    f.file.display(),
                    f.outcome
                ));
            }
            out.push_str(&format!("FAIL: {} test(s) failed\n", failures.len()));
            crate::emit(&out);
            ExitCode::from(1)
        }
        Err(e) => fail(&format!(
            "policy folder {}: {:#}",
            dir.display(),
            anyhow::Error::from(e)
        )),
    }
}

pub fn eval(input: &Path, dir: &Path, evaluator: Evaluator) -> ExitCode {
    let text = match std::fs::read_to_string(input) {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot read {}: {e}", input.display())),
    };
    let mut document: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return fail(&format!("{} is not JSON: {e}", input.display())),
    };
    if let Some(object) = document.as_object_mut()
        && !object.contains_key("now")
    {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        object.insert("now".into(), serde_json::Value::from(now));
    }
    let decision_input: DecisionInput = match serde_json::from_value(document.clone()) {
        Ok(i) => i,
        Err(e) => {
            return fail(&format!("{} is not a decision input: {e}", input.display()));
        }
    };
    let version = folder_version(dir);
    let set = match PolicySet::load_with(dir, evaluator) {
        Ok(s) => s,
        Err(e) => {
            return fail(&format!(
                "policy folder {}: {:#}",
                dir.display(),
                anyhow::Error::from(e)
            ));
        }
    };
    let decision = match set.decide(&decision_input) {
        Ok(d) => d,
        Err(e) => return fail(&format!("deciding on {}: {e}", input.display())),
    };
    let printed = serde_json::json!({
        "policy_version": version,
        "evaluator": set.evaluator(),
        "decision": {
            "severity": decision.severity,
            "suppressed": decision.suppressed,
            "suppress_reason": decision.suppress_reason,
            "auto_fix": decision.auto_fix,
            "undefined": decision.undefined_fields(),
            "may_act": decision.may_act(),
        },
        "input": document,
    });
    match serde_json::to_string_pretty(&printed) {
        Ok(text) => {
            crate::emit(format!("{text}\n"));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("cannot print the decision: {e}")),
    }
}
