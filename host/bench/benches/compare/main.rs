//! Prints org-mesh side by side with its peers, each figure a ratio of two
//! measurements taken in this one run: `.ci/bench` installs the peers and
//! runs it; by hand,
//! `cargo bench -p org-mesh-bench --bench compare -- [SECTION...]`
//! with sections `policy`, `plugin`, `ingest`, `scale` and `latency` (all
//! when none is named). Each section first checks that both sides give the
//! same answers and stops the run if they do not. Numbers are printed,
//! never asserted.

#![expect(clippy::print_stderr, reason = "a benchmark reports on stderr")]

// The `org-mesh` binary runs on mimalloc, so org-mesh's side is measured on
// it too. The native detector shares the process and so the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod ingest;
mod latency;
mod plugin;
mod policy;
mod scale;

use std::time::{Duration, Instant};

use org_mesh_bench::stats::{Samples, Table};

const SECTIONS: [&str; 5] = ["policy", "plugin", "ingest", "scale", "latency"];

/// Times `calls` calls of `f`, one sample each, after a tenth as many
/// unrecorded calls to warm caches.
pub fn sample<T>(
    calls: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<Samples> {
    for _ in 0..calls / 10 {
        std::hint::black_box(f()?);
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        std::hint::black_box(f()?);
        samples.push(started.elapsed());
    }
    Ok(Samples::new(samples))
}

/// Mean time per call over `calls` calls, with one clock reading for the
/// lot: for operations so short that reading the clock each time would
/// weigh on them.
pub fn mean_per_call<T>(
    calls: u32,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<Duration> {
    for _ in 0..calls / 10 {
        std::hint::black_box(f()?);
    }
    let started = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(f()?);
    }
    Ok(started.elapsed() / calls.max(1))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then this only checks that it builds.
    if !args.iter().any(|a| a == "--bench") {
        return Ok(());
    }
    let named: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| SECTIONS.contains(a))
        .collect();
    let wanted = |s: &str| named.is_empty() || named.contains(&s);

    let mut table = Table::default();
    if wanted("policy") {
        policy::run(&mut table)?;
    }
    if wanted("plugin") {
        plugin::run(&mut table)?;
    }
    if wanted("ingest") {
        ingest::run(&mut table)?;
    }
    if wanted("scale") {
        scale::run(&mut table)?;
    }
    if wanted("latency") {
        latency::run(&mut table)?;
    }
    println!("{}", table.render());
    Ok(())
}
