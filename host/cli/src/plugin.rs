//! `org-mesh plugin ...`: the plugin author's tools. `new` scaffolds a
//! crate, `build` builds it for wasm32-wasip2 beside its manifest, `test`
//! runs the conformance suite on a built plugin and `inspect` shows what
//! the runtime sees in one.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use clap::{Subcommand, ValueEnum};
use org_mesh_conformance::{Inspection, Subject, Suite, inspect, shipped_cases};
use org_mesh_runtime::{LoadError, Manifest};

use crate::fail;

/// The SDK crate of the checkout this binary was built from.
const SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk/rust");

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate that builds and passes conformance as it is.
    New {
        kind: NewKind,
        /// Lower-case letters, digits and dashes; also the folder's name.
        name: String,
        /// Where to create the plugin's folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The org-mesh-plugin crate to depend on, by path.
        #[arg(long, env = "ORG_MESH_SDK", default_value = SDK)]
        sdk: PathBuf,
    },
    /// Build a plugin crate for wasm32-wasip2 and lay it out with its
    /// manifest in <dir>/dist/<name>/, ready to load or test.
    Build {
        /// The plugin crate's folder, holding Cargo.toml and manifest.yaml.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run the conformance suite for the plugin's kind; exits 1 when a
    /// case fails.
    Test {
        /// The component, with manifest.yaml beside it, or the plugin's
        /// crate folder once `org-mesh plugin build` has built it.
        file: PathBuf,
        /// The case folders to run.
        #[arg(long, env = "ORG_MESH_CONFORMANCE_CASES", default_value_os_t = shipped_cases())]
        cases: PathBuf,
    },
    /// Print a plugin's manifest, world, imports, capabilities and size.
    Inspect {
        /// The component, with manifest.yaml beside it, or the plugin's
        /// crate folder once built.
        file: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NewKind {
    Connector,
    Detector,
    Executor,
}

impl NewKind {
    fn as_str(self) -> &'static str {
        match self {
            NewKind::Connector => "connector",
            NewKind::Detector => "detector",
            NewKind::Executor => "executor",
        }
    }

    fn source(self) -> &'static str {
        match self {
            NewKind::Connector => include_str!("../templates/connector.rs.tmpl"),
            NewKind::Detector => include_str!("../templates/detector.rs.tmpl"),
            NewKind::Executor => include_str!("../templates/executor.rs.tmpl"),
        }
    }
}

pub async fn run(command: PluginCommand) -> ExitCode {
    let result = match command {
        PluginCommand::New {
            kind,
            name,
            dir,
            sdk,
        } => new(kind, &name, &dir, &sdk),
        PluginCommand::Build { dir } => build(&dir).await,
        PluginCommand::Test { file, cases } => match component_of(&file) {
            Ok(file) => return test(&file, &cases).await,
            Err(message) => Err(message),
        },
        PluginCommand::Inspect { file, json } => match component_of(&file) {
            Ok(file) => show(&file, json).await,
            Err(message) => Err(message),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

/// The component `path` names: the file itself, or for a folder the
/// component its manifest names there or, in a plugin crate, the one
/// `org-mesh plugin build` put under `dist/<name>/`.
fn component_of(path: &Path) -> Result<PathBuf, String> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let manifest = Manifest::load(&path.join("manifest.yaml")).map_err(|e| {
        format!(
            "{} is a folder without a plugin manifest: {e}",
            path.display()
        )
    })?;
    if manifest.component.is_file() {
        return Ok(manifest.component);
    }
    let built = path
        .join("dist")
        .join(&manifest.name)
        .join(manifest.component.file_name().unwrap_or_default());
    if built.is_file() {
        return Ok(built);
    }
    Err(format!(
        "{} holds no built component; run org-mesh plugin build {} first",
        path.display(),
        path.display()
    ))
}

fn new(kind: NewKind, name: &str, dir: &Path, sdk: &Path) -> Result<(), String> {
    let folder = dir.join(name);
    let sdk = sdk
        .canonicalize()
        .map_err(|e| format!("the SDK crate {}: {e}", sdk.display()))?;
    if !sdk.join("Cargo.toml").is_file() {
        return Err(format!(
            "{} holds no Cargo.toml: --sdk must name the org-mesh-plugin crate's folder",
            sdk.display()
        ));
    }
    let crate_name = name.replace('-', "_");
    let summary = format!("A {} plugin made with org-mesh plugin new.", kind.as_str());
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{kind}}", kind.as_str())
            .replace("{{summary}}", &summary)
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    let manifest = fill(include_str!("../templates/manifest.yaml.tmpl"));
    // The runtime's own checks decide whether the name is acceptable, so
    // the scaffold never writes a manifest it would refuse.
    if let Err(e) = Manifest::parse(&manifest, &folder.join("manifest.yaml")) {
        return Err(match e {
            // Nothing was written yet, so the manifest's path would mislead.
            LoadError::Manifest { problem, .. } => format!("plugin new: {problem}"),
            other => other.to_string(),
        });
    }
    if folder.exists() {
        return Err(format!("{} exists already", folder.display()));
    }
    let write = |path: PathBuf, text: String| {
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    std::fs::create_dir_all(folder.join("src"))
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    write(
        folder.join("Cargo.toml"),
        fill(include_str!("../templates/Cargo.toml.tmpl")),
    )?;
    write(folder.join("manifest.yaml"), manifest)?;
    write(folder.join("src/lib.rs"), fill(kind.source()))?;
    // The checkout's lock file pins the SDK's dependencies to the versions
    // org-mesh is tested with; cargo drops the entries the plugin does not
    // need on its first build.
    let lock = sdk.join("../../Cargo.lock");
    if lock.is_file() {
        std::fs::copy(&lock, folder.join("Cargo.lock"))
            .map_err(|e| format!("cannot copy {}: {e}", lock.display()))?;
    }
    crate::emit(format!(
        "created {} {} in {}\nnext: org-mesh plugin build {}\n",
        kind.as_str(),
        name,
        folder.display(),
        folder.display()
    ));
    Ok(())
}

async fn build(dir: &Path) -> Result<(), String> {
    let manifest = Manifest::load(&dir.join("manifest.yaml")).map_err(|e| e.to_string())?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build of {} failed ({})",
            dir.display(),
            output.status
        ));
    }
    let built = built_component(&output.stdout).ok_or_else(|| {
        format!(
            "cargo built {} but reported no .wasm: is its crate-type cdylib?",
            dir.display()
        )
    })?;
    let component_name = manifest.component.file_name().unwrap_or_default();
    let copy = |from: &Path, to: PathBuf| {
        std::fs::copy(from, &to)
            .map(|_| ())
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
    };
    // Loaded as the host loads it before it reaches `dist`, which a
    // running serve may watch: a component the host would refuse (its
    // description disagreeing with the manifest, an import the manifest
    // does not ask for, another kind of plugin) stops here instead of
    // being offered to it.
    let staging = tempfile::tempdir().map_err(|e| format!("cannot make a staging folder: {e}"))?;
    copy(&built, staging.path().join(component_name))?;
    copy(&manifest.path, staging.path().join("manifest.yaml"))?;
    let staged = Subject::open(&staging.path().join(component_name)).map_err(|e| e.to_string())?;
    inspect(&staged).await.map_err(|e| {
        format!("the host would refuse what cargo built, so dist/ is left as it was: {e}")
    })?;
    let dist = dir.join("dist").join(&manifest.name);
    std::fs::create_dir_all(&dist).map_err(|e| format!("cannot create {}: {e}", dist.display()))?;
    copy(&built, dist.join(component_name))?;
    copy(&manifest.path, dist.join("manifest.yaml"))?;
    crate::emit(format!(
        "{}\nnext: org-mesh plugin test {}\n",
        dist.join(component_name).display(),
        dir.display()
    ));
    Ok(())
}

/// The `.wasm` cargo reported among its artifacts.
fn built_component(messages: &[u8]) -> Option<PathBuf> {
    String::from_utf8_lossy(messages)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
}

async fn test(file: &Path, cases: &Path) -> ExitCode {
    let suite = match Suite::load(cases) {
        Ok(s) => s,
        Err(e) => return fail(&format!("conformance cases: {e}")),
    };
    let subject = match Subject::open(file) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let report = suite.run(&subject).await;
    crate::emit(report.to_string());
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn show(file: &Path, json: bool) -> Result<(), String> {
    let subject = Subject::open(file).map_err(|e| e.to_string())?;
    let inspection = inspect(&subject)
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if json {
        let text = serde_json::to_string_pretty(&inspection.to_json())
            .map_err(|e| format!("cannot print the inspection: {e}"))?;
        crate::emit(format!("{text}\n"));
    } else {
        crate::emit(text(&inspection));
    }
    Ok(())
}

fn text(i: &Inspection) -> String {
    let join = |items: Vec<&str>| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(", ")
        }
    };
    let mut out = format!(
        "name:          {}\nversion:       {}\nkind:          {}\nworld:         {}\nsummary:       {}\ncomponent:     {}\nsize:          {} bytes\nsha256:        {}\ncapabilities:  {}\nimported:      {}\nsecrets:       {}\n",
        i.name,
        i.version,
        i.kind,
        i.world,
        i.summary,
        i.component.display(),
        i.size_bytes,
        i.digest,
        join(i.capabilities.iter().map(|c| c.as_str()).collect()),
        join(i.used.iter().map(|c| c.as_str()).collect()),
        join(i.secrets.iter().map(String::as_str).collect()),
    );
    for rule in &i.description.rules {
        out.push_str(&format!(
            "rule:          {} ({}): {}\n",
            rule.id, rule.default_severity, rule.title
        ));
    }
    for action in &i.description.actions {
        out.push_str(&format!("action:        {action}\n"));
    }
    for import in &i.imports {
        out.push_str(&format!("import:        {import}\n"));
    }
    for export in &i.exports {
        out.push_str(&format!("export:        {export}\n"));
    }
    out
}
