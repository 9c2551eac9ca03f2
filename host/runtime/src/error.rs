//! Errors of loading and calling plugins. Every message names the plugin,
//! and for call failures its version and the limit or rule that was hit.

use std::fmt;
use std::path::PathBuf;

/// Why a plugin could not be loaded. The plugin is skipped; others load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("manifest {path}: {problem}")]
    Manifest { path: PathBuf, problem: String },
    #[error("plugin {plugin}: {path} is not a valid component: {message}")]
    Compile {
        plugin: String,
        path: PathBuf,
        message: String,
    },
    #[error(
        "plugin {plugin}: the component imports {import} but the manifest does not ask for {capability}"
    )]
    UndeclaredImport {
        plugin: String,
        import: String,
        capability: String,
    },
    #[error("plugin {plugin}: the component imports {import}, which org-mesh does not provide")]
    UnknownImport { plugin: String, import: String },
    #[error("plugin {plugin}: the component does not fit the {kind} world: {message}")]
    WrongWorld {
        plugin: String,
        kind: String,
        message: String,
    },
    #[error("plugin {plugin} {version}: self-check failed: {problem}")]
    SelfCheck {
        plugin: String,
        version: String,
        problem: String,
    },
    #[error(
        "plugin {plugin}: built against the plugin contract {found}, but this org-mesh speaks {expected}; rebuild it with the matching org-mesh-plugin crate"
    )]
    Contract {
        plugin: String,
        found: String,
        expected: String,
    },
    #[error(
        "plugin {name} is in two folders; {} serves and {} is ignored: \
         remove one, names must be unique",
        kept.display(),
        ignored.display()
    )]
    Duplicate {
        name: String,
        kept: PathBuf,
        ignored: PathBuf,
    },
}

/// A domain failure a plugin reported, mirroring the WIT `plugin-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginFailure {
    InvalidConfig(String),
    InvalidInput(String),
    Upstream(String),
    Forbidden(String),
    RateLimited(u32),
    Denied(String),
    Internal(String),
}

impl PluginFailure {
    pub fn reason(&self) -> &'static str {
        match self {
            PluginFailure::InvalidConfig(_) => "invalid_config",
            PluginFailure::InvalidInput(_) => "invalid_input",
            PluginFailure::Upstream(_) => "upstream",
            PluginFailure::Forbidden(_) => "forbidden",
            PluginFailure::RateLimited(_) => "rate_limited",
            PluginFailure::Denied(_) => "denied",
            PluginFailure::Internal(_) => "internal",
        }
    }
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginFailure::InvalidConfig(m) => write!(f, "invalid configuration: {m}"),
            PluginFailure::InvalidInput(m) => write!(f, "invalid input: {m}"),
            PluginFailure::Upstream(m) => write!(f, "upstream error: {m}"),
            PluginFailure::Forbidden(m) => write!(f, "forbidden upstream: {m}"),
            PluginFailure::RateLimited(s) => write!(f, "rate limited upstream, retry in {s} s"),
            PluginFailure::Denied(m) => write!(f, "denied by the host: {m}"),
            PluginFailure::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

/// What went wrong in one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Guest code ran longer than its CPU budget.
    CpuDeadline {
        limit_ms: u64,
    },
    /// The whole call, host calls included, took longer than allowed.
    WallClock {
        limit_ms: u64,
    },
    /// Linear memory would have grown past the cap.
    Memory {
        limit_bytes: u64,
    },
    StackOverflow,
    /// The result exceeded the output size cap.
    OutputTooLarge {
        size: u64,
        limit: u64,
    },
    /// The plugin called a host interface it was not granted.
    Ungranted {
        capability: String,
    },
    /// Any other trap, with wasmtime's message.
    Trap(String),
    /// The plugin returned data the host refuses (bad label, timestamp...).
    InvalidOutput(String),
    /// An executor running an approved plan tried a request the plan does
    /// not announce. The request was not sent; those before it were.
    Unplanned {
        request: String,
    },
    /// The plugin returned its own error.
    Plugin(PluginFailure),
    /// The host could not set up the call (instance pool exhausted...).
    Host(String),
    /// The plugin failed too often and is not called until its backoff ends.
    Quarantined {
        until_secs: u64,
    },
}

impl Failure {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::CpuDeadline { .. } => "cpu_deadline",
            Failure::WallClock { .. } => "wall_clock",
            Failure::Memory { .. } => "memory",
            Failure::StackOverflow => "stack_overflow",
            Failure::OutputTooLarge { .. } => "output_too_large",
            Failure::Ungranted { .. } => "ungranted",
            Failure::Trap(_) => "trap",
            Failure::InvalidOutput(_) => "invalid_output",
            Failure::Unplanned { .. } => "unplanned",
            Failure::Plugin(p) => p.reason(),
            Failure::Host(_) => "host",
            Failure::Quarantined { .. } => "quarantined",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::CpuDeadline { limit_ms } => {
                write!(f, "exceeded its CPU deadline of {limit_ms} ms")
            }
            Failure::WallClock { limit_ms } => {
                write!(f, "exceeded its wall-clock timeout of {limit_ms} ms")
            }
            Failure::Memory { limit_bytes } => {
                write!(f, "exceeded its memory limit of {limit_bytes} bytes")
            }
            Failure::StackOverflow => write!(f, "overflowed its stack"),
            Failure::OutputTooLarge { size, limit } => {
                write!(
                    f,
                    "returned {size} bytes, over the output limit of {limit} bytes"
                )
            }
            Failure::Ungranted { capability } => {
                write!(
                    f,
                    "called the {capability} interface, which is not granted to it"
                )
            }
            Failure::Trap(m) => write!(f, "trapped: {m}"),
            Failure::InvalidOutput(m) => write!(f, "returned invalid output: {m}"),
            Failure::Unplanned { request } => write!(
                f,
                "tried {request}, which the approved plan does not announce; that request \
                 was refused, and the calls before it were made"
            ),
            Failure::Plugin(p) => write!(f, "{p}"),
            Failure::Host(m) => write!(f, "could not be run: {m}"),
            Failure::Quarantined { until_secs } => {
                write!(
                    f,
                    "is quarantined after repeated failures for {until_secs} more s"
                )
            }
        }
    }
}

/// One failed call: which plugin, which function, what went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("plugin {plugin} {version}: {function} {failure}")]
pub struct CallError {
    pub plugin: String,
    pub version: String,
    pub function: &'static str,
    pub failure: Failure,
}
