//! org-mesh measured side by side with its peers.
//!
//! Each part of this crate prepares both sides of one comparison from the
//! same seeded inputs, checks that both give the same answer, and leaves
//! the timing to the benches:
//!
//! - [`policy`]: the shipped drift policy through regorus (org-mesh's
//!   decision on either of its engines, the interpreter rule by rule,
//!   per-rule compiled policies) and through OPA's `opa` binary;
//! - [`plugin`]: the identity-drift detector as a sandboxed component and
//!   as the same Rust compiled natively;
//! - [`synth`]: seeded synthetic organisations for the ingest and scale
//!   benches;
//! - [`latency`]: `org-mesh serve` and the `scim2-server` reference server
//!   as running processes, for SCIM and webhook latency, over the small
//!   HTTP client in [`http`].
//!
//! `cargo bench -p org-mesh-bench --bench compare` prints the table;
//! `.ci/bench` installs the peers first and runs everything.
//! `cargo test -p org-mesh-bench` checks the fixtures, never the timings.

pub mod http;
pub mod latency;
pub mod opa;
pub mod plugin;
pub mod policy;
pub mod stats;
pub mod synth;
