//! The case folders: what a case says, read and checked before anything
//! runs.
//!
//! A case is a folder under `conformance/cases` holding `case.yaml` (the
//! check, its input and the outcome it expects) and `twin.yaml`, its
//! negative twin: the same check with one thing changed (the manifest, the
//! input or a sandbox limit) and the opposite outcome expected. A case
//! passes only when both halves come out as expected, so a check that could
//! never fail fails its twin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use org_mesh_runtime::Kind;
use serde::Deserialize;

use crate::Error;

/// What a check does; see the `checks` module for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// `describe` agrees with the manifest and gives the same answer twice.
    Describe,
    /// The manifest asks for exactly the host interfaces the component
    /// imports.
    Capabilities,
    /// The call ends in one of the allowed outcomes, never a trap or a
    /// broken limit.
    Survives,
    /// The same input twice gives the same output.
    Deterministic,
    /// A connector's batch names each record once and comes out the same
    /// when the input is handed over again.
    IdempotentRecords,
    /// An executor's `execute` makes only calls its `plan` announced, and a
    /// second `execute` with the same key changes nothing.
    PlanExecuteAgree,
    /// A connector's `sync`, served only by a recorded cassette, makes
    /// exactly the recorded requests in order and yields records.
    ReplaysCassette,
}

/// How a call may end and still pass a `survives` check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allowed {
    /// The call succeeded.
    Ok,
    /// The plugin returned one of its WIT `plugin-error` cases.
    Error,
    /// A connector answered the pushed request with a 4xx status.
    Rejected,
}

/// The outcome a case or a twin expects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// The check holds.
    Pass,
    /// The check fails with a message containing this text.
    Fail(String),
}

/// A request body: literal text, a file in the case folder, or text
/// repeated to make a large input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Body {
    Text(String),
    File(PathBuf),
    /// Bytes written as hex, for input that is not UTF-8.
    Hex(String),
    Repeat {
        text: String,
        times: usize,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandleInput {
    #[serde(default = "post")]
    pub method: String,
    #[serde(default = "slash")]
    pub path: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

fn post() -> String {
    "POST".into()
}

fn slash() -> String {
    "/".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub name: String,
    pub body: Body,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncInput {
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// A cassette in the case folder (see `org_mesh_plugin_testkit::cassette`)
    /// that alone answers the connector's HTTP requests.
    #[serde(default)]
    pub cassette: Option<PathBuf>,
}

/// Where a detector's change set comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Changes {
    /// A JSON file in the case folder holding a change set as the host
    /// model serialises it.
    File(PathBuf),
    /// That many added GitHub accounts, each a member of one organisation:
    /// a large change set without a large file.
    Accounts(usize),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectInput {
    #[serde(default)]
    pub full: bool,
    pub changes: Changes,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub label: String,
    pub key: String,
}

/// An executor action. Without `kind`, the action is tried with every kind
/// the executor describes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    #[serde(default)]
    pub kind: Option<String>,
    pub target: Target,
    /// Plain JSON values: strings, numbers, booleans, null, lists of
    /// strings.
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Text parameters of this many bytes, for large inputs.
    #[serde(default)]
    pub sized: BTreeMap<String, usize>,
    #[serde(default = "idempotency_key")]
    pub idempotency_key: String,
}

fn idempotency_key() -> String {
    "conformance-0001".into()
}

/// One request the scripted server expects and its answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub method: String,
    /// The path with its query.
    pub target: String,
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default)]
    pub answer: Option<serde_json::Value>,
}

fn ok_status() -> u16 {
    200
}

/// The input of a case, by the call it goes to.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Input {
    Handle(HandleInput),
    Sync(SyncInput),
    Detect(DetectInput),
    /// `plan`, then `execute` (for `plan-execute-agree`, twice).
    Action(ActionInput),
}

/// Sandbox limits a twin tightens.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsChange {
    #[serde(default)]
    pub memory_kb: Option<u64>,
    #[serde(default)]
    pub output_bytes: Option<u64>,
}

/// A change a twin makes to the manifest it loads the plugin with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestChange {
    #[serde(default)]
    pub version: Option<String>,
    /// Ask for one capability the kind's world offers and the component
    /// does not import.
    #[serde(default)]
    pub ask_unused_capability: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    about: String,
    kinds: Vec<Kind>,
    /// Only these plugins, for cases whose input is one plugin's format.
    #[serde(default)]
    plugins: Vec<String>,
    check: Check,
    #[serde(default)]
    input: Option<Input>,
    #[serde(default)]
    allow: Vec<Allowed>,
    /// For executors: what the scripted HTTP server expects, in order.
    #[serde(default)]
    server: Vec<Exchange>,
    /// Appended to the scripted server's URL where the config names it,
    /// for APIs whose root is below the host, such as GitLab's `/api/v4`.
    #[serde(default)]
    server_path: String,
    /// Config values set over the ones the suite derives from the schema.
    #[serde(default)]
    config: serde_json::Map<String, serde_json::Value>,
    expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TwinFile {
    about: String,
    #[serde(default)]
    input: Option<Input>,
    #[serde(default)]
    server: Option<Vec<Exchange>>,
    #[serde(default)]
    limits: LimitsChange,
    #[serde(default)]
    manifest: ManifestChange,
    /// Config values set over the case's.
    #[serde(default)]
    config: serde_json::Map<String, serde_json::Value>,
    expect: Expect,
}

/// One half of a case, ready to run.
#[derive(Debug, Clone)]
pub struct Setup {
    pub about: String,
    pub input: Option<Input>,
    pub server: Vec<Exchange>,
    /// Appended to the scripted server's URL in the config.
    pub server_path: String,
    pub limits: LimitsChange,
    pub manifest: ManifestChange,
    /// Config values set over the ones the suite derives from the schema.
    pub config: serde_json::Map<String, serde_json::Value>,
    pub expect: Expect,
}

/// A case folder, read and checked.
#[derive(Debug, Clone)]
pub struct Case {
    /// The folder's name.
    pub id: String,
    pub folder: PathBuf,
    pub kinds: Vec<Kind>,
    pub plugins: Vec<String>,
    pub check: Check,
    pub allow: Vec<Allowed>,
    pub case: Setup,
    pub twin: Setup,
}

impl Case {
    pub fn load(folder: &Path) -> Result<Case, Error> {
        let id = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file: CaseFile = read_yaml(&folder.join("case.yaml"))?;
        let twin: TwinFile = read_yaml(&folder.join("twin.yaml"))?;
        let bad = |problem: String| Error::Case {
            path: folder.to_path_buf(),
            problem,
        };
        if file.kinds.is_empty() {
            return Err(bad("kinds: name at least one plugin kind".into()));
        }
        if file.case_needs_input() && file.input.is_none() {
            return Err(bad(format!("input: the {:?} check needs one", file.check)));
        }
        if file.expect == twin.expect {
            return Err(bad(
                "twin.yaml expects the same outcome as case.yaml: a twin must expect the opposite"
                    .into(),
            ));
        }
        let case = Setup {
            about: file.about,
            input: file.input.clone(),
            server: file.server.clone(),
            server_path: file.server_path.clone(),
            limits: LimitsChange::default(),
            manifest: ManifestChange::default(),
            config: file.config.clone(),
            expect: file.expect,
        };
        let mut twin_config = file.config;
        twin_config.extend(twin.config);
        let twin = Setup {
            about: twin.about,
            input: twin.input.or(file.input),
            server: twin.server.unwrap_or(file.server),
            server_path: file.server_path,
            limits: twin.limits,
            manifest: twin.manifest,
            config: twin_config,
            expect: twin.expect,
        };
        Ok(Case {
            id,
            folder: folder.to_path_buf(),
            kinds: file.kinds,
            plugins: file.plugins,
            check: file.check,
            allow: if file.allow.is_empty() {
                vec![Allowed::Ok, Allowed::Error, Allowed::Rejected]
            } else {
                file.allow
            },
            case,
            twin,
        })
    }

    /// Whether this case applies to a plugin of this kind and name.
    pub fn applies_to(&self, kind: Kind, plugin: &str) -> bool {
        self.kinds.contains(&kind)
            && (self.plugins.is_empty() || self.plugins.iter().any(|p| p == plugin))
    }
}

impl CaseFile {
    fn case_needs_input(&self) -> bool {
        !matches!(self.check, Check::Describe | Check::Capabilities)
    }
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
        path: path.to_path_buf(),
        error,
    })?;
    serde_saphyr::from_str(&text).map_err(|e| Error::Case {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })
}

/// Every case folder under `dir`, sorted by name.
pub fn load_all(dir: &Path) -> Result<Vec<Case>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|error| Error::Read {
        path: dir.to_path_buf(),
        error,
    })?;
    let mut folders: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    folders.iter().map(|f| Case::load(f)).collect()
}

impl Body {
    /// The bytes, reading a file relative to the case folder.
    pub fn bytes(&self, folder: &Path) -> Result<Vec<u8>, String> {
        match self {
            Body::Text(t) => Ok(t.clone().into_bytes()),
            Body::File(f) => {
                let path = folder.join(f);
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
            Body::Hex(h) => {
                let clean: String = h.chars().filter(|c| !c.is_whitespace()).collect();
                (0..clean.len())
                    .step_by(2)
                    .map(|i| {
                        clean
                            .get(i..i + 2)
                            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                            .ok_or_else(|| format!("hex body: {clean:?} is not hex pairs"))
                    })
                    .collect()
            }
            Body::Repeat { text, times } => Ok(text.repeat(*times).into_bytes()),
        }
    }
}
