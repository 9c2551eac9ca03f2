//! A detector call, sandboxed against native.
//!
//! The sandboxed call is what the host does for every detection: a fresh
//! instance from the pre-instantiated component, the call, graph reads
//! crossing into the host, the findings checked on the way out. The native
//! call runs the same crate's `detect` over the same twin. The overhead of
//! the sandbox is the difference of the two at each percentile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use org_mesh_bench::plugin::{self, Twin};
use org_mesh_bench::stats::{Samples, Table, human};

use crate::sample;

const CALLS: usize = 20_000;

pub fn run(table: &mut Table) -> anyhow::Result<()> {
    let twin = Arc::new(Twin::offboarded_admin()?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (_rt, detector) = runtime.block_on(plugin::sandboxed(twin.clone()))?;
    let changes = twin.change_set();

    let native = plugin::native_findings(&twin)?;
    let sandboxed = runtime.block_on(detector.detect(false, &changes))?;
    ensure!(
        plugin::sandboxed_findings(&sandboxed) == native && !native.is_empty(),
        "the component found {:?}, native code {native:?}",
        plugin::sandboxed_findings(&sandboxed)
    );
    eprintln!("plugin: both sides find {native:?}");

    let request = twin.request();
    let native = sample(CALLS, || {
        identity_drift::detect(&plugin::Native(&twin), &request)
            .map_err(|e| anyhow::anyhow!("{e:?}"))
    })?;
    let (describe, sandboxed) = runtime.block_on(async {
        let describe = timed(CALLS, async || Ok(detector.describe().await?)).await?;
        let detect = timed(CALLS, async || Ok(detector.detect(false, &changes).await?)).await?;
        anyhow::Ok((describe, detect))
    })?;

    let over = |p: fn(&Samples) -> Duration| p(&sandboxed).saturating_sub(p(&native));
    table.row(
        "detector call, sandboxed vs native, p50",
        &human(sandboxed.p50()),
        &format!("native {}", human(native.p50())),
        &format!("+{} per call", human(over(Samples::p50))),
        "<= 10 µs overhead",
    );
    table.row(
        "detector call, sandboxed vs native, p99",
        &human(sandboxed.p99()),
        &format!("native {}", human(native.p99())),
        &format!("+{} per call", human(over(Samples::p99))),
        "(reported)",
    );
    table.row(
        "fresh instance + trivial export (describe), p50 / p99",
        &format!("{} / {}", human(describe.p50()), human(describe.p99())),
        "-",
        "floor of any sandboxed call",
        "(reported)",
    );
    Ok(())
}

async fn timed<T>(
    calls: usize,
    mut f: impl AsyncFnMut() -> anyhow::Result<T>,
) -> anyhow::Result<Samples> {
    for _ in 0..calls / 10 {
        std::hint::black_box(f().await?);
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        std::hint::black_box(f().await?);
        samples.push(started.elapsed());
    }
    Ok(Samples::new(samples))
}
