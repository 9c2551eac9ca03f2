//! What org-mesh really has, read from its sources: the Prometheus series
//! it registers, its command line, the `ORG_MESH_*` variables it reads and
//! the HTTP routes it serves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::{read, without_tests};

fn regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("bad pattern {pattern}: {e}"))
}

/// Every `.rs` file under `dir` outside `tests/` and `benches/` folders,
/// sorted so that errors come out in the same order everywhere.
pub fn rust_sources(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| format!("cannot list {}: {e}", folder.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot list {}: {e}", folder.display()))?
                .path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !matches!(name, "tests" | "benches" | "target") {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The Prometheus series org-mesh registers, by name; true for histograms,
/// whose `_bucket`, `_sum` and `_count` series exist too.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub names: BTreeMap<String, bool>,
}

impl Metrics {
    /// Reads every metric a host crate creates. A metric is a string
    /// literal handed to a constructor of the prometheus crate
    /// (`Opts::new("org_mesh_...", ...)`), not any `org_mesh_` string: the
    /// Neo4j store has index names that look alike.
    pub fn read(root: &Path) -> Result<Metrics, String> {
        let definition = regex(
            r#"\b(HistogramOpts|Opts|IntGauge|IntCounter|Gauge|Counter)::new\(\s*"(org_mesh_[a-z0-9_]+)""#,
        )?;
        let mut names = BTreeMap::new();
        for file in rust_sources(&root.join("host"))? {
            let text = read(&file)?;
            for found in definition.captures_iter(without_tests(&text)) {
                let histogram = &found[1] == "HistogramOpts";
                *names.entry(found[2].to_string()).or_insert(false) |= histogram;
            }
        }
        if names.is_empty() {
            return Err("found no metric in host/: the pattern no longer matches how org-mesh registers them".into());
        }
        Ok(Metrics { names })
    }

    /// Whether a series of this name can appear on /metrics.
    pub fn exists(&self, series: &str) -> bool {
        if self.names.contains_key(series) {
            return true;
        }
        ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            series
                .strip_suffix(suffix)
                .is_some_and(|base| self.names.get(base) == Some(&true))
        })
    }
}

/// Every `org_mesh_*` series named in a text (PromQL, Markdown).
pub fn series_in(text: &str) -> Result<BTreeSet<String>, String> {
    let series = regex(r"\borg_mesh_[a-z0-9_]*[a-z0-9]")?;
    Ok(series
        .find_iter(text)
        .map(|m| m.as_str().to_string())
        .collect())
}

/// The reasons a failed plugin call is counted under, as
/// `org_mesh_plugin_failures_total{reason}` shows them.
pub fn failure_reasons(root: &Path) -> Result<BTreeSet<String>, String> {
    let text = read(&root.join("host/runtime/src/error.rs"))?;
    let arm = regex(r#"=> "([a-z_]+)","#)?;
    let reasons: BTreeSet<String> = arm
        .captures_iter(without_tests(&text))
        .map(|c| c[1].to_string())
        .collect();
    if !reasons.contains("quarantined") {
        return Err("host/runtime/src/error.rs names no failure reason \"quarantined\"; the reasons are no longer where this check reads them".into());
    }
    Ok(reasons)
}

/// One command of the `org-mesh` binary.
#[derive(Debug, Default, Clone)]
pub struct Command {
    /// `--long` and `-s` flags.
    pub flags: BTreeSet<String>,
    pub subcommands: BTreeMap<String, Command>,
}

/// The `org-mesh` command line, as clap derives it from host/cli/src.
#[derive(Debug, Default, Clone)]
pub struct Cli {
    pub global_flags: BTreeSet<String>,
    pub commands: BTreeMap<String, Command>,
}

impl Cli {
    /// Reads every source file of the binary, `main.rs` first: subcommand
    /// enums may live in the module that runs them.
    pub fn read(root: &Path) -> Result<Cli, String> {
        let dir = root.join("host/cli/src");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        files.sort_by_key(|p| (!p.ends_with("main.rs"), p.clone()));
        let mut source = String::new();
        for file in files {
            source.push_str(&read(&file)?);
            source.push('\n');
        }
        Cli::parse(&source)
    }

    /// Reads the clap derive definitions: the `Parser` struct's fields are
    /// global flags, each `Subcommand` enum's variants are commands (in
    /// kebab case, as clap names them) and their `#[arg(long|short)]`
    /// fields their flags; a `#[command(subcommand)]` field nests an enum.
    pub fn parse(source: &str) -> Result<Cli, String> {
        let source = strip_line_comments(without_tests(source));
        let enum_start = regex(
            r"#\[derive\([^)]*\bSubcommand\b[^)]*\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub\s+)?enum\s+(\w+)\s*\{",
        )?;
        let mut enums = BTreeMap::new();
        for found in enum_start.captures_iter(&source) {
            let (Some(name), Some(whole)) = (found.get(1), found.get(0)) else {
                continue;
            };
            let body = braced(&source, whole.end() - 1)?;
            enums.insert(name.as_str().to_string(), variants(body)?);
        }
        let parser = regex(
            r"#\[derive\([^)]*\bParser\b[^)]*\)\]\s*(?:#\[(?s:.*?)\]\s*)*(?:pub\s+)?struct\s+\w+\s*\{",
        )?;
        let whole = parser
            .find(&source)
            .ok_or("host/cli/src/main.rs has no #[derive(Parser)] struct")?;
        let top = fields(braced(&source, whole.end() - 1)?)?;
        let mut global_flags = top.flags;
        global_flags.extend(["--help", "-h", "--version", "-V"].map(String::from));
        let root = top
            .nested
            .ok_or("the Parser struct has no #[command(subcommand)] field")?;
        Ok(Cli {
            global_flags,
            commands: build(&root, &enums, 0)?,
        })
    }
}

fn build(
    name: &str,
    enums: &BTreeMap<String, Vec<(String, Fields)>>,
    depth: usize,
) -> Result<BTreeMap<String, Command>, String> {
    if depth > 8 {
        return Err(format!("subcommand enums nest too deep at {name}"));
    }
    let variants = enums
        .get(name)
        .ok_or_else(|| format!("no #[derive(Subcommand)] enum {name} in host/cli/src"))?;
    let mut commands = BTreeMap::new();
    for (variant, fields) in variants {
        let mut command = Command {
            flags: fields.flags.clone(),
            subcommands: BTreeMap::new(),
        };
        command.flags.extend(["--help", "-h"].map(String::from));
        if let Some(nested) = &fields.nested {
            command.subcommands = build(nested, enums, depth + 1)?;
        }
        commands.insert(kebab(variant), command);
    }
    Ok(commands)
}

#[derive(Debug, Default, Clone)]
struct Fields {
    flags: BTreeSet<String>,
    nested: Option<String>,
}

/// The text between the brace at `open` and its partner.
fn braced(source: &str, open: usize) -> Result<&str, String> {
    let mut depth = 0usize;
    for (i, c) in source[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(&source[open + 1..open + i]);
                }
            }
            _ => {}
        }
    }
    Err("unbalanced braces in host/cli/src".into())
}

/// Splits a body at the commas that are not inside brackets of any kind.
fn top_level_items(body: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in body.char_indices() {
        match c {
            '{' | '(' | '[' | '<' => depth += 1,
            '}' | ')' | ']' | '>' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&body[start..]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn variants(body: &str) -> Result<Vec<(String, Fields)>, String> {
    let variant = regex(r"^(?:#\[(?s:.*?)\]\s*)*([A-Z]\w*)\s*(\{)?")?;
    let mut found = Vec::new();
    for item in top_level_items(body) {
        let Some(head) = variant.captures(item) else {
            continue;
        };
        let fields = match head.get(2) {
            Some(brace) => fields(braced(item, brace.start())?)?,
            None => Fields::default(),
        };
        found.push((head[1].to_string(), fields));
    }
    Ok(found)
}

fn fields(body: &str) -> Result<Fields, String> {
    let field = regex(r"^((?:#\[(?s:.*?)\]\s*)*)(?:pub\s+)?(\w+)\s*:")?;
    let short = regex(r"\bshort\s*=\s*'(.)'")?;
    let long = regex(r#"\blong\s*=\s*"([^"]+)""#)?;
    let mut out = Fields::default();
    for item in top_level_items(body) {
        let Some(found) = field.captures(item) else {
            continue;
        };
        let attributes = &found[1];
        let name = &found[2];
        if attributes.contains("subcommand") {
            let ty = item.rsplit(':').next().unwrap_or("").trim();
            out.nested = Some(ty.to_string());
            continue;
        }
        let Some(arg) = attributes.find("#[arg(") else {
            continue;
        };
        let arg = &attributes[arg..];
        let words: BTreeSet<&str> = arg
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .collect();
        if let Some(explicit) = long.captures(arg) {
            out.flags.insert(format!("--{}", &explicit[1]));
        } else if words.contains("long") {
            out.flags.insert(format!("--{}", name.replace('_', "-")));
        }
        if let Some(explicit) = short.captures(arg) {
            out.flags.insert(format!("-{}", &explicit[1]));
        } else if words.contains("short") {
            out.flags
                .insert(format!("-{}", name.chars().next().unwrap_or('?')));
        }
    }
    Ok(out)
}

fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Removes `//` comments that take a whole line; doc comments are prose
/// and may hold braces.
fn strip_line_comments(source: &str) -> String {
    source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `ORG_MESH_*` variable org-mesh reads: the settings the
/// configuration file can take from the environment (config.rs's overlay)
/// and those the command line reads (`env = "..."`, `ORG_MESH_LOG`).
pub fn env_vars(root: &Path) -> Result<BTreeSet<String>, String> {
    let config = read(&root.join("host/app/src/config.rs"))?;
    let arm = regex(r#"(?m)^\s*"([a-z0-9_]+)"\s*=>"#)?;
    let literal = regex(r#""(ORG_MESH_[A-Z0-9_]+)""#)?;
    // Other match arms in the overlay are values ("embedded", "redis"):
    // a setting's arm is a top-level key or a path with `__` in it.
    let top = crate::keys::config(root)?.roots();
    let mut vars: BTreeSet<String> = arm
        .captures_iter(without_tests(&config))
        .map(|c| c[1].to_string())
        .filter(|path| path.contains("__") || top.contains(path))
        .map(|path| format!("ORG_MESH_{}", path.to_ascii_uppercase()))
        .collect();
    for file in rust_sources(&root.join("host/cli/src"))?
        .into_iter()
        .chain(rust_sources(&root.join("host/app/src"))?)
    {
        let text = read(&file)?;
        vars.extend(
            literal
                .captures_iter(without_tests(&text))
                .map(|c| c[1].to_string()),
        );
    }
    if !vars.contains("ORG_MESH_STATE_DIR") || !vars.contains("ORG_MESH_CONFIG") {
        return Err(format!(
            "read only {vars:?} as ORG_MESH_* variables; config.rs or main.rs no longer look as this check expects"
        ));
    }
    Ok(vars)
}

/// The HTTP routes `org-mesh serve` answers, as axum patterns
/// (`/api/v1/entities/{label}/{key}`), plus the prefixes the SCIM and
/// webhook routers serve under.
pub fn routes(root: &Path) -> Result<BTreeSet<String>, String> {
    let route = regex(r#"\.route\(\s*"([^"]+)""#)?;
    let mut found = BTreeSet::new();
    for file in rust_sources(&root.join("host/app/src/serve"))? {
        let text = read(&file)?;
        found.extend(
            route
                .captures_iter(without_tests(&text))
                .map(|c| c[1].to_string()),
        );
    }
    // The SCIM router builds its routes from one base; the base itself is
    // what an identity provider is given.
    let scim = read(&root.join("host/scim/src/http.rs"))?;
    let base = regex(r#"let base = "([^"]+)";"#)?;
    let under = regex(r#"format!\("\{base\}([^"]*)""#)?;
    if let Some(base) = base.captures(without_tests(&scim)) {
        found.insert(base[1].to_string());
        found.extend(
            under
                .captures_iter(without_tests(&scim))
                .map(|c| format!("{}{}", &base[1], c[1].replace("{{", "{").replace("}}", "}"))),
        );
    }
    if !found.contains("/api/v1/status") {
        return Err(format!(
            "read routes {found:?} from host/app/src/serve, without /api/v1/status"
        ));
    }
    Ok(found)
}

/// Whether a path (`/api/v1/entities/Account/github:octocat`) is served by
/// one of the route patterns.
pub fn route_matches(routes: &BTreeSet<String>, path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let wanted: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    routes.iter().any(|route| {
        let pattern: Vec<&str> = route.trim_end_matches('/').split('/').collect();
        if pattern.last().is_some_and(|p| p.starts_with("{*")) {
            let fixed = &pattern[..pattern.len() - 1];
            return wanted.len() >= fixed.len() && same(fixed, &wanted[..fixed.len()]);
        }
        pattern.len() == wanted.len() && same(&pattern, &wanted)
    })
}

fn same(pattern: &[&str], wanted: &[&str]) -> bool {
    pattern
        .iter()
        .zip(wanted)
        .all(|(p, w)| p == w || (p.starts_with('{') && p.ends_with('}')) || w.starts_with('<'))
}

/// The alerts the chart's PrometheusRule defines, read from its template.
pub fn alerts(root: &Path) -> Result<BTreeSet<String>, String> {
    let text = read(&root.join("helm/org-mesh/templates/prometheusrule.yaml"))?;
    let alert = regex(r"(?m)^\s*- alert:\s*(\w+)\s*$")?;
    let found: BTreeSet<String> = alert
        .captures_iter(&text)
        .map(|c| c[1].to_string())
        .collect();
    if found.is_empty() {
        return Err("the PrometheusRule template defines no alert".into());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
#[derive(Debug, Parser)]
#[command(name = "tool", version)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, env = "X", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Does a thing {with braces}.
    RunOnce {
        #[arg(long, short, default_value = "a")]
        config: PathBuf,
        #[arg(long = "fail-on", value_parser = parse)]
        threshold: Option<u8>,
        positional: PathBuf,
    },
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    Version,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    Test {
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
}
"#;

    #[test]
    fn clap_definitions_become_commands_and_flags() {
        let cli = Cli::parse(SAMPLE).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(cli.global_flags.contains("--log-format"));
        let run = &cli.commands["run-once"];
        for flag in ["--config", "-c", "--fail-on", "--help"] {
            assert!(run.flags.contains(flag), "{flag} in {:?}", run.flags);
        }
        assert!(!run.flags.contains("--positional"));
        assert!(cli.commands["policy"].subcommands.contains_key("test"));
        assert!(cli.commands["version"].subcommands.is_empty());
    }

    #[test]
    fn routes_match_with_parameters_and_placeholders() {
        let routes: BTreeSet<String> = ["/api/v1/entities/{label}/{key}", "/api/v1/status"]
            .map(String::from)
            .into();
        assert!(route_matches(
            &routes,
            "/api/v1/entities/Account/github:octocat"
        ));
        assert!(route_matches(&routes, "/api/v1/status?x=1"));
        assert!(!route_matches(&routes, "/api/v1/statuses"));
        assert!(!route_matches(&routes, "/api/v1/entities/Account"));
    }

    #[test]
    fn histograms_have_their_series_suffixes() {
        let metrics = Metrics {
            names: [
                ("a_seconds".to_string(), true),
                ("b_total".to_string(), false),
            ]
            .into(),
        };
        assert!(metrics.exists("a_seconds_bucket"));
        assert!(metrics.exists("b_total"));
        assert!(!metrics.exists("b_total_count"));
        assert!(!metrics.exists("c"));
    }
}
