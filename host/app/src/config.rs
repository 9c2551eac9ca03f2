//! The org-mesh configuration file.
//!
//! One YAML file, every part a typed struct with unknown fields refused.
//! Relative paths are resolved against the file's folder. String values in
//! plugin `config` and `grants` may name environment variables as
//! `${NAME}`, so one file serves every environment; an unset variable is an
//! error naming it. Every setting can also be set by an environment
//! variable named after its path: `ORG_MESH_STATE_DIR` for `state_dir`,
//! `ORG_MESH_SERVE__LISTEN` for `serve.listen` (see [`overlay_env`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use org_mesh_runtime::{Grants, SecretSource};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where org-mesh keeps its twin and compiled-plugin cache.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default)]
    pub graph: GraphConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    pub plugins: PluginsConfig,
    pub policies: PoliciesConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub connectors: Vec<Instance>,
    #[serde(default)]
    pub detectors: Vec<Instance>,
    #[serde(default)]
    pub executors: Vec<Instance>,
    #[serde(default)]
    pub serve: ServeConfig,
    #[serde(default)]
    pub actions: ActionsConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// How long the twin keeps the organisation's text.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Messages older than this many days (by their `created_at`, or when
    /// they have none, by when the twin first saw them) are removed with
    /// their edges and history. 0 keeps messages for ever.
    #[serde(default = "message_days", deserialize_with = "whole_days")]
    pub message_days: u64,
    /// How often `serve` looks for messages to remove; 0 looks only at
    /// start.
    #[serde(default = "retention_interval")]
    pub interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            message_days: message_days(),
            interval_secs: retention_interval(),
        }
    }
}

fn message_days() -> u64 {
    180
}

fn retention_interval() -> u64 {
    3600
}

/// The largest configuration file read. A configuration of hundreds of
/// plugin instances fits many times over.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// The parser's message, led by the setting it is about when there is one
/// (`serve.sync_interval_secs: line 11 column 23: invalid u64`): the parser
/// gives the place in the file but not the setting's name. The name is
/// found by reading the file again as plain data and deserializing that
/// with its path tracked; a file that is not YAML at all has none.
fn with_setting(text: &str, e: &serde_saphyr::Error) -> String {
    let setting = serde_saphyr::from_str_with_options::<serde_json::Value>(text, parse_options())
        .ok()
        .and_then(|data| serde_path_to_error::deserialize::<_, Config>(data).err())
        .map(|found| found.path().to_string())
        .filter(|path| !path.is_empty() && path != ".");
    // The parser's advice on a duplicate key names its own option, which
    // nobody editing the file can reach.
    let message = e
        .to_string()
        .replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    match setting {
        Some(path) => format!("{path}: {message}"),
        None => message,
    }
}

/// The parser's default budget lets aliases replay a quarter of a million
/// nodes before it gives up, seconds of work in a debug build, and takes
/// 64 MiB scalars; a configuration shares at most a few grants or settings
/// by anchor.
fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 32,
            flow_nesting_limit: 32,
            max_documents: 1,
            max_anchors: 1_000,
            max_aliases: 1_000,
            max_nodes: 100_000,
            max_total_scalar_bytes: MAX_FILE_BYTES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 20_000,
            max_replay_stack_depth: 16,
        },
    }
}

/// A hundred years: longer is a typo, and would not fit a time stamp.
pub const MAX_MESSAGE_DAYS: u64 = 36_500;

/// Reads `retention.message_days` so that a negative, fractional, empty or
/// textual value is refused with what the key takes, rather than with a
/// bare type name.
fn whole_days<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct Days;
    impl serde::de::Visitor<'_> for Days {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(
                "retention.message_days to be a whole number of days (0 keeps messages for ever)",
            )
        }

        fn visit_u64<E: serde::de::Error>(self, days: u64) -> Result<u64, E> {
            Ok(days)
        }

        fn visit_i64<E: serde::de::Error>(self, days: i64) -> Result<u64, E> {
            u64::try_from(days)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(days), &self))
        }
    }
    deserializer.deserialize_any(Days)
}

/// How `serve` runs the fixes policy approves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsConfig {
    /// Plan only: approved fixes are held and their plans are the dry run.
    /// On unless switched off.
    #[serde(default = "yes")]
    pub dry_run: bool,
    /// Fixes that may run in one round of evaluation.
    #[serde(default = "max_per_run")]
    pub max_per_run: usize,
    /// Fixes that may run on one entity in one round.
    #[serde(default = "max_per_target")]
    pub max_per_target: usize,
    /// A plan with more API calls than this is refused outright.
    #[serde(default = "max_calls_per_action")]
    pub max_calls_per_action: usize,
    /// Executor instances whose fixes are held, whatever policy says.
    #[serde(default)]
    pub disabled_executors: Vec<String>,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            dry_run: yes(),
            max_per_run: max_per_run(),
            max_per_target: max_per_target(),
            max_calls_per_action: max_calls_per_action(),
            disabled_executors: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

fn max_per_run() -> usize {
    5
}

fn max_per_target() -> usize {
    1
}

fn max_calls_per_action() -> usize {
    10
}

/// Settings of `org-mesh serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The address the HTTP service listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The largest request body accepted, on every route.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// How often every connector is synced; 0 syncs only at start.
    #[serde(default = "default_sync_interval")]
    pub sync_interval_secs: u64,
    /// How long a connection may take to send a request's head, and stay
    /// idle between requests.
    #[serde(default = "default_head_timeout")]
    pub head_timeout_secs: u64,
    /// How long a client may take to send a request's body.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_secs: u64,
    /// Bearer tokens of the API, each with a role.
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
    /// The URL clients reach the service at (`https://org-mesh.example.com`),
    /// used in the locations SCIM answers carry. Without it they are built
    /// from the request's `Host` header and `http://`.
    #[serde(default)]
    pub public_url: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: default_listen(),
            body_limit_bytes: default_body_limit(),
            sync_interval_secs: default_sync_interval(),
            head_timeout_secs: default_head_timeout(),
            body_timeout_secs: default_body_timeout(),
            tokens: Vec::new(),
            public_url: None,
        }
    }
}

impl ServeConfig {
    fn check(&self, problems: &mut Vec<String>) {
        let port = self
            .listen
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .and_then(|(_, port)| port.parse::<u16>().ok());
        if port.is_none() {
            problems.push(format!(
                "serve.listen: {:?} is not an address and port such as 0.0.0.0:8080",
                self.listen
            ));
        }
        if self.body_limit_bytes < MIN_BODY_LIMIT {
            problems.push(format!(
                "serve.body_limit_bytes: {} is below {MIN_BODY_LIMIT}, which no SCIM user or webhook delivery fits",
                self.body_limit_bytes
            ));
        }
        for (field, secs) in [
            ("head_timeout_secs", self.head_timeout_secs),
            ("body_timeout_secs", self.body_timeout_secs),
        ] {
            if secs == 0 {
                problems.push(format!(
                    "serve.{field}: must be at least 1 second, or no request could arrive"
                ));
            }
        }
        if let Some(public) = &self.public_url {
            let usable = url::Url::parse(public)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !usable {
                problems.push(format!(
                    "serve.public_url: {public:?} is not an http:// or https:// URL"
                ));
            }
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_body_limit() -> usize {
    1 << 20
}

fn default_sync_interval() -> u64 {
    300
}

/// Longer than the 60 s idle timeout of the common load balancers and
/// ingress controllers, so that they close an idle connection first and
/// never send a request on one the service is closing.
fn default_head_timeout() -> u64 {
    75
}

fn default_body_timeout() -> u64 {
    30
}

/// The smallest body limit that still takes a SCIM user or a small
/// webhook delivery.
const MIN_BODY_LIMIT: usize = 4096;

/// What an API token may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Approver,
    Admin,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it, for logs and audit.
    pub name: String,
    pub role: Role,
    pub secret: SecretSource,
}

/// A route on which an outside system pushes to a connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub provider: WebhookProvider,
    /// GitHub: the HMAC key of `X-Hub-Signature-256`. GitLab: the value of
    /// `X-Gitlab-Token`.
    pub secret: SecretSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookProvider {
    Github,
    Gitlab,
}

/// Serves a SCIM 2.0 endpoint for this connector at `/scim/v2/<name>/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimConfig {
    /// The bearer token the identity provider sends.
    pub token: SecretSource,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(".org-mesh")
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// A durable database file under the state folder; no server needed.
    #[default]
    Embedded,
    /// A Neo4j 5 server, shared by every replica.
    Neo4j,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    #[serde(default)]
    pub backend: Backend,
    /// The embedded database file; defaults to `twin.redb` in the state
    /// folder.
    pub path: Option<PathBuf>,
    /// How much of the embedded database file is kept in memory, in MiB;
    /// the rest is read through the kernel's page cache when needed.
    pub cache_mib: Option<u64>,
    /// With `backend: neo4j`: where and how to connect.
    pub neo4j: Option<Neo4jConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neo4jConfig {
    /// `bolt://host:7687` or `neo4j://host:7687`.
    pub uri: String,
    #[serde(default = "neo4j_user")]
    pub user: String,
    /// Where the password is read from; none for a server without auth.
    pub password: Option<SecretSource>,
    pub database: Option<String>,
    /// Bounds every exchange with the server, through the driver's own
    /// settings.
    #[serde(default = "neo4j_timeout")]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    /// Kept in this process, with accepted work queued in a file under the
    /// state folder: one node, no server.
    #[default]
    Memory,
    /// A Redis 7 server, shared by every replica.
    Redis,
}

/// Delivery de-duplication, plugin key-value state, sync locks, rate-limit
/// budgets and the queue of accepted changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(default)]
    pub backend: CacheBackend,
    /// With `backend: redis`: where and how to connect.
    pub redis: Option<RedisConfig>,
    /// How long a change taken by a worker may go unacknowledged before
    /// another worker takes it over, as from a replica that died. Longer
    /// than applying one change normally takes.
    #[serde(default = "reclaim_after")]
    pub reclaim_after_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            backend: CacheBackend::default(),
            redis: None,
            reclaim_after_secs: reclaim_after(),
        }
    }
}

fn reclaim_after() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:6379/0`. It is never logged whole, but a password is
    /// better kept in `password`, read from a secret.
    pub url: String,
    /// Where the password is read from; none for a server without auth.
    pub password: Option<SecretSource>,
    /// Prefixes every key, so several deployments can share one server.
    #[serde(default = "redis_prefix")]
    pub prefix: String,
    /// Bounds every exchange with the server.
    #[serde(default = "redis_timeout")]
    pub timeout_secs: u64,
}

fn redis_prefix() -> String {
    "org-mesh:".into()
}

fn redis_timeout() -> u64 {
    5
}

fn neo4j_user() -> String {
    "neo4j".into()
}

fn neo4j_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Folders whose subfolders each hold a plugin's `manifest.yaml`.
    pub dirs: Vec<PathBuf>,
    /// Where compiled plugins are kept between starts; `state_dir`'s
    /// `plugin-cache` unless set. Several processes may share one: entries
    /// are keyed by content and engine, and written atomically.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Sandbox limits; defaults suit the first-party plugins.
    #[serde(default)]
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub memory_mib: Option<u64>,
    pub cpu_ms: Option<u64>,
    pub call_timeout_ms: Option<u64>,
    pub host_call_timeout_ms: Option<u64>,
    pub output_mib: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    /// The folder of `.rego` files and `drift-rules.yaml`.
    pub dir: PathBuf,
    /// With `serve`: a new policy version that passes its checks first
    /// decides beside the serving one for a while, and is promoted only if
    /// it stays within a budget of differing decisions and errors.
    #[serde(default)]
    pub shadow: Option<ShadowConfig>,
    /// Which regorus engine decides on findings: `interpreter` (the
    /// default) or `bytecode`, faster and checked against the interpreter
    /// (see `org_mesh_policy::Evaluator`).
    #[serde(default)]
    pub evaluator: org_mesh_policy::Evaluator,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    /// How long the candidate decides beside the serving version.
    pub window_secs: u64,
    /// Decisions that may differ from the serving version's; more roll the
    /// candidate back.
    #[serde(default)]
    pub max_diffs: u64,
    /// Decisions the candidate may fail to make; more roll it back.
    #[serde(default)]
    pub max_errors: u64,
}

impl ShadowConfig {
    fn new(window_secs: u64) -> ShadowConfig {
        ShadowConfig {
            window_secs,
            max_diffs: 0,
            max_errors: 0,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// A YAML list of `{provider, login, person}` explicit mappings.
    pub mappings: Option<PathBuf>,
}

/// One configured use of a plugin: a connector, detector or executor
/// instance with its own name, config and grants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Names the instance; a connector's name is the source of its records.
    pub name: String,
    /// The plugin's manifest name.
    pub plugin: String,
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub grants: Grants,
    /// Files handed to a connector's sync, by name.
    #[serde(default)]
    pub attachments: BTreeMap<String, PathBuf>,
    /// Connectors only: receive webhooks at `/webhooks/<provider>/<name>`.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// Connectors only: serve SCIM 2.0 at `/scim/v2/<name>/`.
    #[serde(default)]
    pub scim: Option<ScimConfig>,
    /// Connectors only: pull on a schedule. Turn off for connectors that
    /// are only pushed to (a SCIM endpoint, a webhook-only GitLab).
    #[serde(default = "pulled")]
    pub sync: bool,
}

fn pulled() -> bool {
    true
}

/// Everything wrong with a configuration, each problem naming its field.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {}", problems.join("; "))]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

impl Config {
    /// The plugins the configured instances use, by manifest name: the only
    /// ones worth compiling.
    pub fn plugin_names(&self) -> std::collections::BTreeSet<&str> {
        self.connectors
            .iter()
            .chain(&self.detectors)
            .chain(&self.executors)
            .map(|instance| instance.plugin.as_str())
            .collect()
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut text = String::new();
        // One byte past the limit is enough for `parse` to refuse the file
        // without holding all of a huge one in memory.
        std::fs::File::open(path)
            .and_then(|file| {
                file.take(MAX_FILE_BYTES as u64 + 1)
                    .read_to_string(&mut text)
            })
            .map_err(|e| ConfigError {
                path: path.to_path_buf(),
                problems: vec![format!("cannot read: {e}")],
            })?;
        Config::parse(&text, path)
    }

    /// Parses and checks configuration text as [`Config::load`] does with
    /// a file's; `path` names the file in errors, and relative paths are
    /// resolved against its folder.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let err = |problems: Vec<String>| ConfigError {
            path: path.to_path_buf(),
            problems,
        };
        if text.len() > MAX_FILE_BYTES {
            return Err(err(vec![format!(
                "the file is larger than {MAX_FILE_BYTES} bytes"
            )]));
        }
        let mut config: Config = serde_saphyr::from_str_with_options(text, parse_options())
            .map_err(|e| err(vec![with_setting(text, &e)]))?;
        let mut problems = Vec::new();
        config.overlay_env(std::env::vars(), &mut problems);
        config.expand_variables(&mut problems);
        config.check(&mut problems);
        if !problems.is_empty() {
            return Err(err(problems));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Sets settings from `ORG_MESH_<PATH>` variables, the path's parts
    /// joined by `__`: `ORG_MESH_STATE_DIR`, `ORG_MESH_GRAPH__PATH`,
    /// `ORG_MESH_GRAPH__CACHE_MIB`,
    /// `ORG_MESH_PLUGINS__DIRS` (`:`-separated), `ORG_MESH_PLUGINS__CACHE_DIR`,
    /// `ORG_MESH_POLICIES__DIR`, `ORG_MESH_IDENTITY__MAPPINGS`, `ORG_MESH_SERVE__LISTEN`,
    /// `ORG_MESH_SERVE__BODY_LIMIT_BYTES`, `ORG_MESH_SERVE__SYNC_INTERVAL_SECS`,
    /// `ORG_MESH_RETENTION__MESSAGE_DAYS`, `ORG_MESH_RETENTION__INTERVAL_SECS`.
    /// Logs are set by `ORG_MESH_LOG` and `ORG_MESH_LOG_FORMAT`. Plugin instances take `${NAME}` in their
    /// values instead. Other `ORG_MESH_*` variables (such as `ORG_MESH_LOG`)
    /// belong to the command line and are left alone.
    pub fn overlay_env(
        &mut self,
        vars: impl Iterator<Item = (String, String)>,
        problems: &mut Vec<String>,
    ) {
        let mut vars: Vec<(String, String)> = vars
            .filter_map(|(k, v)| Some((k.strip_prefix("ORG_MESH_")?.to_ascii_lowercase(), v)))
            .collect();
        vars.sort();
        for (path, value) in vars {
            let number = |what: &str| {
                value.parse::<u64>().map_err(|_| {
                    format!("ORG_MESH_{}: {value:?} is not {what}", path.to_uppercase())
                })
            };
            let result = match path.as_str() {
                "state_dir" => {
                    self.state_dir = value.clone().into();
                    Ok(())
                }
                "graph__path" => {
                    self.graph.path = Some(value.clone().into());
                    Ok(())
                }
                "graph__cache_mib" => {
                    number("a number of MiB").map(|n| self.graph.cache_mib = Some(n))
                }
                "graph__backend" => match value.as_str() {
                    "embedded" => {
                        self.graph.backend = Backend::Embedded;
                        Ok(())
                    }
                    "neo4j" => {
                        self.graph.backend = Backend::Neo4j;
                        Ok(())
                    }
                    other => Err(format!(
                        "ORG_MESH_GRAPH__BACKEND: {other:?} is not embedded or neo4j"
                    )),
                },
                "graph__neo4j__uri" => {
                    self.neo4j_mut().uri = value.clone();
                    Ok(())
                }
                "graph__neo4j__timeout_secs" => {
                    number("a number of seconds").map(|n| self.neo4j_mut().timeout_secs = n)
                }
                "cache__backend" => match value.as_str() {
                    "memory" => {
                        self.cache.backend = CacheBackend::Memory;
                        Ok(())
                    }
                    "redis" => {
                        self.cache.backend = CacheBackend::Redis;
                        Ok(())
                    }
                    other => Err(format!(
                        "ORG_MESH_CACHE__BACKEND: {other:?} is not memory or redis"
                    )),
                },
                "cache__redis__url" => {
                    self.redis_mut().url = value.clone();
                    Ok(())
                }
                "cache__redis__prefix" => {
                    self.redis_mut().prefix = value.clone();
                    Ok(())
                }
                "cache__redis__timeout_secs" => {
                    number("a number of seconds").map(|n| self.redis_mut().timeout_secs = n)
                }
                "cache__reclaim_after_secs" => {
                    number("a number of seconds").map(|n| self.cache.reclaim_after_secs = n)
                }
                "plugins__cache_dir" => {
                    self.plugins.cache_dir = Some(PathBuf::from(value));
                    Ok(())
                }
                "plugins__dirs" => {
                    self.plugins.dirs = value
                        .split(':')
                        .filter(|d| !d.is_empty())
                        .map(PathBuf::from)
                        .collect();
                    Ok(())
                }
                "policies__dir" => {
                    self.policies.dir = value.clone().into();
                    Ok(())
                }
                "policies__evaluator" => value
                    .parse()
                    .map(|evaluator| self.policies.evaluator = evaluator)
                    .map_err(|e| format!("ORG_MESH_POLICIES__EVALUATOR: {e}")),
                "actions__dry_run" => match value.as_str() {
                    "true" => {
                        self.actions.dry_run = true;
                        Ok(())
                    }
                    "false" => {
                        self.actions.dry_run = false;
                        Ok(())
                    }
                    other => Err(format!(
                        "ORG_MESH_ACTIONS__DRY_RUN: {other:?} is not true or false"
                    )),
                },
                "actions__max_per_run" => number("a count").and_then(|n| {
                    usize::try_from(n)
                        .map(|n| self.actions.max_per_run = n)
                        .map_err(|e| e.to_string())
                }),
                "actions__max_calls_per_action" => number("a count").and_then(|n| {
                    usize::try_from(n)
                        .map(|n| self.actions.max_calls_per_action = n)
                        .map_err(|e| e.to_string())
                }),
                "actions__disabled_executors" => {
                    self.actions.disabled_executors = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                    Ok(())
                }
                "policies__shadow__window_secs" => number("a number of seconds").map(|n| {
                    self.policies
                        .shadow
                        .get_or_insert_with(|| ShadowConfig::new(n))
                        .window_secs = n;
                }),
                "policies__shadow__max_diffs" => number("a count").map(|n| {
                    self.policies
                        .shadow
                        .get_or_insert_with(|| ShadowConfig::new(0))
                        .max_diffs = n;
                }),
                "policies__shadow__max_errors" => number("a count").map(|n| {
                    self.policies
                        .shadow
                        .get_or_insert_with(|| ShadowConfig::new(0))
                        .max_errors = n;
                }),
                "identity__mappings" => {
                    self.identity.mappings = Some(value.clone().into());
                    Ok(())
                }
                "serve__listen" => {
                    self.serve.listen = value.clone();
                    Ok(())
                }
                "serve__body_limit_bytes" => number("a byte count").and_then(|n| {
                    usize::try_from(n)
                        .map(|n| self.serve.body_limit_bytes = n)
                        .map_err(|e| e.to_string())
                }),
                "serve__public_url" => {
                    self.serve.public_url = Some(value.clone());
                    Ok(())
                }
                "serve__sync_interval_secs" => {
                    number("a number of seconds").map(|n| self.serve.sync_interval_secs = n)
                }
                "serve__head_timeout_secs" => {
                    number("a number of seconds").map(|n| self.serve.head_timeout_secs = n)
                }
                "serve__body_timeout_secs" => {
                    number("a number of seconds").map(|n| self.serve.body_timeout_secs = n)
                }
                "retention__message_days" => {
                    number("a whole number of days").map(|n| self.retention.message_days = n)
                }
                "retention__interval_secs" => {
                    number("a number of seconds").map(|n| self.retention.interval_secs = n)
                }
                other
                    if [
                        "graph",
                        "cache",
                        "plugins",
                        "policies",
                        "identity",
                        "serve",
                        "actions",
                        "retention",
                    ]
                    .iter()
                    .any(|top| other.starts_with(&format!("{top}__"))) =>
                {
                    Err(format!(
                        "ORG_MESH_{}: no such setting",
                        other.to_uppercase()
                    ))
                }
                _ => Ok(()),
            };
            if let Err(problem) = result {
                problems.push(problem);
            }
        }
    }

    /// The Neo4j settings, created with their defaults when the variables
    /// name them before the file does.
    fn neo4j_mut(&mut self) -> &mut Neo4jConfig {
        self.graph.neo4j.get_or_insert_with(|| Neo4jConfig {
            uri: String::new(),
            user: neo4j_user(),
            password: None,
            database: None,
            timeout_secs: neo4j_timeout(),
        })
    }

    /// The Redis settings, created with their defaults when the variables
    /// name them before the file does.
    fn redis_mut(&mut self) -> &mut RedisConfig {
        self.cache.redis.get_or_insert_with(|| RedisConfig {
            url: String::new(),
            password: None,
            prefix: redis_prefix(),
            timeout_secs: redis_timeout(),
        })
    }

    fn expand_variables(&mut self, problems: &mut Vec<String>) {
        for (kind, list) in [
            ("connectors", &mut self.connectors),
            ("detectors", &mut self.detectors),
            ("executors", &mut self.executors),
        ] {
            for inst in list.iter_mut() {
                let at = format!("{kind}.{}", inst.name);
                expand_json(&mut inst.config, &format!("{at}.config"), problems);
                for host in &mut inst.grants.http_hosts {
                    match expand(host) {
                        Ok(v) => *host = v,
                        Err(var) => problems.push(format!(
                            "{at}.grants.http_hosts: environment variable {var} is not set"
                        )),
                    }
                }
            }
        }
    }

    fn check(&self, problems: &mut Vec<String>) {
        if self.graph.backend == Backend::Neo4j && self.graph.neo4j.is_none() {
            problems.push("graph.neo4j: backend neo4j needs its uri".into());
        }
        if self.cache.backend == CacheBackend::Redis && self.cache.redis.is_none() {
            problems.push("cache.redis: backend redis needs its url".into());
        }
        if let Some(redis) = &self.cache.redis
            && !redis.url.starts_with("redis://")
            && !redis.url.starts_with("rediss://")
        {
            problems.push(format!(
                "cache.redis.url: {:?} is not a redis:// or rediss:// URL",
                redacted(&redis.url)
            ));
        }
        self.serve.check(problems);
        if self.retention.message_days > MAX_MESSAGE_DAYS {
            problems.push(format!(
                "retention.message_days: {} is more than {MAX_MESSAGE_DAYS} days; 0 keeps messages for ever",
                self.retention.message_days
            ));
        }
        if self.plugins.dirs.is_empty() {
            problems.push("plugins.dirs: at least one folder is needed".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (kind, list) in [
            ("connectors", &self.connectors),
            ("detectors", &self.detectors),
            ("executors", &self.executors),
        ] {
            for inst in list {
                let ok = !inst.name.is_empty()
                    && inst
                        .name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !ok {
                    problems.push(format!(
                        "{kind}.{}: name must be lower-case letters, digits and dashes",
                        inst.name
                    ));
                }
                if !names.insert(inst.name.clone()) {
                    problems.push(format!("{kind}.{}: the name is used twice", inst.name));
                }
                if kind != "connectors" && !inst.attachments.is_empty() {
                    problems.push(format!(
                        "{kind}.{}.attachments: only connectors take attachments",
                        inst.name
                    ));
                }
                if kind != "connectors" && (inst.webhook.is_some() || inst.scim.is_some()) {
                    problems.push(format!(
                        "{kind}.{}: only connectors take webhook or scim",
                        inst.name
                    ));
                }
            }
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.state_dir);
        if let Some(p) = &mut self.graph.path {
            abs(p);
        }
        self.plugins.dirs.iter_mut().for_each(abs);
        if let Some(p) = &mut self.plugins.cache_dir {
            abs(p);
        }
        abs(&mut self.policies.dir);
        if let Some(p) = &mut self.identity.mappings {
            abs(p);
        }
        for inst in self.connectors.iter_mut() {
            inst.attachments.values_mut().for_each(abs);
        }
    }

    /// Where compiled plugins are cached.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.plugins
            .cache_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("plugin-cache"))
    }

    /// The memory the embedded twin may keep of its file.
    pub fn store_cache_bytes(&self) -> usize {
        self.graph
            .cache_mib
            .map_or(org_mesh_store::EmbeddedStore::DEFAULT_CACHE_BYTES, |mib| {
                usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
            })
    }

    pub fn store_path(&self) -> PathBuf {
        self.graph
            .path
            .clone()
            .unwrap_or_else(|| self.state_dir.join("twin.redb"))
    }

    pub fn limits(&self) -> org_mesh_runtime::Limits {
        let mut limits = org_mesh_runtime::Limits::default();
        let l = &self.plugins.limits;
        if let Some(v) = l.memory_mib {
            limits.memory_bytes = v << 20;
        }
        if let Some(v) = l.cpu_ms {
            limits.cpu = std::time::Duration::from_millis(v);
        }
        if let Some(v) = l.call_timeout_ms {
            limits.call_timeout = std::time::Duration::from_millis(v);
        }
        if let Some(v) = l.host_call_timeout_ms {
            limits.host_call_timeout = std::time::Duration::from_millis(v);
        }
        if let Some(v) = l.output_mib {
            limits.output_bytes = v << 20;
        }
        limits
    }
}

/// A URL with anything between `//` and `@` hidden, for messages.
pub fn redacted(url: &str) -> String {
    match (url.find("//"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => format!("{}//***{}", &url[..start], &url[at..]),
        _ => url.to_string(),
    }
}

/// Replaces every `${NAME}` in `s`; the error names the first unset one.
fn expand(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        out.push_str(&std::env::var(name).map_err(|_| name.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand_json(value: &mut serde_json::Value, at: &str, problems: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => match expand(s) {
            Ok(v) => *s = v,
            Err(var) => problems.push(format!("{at}: environment variable {var} is not set")),
        },
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_json(item, &format!("{at}[{i}]"), problems);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                expand_json(v, &format!("{at}.{k}"), problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().map_err(|e| ConfigError {
            path: PathBuf::new(),
            problems: vec![e.to_string()],
        })?;
        let path = dir.path().join("org-mesh.yaml");
        std::fs::write(&path, text).map_err(|e| ConfigError {
            path: path.clone(),
            problems: vec![e.to_string()],
        })?;
        Config::load(&path)
    }

    /// Loads `text` and returns the error message, failing if it took a
    /// second or more.
    fn refused_quickly(text: &str) -> String {
        let start = std::time::Instant::now();
        let message = match load(text) {
            Ok(_) => String::from("accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "took {:?}: {message}",
            start.elapsed()
        );
        message
    }

    // The plugin `config` is the one place untyped YAML reaches, so a bomb
    // there is not stopped by an unknown key first.
    #[test]
    fn hostile_yaml_is_refused_quickly() {
        let head = "plugins: {dirs: [p]}\npolicies: {dir: q}\nconnectors:\n  - name: gh\n    plugin: github-connector\n    config:\n";
        let mut bomb =
            format!("{head}      l0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..10 {
            let refs = vec![format!("*a{}", level - 1); 10].join(", ");
            bomb.push_str(&format!("      l{level}: &a{level} [{refs}]\n"));
        }
        let err = refused_quickly(&bomb);
        assert!(err.contains("alias") || err.contains("budget"), "{err}");

        let deep = format!(
            "{head}      deep: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let err = refused_quickly(&deep);
        assert!(err.contains("recursion") || err.contains("depth"), "{err}");

        let huge = format!(
            "state_dir: {}\nplugins: {{dirs: [p]}}\npolicies: {{dir: q}}\n",
            "a".repeat(10 * 1024 * 1024)
        );
        let err = refused_quickly(&huge);
        assert!(err.contains("larger than"), "{err}");
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_setting() {
        let err =
            load("plugins: {dirs: [p]}\npolicies: {dir: q}\nserve:\n  sync_interval_secs: often\n")
                .err()
                .map(|e| e.problems)
                .unwrap_or_default();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].starts_with("serve.sync_interval_secs: "), "{err:?}");
        assert!(err[0].contains("line 4"), "{err:?}");
    }

    #[test]
    fn unknown_fields_are_refused_with_the_file_named() {
        let err = load("plugins: {dirs: [p]}\npolicies: {dir: q}\ncolour: red\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("org-mesh.yaml"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = load(
            "plugins: {dirs: []}\npolicies: {dir: q}\ndetectors:\n  - {name: Bad_Name, plugin: x}\n  - {name: d, plugin: y, attachments: {a: b}}\nconnectors:\n  - {name: d, plugin: z, config: {url: '${ORG_MESH_TEST_SURELY_UNSET}'}}\n",
        )
        .err()
        .map(|e| e.problems)
        .unwrap_or_default();
        assert_eq!(err.len(), 5, "{err:?}");
        assert!(
            err.iter()
                .any(|p| p.contains("ORG_MESH_TEST_SURELY_UNSET is not set"))
        );
    }

    #[test]
    fn serve_settings_that_cannot_work_are_named() {
        let err = load(
            "plugins: {dirs: [p]}\npolicies: {dir: q}\nserve:\n  listen: not-an-address\n  body_limit_bytes: 0\n  head_timeout_secs: 0\n  public_url: not a url\n",
        )
        .err()
        .map(|e| e.problems)
        .unwrap_or_default();
        assert_eq!(
            err,
            [
                "serve.listen: \"not-an-address\" is not an address and port such as 0.0.0.0:8080",
                "serve.body_limit_bytes: 0 is below 4096, which no SCIM user or webhook delivery fits",
                "serve.head_timeout_secs: must be at least 1 second, or no request could arrive",
                "serve.public_url: \"not a url\" is not an http:// or https:// URL",
            ]
        );
        for listen in ["0.0.0.0:8080", "[::]:8080", "localhost:8080"] {
            let config = load(&format!(
                "plugins: {{dirs: [p]}}\npolicies: {{dir: q}}\nserve: {{listen: '{listen}', public_url: 'https://org-mesh.example.com'}}\n"
            ));
            assert!(config.is_ok(), "{listen}: {:?}", config.err());
        }
    }

    #[test]
    fn environment_variables_set_settings_by_path() {
        let mut config = load("plugins: {dirs: [p]}\npolicies: {dir: q}\n")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let mut problems = Vec::new();
        let vars = [
            ("ORG_MESH_SERVE__LISTEN", "0.0.0.0:9000"),
            ("ORG_MESH_SERVE__SYNC_INTERVAL_SECS", "60"),
            ("ORG_MESH_PLUGINS__DIRS", "/a:/b"),
            ("ORG_MESH_STATE_DIR", "/var/lib/org-mesh"),
            ("ORG_MESH_SERVE__BODY_LIMIT_BYTES", "lots"),
            ("ORG_MESH_SERVE__COLOUR", "red"),
            ("ORG_MESH_LOG", "debug"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        config.overlay_env(vars.into_iter(), &mut problems);
        assert_eq!(config.serve.listen, "0.0.0.0:9000");
        assert_eq!(config.serve.sync_interval_secs, 60);
        assert_eq!(
            config.plugins.dirs,
            [PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(config.state_dir, PathBuf::from("/var/lib/org-mesh"));
        assert_eq!(
            problems,
            [
                "ORG_MESH_SERVE__BODY_LIMIT_BYTES: \"lots\" is not a byte count",
                "ORG_MESH_SERVE__COLOUR: no such setting"
            ]
        );
    }

    #[test]
    fn policy_evaluator_is_the_interpreter_unless_told_otherwise() {
        use org_mesh_policy::Evaluator;
        let config = load("plugins: {dirs: [p]}\npolicies: {dir: q}\n")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(config.policies.evaluator, Evaluator::Interpreter);
        let mut config = load("plugins: {dirs: [p]}\npolicies: {dir: q, evaluator: bytecode}\n")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(config.policies.evaluator, Evaluator::Bytecode);
        let err = load("plugins: {dirs: [p]}\npolicies: {dir: q, evaluator: fast}\n")
            .err()
            .unwrap_or_else(|| unreachable!("an unknown evaluator was accepted"));
        assert!(format!("{err:#}").contains("fast"), "{err:#}");

        let mut problems = Vec::new();
        let vars = [("ORG_MESH_POLICIES__EVALUATOR", "interpreter")];
        config.overlay_env(
            vars.map(|(k, v)| (k.to_string(), v.to_string()))
                .into_iter(),
            &mut problems,
        );
        assert_eq!(config.policies.evaluator, Evaluator::Interpreter);
        let vars = [("ORG_MESH_POLICIES__EVALUATOR", "quick")];
        config.overlay_env(
            vars.map(|(k, v)| (k.to_string(), v.to_string()))
                .into_iter(),
            &mut problems,
        );
        assert_eq!(
            problems,
            ["ORG_MESH_POLICIES__EVALUATOR: \"quick\" is not interpreter or bytecode"]
        );
        assert_eq!(config.policies.evaluator, Evaluator::Interpreter);
    }

    #[test]
    fn retention_keeps_messages_half_a_year_unless_told_otherwise() {
        let config = load("plugins: {dirs: [p]}\npolicies: {dir: q}\n")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(config.retention, RetentionConfig::default());
        assert_eq!(
            (
                config.retention.message_days,
                config.retention.interval_secs
            ),
            (180, 3600)
        );
        let config = load(
            "plugins: {dirs: [p]}\npolicies: {dir: q}\nretention: {message_days: 0, interval_secs: 60}\n",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(config.retention.message_days, 0);
        assert_eq!(config.retention.interval_secs, 60);
    }

    #[test]
    fn bad_retention_settings_are_refused_by_key() {
        for (value, said) in [
            ("-5", "message_days"),
            ("many", "message_days"),
            ("~", "message_days"),
            ("1.5", "message_days"),
        ] {
            let err = load(&format!(
                "plugins: {{dirs: [p]}}\npolicies: {{dir: q}}\nretention:\n  message_days: {value}\n"
            ))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
            assert!(err.contains(said), "{value}: {err}");
        }
        let err =
            load("plugins: {dirs: [p]}\npolicies: {dir: q}\nretention: {message_days: 99999}\n")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(
            err.contains("retention.message_days: 99999 is more than 36500 days"),
            "{err}"
        );

        let mut config = load("plugins: {dirs: [p]}\npolicies: {dir: q}\n")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let mut problems = Vec::new();
        let vars = [
            ("ORG_MESH_RETENTION__MESSAGE_DAYS", "-5"),
            ("ORG_MESH_RETENTION__INTERVAL_SECS", "1"),
            ("ORG_MESH_RETENTION__KEEP", "yes"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        config.overlay_env(vars.into_iter(), &mut problems);
        assert_eq!(config.retention.interval_secs, 1);
        assert_eq!(
            problems,
            [
                "ORG_MESH_RETENTION__KEEP: no such setting",
                "ORG_MESH_RETENTION__MESSAGE_DAYS: \"-5\" is not a whole number of days",
            ]
        );
    }

    #[test]
    fn the_backends_are_chosen_by_variables_in_any_order() {
        let mut config = load("plugins: {dirs: [p]}\npolicies: {dir: q}\n")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let mut problems = Vec::new();
        let vars = [
            ("ORG_MESH_CACHE__REDIS__PREFIX", "blue:"),
            ("ORG_MESH_CACHE__REDIS__URL", "redis://cache:6379/1"),
            ("ORG_MESH_CACHE__BACKEND", "redis"),
            ("ORG_MESH_CACHE__RECLAIM_AFTER_SECS", "5"),
            ("ORG_MESH_GRAPH__BACKEND", "neo4j"),
            ("ORG_MESH_GRAPH__NEO4J__URI", "bolt://graph:7687"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        config.overlay_env(vars.into_iter(), &mut problems);
        config.check(&mut problems);
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(config.cache.backend, CacheBackend::Redis);
        let redis = config.cache.redis.unwrap_or_else(|| unreachable!());
        assert_eq!(
            (redis.url.as_str(), redis.prefix.as_str()),
            ("redis://cache:6379/1", "blue:")
        );
        assert_eq!(config.cache.reclaim_after_secs, 5);
        assert_eq!(config.graph.backend, Backend::Neo4j);
    }

    #[test]
    fn the_embedded_cache_is_bounded_by_default_and_set_in_mib() {
        let base = "plugins: {dirs: [p]}\npolicies: {dir: q}\n";
        let config = load(base).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            config.store_cache_bytes(),
            org_mesh_store::EmbeddedStore::DEFAULT_CACHE_BYTES
        );
        let mut config = load(&format!("{base}graph: {{cache_mib: 32}}\n"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(config.store_cache_bytes(), 32 << 20);
        let mut problems = Vec::new();
        let vars = [("ORG_MESH_GRAPH__CACHE_MIB".to_string(), "512".to_string())];
        config.overlay_env(vars.into_iter(), &mut problems);
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(config.store_cache_bytes(), 512 << 20);
        let vars = [("ORG_MESH_GRAPH__CACHE_MIB".to_string(), "1G".to_string())];
        config.overlay_env(vars.into_iter(), &mut problems);
        assert_eq!(
            problems,
            ["ORG_MESH_GRAPH__CACHE_MIB: \"1G\" is not a number of MiB"]
        );
    }

    #[test]
    fn a_redis_backend_needs_a_redis_url_and_never_shows_its_password() {
        let err = load("plugins: {dirs: [p]}\npolicies: {dir: q}\ncache: {backend: redis}\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("cache.redis: backend redis needs its url"),
            "{err}"
        );
        let err = load(
            "plugins: {dirs: [p]}\npolicies: {dir: q}\ncache: {backend: redis, redis: {url: 'http://:hunter2@cache:6379'}}\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("is not a redis:// or rediss:// URL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn variables_expand_and_paths_resolve_against_the_file() {
        let config = load(
            "plugins: {dirs: [p]}\npolicies: {dir: q}\nconnectors:\n  - {name: c, plugin: z, config: {home: '${HOME}/x'}, attachments: {users: u.json}}\n",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(config.connectors[0].config["home"], format!("{home}/x"));
        assert!(config.connectors[0].attachments["users"].is_absolute());
        assert!(config.policies.dir.is_absolute());
    }
}
