//! `org-mesh plugin new`, `build`, `test` and `inspect`, run as an author
//! runs them, on the built first-party plugins and on a freshly scaffolded
//! one. Needs `.ci/build-plugins` and the wasm32-wasip2 target.

#![expect(clippy::panic, reason = "helpers of a test fail it by panicking")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use org_mesh_harness::root;

fn org_mesh(args: &[&str]) -> Output {
    org_mesh_in(args, None)
}

fn org_mesh_in(args: &[&str], target: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_org-mesh"));
    command.args(args);
    if let Some(target) = target {
        command.env("CARGO_TARGET_DIR", target);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("running org-mesh: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn dist(name: &str) -> PathBuf {
    root().join("plugins/dist").join(name)
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn inspect_shows_the_world_imports_capabilities_and_size() {
    let wasm = dist("identity-drift").join("identity_drift.wasm");
    let out = org_mesh(&["plugin", "inspect", &path(&wasm)]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    for line in [
        "world:         org-mesh:plugin/detector-plugin",
        "capabilities:  log, graph",
        "import:        org-mesh:plugin/graph@0.2.0",
        "export:        org-mesh:plugin/detector@0.2.0",
        "rule:          idp-offboarded-has-admin (critical)",
    ] {
        assert!(shown.contains(line), "{line:?} missing from:\n{shown}");
    }
    let size = std::fs::metadata(&wasm)
        .unwrap_or_else(|e| panic!("{e}"))
        .len();
    assert!(
        shown.contains(&format!("size:          {size} bytes")),
        "{shown}"
    );

    let out = org_mesh(&["plugin", "inspect", "--json", &path(&wasm)]);
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(json["kind"], "detector");
    assert_eq!(json["size_bytes"], size);
}

#[test]
fn test_passes_a_first_party_plugin_and_names_what_a_broken_manifest_gets_wrong() {
    let out = org_mesh(&[
        "plugin",
        "test",
        &path(&dist("gitlab-connector").join("gitlab_connector.wasm")),
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("ok    handle-malformed"), "{shown}");
    assert!(
        shown.contains("PASS: 8/8 cases for gitlab-connector 0.1.0"),
        "{shown}"
    );

    // The same component under a manifest that over-asks fails one case.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let from = dist("identity-drift");
    std::fs::copy(
        from.join("identity_drift.wasm"),
        dir.path().join("identity_drift.wasm"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let manifest = std::fs::read_to_string(from.join("manifest.yaml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .replace(
            "capabilities: [log, graph]",
            "capabilities: [log, graph, kv]",
        );
    std::fs::write(dir.path().join("manifest.yaml"), manifest).unwrap_or_else(|e| panic!("{e}"));
    let out = org_mesh(&[
        "plugin",
        "test",
        &path(&dir.path().join("identity_drift.wasm")),
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(
            "FAIL  capabilities: case: the manifest asks for kv but the component never imports it"
        ),
        "{shown}"
    );
}

#[test]
fn a_file_without_a_manifest_and_a_bad_name_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let lonely = dir.path().join("lonely.wasm");
    std::fs::write(&lonely, b"\0asm").unwrap_or_else(|e| panic!("{e}"));
    let out = org_mesh(&["plugin", "test", &path(&lonely)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no manifest at"), "{}", text(&out));

    let out = org_mesh(&[
        "plugin",
        "new",
        "detector",
        "Bad_Name",
        "--dir",
        &path(dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("name \"Bad_Name\" must start with a lower-case letter")
            && !text(&out).contains("manifest.yaml"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("Bad_Name").exists());
}

/// Scaffolds, builds and tests a detector the way the SDK tutorial does.
/// The plugin builds into a target folder beside this test's own, so
/// repeated runs stay warm.
#[test]
fn a_new_detector_builds_and_passes_conformance_as_generated() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = Path::new(env!("CARGO_BIN_EXE_org-mesh"))
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("no target folder"))
        .join("plugin-scaffold");
    let out = org_mesh(&[
        "plugin",
        "new",
        "detector",
        "fresh-detector",
        "--dir",
        &path(dir.path()),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let crate_dir = dir.path().join("fresh-detector");
    let cargo_toml =
        std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap_or_else(|e| panic!("{e}"));
    let sdk = root()
        .join("sdk/rust")
        .canonicalize()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cargo_toml.contains(&format!("path = \"{}\"", sdk.display())),
        "the scaffold depends on this checkout's SDK:\n{cargo_toml}"
    );

    // Before it is built, the crate folder has nothing to test.
    let out = org_mesh(&["plugin", "test", &path(&crate_dir)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("holds no built component; run org-mesh plugin build"),
        "{}",
        text(&out)
    );

    let out = org_mesh_in(&["plugin", "build", &path(&crate_dir)], Some(&target));
    assert!(out.status.success(), "{}", text(&out));
    let wasm = crate_dir.join("dist/fresh-detector/fresh_detector.wasm");
    assert!(wasm.is_file(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("next: org-mesh plugin test {}", path(&crate_dir))),
        "{}",
        text(&out)
    );

    // The component, or the crate folder it was built from.
    for subject in [path(&wasm), path(&crate_dir)] {
        let out = org_mesh(&["plugin", "test", &subject]);
        let shown = text(&out);
        assert!(out.status.success(), "{subject}: {shown}");
        assert!(
            shown.contains("PASS: 6/6 cases for fresh-detector 0.1.0 (detector)"),
            "{subject}: {shown}"
        );
    }

    // A build the host would refuse (here the manifest's version is not
    // the one the component describes) never reaches dist/, which a
    // running serve may be watching.
    let manifest = crate_dir.join("manifest.yaml");
    let written = std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        &manifest,
        written.replace("version: 0.1.0", "version: 0.2.0"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = org_mesh_in(&["plugin", "build", &path(&crate_dir)], Some(&target));
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("the host would refuse what cargo built, so dist/ is left as it was")
            && shown.contains("0.2.0"),
        "{shown}"
    );
    let served = std::fs::read_to_string(crate_dir.join("dist/fresh-detector/manifest.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(served.contains("version: 0.1.0"), "{served}");
}
