//! The clocks a plugin reads through WASI. By default they are the
//! system's; a [`Clock`] in the runtime's options replaces both, which is
//! how the conformance suite records the readings of a call and replays
//! them, so a plugin that computes with the time (a rate-limit wait, a
//! `since` window) behaves on replay as it did when recorded.

use std::sync::Arc;
use std::time::Duration;

use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// Both clocks a plugin can read.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time since the Unix epoch.
    fn wall(&self) -> Duration;
    /// Nanoseconds from an arbitrary start; never decreases within a call.
    fn monotonic_ns(&self) -> u64;
}

/// One nanosecond: what the replacement clocks claim, since a recording
/// keeps nanoseconds.
const RESOLUTION_NS: u64 = 1;

pub(crate) struct Wall(pub Arc<dyn Clock>);

impl HostWallClock for Wall {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(RESOLUTION_NS)
    }

    fn now(&self) -> Duration {
        self.0.wall()
    }
}

pub(crate) struct Monotonic(pub Arc<dyn Clock>);

impl HostMonotonicClock for Monotonic {
    fn resolution(&self) -> u64 {
        RESOLUTION_NS
    }

    fn now(&self) -> u64 {
        self.0.monotonic_ns()
    }
}
