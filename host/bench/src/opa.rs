//! OPA's `opa` binary as the policy peer: the same `drift.rego`, tuning and
//! findings, evaluated by `opa eval` for the answers and `opa bench` for
//! the time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value as Json;

use crate::policy::Fixture;

/// Asks for the same four rules org-mesh asks for, as one object of those
/// that are defined: a rule left undefined must not make the whole answer
/// undefined, as it would in a query listing the four.
pub const DECISION_QUERY: &str = r#"{k: v | some k in ["severity", "suppressed", "suppress_reason", "auto_fix"]; v := data.orgmesh.drift[k]}"#;

/// The `opa` binary and a folder laid out for it.
#[derive(Debug)]
pub struct Opa {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Opa {
    /// `ORG_MESH_OPA`, or where `.ci/bench` installs it.
    pub fn binary() -> PathBuf {
        std::env::var_os("ORG_MESH_OPA").map_or_else(
            || {
                let home = std::env::var_os("HOME").unwrap_or_default();
                Path::new(&home).join(".cache/org-mesh/go/bin/opa")
            },
            PathBuf::from,
        )
    }

    /// Writes the policy and the tuning as OPA loads them (`-d` on a folder
    /// reads every `.rego` and every `data.json`), and each finding as an
    /// input file beside that folder.
    pub fn new(fixture: &Fixture) -> anyhow::Result<Self> {
        let bin = Self::binary();
        if !bin.is_file() {
            bail!("no opa binary at {} (run .ci/bench)", bin.display());
        }
        let dir = tempfile::tempdir()?;
        let bundle = dir.path().join("bundle");
        std::fs::create_dir(&bundle)?;
        std::fs::copy(fixture.drift_rego(), bundle.join("drift.rego"))?;
        std::fs::write(bundle.join("data.json"), serde_json::to_vec(&fixture.data)?)?;
        for (i, input) in fixture.inputs.iter().enumerate() {
            std::fs::write(input_path(dir.path(), i), serde_json::to_vec(input)?)?;
        }
        Ok(Self { bin, dir })
    }

    fn command(&self, verb: &str, input: usize) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .arg(verb)
            .arg("-d")
            .arg(self.dir.path().join("bundle"))
            .arg("-i")
            .arg(input_path(self.dir.path(), input))
            .args(["-f", "json"]);
        command
    }

    /// OPA's answer for the `index`th finding.
    pub fn decide(&self, index: usize) -> anyhow::Result<Json> {
        let out = self.command("eval", index).arg(DECISION_QUERY).output()?;
        if !out.status.success() {
            bail!("opa eval failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let answer: Json = serde_json::from_slice(&out.stdout)?;
        answer["result"][0]["expressions"][0]
            .get("value")
            .cloned()
            .context("opa eval gave no value")
    }

    /// Mean time per evaluation of the `index`th finding, as `opa bench`
    /// reports it with its own metrics and allocation counts turned off.
    pub fn bench(&self, index: usize) -> anyhow::Result<Duration> {
        let out = self
            .command("bench", index)
            .args(["--metrics=false", "--benchmem=false"])
            .arg(DECISION_QUERY)
            .output()?;
        if !out.status.success() {
            bail!("opa bench failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let result: Json = serde_json::from_slice(&out.stdout)?;
        let (Some(n), Some(total)) = (result["N"].as_f64(), result["T"].as_f64()) else {
            bail!("opa bench printed no N and T: {result}");
        };
        Ok(Duration::from_secs_f64(total / n.max(1.0) / 1e9))
    }
}

fn input_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("input-{index}.json"))
}
