//! The org-mesh plugin runtime: loads connector, detector and executor
//! components from a folder, sandboxes them, and calls them.
//!
//! Each call gets a fresh instance from a pre-instantiated handle in the
//! pooling allocator, with a memory cap, a CPU deadline enforced by epoch
//! interruption, a wall-clock timeout that also bounds host calls, and an
//! output size cap. A plugin that breaks a limit fails that call with a
//! [`CallError`] naming it; the host goes on.

mod bindings;
mod cache;
pub mod config_schema;
mod convert;
mod engine;
mod error;
mod host;
mod manifest;
mod plan;
mod plugin;
mod registry;

pub use cache::CacheOutcome;
pub use engine::{Limits, Runtime, RuntimeOptions};
pub use error::{CallError, Failure, LoadError, PluginFailure};
pub use host::{Clock, Grants, GraphReader, SecretSource};
pub use manifest::{Capability, Kind, Manifest};
pub use plugin::{
    ActionPlan, ActionRequest, Attachment, Description, DetectOutput, HandleOutput, Incoming,
    Outcome, PlannedCall, Plugin, RuleInfo, SyncOutput,
};
pub use registry::{Loaded, PluginStats, Registry};
