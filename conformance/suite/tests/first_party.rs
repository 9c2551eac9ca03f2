//! Every first-party plugin against every case of its kind, and the list of
//! passing cases in `conformance/passing.txt`, which only grows: a listed
//! pair that fails is a regression, and a passing pair that is not listed
//! must be added. Needs `.ci/build-plugins`.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use org_mesh_conformance::{Report, Subject, Suite, Verdict, read_passing, shipped_cases};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The built first-party plugins, one folder each.
fn first_party() -> Vec<PathBuf> {
    let dist = root().join("plugins/dist");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dist)
        .unwrap_or_else(|e| panic!("{}: {e}: run .ci/build-plugins", dist.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("manifest.yaml").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no plugins in {}", dist.display());
    dirs
}

async fn reports() -> Vec<Report> {
    let suite = Suite::load(&shipped_cases()).unwrap_or_else(|e| panic!("{e}"));
    let mut reports = Vec::new();
    for dir in first_party() {
        let subject = Subject::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        reports.push(suite.run(&subject).await);
    }
    reports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_first_party_plugin_passes_and_the_passing_list_only_grows() {
    let reports = reports().await;
    let passing_path = root().join("conformance/passing.txt");
    let listed: BTreeSet<(String, String)> = read_passing(&passing_path)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .collect();

    let mut passed = BTreeSet::new();
    let mut failures = Vec::new();
    for report in &reports {
        for r in &report.results {
            match &r.verdict {
                Verdict::Pass => {
                    passed.insert((report.plugin.clone(), r.case.clone()));
                }
                Verdict::Fail(why) => failures.push(format!("{} {}: {why}", report.plugin, r.case)),
                Verdict::NotApplicable => {}
            }
        }
    }
    let regressed: Vec<_> = listed.difference(&passed).collect();
    let unlisted: Vec<String> = passed
        .difference(&listed)
        .map(|(p, c)| format!("{p} {c}"))
        .collect();
    assert!(
        regressed.is_empty(),
        "listed as passing but not passing now: {regressed:?}\nfailures:\n{}",
        failures.join("\n")
    );
    assert!(
        failures.is_empty(),
        "first-party plugins must pass every case:\n{}",
        failures.join("\n")
    );
    assert!(
        unlisted.is_empty(),
        "passing but not in {}; add these lines:\n{}",
        passing_path.display(),
        unlisted.join("\n")
    );
}

#[test]
fn every_case_folder_is_well_formed_and_used_by_some_first_party_plugin() {
    let suite = Suite::load(&shipped_cases()).unwrap_or_else(|e| panic!("{e}"));
    assert!(suite.cases.len() >= 10, "{} cases", suite.cases.len());
    let plugins: Vec<(org_mesh_runtime::Kind, String)> = first_party()
        .iter()
        .map(|d| {
            let m = org_mesh_runtime::Manifest::load(&d.join("manifest.yaml"))
                .unwrap_or_else(|e| panic!("{e}"));
            (m.kind, m.name)
        })
        .collect();
    for case in &suite.cases {
        assert!(
            plugins.iter().any(|(k, n)| case.applies_to(*k, n)),
            "case {} applies to no first-party plugin, so nothing proves it can pass",
            case.id
        );
    }
}

#[test]
fn a_case_whose_twin_expects_the_same_outcome_is_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let case = dir.path().join("same");
    std::fs::create_dir(&case).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        case.join("case.yaml"),
        "about: x\nkinds: [detector]\ncheck: describe\nexpect: pass\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(case.join("twin.yaml"), "about: y\nexpect: pass\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = Suite::load(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("a twin must expect the opposite"), "{err}");

    std::fs::write(
        case.join("twin.yaml"),
        "about: y\nexpect:\n  fail: x\ncolour: red\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = Suite::load(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("colour"), "an unknown field is named: {err}");
}
