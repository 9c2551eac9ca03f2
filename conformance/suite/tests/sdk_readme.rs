//! The author documentation keeps up with the contract: every function and
//! every error case in `sdk/wit` is named in `sdk/README.md`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::path::Path;

fn sdk() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Function names (`name: func(`) and the cases of every error variant
/// (`variant error` and `variant plugin-error`) in one WIT file.
fn names(wit: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_error = false;
    for line in wit.lines().map(str::trim) {
        if let Some((name, _)) = line.split_once(": func(") {
            names.push(name.to_string());
        }
        if line.starts_with("variant error {") || line.starts_with("variant plugin-error {") {
            in_error = true;
        } else if in_error && line.starts_with('}') {
            in_error = false;
        } else if in_error && !line.starts_with("//") && !line.is_empty() {
            let case = line.split(['(', ',']).next().unwrap_or_default().trim();
            names.push(case.to_string());
        }
    }
    names
}

#[test]
fn every_wit_function_and_error_case_is_documented() {
    let readme = read(&sdk().join("README.md"));
    let mut all = Vec::new();
    for file in ["types.wit", "worlds.wit", "host.wit"] {
        all.extend(names(&read(&sdk().join("wit").join(file))));
    }
    for expected in [
        "send",
        "get-node",
        "invalid-config",
        "unknown-secret",
        "timeout",
    ] {
        assert!(
            all.iter().any(|n| n == expected),
            "the WIT reader lost {expected}: {all:?}"
        );
    }
    let missing: Vec<&String> = all
        .iter()
        .filter(|n| !readme.contains(&format!("`{n}")))
        .collect();
    assert!(
        missing.is_empty(),
        "sdk/README.md does not name these WIT functions or error cases: {missing:?}"
    );
}
