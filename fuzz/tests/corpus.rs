//! Replays every seed in `corpus/<target>/` and every crash kept in
//! `regressions/<target>/` through its target on stable Rust. This is the
//! part of fuzzing CI always runs; `.ci/fuzz` does the searching.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use org_mesh_app::config::Config;
use org_mesh_fuzz::{TARGETS, fuzz_dir, shipped_policies};

type TestResult = Result<(), String>;

/// Files of one folder, sorted so failures name the same file every run.
/// A folder that does not exist holds no files: `regressions/<target>`
/// appears only once a crash is kept.
fn files(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

#[test]
fn every_seed_and_regression_runs_without_a_panic() -> TestResult {
    // The policies are compiled once, outside the per-input clock.
    shipped_policies()?;
    let mut failures = Vec::new();
    for (name, run) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(name))?;
        if seeds.is_empty() {
            failures.push(format!("{name}: no seeds in corpus/{name}"));
        }
        let kept = files(&fuzz_dir().join("regressions").join(name))?;
        for path in seeds.iter().chain(&kept) {
            let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let start = Instant::now();
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                failures.push(format!("{name}: {} panicked", path.display()));
            }
            // A debug build is slow, but a seed that takes seconds is a
            // hang the fuzzer would report as a timeout.
            if start.elapsed() > Duration::from_secs(5) {
                failures.push(format!(
                    "{name}: {} took {:?}",
                    path.display(),
                    start.elapsed()
                ));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

#[test]
fn the_shipped_policies_load_so_policy_input_reaches_them() -> TestResult {
    shipped_policies().map(|_| ())
}

/// Each hostile configuration must be refused with a message, quickly:
/// the corpus replay only shows they do not crash.
fn refused(yaml: &str, want: &[&str]) -> TestResult {
    let start = Instant::now();
    let outcome = Config::parse(yaml, Path::new("org-mesh.yaml"));
    let elapsed = start.elapsed();
    let message = match outcome {
        Ok(_) => return Err("accepted".into()),
        Err(err) => err.to_string(),
    };
    if !want.iter().any(|w| message.contains(w)) {
        return Err(format!("refused for another reason: {message}"));
    }
    if elapsed > Duration::from_secs(2) {
        return Err(format!("took {elapsed:?}: {message}"));
    }
    Ok(())
}

/// A valid configuration whose one connector's free-form `config` holds
/// `value`, the one place untyped YAML reaches.
fn with_plugin_config(anchors: &str, value: &str) -> String {
    format!(
        "{anchors}plugins: {{dirs: [p]}}\npolicies: {{dir: q}}\n\
         connectors:\n  - name: gh\n    plugin: github-connector\n    config: {value}\n"
    )
}

#[test]
fn a_config_alias_bomb_is_refused() -> TestResult {
    let mut anchors = String::from("x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let refs = vec![format!("*a{}", level - 1); 10].join(", ");
        anchors.push_str(&format!("x{level}: &a{level} [{refs}]\n"));
    }
    // Anchors on unknown keys would be refused as unknown fields before
    // any expansion; hang the bomb where a schema-free value is allowed.
    let mut yaml = String::from("plugins: {dirs: [p]}\npolicies: {dir: q}\nconnectors:\n");
    yaml.push_str("  - name: gh\n    plugin: github-connector\n    config:\n");
    for line in anchors.lines() {
        yaml.push_str(&format!("      {line}\n"));
    }
    yaml.push_str("      bomb: *a9\n");
    refused(&yaml, &["alias", "budget", "limit"])
}

#[test]
fn config_nested_ten_thousand_deep_is_refused() -> TestResult {
    let flow = with_plugin_config("", &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)));
    refused(&flow, &["depth", "nesting", "recursion"])?;
    let block = with_plugin_config("", &format!("\n      {}x", "- ".repeat(10_000)));
    refused(&block, &["depth", "nesting", "recursion"])
}

#[test]
fn a_ten_megabyte_config_scalar_is_refused() -> TestResult {
    // Built here rather than kept in corpus/: libFuzzer cuts inputs to a
    // megabyte anyway, and a ten-megabyte seed would be in every clone.
    let yaml = format!(
        "state_dir: {}\nplugins: {{dirs: [p]}}\npolicies: {{dir: q}}\n",
        "a".repeat(10 * 1024 * 1024)
    );
    refused(&yaml, &["larger", "bytes", "budget", "scalar"])
}
