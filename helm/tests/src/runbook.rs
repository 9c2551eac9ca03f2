//! Reads a Markdown runbook for the things it names and checks each
//! against [`Facts`], what org-mesh really has. Conventions the runbook
//! follows so that the check can tell what is meant:
//!
//! - a metric is any `org_mesh_*` word, in prose or code;
//! - an `ORG_MESH_*` word is a variable (`ORG_MESH_GRAPH__*` a family);
//! - an org-mesh command is `org-mesh` at the start of a code span, a code
//!   line, or after `$ `, `-- `, `&&`, `|` or `;`: its subcommands must
//!   exist and its flags belong to them;
//! - a code span that is a dotted key (`serve.sync_interval_secs`,
//!   `neo4j.password=...`, `graph.backend: neo4j`) whose first part is a
//!   top-level key of org-mesh.yaml, the tuning file or the chart's values
//!   must resolve in one of them;
//! - `--set KEY=` and `--set-file KEY=` name chart values;
//! - every key of a ```yaml block must resolve in one of those files;
//! - a route (`/api/v1/...`, `/scim/v2/...`, `/webhooks/...`, `/healthz`,
//!   `/readyz`, `/metrics`) must be served;
//! - an `OrgMesh...` word is an alert of the chart's PrometheusRule.

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::Value;

use crate::facts::{Cli, Metrics, route_matches};
use crate::keys::Shape;

/// Everything the check compares the runbook with.
#[derive(Debug, Clone)]
pub struct Facts {
    pub metrics: Metrics,
    pub cli: Cli,
    pub env_vars: BTreeSet<String>,
    pub routes: BTreeSet<String>,
    pub alerts: BTreeSet<String>,
    /// org-mesh.yaml, the tuning file and the chart's values, by name.
    pub files: Vec<(&'static str, Shape)>,
}

/// A line of the runbook and whether it is inside a fenced code block.
#[derive(Debug)]
struct Line<'a> {
    number: usize,
    text: &'a str,
    /// The info string of the fenced block the line is in.
    fence: Option<&'a str>,
    /// Counts fenced blocks, so that two blocks in a row stay apart.
    block: usize,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    let mut block = 0;
    for (i, text) in text.lines().enumerate() {
        let trimmed = text.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => {
                    block += 1;
                    Some(info.trim())
                }
            };
            continue;
        }
        out.push(Line {
            number: i + 1,
            text,
            fence,
            block,
        });
    }
    out
}

/// The code spans of one line of prose.
fn spans(text: &str) -> Vec<&str> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect()
}

/// GitHub's anchor for a heading.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of every heading outside code blocks.
pub fn anchors(text: &str) -> BTreeSet<String> {
    lines(text)
        .iter()
        .filter(|l| l.fence.is_none())
        .filter_map(|l| l.text.strip_prefix('#'))
        .map(|h| anchor(h.trim_start_matches('#')))
        .collect()
}

fn regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("bad pattern {pattern}: {e}"))
}

/// Every problem with what the runbook names, each with its line.
pub fn check(text: &str, facts: &Facts) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let all = lines(text);
    let metric = regex(r"\borg_mesh_[a-z0-9_]*[a-z0-9]")?;
    let variable = regex(r"\bORG_MESH_[A-Z0-9_]*[A-Z0-9](__?\*)?")?;
    let alert = regex(r"\bOrgMesh[A-Z][A-Za-z]+\b")?;
    let route = regex(
        r"(/api/v1(?:/[A-Za-z0-9_.{}<>:-]*)*|/scim/v2(?:/[A-Za-z0-9_.{}<>:-]*)*|/webhooks(?:/[A-Za-z0-9_.{}<>:-]*)*|/healthz\b|/readyz\b|/metrics\b)",
    )?;
    let set_flag = regex(r"--set(?:-string|-file|-json)?[ =]([A-Za-z0-9_.\\-]+)=")?;
    let key_span = regex(r"^([a-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_<>*-]+)*)(?:=.*|: .*)?$")?;

    for line in &all {
        let at = line.number;
        for m in metric.find_iter(line.text) {
            if !facts.metrics.exists(m.as_str()) {
                problems.push(format!(
                    "line {at}: metric {} is not registered by org-mesh",
                    m.as_str()
                ));
            }
        }
        for m in variable.find_iter(line.text) {
            let name = m.as_str();
            let known = match name.strip_suffix('*') {
                Some(prefix) => facts.env_vars.iter().any(|v| v.starts_with(prefix)),
                None => facts.env_vars.contains(name),
            };
            if !known {
                problems.push(format!(
                    "line {at}: variable {name} is not read by org-mesh"
                ));
            }
        }
        for m in alert.find_iter(line.text) {
            if !facts.alerts.contains(m.as_str()) {
                problems.push(format!(
                    "line {at}: alert {} is not in the chart's PrometheusRule",
                    m.as_str()
                ));
            }
        }
        for m in route.find_iter(line.text) {
            let path = m.as_str().trim_end_matches(['.', ':']);
            // A bare prefix (`/api/v1`, `/webhooks`) names a family of routes.
            let family = [
                "/api/v1",
                "/api/v1/",
                "/scim/v2",
                "/scim/v2/",
                "/webhooks",
                "/webhooks/",
            ];
            if !family.contains(&path) && !route_matches(&facts.routes, path) {
                problems.push(format!("line {at}: route {path} is not served by org-mesh"));
            }
        }
        for m in set_flag.captures_iter(line.text) {
            let key = m[1].replace("\\.", "\u{0}");
            let path: Vec<String> = key.split('.').map(|p| p.replace('\u{0}', ".")).collect();
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            if !resolves_in(facts, "chart values", &path) {
                problems.push(format!("line {at}: --set {} is not a chart value", &m[1]));
            }
        }

        let code: Vec<&str> = match line.fence {
            Some(_) => vec![line.text],
            None => spans(line.text),
        };
        for piece in &code {
            problems.extend(
                commands(piece, &facts.cli)
                    .into_iter()
                    .map(|p| format!("line {at}: {p}")),
            );
        }
        if line.fence.is_none() {
            for span in spans(line.text) {
                let Some(found) = key_span.captures(span.trim()) else {
                    continue;
                };
                let path: Vec<&str> = found[1].split('.').collect();
                let rooted = facts
                    .files
                    .iter()
                    .any(|(_, shape)| shape.roots().iter().any(|r| r == path[0]));
                if rooted && !facts.files.iter().any(|(_, s)| s.resolves(&path)) {
                    problems.push(format!(
                        "line {at}: {} is not a key of org-mesh.yaml, the tuning file or the chart's values",
                        &found[1]
                    ));
                }
            }
        }
    }
    problems.extend(yaml_blocks(&all, facts));
    Ok(problems)
}

fn resolves_in(facts: &Facts, file: &str, path: &[&str]) -> bool {
    facts
        .files
        .iter()
        .filter(|(name, _)| *name == file)
        .any(|(_, shape)| shape.resolves(path))
}

/// Checks each `org-mesh ...` invocation in a piece of code.
fn commands(code: &str, cli: &Cli) -> Vec<String> {
    let mut problems = Vec::new();
    let mut pieces = vec![code];
    for separator in [" -- ", "&&", "|", ";", "$(", "$ "] {
        pieces = pieces.iter().flat_map(|p| p.split(separator)).collect();
    }
    for piece in pieces {
        let mut words = piece.split_whitespace();
        if words.next() != Some("org-mesh") {
            continue;
        }
        let words: Vec<&str> = words.collect();
        problems.extend(invocation(&words, cli));
    }
    problems
}

fn invocation(words: &[&str], cli: &Cli) -> Vec<String> {
    let mut problems = Vec::new();
    let mut level = &cli.commands;
    let mut path: Vec<&str> = Vec::new();
    let mut flags = cli.global_flags.clone();
    for word in words {
        if word.starts_with('-') {
            let flag = word.split('=').next().unwrap_or(word);
            if !flags.contains(flag) {
                let command = if path.is_empty() {
                    "org-mesh".to_string()
                } else {
                    format!("org-mesh {}", path.join(" "))
                };
                problems.push(format!("{command} has no flag {flag}"));
            }
            continue;
        }
        if level.is_empty() {
            // Positional arguments of a command without subcommands.
            continue;
        }
        if !word.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            break;
        }
        match level.get(*word) {
            Some(command) => {
                path.push(word);
                flags = cli.global_flags.clone();
                flags.extend(command.flags.iter().cloned());
                level = &command.subcommands;
            }
            None => {
                let command = if path.is_empty() {
                    "org-mesh".to_string()
                } else {
                    format!("org-mesh {}", path.join(" "))
                };
                problems.push(format!("{command} has no subcommand {word}"));
                break;
            }
        }
    }
    problems
}

/// Every key path of each ```yaml block must resolve in one of the files.
fn yaml_blocks(all: &[Line<'_>], facts: &Facts) -> Vec<String> {
    let mut blocks: Vec<(usize, usize, Vec<&str>)> = Vec::new();
    for line in all.iter().filter(|l| l.fence == Some("yaml")) {
        match blocks.last_mut() {
            Some((block, _, text)) if *block == line.block => text.push(line.text),
            _ => blocks.push((line.block, line.number, vec![line.text])),
        }
    }
    let mut problems = Vec::new();
    for (_, start, text) in blocks {
        let value = match serde_saphyr::from_str::<Value>(&text.join("\n")) {
            Ok(value) => value,
            Err(e) => {
                problems.push(format!("yaml block at line {start} does not parse: {e}"));
                continue;
            }
        };
        let mut paths = Vec::new();
        key_paths(&value, &mut Vec::new(), &mut paths);
        for path in paths {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            if !facts.files.iter().any(|(_, s)| s.resolves_keys(&path)) {
                problems.push(format!(
                    "yaml block at line {start}: {} is not a key of org-mesh.yaml, the tuning file or the chart's values",
                    path.join(".")
                ));
            }
        }
    }
    problems
}

/// The path of every mapping key, list items transparent.
fn key_paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                prefix.push(key.clone());
                out.push(prefix.clone());
                key_paths(inner, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for item in items {
                key_paths(item, prefix, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github() {
        assert_eq!(anchor("OrgMeshBackendDown"), "orgmeshbackenddown");
        assert_eq!(
            anchor("Hot reload of policies (ConfigMap)"),
            "hot-reload-of-policies-configmap"
        );
    }

    #[test]
    fn code_spans_alternate_with_prose() {
        assert_eq!(spans("a `b` c `d e` f"), ["b", "d e"]);
    }
}
