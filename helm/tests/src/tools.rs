//! The outside tools the chart test runs: helm and kubernetes-validate,
//! both installed by `.ci/setup` into `~/.cache/org-mesh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The helm release `.ci/setup` installs, from the one file both read; the
/// chart test needs exactly this one, since lint and schema messages
/// differ between releases.
pub fn helm_version() -> &'static str {
    include_str!("../helm-version").trim()
}

/// The Kubernetes versions rendered for and validated against: the oldest
/// the chart supports (its kubeVersion) and the newest kubernetes-validate
/// ships schemas for.
pub const KUBE_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

/// How to get the tools, for messages that stop a test.
pub const SETUP: &str = "run ./.ci/setup (it installs helm with `go install` into \
~/.cache/org-mesh/go/bin and kubernetes-validate into ~/.cache/org-mesh/venv), \
or point ORG_MESH_HELM and ORG_MESH_KUBERNETES_VALIDATE at your own";

fn cache() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/org-mesh")
}

fn tool(variable: &str, default: PathBuf, what: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os(variable).map_or(default, PathBuf::from);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{what} is not at {} ({variable} overrides it): {SETUP}",
            path.display()
        ))
    }
}

/// helm, from `ORG_MESH_HELM` or where `.ci/setup` puts it.
pub fn helm_path() -> Result<PathBuf, String> {
    tool("ORG_MESH_HELM", cache().join("go/bin/helm"), "helm")
}

/// kubernetes-validate, from `ORG_MESH_KUBERNETES_VALIDATE` or the venv.
pub fn kubernetes_validate_path() -> Result<PathBuf, String> {
    tool(
        "ORG_MESH_KUBERNETES_VALIDATE",
        cache().join("venv/bin/kubernetes-validate"),
        "kubernetes-validate",
    )
}

/// Runs helm with its own empty home, so that a developer's repositories,
/// plugins and kube context play no part, and no cluster is ever asked.
#[derive(Debug)]
pub struct Helm {
    path: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    /// Finds helm and checks it is the pinned release.
    pub fn new() -> Result<Helm, String> {
        let path = helm_path()?;
        // Reading the build information scans the whole binary (over
        // 100 MB); every test asks, so the answer is kept.
        static CHECKED: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
        let version = CHECKED.get_or_init(|| module_version(&path)).clone()?;
        if version != helm_version() {
            return Err(format!(
                "{} is helm {version}, the chart test wants {}: {SETUP}",
                path.display(),
                helm_version()
            ));
        }
        let home = tempfile::tempdir().map_err(|e| format!("cannot make a helm home: {e}"))?;
        Ok(Helm { path, home })
    }

    /// Runs helm with `args`; the output whatever the exit status.
    pub fn run<I, S>(&self, args: I) -> Result<Output, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let home = self.home.path();
        Command::new(&self.path)
            .args(args)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("KUBECONFIG", home.join("no-kubeconfig"))
            .env_remove("HELM_KUBECONTEXT")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.path.display()))
    }
}

/// The documents of a multi-document YAML stream, as JSON values, without
/// empty ones.
pub fn documents(yaml: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .map_err(|e| format!("the rendered YAML does not parse: {e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// `kind/name` of a manifest, for messages.
pub fn describe(manifest: &Value) -> String {
    format!(
        "{}/{}",
        manifest["kind"].as_str().unwrap_or("?"),
        manifest["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The chart's folder.
pub fn chart_dir(root: &Path) -> PathBuf {
    root.join("helm/org-mesh")
}

/// The helm module version go stamped into the binary's build information
/// (`mod helm.sh/helm/v4 v4.3.2`): a go-installed helm reports only
/// major.minor through `helm version`.
pub fn module_version(binary: &Path) -> Result<String, String> {
    let bytes =
        std::fs::read(binary).map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    let marker = b"mod\thelm.sh/helm/";
    let start = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .ok_or_else(|| {
            format!(
                "{} carries no helm module build information: {SETUP}",
                binary.display()
            )
        })?;
    let line: String = bytes[start..]
        .iter()
        .take_while(|b| **b != b'\n')
        .map(|b| char::from(*b))
        .collect();
    line.split('\t').nth(2).map(str::to_string).ok_or_else(|| {
        format!(
            "{} has unreadable build information {line:?}",
            binary.display()
        )
    })
}
